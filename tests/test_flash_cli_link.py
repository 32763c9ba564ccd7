"""`bsl-emulator --link PATH` (a fixed, copyable port name) and `flash --wait SECONDS` (the port may appear a
moment later): what the README's walk-through relies on, as a user runs it, in separate processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batteryless.cli import main as cli_main
from batteryless.flash.images import format_intel_hex, from_segments

ROOT = Path(__file__).resolve().parents[1]
BL = [sys.executable, "-m", "batteryless.cli"]


def _image(tmp_path: Path) -> Path:
    vec = bytearray(b"\xff" * 0x70)
    vec[-2:] = (0x4400).to_bytes(2, "little")
    img = from_segments([(0x4400, bytes(range(256)) * 4), (0xFF90, bytes(vec))])
    path = tmp_path / "fw.hex"
    path.write_text(format_intel_hex(img))
    return path


def _start_emulator(link: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*BL, "bsl-emulator", "--link", str(link), "--time-scale", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=link.parent,
    )  # fmt: skip


def _stop(proc: subprocess.Popen) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def test_link_names_the_pty_flash_waits_for_it_and_sigterm_removes_it(tmp_path, capsys):
    link = tmp_path / "bsl-port"
    emu = _start_emulator(link)
    try:
        # started at once after the emulator, as `bsl-emulator ... &` then `flash ...` on the next line:
        # the link does not exist yet when flash starts, so --wait is what makes the line reliable
        rc = cli_main(["-q", "flash", str(_image(tmp_path)), "--port", str(link), "--wait", "30",
                       "--entry", "manual"])  # fmt: skip
        assert rc == 0, capsys.readouterr().err
        target = os.readlink(link)
    finally:
        code, out, err = _stop(emu)
    assert code == 0
    assert target.startswith("/dev/pts/") and out.strip() == target  # the link names the printed pty
    assert "stopped:" in err and "packets" in err  # SIGTERM ends it like Ctrl-C, with the summary
    assert not link.exists() and not link.is_symlink()


def test_stale_link_is_replaced(tmp_path):
    link = tmp_path / "bsl-port"
    link.symlink_to("/dev/pts/does-not-exist")
    emu = _start_emulator(link)
    try:
        deadline = time.monotonic() + 30
        while os.readlink(link) == "/dev/pts/does-not-exist" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.readlink(link) != "/dev/pts/does-not-exist"
    finally:
        assert _stop(emu)[0] == 0


def test_link_over_a_file_is_refused_and_the_file_kept(tmp_path):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    proc = subprocess.run(
        [*BL, "bsl-emulator", "--link", str(keep), "--time-scale", "0"], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "--link" in err[0] and "not a symbolic link" in err[0]
    assert keep.read_text() == "mine"


def test_wait_must_not_be_negative(tmp_path, capsys):
    assert cli_main(["flash", str(_image(tmp_path)), "--port", "/dev/null", "--wait", "-1"]) == 2
    assert "--wait -1" in capsys.readouterr().err


def test_wait_for_a_port_that_never_appears_ends_in_no_reply(tmp_path, capsys):
    t0 = time.monotonic()
    rc = cli_main(["flash", str(_image(tmp_path)), "--port", str(tmp_path / "never"), "--wait", "0.5"])
    waited = time.monotonic() - t0
    assert rc == 21 and waited >= 0.5
    assert "never" in capsys.readouterr().err


@pytest.mark.parametrize("position", ["before", "after"])
def test_readme_flash_line_shape_parses(position, tmp_path):
    """The flags the README's flash line uses exist (parsing only), with -q in either position."""
    from batteryless.cli import parse_args

    argv = ["flash", "x.elf", "--port", "bsl-port", "--wait", "10", "--entry", "manual"]
    a = parse_args(["-q", *argv] if position == "before" else [*argv, "-q"])
    assert a.wait == 10.0 and a.port == "bsl-port" and a.quiet
