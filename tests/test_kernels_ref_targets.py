"""The `ref` kernels built by the project's CMake and run on each target: host, QEMU Cortex-M4 (mps2-an386)
and mspdebug's MSP430FR5994 simulator (16-bit int). Every output's FNV-1a hash must equal the hash of
batteryless.spec's output for the same layers (benchmarks/kernels_ref.py generates the app)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from batteryless.firmware import run

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.firmware, pytest.mark.slow]

_spec = importlib.util.spec_from_file_location("kernels_ref_bench", ROOT / "benchmarks" / "kernels_ref.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

_TOOLS = {"host": "gcc", "mps2-an386": "qemu-system-arm", "msp430fr5994": "mspdebug"}


@pytest.mark.parametrize("board", ["host", "mps2-an386", "msp430fr5994"])
def test_ref_kernels_bit_exact_on_target(board, tmp_path):
    if shutil.which(_TOOLS[board]) is None:
        pytest.skip(f"{_TOOLS[board]} is not installed (scripts/setup.sh)")
    image = bench.build_app(board, tmp_path)
    want = bench.expected_hashes()
    for sel, (order, keys) in bench.GROUPS.items():
        r = run(image, board, inputs=bytes([sel]), timeout=600)
        assert r.exit_code == 0 and r.values.get("status") == [0], r.output
        for key in keys:
            assert r.values.get(key) == [want[key]], (board, key)
        if board != "host":  # every measured step has its two marks, and the count grows between them
            steps = bench.step_counts(r.marks, order)
            assert len(steps) == len(order) // 2 and all(v > 0 for v in steps.values()), r.marks
