"""Mutation tests of the FLEX commit protocol (issue 13): deliberately broken runtimes that still print the
right logits under most schedules must each be caught by the QEMU harness — the exact commit/recovery sweep
(one instruction per translation block, records torn at every store) plus fault schedules — and each test
asserts WHICH check caught it (batteryless.flex.CHECKS). The correct runtime passes the same schedules."""

from __future__ import annotations

import shutil

import pytest

from batteryless.flex import (
    BROKEN,
    CHECKS,
    ScheduleResult,
    build_flex,
    check_schedule,
    model_input,
    verify_intermittent,
)

pytestmark = pytest.mark.firmware

QEMU = "mps2-an386"

# mutant → the check that must catch it, and why (derived from the protocol, not from a run):
MUTANTS = {
    # task t committed before it runs: a cut inside t resumes after it, t's outputs never written
    "early-advance": "logits",
    # `active` flipped to a slot whose record is stale or half-written: a bad CRC is found (or, with the
    # stale record of two commits ago, more than one task is redone)
    "pointer-before-payload": "corrupt",
    # `active` flipped before the CRC: a cut between them leaves a committed record failing its CRC
    "pointer-before-crc": "corrupt",
    # the final commit before the logits are saved: a cut between them prints logits never saved
    "commit-before-output": "logits",
    # no CRC check: a flipped bit in the committed record goes unnoticed
    "recovery-without-crc": "fault-detection",
    # no CRC or bounds check at all
    "trust-record": "fault-detection",
}


@pytest.fixture(scope="module")
def mlp(artifacts):
    if not shutil.which("qemu-system-arm"):
        pytest.skip("qemu-system-arm not installed (scripts/setup.sh)")
    return artifacts["mlp"]


def _verify(mlp, tmp_path, broken):
    img = build_flex(mlp, QEMU, tmp_path, broken=broken, faults=True)
    return verify_intermittent(
        None, QEMU, image=img, inputs=model_input(mlp, 3), sweep_commit=True, faults=True
    )


def test_every_broken_variant_has_an_expected_check():
    assert set(MUTANTS) == set(BROKEN) - {"none"} and set(MUTANTS.values()) <= set(CHECKS)


def test_correct_runtime_passes_the_exact_sweep_and_fault_schedules(mlp, tmp_path):
    rep = _verify(mlp, tmp_path, "none")
    assert rep.passed and not rep.violations, [(f.cuts, f.violated) for f in rep.failures[:5]]
    # the sweep really tore commits: a commit is ~80 instructions on the M4 (word-wise CRC) and every
    # offset is cut at least twice (consecutive calls from power-up, every second call deep in the run)
    assert rep.reboots > 150 and rep.max_lost_tasks == 1
    assert "exact commit/recovery sweep" in rep.mode and "faults" in rep.mode


@pytest.mark.slow
@pytest.mark.parametrize("broken", sorted(MUTANTS))
def test_mutant_is_caught_on_qemu_by_its_check(mlp, tmp_path, broken):
    rep = _verify(mlp, tmp_path, broken)
    assert not rep.passed
    assert MUTANTS[broken] in rep.violations, rep.violations


@pytest.mark.parametrize(
    "kw, want",
    [
        (dict(correct=True, corrupt=0, lost_max=1), []),
        (dict(correct=False, corrupt=0, lost_max=1), ["logits"]),
        (dict(correct=True, corrupt=1, lost_max=1), ["corrupt"]),
        (dict(correct=True, corrupt=1, lost_max=1, baseline=1), []),  # mspdebug's garbage at power-up
        (dict(correct=True, corrupt=0, lost_max=2), ["reexecution"]),
        (dict(correct=True, corrupt=1, lost_max=1, faults=1), []),
        (dict(correct=True, corrupt=0, lost_max=1, faults=1), ["fault-detection"]),
        (dict(correct=True, corrupt=2, lost_max=1, faults=1), ["corrupt"]),
    ],
)
def test_check_schedule_names_the_violated_invariant(kw, want):
    r = ScheduleResult([1], [0], kw["correct"], 1, 10, None, kw["corrupt"])
    r.lost_max = kw["lost_max"]
    assert check_schedule(r, 1, kw.get("baseline", 0), kw.get("faults", 0)) == want == r.violated
