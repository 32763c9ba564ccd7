"""The QEMU plugin's cut/stop/mark machinery (tools/qemu-plugin/bl_insn.c) through batteryless.firmware.run:
thousands of power cuts in one QEMU process (cuts passed in a file, no limit) against a continuous-power run
of the same FLEX image, stop_at, mark selection, and clear errors for malformed cut lists."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess

import pytest

from batteryless.errors import EmulationError, UsageError
from batteryless.firmware import QEMU_STOP_EXIT, build, qemu_plugin, run
from batteryless.flex import build_flex, model_input

pytestmark = pytest.mark.firmware

QEMU = "mps2-an386"
TB_SLACK = 64  # a cut/stop lands at the first translation-block boundary at/after the count: a few insns


@pytest.fixture(scope="module")
def flex(artifacts, tmp_path_factory):
    if not shutil.which("qemu-system-arm"):
        pytest.skip("qemu-system-arm not installed (scripts/setup.sh)")
    img = build_flex(artifacts["mlp"], QEMU, tmp_path_factory.mktemp("qflex-plugin")).image
    inp = model_input(artifacts["mlp"], 0)
    cont = run(img, QEMU, inputs=inp)
    assert cont.exit_code == 0 and "logits" in cont.values
    return img, inp, cont


@pytest.fixture(scope="module")
def resettest(tmp_path_factory):
    if not shutil.which("qemu-system-arm"):
        pytest.skip("qemu-system-arm not installed (scripts/setup.sh)")
    return build(QEMU, backend="ref", app="resettest", out_dir=tmp_path_factory.mktemp("rt")).image


def test_more_than_4096_cuts_in_one_run_bit_exact(flex):
    img, inp, cont = flex
    # 4500 boots too short for any FLEX step (1000 instructions), then boots long enough for the largest
    # step: the inference must finish during the second part with the continuous-power logits.
    cuts = [1000 * (i + 1) for i in range(4500)]
    # the long boots: the largest task's estimate (codegen merges a layer's units into tasks of up to 1/16 of
    # the board's power-on period) and as much again for the boot, recovery and commit
    sched = json.loads((img.parent.parent / "gen" / "schedule.json").read_text())
    long_boot = 2 * int(sched["granularity"]["largest_task_cycles"]) + 5000
    cuts += [cuts[-1] + long_boot * (i + 1) for i in range(60)]
    res = run(img, QEMU, inputs=inp, cuts=cuts, timeout=600)
    assert res.exit_code == 0 and not res.stopped
    assert 4500 < res.resets < len(cuts)  # finished before the cut list ran out
    assert res.values["logits"] == cont.values["logits"]
    assert res.values["task_runs"][0] > cont.values["task_runs"][0]  # work was redone after cuts
    assert len(res.cut_counts) == res.resets
    for want, got in zip(cuts, res.cut_counts, strict=False):
        assert want <= got < want + TB_SLACK
    # every recorded mark hit is there (more than the old fixed 4096) and the per-id totals agree
    assert len(res.marks) == sum(res.mark_hits.values()) > 4096
    again = run(img, QEMU, inputs=inp, cuts=cuts, timeout=600)
    assert (again.count, again.cut_counts, again.output) == (res.count, res.cut_counts, res.output)


def test_stop_at_ends_the_run_with_the_output_so_far(flex):
    img, inp, cont = flex
    stop = cont.count // 2
    res = run(img, QEMU, inputs=inp, stop_at=stop)
    assert res.stopped and res.exit_code == QEMU_STOP_EXIT
    assert stop <= res.count < stop + TB_SLACK
    assert "logits" not in res.values  # the inference had not finished
    # the marks so far are exactly the continuous run's marks before the stop
    assert res.marks == [m for m in cont.marks if m[1] < res.count]
    assert run(img, QEMU, inputs=inp, stop_at=stop).count == res.count  # deterministic
    # with a power cut before the stop; and a stop beyond the end changes nothing
    cut = run(img, QEMU, inputs=inp, cuts=[stop // 2], stop_at=stop)
    assert cut.stopped and cut.resets == 1 and stop <= cut.count < stop + TB_SLACK
    late = run(img, QEMU, inputs=inp, stop_at=cont.count + 10_000)
    assert not late.stopped and late.exit_code == 0 and late.count == cont.count
    assert late.output == cont.output


def test_stop_at_is_checked(flex, resettest):
    img, inp, _ = flex
    for bad in (0, -5, 1.5, True):
        with pytest.raises(UsageError, match="stop_at must be a positive instruction count"):
            run(img, QEMU, inputs=inp, stop_at=bad)


def test_mark_ids_select_recorded_hits(flex):
    img, inp, cont = flex
    assert cont.mark_hits and sum(cont.mark_hits.values()) == len(cont.marks)
    none = run(img, QEMU, inputs=inp, mark_ids=[])
    assert none.marks == [] and none.mark_hits == cont.mark_hits and none.count == cont.count
    some = sorted(k for k in cont.mark_hits if k is not None)[:2]
    sel = run(img, QEMU, inputs=inp, mark_ids=some)
    assert sel.marks == [m for m in cont.marks if m[0] in some]


@pytest.mark.parametrize(
    "cuts",
    [[500, 100], [100, 100], [0, 10], [-3], [10, "20"]],
    ids=["descending", "repeated", "zero", "negative", "not-int"],
)
def test_malformed_cut_list_is_refused(resettest, cuts):
    with pytest.raises(EmulationError, match="strictly ascending instruction counts: cut"):
        run(resettest, QEMU, inputs=struct.pack("<I", 10), cuts=cuts)


@pytest.mark.parametrize(
    ("content", "line"),
    [("100\n200\n150\n", 3), ("100\nabc\n", 2), ("100\n\n200\n", 2), ("0\n", 1), ("10 20\n", 1)],
)
def test_plugin_refuses_malformed_cuts_file(resettest, tmp_path, content, line):
    f = tmp_path / "cuts.txt"
    f.write_text(content)
    proc = subprocess.run(
        ["qemu-system-arm", "-M", QEMU, "-display", "none", "-monitor", "none", "-serial", "none",
         "-plugin", f"{qemu_plugin()},cutsfile={f}", "-kernel", str(resettest)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode != 0
    assert f"cutsfile={f} line {line}: want one positive count per line, strictly ascending" in proc.stderr


def test_plugin_refuses_missing_cuts_file_and_bad_stop(resettest, tmp_path):
    for arg, msg in (
        (f"cutsfile={tmp_path / 'nope.txt'}", "cannot be read"),
        ("stop=12x", "stop= wants an instruction count"),
        ("markids=1:x", "markids= wants"),
    ):
        proc = subprocess.run(
            ["qemu-system-arm", "-M", QEMU, "-display", "none", "-monitor", "none", "-serial", "none",
             "-plugin", f"{qemu_plugin()},{arg}", "-kernel", str(resettest)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert proc.returncode != 0 and msg in proc.stderr, (arg, proc.stderr)


def test_stop_at_needs_qemu():
    with pytest.raises(UsageError, match="stop_at needs an instruction-counting emulator"):
        run(__file__, "host", stop_at=10)


def test_power_cuts_without_image_reload_match_qemus_own_reset(flex):
    img, inp, cont = flex
    # boots of 9,000-20,000 instructions: some finish a task, some do not
    cuts, at = [], 0
    for i in range(40):
        at += 9000 + (i * 7919) % 11000
        cuts.append(at)
    fast = run(img, QEMU, inputs=inp, cuts=cuts)
    slow = run(img, QEMU, inputs=inp, cuts=cuts, reload_image=True)
    assert fast.values["logits"] == cont.values["logits"]
    assert (fast.output, fast.count, fast.cut_counts, fast.marks) == (
        slow.output,
        slow.count,
        slow.cut_counts,
        slow.marks,
    )
    assert fast.resets == slow.resets >= 10
    # QEMU kept its translated code across the cuts instead of translating every boot again
    assert fast.translations < slow.translations


def test_exact_cuts_land_at_their_count_and_trace_finds_a_function(flex):
    """With one instruction per block (exact=True) a cut at N leaves exactly N instructions executed —
    also inside the commit, where a normal block may run up to its end first. ``trace`` lists the count
    before each instruction of a function: cuts at those counts land exactly there."""
    from batteryless.firmware import symbols

    img, inp, cont = flex
    f = symbols(img)["bl_flex_commit"]
    lo = f.address & ~1
    traced = run(img, QEMU, inputs=inp, exact=True, trace=(lo, lo + f.size))
    assert traced.values["logits"] == cont.values["logits"] and traced.count == cont.count
    assert len(traced.trace) > 100 and traced.trace == sorted(traced.trace)
    cuts = traced.trace[40:200:7]  # ascending, several commits, every kind of instruction in them
    exact = run(img, QEMU, inputs=inp, cuts=cuts, exact=True)
    assert exact.cut_counts == cuts  # not one instruction late
    assert exact.values["logits"] == cont.values["logits"]
    loose = run(img, QEMU, inputs=inp, cuts=cuts)
    assert any(g > c for g, c in zip(loose.cut_counts, cuts, strict=False))  # what exact= fixes


def test_call_relative_cuts_land_at_each_offset_of_a_call(flex):
    """callcuts: after the k-th instruction of the s-th call since the previous such cut — on consecutive
    calls (s = 1) the cut counts are each call's entry count + k (checked against the trace of that run)."""
    from batteryless.firmware import symbols

    img, inp, cont = flex
    f = symbols(img)["bl_flex_commit"]
    rng = (f.address & ~1, (f.address & ~1) + f.size)
    offs = [(1, 1), (1, 2), (2, 5), (1, 30)]
    r = run(img, QEMU, inputs=inp, exact=True, trace=rng, call_cuts=offs)
    assert r.resets == len(offs) and r.values["logits"] == cont.values["logits"]
    tr = set(r.trace)
    for got, (_, k) in zip(r.cut_counts, offs, strict=True):
        entry = got - k  # the call's first instruction ran at count `entry`, k instructions before the cut
        assert entry in tr and all(entry + i in tr for i in range(k))
    with pytest.raises(UsageError, match="call_cuts"):
        run(img, QEMU, inputs=inp, call_cuts=[(1, 1)])


def test_cuts_end_at_a_mark(flex):
    """cuts_end_mark: once that mark runs (FLEX's DONE, 0xF5), the cuts not yet made are dropped, so the
    result is printed in one piece; without it a cut lands in the printing of every boot."""
    img, inp, cont = flex
    two = run(img, QEMU, inputs=inp, cuts=[cont.count // 3, cont.count // 2])
    done = [c for i, c in two.marks if i == 0xF5][0]
    cuts = [cont.count // 3, cont.count // 2] + [done + 50 * i for i in range(1, 400)]  # inside the printing
    r = run(img, QEMU, inputs=inp, cuts=cuts)
    assert r.resets > 2  # without it: cuts land in the printing of the result
    r = run(img, QEMU, inputs=inp, cuts=cuts, cuts_end_mark=0xF5)
    assert r.resets == 2 and r.output == two.output and len(r.cut_counts) == 2
