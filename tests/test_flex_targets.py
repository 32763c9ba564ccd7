"""FLEX inside the cross-compiled firmware: QEMU Cortex-M4 (plugin resets at instruction counts, NOLOAD NVM
kept) — sweep every K-th instruction, hundreds of random multi-cut schedules, corrupted state, the broken
variant caught — and a few mspdebug MSP430 schedules."""

from __future__ import annotations

import shutil

import pytest

from batteryless.artifact import load_artifact
from batteryless.datasets import load_dataset
from batteryless.flex import build_flex, fault_bytes, model_input, run_schedule, verify_intermittent
from batteryless.spec import integer_inference

pytestmark = pytest.mark.firmware

QEMU = "mps2-an386"


@pytest.fixture(scope="module")
def mlp(artifacts):
    if not shutil.which("qemu-system-arm"):
        pytest.skip("qemu-system-arm not installed (scripts/setup.sh)")
    return artifacts["mlp"]  # digits MLP, k = 16, 16-bit weights (tests/conftest.py)


@pytest.fixture(scope="module")
def qimg(mlp, tmp_path_factory):
    return build_flex(mlp, QEMU, tmp_path_factory.mktemp("qflex"), faults=True)


def spec_logits(artifact, sample, paths):
    x = load_dataset("digits").x_test[sample : sample + 1]
    return integer_inference(load_artifact(artifact), x, paths)[0].tolist()


@pytest.mark.slow
def test_qemu_sweep_every_kth_instruction(mlp, qimg):
    inp = model_input(mlp, 0)
    rep = verify_intermittent(None, QEMU, image=qimg, inputs=inp, sweep=True, every=1009)
    assert rep.reference == spec_logits(mlp, 0, qimg.paths)  # the continuous run itself against the spec
    assert rep.schedules >= rep.continuous_count // 1009 - 1 and rep.reboots == rep.schedules
    assert rep.passed, [(f.cuts, f.logits, f.error) for f in rep.failures[:5]]


@pytest.mark.slow
def test_qemu_hundreds_of_random_schedules(mlp, qimg):
    rep = verify_intermittent(None, QEMU, image=qimg, inputs=model_input(mlp, 8), random=200, seed=3)
    assert rep.schedules == 200 and rep.reboots >= 400
    assert rep.passed, [(f.cuts, f.logits, f.error) for f in rep.failures[:5]]


def test_qemu_corrupt_and_torn_records_are_caught(mlp, qimg):
    inp = model_input(mlp, 9)
    ref = spec_logits(mlp, 9, qimg.paths)
    cont = run_schedule(qimg, QEMU, inp, [], ref)
    cut = cont.instructions // 2
    for kind, value in ((1, 0x10), (2, 3), (3, 1)):
        seen = []
        for slot in (0, 1):
            arg = slot * 16 + 8 if kind == 1 else slot  # kind 1: flip a bit of next_task
            r = run_schedule(qimg, QEMU, inp + fault_bytes([(2, arg, kind, value)]), [cut], ref)
            assert r.correct and r.reboots == 1, (kind, slot, r)
            seen.append(r.corrupt)
        assert sorted(seen) == [0, 1], (kind, seen)
    r = run_schedule(qimg, QEMU, inp + fault_bytes([(2, 32, 1, 0x01)]), [cut], ref)  # the pointer word
    assert r.correct and r.corrupt == 1


def test_broken_early_advance_is_caught_by_qemu_harness(mlp, tmp_path):
    img = build_flex(mlp, QEMU, tmp_path, broken="early-advance")
    rep = verify_intermittent(None, QEMU, image=img, inputs=model_input(mlp, 0), sweep=True, every=4001)
    assert not rep.passed and len(rep.failures) >= 3


@pytest.mark.slow
def test_mspdebug_schedules(mlp, tmp_path):
    if not shutil.which("mspdebug"):
        pytest.skip("mspdebug not installed")
    img = build_flex(mlp, "msp430fr5994", tmp_path)
    inp = model_input(mlp, 2)
    ref = spec_logits(mlp, 2, img.paths)
    cont = run_schedule(img, "msp430fr5994", inp, [], ref)
    assert cont.correct
    n = cont.instructions
    for cuts in ([n // 3], [n // 5, n // 2], [n // 7, n // 7 + 997, n // 2]):
        r = run_schedule(img, "msp430fr5994", inp, cuts, ref)
        assert r.correct and r.reboots == len(cuts) and r.task_runs > img.num_tasks, (cuts, r)


@pytest.mark.slow
def test_broken_early_advance_is_caught_by_mspdebug_harness(mlp, tmp_path):
    if not shutil.which("mspdebug"):
        pytest.skip("mspdebug not installed")
    img = build_flex(mlp, "msp430fr5994", tmp_path, broken="early-advance")
    inp = model_input(mlp, 2)
    ref = spec_logits(mlp, 2, img.paths)
    cont = run_schedule(img, "msp430fr5994", inp, [], ref)
    assert cont.correct  # broken only under power failures
    n = cont.instructions
    wrong = [not run_schedule(img, "msp430fr5994", inp, [n * k // 7], ref).correct for k in (2, 3, 5)]
    assert sum(wrong) >= 2, wrong


@pytest.mark.slow
def test_qemu_layer_and_jit_policies_under_random_cuts(mlp, tmp_path):
    for policy, vlow in (("layer", 0), ("jit", 4)):
        img = build_flex(mlp, QEMU, tmp_path / policy, policy=policy, vlow_period=vlow)
        rep = verify_intermittent(None, QEMU, image=img, inputs=model_input(mlp, 4), random=30, seed=9)
        assert rep.reference == spec_logits(mlp, 4, img.paths)
        assert rep.passed and rep.reboots >= 30, (policy, [(f.cuts, f.logits) for f in rep.failures[:3]])
