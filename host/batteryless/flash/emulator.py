"""A model of the MSP430FR5994 FRAM UART bootloader, served on a pseudo-terminal.

:class:`BslDevice` is the device: memory map (from the board description), lock state and password, mass
erase on a wrong password, every command and reply of REFERENCE.md §3, baud-rate codes. It is a pure state
machine (bytes in, bytes out) so it can be tested without a port.

:class:`BslEmulator` puts a device behind a pty (``os.openpty``) in a thread. The kernel ignores baud rate
and parity on a pty, so the emulator paces every byte itself: a byte takes 11 bit times (8E1: start, 8 data,
parity, stop) at the device's current baud, in both directions, times ``time_scale`` (1.0 = real wire time,
0 = no pacing; tests use small factors, the benchmark uses 1.0). The host's baud rate *is* visible through
the pty's termios; when it differs from the device's, bytes are garbled in both directions as on a real
wire. Parity is not visible on a pty (the kernel drops PARENB), so it is not modelled.

A partial packet is discarded when the line has been idle for ``gap_timeout_s`` (wire time), so a host can
resynchronise after a lost byte by pausing; the real ROM's behaviour here is not documented (UNCONFIRMED).

Faults (:class:`Faults`) can be injected at chosen byte or packet indices or at random with a seed: dropped
and corrupted bytes in either direction, replies with a bad CRC, NAKs, stalls (no reply) and a device reset
in the middle of a packet.
"""

from __future__ import annotations

import os
import random
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass, field
from typing import Any

from batteryless.errors import FlashError
from batteryless.flash import protocol as P

#: What TX BSL Version returns from this model (4 bytes). Illustrative, not the ROM's real version bytes.
EMULATOR_VERSION = bytes([0x00, 0x0B, 0x0E, 0x00])

_BAUD_CONST = {
    getattr(termios, f"B{b}"): b for b in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)
}


@dataclass(frozen=True)
class BslConfig:
    """Bootloader and memory facts the model needs, taken from a board description."""

    baud: int
    max_data: int
    password_address: int
    password_length: int
    writable: tuple[tuple[int, int], ...]  # inclusive ranges the BSL can write
    erase: tuple[tuple[int, int], ...]  # inclusive ranges cleared to 0xFF by a (mass) erase
    volatile: tuple[tuple[int, int], ...]  # inclusive ranges lost on reset
    rom: tuple[int, int] | None

    @classmethod
    def from_board(cls, board: Any) -> BslConfig:
        bl = board.bootloader
        if not bl or bl.get("protocol") != "msp430-fram-uart-bsl":
            raise FlashError(f"board {board.name} has no MSP430 FRAM UART bootloader in its board.toml")
        regions = [(m.origin, m.origin + m.length - 1) for m in board.memory]
        volatile = tuple((m.origin, m.origin + m.length - 1) for m in board.memory if m.volatile)
        erase = [tuple(r) for r in bl["erase_on_bad_password"]]
        # A mass erase leaves the password 32 x 0xFF (REFERENCE.md §3), so the vector table and the
        # signatures between main FRAM and the vectors are cleared too.
        extra = [tuple(r) for r in bl.get("protected_ranges", [])]
        if board.has_region("vectors"):
            v = board.region("vectors")
            extra.append((v.origin, v.origin + v.length - 1))
        pw = (bl["password_address"], bl["password_address"] + bl["password_length"] - 1)
        extra.append(pw)
        writable = tuple(sorted({*regions, *erase, *extra}))
        return cls(
            baud=int(bl["baud"]),
            max_data=int(bl["max_data_per_packet"]),
            password_address=int(bl["password_address"]),
            password_length=int(bl["password_length"]),
            writable=writable,
            erase=tuple(sorted({*erase, *extra})),
            volatile=volatile,
            rom=tuple(bl["bsl_rom"]) if bl.get("bsl_rom") else None,  # type: ignore[arg-type]
        )


def _inside(ranges: tuple[tuple[int, int], ...], start: int, end: int) -> bool:
    """Is every address in [start, end) inside one of ``ranges`` (ranges may touch)?"""
    a = start
    while a < end:
        for lo, hi in ranges:
            if lo <= a <= hi:
                a = hi + 1
                break
        else:
            return False
    return True


class BslDevice:
    """The bootloader state machine: feed it packets, get the bytes it answers with."""

    def __init__(self, config: BslConfig, password: bytes | None = None) -> None:
        self.cfg = config
        top = max(hi for _, hi in config.writable) + 1
        self.memory = bytearray(b"\xff" * top)
        self.locked = True
        self.baud = config.baud
        self.running_at: int | None = None  # set by Load PC: the BSL has handed over to the application
        self.erase_count = 0
        self.log: list[str] = []
        if password is not None:
            self.write(config.password_address, password)

    # memory helpers (also used by tests to preset and inspect the part)
    def write(self, address: int, data: bytes) -> None:
        self.memory[address : address + len(data)] = data

    def read(self, address: int, length: int) -> bytes:
        out = bytes(self.memory[address : address + length])
        return out + b"\xff" * (length - len(out))

    @property
    def password(self) -> bytes:
        return self.read(self.cfg.password_address, self.cfg.password_length)

    def mass_erase(self) -> None:
        for lo, hi in self.cfg.erase:
            self.memory[lo : hi + 1] = b"\xff" * (hi + 1 - lo)
        self.erase_count += 1

    def reset(self) -> None:
        """Power-on / RST: volatile memory lost, BSL locked at the default baud (entry assumed)."""
        for lo, hi in self.cfg.volatile:
            self.memory[lo : hi + 1] = b"\x00" * (hi + 1 - lo)
        self.locked = True
        self.baud = self.cfg.baud
        self.running_at = None

    def handle(self, pkt: P.Packet) -> tuple[bytes, int | None]:
        """Execute one packet; returns (reply bytes incl. the ACK byte, new baud to switch to after it)."""
        cmd, d = pkt.cmd, pkt.data
        ack = bytes([P.Ack.OK])

        def msg(code: int) -> tuple[bytes, None]:
            return ack + P.message(code), None

        self.log.append(f"{cmd:02X}")
        if cmd == P.Cmd.CHANGE_BAUD_RATE:
            if len(d) != 1 or d[0] not in P.CODE_BAUDS:
                return bytes([P.Ack.UNKNOWN_BAUD_RATE]), None
            return ack, P.CODE_BAUDS[d[0]]
        if cmd == P.Cmd.RX_PASSWORD:
            if len(d) == self.cfg.password_length and d == self.password:
                self.locked = False
                return msg(P.Msg.OK)
            self.mass_erase()
            self.locked = True
            return msg(P.Msg.PASSWORD_ERROR)
        if cmd == P.Cmd.MASS_ERASE:
            self.mass_erase()
            self.locked = True
            return ack, None
        if cmd not in (
            P.Cmd.RX_DATA_BLOCK,
            P.Cmd.RX_DATA_BLOCK_FAST,
            P.Cmd.CRC_CHECK,
            P.Cmd.LOAD_PC,
            P.Cmd.TX_DATA_BLOCK,
            P.Cmd.TX_BSL_VERSION,
        ):
            return msg(P.Msg.UNKNOWN_COMMAND)
        if self.locked:
            if cmd == P.Cmd.RX_DATA_BLOCK_FAST:
                return ack, None  # no reply message; nothing written
            return msg(P.Msg.LOCKED)
        if cmd == P.Cmd.TX_BSL_VERSION:
            return ack + P.data_packet(EMULATOR_VERSION), None
        if len(d) < 3:
            return msg(P.Msg.UNKNOWN_COMMAND)
        addr = int.from_bytes(d[:3], "little")
        if cmd in (P.Cmd.RX_DATA_BLOCK, P.Cmd.RX_DATA_BLOCK_FAST):
            payload = d[3:]
            ok = _inside(self.cfg.writable, addr, addr + len(payload))
            if ok:
                self.write(addr, payload)
            if cmd == P.Cmd.RX_DATA_BLOCK_FAST:
                return ack, None
            return msg(P.Msg.OK if ok else P.Msg.WRITE_CHECK_FAILED)
        if cmd == P.Cmd.LOAD_PC:
            self.running_at = addr
            return ack, None
        if len(d) != 5:
            return msg(P.Msg.UNKNOWN_COMMAND)
        length = int.from_bytes(d[3:5], "little")
        if cmd == P.Cmd.CRC_CHECK:
            c = P.crc16_fast(self.read(addr, length))
            return ack + P.data_packet(bytes([c & 0xFF, c >> 8])), None
        # TX_DATA_BLOCK
        out = bytearray(ack)
        data = self.read(addr, length)
        for i in range(0, max(len(data), 1), self.cfg.max_data):
            out += P.data_packet(data[i : i + self.cfg.max_data])
        return bytes(out), None


@dataclass
class Faults:
    """Fault injection. Byte indices count bytes received (rx) or sent (tx) since start; packet indices count
    packets received with a good frame. ``rate`` applies each random byte fault with that probability."""

    drop_rx: set[int] = field(default_factory=set)
    corrupt_rx: set[int] = field(default_factory=set)
    drop_tx: set[int] = field(default_factory=set)
    corrupt_tx: set[int] = field(default_factory=set)
    bad_crc: set[int] = field(default_factory=set)  # reply to packet k has a wrong checksum
    nak: set[int] = field(default_factory=set)  # packet k answered with NAK 0x52 and ignored
    stall: set[int] = field(default_factory=set)  # packet k executed, no reply at all
    reset_in: set[int] = field(default_factory=set)  # device resets half-way through packet k
    rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def roll(self) -> bool:
        return self.rate > 0 and self._rng.random() < self.rate


def _ranges_hit(indices: set[int], start: int, n: int) -> bool:
    return any(start <= i < start + n for i in indices)


class BslEmulator:
    """Serve a :class:`BslDevice` on a pty. Use as a context manager; ``path`` is the port to open."""

    def __init__(
        self,
        device: BslDevice,
        time_scale: float = 1.0,
        faults: Faults | None = None,
        gap_timeout_s: float = 0.05,
        in_bsl: bool = True,
        reenter_after_s: float | None = None,
    ) -> None:
        self.device = device
        self.time_scale = time_scale
        self.faults = faults or Faults()
        self.gap_timeout_s = gap_timeout_s
        self.in_bsl = in_bsl
        self.reenter_after_s = reenter_after_s
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.packets = 0
        self.framing_errors = 0
        self.resets = 0
        self._parser = P.PacketParser(P.MAX_N_DEFAULT)
        self._started_running = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.master = self.slave = -1
        self.path = ""

    # lifecycle
    def start(self) -> BslEmulator:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        # Never block on a full pty buffer (nobody reading): the bytes are lost, as on an open wire.
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._thread = threading.Thread(target=self._serve, name="bsl-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            # the serving thread wakes within 20 ms (select timeout, stop-aware sleeps); wait for it before
            # closing, or a late write could land on a file descriptor number the process has reused
            self._thread.join(timeout=30)
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    def __enter__(self) -> BslEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self, in_bsl: bool = True) -> None:
        """What the entry sequence (``in_bsl``) or a plain reset does to the part."""
        with self._lock:
            self.device.reset()
            self._parser.reset()
            self.in_bsl = in_bsl
            self.resets += 1

    # timing
    def byte_time(self) -> float:
        return 11.0 / self.device.baud * self.time_scale

    def _host_baud(self) -> int | None:
        try:
            attrs = termios.tcgetattr(self.master)
        except (termios.error, OSError, ValueError):  # ValueError: closed (-1) while stopping
            return None
        return _BAUD_CONST.get(attrs[5])

    def _garbled(self) -> bool:
        hb = self._host_baud()
        return hb is not None and hb != self.device.baud

    def _sleep_until(self, t: float) -> None:
        d = t - time.monotonic()
        if d > 0:
            self._stop.wait(d)  # returns at once when stop() is called

    # the server loop
    def _serve(self) -> None:
        rx_wire = 0.0  # when the last received byte finished on the wire
        tx_wire = 0.0
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.02)
            except (OSError, ValueError):
                return
            if not ready:
                self._maybe_reenter(rx_wire)
                continue
            try:
                chunk = os.read(self.master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                time.sleep(0.01)
                continue
            arrival = time.monotonic()
            garbled = self._garbled()
            bt = self.byte_time()
            for b in chunk:
                with self._lock:
                    t = max(rx_wire, arrival) + bt
                    if not self._parser.idle and t - rx_wire > self.gap_timeout_s + bt:
                        self._parser.reset()
                    rx_wire = t
                    idx = self.rx_bytes
                    self.rx_bytes += 1
                    if not self.in_bsl or self.device.running_at is not None:
                        continue
                    self._started_running = time.monotonic()
                    f = self.faults
                    if idx in f.drop_rx or f.roll():
                        continue
                    if garbled:
                        b ^= 0xA5
                    if idx in f.corrupt_rx or f.roll():
                        b ^= 0x10
                    if self.packets in f.reset_in and self._parser._state == 3:
                        f.reset_in.discard(self.packets)
                        self.device.reset()
                        self._parser.reset()
                        self.resets += 1
                        continue
                    out = self._parser.feed(b)
                    if out is None:
                        continue
                    if isinstance(out, P.FramingError):
                        self.framing_errors += 1
                        reply, new_baud = bytes([out.nak]), None
                    else:
                        k = self.packets
                        self.packets += 1
                        if k in f.nak:
                            reply, new_baud = bytes([P.Ack.CHECKSUM_WRONG]), None
                        else:
                            reply, new_baud = self.device.handle(out)
                            if k in f.stall:
                                reply, new_baud = b"", None
                            elif k in f.bad_crc and len(reply) > 2:
                                reply = reply[:-1] + bytes([reply[-1] ^ 0x01])
                if reply:
                    self._sleep_until(t)
                    tx_wire = self._send(reply, max(tx_wire, t), bt)
                if new_baud is not None:
                    self._sleep_until(tx_wire)
                    with self._lock:
                        self.device.baud = new_baud
                    bt = self.byte_time()
                    rx_wire = max(rx_wire, tx_wire)

    def _maybe_reenter(self, last_rx: float) -> None:
        """Stand-in for the entry sequence a pty cannot carry: after Load PC and an idle line, go back
        to BSL mode (only when ``reenter_after_s`` is set, as ``batteryless bsl-emulator`` does)."""
        if self.reenter_after_s is None or self.device.running_at is None:
            return
        if time.monotonic() - max(last_rx, self._started_running) >= self.reenter_after_s:
            self.reset(in_bsl=True)

    def _send(self, data: bytes, start: float, bt: float) -> float:
        garbled = self._garbled()
        out = bytearray()
        f = self.faults
        for b in data:
            idx = self.tx_bytes
            self.tx_bytes += 1
            if idx in f.drop_tx or f.roll():
                continue
            if garbled:
                b ^= 0xA5
            if idx in f.corrupt_tx or f.roll():
                b ^= 0x10
            out.append(b)
        t = start
        for i in range(0, len(out), 16):
            piece = out[i : i + 16]
            t += len(piece) * bt
            self._sleep_until(t)
            if self._stop.is_set():
                return t
            try:
                os.write(self.master, piece)
            except BlockingIOError:
                pass
            except OSError:
                return t
        return max(t, start + len(data) * bt)


def bsl_emulator(
    board: Any = "msp430fr5994",
    *,
    time_scale: float = 1.0,
    password: bytes | None = None,
    image: Any = None,
    faults: Faults | None = None,
    reenter_after_s: float | None = None,
) -> BslEmulator:
    """A started emulator for ``board`` (name, path or Board), optionally preloaded with an image (whose
    password area then becomes the part's password). Stop it with ``.stop()`` or use it in ``with``."""
    from batteryless.boards import load_board

    b = load_board(board) if isinstance(board, str) else board
    dev = BslDevice(BslConfig.from_board(b), password)
    if image is not None:
        from batteryless.flash.images import Image, read_image

        img = image if isinstance(image, Image) else read_image(image)
        for s in img.segments:
            dev.write(s.address, s.data)
    return BslEmulator(dev, time_scale=time_scale, faults=faults, reenter_after_s=reenter_after_s).start()
