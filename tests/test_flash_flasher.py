"""End to end over a real pty: flasher <-> BSL device emulator. Read-back is the emulator's memory
(independent of the flasher's own verify). Faults must end in a successful retry or a clear error."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from batteryless.boards import load_board
from batteryless.cli import main as cli_main
from batteryless.errors import BslLockedError, BslNoResponseError, FlashError, ImageError, VerifyError
from batteryless.flash import protocol as P
from batteryless.flash.emulator import BslConfig, BslDevice, BslEmulator, Faults
from batteryless.flash.flasher import flash, probe
from batteryless.flash.images import Image, format_intel_hex, format_ti_txt, from_segments, read_image

BOARD = load_board("msp430fr5994")
CFG = BslConfig.from_board(BOARD)
FAST = dict(reply_timeout=0.1, backoff=0.06)


def make_image(seed: int = 1, with_password: bool = True) -> Image:
    rng = random.Random(seed)
    segs = [
        (0x4400, rng.randbytes(1500)),
        (0x6000, rng.randbytes(300)),  # a gap before it
        (0x10000, rng.randbytes(700)),  # above 64 KB
    ]
    if with_password:
        vec = bytearray(rng.randbytes(0x70))
        vec[-2:] = (0x4400).to_bytes(2, "little")
        segs.append((0xFF90, bytes(vec)))
    return from_segments(segs, f"seed{seed}")


def assert_on_device(dev: BslDevice, img: Image) -> None:
    for s in img.segments:
        assert dev.read(s.address, len(s.data)) == s.data, f"mismatch in {s!r}"


def serve(dev: BslDevice | None = None, faults: Faults | None = None, scale: float = 0.0) -> BslEmulator:
    return BslEmulator(dev or BslDevice(CFG), time_scale=scale, faults=faults).start()


@pytest.mark.parametrize("fmt", ["elf", "ihex", "ti-txt", "object"])
def test_flash_each_format_reads_back(fmt: str, tmp_path: Path) -> None:
    img = make_image()
    if fmt == "elf":
        import shutil

        from test_flash_images import build_msp430_elf

        if not shutil.which("ld.lld-14"):
            pytest.skip("ld.lld-14 missing")
        src: object = build_msp430_elf(tmp_path)
        img = read_image(src)  # type: ignore[arg-type]
    elif fmt == "ihex":
        src = tmp_path / "fw.hex"
        src.write_text(format_intel_hex(img))
    elif fmt == "ti-txt":
        src = tmp_path / "fw.txt"
        src.write_text(format_ti_txt(img))
    else:
        src = img
    with serve() as emu:
        rep = flash(src, emu.path, BOARD, entry="manual", **FAST)  # type: ignore[arg-type]
        assert_on_device(emu.device, img)
        assert rep.verified and rep.written_bytes == img.size and rep.baud == 115200
        assert emu.device.baud == 115200
        assert emu.device.running_at == img.word(0xFFFE)


def test_password_from_image_does_not_erase_and_skip_unchanged() -> None:
    img = make_image()
    dev = BslDevice(CFG, password=img.read(0xFFE0, 32))
    dev.write(0x1800, b"info")  # info FRAM survives
    with serve(dev) as emu:
        flash(img, emu.path, BOARD, entry="manual", run="none", **FAST)
        assert dev.erase_count == 0
        emu.reset(in_bsl=True)  # what the entry sequence does to the part (a pty cannot carry it)
        rep = flash(img, emu.path, BOARD, entry="manual", baud=9600, **FAST)
        assert rep.written_bytes == 0 and rep.skipped_bytes == img.size and rep.baud == 9600
        assert_on_device(dev, img)
        assert dev.read(0x1800, 4) == b"info"


def test_wrong_password_warns_then_erases_and_flashes() -> None:
    img = make_image()
    dev = BslDevice(CFG, password=bytes(range(32)))
    dev.write(0x8000, b"old data")
    dev.write(0x1800, b"info")
    warnings: list[str] = []
    with serve(dev) as emu:
        rep = flash(img, emu.path, BOARD, entry="manual", warn=warnings.append, **FAST)
    assert rep.mass_erased and dev.erase_count == 1
    assert "mass-erase" in warnings[0]  # the warning came before the password was sent
    assert dev.read(0x8000, 8) == b"\xff" * 8  # main FRAM erased
    assert dev.read(0x1800, 4) == b"info"  # info FRAM is not (FR5xx)
    assert_on_device(dev, img)


def test_explicit_wrong_password_only_is_a_locked_error() -> None:
    dev = BslDevice(CFG, password=bytes(range(32)))

    class NeverUnlocks(BslDevice):
        def handle(self, pkt: P.Packet) -> tuple[bytes, int | None]:
            if pkt.cmd == P.Cmd.RX_PASSWORD:
                return b"\x00" + P.message(P.Msg.PASSWORD_ERROR), None
            return super().handle(pkt)

    dev = NeverUnlocks(CFG)
    with serve(dev) as emu, pytest.raises(BslLockedError, match="refused every password"):
        flash(make_image(), emu.path, BOARD, entry="manual", **FAST)


def test_fast_write_and_verify() -> None:
    img = make_image(2, with_password=False)
    with serve() as emu:
        rep = flash(img, emu.path, BOARD, entry="manual", fast_write=True, run="none", **FAST)
        assert rep.verified
        assert_on_device(emu.device, img)


def test_write_that_does_not_stick_names_the_address() -> None:
    class BadCell(BslDevice):
        def write(self, address: int, data: bytes) -> None:
            super().write(address, data)
            if address <= 0x4567 < address + len(data):
                self.memory[0x4567] ^= 0x40

    img = make_image(3)
    with serve(BadCell(CFG)) as emu, pytest.raises(VerifyError, match="0x04567"):
        flash(img, emu.path, BOARD, entry="manual", **FAST)


FAULTS = {
    "drop_rx": Faults(drop_rx={60, 900}),
    "corrupt_rx": Faults(corrupt_rx={70, 1500}),
    "drop_tx": Faults(drop_tx={20, 60}),
    "corrupt_tx": Faults(corrupt_tx={25, 70}),
    "bad_crc": Faults(bad_crc={4, 7}),
    "nak": Faults(nak={0, 5, 6}),
    "stall": Faults(stall={5, 9}),
    "reset_mid_transfer": Faults(reset_in={8}),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_injected_fault_is_retried(name: str) -> None:
    img = make_image(4)
    dev = BslDevice(CFG, password=img.read(0xFFE0, 32))
    with serve(dev, FAULTS[name]) as emu:
        rep = flash(img, emu.path, BOARD, entry="manual", **FAST)
        assert rep.retries + rep.recoveries > 0
        if name == "reset_mid_transfer":
            assert rep.recoveries >= 1 and emu.resets == 1
        assert_on_device(dev, img)
        assert dev.running_at == 0x4400


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_faults_never_flash_wrong(seed: int) -> None:
    img = make_image(seed)
    dev = BslDevice(CFG, password=img.read(0xFFE0, 32))
    with serve(dev, Faults(rate=0.0005, seed=seed)) as emu:
        try:
            rep = flash(img, emu.path, BOARD, entry="manual", **FAST)
        except FlashError as err:
            assert str(err)  # a clear error is acceptable; a wrong flash is not
            return
        assert rep.verified
        assert_on_device(dev, img)


def test_lost_baud_ack_is_found_at_the_new_rate() -> None:
    img = make_image(5)
    dev = BslDevice(CFG, password=img.read(0xFFE0, 32))
    # tx bytes: probe reply (8: ACK + locked message), password reply (8), then the Change Baud ACK (#16)
    with serve(dev, Faults(drop_tx={16})) as emu:
        rep = flash(img, emu.path, BOARD, entry="manual", **FAST)
        assert rep.baud == 115200 and dev.baud == 115200
        assert_on_device(dev, img)


def test_unsupported_baud_falls_back() -> None:
    class Slow(BslDevice):
        def handle(self, pkt: P.Packet) -> tuple[bytes, int | None]:
            if pkt.cmd == P.Cmd.CHANGE_BAUD_RATE and pkt.data != b"\x02":
                return bytes([P.Ack.UNKNOWN_BAUD_RATE]), None
            return super().handle(pkt)

    img = make_image(6, with_password=False)
    warnings: list[str] = []
    with serve(Slow(CFG)) as emu:
        rep = flash(img, emu.path, BOARD, entry="manual", warn=warnings.append, **FAST)
        assert rep.baud == 9600 and any("staying at 9600" in w for w in warnings)
        assert_on_device(emu.device, img)


def test_probe_classifies() -> None:
    master, slave = os.openpty()  # nobody answers
    try:
        with pytest.raises(BslNoResponseError, match="no reply"):
            probe(os.ttyname(slave), BOARD, entry="manual")
    finally:
        os.close(master)
        os.close(slave)
    with serve(faults=Faults(nak=set(range(100)))) as emu, pytest.raises(FlashError, match="NAK 0x52"):
        probe(emu.path, BOARD, entry="manual")
    with serve() as emu:
        assert probe(emu.path, BOARD, entry="manual").state == "locked"


def test_paced_timing_matches_wire_time() -> None:
    """With real pacing, 2 KB at 115200 cannot beat the 8E1 wire limit and should come close to it."""
    img = from_segments([(0x4400, bytes(range(256)) * 8)])
    with serve(scale=1.0) as emu:
        t0 = time.monotonic()
        rep = flash(img, emu.path, BOARD, entry="manual", run="none", skip_unchanged=False)
        elapsed = time.monotonic() - t0
    limit = 115200 / 11
    assert rep.throughput_bps < limit  # no faster than the wire
    wire_bytes = emu.rx_bytes + emu.tx_bytes
    assert elapsed > (emu.rx_bytes - 20) * 11 / 115200  # at least the host->device wire time
    assert wire_bytes > img.size


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = make_image()
    hexf = tmp_path / "fw.hex"
    hexf.write_text(format_intel_hex(img))
    assert cli_main(["flash", str(hexf), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "reset vector 0x4400" in out and "0x0FF90..0x102BB" in out
    bad = tmp_path / "bad.hex"
    bad.write_text(format_intel_hex(from_segments([(0xFF80, b"\x00" * 4)])))
    assert cli_main(["flash", str(bad), "--dry-run"]) == ImageError.exit_code == 20
    assert "0xFF80" in capsys.readouterr().err
    master, slave = os.openpty()
    try:
        code = cli_main(
            ["flash", str(hexf), "--port", os.ttyname(slave), "--entry", "manual", "--timeout", "0.05"]
        )
        assert code == BslNoResponseError.exit_code == 21
    finally:
        os.close(master)
        os.close(slave)
    with serve() as emu:
        assert cli_main(["-q", "flash", str(hexf), "--port", emu.path, "--entry", "manual"]) == 0
        assert "verified: yes" in capsys.readouterr().out
        assert_on_device(emu.device, img)


def test_part_left_at_fast_baud_is_found() -> None:
    img = make_image(7)
    dev = BslDevice(CFG, password=img.read(0xFFE0, 32))
    warnings: list[str] = []
    with serve(dev) as emu:
        flash(img, emu.path, BOARD, entry="manual", run="none", **FAST)
        dev.write(0x4400, b"\x00")  # change one byte so the second session has work to do
        rep = flash(img, emu.path, BOARD, entry="manual", warn=warnings.append, **FAST)
        assert any("already at 115200" in w for w in warnings)
        assert rep.written_bytes == 1500 and rep.baud == 115200  # only the changed unit
        assert_on_device(dev, img)


def test_permanent_fault_is_a_clear_error_not_a_wrong_flash() -> None:
    img = make_image(8)
    dev = BslDevice(CFG, password=img.read(0xFFE0, 32))
    # after probe, password, baud switch and the first CRC Check, the part executes but never answers
    with serve(dev, Faults(stall=set(range(4, 100000)))) as emu:
        t0 = time.monotonic()
        with pytest.raises(FlashError, match="0x04400") as err:
            flash(img, emu.path, BOARD, entry="manual", retries=1, max_recoveries=1, **FAST)
        assert time.monotonic() - t0 < 20
    assert not isinstance(err.value, VerifyError)
    assert dev.running_at is None  # never started a half-written image


@pytest.mark.firmware
def test_flash_the_projects_own_msp430_build(tmp_path: Path) -> None:
    """The image `batteryless build` makes for the FR5994 flashes and reads back byte for byte; the reader's
    view of it equals llvm-objcopy's Intel HEX of the same ELF."""
    import shutil
    import subprocess

    from batteryless.errors import BuildError
    from batteryless.firmware import build

    if not (shutil.which("cmake") and shutil.which("ld.lld-14") and shutil.which("llvm-objcopy")):
        pytest.skip("cmake, ld.lld-14 and llvm-objcopy are needed")
    try:
        res = build("msp430fr5994", out_dir=tmp_path / "fw")
    except BuildError as err:
        pytest.skip(f"firmware build not available: {err}")
    img = read_image(res.image)
    subprocess.run(["llvm-objcopy", "-O", "ihex", str(res.image), str(tmp_path / "fw.hex")], check=True)
    assert read_image(tmp_path / "fw.hex").segments == img.segments
    with serve() as emu:
        rep = flash(res.image, emu.path, BOARD, entry="manual", **FAST)
        assert_on_device(emu.device, img)
        assert rep.started_at == img.word(0xFFFE)


def test_mass_erase_option() -> None:
    img = make_image(9)
    dev = BslDevice(CFG, password=bytes(range(32)))
    dev.write(0x9000, b"stale")
    warnings: list[str] = []
    with serve(dev) as emu:
        rep = flash(img, emu.path, BOARD, entry="manual", erase=True, warn=warnings.append, **FAST)
    assert dev.erase_count == 1 and rep.mass_erased  # erased once, by the command, not by a bad password
    assert warnings[0].startswith("mass erase requested")
    assert dev.read(0x9000, 5) == b"\xff" * 5
    assert_on_device(dev, img)


def test_open_port_unlocked_part_that_resets_mid_transfer() -> None:
    import serial

    img = make_image(10)
    dev = BslDevice(CFG, password=img.read(0xFFE0, 32))
    dev.locked = False  # someone already unlocked it: the flasher never sends a password at first
    with serve(dev, Faults(reset_in={6})) as emu:
        port = serial.Serial(emu.path, 9600, timeout=None)  # a caller's port, blocking reads
        try:
            rep = flash(img, port, BOARD, entry="manual", **FAST)
        finally:
            port.close()
        assert rep.password_source == "already unlocked" and rep.recoveries == 1
        assert_on_device(dev, img)
