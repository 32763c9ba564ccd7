"""FLEX's record check on the MSP430FR5994: the CRC32 module computes the records' CRC-32 (probed at every
boot), checked against zlib on what the firmware leaves in FRAM; the probe's constants are zlib's; and an
image whose probe fails (mspdebug's simulator has no CRC32 module) gives the same logits by the software
CRC-32 (test_flex_targets runs the MSP430 images there)."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest

from batteryless.boards import load_board, with_emulator
from batteryless.firmware.image import INPUT_HEADER, INPUT_MAGIC, symbols
from batteryless.firmware.msp430sim import STOP_PC, Msp430Sim
from batteryless.flex import build_flex, model_input, run_schedule

ROOT = Path(__file__).resolve().parents[1]


def test_probe_constants_are_zlib_crc32():
    h = (ROOT / "firmware" / "platform" / "msp430" / "bl_msp430.h").read_text()
    val = {k: int(v, 16) for k, v in re.findall(r"#define BL_CRC32_PROBE_(\w+) (0x[0-9A-Fa-f]+)u", h)}
    reg = ~zlib.crc32(struct.pack("<H", val["WORD"])) & 0xFFFFFFFF  # the reflected register, before ~
    assert (val["LO"], val["HI"]) == (reg & 0xFFFF, reg >> 16)


@pytest.mark.firmware
def test_records_written_with_the_crc32_module_are_zlib_crc32(artifacts, tmp_path):
    art = artifacts["mlp"]
    img = build_flex(art, "msp430fr5994", tmp_path, granularity=4000)
    inp = model_input(art, 0)
    b = load_board("msp430fr5994")
    syms = symbols(img.image)
    ip = syms["bl_input"]
    sim = Msp430Sim(stop_pc=syms["bl_done"].address & ~1, mark_addr=int(b.emulator["mark_register"]))
    try:
        sim.load_elf(img.image)
        sim.load(
            ip.address,
            struct.pack("<II", INPUT_MAGIC, len(inp)) + inp + bytes(ip.size - INPUT_HEADER - len(inp)),
        )
        sim.power_on()
        assert sim.run(max_cycles=2_000_000_000) == STOP_PC
        assert sim.read(syms["crc_hw"].address, 1) == b"\x01"  # the probe found the module
        state = sim.read(syms["bl_flex"].address, 34)
    finally:
        sim.close()
    active = struct.unpack_from("<H", state, 32)[0]
    assert active in (0x3CA5, 0xC35A)
    for slot in (0, 1):
        rec = state[16 * slot : 16 * slot + 16]
        version, _, next_task, num_tasks, crc = struct.unpack("<IIHHI", rec)
        assert version > 0 and num_tasks == img.num_tasks and next_task <= num_tasks
        assert crc == zlib.crc32(rec[:12]), slot
    # the same image on mspdebug's simulator (no CRC32 module: the probe fails, software CRC-32): same logits
    cont = run_schedule(img, "msp430fr5994", inp, [])
    assert cont.logits is not None and cont.error is None

    sim_run = run_schedule(img, with_emulator(b, "msp430sim"), inp, [])
    assert sim_run.logits == cont.logits
