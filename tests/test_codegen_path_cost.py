"""codegen's per-layer FFT/direct estimate (``layer_cost``) and the path ``choose_path`` picks with it.

The direct kernels (firmware/kernels/*/linear.c, conv.c) loop over the real output rows / channels
``r0..r1`` only — a layer with 10 outputs and block 16 computes 10 rows, not 16 — so the estimate must not
charge the padding of the last block row (it did, and picked FFT for 10-output layers that measured cheaper
on the direct path)."""

import math

import pytest

from batteryless.artifact import load_artifact, propagate_shapes
from batteryless.boards import load_board
from batteryless.codegen.costs import CostModel, cost_model
from batteryless.codegen.plan import build_plan, choose_path, layer_cost

FEATURES = ("macs", "butterflies", "elements", "calls")


def unit(feature: str) -> CostModel:
    """A cost model charging 1 per ``feature`` and nothing else: its cycles are that feature's count."""
    coef = {f"cycles_per_{f[:-1] if f != 'butterflies' else 'butterfly'}": 0.0 for f in FEATURES}
    coef[f"cycles_per_{'butterfly' if feature == 'butterflies' else feature[:-1]}"] = 1.0
    return CostModel("t", "ref", **coef, commit_cycles=0, joules_per_cycle=0.0, source="test")


def features(layer, s_in, s_out, path) -> dict[str, float]:
    return {f: layer_cost(layer, s_in, s_out, path, unit(f)) for f in FEATURES}


def circ_linear_macs(rows: int, cols: int, k: int) -> int:
    """Multiply-adds of bl_linear_circ_* (ref linear.c): for r in rows, for j in q blocks, for cc in k."""
    n = 0
    for _r in range(rows):
        for _j in range(math.ceil(cols / k)):
            n += k
    return n


@pytest.mark.parametrize("rows,cols,k", [(10, 64, 16), (10, 64, 8), (10, 256, 8), (17, 40, 8), (16, 64, 16)])
def test_direct_linear_estimate_counts_only_real_rows(rows, cols, k):
    layer = dict(op="linear", in_features=cols, out_features=rows, block=k)
    f = features(layer, (1, cols), (1, rows), "direct")
    assert f["macs"] == circ_linear_macs(rows, cols, k)
    assert f["calls"] == len(range(0, rows, k))  # one task per block row, the last one partial
    assert f["butterflies"] == f["elements"] == 0


def test_direct_conv_estimate_counts_only_real_channels():
    # 12 output channels, block 8: the second block row has 4 channels, not 8
    layer = dict(op="conv2d", in_channels=8, out_channels=12, block=8, kernel_size=[3, 3])
    f = features(layer, (1, 8, 5, 5), (1, 12, 5, 5), "direct")
    assert f["macs"] == 12 * 8 * 9 * 25  # channels × (q·k inputs) × taps × output positions
    assert f["calls"] == 2


def test_layer_estimate_equals_the_schedule_tasks(artifacts):
    """The chooser's estimate of a path = the features of the tasks codegen emits on that path."""
    board = load_board("mps2-an386")
    checked = 0
    for label in ("mlp", "cnn"):
        art = load_artifact(artifacts[label])
        shapes = propagate_shapes(art.layers, art.input_shape)
        for path in ("direct", "fft"):
            plan = build_plan(art, board, "ref", path, cost_model(board, "ref"))
            for li, layer in enumerate(art.layers):
                if layer["op"] not in ("linear", "conv1d", "conv2d") or layer["block"] == 1:
                    continue
                tasks = [t for t in plan.tasks if t.layer == layer["name"]]
                want = {
                    "macs": sum(t.macs for t in tasks),
                    "butterflies": sum(t.butterflies for t in tasks),
                    "elements": sum(t.elements for t in tasks),
                    "calls": len(tasks),
                }
                got = features(layer, shapes[li], shapes[li + 1], path)
                assert got == want, (label, layer["name"], path)
                checked += 1
    assert checked >= 6  # mlp fc1..fc3 and cnn conv2, fc1, on both paths


# Measured per-layer counts on both paths and the fitted tables, from benchmarks/results/cost_fit.json
# (mps2-an386 under QEMU, instructions; msp430fr5994 under mspdebug, MCLK cycles). Layers: digits MLP
# 64-128-64-10, CNN conv2 8→16 ch 3×3 on 4×4, fc1 256→10.
FITTED = {
    "mps2-an386/cmsis": (10.54, 33.16, 5.15, 301.43),
    "mps2-an386/ref": (8.94, 152.44, 5.15, 42.79),
    "msp430fr5994/ref": (210.21, 2877.12, 48.73, 69.53),
}
CASES = [  # target, layer (in, out) or conv, k, measured fft, measured direct
    ("mps2-an386/cmsis", (64, 10), 8, 14730, 9910),
    ("mps2-an386/cmsis", (256, 10), 8, 47393, 37075),
    ("mps2-an386/cmsis", (64, 128), 16, 30090, 76029),
    ("mps2-an386/cmsis", (128, 64), 8, 47422, 101511),
    ("mps2-an386/cmsis", "conv2", 8, 142833, 238790),
    ("mps2-an386/ref", (64, 10), 16, 25020, 11143),
    ("mps2-an386/ref", (64, 128), 16, 74758, 141645),
    ("mps2-an386/ref", "conv2", 8, 177265, 446250),
    ("msp430fr5994/ref", (64, 10), 8, 461587, 169864),
    ("msp430fr5994/ref", (128, 64), 16, 1246202, 1802092),
    ("msp430fr5994/ref", "conv2", 8, 3338818, 10185097),
]


@pytest.mark.parametrize("target,shape,k,meas_fft,meas_direct", CASES)
def test_auto_path_is_the_measured_cheaper_one(target, shape, k, meas_fft, meas_direct):
    mac, bfly, elem, call = FITTED[target]
    table = CostModel("t", "x", mac, bfly, elem, call, commit_cycles=0, joules_per_cycle=0.0, source="fit")
    if shape == "conv2":
        layer = dict(op="conv2d", in_channels=8, out_channels=16, block=k, kernel_size=[3, 3])
        s_in, s_out = (1, 8, 4, 4), (1, 16, 4, 4)
    else:
        layer = dict(op="linear", in_features=shape[0], out_features=shape[1], block=k)
        s_in, s_out = (1, shape[0]), (1, shape[1])
    assert choose_path(layer, s_in, s_out, table, "auto") == ("fft" if meas_fft < meas_direct else "direct")


def test_cmsis_table_picks_the_measured_cheaper_path_on_every_measured_layer():
    """The board's [cost.cmsis] (direct MACs and FFT-path multiplies priced apart) against the per-layer
    counts benchmarks/cost_fit.py measured on both paths: "auto" must pick the cheaper one everywhere."""
    import json
    from pathlib import Path

    fit = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/cost_fit.json").read_text())
    choices = [c for c in fit["path_choices"] if c["target"] == "mps2-an386/cmsis"]
    assert choices
    table = cost_model(load_board("mps2-an386"), "cmsis")
    assert table.cycles_per_fft_mac is not None
    for c in choices:
        assert c["fitted_picks"] == c["measured_cheaper"], c
    # and the table as board.toml holds it (rounded) makes the same choices on the digits layer shapes
    shapes = {"fc1": ((64, 128), 16), "fc2": ((128, 64), 16), "fc3": ((64, 10), 16)}
    for name, ((cin, cout), k) in shapes.items():
        layer = dict(op="linear", in_features=cin, out_features=cout, block=k)
        want = next(c["measured_cheaper"] for c in choices if c["model"] == "mlp-k16" and c["layer"] == name)
        assert choose_path(layer, (1, cin), (1, cout), table, "auto") == want
    conv2 = dict(op="conv2d", in_channels=8, out_channels=16, block=8, kernel_size=[3, 3])
    want = next(c["measured_cheaper"] for c in choices if c["model"] == "cnn-k8" and c["layer"] == "conv2")
    assert choose_path(conv2, (1, 8, 4, 4), (1, 16, 4, 4), table, "auto") == want
