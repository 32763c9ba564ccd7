"""Build firmware with CMake and run it on the board's emulator: host-native, QEMU (Cortex-M, semihosting),
mspdebug's simulator or the project's MSP430FR5994 simulator (msp430sim, with the LEA).

The code lives in one module per concern; this package re-exports the public names (and the few helpers the
tests use) so that ``from batteryless.firmware import build, run`` keeps working:

- :mod:`.build` — :func:`build` (CMake, region usage against the board's limits), :func:`build_cmsis_library`;
- :mod:`.runner` — :func:`run`, the one runner interface: input patching, power cuts at instruction (or, on
  msp430sim, cycle) counts, marks, the count; it dispatches on ``[emulator].kind`` to :mod:`.host`,
  :mod:`.qemu`, :mod:`.mspdebug` or :mod:`.msp430sim` (each has ``run_image``);
- :mod:`.dataset` — :func:`run_samples` / :func:`run_dataset` (one run per sample, logits, predictions);
- :mod:`.image` — ELF symbols, the input buffer, region usage; :mod:`.tools` — the helper cache and commands.
Everything board-specific comes from ``board.toml`` (emulator table, memory map).
"""

from __future__ import annotations

from batteryless.firmware.build import BuildResult, build, build_cmsis_library
from batteryless.firmware.dataset import LOGITS_KEY, DatasetRun, run_dataset, run_samples
from batteryless.firmware.host import HOST_POWER_CUT_EXIT
from batteryless.firmware.image import RegionUsage, input_capacity, patch_input, region_usage, symbol, symbols
from batteryless.firmware.mspdebug import _md_bytes
from batteryless.firmware.qemu import (
    PLUGIN_DIR,
    PLUGIN_SOURCES,
    QEMU_RESET_SYMBOL,
    QEMU_STOP_EXIT,
    check_qemu_reset_symbol,
    qemu_plugin,
)
from batteryless.firmware.runner import RunResult, image_symbol, parse_output, run
from batteryless.firmware.tools import ROOT, _FileLock, _run_cmd, cache_dir

__all__ = [
    "BuildResult",
    "DatasetRun",
    "HOST_POWER_CUT_EXIT",
    "LOGITS_KEY",
    "PLUGIN_DIR",
    "PLUGIN_SOURCES",
    "QEMU_RESET_SYMBOL",
    "QEMU_STOP_EXIT",
    "ROOT",
    "RegionUsage",
    "RunResult",
    "_FileLock",
    "_md_bytes",
    "_run_cmd",
    "build",
    "build_cmsis_library",
    "cache_dir",
    "check_qemu_reset_symbol",
    "image_symbol",
    "input_capacity",
    "parse_output",
    "patch_input",
    "qemu_plugin",
    "region_usage",
    "run",
    "run_dataset",
    "run_samples",
    "symbol",
    "symbols",
]
