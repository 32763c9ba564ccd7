"""Flash an image through the MSP430 FRAM UART BSL: the library behind ``batteryless flash``.

Session: open the port at the board's BSL baud (8E1) → entry sequence → probe (classifies a dead line, a
NAKing line and a locked part) → unlock (image password, else the erased password; a wrong password makes
the part mass-erase its main FRAM, so a warning goes out first) → optional switch to the fast baud (falls
back to the slow one) → per segment: skip if its CRC already matches, else write ≤ max-packet blocks
(password area last) → verify every segment by CRC Check (on mismatch read back and name the first
differing address) → Load PC at the reset vector, or reset, or nothing.

Every command is retried with exponential back-off on a NAK, a timeout or a damaged reply; the pause before
a retry is longer than the device's inter-byte timeout so a half-received packet is dropped. A part that
reset in the middle (it comes back locked at the slow baud) is recovered: unlock and baud switch again, then
the interrupted segment is written again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batteryless.errors import (
    BslLockedError,
    BslNoResponseError,
    FlashError,
    ImageError,
    UsageError,
    VerifyError,
)
from batteryless.flash import entry as E
from batteryless.flash import protocol as P
from batteryless.flash.images import Image, Segment, read_image
from batteryless.progress import ProgressFn, report
from batteryless.stand_in import image_stand_ins, image_warning

TraceFn = Callable[[str, bytes], None]
WarnFn = Callable[[str], None]

#: Largest range one CRC Check covers (skip/verify granularity).
VERIFY_UNIT = 4096


class _Retryable(Exception):
    def __init__(self, kind: str, detail: str, got: bytes = b"") -> None:
        super().__init__(detail)
        self.kind = kind  # "timeout", "nak", "garbage"
        self.detail = detail
        self.got = got


@dataclass(frozen=True)
class BslParams:
    """Bootloader parameters from ``board.toml`` ``[bootloader]`` (see the board loader)."""

    baud: int
    fast_baud: int | None
    max_data: int
    password_address: int
    password_length: int
    protected: tuple[tuple[int, int], ...]
    writable: tuple[tuple[int, int], ...]
    rom: tuple[int, int] | None
    reset_vector: int
    entry_default: str

    @classmethod
    def from_board(cls, board: Any) -> BslParams:
        bl = board.bootloader
        if not bl or bl.get("protocol") != "msp430-fram-uart-bsl":
            raise FlashError(
                f'board {board.name} has no [bootloader] with protocol = "msp430-fram-uart-bsl" in its '
                "board.toml; flashing over the BSL needs an MSP430 FRAM board (e.g. msp430fr5994)"
            )
        regions = [(m.origin, m.origin + m.length - 1) for m in board.memory]
        pw = (int(bl["password_address"]), int(bl["password_address"]) + int(bl["password_length"]) - 1)
        writable = {*regions, *(tuple(r) for r in bl.get("erase_on_bad_password", [])), pw}
        writable |= {tuple(r) for r in bl.get("protected_ranges", [])}
        vec = board.region("vectors") if board.has_region("vectors") else None
        reset_vector = vec.origin + vec.length - 2 if vec else pw[1] - 1
        return cls(
            baud=int(bl["baud"]),
            fast_baud=int(bl["fast_baud"]) if bl.get("fast_baud") else None,
            max_data=int(bl["max_data_per_packet"]),
            password_address=pw[0],
            password_length=int(bl["password_length"]),
            protected=tuple(tuple(r) for r in bl.get("protected_ranges", [])),  # type: ignore[misc]
            writable=tuple(sorted(writable)),  # type: ignore[arg-type]
            rom=tuple(bl["bsl_rom"]) if bl.get("bsl_rom") else None,  # type: ignore[arg-type]
            reset_vector=reset_vector,
            entry_default=str(bl.get("entry_default", "bsl-scripter")),
        )


@dataclass
class ProbeResult:
    state: str  # "unlocked" | "locked"
    version: bytes | None
    detail: str


@dataclass
class FlashReport:
    port: str
    image: str
    segments: list[dict[str, Any]] = field(default_factory=list)
    payload_bytes: int = 0
    written_bytes: int = 0
    skipped_bytes: int = 0
    baud: int = 0
    seconds_total: float = 0.0
    seconds_transfer: float = 0.0  # write + verify
    verified: bool = False
    password_source: str = ""
    mass_erased: bool = False
    retries: int = 0
    recoveries: int = 0
    reset_vector: int | None = None
    started_at: int | None = None
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def throughput_bps(self) -> float:
        """Payload bytes written per second of the write+verify phase."""
        return self.written_bytes / self.seconds_transfer if self.seconds_transfer > 0 else 0.0

    @property
    def wire_efficiency(self) -> float:
        """Throughput as a fraction of the 8E1 wire limit, baud/11 bytes per second."""
        return self.throughput_bps / (self.baud / 11) if self.baud else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items()}
        d["throughput_bps"] = self.throughput_bps
        d["wire_efficiency"] = self.wire_efficiency
        return d


# --- image checks ---------------------------------------------------------------------------------------


def check_image(image: Image, params: BslParams, force: bool = False) -> list[str]:
    """Refuse bytes the BSL cannot or must not write; returns notes for the dry run."""
    notes = list(image.notes)
    if not image.segments:
        raise ImageError(f"{image.source}: the image is empty")
    for s in image.segments:
        last = s.end - 1
        if params.rom and s.address <= params.rom[1] and last >= params.rom[0]:
            raise ImageError(
                f"{image.source}: {s!r} writes into the BSL ROM "
                f"0x{params.rom[0]:04X}..0x{params.rom[1]:04X}, "
                "which is read-only; fix the linker script"
            )
        for lo, hi in params.protected:
            if s.address <= hi and last >= lo:
                if not force:
                    raise ImageError(
                        f"{image.source}: {s!r} writes 0x{max(lo, s.address):04X}..0x{min(hi, last):04X}, "
                        f"the JTAG/BSL/IPE signatures (0x{lo:04X}..0x{hi:04X}); writing them can lock "
                        "the part for "
                        "good. Remove those bytes from the image, or pass force=True (--force) if you mean it"
                    )
                notes.append(f"writes protected range 0x{lo:04X}..0x{hi:04X} (forced)")
        a = s.address
        while a < s.end:
            hit = next(((lo, hi) for lo, hi in params.writable if lo <= a <= hi), None)
            if hit is None:
                raise ImageError(
                    f"{image.source}: {s!r} reaches address 0x{a:05X}, which is no FRAM or RAM of this "
                    "board; "
                    "check the linker script against the board's memory map"
                )
            a = hit[1] + 1
    return notes


def image_password(image: Image, params: BslParams) -> bytes | None:
    return image.read(params.password_address, params.password_length)


def plan_units(image: Image, params: BslParams) -> list[Segment]:
    """Split segments into verify units (≤ VERIFY_UNIT bytes) with the password area alone and last."""
    pw_lo, pw_hi = params.password_address, params.password_address + params.password_length
    units: list[Segment] = []
    last: list[Segment] = []
    for s in image.segments:
        cuts = sorted({s.address, s.end, *(c for c in (pw_lo, pw_hi) if s.address < c < s.end)})
        for a, b in zip(cuts, cuts[1:], strict=False):
            piece = Segment(a, s.data[a - s.address : b - s.address])
            if a >= pw_lo and b <= pw_hi:
                last.append(piece)
                continue
            for i in range(0, len(piece.data), VERIFY_UNIT):
                units.append(Segment(a + i, piece.data[i : i + VERIFY_UNIT]))
    return units + last


# --- the link -------------------------------------------------------------------------------------------


class PortLost(Exception):
    """The serial line itself failed (port unplugged, the pty's other end closed, EOF, an I/O error): not
    retried; :func:`flash` turns it into BslNoResponseError saying what was written so far."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _port_call(fn: Callable[..., Any], *a: Any) -> Any:
    import termios

    import serial

    try:
        return fn(*a)
    except (serial.SerialException, OSError, termios.error) as err:
        raise PortLost(str(err) or type(err).__name__) from None


class BslLink:
    """Packets over a serial port with timeouts, retries and back-off. ``port`` is a pyserial Serial."""

    def __init__(
        self,
        port: Any,
        trace: TraceFn | None = None,
        reply_timeout: float = 0.3,
        retries: int = 4,
        backoff: float = 0.08,
        max_data: int = 256,
    ) -> None:
        self.port = port
        self.trace = trace
        self.reply_timeout = reply_timeout
        self.retries = retries
        self.backoff = backoff
        self.max_data = max_data
        self.retry_count = 0

    @property
    def baud(self) -> int:
        return int(self.port.baudrate)

    def _wire(self, nbytes: int) -> float:
        return nbytes * 11.0 / self.baud

    def _read(self, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # The port's own timeout stays fixed and short: changing it reconfigures the tty, which a
            # pty refuses (EINVAL) once the kernel has dropped the parity flag pyserial asked for.
            got = _port_call(self.port.read, n - len(buf))
            buf += got
        return bytes(buf)

    def _flush(self) -> None:
        _port_call(self.port.reset_input_buffer)

    def _send(self, packet: bytes) -> None:
        if self.trace:
            self.trace(">>", packet)
        _port_call(self.port.write, packet)
        _port_call(self.port.flush)

    def exchange(self, packet: bytes, kind: str, data_len: int = 0) -> P.Packet | list[P.Packet] | None:
        """One attempt: send and read the reply. ``kind``: "ack", "msg" or "data" (``data_len`` bytes)."""
        self._send(packet)
        expect = 1 + (7 if kind == "msg" else 0) + (data_len + 6 * (data_len // self.max_data + 1))
        deadline = time.monotonic() + self.reply_timeout + 1.5 * self._wire(len(packet) + expect)
        got = bytearray(self._read(1, deadline))
        try:
            if not got:
                raise _Retryable("timeout", "no reply")
            if got[0] != P.Ack.OK:
                if got[0] in P.ACK_TEXT:
                    raise _Retryable("nak", P.ACK_TEXT[got[0]], bytes(got))
                raise _Retryable("garbage", f"byte 0x{got[0]:02X} instead of an ACK", bytes(got))
            if kind == "ack":
                return None
            packets: list[P.Packet] = []
            total = 0
            while True:
                head = self._read(3, deadline)
                got += head
                if len(head) < 3:
                    raise _Retryable("timeout", f"reply cut short after {len(got)} bytes", bytes(got))
                if head[0] != P.HEADER:
                    raise _Retryable("garbage", f"reply header 0x{head[0]:02X}, expected 0x80", bytes(got))
                n = head[1] | head[2] << 8
                rest = self._read(n + 2, deadline)
                got += rest
                if len(rest) < n + 2:
                    raise _Retryable("timeout", f"reply cut short after {len(got)} bytes", bytes(got))
                try:
                    pkt = P.parse_packet(head + rest)
                except FlashError as err:
                    raise _Retryable("garbage", f"damaged reply: {err}", bytes(got)) from None
                if kind == "msg":
                    if pkt.cmd != P.Cmd.MESSAGE or len(pkt.data) != 1:
                        raise _Retryable("garbage", f"expected a message reply, got command 0x{pkt.cmd:02X}")
                    return pkt
                if pkt.cmd == P.Cmd.MESSAGE and len(pkt.data) == 1:
                    return pkt  # e.g. "locked" instead of data
                if pkt.cmd != P.Cmd.DATA:
                    raise _Retryable("garbage", f"expected a data reply, got command 0x{pkt.cmd:02X}")
                packets.append(pkt)
                total += len(pkt.data)
                if total >= data_len:
                    if total > data_len:
                        raise _Retryable("garbage", f"{total} data bytes, expected {data_len}")
                    return packets
        finally:
            if self.trace and got:
                self.trace("<<", bytes(got))

    def command(self, packet: bytes, kind: str, data_len: int = 0, what: str = "") -> Any:
        """:meth:`exchange` with retries and back-off; raises :class:`_Retryable` when all attempts fail."""
        last: _Retryable | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.retry_count += 1
                time.sleep(self.backoff * (2 ** (attempt - 1)))
                self._flush()
            try:
                return self.exchange(packet, kind, data_len)
            except _Retryable as err:
                last = err
        assert last is not None
        raise last


def _msg_check(pkt: Any, what: str) -> None:
    if isinstance(pkt, P.Packet) and pkt.cmd == P.Cmd.MESSAGE:
        code = pkt.data[0]
        if code == P.Msg.OK:
            return
        if code == P.Msg.LOCKED:
            raise BslLockedError(f"{what}: the BSL is locked; it needs the password first")
        raise FlashError(f"{what}: device says {P.MSG_TEXT.get(code, f'message 0x{code:02X}')}")


# --- the session ----------------------------------------------------------------------------------------


class BslSession:
    """One conversation with one part. Most users want :func:`flash`."""

    def __init__(
        self,
        port: Any,
        params: BslParams,
        trace: TraceFn | None = None,
        warn: WarnFn | None = None,
        reply_timeout: float = 0.3,
        retries: int = 4,
        backoff: float = 0.08,
    ) -> None:
        self.params = params
        self.link = BslLink(port, trace, reply_timeout, retries, backoff, params.max_data)
        self.warn = warn or (lambda m: None)
        self.password: bytes | None = None  # the last password the part accepted
        self.candidates: list[tuple[bytes, str]] = []  # what to try when the password is not known
        self.mass_erased = False
        self.target_baud = params.baud

    @property
    def port_name(self) -> str:
        return str(getattr(self.link.port, "port", None) or "the port")

    # probe
    def probe(self) -> ProbeResult:
        """Send TX BSL Version once; classify what comes back."""
        link = self.link
        try:
            pkt = link.command(P.tx_bsl_version(), "data", 4)
        except _Retryable as err:
            where = f"{self.port_name} at {link.baud} baud"
            if err.kind == "timeout" and not err.got:
                raise BslNoResponseError(
                    f"no reply from {where}: check the port name, that the board is powered, the wiring "
                    "(adapter TX -> P2.1 BSL RX, adapter RX <- P2.0 BSL TX, common ground) and the entry "
                    "sequence (--entry; the part must be in BSL mode)"
                ) from None
            if err.kind == "nak":
                raise FlashError(
                    f"the BSL on {where} answers {err.detail}: the line is alive but packets arrive damaged; "
                    "check 8E1 framing (even parity), the baud rate, ground and cable length"
                ) from None
            raise FlashError(
                f"bytes from {where} are not BSL replies ({err.detail}; got {P.hexdump(err.got[:16])}): "
                "check "
                "the baud rate and even parity, and that this is the BSL UART, not the application's"
            ) from None
        if isinstance(pkt, P.Packet):
            if pkt.data and pkt.data[0] == P.Msg.LOCKED:
                return ProbeResult("locked", None, "BSL alive, locked (password needed)")
            raise FlashError(f"unexpected reply to TX BSL Version: {P.hexdump(pkt.raw)}")
        version = b"".join(p.data for p in pkt)
        return ProbeResult("unlocked", version, f"BSL alive, unlocked, version {version.hex()}")

    # unlock
    def send_password(self, password: bytes, source: str) -> bool:
        self.warn(
            f"sending the password from {source}; if it is not the part's password the BSL mass-erases "
            "its main FRAM"
        )
        try:
            pkt = self.link.command(P.rx_password(password), "msg")
        except _Retryable as err:
            raise FlashError(f"RX Password failed after retries: {err.detail}") from None
        code = pkt.data[0]
        if code == P.Msg.OK:
            self.password = password
            return True
        if code == P.Msg.PASSWORD_ERROR:
            self.mass_erased = True
            self.warn("password refused: the part has mass-erased its main FRAM (password is now 32 x 0xFF)")
            return False
        raise FlashError(f"RX Password: device says {P.MSG_TEXT.get(code, hex(code))}")

    def unlock(self, candidates: list[tuple[bytes, str]]) -> str:
        """Try ``candidates`` in order; after a refusal the part is erased, so 32 x 0xFF must work."""
        erased = bytes([0xFF]) * self.params.password_length
        for pw, src in candidates:
            if self.send_password(pw, src):
                return src
            if self.send_password(erased, "the erased state (32 x 0xFF)"):
                return "erased (after a mass erase)"
            break
        raise BslLockedError(
            "the BSL refused every password, even the erased one after a mass erase; the part may have "
            "BSL protection in its signatures (0xFF80..0xFF8F) — recover it with a JTAG/SBW programmer"
        )

    def mass_erase(self) -> None:
        self.warn("mass erase requested: main FRAM of the part will be cleared")
        try:
            self.link.command(P.mass_erase(), "ack")
        except _Retryable as err:
            raise FlashError(f"Mass Erase failed after retries: {err.detail}") from None
        self.mass_erased = True

    # baud
    def change_baud(self, baud: int) -> bool:
        """Switch both ends to ``baud``; returns False (and stays at the old rate) when that fails."""
        link = self.link
        old = link.baud
        if baud == old:
            return True
        try:
            link.command(P.change_baud_rate(baud), "ack")
        except _Retryable as err:
            if err.kind == "nak" and err.got[:1] == bytes([P.Ack.UNKNOWN_BAUD_RATE]):
                self.warn(f"the BSL does not support {baud} baud; staying at {old}")
                return False
            # The ACK may have been lost after the device switched: look for it at both rates.
        time.sleep(0.01)
        for rate in (baud, old):
            set_baud(link.port, rate)
            link._flush()
            try:
                link.command(P.tx_bsl_version(), "data", 4)
            except _Retryable:
                continue
            if rate == baud:
                self.target_baud = baud
                return True
            self.warn(f"could not switch to {baud} baud; continuing at {old}")
            return False
        raise FlashError(
            f"lost the BSL while switching from {old} to {baud} baud; reset the board and try again with "
            f"--baud {old}"
        )

    def recover(self) -> None:
        """The part stopped answering as expected: look for it at the current rate (a burst of line
        errors) and at the slow rate (it reset); unlock again if it is locked, then switch baud again."""
        link = self.link
        self.warn("the part stopped answering as expected; re-synchronising")
        found: ProbeResult | None = None
        rates = list(dict.fromkeys((link.baud, self.params.baud)))
        for rate in rates:
            set_baud(link.port, rate)
            time.sleep(link.backoff)
            link._flush()
            try:
                found = self.probe()
                break
            except FlashError:
                continue
        if found is None:
            raise FlashError(
                f"lost the BSL on {self.port_name} (no sensible reply at {' or '.join(map(str, rates))} "
                "baud); check the cable and power, reset the board and flash again"
            )
        if found.state == "locked" and self.password is None:
            self.unlock(self.candidates)  # it was unlocked when we found it; we never sent a password
        elif found.state == "locked":
            if not self.send_password(self.password, "the password used at the start"):
                raise BslLockedError(
                    "the part reset mid-transfer and then refused the password it had accepted (its password "
                    "area was being written); it has mass-erased itself: run flash again"
                )
        if link.baud != self.target_baud:
            self.change_baud(self.target_baud)

    # memory
    def crc(self, address: int, length: int) -> int:
        pkt = self.link.command(P.crc_check(address, length), "data", 2)
        if isinstance(pkt, P.Packet):
            _msg_check(pkt, f"CRC Check at 0x{address:05X}")
        data = b"".join(p.data for p in pkt)
        return data[0] | data[1] << 8

    def read(self, address: int, length: int) -> bytes:
        out = bytearray()
        step = self.params.max_data
        for a in range(address, address + length, step):
            n = min(step, address + length - a)
            pkt = self.link.command(P.tx_data_block(a, n), "data", n)
            if isinstance(pkt, P.Packet):
                _msg_check(pkt, f"TX Data Block at 0x{a:05X}")
            out += b"".join(p.data for p in pkt)
        return bytes(out)

    def write(self, address: int, data: bytes, fast: bool = False) -> None:
        step = self.params.max_data
        for i in range(0, len(data), step):
            a = address + i
            block = data[i : i + step]
            if fast:
                self.link.command(P.rx_data_block(a, block, fast=True), "ack")
            else:
                pkt = self.link.command(P.rx_data_block(a, block), "msg")
                _msg_check(pkt, f"RX Data Block at 0x{a:05X} ({len(block)} bytes)")

    def load_pc(self, address: int) -> None:
        self.link.command(P.load_pc(address), "ack")


def _resolve_image(image: Image | str | Path) -> Image:
    return image if isinstance(image, Image) else read_image(image)


def _password_candidates(
    password: str | bytes, image: Image, params: BslParams
) -> tuple[list[tuple[bytes, str]], str]:
    erased = bytes([0xFF]) * params.password_length
    if isinstance(password, bytes):
        if len(password) != params.password_length:
            raise FlashError(f"a BSL password is {params.password_length} bytes, got {len(password)}")
        return [(password, "the given password")], "given"
    img = image_password(image, params)
    if password == "auto":
        if img is not None:
            return [(img, f"the image ({image.source} @0x{params.password_address:04X})")], "image"
        return [(erased, "the erased state (32 x 0xFF)")], "erased"
    if password == "image":
        if img is None:
            raise FlashError(
                f"{image.source} does not cover the password area 0x{params.password_address:04X}.."
                f"0x{params.password_address + params.password_length - 1:04X}; use password='erased' or "
                "a file"
            )
        return [(img, f"the image ({image.source})")], "image"
    if password == "erased":
        return [(erased, "the erased state (32 x 0xFF)")], "erased"
    raise FlashError(f"unknown password source {password!r}; use auto, image, erased or 32 bytes")


RUN_MODES = ("load-pc", "reset", "none")


def check_options(
    params: BslParams | None,
    *,
    baud: int | None = None,
    retries: int = 4,
    reply_timeout: float = 0.3,
    backoff: float = 0.08,
    max_recoveries: int = 3,
    run: str = "load-pc",
) -> None:
    """Every number range-checked before a port is opened or a byte sent (UsageError, one line): a baud
    the BSL cannot switch to must not surface only after the password exchange (which mass-erases the
    part on a wrong password)."""
    if baud is not None and baud not in P.BAUD_CODES and (params is None or baud != params.baud):
        raise UsageError(
            f"--baud {baud} is not a BSL rate; use one of {', '.join(map(str, sorted(P.BAUD_CODES)))}"
        )
    if not isinstance(retries, int) or retries < 0:
        raise UsageError(f"--retries {retries}: give a whole number of retries >= 0")
    if not isinstance(max_recoveries, int) or max_recoveries < 0:
        raise UsageError(f"max_recoveries {max_recoveries}: give a whole number >= 0")
    if not (math.isfinite(reply_timeout) and reply_timeout > 0):
        raise UsageError(f"--timeout {reply_timeout:g}: give a reply timeout in seconds > 0")
    if not (math.isfinite(backoff) and backoff >= 0):
        raise UsageError(f"backoff {backoff:g}: give seconds >= 0")
    if run not in RUN_MODES:
        raise UsageError(f"unknown run mode {run!r}; use {', '.join(RUN_MODES)}")


def read_password_file(path: str | Path, params: BslParams) -> bytes:
    """A password from a file: exactly 32 raw bytes, or an image (ELF, Intel HEX, TI-TXT) covering the
    password area. A file of another length that is no image is reported as a wrong password length."""
    from batteryless.flash.images import detect_format
    from batteryless.paths import check_input_file

    p = check_input_file(path, "password file", UsageError)
    raw = p.read_bytes()
    n = params.password_length
    if len(raw) == n:
        return raw
    if detect_format(raw[:64]) == "unknown":
        raise UsageError(
            f"--password {p}: a raw password file holds exactly {n} bytes, this one has {len(raw)} (and it "
            "is not an ELF, Intel HEX or TI-TXT image)"
        )
    pw = read_image(p).read(params.password_address, n)
    if pw is None:
        raise UsageError(
            f"--password {p}: the image does not cover the password area "
            f"0x{params.password_address:04X} (+{n}) and is not {n} raw bytes"
        )
    return pw


def flash(
    image: Image | str | Path,
    port: Any = None,
    board: Any = "msp430fr5994",
    *,
    entry: str | None = None,
    baud: int | None = None,
    password: str | bytes = "auto",
    erase: bool = False,
    force: bool = False,
    verify: bool = True,
    skip_unchanged: bool = True,
    fast_write: bool = False,
    run: str = "load-pc",
    dry_run: bool = False,
    retries: int = 4,
    reply_timeout: float = 0.3,
    backoff: float = 0.08,
    max_recoveries: int = 3,
    progress: ProgressFn | None = None,
    trace: TraceFn | None = None,
    warn: WarnFn | None = None,
    allow_stand_in: bool = False,
) -> FlashReport:
    """Write ``image`` to the part on ``port`` (a device path or an open pyserial ``Serial``).

    ``board``: a board name/path or a loaded ``Board``. ``entry``: preset name, ``manual`` or a custom
    sequence (default: the board's ``entry_default``). ``baud``: the rate to switch to after unlocking
    (default: the board's ``fast_baud``; the BSL always starts at its slow rate). ``password``: ``auto``
    (image, else erased), ``image``, ``erased`` or 32 bytes. ``run``: ``load-pc`` (jump to the reset vector),
    ``reset`` (reset sequence) or ``none``. Raises ImageError, BslNoResponseError, BslLockedError,
    VerifyError or FlashError. An image that links a stand-in (``batteryless.stand_in``: it will not compute
    on the part) is refused with ImageError before anything is sent, unless ``allow_stand_in`` or
    ``dry_run`` (then it is a warning).
    """
    import termios

    from batteryless.boards import load_board

    t0 = time.monotonic()
    b = load_board(board) if isinstance(board, str | Path) else board
    params = BslParams.from_board(b)
    check_options(
        params,
        baud=baud,
        retries=retries,
        reply_timeout=reply_timeout,
        backoff=backoff,
        max_recoveries=max_recoveries,
        run=run,
    )
    img = _resolve_image(image)
    notes = check_image(img, params, force)
    stand_in = image_warning(img.source, image_stand_ins(img))
    if stand_in and not (allow_stand_in or dry_run):
        raise ImageError(f"{stand_in} (to flash it anyway: allow_stand_in=True, or --allow-stand-in)")
    if stand_in:
        notes = [*notes, stand_in]
        if warn and not dry_run:
            warn(stand_in)
    candidates, pw_source = _password_candidates(password, img, params)
    units = plan_units(img, params)
    rep = FlashReport(port=str(getattr(port, "port", port)), image=img.source, dry_run=dry_run)
    rep.warnings.extend(notes)
    rep.payload_bytes = img.size
    rep.password_source = pw_source
    rep.reset_vector = img.word(params.reset_vector)
    rep.segments = [
        {"address": s.address, "length": len(s.data), "crc": P.crc16_fast(s.data)} for s in img.segments
    ]
    entry_name, entry_steps, reset_steps = E.resolve(entry or params.entry_default)
    fast = baud if baud is not None else (params.fast_baud or params.baud)
    rep.baud = fast
    if dry_run:
        rep.seconds_total = time.monotonic() - t0
        return rep
    if port is None:
        raise FlashError("no serial port given; pass port='/dev/ttyUSB0' (or --port)")

    def say(msg: str) -> None:
        rep.warnings.append(msg)
        if warn:
            warn(msg)

    ser, own = _open(port, params.baud)
    stage = "before anything was sent"
    total = sum(len(u.data) for u in units)
    sess: BslSession | None = None
    try:
        _port_call(set_baud, ser, params.baud)
        _port_call(E.run_sequence, ser, entry_steps)
        _port_call(ser.reset_input_buffer)
        stage = "while probing the BSL (nothing written)"
        sess = BslSession(ser, params, trace, say, reply_timeout, retries, backoff)
        sess.candidates = candidates
        try:
            probe = sess.probe()
        except BslNoResponseError:
            raise
        except FlashError:
            # Replies that make no sense at the slow rate: the part may still be at the fast rate from an
            # earlier session that was not followed by a reset (only possible with --entry manual).
            if fast == params.baud or entry_steps:
                raise
            set_baud(ser, fast)
            time.sleep(backoff)
            ser.reset_input_buffer()
            try:
                probe = sess.probe()
            except FlashError:
                set_baud(ser, params.baud)
                raise FlashError(
                    f"the BSL on {sess.port_name} answers neither at {params.baud} nor at {fast} baud in a "
                    "way that makes sense; reset the board (or the emulator) into BSL mode and try again"
                ) from None
            say(f"the part was already at {fast} baud (an earlier session without a reset)")
            sess.target_baud = fast
        stage = "while unlocking (nothing written)"
        if erase:
            sess.mass_erase()
            candidates = [(bytes([0xFF]) * params.password_length, "the erased state (after Mass Erase)")]
            sess.candidates = candidates
        if probe.state == "locked" or erase:
            rep.password_source = sess.unlock(candidates)
        else:
            rep.password_source = "already unlocked"
        if fast != params.baud:
            sess.change_baud(fast)
        rep.baud = sess.link.baud
        # transfer
        stage = "during the transfer"
        t1 = time.monotonic()
        done = 0
        recoveries = 0
        report(progress, "flash", 0, total)
        for u in units:
            want = P.crc16_fast(u.data)
            for attempt in range(max_recoveries + 1):
                try:
                    if skip_unchanged and sess.crc(u.address, len(u.data)) == want:
                        rep.skipped_bytes += len(u.data)
                    else:
                        sess.write(u.address, u.data, fast_write)
                        if verify:
                            _verify_unit(sess, u, want)
                        rep.written_bytes += len(u.data)
                    break
                except (_Retryable, BslLockedError) as err:
                    recoveries += 1
                    if attempt == max_recoveries:
                        raise FlashError(
                            f"gave up at 0x{u.address:05X} after {max_recoveries} re-synchronisations "
                            f"({err}); check the cable and power, or flash at --baud {params.baud}"
                        ) from None
                    try:
                        sess.recover()
                    except FlashError as rerr:
                        raise type(rerr)(f"while writing 0x{u.address:05X} ({err}): {rerr}") from None
            done += len(u.data)
            report(progress, "flash", done, total)
        if verify:
            rep.verified = True
        rep.seconds_transfer = time.monotonic() - t1
        rep.recoveries = recoveries
        rep.retries = sess.link.retry_count
        rep.mass_erased = sess.mass_erased
        # run
        stage = "after writing and verifying everything, while starting it"
        if run == "load-pc":
            pc = rep.reset_vector
            if pc is None:
                pc = int.from_bytes(sess.read(params.reset_vector, 2), "little")
                rep.reset_vector = pc
            sess.load_pc(pc)
            rep.started_at = pc
        elif run == "reset":
            if not reset_steps:
                say(f"entry {entry_name!r} has no reset sequence: reset the board by hand to start it")
            E.run_sequence(ser, reset_steps)
    except _Retryable as err:
        raise FlashError(
            f"the BSL stopped answering ({err.detail}) after retries; check cable and power"
        ) from None
    except (PortLost, OSError, termios.error) as err:  # pyserial's SerialException is an OSError
        detail = err.detail if isinstance(err, PortLost) else (str(err) or type(err).__name__)
        name = str(getattr(ser, "port", port))
        erased = " (the part's main FRAM was mass-erased)" if sess is not None and sess.mass_erased else ""
        if stage == "during the transfer":
            kept = rep.written_bytes + rep.skipped_bytes
            so_far = (
                f"{kept} of {total} bytes are on the part and verified ({rep.written_bytes} written, "
                f"{rep.skipped_bytes} already there); the rest is missing or partly written{erased}: "
                "flash again"
            )
        else:
            so_far = f"nothing of the image was written{erased}"
        raise BslNoResponseError(
            f"the serial line {name} failed {stage} ({detail}): the port was unplugged or closed; {so_far}"
        ) from None
    finally:
        if own:
            try:
                ser.close()
            except Exception:  # closing a port that has vanished: nothing more to tell the user
                pass
    rep.seconds_total = time.monotonic() - t0
    return rep


def _verify_unit(sess: BslSession, u: Segment, want: int) -> None:
    got = sess.crc(u.address, len(u.data))
    if got == want:
        return
    back = sess.read(u.address, len(u.data))
    for i, (x, y) in enumerate(zip(back, u.data, strict=True)):
        if x != y:
            raise VerifyError(
                f"verify failed at 0x{u.address + i:05X}: device has 0x{x:02X}, image has 0x{y:02X} "
                f"(CRC 0x{got:04X} vs 0x{want:04X}); the write did not stick: check the image addresses "
                "against the board memory map and the supply voltage"
            )
    raise VerifyError(
        f"verify of 0x{u.address:05X}..0x{u.end - 1:05X}: CRC 0x{got:04X} differs from 0x{want:04X} but the "
        "read-back matches; the line is unreliable, flash again at a lower --baud"
    )


def set_baud(port: Any, baud: int) -> None:
    """Change the host's baud rate only when it differs (a no-op reconfiguration fails on a pty)."""
    if int(port.baudrate) != baud:
        _port_call(setattr, port, "baudrate", baud)


def _open(port: Any, baud: int) -> tuple[Any, bool]:
    import termios

    if not isinstance(port, str | Path):
        # An open port from the caller: reads must return within a short time (see BslLink._read).
        if getattr(port, "timeout", 0.02) is None or port.timeout > 0.1:
            try:
                port.timeout = 0.02
            except termios.error as err:
                raise FlashError(
                    f"cannot set a read timeout on {port!r} ({err}); open it with timeout=0.02"
                ) from None
        return port, False

    import serial

    def make(parity: str) -> Any:
        return serial.Serial(str(port), baudrate=baud, bytesize=8, parity=parity, stopbits=1, timeout=0.02)

    try:
        try:
            ser = make(serial.PARITY_EVEN)
        except termios.error:
            # A pseudo-terminal drops PARENB and then refuses a reconfiguration that changes nothing else
            # (EINVAL). Parity means nothing on a pty, so open it without.
            ser = make(serial.PARITY_NONE)
    except (serial.SerialException, OSError, termios.error) as err:
        raise BslNoResponseError(
            f"cannot open {port}: {err}; check the port name (e.g. /dev/ttyUSB0) and your permissions"
        ) from None
    return ser, True


def probe(
    port: Any, board: Any = "msp430fr5994", entry: str | None = None, trace: TraceFn | None = None
) -> ProbeResult:
    """Open ``port``, run the entry sequence and classify the part's state (raises on a dead line)."""
    from batteryless.boards import load_board

    b = load_board(board) if isinstance(board, str | Path) else board
    params = BslParams.from_board(b)
    _, steps, _ = E.resolve(entry or params.entry_default)
    ser, own = _open(port, params.baud)
    try:
        E.run_sequence(ser, steps)
        ser.reset_input_buffer()
        return BslSession(ser, params, trace, retries=1).probe()
    finally:
        if own:
            ser.close()
