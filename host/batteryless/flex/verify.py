"""``flex-verify``: a continuous-power reference run, then sweeps / random / exact / fault schedules on one
image, every schedule checked bit-exact and against the protocol; the report."""

from __future__ import annotations

import random as _random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from batteryless.boards import Board
from batteryless.errors import EmulationError, UsageError
from batteryless.firmware import parse_output, patch_input, run
from batteryless.flex.continuous import continuous_input, parse_continuous
from batteryless.flex.harness import (
    ScheduleResult,
    _host_runner,
    _host_schedule,
    _result,
    check_schedule,
    run_schedule,
)
from batteryless.flex.image import (
    BOOT_MARK,
    DONE_MARK,
    FlexImage,
    _board,
    build_flex,
    fault_bytes,
    model_input,
)
from batteryless.flex.sweeps import FAULT_BYTES, REC_SIZE, _exact_commit_jobs, _Job, _msp_commit_jobs
from batteryless.progress import ProgressFn, report


@dataclass
class VerifyReport:
    board: str
    policy: str
    broken: str
    mode: str
    num_tasks: int
    reference: list[int]
    continuous_count: int | None  # instructions (QEMU, mspdebug) or marks (host) of the continuous run
    largest_step: int | None = None  # QEMU: most instructions between two task-start marks (task + commit)
    boot_instructions: int | None = None  # QEMU: instructions from reset to the runtime's boot mark
    schedules: int = 0
    failures: list[ScheduleResult] = field(default_factory=list)
    violations: dict[str, int] = field(default_factory=dict)  # check → schedules that violated it
    first_commit_cuts: int = 0  # boots that found a cut inside the very first commit (unborn, allowed)
    max_lost_tasks: int = 0  # most tasks one power failure threw away, over all schedules
    reboots: int = 0
    reexecuted_tasks: int = 0
    instructions: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.schedules > 0 and not self.failures

    @property
    def reexecuted_per_failure(self) -> float:
        return self.reexecuted_tasks / self.reboots if self.reboots else 0.0

    @property
    def resets_per_s(self) -> float:
        return self.reboots / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failures"] = [asdict(f) for f in self.failures[:20]]
        d["failure_count"] = len(self.failures)
        d.update(
            passed=self.passed,
            reexecuted_per_failure=self.reexecuted_per_failure,
            resets_per_s=self.resets_per_s,
        )
        return d


def verify_intermittent(
    artifact: str | Path | None,
    board: str | Path | Board,
    *,
    policy: str = "flex",
    sweep: bool = False,
    every: int | None = None,
    random: int = 0,
    max_cuts: int = 8,
    seed: int = 0,
    sample: int = 0,
    inputs: bytes | None = None,
    image: FlexImage | None = None,
    out_dir: str | Path | None = None,
    broken: str = "none",
    workers: int = 2,
    timeout: float = 120.0,
    progress: ProgressFn | None = None,
    continuous: bool = False,
    sweep_commit: bool = False,
    faults: bool = False,
    commit_stride: int = 1,
    backend: str = "ref",
) -> VerifyReport:
    """Check the FLEX property (DESIGN.md contract 3) on ``board``: the final logits under every power-failure
    schedule equal those of a continuous-power run of the same image, bit for bit.

    ``sweep``: one cut at every cut point (host: every mark; targets: every ``every``-th instruction, default
    so that about 200 runs happen). ``random``: that many seeded schedules of 1..``max_cuts`` cuts. Give
    ``image`` (from :func:`build_flex`) to reuse a build, otherwise the artifact is generated and built
    into ``out_dir`` (default a temporary folder). Returns a :class:`VerifyReport` (``passed``).

    ``continuous`` (QEMU, ``random=N``; or give an ``image`` built with ``continuous=True``): build the
    continuous-inference app and check N inferences in one QEMU process under random cuts, each inference
    bit-exact with the same inference under continuous power (:func:`_verify_continuous`) — one QEMU start
    instead of one per schedule. It checks that app, whose inferences after the first start from the NVM
    state the previous one left; the single-inference image and the sweep keep one run per schedule.

    ``sweep_commit``: QEMU: exact cuts (``-singlestep``) after every instruction of commits (first ones,
    deep ones, the last one's tail) and of the recovery after a cut in the middle, so records are torn at
    every store on the emulated CPU; mspdebug: a cut after every ``commit_stride``-th instruction of the
    second and a middle commit, one run each. ``faults``: also run schedules that flip a bit of the committed
    record (version, inference, next_task, CRC) at the boot after a cut, each of which recovery must
    detect (needs an image built with ``faults=True``; built so when no image is given). ``backend``: the
    kernels of the image built here (:func:`build_flex`; default ``ref``, ``cmsis`` on the Cortex-M boards
    puts the DSP-extension / Helium kernels under the cuts).

    Besides the logits, every schedule is checked against the protocol (:data:`CHECKS`): no corrupt
    committed state beyond those injected (a cut inside the very first commit is counted apart,
    ``first_commit_cuts``), and no power failure threw away more than one atomic step
    (``image.max_lost`` tasks). ``violations`` counts the schedules per violated check."""
    b = _board(board)
    kind = b.emulator.get("kind")
    if not sweep and random <= 0 and not sweep_commit and not faults:
        raise UsageError(
            "choose a sweep (sweep=True / --sweep, --sweep-commit), random schedules (--random N) or "
            "fault schedules (--faults)"
        )
    if sweep_commit and kind not in ("qemu", "mspdebug"):
        raise UsageError(f"the exact commit sweep needs an instruction-counting target; {b.name} is {kind!r}")
    if faults and image is not None and not image.faults:
        raise UsageError("fault schedules need an image built with build_flex(faults=True)")
    if random < 0 or max_cuts < 1 or workers < 1 or (every is not None and every < 1):
        raise UsageError("random, max_cuts, workers and every must be positive")
    if continuous or (image is not None and image.continuous):
        _check_continuous(b, kind, sweep)
    tmpdir = None
    if image is None:
        if artifact is None:
            raise UsageError("give an artifact (.bl) or a built image")
        if out_dir is None:
            tmpdir = tempfile.TemporaryDirectory(prefix="bl-flexv-")
            out_dir = tmpdir.name
        image = build_flex(
            artifact,
            b,
            out_dir,
            policy=policy,
            broken=broken,
            progress=progress,
            continuous=continuous,
            faults=faults,
            backend=backend,
        )
    elif continuous and not image.continuous:
        raise UsageError("continuous=True needs an image built with build_flex(continuous=True)")
    if inputs is None:
        if artifact is None:
            raise UsageError("give inputs (bytes) or an artifact to take a test sample from")
        inputs = model_input(artifact, sample)
    try:
        args = (sweep, every, random, max_cuts, seed, workers, timeout, progress, sweep_commit, faults)
        args += (commit_stride,)
        return _verify(image, b, kind, inputs, *args)
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


def _verify(
    image, b, kind, inputs, sweep, every, n_random, max_cuts, seed, workers, timeout, progress,
    sweep_commit=False, faults=False, commit_stride=1,
):  # fmt: skip
    if getattr(image, "continuous", False):
        return _verify_continuous(image, b, kind, inputs, sweep, n_random, max_cuts, seed, timeout, progress)
    if kind == "host":
        d, exe = _host_runner(image.image, inputs)
        with tempfile.TemporaryDirectory(prefix="bl-flexc-") as c:
            out, _, code = _host_schedule(exe, [], Path(c), timeout)
        vals = parse_output(out)
        cont_logits, total = vals.get("logits"), vals.get("marks", [0])[0]
        cont_error = None if code == 0 else f"exit code {code}"
        baseline = vals.get("corrupt", [0])[0]
    else:
        cont = run_schedule(image, b, inputs, [], None, timeout)
        cont_logits, total, cont_error = cont.logits, int(cont.instructions or 0), cont.error
        baseline = cont.corrupt or 0
        if kind == "qemu":
            marks = run(image.image, b, inputs=inputs, timeout=timeout).marks
            steps = [c for i, c in marks if i is not None and (0 < i < BOOT_MARK or i == DONE_MARK)]
            boot = [c for i, c in marks if i == BOOT_MARK]
    if cont_logits is None or cont_error:
        raise EmulationError(
            f"{image.image}: the continuous-power run printed no logits ({cont_error or 'no logits line'})"
        )
    ref = cont_logits
    rep = VerifyReport(b.name, image.policy, image.broken, "", image.num_tasks, ref, None)
    if kind == "qemu":
        rep.largest_step = max((y - x for x, y in zip(steps, steps[1:], strict=False)), default=None)
        rep.boot_instructions = boot[0] if boot else None
    rep.continuous_count = total
    rng = _random.Random(seed)
    schedules: list[list[int]] = []
    modes = []
    if sweep:
        if kind == "host":
            schedules += [[k] for k in range(1, total + 1)]
        else:
            step = every or max(1, total // 200)
            schedules += [[c] for c in range(step, total, step)]
        modes.append("sweep" if kind == "host" else f"sweep every {every or max(1, total // 200)}")
    if n_random:
        for _ in range(n_random):
            n = rng.randint(1, max_cuts)
            if kind == "host":
                schedules.append([rng.randint(1, total) for _ in range(n)])
            else:
                # gaps log-uniform in [1, total]: cuts inside start-up and recovery as well as deep in a run
                pts, at = [], 0
                for _ in range(n):
                    at += max(1, int(round(total ** rng.random())))
                    pts.append(at)
                schedules.append(pts)
        modes.append(f"random {n_random} (seed {seed}, up to {max_cuts} cuts)")
    # (cuts, exact, faults): exact cuts (QEMU -singlestep) and fault-injection records per schedule
    jobs = [_Job(c) for c in schedules]
    if sweep_commit:
        if kind == "mspdebug":
            exact = _msp_commit_jobs(image, b, inputs, timeout, commit_stride)
        else:
            exact = _exact_commit_jobs(image, b, inputs, timeout)
        jobs += exact
        ncut = sum(len(j.call_cuts or []) + len(j.cuts) for j in exact)
        modes.append(f"exact commit/recovery sweep ({ncut} cuts in {len(exact)} runs)")
    if faults:
        # flip one bit of the same byte in both records at boot 2 (after a cut half-way): whichever
        # record is committed then is corrupt, and recovery must say so (and restart)
        for byte in FAULT_BYTES:
            f = [(2, slot * REC_SIZE + byte, 1, 1) for slot in (0, 1)]
            jobs.append(_Job([total // 2], False, f))
        modes.append(f"faults ({len(FAULT_BYTES)} bit flips of the committed record)")
    rep.mode = ", ".join(modes)
    t0 = time.perf_counter()
    done = 0

    def one(job: _Job) -> ScheduleResult:
        cuts, flt = job.cuts, job.faults
        inp = inputs + fault_bytes(flt) if flt else inputs
        if kind == "host":
            with tempfile.TemporaryDirectory(prefix="bl-flexs-") as s:
                runner = exe
                if flt:
                    runner = Path(s) / "firmware-faults.elf"
                    patch_input(image.image, inp, runner)
                text, reboots, code = _host_schedule(runner, cuts, Path(s), timeout)
            r = _result(text, cuts, reboots, None, ref)
            if code != 0:
                r.correct, r.error = False, f"exit code {code}"
        else:
            r = run_schedule(image, b, inp, cuts, ref, timeout, job.exact, job.call_cuts, job.trace)
        r.faults = list(flt)
        return r

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for r in pool.map(one, jobs):
                done += 1
                _tally(rep, r, image, baseline, 1 if r.faults else 0)
                report(progress, f"flex-verify {b.name} {image.policy}", done, len(jobs))
    finally:
        if kind == "host":
            d.cleanup()
    rep.seconds = time.perf_counter() - t0
    return rep


def _tally(rep: VerifyReport, r: ScheduleResult, image: FlexImage, baseline: int, faults: int = 0) -> None:
    """Add one schedule to the report: counts, and a failure if it violates any check."""
    rep.schedules += 1
    rep.reboots += r.reboots
    if r.task_runs is not None:
        rep.reexecuted_tasks += max(0, r.task_runs - image.num_tasks)
    rep.instructions += r.instructions or 0
    rep.first_commit_cuts += r.unborn or 0
    # a detected corruption restarts the inference by design: the re-execution bound holds without faults
    if not faults:
        rep.max_lost_tasks = max(rep.max_lost_tasks, r.lost_max or 0)
    bad = check_schedule(r, image.max_lost if not faults else 1 << 30, baseline, faults)
    for c in bad:
        rep.violations[c] = rep.violations.get(c, 0) + 1
    if bad:
        rep.failures.append(r)


def _check_continuous(b, kind, sweep) -> None:
    if kind != "qemu":
        raise UsageError(f"continuous-inference images are verified on QEMU only ({b.name} is {kind!r})")
    if sweep:
        raise UsageError(
            "a sweep needs erased NVM for every cut point: verify a single-inference image "
            "(build_flex(continuous=False)); a continuous image takes random=N (N inferences in one run)"
        )


def _verify_continuous(image, b, kind, inputs, sweep, n_random, max_cuts, seed, timeout, progress):
    """A continuous-inference image (``build_flex(continuous=True)``) on QEMU: ``n_random`` inferences in ONE
    QEMU process, first under continuous power (the reference, per inference index), then with power cut at
    seeded random instruction counts spread over the whole run (on average about ``max_cuts``/2 + 1/2 per
    inference). Every inference of the cut run is compared bit for bit with the same inference of the
    continuous run; one missing, printed twice with other logits, or differing is a failure. Inferences
    after the first start from the NVM state the previous one left (not from erased NVM), so this checks
    the continuous app, not the single-inference image; a sweep needs erased NVM per cut point and is
    refused."""
    _check_continuous(b, kind, sweep)
    n = n_random
    inp = continuous_input([inputs], inferences=n, marks=False)
    cont = run(image.image, b, inputs=inp, timeout=timeout, mark_ids=[])
    ref = parse_continuous(cont.output, image.output_len)
    if cont.exit_code != 0 or sorted(ref.inferences) != list(range(n)) or ref.conflicts:
        raise EmulationError(
            f"{image.image}: the continuous-power run did not print {n} inferences "
            f"(exit code {cont.exit_code}, {len(ref.inferences)} printed)"
        )
    refs = {i: logits for i, (_, logits) in ref.inferences.items()}
    total = int(cont.instructions or 0)
    rep = VerifyReport(b.name, image.policy, image.broken, "", image.num_tasks, refs[0], total)
    rng = _random.Random(seed)
    ncuts = sum(rng.randint(1, max_cuts) for _ in range(n))
    cuts = sorted(rng.sample(range(1, total), min(ncuts, total - 1)))
    rep.mode = f"continuous: {n} inferences in one run, {len(cuts)} random cuts (seed {seed})"
    t0 = time.perf_counter()
    r = run(image.image, b, inputs=inp, timeout=timeout, cuts=cuts, mark_ids=[])
    rep.seconds = time.perf_counter() - t0
    out = parse_continuous(r.output, image.output_len)
    rep.schedules, rep.reboots, rep.instructions = n, r.resets, int(r.instructions or 0)
    if out.task_runs is not None:
        rep.reexecuted_tasks = max(0, out.task_runs - n * image.num_tasks)
    rep.first_commit_cuts = out.checks.get("unborn", 0)
    rep.max_lost_tasks = out.checks.get("lost_max", 0)
    # the protocol checks hold for the whole run (the counters are cumulative over every boot)
    summary = ScheduleResult(cuts, None, True, r.resets, out.task_runs, r.instructions)
    summary.corrupt, summary.lost_max = out.checks.get("corrupt"), out.checks.get("lost_max")
    summary.unborn = out.checks.get("unborn")
    summary.correct = r.exit_code == 0 and summary.corrupt is not None
    bad = check_schedule(summary, image.max_lost, ref.checks.get("corrupt", 0))
    for c in bad:
        rep.violations[c] = rep.violations.get(c, 0) + 1
    if bad:
        summary.error = "run ended without its final report" if summary.corrupt is None else None
        rep.failures.append(summary)
    for i in range(n):
        got = out.inferences.get(i)
        logits = got[1] if got else None
        if logits != refs[i] or i in out.conflicts or r.exit_code != 0:
            err = None if r.exit_code == 0 else f"exit code {r.exit_code}"
            if got is None:
                err = err or f"inference {i} not printed"
            elif i in out.conflicts:
                err = err or f"inference {i} printed again with other logits"
            res = ScheduleResult(cuts, logits, False, r.resets, out.task_runs, r.instructions, None, err)
            res.violated = ["logits"]
            rep.violations["logits"] = rep.violations.get("logits", 0) + 1
            rep.failures.append(res)
        report(progress, f"flex-verify {b.name} {image.policy} (continuous)", i + 1, n)
    return rep
