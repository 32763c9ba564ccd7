"""Firmware images for the BSL: ELF (pyelftools), Intel HEX (intelhex) and TI-TXT readers.

Every reader returns an :class:`Image`: sorted, non-overlapping :class:`Segment` runs where adjacent runs are
merged. Overlapping data (two sections or records writing the same byte) is refused, because which one
wins would be a guess. Errors name the file and, where there is one, the line.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from batteryless.errors import ImageError
from batteryless.paths import atomic_write


@dataclass(frozen=True)
class Segment:
    address: int
    data: bytes

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.address + len(self.data)

    def __repr__(self) -> str:
        return f"Segment(0x{self.address:05X}..0x{self.end - 1:05X}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class Image:
    segments: tuple[Segment, ...]
    source: str = "<memory>"
    format: str = "raw"
    notes: tuple[str, ...] = field(default=())

    @property
    def size(self) -> int:
        return sum(len(s.data) for s in self.segments)

    def byte_at(self, address: int) -> int | None:
        for s in self.segments:
            if s.address <= address < s.end:
                return s.data[address - s.address]
        return None

    def read(self, address: int, length: int) -> bytes | None:
        """``length`` bytes at ``address`` if the image covers all of them, else ``None``."""
        for s in self.segments:
            if s.address <= address and address + length <= s.end:
                off = address - s.address
                return s.data[off : off + length]
        return None

    def word(self, address: int) -> int | None:
        b = self.read(address, 2)
        return None if b is None else int.from_bytes(b, "little")


def coalesce(pieces: Iterable[tuple[int, bytes, str]], source: str) -> tuple[Segment, ...]:
    """Sort ``(address, data, origin)`` pieces, refuse overlaps, merge touching runs."""
    items = sorted(((a, bytes(d), o) for a, d, o in pieces if len(d)), key=lambda t: t[0])
    out: list[tuple[int, bytearray, str]] = []
    for addr, data, origin in items:
        if addr < 0 or addr + len(data) > 0x1000000:
            raise ImageError(f"{source}: {origin} at 0x{addr:X} lies outside the 24-bit BSL address space")
        if out:
            last_addr, last_data, last_origin = out[-1]
            last_end = last_addr + len(last_data)
            if addr < last_end:
                raise ImageError(
                    f"{source}: {origin} (0x{addr:05X}..0x{addr + len(data) - 1:05X}) overlaps {last_origin} "
                    f"(..0x{last_end - 1:05X}); fix the linker script or the image so every byte is "
                    "written once"
                )
            if addr == last_end:
                last_data.extend(data)
                continue
        out.append((addr, bytearray(data), origin))
    return tuple(Segment(a, bytes(d)) for a, d, _ in out)


def from_segments(segments: Sequence[tuple[int, bytes]], source: str = "<memory>") -> Image:
    pieces = [(a, d, f"segment {i}") for i, (a, d) in enumerate(segments)]
    return Image(coalesce(pieces, source), source, "raw")


# --- TI-TXT ---------------------------------------------------------------------------------------------


def parse_ti_txt(text: str, source: str = "<ti-txt>") -> Image:
    """TI-TXT: ``@ADDR`` lines start a section; lines of hex bytes follow; ``q`` ends the file."""
    pieces: list[tuple[int, bytes, str]] = []
    addr: int | None = None
    cur = bytearray()
    start_line = 0
    ended = False
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if ended:
            raise ImageError(f"{source} line {lineno}: text after the closing 'q'; remove it")
        if s[0] == "@":
            if addr is not None:
                pieces.append((addr, bytes(cur), f"section @ line {start_line}"))
            try:
                addr = int(s[1:], 16)
            except ValueError:
                raise ImageError(
                    f"{source} line {lineno}: bad address {s!r}; expected '@' and hex digits"
                ) from None
            cur = bytearray()
            start_line = lineno
            continue
        if s.lower() == "q":
            ended = True
            continue
        if addr is None:
            raise ImageError(f"{source} line {lineno}: data before the first '@ADDR' line")
        for tok in s.split():
            if len(tok) != 2:
                raise ImageError(f"{source} line {lineno}: {tok!r} is not one hex byte (two hex digits)")
            try:
                cur.append(int(tok, 16))
            except ValueError:
                raise ImageError(f"{source} line {lineno}: {tok!r} is not a hex byte") from None
    if not ended:
        raise ImageError(f"{source}: no closing 'q' line; the file is truncated")
    if addr is not None:
        pieces.append((addr, bytes(cur), f"section @ line {start_line}"))
    return Image(coalesce(pieces, source), source, "ti-txt")


def format_ti_txt(image: Image, per_line: int = 16) -> str:
    lines = []
    for s in image.segments:
        lines.append(f"@{s.address:04X}")
        for i in range(0, len(s.data), per_line):
            lines.append(" ".join(f"{b:02X}" for b in s.data[i : i + per_line]))
    lines.append("q")
    return "\n".join(lines) + "\n"


# --- Intel HEX ------------------------------------------------------------------------------------------


def parse_intel_hex(text: str, source: str = "<ihex>") -> Image:
    """Intel HEX via the ``intelhex`` package; record checksum and syntax errors name the line."""
    from intelhex import HexReaderError, IntelHex

    # intelhex reports bad records without a line number: find the line ourselves first.
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if not s.startswith(":"):
            raise ImageError(f"{source} line {lineno}: an Intel HEX record must start with ':'")
        try:
            raw = bytes.fromhex(s[1:])
        except ValueError:
            raise ImageError(f"{source} line {lineno}: record is not hex digits") from None
        if len(raw) < 5 or len(raw) != raw[0] + 5:
            raise ImageError(f"{source} line {lineno}: record length does not match its byte count")
        if sum(raw) & 0xFF:
            raise ImageError(
                f"{source} line {lineno}: record checksum wrong (0x{raw[-1]:02X}, expected "
                f"0x{(-sum(raw[:-1])) & 0xFF:02X}); the file is corrupt, rebuild or re-copy it"
            )
        if raw[3] not in (0, 1, 2, 3, 4, 5):
            raise ImageError(f"{source} line {lineno}: unknown record type 0x{raw[3]:02X}")
    ih = IntelHex()
    try:
        ih.loadhex(io.StringIO(text))
    except HexReaderError as err:
        raise ImageError(f"{source}: not a valid Intel HEX file: {err}") from None
    pieces = []
    for start, stop in ih.segments():
        pieces.append((start, ih.tobinstr(start=start, end=stop - 1), f"records at 0x{start:05X}"))
    # intelhex silently lets a later record overwrite an earlier one: detect overlaps by counting bytes.
    data_bytes = _ihex_data_bytes(text)
    if data_bytes != sum(len(p[1]) for p in pieces):
        raise ImageError(
            f"{source}: records overlap ({data_bytes} data bytes but {sum(len(p[1]) for p in pieces)} "
            f"distinct addresses); fix the image so every byte is written once"
        )
    return Image(coalesce(pieces, source), source, "ihex")


def _ihex_data_bytes(text: str) -> int:
    n = 0
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(":"):
            raw = bytes.fromhex(s[1:])
            if raw[3] == 0:
                n += raw[0]
    return n


def format_intel_hex(image: Image, per_line: int = 16) -> str:
    lines = []
    upper = 0

    def rec(kind: int, addr: int, data: bytes) -> str:
        raw = bytes([len(data), (addr >> 8) & 0xFF, addr & 0xFF, kind]) + data
        return ":" + (raw + bytes([(-sum(raw)) & 0xFF])).hex().upper()

    for s in image.segments:
        for i in range(0, len(s.data), per_line):
            a = s.address + i
            chunk = s.data[i : i + per_line]
            # split at 64 KB boundaries
            room = 0x10000 - (a & 0xFFFF)
            for part_addr, part in ((a, chunk[:room]), (a + room, chunk[room:])):
                if not part:
                    continue
                if part_addr >> 16 != upper:
                    upper = part_addr >> 16
                    lines.append(rec(4, 0, upper.to_bytes(2, "big")))
                lines.append(rec(0, part_addr & 0xFFFF, part))
    lines.append(rec(1, 0, b""))
    return "\n".join(lines) + "\n"


# --- ELF ------------------------------------------------------------------------------------------------


def parse_elf(data: bytes, source: str = "<elf>") -> Image:
    """Allocated sections with file contents (not .bss), each placed at its load address (LMA).

    Sections rather than program headers: linkers such as ld.lld put the ELF headers into a loadable
    segment and pad gaps between sections inside one segment; neither belongs in the part's memory. The
    load address of a section comes from the PT_LOAD segment that holds its file bytes (as objcopy does).
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        pieces = []
        notes = []
        for sec in elf.iter_sections():
            if not sec["sh_flags"] & SH_FLAGS.SHF_ALLOC or sec["sh_size"] == 0:
                continue
            if sec["sh_type"] == "SHT_NOBITS":
                notes.append(f"section {sec.name}: {sec['sh_size']} zero-fill bytes not flashed")
                continue
            lma = sec["sh_addr"]
            off = sec["sh_offset"]
            for seg in loads:
                if seg["p_offset"] <= off and off + sec["sh_size"] <= seg["p_offset"] + seg["p_filesz"]:
                    lma = seg["p_paddr"] + (off - seg["p_offset"])
                    break
            pieces.append((lma, sec.data(), f"section {sec.name}"))
        if not pieces:
            raise ImageError(f"{source}: the ELF file has no loadable bytes (no allocated section with data)")
        machine = elf["e_machine"]
    except ELFError as err:
        raise ImageError(f"{source}: not a valid ELF file: {err}") from None
    if machine not in ("EM_MSP430", 105):
        notes.append(f"ELF machine is {machine}, not MSP430")
    return Image(coalesce(pieces, source), source, "elf", tuple(notes))


# --- dispatch -------------------------------------------------------------------------------------------


def detect_format(head: bytes) -> str:
    if head.startswith(b"\x7fELF"):
        return "elf"
    s = head.lstrip()
    if s.startswith(b":"):
        return "ihex"
    if s.startswith(b"@"):
        return "ti-txt"
    return "unknown"


def read_image(path: str | Path, fmt: str | None = None) -> Image:
    """Read an ELF, Intel HEX or TI-TXT file (format from ``fmt`` or the file's contents)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise ImageError(f"cannot read image {p}: {err.strerror}") from None
    kind = fmt or detect_format(raw[:64])
    source = str(p)
    if kind == "elf":
        return parse_elf(raw, source)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ImageError(f"{source}: not ELF and not a text image (Intel HEX or TI-TXT)") from None
    if kind == "ihex":
        return parse_intel_hex(text, source)
    if kind == "ti-txt":
        return parse_ti_txt(text, source)
    raise ImageError(
        f"{source}: unknown image format; expected ELF, Intel HEX (':' records) or TI-TXT ('@ADDR' lines)"
    )


def write_image(image: Image, path: str | Path, fmt: str) -> None:
    """Write TI-TXT or Intel HEX atomically (temp file + rename)."""
    text = {"ti-txt": format_ti_txt, "ihex": format_intel_hex}[fmt](image)
    atomic_write(path, text)
