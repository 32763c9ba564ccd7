"""FLEX on the host build: continuous run vs the numeric spec, exhaustive single-cut sweep over every mark
(every task boundary and every NVM word the commit protocol writes), thousands of random multi-cut
schedules, cuts during recovery, corrupted / torn / impossible commit records, and the deliberately broken
variants that the same checks must catch."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batteryless.artifact import load_artifact
from batteryless.datasets import load_dataset
from batteryless.flex import build_flex, fault_bytes, model_input, run_schedule, verify_intermittent
from batteryless.spec import integer_inference

pytestmark = pytest.mark.firmware

REC_SIZE = 16  # bl_flex_record: u32 version, u32 inference, u16 next_task, u16 num_tasks, u32 crc
ACTIVE_OFF = 2 * REC_SIZE


@pytest.fixture(scope="module")
def mlp(artifacts):
    return artifacts["mlp"]  # digits MLP, k = 16, 16-bit weights (tests/conftest.py)


@pytest.fixture(scope="module")
def images(mlp, tmp_path_factory):
    d = tmp_path_factory.mktemp("flexbuild")
    cache = {}

    def get(policy="flex", broken="none", faults=False, vlow=0):
        key = (policy, broken, faults, vlow)
        if key not in cache:
            name = f"{policy}-{broken}-{int(faults)}-{vlow}"
            cache[key] = build_flex(mlp, "host", d / name, policy, broken, faults=faults, vlow_period=vlow)
        return cache[key]

    return get


def spec_logits(artifact, sample: int, paths) -> list[int]:
    ds = load_dataset("digits")
    art = load_artifact(artifact)
    return integer_inference(art, ds.x_test[sample : sample + 1], paths)[0].tolist()


@pytest.mark.parametrize("policy", ["flex", "layer", "restart", "jit"])
def test_continuous_run_matches_numeric_spec(mlp, images, policy):
    img = images(policy)
    for sample in (0, 7):
        r = run_schedule(img, "host", model_input(mlp, sample), [])
        assert r.error is None and r.reboots == 0
        assert r.logits == spec_logits(mlp, sample, img.paths), policy
        assert r.task_runs == img.num_tasks


def test_exhaustive_single_cut_sweep_passes(mlp, images):
    img = images("flex")
    rep = verify_intermittent(None, "host", image=img, inputs=model_input(mlp, 3), sweep=True)
    # every mark is a cut point: per task its start mark and the commit's 3 word marks, record and flip marks
    assert rep.continuous_count >= 6 * img.num_tasks
    assert rep.schedules == rep.continuous_count == rep.reboots
    assert rep.passed, [(f.cuts, f.logits) for f in rep.failures[:5]]
    # a cut between two commits re-executes at most the one task in flight
    assert rep.reexecuted_tasks <= rep.reboots


@pytest.mark.slow
def test_thousands_of_random_multi_cut_schedules_pass(mlp, images):
    rep = verify_intermittent(
        None, "host", image=images("flex"), inputs=model_input(mlp, 5), random=2000, seed=1
    )
    assert rep.schedules == 2000 and rep.reboots >= 2000
    assert rep.passed, [(f.cuts, f.logits) for f in rep.failures[:5]]


@pytest.mark.parametrize("policy", ["layer", "restart", "jit"])
def test_baseline_policies_survive_sweep_and_random_cuts(mlp, images, policy):
    img = images(policy, vlow=3 if policy == "jit" else 0)
    inp = model_input(mlp, 2)
    rep = verify_intermittent(None, "host", image=img, inputs=inp, sweep=True, random=300, seed=2)
    assert rep.passed, [(f.cuts, f.logits) for f in rep.failures[:5]]
    assert rep.reboots > 0 and rep.reexecuted_tasks > 0


def test_coarser_policies_re_execute_more(mlp, images):
    inp = model_input(mlp, 2)
    per = {}
    for policy in ("flex", "layer", "restart"):
        rep = verify_intermittent(None, "host", image=images(policy), inputs=inp, random=200, seed=4)
        assert rep.passed
        per[policy] = rep.reexecuted_tasks
    assert per["flex"] < per["layer"] < per["restart"]


def marks_per_boot(img, inp) -> int:
    """The marks of an uncut boot (cut at mark m happens iff m <= this): where a "mid-inference" cut can
    land. The count follows the image's tasks (codegen merges a layer's units into one task), so the tests
    place their cuts as shares of it rather than at fixed mark numbers."""
    lo, hi = 1, 1
    while run_schedule(img, "host", inp, [hi]).reboots == 1:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # run_schedule(.., [lo]) cuts, [hi] does not
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if run_schedule(img, "host", inp, [mid]).reboots == 1 else (lo, mid)
    return lo


def test_power_failures_during_recovery_are_survived(mlp, images):
    img = images("flex")
    inp = model_input(mlp, 1)
    ref = spec_logits(mlp, 1, img.paths)
    n = marks_per_boot(img, inp)
    assert n >= 20  # boot, input load, tasks and their commits
    # cut mid-inference, then cut the next boots at their first marks (boot, first task, inside the first
    # commit) again and again: recovery must not lose or corrupt anything
    for first in (n * 2 // 5, n * 4 // 5, n - 2):
        r = run_schedule(img, "host", inp, [first, 1, 1, 2, 1, 3, 2, 4, 5, 1], ref)
        assert r.correct and r.reboots == 10, (first, r)


@pytest.mark.parametrize("share", [0.7])
def test_bit_flips_in_commit_state_are_caught_and_result_stays_right(mlp, images, share):
    """Flip every bit of both records after a mid-inference cut: the flipped record is the committed one in
    exactly one of the two slots, and exactly that flip must be detected (corrupt = 1, inference restarted);
    the inactive record is never read. Flips of the pointer word are always detected. Every run ends
    bit-exact."""
    img = images("flex", faults=True)
    inp = model_input(mlp, 4)
    ref = spec_logits(mlp, 4, img.paths)
    cut = int(share * marks_per_boot(img, inp))  # mid-inference, after commits
    for byte in range(REC_SIZE):
        for bit in range(8):
            seen = []
            for slot in (0, 1):
                f = fault_bytes([(2, slot * REC_SIZE + byte, 1, 1 << bit)])
                r = run_schedule(img, "host", inp + f, [cut], ref)
                assert r.correct, (byte, bit, slot, r)
                seen.append(r.corrupt)
            assert sorted(seen) == [0, 1], (byte, bit, seen)
    for byte in (ACTIVE_OFF, ACTIVE_OFF + 1):
        for bit in range(8):
            r = run_schedule(img, "host", inp + fault_bytes([(2, byte, 1, 1 << bit)]), [cut], ref)
            assert r.correct and r.corrupt == 1, (byte, bit, r)


@pytest.mark.parametrize("kind", [2, 3])
def test_torn_and_impossible_records_are_caught(mlp, images, kind):
    """kind 2: half of a forged newer record written over a slot (a torn write); kind 3: a complete record
    with a valid CRC but next_task beyond the last task. Detected exactly when it lands on the committed
    slot; never a wrong answer."""
    img = images("flex", faults=True)
    inp = model_input(mlp, 6)
    ref = spec_logits(mlp, 6, img.paths)
    n = marks_per_boot(img, inp)
    for cut in (10, n * 3 // 5, n - 1):
        seen = []
        for slot in (0, 1):
            r = run_schedule(img, "host", inp + fault_bytes([(2, slot, kind, 5)]), [cut], ref)
            assert r.correct, (cut, slot, r)
            seen.append(r.corrupt)
        assert sorted(seen) == [0, 1], (cut, seen)


def test_broken_early_advance_is_caught_by_host_harness(mlp, images):
    rep = verify_intermittent(
        None, "host", image=images("flex", "early-advance"), inputs=model_input(mlp, 3), sweep=True
    )
    assert not rep.passed and len(rep.failures) >= 5


def test_broken_recovery_that_trusts_records_is_caught_by_corruption_test(mlp, images):
    img = images("flex", "trust-record", faults=True)
    inp = model_input(mlp, 6)
    ref = spec_logits(mlp, 6, img.paths)
    wrong = 0
    for slot in (0, 1):
        r = run_schedule(img, "host", inp + fault_bytes([(2, slot, 3, 5)]), [33], ref)
        wrong += not r.correct
    assert wrong >= 1


def test_commit_records_in_nvm_match_an_independent_crc32_and_layout(mlp, images, tmp_path):
    """Read the host NVM file after a finished inference: the pointer names the record with next_task ==
    num_tasks, the other record holds the commit before it, and each CRC equals zlib's CRC-32."""
    import os
    import struct
    import subprocess
    import zlib

    from elftools.elf.elffile import ELFFile

    from batteryless.firmware import patch_input
    from batteryless.firmware.image import symbol

    img = images("flex")
    exe = tmp_path / "fw.elf"
    patch_input(img.image, model_input(mlp, 0), exe)
    nvm = tmp_path / "nvm.bin"
    proc = subprocess.run([str(exe)], env={**os.environ, "BL_NVM_FILE": str(nvm)}, capture_output=True)
    assert proc.returncode == 0
    with open(exe, "rb") as fh:
        sec = ELFFile(fh).get_section_by_name("bl_nvm")
        base = sec["sh_addr"]
    off = symbol(exe, "bl_flex").address - base
    raw = nvm.read_bytes()[off : off + ACTIVE_OFF + 2]
    recs = [struct.unpack("<IIHHI", raw[i * REC_SIZE : (i + 1) * REC_SIZE]) for i in (0, 1)]
    (active,) = struct.unpack("<H", raw[ACTIVE_OFF : ACTIVE_OFF + 2])
    assert active in (0x3CA5, 0xC35A)
    slot = 0 if active == 0x3CA5 else 1
    for i, (version, _inference, _nt, ntasks, crc) in enumerate(recs):
        assert crc == zlib.crc32(raw[i * REC_SIZE : i * REC_SIZE + 12]), i
        assert ntasks == img.num_tasks and version > 0
    cur, prev = recs[slot], recs[1 - slot]
    assert cur[2] == img.num_tasks and prev[2] == img.num_tasks - 1  # flex: one commit per task
    assert cur[0] == prev[0] + 1 == img.num_tasks  # versions: one per task (input-load chunks are tasks)
    assert cur[1] == prev[1] == 1  # one inference


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=12))
def test_any_schedule_of_mark_cuts_gives_the_continuous_answer(mlp, images, cuts):
    img = images("flex")
    r = run_schedule(img, "host", model_input(mlp, 11), cuts, spec_logits(mlp, 11, img.paths))
    assert r.correct, (cuts, r)


def test_cli_flex_verify_pass_fail_and_usage(mlp, tmp_path, capsys):
    import json

    from batteryless.cli import main

    base = ["-q", "flex-verify", "--board", "host", "--artifact", str(mlp)]
    assert main([*base, "--random", "30", "--json", "--out", str(tmp_path / "ok")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["passed"] and rep["schedules"] == 30 and rep["policy"] == "flex"
    assert main([*base, "--sweep", "--broken", "early-advance", "--out", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert "VIOLATED logits: cuts" in out and "FAIL:" in out and "violate logits" in out  # names the check
    assert main(base) != 0
    assert "--random N" in capsys.readouterr().err
