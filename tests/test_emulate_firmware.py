"""Firmware-level emulation (issue 5): the flex app's continuous-inference mode under power cuts, and
``emulate_firmware`` (trace → power-on periods → instruction budgets → one emulator run with all the cuts)
against the numeric spec and against the schedule level on the same trace."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from batteryless.artifact import load_artifact
from batteryless.boards import load_board
from batteryless.datasets import load_dataset
from batteryless.emulate import prepare_segments
from batteryless.emulate.firmware import _run_periods, emulate_firmware, profile_image
from batteryless.emulate.generators import generate
from batteryless.emulate.power import buffer_from_board, load_converter, load_from_board
from batteryless.emulate.simulate import build_program, simulate
from batteryless.emulate.traces import write_csv
from batteryless.firmware import run
from batteryless.flex import build_flex, continuous_input, model_input, parse_continuous
from batteryless.schedule import Mode, Schedule, Task
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


def test_parse_continuous_dedups_and_flags():
    text = (
        "boot 1 commits 0 inference 0 next 0\n"
        "inference 0 boot 1 logits 1 2 3\n"
        "inference 1 boot 1 logits 4 5\n"  # cut-off line (2 of 3 logits)
        "boot 2 commits 9 inference 1 next 3\n"
        "inference 0 boot 1 logits 1 2 3\n"  # repeat after a cut while printing: fine
        "inference 1 boot 2 logits 4 5 6\n"
        "inference 1 boot 2 logits 4 5 7\n"  # a repeat that differs: flagged
        "commits 12\n"
    )
    res = parse_continuous(text, 3)
    assert [b["boot"] for b in res.boots] == [1, 2] and res.boots[1]["commits"] == 9
    assert res.inferences == {0: (1, [1, 2, 3]), 1: (2, [4, 5, 6])}
    assert res.garbled == 1 and res.conflicts == [1] and res.final_commits == 12


def test_host_continuous_run_matches_spec_per_sample(mlp, host_images):
    img = host_images["none"]
    ref = spec_logits(mlp, SAMPLES, img.paths)
    inp = continuous_input([model_input(mlp, s) for s in SAMPLES], inferences=5)
    res = _host_outcome(img, inp, 0)
    assert sorted(res.inferences) == [0, 1, 2, 3, 4]
    for i, (boot, logits) in res.inferences.items():
        assert boot == 1 and logits == ref[i % len(SAMPLES)], i
    assert res.final_commits == 5 * img.num_tasks  # one commit per task (the input-load chunks are tasks)
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
        if got != want or boots != ([1] if k == 1 else [1, 2]) or res.garbled or res.conflicts:
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


def test_host_boot_after_the_trace_end_reports_what_finished(mlp, host_images):
    """max_boots: the boot after the last power-on period (the trace end) prints, from the NVM log, every
    inference that finished before it — also one whose commit landed just before the cut, unprinted —
    and the recovered state says how many finished. Every cut point of the first two inferences."""
    img = host_images["none"]
    ref = spec_logits(mlp, SAMPLES, img.paths)
    inp1 = continuous_input([model_input(mlp, s) for s in SAMPLES], inferences=2)
    total = _host_outcome(img, inp1, 0).marks
    inp = continuous_input([model_input(mlp, s) for s in SAMPLES], inferences=0, max_boots=1)
    bad = []
    for k in range(2, total + 1):  # k = 1: the boot mark, before the boot counter (tested above)
        res = _host_outcome(img, inp, k)
        last = res.boots[-1]
        finished = last["inference"] + (last["next"] == img.num_tasks)
        got = {i: logits for i, (_, logits) in res.inferences.items() if i < finished}
        if len(res.boots) != 2 or got != {i: ref[i % 2] for i in range(finished)}:
            bad.append((k, finished, sorted(got)))
    assert not bad, bad[:5]


def test_host_sweep_catches_broken_early_advance(mlp, host_images):
    img = host_images["early-advance"]
    model_input_cache.update({s: model_input(mlp, s) for s in SAMPLES})
    ref = spec_logits(mlp, SAMPLES, img.paths)
    _, bad = _sweep(img, ref, 2)
    assert len(bad) >= 3


# --- QEMU: emulate_firmware ---------------------------------------------------------------------------------
QEMU = "mps2-an386"


@pytest.fixture(scope="module")
def qemu_image(mlp, tmp_path_factory):
    if not shutil.which("qemu-system-arm"):
        pytest.skip("qemu-system-arm not installed (scripts/setup.sh)")
    return build_flex(mlp, QEMU, tmp_path_factory.mktemp("qcont"), continuous=True)


@pytest.fixture(scope="module")
def qemu_profile(mlp, qemu_image):
    return profile_image(qemu_image, QEMU, [model_input(mlp, s) for s in SAMPLES])


def short_trace():
    """3 s of on/off harvesting at 3 mW (the load is 7.5 mW): power-on periods of varying length."""
    return generate(
        "markov", power_w=3e-3, mean_on_s=0.4, mean_off_s=0.3, duration_s=3.0, step_s=0.01, seed=4
    )


def test_qemu_profile_references_match_spec(mlp, qemu_image, qemu_profile):
    assert qemu_profile["references"] == spec_logits(mlp, SAMPLES, qemu_image.paths)
    # the first boot loads nothing (the input load is the first tasks), so a resumed boot costs the same
    # start-up and boot line plus the recovery's check of the committed record (its CRC: tens of instructions)
    first, resume = qemu_profile["first_boot"], qemu_profile["resume_boot"]
    assert 0 < first <= resume < first + 100
    assert len(qemu_profile["tasks"]) == qemu_image.num_tasks


def _schedule_from_profile(prof, image, board, clock_hz: float):
    """A schedule whose tasks cost what the image measured: one task for the step between inferences
    (print, input load, commit) and one per model task (task + its commit). Every cost is executed at the
    board's active power, as the firmware level assumes (1 instruction = 1 cycle); the commit phase the
    schedule level adds after every task is 1 cycle at active power, taken off the task."""
    load = load_from_board(load_board(board))
    e_cycle = load.active_power_w / load.clock_hz
    costs = [prof["between"], *prof["tasks"]]
    tasks = tuple(Task(i, f"t{i}", f"t{i}", "op", c - 1, c - 1, None, 0, True) for i, c in enumerate(costs))
    sched = Schedule(board, "ref", clock_hz, (Mode("fw", tasks),), 1, e_cycle)
    # a boot of the schedule level is the board's boot plus the firmware's own resume (start-up, recovery)
    boot_load = replace(
        load,
        boot_time_s=load.boot_time_s + prof["resume_boot"] / load.clock_hz,
        boot_energy_j=load.boot_energy_j + prof["resume_boot"] * e_cycle,
    )
    return sched, boot_load


def test_qemu_schedule_and_firmware_levels_agree(mlp, qemu_image, qemu_profile):
    """Schedule level and firmware level on the same trace, board and 10 µF buffer, the schedule built from
    the image's own measured costs.

    Margin: both levels see the same power-on periods (same load: active power throughout) and the same
    task sequence, so they differ only where a period's cut falls on different sides of a task boundary.
    The cost mismatch per period (marks are off in the emulated run, ~10 instructions per task; QEMU cuts
    land at the end of a translation block; the schedule's boot is the measured resume cost) is far below
    one task, but once the levels are at different tasks the work lost at a cut can differ by up to the
    largest step (task + commit) per period. So |Δ inferences| ≤ 1 + ceil(P · largest / per_inference) for
    P power-on periods (the 1: the inference in progress at the trace end)."""
    board = load_board(QEMU)
    tr = short_trace()
    samples = [model_input(mlp, s) for s in SAMPLES]
    doc = emulate_firmware(
        tr, board, image=qemu_image, samples=samples, profile=qemu_profile, capacitance_f=10e-6
    )
    fw = doc["firmware"]
    assert fw["all_correct"] and fw["checked"] == fw["inferences"] > 5
    assert fw["resets"] == len(fw["periods"]) and fw["power_failures"] >= 10
    assert sum(len(p["inferences"]) for p in fw["periods"]) == fw["inferences"]
    assert all(p["commits"] is not None for p in fw["periods"])
    assert sum(p["commits"] for p in fw["periods"]) == fw["commits"]

    sched, load = _schedule_from_profile(qemu_profile, qemu_image, QEMU, board.clock_hz)
    buf = buffer_from_board(board, capacitance_f=10e-6)
    seg_t, seg_p, t_end, _, _ = prepare_segments(tr, load_converter("ideal"))
    prog = build_program(sched, sched.mode(), load, "flex")
    res = simulate(seg_t, seg_p, t_end, buf, prog)
    p = len(fw["periods"])
    margin = 1 + math.ceil(p * qemu_profile["largest_step"] / qemu_profile["per_inference"])
    assert res.power_failures == fw["power_failures"]
    assert abs(res.inferences - fw["inferences"]) <= margin, (res.inferences, fw["inferences"], margin)


# --- CLI ----------------------------------------------------------------------------------------------------
def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "batteryless.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_cli_firmware_end_to_end(mlp, qemu_image, tmp_path):
    """`batteryless emulate --firmware` with and without the schedule level: report.json gets the
    firmware section, the table is printed, and the firmware level agrees with itself across the two."""
    trace = write_csv(short_trace(), tmp_path / "t.csv")
    out = tmp_path / "fw"
    common = ["--board", QEMU, "--trace", str(trace), "--capacitance-uf", "10", "--samples", "2"]
    r = cli("-q", "emulate", "--firmware", "--artifact", str(mlp), *common, "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "report.json").read_text())
    fw = doc["firmware"]
    assert doc["level"] == "firmware" and doc["runs"] == []
    assert fw["all_correct"] and fw["inferences"] > 5 and fw["emulator"] == "qemu"
    assert "inferences completed" in r.stdout and "power cycles per s" in r.stdout
    out2 = tmp_path / "both"
    r = cli(
        "-q", "emulate", "--firmware", "--artifact", str(mlp), "--schedule", "example", "--policy", "flex",
        *common, "--out", str(out2), "--no-plots",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc2 = json.loads((out2 / "report.json").read_text())
    assert doc2["level"] == "schedule+firmware" and len(doc2["runs"]) == 1
    assert doc2["firmware"]["inferences"] == fw["inferences"]  # same image, same cuts: deterministic


def test_cli_firmware_errors_are_one_line(mlp, qemu_image, tmp_path):
    """No artifact, a board without an instruction-counting emulator, a buffer (1 µF, 2.0 → 1.8 V) whose
    longest power-on period on this trace (~10,400 cycles) is shorter than the image's largest atomic
    step plus its boot (~14,000 instructions), and a policy that never commits."""
    trace = write_csv(short_trace(), tmp_path / "t.csv")
    r = cli("emulate", "--firmware", "--board", QEMU, "--trace", str(trace))
    assert r.returncode == 2 and "--artifact" in r.stderr
    r = cli("emulate", "--firmware", "--artifact", str(mlp), "--board", "host", "--trace", str(trace))
    assert r.returncode == 12 and "no instruction-counting emulator" in r.stderr
    r = cli(
        "emulate", "--firmware", "--artifact", str(mlp), "--board", QEMU, "--trace", str(trace),
        "--capacitance-uf", "1", "--v-on", "2.0",
    )  # fmt: skip
    assert r.returncode == 12 and "largest atomic step" in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0
    r = cli(
        "emulate",
        "--firmware",
        "--artifact",
        str(mlp),
        "--board",
        QEMU,
        "--trace",
        str(trace),
        "--policy",
        "restart",
    )
    assert r.returncode == 2 and "committing policy" in r.stderr


# --- mspdebug (MSP430, ref) ---------------------------------------------------------------------------------
def test_mspdebug_firmware_level_small_trace(mlp, tmp_path):
    """MSP430 in mspdebug's simulator: budgets in MCLK cycles become instructions through the image's
    measured cycles per instruction; 3 s of on/off harvest with the board's 100 µF buffer (about 1.7 M
    cycles per power-on period, an inference takes about 3 M). Only the last boot's output survives on the
    MSP430, so the finished inferences are checked from the final NVM log; the schedule level with the
    image's measured cycle costs agrees within the margin derived in the QEMU agreement test."""
    if not shutil.which("mspdebug"):
        pytest.skip("mspdebug not installed")
    board = load_board("msp430fr5994")
    img = build_flex(mlp, board, tmp_path, continuous=True, log_len=8)
    samples = [model_input(mlp, s) for s in SAMPLES]
    prof = profile_image(img, board, samples)
    assert prof["references"] == spec_logits(mlp, SAMPLES, img.paths)
    assert prof["unit"] == "mclk_cycles" and prof["cycles_per_instruction"] > 1.0
    tr = generate("markov", power_w=3e-3, mean_on_s=0.4, mean_off_s=0.3, duration_s=3.0, step_s=0.01, seed=4)
    fw = emulate_firmware(tr, board, image=img, samples=samples, profile=prof)["firmware"]
    assert fw["emulator"] == "mspdebug" and fw["power_failures"] >= 3
    assert fw["all_correct"] and 1 <= fw["checked"] <= 8 and fw["inferences"] >= 2
    sched, load = _schedule_from_profile(prof, img, "msp430fr5994", board.clock_hz)
    seg_t, seg_p, t_end, _, _ = prepare_segments(tr, load_converter("ideal"))
    res = simulate(
        seg_t, seg_p, t_end, buffer_from_board(board), build_program(sched, sched.mode(), load, "flex")
    )
    margin = 1 + math.ceil(len(fw["periods"]) * prof["largest_step"] / prof["per_inference"])
    assert res.power_failures == fw["power_failures"]
    assert abs(res.inferences - fw["inferences"]) <= margin, (res.inferences, fw["inferences"], margin)


def test_qemu_periods_too_short_to_boot_are_recognised(mlp, qemu_image, qemu_profile):
    """Power-on periods shorter than the firmware's start-up (reset → boot counter, ~490 instructions) are
    not counted by the firmware: the timeline must give them no boot and map the firmware's boot numbers to
    the other periods in order (checked through the state each boot recovered: it resumes where the
    previous counted period's last commit left it)."""
    samples = [model_input(mlp, s) for s in SAMPLES]
    budgets = [60_000, 100, 70_000, 300, 2, 65_000, 80_000, 50_000]
    periods = [
        {"start_s": float(k), "end_s": float(k) + 0.5 if k < len(budgets) - 1 else None, "cycles": c}
        for k, c in enumerate(budgets)
    ]
    fw = _run_periods(qemu_image, load_board(QEMU), "qemu", samples, periods, qemu_profile, 120.0, None)
    boots = [p["boot"] for p in fw["periods"]]
    assert boots == [1, None, 2, None, None, 3, 4, 5], boots
    assert fw["periods_too_short_to_boot"] == 3 and fw["all_correct"]
    total = sum(budgets) - qemu_profile["first_boot"]
    assert fw["inferences"] == sum(len(p["inferences"]) for p in fw["periods"]) >= 1
    assert fw["inferences"] <= total // qemu_profile["per_inference"] + 1
    assert all(p["commits"] == 0 for p in fw["periods"] if p["boot"] is None)
    assert sum(p["commits"] for p in fw["periods"]) == fw["commits"]
