"""MSP430 FRAM UART bootloader (BSL) packets: framing, CRC, command builders and reply parsing.

Wire format (SLAU550; REFERENCE.md §3): ``0x80 NL NH CMD data... CKL CKH`` where ``N = 1 + len(data)``
and the checksum is CRC-16-CCITT (poly 0x1021, init 0xFFFF, no reflection, no final XOR) over CMD + data
only, low byte first. Addresses are 3 bytes little-endian, lengths 2 bytes little-endian.

Both directions use the same packet layout; the device prefixes every reply with one acknowledgement byte
(``0x00`` ACK or a NAK code). :class:`PacketParser` is the incremental parser used by the device model and by
the host, so that framing is checked in software (a pseudo-terminal carries bytes but no parity or timing).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from batteryless.errors import FlashError

HEADER = 0x80
#: Largest N (CMD + data) the device accepts: 1 command byte + 3 address bytes + 256 data bytes.
MAX_N_DEFAULT = 260


class Cmd(enum.IntEnum):
    RX_DATA_BLOCK = 0x10
    RX_PASSWORD = 0x11
    MASS_ERASE = 0x15
    CRC_CHECK = 0x16
    LOAD_PC = 0x17
    TX_DATA_BLOCK = 0x18
    TX_BSL_VERSION = 0x19
    RX_DATA_BLOCK_FAST = 0x1B
    CHANGE_BAUD_RATE = 0x52
    # Reply packet types (device -> host).
    DATA = 0x3A
    MESSAGE = 0x3B


class Ack(enum.IntEnum):
    """The single byte that precedes every reply."""

    OK = 0x00
    HEADER_WRONG = 0x51
    CHECKSUM_WRONG = 0x52
    SIZE_ZERO = 0x53
    SIZE_EXCEEDS_BUFFER = 0x54
    UNKNOWN_ERROR = 0x55
    UNKNOWN_BAUD_RATE = 0x56


ACK_TEXT: dict[int, str] = {
    Ack.OK: "ACK",
    Ack.HEADER_WRONG: "NAK 0x51 header wrong",
    Ack.CHECKSUM_WRONG: "NAK 0x52 checksum wrong",
    Ack.SIZE_ZERO: "NAK 0x53 packet size zero",
    Ack.SIZE_EXCEEDS_BUFFER: "NAK 0x54 packet size exceeds buffer",
    Ack.UNKNOWN_ERROR: "NAK 0x55 unknown error",
    Ack.UNKNOWN_BAUD_RATE: "NAK 0x56 unknown baud rate",
}


class Msg(enum.IntEnum):
    """The status byte of a ``0x3B`` message reply."""

    OK = 0x00
    WRITE_CHECK_FAILED = 0x01
    LOCKED = 0x04
    PASSWORD_ERROR = 0x05
    UNKNOWN_COMMAND = 0x07


MSG_TEXT: dict[int, str] = {
    Msg.OK: "ok",
    Msg.WRITE_CHECK_FAILED: "write check failed",
    Msg.LOCKED: "BSL locked (password required)",
    Msg.PASSWORD_ERROR: "password wrong (the device mass-erased its main FRAM)",
    Msg.UNKNOWN_COMMAND: "unknown command",
}

#: Change Baud Rate codes (FR5xx UART BSL).
BAUD_CODES: dict[int, int] = {9600: 0x02, 19200: 0x03, 38400: 0x04, 57600: 0x05, 115200: 0x06}
CODE_BAUDS: dict[int, int] = {v: k for k, v in BAUD_CODES.items()}

#: Commands whose reply is the ACK byte alone (no message packet).
ACK_ONLY = frozenset({Cmd.MASS_ERASE, Cmd.LOAD_PC, Cmd.RX_DATA_BLOCK_FAST, Cmd.CHANGE_BAUD_RATE})


def crc16(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16-CCITT, polynomial 0x1021, MSB first, initial value ``crc``, no final XOR."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _table() -> list[int]:
    out = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
        out.append(c)
    return out


_CRC_TABLE = _table()


def crc16_fast(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """Table-driven :func:`crc16` (same result; used for large memory ranges)."""
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


def frame(cmd: int, data: bytes = b"") -> bytes:
    """One packet: header, length, ``cmd`` + ``data``, CRC low byte first."""
    core = bytes([cmd]) + bytes(data)
    if len(core) > 0xFFFF:
        raise FlashError(f"BSL packet too long ({len(core)} bytes); split the data into smaller blocks")
    c = crc16_fast(core)
    return bytes([HEADER, len(core) & 0xFF, len(core) >> 8]) + core + bytes([c & 0xFF, c >> 8])


def addr3(address: int) -> bytes:
    if not 0 <= address <= 0xFFFFFF:
        raise FlashError(f"address 0x{address:X} does not fit the BSL's 24-bit address field")
    return address.to_bytes(3, "little")


def len2(length: int) -> bytes:
    if not 0 <= length <= 0xFFFF:
        raise FlashError(f"length {length} does not fit the BSL's 16-bit length field")
    return length.to_bytes(2, "little")


# --- command builders (host -> device) ------------------------------------------------------------------


def rx_data_block(address: int, data: bytes, fast: bool = False) -> bytes:
    return frame(Cmd.RX_DATA_BLOCK_FAST if fast else Cmd.RX_DATA_BLOCK, addr3(address) + bytes(data))


def rx_password(password: bytes) -> bytes:
    if len(password) != 32:
        raise FlashError(f"the BSL password is 32 bytes, got {len(password)}")
    return frame(Cmd.RX_PASSWORD, bytes(password))


def mass_erase() -> bytes:
    return frame(Cmd.MASS_ERASE)


def crc_check(address: int, length: int) -> bytes:
    return frame(Cmd.CRC_CHECK, addr3(address) + len2(length))


def load_pc(address: int) -> bytes:
    return frame(Cmd.LOAD_PC, addr3(address))


def tx_data_block(address: int, length: int) -> bytes:
    return frame(Cmd.TX_DATA_BLOCK, addr3(address) + len2(length))


def tx_bsl_version() -> bytes:
    return frame(Cmd.TX_BSL_VERSION)


def change_baud_rate(baud: int) -> bytes:
    if baud not in BAUD_CODES:
        raise FlashError(f"baud {baud} is not a BSL rate; use one of {sorted(BAUD_CODES)}")
    return frame(Cmd.CHANGE_BAUD_RATE, bytes([BAUD_CODES[baud]]))


def message(code: int) -> bytes:
    """A device message packet ``80 02 00 3B MSG CKL CKH``."""
    return frame(Cmd.MESSAGE, bytes([code]))


def data_packet(data: bytes) -> bytes:
    """A device data packet ``80 NL NH 3A data... CKL CKH``."""
    return frame(Cmd.DATA, bytes(data))


# --- incremental parser (either direction) --------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    cmd: int
    data: bytes

    @property
    def raw(self) -> bytes:
        return frame(self.cmd, self.data)


@dataclass(frozen=True)
class FramingError:
    """A packet that failed a framing check; ``nak`` is the code the device answers with."""

    nak: int
    detail: str


class PacketParser:
    """Feed bytes one at a time; returns a :class:`Packet`, a :class:`FramingError` or ``None`` (need more).

    Checks, in wire order: header byte (``0x51``), N = 0 (``0x53``), N above ``max_n`` (``0x54``), checksum
    (``0x52``). After an error the parser is ready for the next header; a bad header costs one byte.
    """

    def __init__(self, max_n: int = MAX_N_DEFAULT) -> None:
        self.max_n = max_n
        self.reset()

    def reset(self) -> None:
        self._state = 0  # 0 header, 1 NL, 2 NH, 3 body, 4 CKL, 5 CKH
        self._n = 0
        self._body = bytearray()
        self._ckl = 0

    @property
    def idle(self) -> bool:
        return self._state == 0

    def feed(self, byte: int) -> Packet | FramingError | None:
        st = self._state
        if st == 0:
            if byte != HEADER:
                return FramingError(Ack.HEADER_WRONG, f"expected header 0x80, got 0x{byte:02X}")
            self._state = 1
            return None
        if st == 1:
            self._n = byte
            self._state = 2
            return None
        if st == 2:
            self._n |= byte << 8
            if self._n == 0:
                self.reset()
                return FramingError(Ack.SIZE_ZERO, "packet length N is zero")
            if self._n > self.max_n:
                n = self._n
                self.reset()
                return FramingError(Ack.SIZE_EXCEEDS_BUFFER, f"packet length N={n} exceeds {self.max_n}")
            self._body = bytearray()
            self._state = 3
            return None
        if st == 3:
            self._body.append(byte)
            if len(self._body) == self._n:
                self._state = 4
            return None
        if st == 4:
            self._ckl = byte
            self._state = 5
            return None
        # st == 5
        got = self._ckl | (byte << 8)
        body = bytes(self._body)
        self.reset()
        want = crc16_fast(body)
        if got != want:
            return FramingError(Ack.CHECKSUM_WRONG, f"checksum 0x{got:04X}, expected 0x{want:04X}")
        return Packet(body[0], body[1:])


def parse_packet(raw: bytes, max_n: int = 0xFFFF) -> Packet:
    """Parse exactly one complete packet; raises :class:`FlashError` describing the first framing fault."""
    p = PacketParser(max_n)
    for i, b in enumerate(raw):
        out = p.feed(b)
        if isinstance(out, FramingError):
            raise FlashError(f"bad BSL packet at byte {i}: {out.detail}")
        if isinstance(out, Packet):
            if i != len(raw) - 1:
                raise FlashError(f"bad BSL packet: {len(raw) - i - 1} bytes after the checksum")
            return out
    raise FlashError(f"bad BSL packet: truncated after {len(raw)} bytes")


def hexdump(data: bytes) -> str:
    return " ".join(f"{b:02X}" for b in data)
