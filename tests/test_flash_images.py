"""Image readers: TI-TXT, Intel HEX and ELF (a real MSP430 ELF built with clang + ld.lld, cross-checked
against llvm-objcopy's Intel HEX), gaps, data above 64 KB, bad checksums, overlaps, protected ranges."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batteryless.boards import load_board
from batteryless.errors import ImageError
from batteryless.flash.flasher import BslParams, check_image, plan_units
from batteryless.flash.images import (
    Segment,
    format_intel_hex,
    format_ti_txt,
    from_segments,
    parse_intel_hex,
    parse_ti_txt,
    read_image,
)

TI_TXT = """@4400
31 40 00 24 B0 13
0A 0B
@FFFE
00 44
@10000
DE AD
q
"""


def test_ti_txt_gaps_and_upper_memory() -> None:
    img = parse_ti_txt(TI_TXT, "x.txt")
    assert img.segments == (
        Segment(0x4400, bytes([0x31, 0x40, 0x00, 0x24, 0xB0, 0x13, 0x0A, 0x0B])),
        Segment(0xFFFE, bytes([0x00, 0x44, 0xDE, 0xAD])),  # 0xFFFE..0x10001 touch: merged
    )
    assert img.word(0xFFFE) == 0x4400


@pytest.mark.parametrize(
    "text,where",
    [
        ("@4400\n01 02\n", "no closing 'q'"),
        ("01 02\nq\n", "line 1"),
        ("@4400\n01 0G\nq\n", "line 2"),
        ("@4400\n012\nq\n", "line 2"),
        ("@44Z0\nq\n", "line 1"),
        ("@4400\n01 02\n@4401\n03\nq\n", "overlaps"),
    ],
)
def test_ti_txt_errors(text: str, where: str) -> None:
    with pytest.raises(ImageError, match=where):
        parse_ti_txt(text, "bad.txt")


# Intel HEX written by hand (checksums computed by hand: two's complement of the byte sum).
IHEX = """:0444000001020304AE
:02FFFE000044BD
:020000040001F9
:02001000AABB89
:00000001FF
"""


def test_intel_hex_extended_linear_address() -> None:
    img = parse_intel_hex(IHEX, "x.hex")
    assert img.segments == (
        Segment(0x4400, b"\x01\x02\x03\x04"),
        Segment(0xFFFE, b"\x00\x44"),
        Segment(0x10010, b"\xaa\xbb"),
    )


def test_intel_hex_bad_checksum_names_line() -> None:
    bad = IHEX.replace(":02FFFE000044BD", ":02FFFE000044BE")
    with pytest.raises(ImageError, match="line 2: record checksum wrong"):
        parse_intel_hex(bad, "bad.hex")


def test_intel_hex_overlap_refused() -> None:
    with pytest.raises(ImageError, match="overlap"):
        parse_intel_hex(":0144000001BA\n:0144000002B9\n:00000001FF\n", "o.hex")


segments = st.lists(
    st.tuples(st.integers(0x1800, 0x43000), st.binary(min_size=1, max_size=300)), min_size=1, max_size=5
)


@given(segments)
def test_writers_roundtrip(segs: list[tuple[int, bytes]]) -> None:
    # make them disjoint with gaps
    segs = sorted(segs)
    fixed, cursor = [], 0
    for a, d in segs:
        a = max(a, cursor + 1)
        fixed.append((a, d))
        cursor = a + len(d)
    img = from_segments(fixed)
    assert parse_ti_txt(format_ti_txt(img)).segments == img.segments
    assert parse_intel_hex(format_intel_hex(img)).segments == img.segments


needs_llvm = pytest.mark.skipif(
    not (shutil.which("clang") and shutil.which("ld.lld-14") and shutil.which("llvm-objcopy")),
    reason="clang, ld.lld-14 and llvm-objcopy are needed to build an MSP430 ELF",
)


def build_msp430_elf(tmp: Path) -> Path:
    (tmp / "a.c").write_text(
        "const unsigned char table[5] = {1, 2, 3, 4, 5};\n"
        "int main(void) { volatile int x = table[2]; return x; }\n"
    )
    (tmp / "hi.s").write_text(
        '.section .upper,"a"\n.byte 0xde,0xad,0xbe,0xef,0x11\n.section .resetvec,"a"\n.word 0x4400\n'
        ".section .bss\n.space 64\n"
    )
    (tmp / "l.ld").write_text(
        "SECTIONS {\n .text 0x4400 : { *(.text*) }\n .rodata 0x5000 : { *(.rodata*) }\n"
        " .resetvec 0xFFFE : { *(.resetvec) }\n .upper 0x10010 : { *(.upper) }\n"
        " .bss 0x1C00 (NOLOAD) : { *(.bss) }\n}\n"
    )
    run = lambda *a: subprocess.run(a, cwd=tmp, check=True, capture_output=True)  # noqa: E731
    run("clang", "--target=msp430", "-O1", "-c", "a.c", "-o", "a.o")
    run("clang", "--target=msp430", "-c", "hi.s", "-o", "hi.o")
    run("ld.lld-14", "-T", "l.ld", "a.o", "hi.o", "-o", "a.elf", "--entry=main")
    run("llvm-objcopy", "-O", "ihex", "a.elf", "a.hex")
    return tmp / "a.elf"


@needs_llvm
def test_elf_matches_objcopy(tmp_path: Path) -> None:
    elf = build_msp430_elf(tmp_path)
    img = read_image(elf)
    ref = read_image(tmp_path / "a.hex")  # llvm-objcopy's view of the same file
    assert img.format == "elf" and ref.format == "ihex"
    assert img.segments == ref.segments
    assert img.read(0x5000, 5) == b"\x01\x02\x03\x04\x05"
    assert img.read(0x10010, 5) == b"\xde\xad\xbe\xef\x11"  # above 64 KB
    assert img.word(0xFFFE) == 0x4400
    assert img.byte_at(0x1C00) is None  # .bss is not flashed
    assert any(".bss" in n for n in img.notes)


def test_read_image_errors(tmp_path: Path) -> None:
    p = tmp_path / "x.bin"
    p.write_bytes(b"\x00\x01binary")
    with pytest.raises(ImageError, match="x.bin"):
        read_image(p)
    with pytest.raises(ImageError, match="cannot read"):
        read_image(tmp_path / "missing.hex")
    e = tmp_path / "bad.elf"
    e.write_bytes(b"\x7fELF" + b"\x00" * 10)
    with pytest.raises(ImageError, match="bad.elf"):
        read_image(e)


@pytest.fixture(scope="module")
def params() -> BslParams:
    return BslParams.from_board(load_board("msp430fr5994"))


def test_protected_range_refused_unless_forced(params: BslParams) -> None:
    img = from_segments([(0xFF80, b"\x00" * 16)])
    with pytest.raises(ImageError, match="0xFF80..0xFF8F"):
        check_image(img, params)
    assert any("forced" in n for n in check_image(img, params, force=True))


def test_bsl_rom_and_unmapped_refused(params: BslParams) -> None:
    with pytest.raises(ImageError, match="BSL ROM"):
        check_image(from_segments([(0x1000, b"\x00")]), params)
    with pytest.raises(ImageError, match="0x44000"):
        check_image(from_segments([(0x43FFF, b"\x00\x00")]), params)


def test_units_put_password_last_and_alone(params: BslParams) -> None:
    data = bytes(range(256)) * 0x20
    img = from_segments([(0xF000, data[:0x1000]), (0x10000, b"\x01" * 10)])
    units = plan_units(img, params)
    assert units[-1] == Segment(0xFFE0, data[0xFE0:0x1000])
    assert b"".join(u.data for u in sorted(units, key=lambda u: u.address)) == data[:0x1000] + b"\x01" * 10
    assert all(len(u.data) <= 4096 for u in units)
