"""The boards' [cost.<backend>] tables: every table says where its numbers come from, FITTED tables carry the
numbers benchmarks/cost_fit.py wrote, and the fit itself recovers known coefficients."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from batteryless.boards import load_board
from batteryless.codegen.costs import KEYS, cost_model

ROOT = Path(__file__).resolve().parents[1]
FIT = ROOT / "benchmarks" / "results" / "cost_fit.json"
BOARDS = ("msp430fr5994", "msp430fr5969", "mps2-an386", "host")


def _tables():
    for name in BOARDS:
        b = load_board(name)
        for backend in b.extra.get("cost", {}):
            yield b, backend


def test_every_cost_table_names_its_source():
    seen = 0
    for b, backend in _tables():
        src = cost_model(b, backend).source
        assert src.startswith(("ASSUMED", "FITTED")), (b.name, backend, src)
        seen += 1
    assert seen >= 6


@pytest.mark.parametrize(
    ("board", "backend", "fit_key"),
    [
        ("msp430fr5994", "ref", "msp430fr5994/ref"),
        ("msp430fr5969", "ref", "msp430fr5994/ref"),  # same CPU and code: the FR5994 simulator's fit
        ("mps2-an386", "ref", "mps2-an386/ref"),
        ("mps2-an386", "cmsis", "mps2-an386/cmsis"),
        ("msp430fr5994", "lea", "msp430fr5994/lea"),  # on msp430sim's emulated LEA (issue 12)
    ],
)
def test_fitted_tables_carry_the_fit(board, backend, fit_key):
    fitted = json.loads(FIT.read_text())["fits"][fit_key]["fitted"]
    cm = cost_model(load_board(board), backend)
    assert cm.source.startswith("FITTED")
    for k in KEYS:
        # board.toml rounds to 3-4 significant digits
        assert getattr(cm, k) == pytest.approx(fitted[k], rel=5e-3), (board, backend, k)
    # the FFT-path multiply coefficient: in the table exactly when the fit has it
    if "cycles_per_fft_mac" in fitted:
        assert cm.cycles_per_fft_mac == pytest.approx(fitted["cycles_per_fft_mac"], rel=5e-3)
    else:
        assert cm.cycles_per_fft_mac is None


def test_fit_recovers_known_coefficients():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from cost_fit import FEATURES, fit
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    truth = {
        "cycles_per_mac": 12.0,
        "cycles_per_butterfly": 70.0,
        "cycles_per_element": 3.0,
        "cycles_per_call": 90.0,
    }
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(40):
        f = {
            "macs": int(rng.integers(0, 5000)),
            "butterflies": int(rng.integers(0, 200)),
            "elements": int(rng.integers(0, 600)),
            "calls": 1,
            "fft_macs": 0,
        }
        y = (
            f["macs"] * truth["cycles_per_mac"]
            + f["butterflies"] * truth["cycles_per_butterfly"]
            + f["elements"] * truth["cycles_per_element"]
            + truth["cycles_per_call"]
        )
        rows.append({**f, "measured": y})
    assert set(FEATURES) == {"macs", "fft_macs", "butterflies", "elements", "calls"}
    coef, pred = fit(rows)
    for k, v in truth.items():
        assert coef[k] == pytest.approx(v, rel=1e-6)
    assert "cycles_per_fft_mac" not in coef  # no FFT-path multiplies in the rows: no such coefficient
    # FFT-path multiplies priced apart (the cmsis split): both MAC coefficients come out
    split = []
    for r in rows:
        fm = int(rng.integers(0, 3000))
        split.append({**r, "fft_macs": fm, "measured": r["measured"] + 9.5 * fm})
    coef_s, _ = fit(split)
    assert coef_s["cycles_per_fft_mac"] == pytest.approx(9.5, rel=1e-6)
    assert coef_s["cycles_per_mac"] == pytest.approx(12.0, rel=1e-6)
    # a fixed coefficient is taken as given and the others still come out
    coef2, _ = fit(rows, {"cycles_per_element": 3.0})
    assert coef2["cycles_per_element"] == 3.0
    assert coef2["cycles_per_mac"] == pytest.approx(12.0, rel=1e-6)
    assert np.allclose(pred, [r["measured"] for r in rows])
