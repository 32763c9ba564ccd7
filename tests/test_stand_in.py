"""Stand-ins (batteryless.stand_in): images that link but will not compute on the part are named at
codegen, build and flash time; the FR5994 defaults to a backend that really runs there.

No bundled backend links a stand-in any more (the FR5994's `lea` drives the LEA since issue 12), so the
codegen/build/flash checks use a copy of the FR5994 board with a [stand_in] entry for `lea` and an image that
links one extra source carrying the BL_STAND_IN mark, as a stand-in would."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from batteryless.boards import boards_dir, list_boards, load_board
from batteryless.cli import main as cli_main
from batteryless.errors import BoardError, ImageError
from batteryless.flash.emulator import BslConfig, BslDevice, BslEmulator
from batteryless.flash.images import format_intel_hex, from_segments, read_image
from batteryless.stand_in import MARKER, image_stand_ins

ROOT = Path(__file__).resolve().parents[1]
FR5994 = load_board("msp430fr5994")
STAND_IN_CALL = re.compile(r"^\s*BL_STAND_IN\(", re.M)


# --- the two facts agree ---------------------------------------------------------------------------------
def _marked_sources(backend: str, platform: str) -> list[Path]:
    """Sources the build links for (backend, platform) that carry a BL_STAND_IN mark (CMakeLists.txt globs
    firmware/kernels/<backend>/*.c and firmware/kernels/<backend>/<platform>/*.c into model builds)."""
    dirs = [ROOT / "firmware" / "kernels" / backend, ROOT / "firmware" / "kernels" / backend / platform]
    return [
        p for d in dirs if d.is_dir() for p in sorted(d.glob("*.c")) if STAND_IN_CALL.search(p.read_text())
    ]


@pytest.mark.parametrize("name", list_boards())
def test_board_stand_in_table_matches_the_marked_sources(name):
    """board.toml [stand_in] lists exactly the backends whose sources for the board's platform carry the
    BL_STAND_IN mark: whoever removes a stand-in (or adds one) must update the board, and this says so."""
    b = load_board(name)
    platform = str(b.toolchain.get("platform", "host"))
    marked = {be for be in b.backends if _marked_sources(be, platform)}
    assert set(b.stand_in) == marked, (
        f"{name}: board.toml [stand_in] lists {sorted(b.stand_in)}, but the sources carry BL_STAND_IN for "
        f"{sorted(marked)}"
    )
    assert b.default_backend not in b.stand_in


def test_fr5994_default_backend_really_runs_on_the_part():
    assert FR5994.default_backend == "ref"
    assert FR5994.stand_in == {}  # lea drives the LEA (firmware/kernels/lea/msp430/bl_lea_driver.c)


def test_marker_prefix_is_the_one_the_header_writes():
    header = (ROOT / "firmware" / "include" / "bl_stand_in.h").read_text()
    assert f'"{MARKER.decode()}" reason' in header


# --- the board loader --------------------------------------------------------------------------------------
STAND_IN_TABLE = (
    "[stand_in]\nlea = \"its MSP430 image links a software stand-in for TI's DSPLib that refuses every call "
    '(test board), so on a LaunchPad it computes nothing"\n'
)
STAND_IN_SOURCE = (
    '#include "bl_stand_in.h"\nBL_STAND_IN(test_dsplib, "backend lea: a software stand-in for TI\'s DSPLib '
    '(test image); build with --backend ref");\n'
)


def _copy(tmp_path: Path) -> Path:
    """A copy of the FR5994 board whose [stand_in] table says `lea` links a stand-in."""
    d = tmp_path / "msp430fr5994"
    shutil.copytree(boards_dir() / "msp430fr5994", d)
    path = d / "board.toml"
    text = path.read_text()
    anchor = 'accelerator = "lea"\n'
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + "\n" + STAND_IN_TABLE, 1))
    # the toolchain finds the linker shim relative to its own folder: point the copy at the repository's
    tc = d / "toolchain.cmake"
    tc.write_text(tc.read_text().replace("${CMAKE_CURRENT_LIST_DIR}/../../tools", str(ROOT / "tools")))
    return path


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ('default_backend = "ref"', 'default_backend = "lea"', r"'default_backend' .*links a stand-in"),
        ("\nlea = ", "\ncmsis = ", r"field 'stand_in\.cmsis' names a backend the board does not have"),
        ('\nlea = "its', "\nlea = 3 #", r"field 'stand_in\.lea'"),
        ('\nlea = "its MSP430', '\nlea = "  " #', r"field 'stand_in\.lea' needs the reason"),
    ],
)
def test_bad_stand_in_table_is_named(tmp_path, old, new, pattern):
    path = _copy(tmp_path)
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(BoardError, match=pattern):
        load_board(path)


def test_board_without_stand_in_table_has_none(tmp_path):
    path = _copy(tmp_path)
    text = re.sub(r"\[stand_in\]\nlea = [^\n]*\n", "", path.read_text())
    path.write_text(text)
    assert load_board(path).stand_in == {}


# --- finding the mark in an image ------------------------------------------------------------------------
def test_marks_found_in_any_segment_and_format(tmp_path):
    reason = b"backend x: a test stand-in"
    img = from_segments(
        [
            (0x4400, b"\x01\x02" + MARKER + reason + b"\0tail"),
            (0x8000, b"no mark here"),
            (0xFFFE, b"\x00\x44"),
        ]
    )
    assert image_stand_ins(img) == [reason.decode()]
    hexf = tmp_path / "x.hex"
    hexf.write_text(format_intel_hex(img))
    assert image_stand_ins(read_image(hexf)) == [reason.decode()]
    assert image_stand_ins(from_segments([(0x4400, b"BL-STAND-I" + reason)])) == []  # a cut mark is no mark


# --- codegen, build, flash --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stand_in_board(tmp_path_factory) -> Path:
    return _copy(tmp_path_factory.mktemp("standin-board"))


@pytest.fixture(scope="module")
def fr5994_images(artifacts, tmp_path_factory, stand_in_board):
    """The digits MLP built for the FR5994 with the default backend, and with lea on the stand-in board copy
    linking a source that carries the BL_STAND_IN mark."""
    from batteryless.codegen import codegen
    from batteryless.errors import BuildError
    from batteryless.firmware import build

    if not (shutil.which("cmake") and shutil.which("ld.lld-14")):
        pytest.skip("cmake and ld.lld-14 are needed")
    d = tmp_path_factory.mktemp("standin")
    mark = d / "stand_in_mark.c"
    mark.write_text(STAND_IN_SOURCE)
    out = {}
    for backend in (None, "lea"):
        key = backend or "default"
        board = "msp430fr5994" if backend is None else stand_in_board
        extra = None if backend is None else [mark]
        gen = codegen(artifacts["mlp"], board, d / f"gen-{key}", backend=backend)
        try:
            out[key] = (
                gen,
                build(board, d / f"gen-{key}", backend, out_dir=d / f"build-{key}", extra_sources=extra),
            )
        except BuildError as err:
            pytest.skip(f"firmware build not available: {err}")
    return out


@pytest.mark.firmware
def test_codegen_and_build_default_is_ref_and_says_nothing(fr5994_images):
    gen, res = fr5994_images["default"]
    assert gen.schedule["backend"] == "ref" and res.backend == "ref"
    assert gen.warning is None and res.stand_ins == [] and res.warning is None


@pytest.mark.firmware
def test_codegen_and_build_of_lea_warn_naming_the_reason(fr5994_images):
    gen, res = fr5994_images["lea"]
    assert gen.warning and "will not compute on hardware" in gen.warning and "DSPLib" in gen.warning
    assert "--backend ref" in gen.warning
    assert len(res.stand_ins) == 1 and "DSPLib" in res.stand_ins[0]
    assert res.warning and "\n" not in res.warning and str(res.image) in res.warning


@pytest.mark.firmware
def test_cli_codegen_and_build_print_one_warning_line(artifacts, tmp_path, capsys, stand_in_board):
    assert cli_main(["codegen", str(artifacts["mlp"]), "--board", str(stand_in_board), "--backend", "lea",
                     "--out", str(tmp_path / "g"), "-q"]) == 0  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert [ln for ln in err if ln.startswith("warning:")] == [err[0]] and "DSPLib" in err[0]
    assert cli_main(["codegen", str(artifacts["mlp"]), "--board", "msp430fr5994",
                     "--out", str(tmp_path / "g2"), "-q"]) == 0  # fmt: skip
    assert "warning" not in capsys.readouterr().err


@pytest.mark.firmware
@pytest.mark.parametrize("fmt", ["elf", "ihex"])
def test_flash_refuses_a_stand_in_image_naming_the_reason(fr5994_images, tmp_path, capsys, fmt):
    """Through the BSL emulator on a pty: nothing is sent, exit 20, the one-line error quotes the image's own
    reason; the same image as Intel HEX (no symbols) is refused the same way."""
    image = fr5994_images["lea"][1].image
    if fmt == "ihex":
        src = tmp_path / "lea.hex"
        src.write_text(format_intel_hex(read_image(image)))
        image = src
    dev = BslDevice(BslConfig.from_board(FR5994))
    with BslEmulator(dev, time_scale=0.0) as emu:
        rc = cli_main(["flash", str(image), "--port", emu.path, "--entry", "manual"])
        packets = emu.packets
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == ImageError.exit_code == 20
    assert len(err) == 1 and "will not compute on hardware" in err[0] and "DSPLib" in err[0], err
    assert "--allow-stand-in" in err[0]
    assert packets == 0 and dev.read(0x4000, 64) == b"\xff" * 64  # refused before anything was sent


@pytest.mark.firmware
def test_flash_allow_stand_in_flashes_with_a_warning(fr5994_images, capsys):
    image = fr5994_images["lea"][1].image
    img = read_image(image)
    dev = BslDevice(BslConfig.from_board(FR5994))
    with BslEmulator(dev, time_scale=0.0) as emu:
        rc = cli_main(
            ["-q", "flash", str(image), "--port", emu.path, "--entry", "manual", "--allow-stand-in"]
        )
    err = capsys.readouterr().err
    assert rc == 0
    assert "warning:" in err and "will not compute on hardware" in err
    for s in img.segments:
        assert dev.read(s.address, len(s.data)) == s.data


@pytest.mark.firmware
def test_flash_of_the_default_image_is_not_refused(fr5994_images, capsys):
    image = fr5994_images["default"][1].image
    dev = BslDevice(BslConfig.from_board(FR5994))
    with BslEmulator(dev, time_scale=0.0) as emu:
        assert cli_main(["flash", str(image), "--port", emu.path, "--entry", "manual", "-q"]) == 0
    assert "stand-in" not in capsys.readouterr().err


@pytest.mark.firmware
def test_dry_run_notes_the_stand_in(fr5994_images, capsys):
    assert cli_main(["flash", str(fr5994_images["lea"][1].image), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^note .*will not compute on hardware", out, re.M)
