"""Board descriptions (DESIGN.md contract 4): ``boards/<name>/board.toml`` read, validated and typed.

Board facts live only in those files; code reads them through :func:`load_board`. Every validation error
names the board file and the field, so a user can fix the file. :func:`write_board_files` turns a board into
the generated ``bl_board.h`` (C), ``bl_memory.ld`` (the linker MEMORY block) and ``board.cmake`` that the
firmware build includes, so no address is typed twice.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batteryless.errors import BoardError
from batteryless.paths import atomic_write

CPUS = ("msp430x", "cortex-m4", "cortex-m55", "host")
ACCELERATORS = ("lea", "cmsis-dsp", "none")
BACKENDS = ("ref", "lea", "cmsis")
# none: build and size only (imported boards)
EMULATOR_KINDS = ("qemu", "mspdebug", "host", "msp430sim", "none")
POWER_FIELDS = (
    "supply_voltage_v",
    "active_current_per_mhz_a",
    "sleep_current_a",
    "boot_time_s",
    "boot_charge_c",
    "nvm_write_energy_per_byte_j",
)
BUFFER_FIELDS = ("capacitance_f", "v_on", "v_off", "v_max", "leakage_resistance_ohm", "esr_ohm")
BOOTLOADER_KEYS = (
    "protocol",
    "baud",
    "fast_baud",
    "parity",
    "max_data_per_packet",
    "password_address",
    "password_length",
    "protected_ranges",
    "erase_on_bad_password",
    "bsl_rom",
    "entry_default",
)
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


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    origin: int
    length: int
    volatile: bool
    usable: int

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.origin + self.length


@dataclass(frozen=True)
class PowerModel:
    supply_voltage_v: float
    active_current_per_mhz_a: float
    sleep_current_a: float
    boot_time_s: float
    boot_charge_c: float
    nvm_write_energy_per_byte_j: float
    accel_op_energy_j: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def active_power_w(self, clock_hz: float) -> float:
        """Active power at ``clock_hz`` (current per MHz × MHz × supply voltage)."""
        return self.active_current_per_mhz_a * clock_hz / 1e6 * self.supply_voltage_v

    def energy_per_cycle_j(self, clock_hz: float) -> float:
        """Energy of one CPU cycle at ``clock_hz`` (active power / clock)."""
        return self.active_current_per_mhz_a / 1e6 * self.supply_voltage_v


@dataclass(frozen=True)
class EnergyBuffer:
    capacitance_f: float
    v_on: float
    v_off: float
    v_max: float
    leakage_resistance_ohm: float
    esr_ohm: float
    source: str

    @property
    def usable_energy_j(self) -> float:
        """½C(V_on² − V_off²): what one charge delivers between the thresholds."""
        return 0.5 * self.capacitance_f * (self.v_on**2 - self.v_off**2)


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    clock_hz: float
    backends: list[str]
    default_backend: str
    dir: Path
    memory: list[MemoryRegion]
    accelerator: str
    power: PowerModel
    energy_buffer: EnergyBuffer
    bootloader: dict[str, Any] | None
    emulator: dict[str, Any]
    toolchain: dict[str, Any]
    # Other top-level tables of board.toml that this loader does not interpret (e.g. codegen's [cost]).
    extra: dict[str, Any] = field(default_factory=dict)
    # [stand_in]: backend -> why its images for this board will not compute on the real part (they link a
    # stand-in; batteryless.stand_in). Backends not listed really run there.
    stand_in: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The board.toml this board was read from."""
        return self.dir / "board.toml"

    def region(self, name: str) -> MemoryRegion:
        for r in self.memory:
            if r.name == name:
                return r
        have = ", ".join(r.name for r in self.memory)
        raise BoardError(f"{self.path}: board {self.name!r} has no memory region {name!r} (it has: {have})")

    def has_region(self, name: str) -> bool:
        return any(r.name == name for r in self.memory)

    def toolchain_file(self, key: str) -> Path:
        """A file named in [toolchain] (e.g. ``cmake_toolchain``, ``linker_script``), checked to exist."""
        rel = self.toolchain.get(key)
        if rel is None:
            raise BoardError(f"{self.path}: [toolchain].{key} is not set for board {self.name!r}")
        p = self.dir / str(rel)
        if not p.is_file():
            raise BoardError(f"{self.path}: [toolchain].{key} names {p}, which does not exist")
        return p


# --- loading --------------------------------------------------------------------------------------------


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


# --- generated build inputs -----------------------------------------------------------------------------


def _banner(board: Board, comment: str) -> str:
    from batteryless import __version__

    src = f"boards/{board.name}/board.toml"
    return f"{comment} Generated by batteryless {__version__} from {src}; do not edit.\n"


def board_header(board: Board) -> str:
    """C header text: board name, clock and every region's origin/length/usable as macros."""
    guard = "BL_BOARD_H"
    lines = [
        _banner(board, "/*")[:-1] + " */",
        f"#ifndef {guard}",
        f"#define {guard}",
        f'#define BL_BOARD_NAME "{board.name}"',
        f"#define BL_BOARD_CLOCK_HZ {int(board.clock_hz)}UL",
        f"#define BL_BOARD_CPU_{board.cpu.upper().replace('-', '_')} 1",
        f"#define BL_BOARD_ACCEL_{board.accelerator.upper().replace('-', '_')} 1",
    ]
    for reg in board.memory:
        up = reg.name.upper()
        lines += [
            f"#define BL_REGION_{up}_ORIGIN 0x{reg.origin:X}UL",
            f"#define BL_REGION_{up}_LENGTH 0x{reg.length:X}UL",
            f"#define BL_REGION_{up}_USABLE {reg.usable}UL",
            f"#define BL_REGION_{up}_VOLATILE {int(reg.volatile)}",
        ]
    if "mark_register" in board.emulator:
        lines.append(f"#define BL_BOARD_MARK_REGISTER 0x{int(board.emulator['mark_register']):X}u")
    if "mpy16_base" in board.emulator:
        lines.append(f"#define BL_BOARD_MPY16_SIM_BASE 0x{int(board.emulator['mpy16_base']):X}u")
    adc = board.extra.get("supply_adc")
    if adc:  # the EVE energy hook's ADC (board.toml [supply_adc], its sources there)
        keys = ("adc12_base", "ref_base", "channel", "divider", "ref_mv", "bits")
        missing = [k for k in keys if not isinstance(adc.get(k), int)]
        if missing:
            raise BoardError(f"{board.path}: [supply_adc] needs integer {', '.join(missing)}")
        lines += [
            f"#define BL_BOARD_SUPPLY_ADC12_BASE 0x{int(adc['adc12_base']):X}u",
            f"#define BL_BOARD_SUPPLY_REF_BASE 0x{int(adc['ref_base']):X}u",
            f"#define BL_BOARD_SUPPLY_CHANNEL {int(adc['channel'])}u",
            f"#define BL_BOARD_SUPPLY_DIVIDER {int(adc['divider'])}u",
            f"#define BL_BOARD_SUPPLY_REF_MV {int(adc['ref_mv'])}u",
            f"#define BL_BOARD_SUPPLY_BITS {int(adc['bits'])}u",
        ]
    lines += [f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def memory_ld(board: Board) -> str:
    """The linker MEMORY block (upper-case region names) plus ``__bl_<region>_{origin,length}`` symbols."""
    lines = [_banner(board, "/*")[:-1] + " */", "MEMORY", "{"]
    for reg in board.memory:
        attrs = "rwx" if reg.name in ("code", "vectors") else "rw"
        lines.append(f"  {reg.name.upper()} ({attrs}) : ORIGIN = 0x{reg.origin:X}, LENGTH = 0x{reg.length:X}")
    lines.append("}")
    for reg in board.memory:
        lines.append(f"__bl_{reg.name}_origin = 0x{reg.origin:X};")
        lines.append(f"__bl_{reg.name}_length = 0x{reg.length:X};")
    return "\n".join(lines) + "\n"


def board_cmake(board: Board) -> str:
    """CMake variables for the build: BL_BOARD_*, the platform layer and the board's files."""
    lines = [_banner(board, "#")[:-1]]
    vals = {
        "BL_BOARD_NAME": board.name,
        "BL_BOARD_CPU": board.cpu,
        "BL_BOARD_CLOCK_HZ": str(int(board.clock_hz)),
        "BL_BOARD_ACCELERATOR": board.accelerator,
        "BL_BOARD_BACKENDS": ";".join(board.backends),
        "BL_BOARD_DEFAULT_BACKEND": board.default_backend,
        "BL_BOARD_PLATFORM": str(board.toolchain.get("platform", "host")),
        "BL_BOARD_DIR": board.dir.as_posix(),
    }
    if "linker_script" in board.toolchain:
        vals["BL_BOARD_LINKER_SCRIPT"] = board.toolchain_file("linker_script").as_posix()
    if "cmake_toolchain" in board.toolchain:
        vals["BL_BOARD_TOOLCHAIN_FILE"] = board.toolchain_file("cmake_toolchain").as_posix()
    for k, v in vals.items():
        lines.append(f'set({k} "{v}")')
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return  # unchanged: keep the timestamp so builds stay cached
    atomic_write(path, text)


def write_board_header(board: Board, path: str | Path) -> Path:
    """Write ``bl_board.h`` (atomically) to ``path`` (a file or a folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / "bl_board.h"
    _atomic_write(p, board_header(board))
    return p


def write_board_files(board: Board, out_dir: str | Path) -> dict[str, Path]:
    """Write ``bl_board.h``, ``bl_memory.ld`` and ``board.cmake`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    files = {"header": out / "bl_board.h", "memory_ld": out / "bl_memory.ld", "cmake": out / "board.cmake"}
    _atomic_write(files["header"], board_header(board))
    _atomic_write(files["memory_ld"], memory_ld(board))
    _atomic_write(files["cmake"], board_cmake(board))
    return files


def main_for_cmake(argv: list[str] | None = None) -> int:
    """``python -m batteryless.boards BOARD OUT_DIR``: used by CMakeLists.txt to generate the board files."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m batteryless.boards BOARD OUT_DIR", file=sys.stderr)
        return 2
    try:
        write_board_files(load_board(args[0]), args[1])
    except BoardError as err:
        print(f"error: {err}", file=sys.stderr)
        return 7
    return 0


__all__ = [
    "Board",
    "EnergyBuffer",
    "MemoryRegion",
    "PowerModel",
    "board_cmake",
    "board_header",
    "boards_dir",
    "list_boards",
    "load_board",
    "memory_ld",
    "with_emulator",
    "write_board_files",
    "write_board_header",
]
