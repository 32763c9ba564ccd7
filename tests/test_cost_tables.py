"""The boards' [cost.<backend>] tables: every table says where its numbers come from, FITTED tables carry the
numbers benchmarks/cost_fit.py wrote, and the fit itself recovers known coefficients."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from batteryless.boards import load_board
from batteryless.codegen.costs import DEFAULTS, FEATURES, KEYS, OPTIONAL_KEYS, cost_model
from batteryless.errors import BoardError

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
    # the optional coefficients (conv, dense, FFT-path, 8-bit MACs, transforms, outputs): the fit's, or
    # where no measured task has the feature (the fit leaves it out) the documented default's value
    for k in OPTIONAL_KEYS:
        want = fitted.get(k)
        d = k
        while want is None:
            d = DEFAULTS[d]
            want = d if not isinstance(d, str) else fitted.get(d)
        assert cm.coefficient(k) == pytest.approx(want, rel=5e-3, abs=5e-3), (board, backend, k)


def test_every_board_table_carries_every_key():
    """Each board in boards/ spells out every coefficient (no table relies on the defaults for old tables)."""
    for b, backend in _tables():
        table = b.extra["cost"][backend]
        missing = [k for k in (*KEYS, *OPTIONAL_KEYS) if k not in table]
        assert not missing, (b.name, backend, missing)


def _board_with(table: dict):
    """The host board with its [cost.ref] replaced by ``table``."""
    import dataclasses

    b = load_board("host")
    extra = dict(b.extra)
    extra["cost"] = {"ref": table}
    return dataclasses.replace(b, extra=extra)


OLD_TABLE = {  # a table as boards carried it before session 8: no dense / conv / transform / output keys
    "cycles_per_mac": 10.0,
    "cycles_per_butterfly": 100.0,
    "cycles_per_element": 3.0,
    "cycles_per_call": 50.0,
    "commit_cycles": 80,
    "source": "old",
}


def test_an_old_table_loads_with_the_documented_defaults():
    cm = cost_model(_board_with(OLD_TABLE), "ref")
    optional = (
        "cycles_per_conv_mac",
        "cycles_per_dense_mac",
        "cycles_per_dense_conv_mac",
        "cycles_per_walk_mac",
        "cycles_per_walk_conv_mac",
        "cycles_per_fft_mac",
    )
    assert [getattr(cm, k) for k in optional] == [None] * 6
    zero = ("cycles_per_w8_mac", "cycles_per_short_butterfly", "cycles_per_transform", "cycles_per_output")
    assert [getattr(cm, k) for k in zero] == [0.0] * 4
    # priced exactly as the old model did: every MAC at cycles_per_mac, nothing extra for 8-bit weights,
    # nothing per transform or output (hand-derived: 7 circulant + 2 circulant-conv + 5 dense + 4 dense-conv
    # + 1 walk + 2 walk-conv + 3 FFT MACs = 24 x 10, 2 butterflies x 100, 6 elements x 3, 1 call x 50; the 8
    # MACs' 8-bit surcharge, the 2 short butterflies' surcharge, the 9 transforms and the 11 outputs cost
    # nothing)
    got = cm.cycles(
        macs=7, conv_macs=2, dense_macs=5, dense_conv_macs=4, walk_macs=1, walk_conv_macs=2, fft_macs=3,
        w8_macs=8, butterflies=2, short_butterflies=2, transforms=9, elements=6, outputs=11, calls=1,
    )  # fmt: skip
    assert got == 24 * 10 + 2 * 100 + 6 * 3 + 50
    assert DEFAULTS["cycles_per_dense_conv_mac"] == "cycles_per_dense_mac"
    # a dense key alone: dense-conv MACs follow it, not cycles_per_mac
    cm2 = cost_model(_board_with(OLD_TABLE | {"cycles_per_dense_mac": 4.0}), "ref")
    assert cm2.cycles(dense_conv_macs=10, dense_macs=1, macs=1) == 10 * 4.0 + 4.0 + 10.0
    # the bl_mac_step walk follows the dense keys unless the table prices it apart
    assert cm2.cycles(walk_macs=2, walk_conv_macs=3) == 5 * 4.0
    cm3 = cost_model(
        _board_with(OLD_TABLE | {"cycles_per_dense_conv_mac": 2.0, "cycles_per_walk_conv_mac": 9.0}), "ref"
    )
    assert cm3.cycles(dense_conv_macs=1, walk_conv_macs=1, walk_macs=1) == 2.0 + 9.0 + 10.0


def test_an_unknown_feature_is_refused():
    with pytest.raises(TypeError, match="unknown cost features"):
        cost_model(load_board("host"), "ref").cycles(mac=3)  # a typo would otherwise cost nothing


def test_every_key_prices_its_own_feature():
    coefs = {k: float(i + 2) for i, k in enumerate(FEATURES.values())}
    cm = cost_model(_board_with(OLD_TABLE | coefs), "ref")
    for feature, key in FEATURES.items():
        assert cm.cycles(**{feature: 3}) == 3 * coefs[key], feature


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cycles_per_dense_mac": "fast"}, "cycles_per_dense_mac must be a number"),
        ({"cycles_per_output": True}, "cycles_per_output must be a number"),
        ({"cycles_per_transform": -1.0}, "cycles_per_transform must not be negative"),
        ({"cycles_per_mac": -3}, "cycles_per_mac must not be negative"),
    ],
)
def test_a_bad_coefficient_is_a_clear_board_error(change, message):
    with pytest.raises(BoardError, match=message):
        cost_model(_board_with(OLD_TABLE | change), "ref")


def test_fit_recovers_known_coefficients():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from cost_fit import fit
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    truth = {
        "cycles_per_mac": 12.0,
        "cycles_per_conv_mac": 14.0,
        "cycles_per_dense_mac": 5.0,
        "cycles_per_dense_conv_mac": 7.5,
        "cycles_per_walk_mac": 6.0,
        "cycles_per_walk_conv_mac": 11.0,
        "cycles_per_fft_mac": 9.5,
        "cycles_per_w8_mac": 4.5,
        "cycles_per_butterfly": 70.0,
        "cycles_per_short_butterfly": 55.0,
        "cycles_per_transform": 300.0,
        "cycles_per_element": 3.0,
        "cycles_per_output": 40.0,
        "cycles_per_call": 90.0,
    }
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(60):
        f = {feature: int(rng.integers(0, 3000)) for feature in FEATURES} | {"calls": 1}
        rows.append({**f, "measured": sum(f[feat] * truth[key] for feat, key in FEATURES.items())})
    coef, pred = fit(rows)
    for k, v in truth.items():
        assert coef[k] == pytest.approx(v, rel=1e-6), k
    assert np.allclose(pred, [r["measured"] for r in rows])
    # a feature no row has: an optional coefficient is left out (the table then omits it and the
    # documented default applies), a required one is 0
    no_fft = [
        {**r, "fft_macs": 0, "macs": 0, "measured": r["measured"] - r["fft_macs"] * 9.5 - r["macs"] * 12}
        for r in rows
    ]
    coef_n, _ = fit(no_fft)
    assert "cycles_per_fft_mac" not in coef_n
    assert coef_n["cycles_per_mac"] == 0.0
    assert coef_n["cycles_per_dense_mac"] == pytest.approx(5.0, rel=1e-6)
    # a fixed coefficient is taken as given and the others still come out
    coef2, _ = fit(rows, {"cycles_per_element": 3.0})
    assert coef2["cycles_per_element"] == 3.0
    assert coef2["cycles_per_mac"] == pytest.approx(12.0, rel=1e-6)
