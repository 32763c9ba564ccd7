"""Every flash input fails cleanly (issue 16): numbers and paths are checked before a port is opened or a
byte sent; a serial line that disappears mid-transfer ends in the documented exit code with one sentence
saying what was written so far. The device side is the BSL emulator on a real pty; "nothing sent" is its
own byte counter, independent of the flasher."""

from __future__ import annotations

from pathlib import Path

import pytest

from batteryless.cli import main as cli_main
from batteryless.errors import BslNoResponseError
from batteryless.flash.emulator import BslDevice
from batteryless.flash.flasher import flash
from batteryless.flash.images import format_intel_hex
from test_flash_flasher import BOARD, CFG, FAST, assert_on_device, make_image, serve


def _hex(tmp_path: Path, seed: int = 1) -> Path:
    p = tmp_path / "fw.hex"
    p.write_text(format_intel_hex(make_image(seed)))
    return p


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = cli_main(["flash", *argv])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (("--baud", "12345"), r"--baud 12345 is not a BSL rate; use one of 9600, 19200"),
        (("--retries", "-1"), r"--retries -1: give a whole number of retries >= 0"),
        (("--timeout", "-5"), r"--timeout -5: give a reply timeout in seconds > 0"),
        (("--timeout", "nan"), r"--timeout nan"),
        (("--wait", "-1"), r"--wait -1: give seconds >= 0"),
    ],
)
def test_numbers_are_usage_errors_before_any_byte(tmp_path, capsys, extra, pattern):
    # a part whose password is NOT the image's: an unlock attempt would mass-erase it
    dev = BslDevice(CFG, password=bytes(range(32)))
    dev.write(0x4400, b"keep me")
    with serve(dev) as emu:
        code, err = _run(capsys, str(_hex(tmp_path)), "--port", emu.path, "--entry", "manual", *extra)
        assert code == 2
        assert len(err.splitlines()) == 1
        import re

        assert re.search(pattern, err), err
        assert emu.rx_bytes == 0 and dev.erase_count == 0
        assert dev.read(0x4400, 7) == b"keep me"


def test_the_library_checks_the_baud_before_the_password_exchange():
    dev = BslDevice(CFG, password=bytes(range(32)))
    with serve(dev) as emu:
        with pytest.raises(Exception, match="not a BSL rate") as exc:
            flash(make_image(), emu.path, BOARD, entry="manual", baud=12345, **FAST)
        assert exc.value.exit_code == 2
        assert emu.rx_bytes == 0 and dev.erase_count == 0


def test_password_files(tmp_path, capsys):
    img = _hex(tmp_path)
    code, err = _run(capsys, str(img), "--dry-run", "--password", str(tmp_path / "pw.bin"))
    assert code == 2 and "pw.bin: password file not found" in err
    short = tmp_path / "short.bin"
    short.write_bytes(b"\xaa" * 31)
    code, err = _run(capsys, str(img), "--dry-run", "--password", str(short))
    assert code == 2 and "a raw password file holds exactly 32 bytes, this one has 31" in err
    assert "unknown image format" not in err
    code, err = _run(capsys, str(img), "--dry-run", "--password", str(tmp_path))
    assert code == 2 and "password file is a folder" in err
    good = tmp_path / "pw32.bin"
    good.write_bytes(b"\x11" * 32)
    code, err = _run(capsys, str(img), "--dry-run", "--password", str(good))
    assert code == 0, err


def test_image_paths(tmp_path, capsys):
    code, err = _run(capsys, str(tmp_path / "none.hex"), "--dry-run")
    assert code == 20 and "none.hex: image not found" in err
    code, err = _run(capsys, str(tmp_path), "--dry-run")
    assert code == 20 and "image is a folder" in err and len(err.splitlines()) == 1


def test_port_closed_mid_transfer_is_a_clear_error():
    img = make_image(5)
    dev = BslDevice(CFG, password=img.read(0xFFE0, 32))
    emu = serve(dev)
    seen: list[int] = []

    def progress(task: str, done: int, total: int) -> None:
        seen.append(done)
        if done > 0 and emu.master >= 0:
            emu.stop()  # the other end of the pty goes away: the adapter was unplugged

    try:
        with pytest.raises(BslNoResponseError) as exc:
            flash(img, emu.path, BOARD, entry="manual", progress=progress, **FAST)
    finally:
        emu.stop()
    msg = str(exc.value)
    assert exc.value.exit_code == 21 and "\n" not in msg
    assert "failed during the transfer" in msg
    # what was on the part when the line went: the first unit (1500 bytes at 0x4400), nothing after it
    assert f"{seen[1]} of {img.size} bytes are on the part" in msg
    assert dev.read(0x4400, 1500) == img.read(0x4400, 1500)


def test_port_closed_before_the_transfer(capsys, tmp_path):
    hexf = _hex(tmp_path, 6)
    dev = BslDevice(CFG, password=make_image(6).read(0xFFE0, 32))
    emu = serve(dev)
    path = emu.path
    emu.stop()  # gone before the session starts (the pty name no longer exists or is dead)
    code, err = _run(capsys, str(hexf), "--port", path, "--entry", "manual", "--timeout", "0.05")
    assert code == 21 and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_a_normal_flash_still_works(tmp_path):
    img = make_image(9)
    dev = BslDevice(CFG, password=img.read(0xFFE0, 32))
    with serve(dev) as emu:
        rep = flash(img, emu.path, BOARD, entry="manual", **FAST)
    assert rep.verified
    assert_on_device(dev, img)
