"""One power-failure schedule on one harness (host marks, QEMU / mspdebug instruction counts) and the
protocol checks (:data:`CHECKS`) applied to its result."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batteryless.boards import Board
from batteryless.errors import EmulationError
from batteryless.firmware import HOST_POWER_CUT_EXIT, parse_output, patch_input, run
from batteryless.flex.image import BOOT_MARK, DONE_MARK, FlexImage, _board

# What the harnesses check on every schedule (ScheduleResult.violated names the ones that failed):
#   logits       the final logits equal the continuous-power run's, bit for bit (and the run ended cleanly);
#   corrupt      no committed state failed its checks (``corrupt`` beyond the uncut run's; a cut inside the
#                very first commit is counted apart as ``unborn`` and allowed);
#   reexecution  no power failure threw away more than one atomic step (``lost_max`` tasks <= the policy's
#                tasks per commit: flex 1, layer/jit the longest layer, restart all);
#   fault-detection  an injected corruption of the committed record (fault schedules) was detected.
CHECKS = ("logits", "corrupt", "reexecution", "fault-detection")


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
    mode: int | None = None  # EVE: the mode the finished inference ran in (images with modes)


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
    res.mode = vals.get("mode", [None])[0]
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
    ``until_done`` (QEMU, mspdebug, msp430sim): cut only until the inference has finished (its DONE mark),
    so the result is printed in one piece (printing the logits and counters can take longer than a short
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
        if until_done and kind in ("mspdebug", "msp430sim") and cuts:
            # mspdebug and msp430sim run every cut they were given: find the boot that reached DONE, run
            # again with the cuts before it only (the runs are deterministic)
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
