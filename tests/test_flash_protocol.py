"""BSL packets: the test vectors of REFERENCE.md §3 byte for byte in both directions, and fuzzing of the
device-side packet parser and the host-side reply parser."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batteryless.flash import protocol as P
from batteryless.flash.emulator import BslConfig, BslDevice
from batteryless.flash.flasher import BslLink, _Retryable


def h(text: str) -> bytes:
    return bytes.fromhex(text)


PW_FF = h("80 21 00 11" + " FF" * 32 + " 9E E6")

# (host packet from REFERENCE.md §3, builder output, decoded command, decoded data)
HOST_VECTORS = [
    (h("80 01 00 19 E8 62"), P.tx_bsl_version(), 0x19, b""),
    (h("80 02 00 52 06 14 15"), P.change_baud_rate(115200), 0x52, b"\x06"),
    (h("80 01 00 15 64 A3"), P.mass_erase(), 0x15, b""),
    (PW_FF, P.rx_password(b"\xff" * 32), 0x11, b"\xff" * 32),
    (
        h("80 08 00 10 00 44 00 01 02 03 04 38 6D"),
        P.rx_data_block(0x4400, b"\x01\x02\x03\x04"),
        0x10,
        h("00 44 00 01 02 03 04"),
    ),
    (h("80 06 00 16 00 44 00 20 00 FE 3B"), P.crc_check(0x4400, 0x20), 0x16, h("00 44 00 20 00")),
    (h("80 04 00 17 00 44 00 42 0F"), P.load_pc(0x4400), 0x17, h("00 44 00")),
]


@pytest.mark.parametrize("wire,built,cmd,data", HOST_VECTORS, ids=[f"{v[2]:02X}" for v in HOST_VECTORS])
def test_host_vectors_build_and_parse(wire: bytes, built: bytes, cmd: int, data: bytes) -> None:
    assert built == wire  # host -> wire
    pkt = P.parse_packet(wire)  # wire -> device parser
    assert (pkt.cmd, pkt.data) == (cmd, data)
    parser = P.PacketParser()
    outs = [parser.feed(b) for b in wire]
    assert outs[:-1] == [None] * (len(wire) - 1) and outs[-1] == P.Packet(cmd, data)


def test_crc_self_tests() -> None:
    assert P.crc16(h("52 02")) == 0x5590
    assert P.crc16(h("3A 04 01")) == 0x121D
    assert P.crc16_fast(h("52 02")) == 0x5590


@given(st.binary(max_size=600))
def test_crc_matches_stdlib_ccitt(data: bytes) -> None:
    # binascii.crc_hqx is CRC-CCITT (poly 0x1021, MSB first) with a caller-given initial value.
    assert P.crc16(data) == binascii.crc_hqx(data, 0xFFFF) == P.crc16_fast(data)


def _device() -> BslDevice:
    cfg = BslConfig(
        baud=9600,
        max_data=256,
        password_address=0xFFE0,
        password_length=32,
        writable=((0x1800, 0x19FF), (0x4000, 0xFFFF)),
        erase=((0x4000, 0xFFFF),),
        volatile=(),
        rom=(0x1000, 0x17FF),
    )
    return BslDevice(cfg)


def test_device_reply_vectors() -> None:
    dev = _device()
    reply, _ = dev.handle(P.parse_packet(h("80 01 00 19 E8 62")))
    assert reply == h("00 80 02 00 3B 04 E4 84")  # locked
    reply, _ = dev.handle(P.parse_packet(PW_FF))
    assert reply == h("00 80 02 00 3B 00 60 C4")  # ok
    reply, new = dev.handle(P.parse_packet(h("80 02 00 52 06 14 15")))
    assert reply == h("00") and new == 115200


class _FeedPort:
    """A stand-in serial port that answers every write with canned bytes."""

    baudrate = 115200

    def __init__(self, reply: bytes) -> None:
        self.reply = bytearray(reply)
        self.sent = bytearray()

    def write(self, data: bytes) -> None:
        self.sent += data

    def flush(self) -> None:
        pass

    def reset_input_buffer(self) -> None:
        self.reply.clear()

    def read(self, n: int) -> bytes:
        out = bytes(self.reply[:n])
        del self.reply[:n]
        return out


def test_host_parses_reply_vectors() -> None:
    ok = BslLink(_FeedPort(h("00 80 02 00 3B 00 60 C4")), reply_timeout=0.01).exchange(b"x", "msg")
    assert ok == P.Packet(0x3B, b"\x00")
    locked = BslLink(_FeedPort(h("00 80 02 00 3B 04 E4 84")), reply_timeout=0.01).exchange(b"x", "msg")
    assert locked == P.Packet(0x3B, b"\x04")
    crc = BslLink(_FeedPort(h("00 80 03 00 3A 04 01") + b""), reply_timeout=0.01)
    # a CRC-check data reply: checksum over 3A 04 01 is 0x121D -> low byte first
    crc.port.reply += h("1D 12")
    assert crc.exchange(b"x", "data", 2) == [P.Packet(0x3A, b"\x04\x01")]


def test_host_rejects_damaged_reply() -> None:
    with pytest.raises(_Retryable) as err:
        BslLink(_FeedPort(h("00 80 02 00 3B 00 60 C5")), reply_timeout=0.01).exchange(b"x", "msg")
    assert err.value.kind == "garbage"
    with pytest.raises(_Retryable) as err:
        BslLink(_FeedPort(h("52")), reply_timeout=0.01).exchange(b"x", "msg")
    assert err.value.kind == "nak" and "checksum" in err.value.detail
    with pytest.raises(_Retryable) as err:
        BslLink(_FeedPort(h("00 80 02")), reply_timeout=0.01).exchange(b"x", "msg")
    assert err.value.kind == "timeout"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_device_parser_fuzz(stream: bytes) -> None:
    """Arbitrary bytes: the parser never raises, and every packet it accepts is exactly a valid frame."""
    parser = P.PacketParser()
    start = 0
    for i, b in enumerate(stream):
        out = parser.feed(b)
        if out is None:
            continue
        if isinstance(out, P.Packet):
            raw = stream[start : i + 1]
            assert raw == P.frame(out.cmd, out.data)
            assert binascii.crc_hqx(raw[3:-2], 0xFFFF) == raw[-2] | raw[-1] << 8
        else:
            assert out.nak in (0x51, 0x52, 0x53, 0x54)
        start = i + 1


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=259), st.data())
def test_single_byte_corruption_is_detected(cmd: int, data: bytes, draw: st.DataObject) -> None:
    raw = bytearray(P.frame(cmd, data))
    pos = draw.draw(st.integers(3, len(raw) - 1))  # body or checksum
    raw[pos] ^= draw.draw(st.integers(1, 255))
    with pytest.raises(Exception, match="checksum"):
        P.parse_packet(bytes(raw))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["ack", "msg", "data"]), st.integers(0, 300))
def test_host_reply_parser_fuzz(reply: bytes, kind: str, data_len: int) -> None:
    """Arbitrary reply bytes: the host either accepts a well-formed reply or raises _Retryable."""
    link = BslLink(_FeedPort(reply), reply_timeout=0.0)
    try:
        out = link.exchange(b"x", kind, data_len)
    except _Retryable:
        return
    assert reply[0] == 0
    if kind == "msg":
        assert isinstance(out, P.Packet) and out.cmd == 0x3B and reply[1:8] == out.raw
    elif kind == "data" and isinstance(out, list):
        assert sum(len(p.data) for p in out) == data_len
        assert reply[1:].startswith(b"".join(p.raw for p in out))


@given(st.integers(0, 255), st.binary(max_size=300))
def test_frame_roundtrip(cmd: int, data: bytes) -> None:
    assert P.parse_packet(P.frame(cmd, data)) == P.Packet(cmd, data)
