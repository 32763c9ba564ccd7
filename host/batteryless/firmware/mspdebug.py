"""Runner: mspdebug's simulator (MSP430 boards) — MCLK cycles, marks from its IO tracer, power cuts by
``reset`` after stepping N instructions."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from batteryless.boards import Board
from batteryless.errors import EmulationError
from batteryless.firmware.image import (
    symbols,
)
from batteryless.firmware.runner import RunResult

_MD_RE = re.compile(r"^\s*([0-9a-fA-F]+):((?:\s[0-9a-fA-F]{2})+)")


def _md_bytes(text: str, address: int, length: int) -> bytes:
    mem: dict[int, int] = {}
    for line in text.splitlines():
        m = _MD_RE.match(line)
        if not m:
            continue
        base = int(m.group(1), 16)
        for i, h in enumerate(m.group(2).split()):
            mem[base + i] = int(h, 16)
    try:
        return bytes(mem[address + i] for i in range(length))
    except KeyError as exc:
        raise EmulationError(f"mspdebug did not dump 0x{address:X}+{length}") from exc


def run_image(elf: Path, b: Board, timeout: float, cuts: list[int]) -> RunResult:
    mspdebug = shutil.which(str(b.emulator.get("binary", "mspdebug")))
    if not mspdebug:
        raise EmulationError("mspdebug not found: install the Debian package mspdebug (scripts/setup.sh)")
    syms = symbols(elf)
    for need in ("bl_done", "bl_out_buf", "bl_out_len", "bl_exit_code"):
        if need not in syms:
            raise EmulationError(f"{elf}: symbol {need} missing; not an MSP430 batteryless image")
    out_buf = syms["bl_out_buf"]
    driver = str(b.emulator.get("driver", "sim"))
    # The tracer in verbose mode prints every IO write with its MCLK timestamp as it happens (its
    # "simio info" history keeps only the last 16), which is how marks are timed.
    cmds = ["simio add tracer bl_trace", "simio config bl_trace verbose"]
    if "mpy16_base" in b.emulator:
        # The simulator's classic 16x16 multiplier (at its fixed address; the firmware probes for it).
        cmds.append("simio add hwmult bl_mpy")
    cmds.append(f"prog {elf}")
    done_steps = 0
    for c in cuts:
        if c <= done_steps:
            raise EmulationError(
                f"power cuts must be positive, strictly ascending instruction counts: {cuts}"
            )
        cmds += [f"step {c - done_steps}", "reset"]
        done_steps = c
    cmds += [
        "setbreak bl_done",
        "run",
        "simio info bl_trace",
        f"md 0x{syms['bl_exit_code'].address:x} 2",
        f"md 0x{syms['bl_out_len'].address:x} 2",
        f"md 0x{out_buf.address:x} {out_buf.size}",
    ]
    try:
        proc = subprocess.run(
            [mspdebug, "-n", driver, *cmds], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise EmulationError(
            f"{elf}: mspdebug {driver} run did not reach bl_done within {timeout:.0f} s (firmware hung?)"
        ) from exc
    text = proc.stdout + proc.stderr
    if proc.returncode != 0 or "Instruction count:" not in text:
        raise EmulationError(f"mspdebug {driver} failed (exit {proc.returncode}): {text.strip()[-800:]}")
    insns = int(re.search(r"Instruction count:\s*(\d+)", text).group(1))  # type: ignore[union-attr]
    mclk = int(re.search(r"MCLK:\s*(\d+)", text).group(1))  # type: ignore[union-attr]
    code = int.from_bytes(_md_bytes(text, syms["bl_exit_code"].address, 2), "little", signed=True)
    n = int.from_bytes(_md_bytes(text, syms["bl_out_len"].address, 2), "little")
    output = _md_bytes(text, out_buf.address, min(n, out_buf.size)).decode("ascii", errors="replace")
    marks = []
    mark_reg = b.emulator.get("mark_register")
    live = text[: text.index("Instruction count:")]  # the verbose stream, not the history dump after it
    for m in re.finditer(r"^\s*(\d+): write\.w => 0x([0-9a-f]+) 0x([0-9a-f]+)", live, re.M):
        if int(m.group(2), 16) == mark_reg:
            marks.append((int(m.group(3), 16), int(m.group(1))))
    return RunResult(output, code, "mclk_cycles", mclk, insns, mclk, marks, len(cuts), list(cuts))
