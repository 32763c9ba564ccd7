"""FLEX power-failure harnesses: cut power inside the real compiled firmware, compare with continuous power.

:func:`build_flex` generates a model with its activation buffers in NVM and builds the ``flex`` firmware
app (``firmware/apps/flex`` + ``checkpointing/``) with a commit policy. :func:`verify_intermittent` runs
that image once under continuous power and then under power-failure schedules, and compares the final
``logits`` of every schedule with the continuous run bit for bit:

- host: a cut is a mark number (the boot ends at its k-th ``bl_mark()``, NVM kept in a file); host builds
  mark every NVM word the commit protocol writes, so the exhaustive single-cut sweep (``sweep=True``) covers
  every protocol write and every task boundary; ``random=N`` runs N seeded multi-cut schedules;
- QEMU (mps2-an386): a cut is an instruction count (the TCG plugin resets the machine, the NOLOAD NVM
  survives); ``sweep=True`` cuts once at every ``every``-th instruction, ``random=N`` runs N schedules of
  several cuts in one QEMU process each;
- mspdebug (msp430fr5994, ``ref``): ``step N`` + ``reset`` at instruction counts; a few random schedules.
"""

from __future__ import annotations

import os
import random as _random
import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from batteryless.boards import Board, load_board
from batteryless.errors import EmulationError, UsageError
from batteryless.firmware import HOST_POWER_CUT_EXIT, build, parse_output, patch_input, run
from batteryless.progress import ProgressFn, report

POLICIES = {"flex": 1, "layer": 2, "restart": 3, "jit": 4}
BROKEN = {
    "none": 0,
    "early-advance": 1,  # task t committed as done before it runs (flex app)
    "trust-record": 2,  # recovery trusts whatever record `active` names (runtime)
    "pointer-before-payload": 3,  # commit: `active` stored before the record (runtime)
    "pointer-before-crc": 4,  # commit: record, `active`, then the CRC (runtime)
    "commit-before-output": 5,  # the inference committed as finished before its logits are saved (app)
    "recovery-without-crc": 6,  # recovery checks pointer and bounds, not the CRC (runtime)
}
# What the harnesses check on every schedule (ScheduleResult.violated names the ones that failed):
#   logits       the final logits equal the continuous-power run's, bit for bit (and the run ended cleanly);
#   corrupt      no committed state failed its checks (``corrupt`` beyond the uncut run's; a cut inside the
#                very first commit is counted apart as ``unborn`` and allowed);
#   reexecution  no power failure threw away more than one atomic step (``lost_max`` tasks <= the policy's
#                tasks per commit: flex 1, layer/jit the longest layer, restart all);
#   fault-detection  an injected corruption of the committed record (fault schedules) was detected.
CHECKS = ("logits", "corrupt", "reexecution", "fault-detection")
BOOT_MARK, DONE_MARK = 0xF0, 0xF5  # BL_FLEX_MARK_BOOT / _DONE (checkpointing/flex.h); task t: t % 239 + 1

__all__ = [
    "BROKEN",
    "CHECKS",
    "POLICIES",
    "ContinuousOutput",
    "FlexImage",
    "ScheduleResult",
    "VerifyReport",
    "build_flex",
    "check_schedule",
    "continuous_input",
    "fault_bytes",
    "measure_largest_step",
    "model_input",
    "parse_continuous",
    "run_schedule",
    "verify_intermittent",
]


@dataclass
class FlexImage:
    image: Path
    board: str
    policy: str
    broken: str
    num_tasks: int
    model_dir: Path
    paths: dict[str, str] = field(default_factory=dict)  # layer → "fft" | "direct" (spec.integer_inference)
    continuous: bool = False  # built with BL_FLEX_CONTINUOUS=1 (inference after inference)
    output_len: int | None = None  # logits per inference (BL_MODEL_OUTPUT_LEN)
    log_len: int = 0  # continuous builds: finished inferences kept in NVM (BL_FLEX_LOG_LEN)
    max_lost: int = 1  # tasks one power failure may throw away under the policy (one atomic step)
    faults: bool = False  # built with BL_FLEX_FAULTS=1 (fault-injection records after the input)
    granularity: dict[str, Any] = field(default_factory=dict)  # schedule.json "granularity" (codegen)


@dataclass
class ScheduleResult:
    cuts: list[int]  # asked for (host: mark numbers per boot; targets: instruction counts from the start)
    logits: list[int] | None
    correct: bool
    reboots: int  # power failures that happened
    task_runs: int | None  # task executions reported by the firmware (re-executions included)
    instructions: int | None  # total over all boots (QEMU, mspdebug); None on the host
    corrupt: int | None = None  # recoveries that found a corrupt committed state
    error: str | None = None
    unborn: int | None = None  # boots that found a cut inside the very first commit (allowed)
    lost_max: int | None = None  # most tasks one power failure threw away
    violated: list[str] = field(default_factory=list)  # CHECKS that failed
    faults: list[tuple[int, int, int, int]] = field(default_factory=list)  # injected (fault_bytes records)


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


def _board(board: str | Path | Board) -> Board:
    return board if isinstance(board, Board) else load_board(board)


def build_flex(
    artifact: str | Path,
    board: str | Path | Board,
    out_dir: str | Path,
    policy: str = "flex",
    broken: str = "none",
    faults: bool = False,
    vlow_period: int = 0,
    progress: ProgressFn | None = None,
    continuous: bool = False,
    log_len: int = 16,
    granularity: str | float | None = "auto",
    backend: str = "ref",
) -> FlexImage:
    """Generate the model (``ref`` kernels, buffers in NVM) into ``out_dir/gen`` and build the flex app with
    ``policy`` into ``out_dir/build``. ``broken`` selects a deliberately wrong runtime (tests only).

    ``continuous``: the continuous-inference mode (inference after inference, inputs and limits from
    :func:`continuous_input`, output read by :func:`parse_continuous`; ``log_len`` finished inferences kept
    in NVM for the final report), used by the firmware-level emulator. ``granularity``: codegen's task
    granularity ("auto" from the board's buffer, "coarse", or the most estimated cycles per task).
    ``backend``: the kernels (default ``ref``; ``lea`` on the MSP430FR5994 runs on the project's LEA
    emulation, board emulator msp430sim)."""
    from batteryless.codegen import codegen

    if policy not in POLICIES:
        raise UsageError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    if broken not in BROKEN:
        raise UsageError(f"broken must be one of {', '.join(BROKEN)}, not {broken!r}")
    if continuous and (policy == "restart" or faults):
        raise UsageError(
            "the continuous-inference mode needs a policy that commits (flex, layer, jit) and no fault "
            f"injection (policy {policy!r}, faults {faults})"
        )
    if continuous and not 1 <= log_len <= 4096:
        raise UsageError(f"log_len must be in 1..4096, not {log_len}")
    b = _board(board)
    out = Path(out_dir)
    gen = out / "gen"
    res = codegen(artifact, b, gen, backend=backend, buffers_in="nvm", granularity=granularity)
    defines: dict[str, str | int] = {"BL_FLEX_POLICY": POLICIES[policy], "BL_FLEX_BROKEN": BROKEN[broken]}
    if b.emulator.get("kind") == "host":
        defines["BL_FLEX_MARK_WRITES"] = 1  # cut points between the protocol's NVM writes
    if faults:
        defines["BL_FLEX_FAULTS"] = 1
    if vlow_period:
        defines["BL_FLEX_VLOW_PERIOD"] = int(vlow_period)
    if continuous:
        defines["BL_FLEX_CONTINUOUS"] = 1
        defines["BL_FLEX_LOG_LEN"] = f"{int(log_len)}u"
    img = build(b, gen, backend, app="flex", out_dir=out / "build", defines=defines, progress=progress).image
    tasks = res.schedule["modes"][0]["tasks"]
    n = len(tasks)
    m = re.search(r"#define BL_MODEL_OUTPUT_LEN (\d+)", (gen / "model.h").read_text())
    out_len = int(m.group(1)) if m else None
    return FlexImage(
        img,
        b.name,
        policy,
        broken,
        n,
        gen,
        dict(res.paths),
        continuous,
        out_len,
        log_len if continuous else 0,
        _max_lost(policy, [t["layer"] for t in tasks]),
        faults,
        dict(res.schedule.get("granularity", {})),
    )


def _max_lost(policy: str, task_layers: list[str]) -> int:
    """Tasks one power failure may throw away: the work since the last commit the policy makes, i.e. one
    atomic step (flex: the task in flight; layer, jit: the longest layer, which commits at its end in
    both; restart: everything)."""
    if policy == "flex":
        return 1
    if policy == "restart":
        return len(task_layers)
    longest = run = 0
    for i, layer in enumerate(task_layers):
        run = run + 1 if i and layer == task_layers[i - 1] else 1
        longest = max(longest, run)
    return longest


def continuous_input(
    samples: list[bytes], inferences: int = 0, max_boots: int = 0, marks: bool = True
) -> bytes:
    """Input of a continuous-inference image: header {u32 inferences (0 = no limit), u32 max_boots (0 = no
    limit), u32 flags (bit 0: no marks)} then the samples (inference i uses sample i mod len(samples))."""
    if not samples or len({len(x) for x in samples}) != 1 or not samples[0]:
        raise UsageError("continuous_input needs one or more samples of the same, non-zero length")
    if inferences < 0 or max_boots < 0:
        raise UsageError(f"inferences and max_boots must be >= 0 (0 = no limit): {inferences}, {max_boots}")
    head = inferences.to_bytes(4, "little") + max_boots.to_bytes(4, "little")
    return head + (0 if marks else 1).to_bytes(4, "little") + b"".join(samples)


@dataclass
class ContinuousOutput:
    """What a continuous-inference run printed: one entry per boot {boot, commits, inference, next} (the
    state it recovered), the logits and finishing boot of each inference (first complete line per index),
    the final commit count if the run reached its end, and lines that did not parse (cut-off ones)."""

    boots: list[dict[str, int]]
    inferences: dict[int, tuple[int, list[int]]]  # index → (boot whose commit finished it, logits)
    final_commits: int | None
    task_runs: int | None
    marks: int | None  # host: marks of the last boot
    garbled: int
    conflicts: list[int] = field(default_factory=list)  # indices printed again with other logits or boot
    checks: dict[str, int] = field(default_factory=dict)  # final "corrupt", "unborn", "lost_max" lines


_BOOT_RE = re.compile(r"^boot (\d+) commits (\d+) inference (\d+) next (\d+)$")
_INF_RE = re.compile(r"^inference (\d+) boot (\d+) logits((?: -?\d+)+)$")


def parse_continuous(text: str, output_len: int | None = None) -> ContinuousOutput:
    """Parse a continuous-inference run's output. A line cut by a power failure is either missing (QEMU
    writes whole lines) or incomplete; an inference line with the wrong number of logits is not used, and
    a repeated one (power failed after printing, before the NVM flag) keeps its first occurrence; a repeat
    with other logits or another boot is listed in ``conflicts``."""
    boots: list[dict[str, int]] = []
    infs: dict[int, tuple[int, list[int]]] = {}
    final = task_runs = marks = None
    garbled = 0
    checks: dict[str, int] = {}
    conflicts: list[int] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if m := _BOOT_RE.match(line):
            b, c, i, n = (int(g) for g in m.groups())
            boots.append({"boot": b, "commits": c, "inference": i, "next": n})
        elif m := _INF_RE.match(line):
            logits = [int(v) for v in m.group(3).split()]
            if output_len is not None and len(logits) != output_len:
                garbled += 1
                continue
            entry = (int(m.group(2)), logits)
            prev = infs.setdefault(int(m.group(1)), entry)
            if prev != entry and int(m.group(1)) not in conflicts:
                conflicts.append(int(m.group(1)))
        elif line.startswith("commits ") and line[8:].isdigit():
            final = int(line[8:])
        elif line.startswith("task_runs ") and line[10:].isdigit():
            task_runs = int(line[10:])
        elif line.startswith("marks ") and line[6:].isdigit():
            marks = int(line[6:])
        elif (kv := line.split(" "))[0] in ("corrupt", "unborn", "lost_max") and kv[-1].isdigit():
            checks[kv[0]] = int(kv[-1])
        elif not line.startswith("boots "):
            garbled += 1
    return ContinuousOutput(boots, infs, final, task_runs, marks, garbled, conflicts, checks)


def model_input(artifact: str | Path, sample: int = 0, dataset_path: str | Path | None = None) -> bytes:
    """Test sample ``sample`` of the artifact's dataset, quantised as the firmware expects (int16 LE)."""
    import numpy as np

    from batteryless.artifact import load_artifact
    from batteryless.datasets import load_dataset
    from batteryless.spec import quantize_input

    art = load_artifact(artifact)
    ds = load_dataset(art.dataset, dataset_path)
    if not 0 <= sample < len(ds.x_test):
        raise UsageError(f"sample {sample} is outside the {art.dataset} test set (0..{len(ds.x_test) - 1})")
    return np.asarray(quantize_input(art, ds.x_test[sample : sample + 1]), dtype="<i2")[0].tobytes()


def fault_bytes(faults: list[tuple[int, int, int, int]]) -> bytes:
    """Fault-injection records for images built with ``faults=True``: (boot, arg, kind, value) each —
    kind 1 xor byte ``arg`` of the FLEX NVM state with ``value``; kind 2 torn write of half a forged newer
    record into slot ``arg``; kind 3 a forged record with a valid CRC and an impossible next task into slot
    ``arg`` (see firmware/apps/flex/main.c)."""
    out = b""
    for boot, arg, kind, value in faults:
        out += boot.to_bytes(2, "little") + arg.to_bytes(2, "little") + bytes([kind, value]) + b"\0\0"
    return out


def _result(text: str, cuts: list[int], reboots: int, instructions: int | None, ref: list[int] | None):
    vals = parse_output(text)
    logits = vals.get("logits")
    tr = vals.get("task_runs", [None])[0]
    corrupt = vals.get("corrupt", [None])[0]
    res = ScheduleResult(
        list(cuts), logits, ref is not None and logits == ref, reboots, tr, instructions, corrupt
    )
    res.unborn = vals.get("unborn", [None])[0]
    res.lost_max = vals.get("lost_max", [None])[0]
    return res


def check_schedule(
    r: ScheduleResult, max_lost: int, baseline_corrupt: int = 0, faults_injected: int = 0
) -> list[str]:
    """The checks (:data:`CHECKS`) one schedule's result violates, also stored in ``r.violated``.
    ``baseline_corrupt``: corrupt states the uncut run itself reports (mspdebug's simulator starts with
    garbage in FRAM); ``faults_injected``: corruptions of the committed record the schedule injected, each
    of which must be detected."""
    bad = []
    if not r.correct:
        bad.append("logits")
    corrupt = r.corrupt if r.corrupt is not None else 0
    if corrupt > baseline_corrupt + faults_injected:
        bad.append("corrupt")
    if r.lost_max is not None and r.lost_max > max_lost:
        bad.append("reexecution")
    if faults_injected and corrupt < baseline_corrupt + faults_injected:
        bad.append("fault-detection")
    r.violated = bad
    return bad


def _host_schedule(exe: Path, cuts: list[int], tmp: Path, timeout: float) -> tuple[str, int, int]:
    """Boot ``exe`` repeatedly; boot i is cut at its ``cuts[i]``-th mark (if it gets that far). Returns the
    output of all boots, the number of cuts that happened and the last exit code."""
    nvm = tmp / "nvm.bin"
    nvm.unlink(missing_ok=True)
    env = {**os.environ, "BL_NVM_FILE": str(nvm)}
    text, reboots = "", 0
    for cut in [*cuts, 0]:
        env["BL_CUT_AT_MARK"] = str(cut)
        try:
            proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired as exc:
            raise EmulationError(f"{exe}: a boot did not finish within {timeout:.0f} s") from exc
        text += proc.stdout
        if proc.returncode != HOST_POWER_CUT_EXIT:
            return text, reboots, proc.returncode
        reboots += 1
    return text, reboots, proc.returncode


def run_schedule(
    image: FlexImage | str | Path,
    board: str | Path | Board,
    inputs: bytes,
    cuts: list[int],
    reference: list[int] | None = None,
    timeout: float = 120.0,
    exact: bool = False,
    call_cuts: list[tuple[int, int]] | None = None,
    trace: tuple[int, int] | None = None,
    until_done: bool = False,
) -> ScheduleResult:
    """Run one power-failure schedule (see the module doc for what a cut means per board) and compare the
    final logits with ``reference``. ``exact`` (QEMU): one instruction per translation block, so each cut
    lands exactly at its count (:func:`batteryless.firmware.run`); mspdebug is always exact.
    ``call_cuts`` / ``trace`` (QEMU): cuts relative to the calls of one function (see ``run``).
    ``until_done`` (QEMU, mspdebug): cut only until the inference has finished (its DONE mark), so the
    result is printed in one piece (printing the logits and counters can take longer than a short
    power-on period; the inference, not the output, is under test)."""
    b = _board(board)
    img = image.image if isinstance(image, FlexImage) else Path(image)
    if b.emulator.get("kind") == "host":
        with tempfile.TemporaryDirectory(prefix="bl-flex-") as d:
            exe = Path(d) / "firmware.elf"
            patch_input(img, inputs, exe)
            text, reboots, code = _host_schedule(exe, cuts, Path(d), timeout)
        res = _result(text, cuts, reboots, None, reference)
    else:
        extra: dict[str, Any] = {}
        kind = b.emulator.get("kind")
        if kind == "qemu":
            extra = dict(exact=exact, call_cuts=call_cuts, trace=trace)
            if until_done:
                extra["cuts_end_mark"] = DONE_MARK
        r = run(img, b, inputs=inputs, timeout=timeout, cuts=cuts, **extra)
        if until_done and kind == "mspdebug" and cuts:
            # mspdebug runs every cut it was given: find the boot that reached DONE, run again with the
            # cuts before it only (the runs are deterministic)
            boots = 0
            for mid, _ in r.marks:
                if mid == BOOT_MARK:
                    boots += 1
                elif mid == DONE_MARK:
                    break
            else:
                boots = len(cuts) + 1  # never finished: keep every cut
            if sum(1 for mid, _ in r.marks if mid == BOOT_MARK) != len(cuts) + 1:
                # some boots were cut before their boot mark (periods shorter than start-up): the boot
                # count does not say which cut came after DONE; only the final, uncut boot finished
                boots = len(cuts) + 1
            if boots - 1 < len(cuts):
                cuts = cuts[: boots - 1]
                r = run(img, b, inputs=inputs, timeout=timeout, cuts=cuts)
        code = r.exit_code
        # call-relative cuts: report the counts where they landed
        res = _result(r.output, r.cut_counts if call_cuts else cuts, r.resets, r.instructions, reference)
    if code != 0:
        res.correct = False
        res.error = f"exit code {code}"
    elif res.logits is None:
        res.error = "no logits line"
    return res


def _host_runner(img: Path, inputs: bytes) -> tuple[tempfile.TemporaryDirectory, Path]:
    """A reusable patched copy of a host image (patching once per schedule costs more than a boot)."""
    d = tempfile.TemporaryDirectory(prefix="bl-flex-")
    exe = Path(d.name) / "firmware.elf"
    patch_input(img, inputs, exe)
    return d, exe


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
    detect (needs an image built with ``faults=True``; built so when no image is given).

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


# Bytes of a commit record flipped by the fault schedules: version, inference, next_task, CRC (flex.h)
FAULT_BYTES = (0, 4, 8, 12)
REC_SIZE = 16


def _commit_calls(trace: list[int], gap: int = 64) -> list[list[int]]:
    """Split the counts of a function's traced instructions into calls: a call's instructions are close
    together (only short detours such as bl_mark lie between), calls are a task apart."""
    calls: list[list[int]] = []
    for c in trace:
        if calls and c - calls[-1][-1] <= gap:
            calls[-1].append(c)
        else:
            calls.append([c])
    return calls


@dataclass
class _Job:
    cuts: list[int]
    exact: bool = False
    faults: list[tuple[int, int, int, int]] = field(default_factory=list)
    call_cuts: list[tuple[int, int]] | None = None
    trace: tuple[int, int] | None = None


def measure_largest_step(image: FlexImage, board: str | Path | Board, inputs: bytes, timeout: float = 300.0):
    """QEMU: the largest atomic step of the continuous-power run in instructions — the most instructions
    from the start of one commit to the start of the next (one task plus its commit), from a trace of
    bl_flex_commit (exact at any number of tasks, unlike mark ids, which wrap at 256)."""
    from batteryless.firmware import symbols

    b = _board(board)
    if b.emulator.get("kind") != "qemu":
        raise UsageError(f"the largest step is measured on QEMU (instruction trace); {b.name} is not QEMU")
    com = symbols(image.image).get("bl_flex_commit")
    if com is None:  # the restart policy never commits: the whole run is one atomic step
        return run(image.image, b, inputs=inputs, timeout=timeout).instructions
    lo = com.address & ~1
    calls = _commit_calls(
        run(image.image, b, inputs=inputs, timeout=timeout, trace=(lo, lo + com.size)).trace
    )
    return max((y[0] - x[0] for x, y in zip(calls, calls[1:], strict=False)), default=None)


def _exact_commit_jobs(image, b, inputs, timeout) -> list[_Job]:
    """The exact commit/recovery sweep on QEMU (one instruction per block): runs whose cuts land after
    every instruction offset 1..L of a commit (L: its longest call in the continuous run) — first at
    consecutive calls from power-up (the first commits), then at every second call (a commit that
    follows a completed one, deep in the inference), a few cuts per run so each lands before the
    inference ends — and one run that cuts half-way, then inside the next boot's recovery (which finds a
    valid record) at every offset, one boot after another; plus single cuts after each of the last 16
    instructions of the final commit."""
    from batteryless.firmware import symbols

    sy = symbols(image.image)
    com, rec = sy["bl_flex_commit"], sy["bl_flex_recover"]
    crange = (com.address & ~1, (com.address & ~1) + com.size)
    rrange = (rec.address & ~1, (rec.address & ~1) + rec.size)
    cont = run(image.image, b, inputs=inputs, timeout=timeout, exact=True, trace=crange)
    calls = _commit_calls(cont.trace)
    if len(calls) < 2:
        raise EmulationError(f"{image.image}: found {len(calls)} commit calls in the continuous run")
    length = max(len(c) for c in calls)
    offsets = list(range(1, length + 1))
    per_run = max(1, image.num_tasks // 2 - 1)  # every cut at s=2 advances >= 1 task: all of them land
    jobs = [_Job([], True, [], [(1, k) for k in offsets[:per_run]], crange)]
    for i in range(0, len(offsets), per_run):
        jobs.append(_Job([], True, [], [(2, k) for k in offsets[i : i + per_run]], crange))
    # the last commit's tail, one run each: a cut after its final instruction lands between the commit
    # that finishes the inference and whatever follows it (saving and printing the logits)
    last = len(calls[-1])
    jobs += [_Job([], True, [], [(len(calls), k)], crange) for k in range(max(1, last - 15), last + 1)]
    mid = calls[len(calls) // 2][0]
    rr = run(image.image, b, inputs=inputs, timeout=timeout, exact=True, cuts=[mid], trace=rrange)
    rlen = sum(1 for c in rr.trace if c > mid)  # the recovery that finds the record committed before `mid`
    rcuts = [(2, 1)] + [(1, k) for k in range(2, rlen + 1)]
    jobs.append(_Job([mid], True, [], rcuts, rrange))
    return jobs


def _mspdebug(image: Path, b: Board, inputs: bytes, cmds: list[str], timeout: float) -> str:
    """One mspdebug simulator session on a copy of ``image`` with ``inputs`` (probing, not a schedule)."""
    import shutil

    exe = shutil.which(str(b.emulator.get("binary", "mspdebug")))
    if not exe:
        raise EmulationError("mspdebug not found: install the Debian package mspdebug (scripts/setup.sh)")
    with tempfile.TemporaryDirectory(prefix="bl-flexp-") as d:
        elf = Path(d) / "firmware.elf"
        patch_input(image, inputs, elf)
        pre = ["simio add tracer bl_trace"] + (
            ["simio add hwmult bl_mpy"] if "mpy16_base" in b.emulator else []
        )
        proc = subprocess.run(
            [exe, "-n", str(b.emulator.get("driver", "sim")), *pre, f"prog {elf}", *cmds],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    return proc.stdout + proc.stderr


def _msp_commit_jobs(image, b, inputs, timeout, stride: int = 1) -> list[_Job]:
    """The exact commit sweep on mspdebug (``step N`` is exact): one run per cut after every instruction
    (``stride`` > 1: every stride-th) of the second and of a middle commit; a 32-bit store is two 16-bit
    writes on the MSP430, so cuts between the halves are among them. The entry counts come from
    breakpoints on bl_flex_commit, the length of a call from a breakpoint on its return address."""
    num = image.num_tasks + 1
    picks = [1, num // 2]
    cmds = ["setbreak bl_flex_commit"]
    for _ in range(picks[-1] + 1):
        cmds += ["run", "simio info bl_trace"]
    text = _mspdebug(image.image, b, inputs, cmds, timeout)
    counts = [int(m) for m in re.findall(r"Instruction count:\s*(\d+)", text)]
    sps = [int(m, 16) for m in re.findall(r"\( SP: ([0-9a-fA-F]+)\)", text)]
    if len(counts) <= picks[-1] or not sps:
        raise EmulationError(f"{image.image}: mspdebug did not stop at {picks[-1] + 1} commits")
    # the return address of the middle call: the word at SP on entry
    cmds = ["setbreak bl_flex_commit"] + ["run"] * (picks[-1] + 1) + ["regs"]
    text = _mspdebug(image.image, b, inputs, cmds, timeout)
    sp = [int(m, 16) for m in re.findall(r"\( SP: ([0-9a-fA-F]+)\)", text)][-1]
    text = _mspdebug(image.image, b, inputs, cmds[:-1] + [f"md 0x{sp:x} 2"], timeout)
    m = re.findall(rf"^\s*0*{sp:x}:\s+([0-9a-f]{{2}}) ([0-9a-f]{{2}})", text, re.M | re.I)
    if not m:
        raise EmulationError(f"{image.image}: could not read the commit's return address from mspdebug")
    ret = int(m[-1][1] + m[-1][0], 16)
    cmds = (
        ["setbreak bl_flex_commit"] + ["run"] * (picks[-1] + 1) + ["delbreak", f"setbreak 0x{ret:x}", "run"]
    )
    text = _mspdebug(image.image, b, inputs, cmds + ["simio info bl_trace"], timeout)
    end = [int(m) for m in re.findall(r"Instruction count:\s*(\d+)", text)][-1]
    length = end - counts[picks[-1]]
    if not 0 < length < 5000:
        raise EmulationError(f"{image.image}: implausible commit length {length} on mspdebug")
    return [_Job([counts[i] + k]) for i in picks for k in range(1, length + 1, stride)]


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
