"""The BSL device model on its own (bytes in, bytes out), and the bsl-emulator CLI as a user runs it."""

from __future__ import annotations

import binascii
import os
import signal
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from batteryless.boards import load_board
from batteryless.flash import protocol as P
from batteryless.flash.emulator import BslConfig, BslDevice
from batteryless.flash.images import format_ti_txt, from_segments

CFG = BslConfig.from_board(load_board("msp430fr5994"))
LOCKED = bytes.fromhex("00 80 02 00 3B 04 E4 84")
OK = bytes.fromhex("00 80 02 00 3B 00 60 C4")


def send(dev: BslDevice, raw: bytes) -> bytes:
    return dev.handle(P.parse_packet(raw))[0]


def unlocked() -> BslDevice:
    dev = BslDevice(CFG)
    assert send(dev, P.rx_password(b"\xff" * 32)) == OK
    return dev


def test_locked_part_refuses_everything_but_password_erase_and_baud() -> None:
    dev = BslDevice(CFG)
    for raw in (
        P.tx_bsl_version(),
        P.rx_data_block(0x4400, b"\x01"),
        P.crc_check(0x4400, 2),
        P.tx_data_block(0x4400, 2),
        P.load_pc(0x4400),
    ):
        assert send(dev, raw) == LOCKED
    assert dev.read(0x4400, 1) == b"\xff" and dev.running_at is None
    assert send(dev, P.rx_data_block(0x4400, b"\x01", fast=True)) == b"\x00"  # no message, nothing written
    assert dev.read(0x4400, 1) == b"\xff"
    assert send(dev, P.mass_erase()) == b"\x00"
    assert dev.handle(P.parse_packet(P.change_baud_rate(57600))) == (b"\x00", 57600)
    assert dev.handle(P.Packet(0x52, b"\x09")) == (b"\x56", None)  # unknown baud code


def test_wrong_password_erases_main_not_info() -> None:
    dev = BslDevice(CFG, password=bytes(range(32)))
    dev.write(0x4400, b"code")
    dev.write(0x10000, b"high")
    dev.write(0x1800, b"info")
    reply = send(dev, P.rx_password(b"\x00" * 32))
    assert reply == bytes.fromhex("00 80 02 00 3B 05") + (binascii.crc_hqx(b"\x3b\x05", 0xFFFF)).to_bytes(
        2, "little"
    )
    assert dev.read(0x4400, 4) == b"\xff" * 4 and dev.read(0x10000, 4) == b"\xff" * 4
    assert dev.read(0x1800, 4) == b"info"
    assert dev.password == b"\xff" * 32 and dev.locked
    assert send(dev, P.rx_password(b"\xff" * 32)) == OK and not dev.locked


def test_unlocked_commands() -> None:
    dev = unlocked()
    assert send(dev, P.rx_data_block(0x4400, b"\x01\x02\x03\x04")) == OK
    crc = binascii.crc_hqx(b"\x01\x02\x03\x04", 0xFFFF).to_bytes(2, "little")
    assert send(dev, P.crc_check(0x4400, 4)) == b"\x00" + P.frame(0x3A, crc)
    assert send(dev, P.rx_data_block(0x1000, b"\x00")) == b"\x00" + P.message(0x01)  # BSL ROM
    assert send(dev, P.rx_data_block(0x50000, b"\x00")) == b"\x00" + P.message(0x01)  # unmapped
    assert send(dev, P.frame(0x42)) == b"\x00" + P.message(0x07)
    dev.write(0x5000, bytes(range(256)) * 2)
    out = send(dev, P.tx_data_block(0x5000, 300))
    assert out == b"\x00" + P.frame(0x3A, bytes(range(256))) + P.frame(0x3A, bytes(range(44)))
    assert send(dev, P.load_pc(0x4400)) == b"\x00" and dev.running_at == 0x4400


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=262), st.booleans())
def test_device_survives_any_packet(cmd: int, data: bytes, unlock: bool) -> None:
    dev = unlocked() if unlock else BslDevice(CFG)
    reply, baud = dev.handle(P.Packet(cmd, data))
    assert reply[:1] in (b"\x00", b"\x56")
    rest = reply[1:]
    while rest:  # whatever follows the ACK is well-formed packets
        n = rest[1] | rest[2] << 8
        P.parse_packet(rest[: n + 5])
        rest = rest[n + 5 :]
    assert baud is None or baud in P.CODE_BAUDS.values()


def test_cli_emulator_serves_until_interrupted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    img = from_segments([(0x4400, os.urandom(500)), (0xFFFE, b"\x00\x44")])
    fw = tmp_path / "fw.txt"
    fw.write_text(format_ti_txt(img))
    exe = [sys.executable, "-m", "batteryless.cli"]
    emu = subprocess.Popen(
        [*exe, "bsl-emulator", "--time-scale", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        path = emu.stdout.readline().strip()  # type: ignore[union-attr]
        assert path.startswith("/dev/")
        done = subprocess.run(
            [*exe, "flash", str(fw), "--port", path, "--entry", "manual", "--trace"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert ">> 80 01 00 19 E8 62" in done.stderr  # the trace shows the probe packet
        assert "verified: yes" in done.stdout
    finally:
        emu.send_signal(signal.SIGINT)
        try:
            _, err = emu.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            emu.kill()
            raise
    assert "started at 0x4400" in err and "mass erases" in err
