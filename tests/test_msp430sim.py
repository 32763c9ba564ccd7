"""The project's MSP430FR5994 simulator (tools/msp430sim): instruction-level checks with hand-assembled
code (encodings, flags, cycles and addressing modes from the family user's guide SLAU367), the MPY32, FRAM
wait states under the documented cache assumption, power cuts, and whole images: the ref selftest
bit-exact with the Python reference, and cycle counts equal to mspdebug's where both model the same CPU."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

from batteryless.boards import load_board, with_emulator
from batteryless.errors import BoardError, EmulationError
from batteryless.firmware import build, parse_output, patch_input, run
from batteryless.firmware.image import symbols
from batteryless.firmware.msp430sim import STOP_ILLEGAL, STOP_PC, Msp430Sim

CODE = 0x4400  # main FRAM
RAM = 0x1C00
C, Z, N, V = 0x1, 0x2, 0x4, 0x100


def _sim(words, regs=None, mem=None, fram_timing=False, n=None, at=CODE):
    s = Msp430Sim(fram_timing=fram_timing)
    s.power_on()
    s.load(at, struct.pack(f"<{len(words)}H", *words))
    for addr, data in (mem or {}).items():
        s.load(addr, data)
    for r, v in (regs or {}).items():
        s.set_reg(r, v)
    s.set_reg(0, at)
    start = s.cycles
    s.run(max_insns=n if n is not None else 1)
    s.used = s.cycles - start
    return s


def _flags(s):
    return s.reg(2) & (C | Z | N | V)


# --- format I: arithmetic and flags (SLAU367 instruction descriptions) --------------------------------


@pytest.mark.parametrize(
    ("word", "r4", "r5", "sr", "want", "flags"),
    [
        (0x5405, 0x0001, 0x7FFF, 0, 0x8000, N | V),  # ADD: signed overflow
        (0x5405, 0x0001, 0xFFFF, 0, 0x0000, Z | C),  # ADD: carry out, zero
        (0x5445, 0x0001, 0x12FF, 0, 0x0000, Z | C),  # ADD.B: byte result, upper register bits cleared
        (0x6405, 0x0001, 0x0001, C, 0x0003, 0),  # ADDC: + carry
        (0x8405, 0x0001, 0x0000, 0, 0xFFFF, N),  # SUB: borrow -> C = 0
        (0x8405, 0x0001, 0x8000, 0, 0x7FFF, C | V),  # SUB: overflow 0x8000 - 1
        (0x7405, 0x0001, 0x0005, 0, 0x0003, C),  # SUBC: 5 + ~1 + 0 = 3
        (0x9405, 0x1234, 0x1234, 0, 0x1234, Z | C),  # CMP: equal, no write
        (0xA405, 0x0001, 0x0199, 0, 0x0200, 0),  # DADD: BCD 199 + 1
        (0xA405, 0x0001, 0x9999, 0, 0x0000, Z | C),  # DADD: BCD carry out
        (0xB405, 0x00F0, 0x0F10, 0, 0x0F10, C),  # BIT: C = not Z, no write
        (0xC405, 0x00F0, 0x0FFF, 0, 0x0F0F, 0),  # BIC: no flags
        (0xD405, 0x00F0, 0x0F00, 0, 0x0FF0, 0),  # BIS
        (0xE405, 0x8001, 0x8000, 0, 0x0001, C | V),  # XOR: V when both negative
        (0xF405, 0x8001, 0x8003, 0, 0x8001, N | C),  # AND
    ],
)
def test_format1_results_and_flags(word, r4, r5, sr, want, flags):
    s = _sim([word], {4: r4, 5: r5, 2: sr})
    assert s.reg(5) == want
    if word >> 12 not in (0x4, 0xC, 0xD):
        assert _flags(s) == flags


def test_format1_logic_ops_leave_flags():
    s = _sim([0xD405], {4: 1, 5: 0, 2: C | Z | N | V})  # BIS keeps all status bits
    assert _flags(s) == C | Z | N | V


@pytest.mark.parametrize(
    ("words", "want"),
    [
        ([0x4305], 0),  # MOV #0 (R3, As=0)
        ([0x4315], 1),  # #1 (R3, As=1)
        ([0x4325], 2),  # #2
        ([0x4335], 0xFFFF),  # #-1
        ([0x4225], 4),  # #4 (SR, As=2)
        ([0x4235], 8),  # #8 (SR, As=3)
        ([0x4035, 0xBEEF], 0xBEEF),  # #N (@PC+)
    ],
)
def test_constant_generators_and_immediate(words, want):
    s = _sim(words, {5: 0x5555})
    assert s.reg(5) == want and s.reg(0) == CODE + 2 * len(words)


def test_addressing_modes_source():
    data = struct.pack("<4H", 0x1111, 0x2222, 0x3333, 0x4444)
    # MOV @R4,R5 ; MOV @R4+,R6 ; MOV.B @R4+,R7 ; MOV 2(R4),R8 ; MOV &0x1C06,R9 ; MOV EDE,R10 (symbolic)
    words = [0x4425, 0x4436, 0x4477, 0x4418, 0x0002, 0x4219, 0x1C06, 0x401A]
    sym_word_addr = CODE + 2 * len(words)
    words.append((0x1C00 - sym_word_addr) & 0xFFFF)  # index relative to the index word itself
    s = _sim(words, {4: 0x1C00}, {0x1C00: data}, n=6)
    assert s.reg(5) == 0x1111
    assert s.reg(6) == 0x1111
    assert s.reg(7) == 0x22  # byte read of the low byte at 0x1C02, upper bits cleared
    assert s.reg(4) == 0x1C03  # +2 for the word, +1 for the byte
    assert s.reg(8) == 0x3333  # word access ignores bit 0: 0x1C05 -> 0x1C04
    assert s.reg(9) == 0x4444 and s.reg(10) == 0x1111


def test_autoincrement_byte_on_sp_adds_two():
    s = _sim([0x4176], {1: 0x2000})  # MOV.B @SP+, R6
    assert s.reg(1) == 0x2002


def test_destination_modes_and_lower_64k_wrap():
    # MOV R5,4(R6) ; ADD R5,&0x1C20 ; MOV R5,-2(R7) with R7 = 0x0000 -> wraps to 0xFFFE in the lower 64 KB
    words = [0x4586, 0x0004, 0x5582, 0x1C20, 0x4587, 0xFFFE]
    s = _sim(words, {5: 0x0102, 6: 0x1C00, 7: 0x1C10}, {0x1C20: b"\x01\x00"}, n=3)
    assert s.read(0x1C04, 2) == b"\x02\x01"
    assert s.read(0x1C20, 2) == b"\x03\x01"
    assert s.read(0x1C0E, 2) == b"\x02\x01"
    w = _sim([0x4586, 0xFFFE], {5: 0xABCD, 6: 0x0000})  # 0 + (-2) in the lower 64 KB -> 0xFFFE
    assert w.read(0xFFFE, 2) == b"\xcd\xab" and w.read(0xFFFFE, 2) == b"\0\0"


# --- format II and jumps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "r5", "sr", "want", "flags"),
    [
        (0x1105, 0x8003, 0, 0xC001, N | C),  # RRA: sign kept, LSB to C
        (0x1005, 0x0002, C, 0x8001, N),  # RRC: C into MSB
        (0x1085, 0x1234, 0, 0x3412, None),  # SWPB
        (0x1185, 0x0080, 0, 0xFFF80, N | C),  # SXT: register mode extends bit 7 into bits 19:8
        (0x1185, 0x7F00, 0, 0x0000, Z),  # SXT of 0x00
    ],
)
def test_format2(word, r5, sr, want, flags):
    s = _sim([word], {5: r5, 2: sr})
    assert s.reg(5) == want
    if flags is not None:
        assert _flags(s) == flags


def test_push_call_ret():
    # PUSH R5 ; CALL #sub ; (returns here) ; ... sub: MOV #7,R6 ; RET
    sub = CODE + 0x20
    words = [0x1205, 0x12B0, sub]
    s = Msp430Sim(fram_timing=False)
    s.power_on()
    s.load(CODE, struct.pack("<3H", *words))
    s.load(sub, struct.pack("<3H", 0x4036, 7, 0x4130))
    s.set_reg(0, CODE)
    s.set_reg(1, 0x2400)
    s.set_reg(5, 0xCAFE)
    s.run(max_insns=2)
    assert s.reg(0) == sub and s.reg(1) == 0x23FC
    assert s.read(0x23FE, 2) == b"\xfe\xca" and s.read(0x23FC, 2) == struct.pack("<H", CODE + 6)
    s.run(max_insns=4)
    assert s.reg(0) == CODE + 6 and s.reg(1) == 0x23FE and s.reg(6) == 7


@pytest.mark.parametrize(
    ("word", "sr", "taken"),
    [
        (0x2000, 0, True), (0x2000, Z, False),  # JNE
        (0x2400, Z, True), (0x2C00, C, True), (0x2800, C, False),  # JEQ, JC, JNC
        (0x3000, N, True),  # JN
        (0x3400, N | V, True), (0x3400, N, False),  # JGE: N == V
        (0x3800, N, True), (0x3800, V, True), (0x3800, N | V, False),  # JL: N != V
        (0x3C00, 0, True),  # JMP
    ],
)  # fmt: skip
def test_jumps(word, sr, taken):
    s = _sim([word | 0x3FE], {2: sr})  # offset -2 words: back to the jump itself
    assert s.reg(0) == (CODE - 2 if taken else CODE + 2)
    assert s.used == 2  # jumps take 2 cycles, taken or not


# --- cycles (SLAU367 MSP430X CPU cycle tables; FRAM stalls off) ---------------------------------------


@pytest.mark.parametrize(
    ("words", "cycles"),
    [
        ([0x4405], 1),  # MOV Rn,Rm
        ([0x4315], 1),  # MOV #1,Rm: constant generator = register mode
        ([0x4425], 2),  # MOV @Rn,Rm
        ([0x4035, 5], 2),  # MOV #N,Rm
        ([0x4415, 0], 3),  # MOV x(Rn),Rm
        ([0x4586, 0], 3),  # MOV Rn,x(Rm): MOV to memory one cycle less
        ([0x5586, 0], 4),  # ADD Rn,x(Rm)
        ([0x9586, 0], 3),  # CMP Rn,x(Rm)
        ([0x5496, 0, 0], 6),  # ADD x(Rn),x(Rm)
        ([0x4500], 2),  # MOV Rn,PC (BR Rn)
        ([0x1105], 1),  # RRA Rn
        ([0x1126], 3),  # RRA @Rn
        ([0x1205], 3),  # PUSH Rn
        ([0x12B0, 0x4500], 4),  # CALL #N
    ],
)
def test_cycles_from_the_msp430x_tables(words, cycles):
    s = _sim(words, {4: 0x1C00, 5: 0x4500, 6: 0x1C10, 1: 0x2400})
    assert s.used == cycles


# --- MSP430X: address instructions, extension words, PUSHM/POPM, CALLA ------------------------------


def test_mova_adda_suba_20_bit():
    # MOVA #0x12345,R5 ; ADDA R4,R5 (R4 = 0xF0000) ; SUBA #0x00001,R5
    s = _sim([0x0185, 0x2345, 0x04E5, 0x00B5, 0x0001], {4: 0xF0000}, n=3)
    assert s.reg(5) == 0x02344  # 0x12345 + 0xF0000 = 0x102345 -> 20 bits 0x02345, then - 1
    assert _flags(s) & C  # SUBA: no borrow


def test_movx_a_absolute_20_bit_address():
    # MOVX.A &0x12344,R5: extension word src bits 19:16 = 1, A/L = 0 and B/W = 1 select .A
    s = _sim([0x1880, 0x4255, 0x2344], mem={0x12344: struct.pack("<HH", 0xBEEF, 0x000A)})
    assert s.reg(5) == 0xABEEF


def test_repeated_rrax_and_rlam():
    s = _sim([0x1843, 0x1105], {5: 0x8000})  # RPT #4 RRAX.W R5
    assert s.reg(5) == 0xF800 and s.used == 1 + 1 + 3  # RRA Rn 1, + extension word 1, + 3 repeats
    t = _sim([0x0655], {5: 0x4001})  # RLAM.W #2,R5
    assert t.reg(5) == 0x0004 and _flags(t) & C  # bit 14 shifted out last


def test_pushm_popm_word():
    # PUSHM.W #3,R10 ; CLR R8 ; CLR R9 ; CLR R10 ; POPM.W #3,R10 (field holds R10-3+1 = R8)
    words = [0x152A, 0x4308, 0x4309, 0x430A, 0x1728]
    s = _sim(words, {1: 0x2400, 8: 0x8888, 9: 0x9999, 10: 0xAAAA}, n=5)
    assert (s.reg(8), s.reg(9), s.reg(10), s.reg(1)) == (0x8888, 0x9999, 0xAAAA, 0x2400)
    p = _sim(words[:1], {1: 0x2400, 8: 0x8888, 9: 0x9999, 10: 0xAAAA})
    assert p.read(0x23FA, 6) == struct.pack("<3H", 0x8888, 0x9999, 0xAAAA)  # R10 pushed first
    assert p.used == 2 + 3


def test_calla_reta():
    s = Msp430Sim(fram_timing=False)
    s.power_on()
    s.load(CODE, struct.pack("<2H", 0x13B1, 0x0000))  # CALLA #0x10000
    s.load(0x10000, struct.pack("<H", 0x0110))  # RETA
    s.set_reg(0, CODE)
    s.set_reg(1, 0x2400)
    s.run(max_insns=1)
    assert s.reg(0) == 0x10000 and s.reg(1) == 0x23FC
    assert s.read(0x23FC, 4) == struct.pack("<HH", CODE + 4, 0)
    s.run(max_insns=2)
    assert s.reg(0) == CODE + 4 and s.reg(1) == 0x2400


def test_illegal_instruction_stops_with_a_fault():
    s = _sim([0x1310])  # in the RETI row (0x1300-0x133F) only 0x1300 exists
    assert s.instructions == 0 and s.reg(0) == CODE
    t = Msp430Sim()
    t.power_on()
    t.load(CODE, struct.pack("<H", 0x1310))
    t.set_reg(0, CODE)
    assert t.run(max_insns=5) == STOP_ILLEGAL and "0x1310" in t.fault()


# --- MPY32 (SLAU367 32-bit hardware multiplier) --------------------------------------------------------


def _mov_abs(value, addr):
    return [0x40B2, value & 0xFFFF, addr]  # MOV #value,&addr


def _read_abs(addr, reg):
    return [0x4210 | reg, addr]  # MOV &addr,Rreg


def _mpy_program(*steps):
    words, n = [], 0
    for st in steps:
        words += st
        n += 1
    return words, n


def test_mpy32_signed_16x16_and_sumext():
    words, n = _mpy_program(_mov_abs(-7, 0x04C2), _mov_abs(9, 0x04C8), _read_abs(0x04CA, 5),
                            _read_abs(0x04CC, 6), _read_abs(0x04CE, 7))  # fmt: skip
    s = _sim(words, n=n)
    assert (s.reg(5), s.reg(6), s.reg(7)) == (0xFFC1, 0xFFFF, 0xFFFF)  # -63, sign in SUMEXT


def test_mpy32_mac_carry_into_sumext():
    words, n = _mpy_program(
        _mov_abs(0xFFFF, 0x04C0), _mov_abs(0xFFFF, 0x04C8),  # MPY: 0xFFFE0001
        _mov_abs(0xFFFF, 0x04C4), _mov_abs(0xFFFF, 0x04C8),  # MAC: + 0xFFFE0001 -> carry out
        _read_abs(0x04CA, 5), _read_abs(0x04CC, 6), _read_abs(0x04CE, 7),
    )  # fmt: skip
    s = _sim(words, n=n)
    total = 2 * 0xFFFE0001
    assert (s.reg(5), s.reg(6), s.reg(7)) == (total & 0xFFFF, (total >> 16) & 0xFFFF, 1)


def test_mpy32_32x32_unsigned_and_signed():
    a, b = 0x12345678, 0x9ABCDEF0
    words, n = _mpy_program(
        _mov_abs(a, 0x04D0), _mov_abs(a >> 16, 0x04D2), _mov_abs(b, 0x04E0), _mov_abs(b >> 16, 0x04E2),
        _read_abs(0x04E4, 5), _read_abs(0x04E6, 6), _read_abs(0x04E8, 7), _read_abs(0x04EA, 8),
    )  # fmt: skip
    s = _sim(words, n=n)
    p = a * b
    assert [s.reg(r) for r in (5, 6, 7, 8)] == [(p >> (16 * i)) & 0xFFFF for i in range(4)]
    words, n = _mpy_program(
        _mov_abs(-2, 0x04D4), _mov_abs(0xFFFF, 0x04D6), _mov_abs(3, 0x04E0), _mov_abs(0, 0x04E2),
        _read_abs(0x04E4, 5), _read_abs(0x04E6, 6), _read_abs(0x04E8, 7), _read_abs(0x04EA, 8),
    )  # fmt: skip
    s = _sim(words, n=n)
    p = (-6) & 0xFFFF_FFFF_FFFF_FFFF
    assert [s.reg(r) for r in (5, 6, 7, 8)] == [(p >> (16 * i)) & 0xFFFF for i in range(4)]


# --- FRAM wait states (NWAITS from FRCTL0; cache assumption in bl_msp430sim.c TIMING) --------------------


def test_fram_wait_states_follow_frctl0_and_the_cache():
    nops = 64
    # MOV #0xA510,&FRCTL0 (NWAITS=1 with the password) then 64 NOPs (MOV #0,R3), straight-line in FRAM
    words = [0x40B2, 0xA510, 0x0140] + [0x4303] * nops
    s = Msp430Sim(fram_timing=True)
    s.power_on()
    s.load(CODE, struct.pack(f"<{len(words)}H", *words))
    s.set_reg(0, CODE)
    s.run(max_insns=1)
    assert s.nwaits == 1
    start = s.cycles
    s.run(max_insns=1 + nops)
    # one NOP per word, 4 words per 8-byte line: one miss (1 wait state) per line; the first NOP
    # (at CODE + 6) shares its line with the FRCTL0 write, already cached
    lines = len({(CODE + 6 + 2 * i) >> 3 for i in range(nops)}) - 1
    assert s.cycles - start == nops + lines
    # without the FRCTL0 write NWAITS stays 0: no stalls
    t = _sim([0x4303] * 8, fram_timing=True, n=8)
    assert t.nwaits == 0 and t.used == 8


def test_tight_loop_hits_the_cache():
    # MOV #0xA510,&FRCTL0 ; MOV #100,R5 ; loop: DEC R5 (SUB #1,R5 = 0x8315) ; JNZ loop
    words = [0x40B2, 0xA510, 0x0140, 0x4035, 100, 0x8315, 0x23FE]
    s = Msp430Sim(fram_timing=True)
    s.power_on()
    s.load(CODE, struct.pack(f"<{len(words)}H", *words))
    s.set_reg(0, CODE)
    s.run(max_insns=2)
    start = s.cycles
    s.run(max_insns=2 + 200)
    # 100 x (DEC 1 + JNZ 2); the loop's two words sit in one or two lines: at most 2 misses in total
    assert 300 <= s.cycles - start <= 302


# --- power cuts ---------------------------------------------------------------------------------------


def test_power_cut_keeps_fram_and_loses_everything_else():
    s = Msp430Sim()
    s.load(0xFFFE, struct.pack("<H", CODE))
    s.power_on()
    s.load(0xE000, b"\x12\x34")  # FRAM (NVM region)
    s.load(0x1C00, b"\x56\x78")  # SRAM
    s.load(0x2C00, b"\x9a\xbc")  # LEA RAM
    s.set_reg(5, 0x1234)
    s.power_cut()
    assert s.read(0xE000, 2) == b"\x12\x34"
    assert s.read(0x1C00, 2) != b"\x56\x78" and s.read(0x2C00, 2) != b"\x9a\xbc"
    assert s.reg(5) == 0 and s.reg(0) == CODE and s.resets == 1


# --- whole images -------------------------------------------------------------------------------------


def _need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def selftest_image(tmp_path_factory):
    return build("msp430fr5994", backend="ref", out_dir=tmp_path_factory.mktemp("st")).image


def test_with_emulator_refuses_unknown():
    with pytest.raises(BoardError, match="has no emulator 'qemu'.*alternatives: msp430sim"):
        with_emulator("msp430fr5994", "qemu")
    assert with_emulator("msp430fr5994", None) == load_board("msp430fr5994")


@pytest.mark.firmware
def test_selftest_bit_exact_on_the_simulator(selftest_image):
    from test_firmware_selftest import _inputs, selftest_reference

    board = with_emulator("msp430fr5994", "msp430sim")
    for seed in (1, 2):
        x = _inputs(8, seed)
        res = run(selftest_image, board, inputs=x.tobytes())
        assert res.exit_code == 0, res.output
        got = parse_output(res.output)
        for key, want in selftest_reference([int(v) for v in x]).items():
            assert got.get(key) == want, key
        assert res.unit == "mclk_cycles" and res.mclk_cycles > res.instructions > 1000
        assert [m[0] for m in res.marks] == [1, 2]


@pytest.mark.firmware
def test_cycles_equal_mspdebug_where_both_model_the_same_cpu(selftest_image, tmp_path):
    """mspdebug 0.22's simulator models the original MSP430 CPU's cycle tables, no FRAM wait states, and
    charges constant-generator sources like memory operands (#1 as x(Rn): +2; #2 #4 #8 #-1 as @Rn: +1).
    Between the selftest's two marks (the same instructions on both: only the multiplier address differs)
    our classic-timing count plus exactly that difference must equal mspdebug's."""
    _need("mspdebug")
    x = np.arange(-4, 4, dtype=np.int16) * 1234
    md = run(selftest_image, "msp430fr5994", inputs=x.tobytes())
    img = patch_input(selftest_image, x.tobytes(), tmp_path / "p.elf")
    sym = symbols(img)
    s = Msp430Sim(stop_pc=sym["bl_done"].address, mark_addr=0x152, fram_timing=False, cpu_timing="msp430")
    s.load_elf(img)
    s.power_on()
    assert s.run(max_cycles=10**9) == STOP_PC
    marks = s.marks()
    s2 = Msp430Sim(mark_addr=0x152, fram_timing=False, cpu_timing="msp430")
    s2.load_elf(img)
    s2.power_on()
    s2.run(max_insns=marks[0].instruction)
    c0, g0 = s2.cycles, s2.constant_sources()
    s2.run(max_insns=marks[1].instruction)
    c1, g1 = s2.cycles, s2.constant_sources()
    d = [b - a for a, b in zip(g0, g1, strict=True)]
    ours = c1 - c0
    theirs = md.marks[1][1] - md.marks[0][1]
    assert ours + 2 * d[1] + d[2] + d[3] == theirs
    # the MSP430X tables and FRAM wait states: documented margins against mspdebug (docs/emulation.md)
    real = run(img, with_emulator("msp430fr5994", "msp430sim"))
    ratio = (real.marks[1][1] - real.marks[0][1]) / theirs
    assert 0.8 < ratio < 1.2, ratio


@pytest.mark.firmware
def test_power_cut_in_a_real_image_keeps_fram(tmp_path):
    img = build("msp430fr5994", backend="ref", app="resettest", out_dir=tmp_path).image
    board = with_emulator("msp430fr5994", "msp430sim")
    clean = run(img, board, inputs=struct.pack("<I", 2000))
    assert clean.exit_code == 1 and "boot 1 ram 1" in clean.output
    cut = clean.instructions // 2
    res = run(img, board, inputs=struct.pack("<I", 2000), cuts=[cut])
    assert res.exit_code == 2 and res.resets == 1 and res.cut_counts == [cut]
    assert "boot 2 ram 1" in res.output  # FRAM counter kept; .bss re-initialised by startup
    # the second boot repeats the work before the cut (a few instructions differ: it prints "boot 2")
    assert res.instructions == pytest.approx(clean.instructions + cut, abs=50)


def test_timeout_and_missing_symbols(tmp_path):
    with pytest.raises(EmulationError, match="cut_unit"):
        from batteryless.firmware.msp430sim import run_image

        run_image(tmp_path / "x.elf", load_board("msp430fr5994"), 1.0, [], cut_unit="furlongs")


@pytest.mark.slow
@pytest.mark.firmware
@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("path", ["fft", "direct"])
def test_ref_model_images_bit_exact_on_the_simulator(artifacts, digits, tmp_path, model, path):
    """Today's ref FR5994 model images on the simulator: logits equal the integer numeric spec's."""
    from batteryless import spec
    from batteryless.artifact import load_artifact
    from batteryless.codegen import codegen
    from batteryless.firmware import run_dataset

    n = 6
    res = codegen(artifacts[model], "msp430fr5994", tmp_path / "gen", backend="ref", path=path)
    img = build("msp430fr5994", tmp_path / "gen", "ref", out_dir=tmp_path / "b").image
    got = run_dataset(img, with_emulator("msp430fr5994", "msp430sim"), artifacts[model], "digits", count=n)
    want = spec.integer_inference(load_artifact(artifacts[model]), digits.x_test[:n], res.paths)
    assert np.array_equal(np.array(got.logits), want)
    assert got.unit == "mclk_cycles" and all(c > 100_000 for c in got.counts)
