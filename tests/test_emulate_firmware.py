"""Firmware-level emulation (issue 5): the flex app's continuous-inference mode under power cuts, and
``emulate_firmware`` (trace → power-on periods → instruction budgets → one emulator run with all the cuts)
against the numeric spec and against the schedule level on the same trace."""

from __future__ import annotations

import pytest

from batteryless.artifact import load_artifact
from batteryless.datasets import load_dataset
from batteryless.firmware import run
from batteryless.flex import build_flex, continuous_input, model_input, parse_continuous
from batteryless.spec import integer_inference

pytestmark = pytest.mark.firmware

SAMPLES = (0, 7)


@pytest.fixture(scope="module")
def mlp(artifacts):
    return artifacts["mlp"]  # digits MLP, k = 16, 16-bit weights (tests/conftest.py)


def spec_logits(artifact, samples, paths) -> list[list[int]]:
    """The numeric spec's integer logits per sample (independent of the firmware)."""
    x = load_dataset("digits").x_test[list(samples)]
    return integer_inference(load_artifact(artifact), x, paths).tolist()


@pytest.fixture(scope="module")
def host_images(mlp, tmp_path_factory):
    d = tmp_path_factory.mktemp("contbuild")
    return {
        broken: build_flex(mlp, "host", d / broken, broken=broken, continuous=True)
        for broken in ("none", "early-advance")
    }


def _host_outcome(img, inp, cut):
    out = run(img.image, "host", inputs=inp, cuts=[cut] if cut else []).output
    return parse_continuous(out, img.output_len)


def test_host_continuous_run_matches_spec_per_sample(mlp, host_images):
    img = host_images["none"]
    ref = spec_logits(mlp, SAMPLES, img.paths)
    inp = continuous_input([model_input(mlp, s) for s in SAMPLES], inferences=5)
    res = _host_outcome(img, inp, 0)
    assert sorted(res.inferences) == [0, 1, 2, 3, 4]
    for i, (boot, logits) in res.inferences.items():
        assert boot == 1 and logits == ref[i % len(SAMPLES)], i
    assert res.final_commits == 5 * (img.num_tasks + 1)  # one commit per task plus one per input load
    assert res.task_runs == 5 * img.num_tasks and res.garbled == 0


def _sweep(img, ref, n_inf):
    """One cut at every mark of a continuous n_inf-inference run (host builds mark every NVM word the
    commit protocol writes, every task boundary, the input load and the finished-inference point)."""
    inp = continuous_input([model_input_cache[s] for s in SAMPLES], inferences=n_inf)
    total = _host_outcome(img, inp, 0).marks
    assert total and total > n_inf * img.num_tasks
    bad = []
    for k in range(1, total + 1):
        res = _host_outcome(img, inp, k)
        got = {i: logits for i, (_, logits) in res.inferences.items()}
        want = {i: ref[i % len(SAMPLES)] for i in range(n_inf)}
        boots = [b["boot"] for b in res.boots]
        # cut at mark 1 (the boot mark, before the boot counter is incremented): that boot is not counted
        if got != want or boots != ([1] if k == 1 else [1, 2]) or res.garbled:
            bad.append((k, sorted(got), boots))
    return total, bad


model_input_cache: dict[int, bytes] = {}


def test_host_exhaustive_single_cut_sweep_over_three_inferences(mlp, host_images):
    img = host_images["none"]
    model_input_cache.update({s: model_input(mlp, s) for s in SAMPLES})
    ref = spec_logits(mlp, SAMPLES, img.paths)
    total, bad = _sweep(img, ref, 3)
    assert total > 3 * 3 * img.num_tasks  # task marks + record words + flips
    assert not bad, bad[:5]


def test_host_sweep_catches_broken_early_advance(mlp, host_images):
    img = host_images["early-advance"]
    model_input_cache.update({s: model_input(mlp, s) for s in SAMPLES})
    ref = spec_logits(mlp, SAMPLES, img.paths)
    _, bad = _sweep(img, ref, 2)
    assert len(bad) >= 3
