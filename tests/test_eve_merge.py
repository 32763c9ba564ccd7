"""Fewer, larger tasks (codegen/plan.py merge_tasks): with ``auto`` granularity an EVE image's small tasks of
one layer and kind run as one task of at most a sixteenth of a power-on period. The reference is the same
artifact generated with ``--granularity coarse`` (an EVE image's default tasks, never merged): every merged
task is a run of consecutive coarse tasks of one layer and kind, with their summed estimate and NVM writes.
That the merged image still runs every mode bit for bit, under FLEX cuts too, is tests/test_eve_exec.py's
(its images use ``auto``: the FR5994 ``lea`` / host cross images and the host FLEX random-cut test)."""

import math
import re

import numpy as np
import pytest

from batteryless.artifact import load_artifact, save_artifact
from batteryless.boards import load_board
from batteryless.codegen import codegen
from batteryless.codegen.costs import cost_model
from batteryless.codegen.plan import MERGE_PERIOD_FRACTION, build_plan, task_cycles
from batteryless.eve.modes import set_modes
from batteryless.firmware import build, run_dataset
from batteryless.spec import integer_inference


@pytest.fixture(scope="module")
def mlp_ladder(artifacts, tmp_path_factory):
    art = load_artifact(artifacts["mlp"])
    set_modes(art, [1.0, 1.0, 1.0], layer_width={"fc1": [1.0, 0.5, 0.25], "fc2": [1.0, 0.5, 0.25]})
    return save_artifact(art, tmp_path_factory.mktemp("merge") / "mlpl3.bl")


def _tasks(res, mode=0):
    return res.schedule["modes"][mode]["tasks"]


@pytest.mark.parametrize("backend", ["lea", "ref"])
def test_merged_tasks_are_runs_of_the_default_tasks(mlp_ladder, tmp_path, backend):
    auto = codegen(mlp_ladder, "msp430fr5994", tmp_path / "auto", backend=backend, buffers_in="nvm")
    kw = dict(backend=backend, buffers_in="nvm")
    coarse = codegen(mlp_ladder, "msp430fr5994", tmp_path / "coarse", granularity="coarse", **kw)
    costs = cost_model(load_board("msp430fr5994"), backend)
    gran = auto.schedule["granularity"]
    assert gran["mode"] == "coarse" and gran["power_on_cycles"]
    cap = MERGE_PERIOD_FRACTION * (gran["power_on_cycles"] - (gran.get("boot_cycles") or 0))
    for mi in range(3):
        merged, parts = _tasks(auto, mi), _tasks(coarse, mi)
        assert len(merged) < len(parts)  # the FFT input transforms of fc1 at least merge
        i = 0
        for t in merged:
            if ".." not in t["name"]:
                assert t["name"] == parts[i]["name"] and t["cycles"] == parts[i]["cycles"]
                i += 1
                continue
            first, last = t["name"].split("..")
            run = [parts[i]]
            while run[-1]["name"].split(".", 1)[1] != last:
                run.append(parts[i + len(run)])
            assert run[0]["name"] == first
            assert {p["layer"] for p in run} == {t["layer"]} and {p["kind"] for p in run} == {t["kind"]}
            assert len(run) >= 2
            assert t["nvm_write_bytes"] == sum(p["nvm_write_bytes"] for p in run)
            if mi == 0:
                # the estimate is linear in the features: the parts' sum, with one call, as mode 0 runs every
                # block of the ladder as stored and so makes one range call over the parts (merge_tasks)
                saved = (len(run) - 1) * costs.cycles_per_call
                want = sum(p["cycles"] for p in run) - saved
                assert t["cycles"] == pytest.approx(want, rel=1e-6, abs=len(run))
                assert t["cycles"] <= cap + 1
            i += len(run)
        assert i == len(parts)


def test_images_without_modes_merge_a_layers_tasks_into_range_calls(artifacts, tmp_path):
    """Without modes a merged task is ONE kernel call over its parts' span (plan.Task.range_fmt), not a
    chain: coarse merges a layer's input transforms into one task and its block rows into another; a task
    budget (a number) caps every merged task's estimate, which counts one call."""
    art = load_artifact(artifacts["mlp"])
    kw = dict(backend="lea", path="fft", buffers_in="nvm")
    coarse = codegen(artifacts["mlp"], "msp430fr5994", tmp_path / "c", granularity="coarse", **kw)
    tasks = _tasks(coarse)
    layers = [ly for ly in art.layers if ly.get("op") == "linear"]
    assert len(tasks) == 2 * len(layers)  # per FFT layer: its transforms, its block rows
    model_c = (tmp_path / "c" / "model.c").read_text()
    for ly in layers:
        k = ly["block"]
        q, p = -(-ly["in_features"] // k), -(-ly["out_features"] // k)
        ins = re.findall(
            rf"bl_linear_fft_input_q15\(\w+, {ly['in_features']}u, &fft{k}, bl_xs, (\d+)u, (\d+)u", model_c
        )
        blocks = re.findall(
            rf"bl_linear_fft_block_\w*q15\(bl_xs, {ly['in_features']}u, {ly['name']}_spectra, .*?, "
            rf"{ly['out_features']}u, (\d+)u, (\d+)u, bl_work\)",
            model_c,
        )
        assert ("0", str(q)) in ins and ("0", str(p)) in blocks, ly["name"]
    # the unmerged tasks (the planner's units) and a budget of the largest one plus a bit: coarse still (every
    # unit fits), so the budget caps every merged task, and more tasks than coarse remain
    b = load_board("msp430fr5994")
    costs = cost_model(b, "lea")
    units = [task_cycles(t, costs) for t in build_plan(art, b, "lea", "fft", costs).tasks]
    budget = 1.5 * max(units)
    capped = _tasks(codegen(artifacts["mlp"], "msp430fr5994", tmp_path / "b", granularity=budget, **kw))
    assert len(tasks) < len(capped) < len(units)
    assert all(t["cycles"] <= budget + 1 for t in capped)
    # the estimate of a range call counts one call: at most its parts' sum (rounded per task)
    assert sum(t["cycles"] for t in tasks) <= sum(units) + len(tasks)


# one FFT block-row call of fc1: its block rows [i0, i1)
FC1_BLOCKS = re.compile(
    r"bl_linear_fft_block_q15\(bl_xs, \d+u, fc1_spectra, [^()]*, (\d+)u, (\d+)u, bl_work\)"
)


def _task_c(src: str, name: str) -> str:
    """The C expression task ``name`` returns in the generated dispatch (model.c: one case per task)."""
    m = re.search(rf"/\* {re.escape(name)} \*/\n\s*return (.*);\n", src)
    assert m, name
    return m.group(1)


def test_merged_eve_task_makes_one_range_call_in_a_mode_using_every_block(mlp_ladder, digits, tmp_path):
    """The width ladder's mode 0 runs fc1 as stored and mode 1 keeps only its first half of the rows: the
    merged task over fc1's block rows is one range call over every row in mode 0, and the parts' chain
    (each row's call, the dropped rows zeroed) in the others; fc1's input transforms, read whole in every
    mode, are one range call in all. Each mode's image equals the spec on the whole test set."""
    art = load_artifact(mlp_ladder)
    fc1 = next(la for la in art.weight_layers() if la["name"] == "fc1")
    p, q = math.ceil(fc1["out_features"] / fc1["block"]), math.ceil(fc1["in_features"] / fc1["block"])
    gen = tmp_path / "gen"
    res = codegen(mlp_ladder, "host", gen, backend="ref", path="fft")
    names = [t["name"] for t in res.schedule["modes"][0]["tasks"]]
    block_task, input_task = f"fc1.block0..block{p - 1}", f"fc1.fft_in0..fft_in{q - 1}"
    assert {block_task, input_task} <= set(names), names  # the precondition: auto merged fc1's tasks
    src = (gen / "model.c").read_text()
    expr = _task_c(src, block_task)
    whole = FC1_BLOCKS.search(expr)
    assert whole and expr.startswith(f"(bl_mode == 0u) ? {whole.group(0)} : ("), expr[:200]
    assert [tuple(map(int, r)) for r in FC1_BLOCKS.findall(expr)] == [(0, p)] + [(i, i + 1) for i in range(p)]
    assert "bl_eve_zero(" in expr  # mode 1 zeroes the rows it drops, in the chain
    one_input = rf"bl_linear_fft_input_q15\(\w+, [^()]*, 0u, {q}u, bl_work\)"
    assert re.fullmatch(one_input, _task_c(src, input_task))
    outs = []
    for mi in range(3):
        img = build(
            "host", gen, "ref", out_dir=tmp_path / f"b{mi}", defines={"BL_MODEL_START_MODE": mi}
        ).image
        run = run_dataset(img, "host", mlp_ladder, "digits", count=len(digits.x_test))
        ref = integer_inference(art, digits.x_test, res.paths, mode=mi)
        assert np.array_equal(np.array(run.logits), ref), mi
        outs.append(ref)
    assert not np.array_equal(outs[0], outs[1])  # mode 1 really runs differently
