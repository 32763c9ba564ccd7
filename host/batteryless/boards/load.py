"""Reading ``boards/<name>/board.toml``: every validation error names the board file and the field."""

from __future__ import annotations

import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from batteryless.boards.board import (
    ACCELERATORS,
    BACKENDS,
    BUFFER_FIELDS,
    CPUS,
    EMULATOR_KINDS,
    POWER_FIELDS,
    Board,
    EnergyBuffer,
    MemoryRegion,
    PowerModel,
)
from batteryless.errors import BoardError

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_KNOWN_TOP_LEVEL = frozenset(
    {
        "name",
        "description",
        "cpu",
        "clock_hz",
        "backends",
        "default_backend",
        "accelerator",
        "memory",
        "power",
    }
    | {"energy_buffer", "bootloader", "emulator", "toolchain", "stand_in"}
)


def boards_dir() -> Path:
    """The folder holding one sub-folder per board (``$BATTERYLESS_BOARDS`` overrides)."""
    env = os.environ.get("BATTERYLESS_BOARDS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "boards"


def list_boards() -> list[str]:
    """Names of the boards under :func:`boards_dir` (folders holding a board.toml), sorted."""
    root = boards_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "board.toml").is_file())


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    is_name = (
        isinstance(name_or_path, str)
        and "/" not in text
        and os.sep not in text
        and not text.endswith(".toml")
    )
    if is_name and _NAME_RE.match(text.replace("-", "_")):
        cand = boards_dir() / text / "board.toml"
        if cand.is_file():
            return cand
        known = ", ".join(list_boards()) or "none"
        raise BoardError(
            f"unknown board {text!r}: no {cand} (known boards: {known}; or pass a path to a board.toml)"
        )
    p = Path(name_or_path)
    if p.is_dir():
        p = p / "board.toml"
    if not p.is_file():
        raise BoardError(f"{p}: board file not found (pass a board name or a path to a board.toml)")
    return p


class _Reader:
    """Typed access to one TOML table with errors naming the file and the dotted field."""

    def __init__(self, path: Path, table: Any, where: str = "") -> None:
        self.path = path
        self.where = where
        if not isinstance(table, dict):
            raise BoardError(f"{path}: {where or 'top level'} must be a table")
        self.t = table

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, msg: str) -> BoardError:
        return BoardError(f"{self.path}: field '{self._key(key)}' {msg}")

    def has(self, key: str) -> bool:
        return key in self.t

    def raw(self, key: str) -> Any:
        if key not in self.t:
            raise self.fail(key, "is missing")
        return self.t[key]

    def str(self, key: str, choices: tuple[str, ...] | None = None) -> str:
        v = self.raw(key)
        if not isinstance(v, str) or not v:
            raise self.fail(key, f"must be a non-empty string, got {v!r}")
        if choices and v not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}; got {v!r}")
        return v

    def int(self, key: str, minimum: int = 0) -> int:
        v = self.raw(key)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(key, f"must be an integer, got {v!r}")
        if v < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {v}")
        return v

    def num(self, key: str, positive: bool = False) -> float:
        v = self.raw(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self.fail(key, f"must be a finite number, got {v!r}")
        if v < 0 or (positive and v == 0):
            raise self.fail(key, f"must be {'> 0' if positive else '>= 0'}, got {v}")
        return float(v)

    def bool(self, key: str) -> bool:
        v = self.raw(key)
        if not isinstance(v, bool):
            raise self.fail(key, f"must be true or false, got {v!r}")
        return v

    def table(self, key: str) -> _Reader:
        return _Reader(self.path, self.raw(key), self._key(key))


def _memory(r: _Reader) -> list[MemoryRegion]:
    items = r.raw("memory")
    if not isinstance(items, list) or not items:
        raise r.fail("memory", "must be a non-empty array of [[memory]] tables")
    regions: list[MemoryRegion] = []
    for i, item in enumerate(items):
        m = _Reader(r.path, item, f"memory[{i}]")
        name = m.str("name")
        if not _NAME_RE.match(name):
            raise m.fail("name", f"must be lower-case letters, digits and '_', got {name!r}")
        if any(x.name == name for x in regions):
            raise m.fail("name", f"repeats region name {name!r}")
        origin, length, usable = m.int("origin"), m.int("length", 1), m.int("usable")
        if usable > length:
            raise m.fail("usable", f"({usable}) must not exceed length ({length}) of region {name!r}")
        regions.append(MemoryRegion(name, origin, length, m.bool("volatile"), usable))
    # Regions with real addresses must not overlap (origin 0 on the host is a placeholder).
    placed = sorted((x for x in regions if x.origin or x.name == "code"), key=lambda x: x.origin)
    if not all(x.origin == 0 for x in regions):
        for a, b in zip(placed, placed[1:], strict=False):
            if b.origin < a.end:
                raise BoardError(
                    f"{r.path}: memory regions {a.name!r} (0x{a.origin:X}-0x{a.end - 1:X}) and "
                    f"{b.name!r} (0x{b.origin:X}-0x{b.end - 1:X}) overlap"
                )
    for role in ("ram", "code", "nvm"):
        if not any(x.name == role for x in regions):
            raise r.fail("memory", f"needs a region named {role!r} (roles: ram, code, nvm)")
    return regions


def _power(r: _Reader) -> PowerModel:
    p = r.table("power")
    vals = {
        k: p.num(k, positive=(k in ("supply_voltage_v", "active_current_per_mhz_a"))) for k in POWER_FIELDS
    }
    acc: dict[str, float] = {}
    if p.has("accel_op_energy_j"):
        a = p.table("accel_op_energy_j")
        acc = {k: a.num(k) for k in a.t}
    s = p.table("sources")
    sources: dict[str, str] = {}
    for k in (*POWER_FIELDS, "accel_op_energy_j"):
        if not s.has(k):
            raise s.fail(k, "is missing: every power number needs its source (or 'ASSUMED: why')")
        sources[k] = s.str(k)
    for k in s.t:
        if k not in sources:
            raise s.fail(
                k, f"is not a power field (known: {', '.join((*POWER_FIELDS, 'accel_op_energy_j'))})"
            )
    return PowerModel(**vals, accel_op_energy_j=acc, sources=sources)


def _buffer(r: _Reader) -> EnergyBuffer:
    b = r.table("energy_buffer")
    vals = {k: b.num(k, positive=True) for k in BUFFER_FIELDS}
    if not vals["v_off"] < vals["v_on"] <= vals["v_max"]:
        raise b.fail(
            "v_on", f"needs v_off < v_on <= v_max; got {vals['v_off']} / {vals['v_on']} / {vals['v_max']}"
        )
    return EnergyBuffer(**vals, source=b.str("source"))


def _ranges(b: _Reader, key: str) -> None:
    v = b.raw(key)
    pairs = [v] if key == "bsl_rom" else v
    if not isinstance(pairs, list) or not pairs:
        raise b.fail(key, "must be a list of [first, last] address pairs")
    for pair in pairs:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
            or pair[0] > pair[1]
        ):
            raise b.fail(
                key, f"must hold [first, last] integer address pairs with first <= last, got {pair!r}"
            )


def _bootloader(r: _Reader) -> dict[str, Any] | None:
    if not r.has("bootloader"):
        return None
    b = r.table("bootloader")
    b.str("protocol")
    for k in ("baud", "fast_baud", "max_data_per_packet", "password_length"):
        b.int(k, 1)
    b.int("password_address")
    b.str("parity", ("none", "even", "odd"))
    b.str("entry_default")
    for k in ("protected_ranges", "erase_on_bad_password", "bsl_rom"):
        _ranges(b, k)
    return dict(b.t)


def _stand_in(r: _Reader, backends: list[str], default_backend: str) -> dict[str, str]:
    if not r.has("stand_in"):
        return {}
    t = r.table("stand_in")
    for backend in t.t:
        if backend not in backends:
            raise t.fail(backend, f"names a backend the board does not have (backends: {backends})")
        t.str(backend)
        if not t.t[backend].strip():
            raise t.fail(backend, "needs the reason the images will not compute on the part")
    if default_backend in t.t:
        raise r.fail(
            "default_backend",
            f"({default_backend!r}) links a stand-in on this board ([stand_in]); a default must compute on "
            "the part",
        )
    return dict(t.t)


def with_emulator(board: str | Path | Board, kind: str | None) -> Board:
    """``board`` run by another emulator of its ``[emulator].alternatives`` (e.g. the MSP430FR5994 on the
    project's own simulator, "msp430sim", instead of mspdebug). ``None`` or the board's own kind returns
    the board unchanged. Everything that runs images switches on ``board.emulator["kind"]``, so the
    returned board can be handed to run(), FLEX and the firmware-level emulator as it is."""
    import dataclasses

    b = board if isinstance(board, Board) else load_board(board)
    if kind is None or kind == b.emulator.get("kind"):
        return b
    alts = list(b.emulator.get("alternatives", []))
    if kind not in alts:
        raise BoardError(
            f"board {b.name} has no emulator {kind!r} (its [emulator] kind is {b.emulator.get('kind')!r}; "
            f"alternatives: {', '.join(alts) or 'none'})"
        )
    return dataclasses.replace(b, emulator={**b.emulator, "kind": kind})


def load_board(name_or_path: str | Path) -> Board:
    """Read and validate a board by name (``boards/<name>/board.toml``) or by path (file or folder)."""
    path = _resolve(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise BoardError(f"{path}: cannot read: {exc.strerror}") from exc
    r = _Reader(path, data)
    name = r.str("name")
    if name != path.parent.name and path.parent.parent == boards_dir():
        raise r.fail("name", f"is {name!r} but the folder is {path.parent.name!r}; make them the same")
    backends = r.raw("backends")
    if not isinstance(backends, list) or not backends or not all(b in BACKENDS for b in backends):
        raise r.fail(
            "backends", f"must be a non-empty list drawn from {', '.join(BACKENDS)}; got {backends!r}"
        )
    default_backend = r.str("default_backend")
    if default_backend not in backends:
        raise r.fail("default_backend", f"({default_backend!r}) must be one of backends {backends}")
    stand_in = _stand_in(r, backends, default_backend)
    emu = r.table("emulator")
    emu.str("kind", EMULATOR_KINDS)
    if emu.t["kind"] == "qemu":
        emu.str("machine")
    alts = emu.t.get("alternatives", [])
    if not isinstance(alts, list) or not all(isinstance(a, str) and a in EMULATOR_KINDS for a in alts):
        raise emu.fail("alternatives", f"must be a list drawn from {', '.join(EMULATOR_KINDS)}; got {alts!r}")
    by_backend = emu.t.get("by_backend", {})
    if not isinstance(by_backend, dict) or not all(
        be in backends and kind in alts for be, kind in by_backend.items()
    ):
        raise emu.fail(
            "by_backend", f"must map backends of the board to its alternatives; got {by_backend!r}"
        )
    tool = r.table("toolchain")
    board = Board(
        name=name,
        description=r.str("description"),
        cpu=r.str("cpu", CPUS),
        clock_hz=float(r.int("clock_hz", 1)),
        backends=list(backends),
        default_backend=default_backend,
        dir=path.parent.resolve(),
        memory=_memory(r),
        accelerator=r.str("accelerator", ACCELERATORS),
        power=_power(r),
        energy_buffer=_buffer(r),
        bootloader=_bootloader(r),
        emulator=dict(emu.t),
        toolchain=dict(tool.t),
        extra={k: v for k, v in data.items() if k not in _KNOWN_TOP_LEVEL},
        stand_in=stand_in,
    )
    for key in ("cmake_toolchain", "linker_script"):
        if key in board.toolchain:
            board.toolchain_file(key)
    return board
