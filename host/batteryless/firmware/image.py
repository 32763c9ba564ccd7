"""Firmware images (ELF): symbols, the patchable input buffer, and memory use per board region."""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from batteryless.boards import Board
from batteryless.errors import BuildError

INPUT_SYMBOL = "bl_input"
INPUT_MAGIC = 0x4E494C42  # "BLIN", see firmware/platform/bl_platform.h
INPUT_HEADER = 8  # magic u32 + length u32


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int


def _open(path: Path):
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block
    except OSError as exc:
        raise BuildError(f"{path}: cannot open firmware image: {exc.strerror}") from exc
    try:
        return fh, ELFFile(fh)
    except ELFError as exc:
        fh.close()
        raise BuildError(f"{path}: not an ELF firmware image ({exc})") from exc


def symbols(path: str | Path) -> dict[str, Symbol]:
    """Every named symbol of the ELF (name → address, size); on duplicates the first wins."""
    p = Path(path)
    fh, elf = _open(p)
    with fh:
        out: dict[str, Symbol] = {}
        for sec in elf.iter_sections():
            if not isinstance(sec, SymbolTableSection):
                continue
            for sym in sec.iter_symbols():
                if sym.name and sym.name not in out:
                    out[sym.name] = Symbol(sym.name, int(sym["st_value"]), int(sym["st_size"]))
        return out


def symbol(path: str | Path, name: str) -> Symbol:
    syms = symbols(path)
    if name not in syms:
        raise BuildError(f"{path}: symbol {name!r} not found (was the image built by batteryless build?)")
    return syms[name]


def _input_location(elf: ELFFile, path: Path) -> tuple[int, int]:
    """(file offset, capacity in bytes) of the bl_input buffer."""
    sym = None
    for sec in elf.iter_sections():
        if isinstance(sec, SymbolTableSection):
            found = sec.get_symbol_by_name(INPUT_SYMBOL)
            if found:
                sym = found[0]
                break
    if sym is None:
        raise BuildError(f"{path}: no {INPUT_SYMBOL} buffer in the image (the firmware takes no input)")
    addr, size = int(sym["st_value"]), int(sym["st_size"])
    for sec in elf.iter_sections():
        start = int(sec["sh_addr"])
        if sec["sh_type"] != "SHT_NOBITS" and start <= addr and addr + size <= start + int(sec["sh_size"]):
            return int(sec["sh_offset"]) + addr - start, size - INPUT_HEADER
    raise BuildError(f"{path}: {INPUT_SYMBOL} is not in a loadable section with file contents")


def input_capacity(path: str | Path) -> int:
    p = Path(path)
    fh, elf = _open(p)
    with fh:
        return _input_location(elf, p)[1]


def patch_input(image: str | Path, data: bytes, out: str | Path) -> Path:
    """Copy ``image`` to ``out`` with ``data`` in its bl_input buffer (atomic write)."""
    src, dst = Path(image), Path(out)
    fh, elf = _open(src)
    with fh:
        offset, capacity = _input_location(elf, src)
        fh.seek(0)
        blob = bytearray(fh.read())
    magic = struct.unpack_from("<I", blob, offset)[0]
    if magic != INPUT_MAGIC:
        raise BuildError(f"{src}: {INPUT_SYMBOL} does not start with the BLIN magic; rebuild the image")
    if len(data) > capacity:
        raise BuildError(
            f"{src}: input of {len(data)} bytes exceeds the image's input buffer of {capacity} bytes "
            "(rebuild with a larger BL_INPUT_CAPACITY or pass fewer samples)"
        )
    struct.pack_into("<II", blob, offset, INPUT_MAGIC, len(data))
    blob[offset + INPUT_HEADER : offset + INPUT_HEADER + len(data)] = data
    blob[offset + INPUT_HEADER + len(data) : offset + INPUT_HEADER + capacity] = bytes(capacity - len(data))
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dst.name + ".", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


# --- memory use ---------------------------------------------------------------------------------------


@dataclass
class RegionUsage:
    """Bytes an image occupies in one board region, split the way `size` does."""

    name: str
    origin: int
    length: int
    usable: int
    text: int = 0
    data: int = 0
    bss: int = 0
    sections: list[str] = field(default_factory=list)

    @property
    def used(self) -> int:
        return self.text + self.data + self.bss

    @property
    def overflow(self) -> int:
        return max(0, self.used - self.usable)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["used"] = self.used
        d["overflow"] = self.overflow
        return d


@dataclass
class SectionInfo:
    name: str
    kind: str  # text | data | bss
    address: int
    load_address: int
    size: int


def sections(path: str | Path) -> list[SectionInfo]:
    """Allocated sections with their run (VMA) and load (LMA) addresses."""
    p = Path(path)
    fh, elf = _open(p)
    with fh:
        segs = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        out: list[SectionInfo] = []
        for sec in elf.iter_sections():
            flags = int(sec["sh_flags"])
            size = int(sec["sh_size"])
            if not flags & SH_FLAGS.SHF_ALLOC or size == 0:
                continue
            addr = int(sec["sh_addr"])
            if sec["sh_type"] == "SHT_NOBITS":
                kind = "bss"
            elif flags & SH_FLAGS.SHF_WRITE:
                kind = "data"
            else:
                kind = "text"
            lma = addr
            for seg in segs:
                if seg.section_in_segment(sec) and sec["sh_type"] != "SHT_NOBITS":
                    lma = int(seg["p_paddr"]) + addr - int(seg["p_vaddr"])
                    break
            out.append(SectionInfo(sec.name, kind, addr, lma, size))
        return out


def region_usage(path: str | Path, board: Board) -> list[RegionUsage]:
    """Per board region: text (code + read-only data), data (initialised RAM, counted where it runs and,
    as its load image, in the region it is loaded from) and bss. Host images have no addresses: one
    pseudo-region 'image' holds the totals."""
    secs = sections(path)
    if board.cpu == "host":
        total = RegionUsage("image", 0, 0, 0)
        for s in secs:
            setattr(total, s.kind, getattr(total, s.kind) + s.size)
            total.sections.append(s.name)
        total.usable = total.length = total.used
        return [total]
    usage = {r.name: RegionUsage(r.name, r.origin, r.length, r.usable) for r in board.memory}
    regions = sorted(board.memory, key=lambda r: r.origin)

    def region_of(addr: int, size: int, what: str) -> RegionUsage:
        for r in regions:
            if r.origin <= addr and addr + size <= r.end:
                return usage[r.name]
        raise BuildError(
            f"{path}: section {what} at 0x{addr:X} (+{size}) lies outside every memory region of board "
            f"{board.name} ({board.path}); the linker script and board.toml disagree"
        )

    for s in secs:
        run = region_of(s.address, s.size, s.name)
        setattr(run, s.kind, getattr(run, s.kind) + s.size)
        run.sections.append(s.name)
        if s.kind == "data" and s.load_address != s.address:
            load = region_of(s.load_address, s.size, s.name + " (load image)")
            load.text += s.size
            load.sections.append(s.name + "@load")
    return [usage[r.name] for r in board.memory]
