"""One interface for running an image on whichever emulator the board names (``[emulator].kind``): host,
QEMU, mspdebug or the project's msp430sim. :func:`run` patches the input, dispatches to the emulator's own
module (``firmware/host.py``, ``qemu.py``, ``mspdebug.py``, ``msp430sim.py``: each has ``run_image``) and
returns a :class:`RunResult` (output, exit code, instruction or MCLK-cycle count, marks, power cuts)."""

from __future__ import annotations

import collections
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batteryless.boards import Board
from batteryless.errors import EmulationError, UsageError
from batteryless.firmware.image import (
    patch_input,
    symbol,
)
from batteryless.firmware.tools import _resolve_board
from batteryless.progress import ProgressFn, report


@dataclass
class RunResult:
    output: str
    exit_code: int
    unit: str | None  # "instructions" | "mclk_cycles" | None (host)
    count: int | None
    instructions: int | None = None
    mclk_cycles: int | None = None
    marks: list[tuple[int | None, int]] = field(default_factory=list)  # (mark id or None, count at mark)
    resets: int = 0
    cut_counts: list[int] = field(default_factory=list)  # QEMU: the count when each power cut took effect
    stopped: bool = False  # ended by ``stop_at`` (exit_code is then QEMU_STOP_EXIT)
    mark_hits: dict[int | None, int] = field(default_factory=dict)  # hits per mark id (all ids)
    translations: int | None = None  # QEMU: translation blocks translated (a profiling figure)
    trace: list[int] = field(default_factory=list)  # QEMU ``trace``: count before each traced instruction
    boot_outputs: list[str] = field(default_factory=list)  # msp430sim: each cut boot's output, in order

    @property
    def values(self) -> dict[str, list[int]]:
        return parse_output(self.output)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "exit_code": self.exit_code,
            "unit": self.unit,
            "count": self.count,
            "instructions": self.instructions,
            "mclk_cycles": self.mclk_cycles,
            "marks": [list(m) for m in self.marks],
            "resets": self.resets,
            "cut_counts": self.cut_counts,
            "stopped": self.stopped,
            "mark_hits": {str(k): v for k, v in self.mark_hits.items()},
            "translations": self.translations,
            "boot_outputs": self.boot_outputs,
        }


_INT_RE = re.compile(r"^-?\d+$")


def parse_output(text: str) -> dict[str, list[int]]:
    """Lines "key v0 v1 ..." with integer values → {key: [v0, v1, ...]} (other lines are skipped)."""
    out: dict[str, list[int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and all(_INT_RE.match(p) for p in parts[1:]):
            out[parts[0]] = [int(p) for p in parts[1:]]
    return out


def run(
    image: str | Path,
    board: str | Path | Board,
    inputs: bytes | None = None,
    timeout: float = 120.0,
    cuts: list[int] | None = None,
    progress: ProgressFn | None = None,
    *,
    stop_at: int | None = None,
    mark_ids: Iterable[int | None] | None = None,
    reload_image: bool = False,
    exact: bool = False,
    trace: tuple[int, int] | None = None,
    call_cuts: list[tuple[int, int]] | None = None,
    cuts_end_mark: int | None = None,
    cut_unit: str = "instructions",
    writes: Sequence[tuple[int, str, int]] | None = None,
) -> RunResult:
    """Run ``image`` the way ``board``'s [emulator] table says, with ``inputs`` in its bl_input buffer.

    ``cuts`` (ascending instruction counts) cut power at those points: a QEMU system reset through the
    plugin, or an mspdebug ``reset`` after stepping that many instructions; NVM survives, RAM is
    re-initialised by startup. On the host, which has no instruction counter, each cut ``k`` ends one boot
    at its k-th ``bl_mark()`` call, with NVM (the ``bl_nvm`` section) kept in a file between boots.

    QEMU: the count is exact; a cut at N takes effect at the end of the translation block in which the
    count reaches N (at most one block late, the same place on every run); ``cut_counts`` holds the count
    at which each cut took effect. Any number of cuts may be given (they go to the plugin in a file).
    ``stop_at`` (QEMU only) ends the run cleanly at the first block boundary where the count is >= N —
    the end of a trace whose last power-on period has no end: the output so far is returned with
    ``stopped=True`` and ``exit_code == QEMU_STOP_EXIT`` (87), not an error.
    ``mark_ids``: record the individual hits (``marks``) only of these mark ids (``None`` for the single
    ``bl_mark`` address; an empty collection records none) — a long run has many marks; ``mark_hits``
    always counts the hits of every id. Default: every hit is recorded.
    ``reload_image`` (QEMU): let every power cut rewrite the loaded ELF sections (QEMU's own reset; it
    throws away all translated code, ~10x slower per cut). By default only the first boot loads them: the
    image is flash and keeps its contents, RAM is re-initialised by startup, NVM survives either way.
    ``exact`` (QEMU): one instruction per translation block (``-singlestep``, several times slower), so
    every cut at N lands exactly after N instructions. ``trace=(lo, hi)`` (QEMU): ``trace`` lists the
    count before each executed instruction whose address is in [lo, hi) (e.g. one function's code).
    ``call_cuts`` (QEMU, with ``trace`` = one function starting at lo; ``cuts`` may be given too): pairs
    (s, k), cut i after the k-th instruction of the s-th call of that function since the previous such cut
    (use with ``exact``): one run sweeps many offsets of a function that is called again and again.
    ``cuts_end_mark`` (QEMU): when ``bl_mark`` of this id first runs, the remaining cuts are dropped.
    ``cut_unit`` "mclk_cycles" (msp430sim only): ``cuts`` are absolute MCLK cycle counts.
    ``writes`` (QEMU, msp430sim): ``(count, symbol, value)`` in ascending count (the unit of ``cuts``):
    write ``value`` (little-endian, the symbol's size: 1, 2 or 4 bytes) to the image's ``symbol`` once the
    count reaches ``count``, before the next instruction runs: count 0 before the first boot, a cut's count
    right after that power cut, before the next boot (QEMU: at the first translation block whose count is
    >= ``count``). Startup re-initialises RAM at every boot, so a value meant for a whole boot belongs in a
    variable that survives it (NVM, ``BL_NVM``). On msp430sim a write to ``bl_eve_supply_mv`` also sets
    the supply its ADC12_B model converts (``Msp430Sim.set_supply_mv``), so an image built with the ADC
    hook (``BL_EVE_SUPPLY_ADC=1``, which has no such variable: then only the ADC model is set) reads the
    same voltage.

    Raises :class:`EmulationError` if the emulator is missing or the firmware does not finish in
    ``timeout`` seconds or ``cuts`` are not positive and strictly ascending, :class:`UsageError` for a
    bad ``stop_at``."""
    b = _resolve_board(board)
    img = Path(image)
    if not img.is_file():
        raise EmulationError(f"{img}: firmware image not found (run `batteryless build` first)")
    kind = b.emulator.get("kind")
    if stop_at is not None:
        if isinstance(stop_at, bool) or not isinstance(stop_at, int) or stop_at < 1:
            raise UsageError(f"stop_at must be a positive instruction count, got {stop_at!r}")
        if kind != "qemu":
            raise UsageError(f"stop_at needs an instruction-counting emulator (QEMU); {b.name} is {kind!r}")
    if cut_unit != "instructions" and not (cut_unit == "mclk_cycles" and kind == "msp430sim"):
        raise UsageError(
            f"cut_unit {cut_unit!r} needs the msp430sim emulator (cycle cuts); {b.name} is {kind!r}"
        )
    ids = None if mark_ids is None else frozenset(mark_ids)
    pokes = _resolve_writes(img, writes, kind) if writes else []
    report(progress, f"run {img.name} on {b.name}", 0, 1)
    with tempfile.TemporaryDirectory(prefix="bl-run-") as tmp:
        target = Path(tmp) / "firmware.elf"
        if inputs is not None:
            patch_input(img, bytes(inputs), target)
        else:
            shutil.copyfile(img, target)
            target.chmod(0o755)
        # each emulator's module has run_image (imported here: they import RunResult from this module)
        from batteryless.firmware import host, msp430sim, mspdebug, qemu

        if kind == "host":
            res = host.run_image(target, timeout, cuts or [], Path(tmp) / "nvm.bin")
        elif kind == "qemu":
            # symbols from the caller's image (the same addresses; its parse is cached across runs)
            res = qemu.run_image(
                target, b, timeout, cuts or [], Path(tmp), stop_at, ids, img, reload_image, exact, trace,
                call_cuts, cuts_end_mark, pokes,
            )  # fmt: skip
        elif kind == "mspdebug":
            res = mspdebug.run_image(target, b, timeout, cuts or [])
        elif kind == "msp430sim":
            res = msp430sim.run_image(target, b, timeout, cuts or [], cut_unit, writes=pokes)
        else:
            raise EmulationError(f"{b.path}: [emulator].kind {kind!r} cannot run firmware")
    if kind != "qemu":
        res.mark_hits = dict(collections.Counter(m[0] for m in res.marks))
        if ids is not None:
            res.marks = [m for m in res.marks if m[0] in ids]
    report(progress, f"run {img.name} on {b.name}", 1, 1)
    return res


def _resolve_writes(
    img: Path, writes: Sequence[tuple[int, str, int]], kind: str | None
) -> list[tuple[int, str, int, int, int]]:
    """``writes`` as (count, symbol, address, size, value), checked: a one-line :class:`UsageError` for an
    emulator without writes, a symbol the image lacks, a size other than 1/2/4, a value that does not fit
    or counts that go backwards."""
    if kind not in ("qemu", "msp430sim"):
        raise UsageError(
            f"memory writes during a run need QEMU or msp430sim; this board's emulator is {kind!r}"
        )
    from batteryless.firmware.image import symbols

    syms = symbols(img)
    out: list[tuple[int, str, int, int, int]] = []
    last = 0
    for count, name, value in writes:
        if isinstance(count, bool) or not isinstance(count, int) or count < last:
            raise UsageError(f"write counts must be ascending integers >= 0: {count!r} after {last}")
        last = count
        if name not in syms and kind == "msp430sim" and name == "bl_eve_supply_mv":
            # an image with the ADC hook has no variable (the linker dropped it): the ADC model only
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                raise UsageError(f"value {value!r} for {name} does not fit its 2 byte(s) (unsigned)")
            out.append((count, name, -1, 2, value))
            continue
        if name not in syms:
            raise UsageError(f"{img}: no symbol {name!r} to write (not built with it?)")
        size = syms[name].size
        if size not in (1, 2, 4):
            raise UsageError(f"{img}: symbol {name!r} is {size} bytes; writes take 1, 2 or 4")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << (8 * size):
            raise UsageError(f"value {value!r} for {name} does not fit its {size} byte(s) (unsigned)")
        out.append((count, name, syms[name].address, size, value))
    return out


def _check_cuts(cuts: list[int]) -> None:
    bad = next(
        (
            i
            for i, c in enumerate(cuts)
            if isinstance(c, bool) or not isinstance(c, int) or c <= 0 or (i and c <= cuts[i - 1])
        ),
        None,
    )
    if bad is not None:
        raise EmulationError(
            f"power cuts must be positive, strictly ascending instruction counts: cut {bad} is "
            f"{cuts[bad]!r}" + (f" after {cuts[bad - 1]!r}" if bad else "")
        )


def image_symbol(image: str | Path, name: str) -> int:
    """Address of ``name`` in ``image`` (convenience for tests and tools)."""
    return symbol(image, name).address
