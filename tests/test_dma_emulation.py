"""The DMA controller in the MSP430FR5994 simulator (tools/msp430sim/bl_msp430sim.c, "DMA controller").

Hand-assembled code running from SRAM programs channel 0 as the lea driver does and triggers it with DMAREQ.
Expected values from the family user's guide SLAU367 chapter 11, not from the simulator: a block transfer
moves DMAxSZ units with the chosen increments, byte -> word clears the high byte and word -> byte moves the
low byte (§11.2.2), the channel ends with DMAEN cleared, DMAIFG set, DMAxSZ reloaded and DMAxSA/DMAxDA
unchanged; it costs 2 MCLK cycles of synchronisation (the guide's "one or two", we charge 2) + 2 per
transfer + 1 of wait (§11.2.7), plus the FRAM wait state of each cache miss of a FRAM source (our FRAM
cache assumption: 8-byte lines, docs/msp430sim.md)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from batteryless.firmware.msp430sim import Msp430Sim

DMA0CTL, DMA0SA, DMA0DA, DMA0SZ, DMACTL0 = 0x0510, 0x0512, 0x0516, 0x051A, 0x0500
DMAREQ, DMAIFG, DMAEN = 0x0001, 0x0008, 0x0010
SRCBYTE, DSTBYTE = 0x0040, 0x0080
SRC_INC, DST_INC, SRC_DEC, DST_DEC = 0x0300, 0x0C00, 0x0200, 0x0800
BLOCK = 0x1000
CODE = 0x1C00  # SRAM: instruction fetches do not touch the FRAM cache
FRAM_SRC = 0x8000  # on an 8-byte line boundary
LEA_RAM = 0x2C00


def _mov(v: int, addr: int) -> list[int]:
    return [0x40B2, v & 0xFFFF, addr]  # MOV #v,&addr


def _run(src, dst, size, ctl, data, *, nwaits=False, triggers=1, load_at=None):
    """Load `data` at load_at (default src), program channel 0 and write DMA0CTL `triggers` times; returns
    (sim, MCLK cycles)."""
    w = _mov(0xA510, 0x0140) if nwaits else []  # FRCTL0: NWAITS = 1 (with the FRCTLPW password)
    w += _mov(0, DMACTL0) + _mov(src, DMA0SA) + _mov(src >> 16, DMA0SA + 2) + _mov(dst, DMA0DA)
    w += _mov(dst >> 16, DMA0DA + 2) + _mov(size, DMA0SZ)
    for _ in range(triggers):
        w += _mov(ctl, DMA0CTL)
    end = CODE + 2 * len(w)
    s = Msp430Sim(stop_pc=end)
    s.power_on()
    s.load(CODE, struct.pack(f"<{len(w)}H", *w))
    s.load(src if load_at is None else load_at, data)
    s.set_reg(0, CODE)
    s.run(max_cycles=100_000)
    assert s.reg(0) == end
    return s, s.cycles


def _reg(s: Msp430Sim, addr: int) -> int:
    return struct.unpack("<H", s.read(addr, 2))[0]


def _extra(src, dst, size, ctl, data, **kw) -> int:
    """MCLK cycles the transfer adds: the same program with DMAEN clear moves nothing."""
    _, with_dma = _run(src, dst, size, ctl, data, **kw)
    _, without = _run(src, dst, size, ctl & ~DMAEN, data, **kw)
    return with_dma - without


@pytest.mark.parametrize("n", [1, 16, 100])
def test_block_word_copy_fram_to_lea_ram(n):
    data = np.arange(n, dtype="<i2").tobytes()[::-1]  # any pattern
    ctl = BLOCK | SRC_INC | DST_INC | DMAEN | DMAREQ
    s, _ = _run(FRAM_SRC, LEA_RAM, n, ctl, data)
    assert s.read(LEA_RAM, 2 * n) == data
    assert _reg(s, DMA0CTL) & (DMAEN | DMAREQ | DMAIFG) == DMAIFG  # done: DMAEN and DMAREQ clear, DMAIFG set
    assert _reg(s, DMA0SZ) == n and _reg(s, DMA0SA) == FRAM_SRC and _reg(s, DMA0DA) == LEA_RAM
    assert _extra(FRAM_SRC, LEA_RAM, n, ctl, data) == 2 + 2 * n + 1  # NWAITS = 0: no stalls
    assert s.dma_stats() == {"transfers": n, "cycles": 2 + 2 * n + 1}


def test_fram_source_pays_one_wait_state_per_line_at_nwaits_1():
    n = 32  # 64 bytes = 8 lines of 8 bytes, each missed once
    ctl = BLOCK | SRC_INC | DST_INC | DMAEN | DMAREQ
    assert _extra(FRAM_SRC, LEA_RAM, n, ctl, bytes(2 * n), nwaits=True) == 2 + 2 * n + 1 + n // 4


def test_byte_to_word_clears_the_high_byte_and_word_to_byte_keeps_the_low_byte():
    src = bytes([0x80, 0xFF, 0x01, 0x7F])
    s, _ = _run(FRAM_SRC, LEA_RAM, 4, BLOCK | SRC_INC | DST_INC | SRCBYTE | DMAEN | DMAREQ, src)
    assert struct.unpack("<4H", s.read(LEA_RAM, 8)) == (0x0080, 0x00FF, 0x0001, 0x007F)
    words = struct.pack("<3H", 0x1234, 0xABCD, 0x00EF)
    s, _ = _run(FRAM_SRC, LEA_RAM, 3, BLOCK | SRC_INC | DST_INC | DSTBYTE | DMAEN | DMAREQ, words)
    assert s.read(LEA_RAM, 3) == bytes([0x34, 0xCD, 0xEF])


def test_fixed_source_fills_and_decrementing_addresses_reverse():
    s, _ = _run(FRAM_SRC, LEA_RAM, 5, BLOCK | DST_INC | DMAEN | DMAREQ, struct.pack("<H", 0x5A5A))
    assert s.read(LEA_RAM, 10) == struct.pack("<5H", *[0x5A5A] * 5)
    data = struct.pack("<4H", 1, 2, 3, 4)
    # both addresses decrement: start at the last word of the source, the last word of the destination
    s, _ = _run(
        FRAM_SRC + 6, LEA_RAM + 6, 4, BLOCK | SRC_DEC | DST_DEC | DMAEN | DMAREQ, data, load_at=FRAM_SRC
    )
    assert s.read(LEA_RAM, 8) == data
    # source decrements, destination increments: reversed
    s, _ = _run(FRAM_SRC + 6, LEA_RAM, 4, BLOCK | SRC_DEC | DST_INC | DMAEN | DMAREQ, data, load_at=FRAM_SRC)
    assert struct.unpack("<4H", s.read(LEA_RAM, 8)) == (4, 3, 2, 1)


def test_single_transfer_mode_moves_one_unit_per_request():
    data = struct.pack("<3H", 7, 8, 9)
    ctl = SRC_INC | DST_INC | DMAEN | DMAREQ  # DMADT = 0
    s, _ = _run(FRAM_SRC, LEA_RAM, 3, ctl, data, triggers=2)
    assert struct.unpack("<2H", s.read(LEA_RAM, 4)) == (7, 8)
    assert _reg(s, DMA0SZ) == 1 and _reg(s, DMA0CTL) & DMAEN  # one left, still enabled
    s, _ = _run(FRAM_SRC, LEA_RAM, 3, ctl, data, triggers=3)
    assert s.read(LEA_RAM, 6) == data
    assert _reg(s, DMA0SZ) == 3 and _reg(s, DMA0CTL) & (DMAEN | DMAIFG) == DMAIFG


def test_no_transfer_without_dmaen_or_with_another_trigger():
    data = struct.pack("<2H", 0x1111, 0x2222)
    s, _ = _run(FRAM_SRC, LEA_RAM, 2, BLOCK | SRC_INC | DST_INC | DMAREQ, data)
    assert s.read(LEA_RAM, 4) != data and s.dma_stats()["transfers"] == 0


def test_a_cycle_limit_falls_between_units_and_the_run_resumes():
    """The CPU is halted while a block runs, unit by unit: a cycle limit (a power cut's point) can stop it
    with a partial copy, and running on completes it before the program goes on."""
    n, done_units = 40, 10
    data = np.arange(1000, 1000 + n, dtype="<i2").tobytes()
    ctl = BLOCK | SRC_INC | DST_INC | DMAEN | DMAREQ
    _, before = _run(
        FRAM_SRC, LEA_RAM, n, ctl & ~DMAEN, data
    )  # the program alone: the trigger is its last write
    w = _mov(0, DMACTL0) + _mov(FRAM_SRC, DMA0SA) + _mov(0, DMA0SA + 2) + _mov(LEA_RAM, DMA0DA)
    w += _mov(0, DMA0DA + 2) + _mov(n, DMA0SZ) + _mov(ctl, DMA0CTL)
    end = CODE + 2 * len(w)
    s = Msp430Sim(stop_pc=end)
    s.power_on()
    s.load(CODE, struct.pack(f"<{len(w)}H", *w))
    s.load(FRAM_SRC, data)
    s.set_reg(0, CODE)
    s.run(max_cycles=before + 2 + 2 * done_units)  # synchronisation + 10 units
    assert s.dma_stats()["transfers"] == done_units
    assert s.read(LEA_RAM, 2 * done_units) == data[: 2 * done_units]
    assert s.read(LEA_RAM + 2 * done_units, 2) != data[2 * done_units : 2 * done_units + 2]
    assert _reg(s, DMA0CTL) & DMAEN  # still running
    s.run(max_cycles=100_000)
    assert s.reg(0) == end and s.read(LEA_RAM, 2 * n) == data
    assert s.cycles == before + 2 + 2 * n + 1
