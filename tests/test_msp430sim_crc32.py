"""The simulator's CRC32 module model (tools/msp430sim/crc32.c) against independent references: zlib's
CRC-32 (IEEE 802.3, reflected) for the result-reverse registers after a 0xFFFFFFFF seed, its 32-bit bit
reversal for CRC32INIRES, for byte and word writes to CRC32DIW0 (hand-assembled MOV / MOV.B code)."""

from __future__ import annotations

import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from batteryless.firmware.msp430sim import Msp430Sim

CODE = 0x4400
BASE = 0x0980  # SLASE54D peripheral file map: CRC32
DIW0, INIRESW0, INIRESW1, RESRW1, RESRW0 = BASE, BASE + 8, BASE + 10, BASE + 12, BASE + 14


def _mov(value, addr):
    return [0x40B2, value & 0xFFFF, addr]  # MOV #value,&addr


def _movb(value, addr):
    return [0x40F2, value & 0xFF, addr]  # MOV.B #value,&addr


def _bitrev32(v: int) -> int:
    return int(f"{v:032b}"[::-1], 2)


def _run(words):
    s = Msp430Sim(fram_timing=False)
    s.power_on()
    s.load(CODE, struct.pack(f"<{len(words)}H", *words))
    s.set_reg(0, CODE)
    s.run(max_insns=len(words) // 3)
    regs = struct.unpack("<8H", s.read(BASE, 16))
    s.close()
    return {"iniresw0": regs[4], "iniresw1": regs[5], "resrw1": regs[6], "resrw0": regs[7]}


def _program(data: bytes, words_too: bool):
    code = _mov(0xFFFF, INIRESW0) + _mov(0xFFFF, INIRESW1)
    i = 0
    while i < len(data):
        if words_too and i + 1 < len(data):
            code += _mov(data[i] | (data[i + 1] << 8), DIW0)  # a word: its low byte first (memory order)
            i += 2
        else:
            code += _movb(data[i], DIW0)
            i += 1
    return code


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=0, max_size=24), st.booleans())
def test_crc32_module_matches_zlib(data, words_too):
    r = _run(_program(data, words_too))
    reflected = r["resrw1"] | (r["resrw0"] << 16)
    assert reflected ^ 0xFFFFFFFF == zlib.crc32(data)
    assert r["iniresw0"] | (r["iniresw1"] << 16) == _bitrev32(reflected)


def test_crc32_check_value_and_reseed():
    # the CRC-32 check value of "123456789" (0xCBF43926, the catalogue's), then a new seed starts over
    r = _run(_program(b"123456789", words_too=False))
    assert (r["resrw1"] | (r["resrw0"] << 16)) ^ 0xFFFFFFFF == 0xCBF43926
    r = _run(_program(b"junk", True) + _program(b"\x34\x12", True))
    assert (r["resrw1"] | (r["resrw0"] << 16)) ^ 0xFFFFFFFF == zlib.crc32(b"\x34\x12")


def test_result_registers_are_read_only_and_power_up_zero():
    r = _run(_mov(0x1234, RESRW1) + _mov(0x5678, RESRW0))
    assert r == {"iniresw0": 0, "iniresw1": 0, "resrw1": 0, "resrw0": 0}
