"""Fused requantise + ReLU (codegen/fusion.py, the cmsis kernels' ``_relu_`` entry points): on a backend that
declares the capability, a weight layer followed by a ReLU becomes one task whose kernel clamps at 0 in its
requantisation, and the ReLU task disappears from the schedule; backends without it (ref) keep the ReLU
task, and so does the fine path's bl_mac_step. The fused images' logits are compared with the numeric spec
(an independent numpy implementation that applies the ReLU as its own max(0, y) step) on digits samples, on
QEMU's Cortex-M4 (DSP extension: USAT) and Cortex-M55 (Helium: VMAX before the saturating narrow). The
per-layer comparison of the fused kernels on every code path (int8 / int16, dense / circulant, both cores)
is in test_kernels_cmsis.py's odd-geometry tests, whose ReLUs are now fused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from batteryless.artifact import load_artifact
from batteryless.codegen import codegen
from batteryless.firmware import build, run_dataset
from batteryless.spec import integer_inference_q, quantize_input


def _schedule(out):
    return json.loads((out / "schedule.json").read_text())


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_cmsis_schedule_has_no_relu_task_ref_keeps_them(artifacts, tmp_path, model):
    art = load_artifact(artifacts[model])
    relus = [la["name"] for la in art.layers if la["op"] == "relu"]
    assert relus
    codegen(artifacts[model], "mps2-an386", tmp_path / "cmsis", backend="cmsis", path="direct")
    codegen(artifacts[model], "mps2-an386", tmp_path / "ref", backend="ref", path="direct")
    fused, ref = _schedule(tmp_path / "cmsis"), _schedule(tmp_path / "ref")
    kinds = [t["kind"] for t in fused["modes"][0]["tasks"]]
    assert "relu" not in kinds
    by_name = {la["name"]: la for la in fused["layers"]}
    for r in relus:
        w = by_name[r]["fused_into"]
        assert by_name[w]["fused_relu"] == r
        names = [t["name"] for t in fused["modes"][0]["tasks"] if t["layer"] == w]
        assert names and all(n.endswith(f"+{r}") for n in names)
    # ref: one ReLU task per ReLU layer, the same weight-layer tasks otherwise (the cmsis linear kernel runs
    # a circulant layer in one call, so compare the layers that have tasks, not the task count)
    assert [t["layer"] for t in ref["modes"][0]["tasks"] if t["kind"] == "relu"] == relus
    assert {t["layer"] for t in ref["modes"][0]["tasks"]} - set(relus) == {
        t["layer"] for t in fused["modes"][0]["tasks"]
    }
    c = (tmp_path / "cmsis" / "model.c").read_text()
    assert "_relu_w" in c and "bl_relu_q15(" not in c
    assert "_relu_w" not in (tmp_path / "ref" / "model.c").read_text()


def test_fine_steps_keep_the_relu_task(artifacts, tmp_path):
    """bl_mac_step layers (fine granularity) have no fused variant: their ReLU stays a task."""
    codegen(artifacts["mlp"], "mps2-an386", tmp_path / "g", backend="cmsis", path="direct", granularity=3000)
    s = _schedule(tmp_path / "g")
    tasks = s["modes"][0]["tasks"]
    stepped = {t["layer"] for t in tasks if t["kind"] == "mac_step"}
    assert stepped, "granularity 3000 should cut the MLP's first layer into steps"
    layers = s["layers"]
    checked = 0
    for prev, la in zip(layers, layers[1:], strict=False):
        if la["op"] == "relu" and prev["name"] in stepped:
            assert "fused_into" not in la and "fused_relu" not in prev
            assert any(t["layer"] == la["name"] and t["kind"] == "relu" for t in tasks)
            checked += 1
    assert checked


@pytest.mark.firmware
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_fused_image_logits_equal_spec(artifacts, digits, tmp_path, board, model):
    if not shutil.which("qemu-system-arm"):
        pytest.skip("qemu-system-arm not installed (scripts/setup.sh)")
    res = codegen(artifacts[model], board, tmp_path / "gen", backend="cmsis", path="direct")
    assert "relu" not in [t["kind"] for t in _schedule(tmp_path / "gen")["modes"][0]["tasks"]]
    img = build(board, tmp_path / "gen", "cmsis", out_dir=tmp_path / "b").image
    start, n = 100, 24
    run = run_dataset(img, board, artifacts[model], "digits", count=n, start=start)
    art = load_artifact(artifacts[model])
    ref = integer_inference_q(art, quantize_input(art, digits.x_test[start : start + n]), res.paths)
    assert np.array_equal(np.array(run.logits, dtype=np.int64), ref)
