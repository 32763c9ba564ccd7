"""Exact cut points inside the commit protocol (QEMU single-step traces, mspdebug breakpoints) and the
largest atomic step of a run."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from batteryless.boards import Board
from batteryless.errors import EmulationError, UsageError
from batteryless.firmware import patch_input, run
from batteryless.flex.image import FlexImage, _board

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
