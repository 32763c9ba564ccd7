"""Hot code in SRAM when the image has room, in FRAM otherwise (issue 12): the memory plan's decision
(codegen/memory.py ``ramfunc``), the generated ``bl_memory.ld`` that carries it to the linker (``RAMFUNC``
aliased to RAM or CODE), and real images: the digits MLP's FFT-path ``lea`` image on the FR5994 gets its hot
loops in SRAM; the same model on a copy of the board with less SRAM — where SRAM placement would overflow the
RAM region (checked against the ELF) — links with them in FRAM; both run bit-exact against the numeric spec
on the simulator, which loads the ELF at its load addresses, so the SRAM copy is the C start-up's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from batteryless import spec
from batteryless.artifact import load_artifact
from batteryless.boards import load_board, memory_ld
from batteryless.boards.build_files import ramfunc_region
from batteryless.codegen.memory import (
    OUT_BUFFER_BYTES,
    OUT_BUFFER_MIN_BYTES,
    RAMFUNC_BYTES,
    STACK_RESERVE_BYTES,
)
from batteryless.errors import BoardError
from board_variants import fr5994_with_ram


def test_plan_places_hot_code_in_sram_only_when_it_fits(artifacts, tmp_path):
    """The MLP's FFT-path lea image on FR5994s of several SRAM sizes: the output buffer gives way to the hot
    code down to its floor (the hot code stays in SRAM); one word below that, the hot code runs from FRAM
    and the buffer takes the room. No hot code for ref or a direct-path image."""
    from batteryless.codegen import codegen

    need = RAMFUNC_BYTES[("msp430x", "lea")]
    stack = STACK_RESERVE_BYTES["msp430x"]

    def plan(ram: int | None, tag: str) -> dict:
        board = "msp430fr5994" if ram is None else fr5994_with_ram(tmp_path, ram)
        return codegen(artifacts["mlp"], board, tmp_path / tag, backend="lea", path="fft").schedule[
            "memory_plan"
        ]

    mp = plan(None, "g0")
    parts = mp["regions"]["ram"]["parts"]
    static = sum(parts.values()) - parts["out_buffer"]  # without the output buffer
    assert mp["ramfunc"]["region"] == "ram" and mp["ramfunc"]["bytes"] == need
    assert mp["regions"]["ram"]["used"] == static + parts["out_buffer"] + stack + need
    # on the FR5994 itself the output buffer takes what the hot code leaves (at most its default)
    assert mp["out_buffer_bytes"] == min(OUT_BUFFER_BYTES["msp430x"], 4096 - static - stack - need)
    floor = plan(static + stack + need + OUT_BUFFER_MIN_BYTES, "g2")
    assert floor["ramfunc"]["region"] == "ram" and floor["out_buffer_bytes"] == OUT_BUFFER_MIN_BYTES
    below = plan(static + stack + need + OUT_BUFFER_MIN_BYTES - 2, "g3")
    assert below["ramfunc"]["region"] == "code"
    assert below["out_buffer_bytes"] == min(OUT_BUFFER_BYTES["msp430x"], need + OUT_BUFFER_MIN_BYTES - 2)
    for backend, path in (("ref", "fft"), ("lea", "direct")):
        got = codegen(
            artifacts["mlp"], "msp430fr5994", tmp_path / f"g-{backend}-{path}", backend=backend, path=path
        )
        assert got.schedule["memory_plan"]["ramfunc"]["bytes"] == 0


def test_memory_ld_aliases_ramfunc_to_the_chosen_region(tmp_path):
    board = load_board("msp430fr5994")
    assert 'REGION_ALIAS("RAMFUNC", RAM);' in memory_ld(board, "ram")
    assert 'REGION_ALIAS("RAMFUNC", CODE);' in memory_ld(board, "code")
    assert 'REGION_ALIAS("RAMFUNC", CODE);' in memory_ld(board)
    with pytest.raises(BoardError, match="ramfunc region"):
        memory_ld(board, "nvm")
    # the decision as codegen wrote it; none (no model, an older schedule) means FRAM
    assert ramfunc_region(None) == "code"
    assert ramfunc_region(tmp_path) == "code"
    (tmp_path / "schedule.json").write_text(json.dumps({"memory_plan": {"ramfunc": {"region": "ram"}}}))
    assert ramfunc_region(tmp_path) == "ram"
    (tmp_path / "schedule.json").write_text(json.dumps({"memory_plan": {"ramfunc": {"region": "lea"}}}))
    with pytest.raises(BoardError, match="must be ram or code"):
        ramfunc_region(tmp_path)
    (tmp_path / "schedule.json").write_text("{not json")
    with pytest.raises(BoardError, match="not readable JSON"):
        ramfunc_region(tmp_path)


def _sections(elf: Path) -> dict[str, tuple[int, int, int]]:
    """name -> (run address, load address, size) of the ELF's allocated sections."""
    from elftools.elf.elffile import ELFFile

    out = {}
    with open(elf, "rb") as fh:
        e = ELFFile(fh)
        for sec in e.iter_sections():
            if not sec["sh_flags"] & 2:  # SHF_ALLOC
                continue
            lma = sec["sh_addr"]
            for seg in e.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg.section_in_segment(sec):
                    lma = seg["p_paddr"] + (sec["sh_addr"] - seg["p_vaddr"])
            out[sec.name] = (sec["sh_addr"], lma, sec["sh_size"])
    return out


def _run_bit_exact(art_path, gen, img, digits, n=4):
    from batteryless.firmware import parse_output
    from batteryless.firmware.msp430sim import run_many

    art = load_artifact(art_path)
    xq = np.asarray(spec.quantize_input(art, digits.x_test[:n]), dtype="<i2")
    runs = run_many(img, [x.tobytes() for x in xq])
    paths = json.loads((gen / "schedule.json").read_text())["paths"]
    want = spec.integer_inference(art, digits.x_test[:n], paths)
    for i, r in enumerate(runs):
        assert r.exit_code == 0
        assert list(parse_output(r.output)["logits"]) == [int(v) for v in want[i]]


@pytest.mark.slow
@pytest.mark.firmware
def test_hot_code_in_sram_with_room_and_in_fram_without(artifacts, digits, tmp_path):
    from batteryless.codegen import codegen
    from batteryless.firmware import build

    board = load_board("msp430fr5994")
    ram, code = board.region("ram"), board.region("code")

    def in_ram(a):
        return ram.origin <= a < ram.origin + ram.length

    def in_code(a):
        return code.origin <= a < code.origin + code.length

    # room: the MLP's FFT path on the FR5994 runs its hot loops from SRAM, loaded from FRAM
    gen = tmp_path / "gen-ram"
    res = codegen(artifacts["mlp"], "msp430fr5994", gen, backend="lea", path="fft")
    plan = res.schedule["memory_plan"]["ramfunc"]
    assert plan["region"] == "ram"
    img = build("msp430fr5994", gen, "lea", out_dir=tmp_path / "b-ram").image
    secs = _sections(img)
    vma, lma, size = secs[".ramfunc"]
    assert 0 < size <= plan["bytes"]  # the plan's bound holds for what was built
    assert in_ram(vma) and in_code(lma)
    # the plan's static RAM bounds what was linked (.data/.bss/.noinit; tests/test_memory_plan.py)
    linked = sum(s for name, (a, _, s) in secs.items() if in_ram(a) and name != ".ramfunc")
    assert linked <= sum(res.schedule["memory_plan"]["regions"]["ram"]["parts"].values())
    stack = STACK_RESERVE_BYTES["msp430x"]
    assert linked + size + stack <= ram.length
    _run_bit_exact(artifacts["mlp"], gen, img, digits)

    # no room: the same model on an FR5994 with SRAM for the plan's static RAM with the smallest output
    # buffer, the stack reserve and the hot code's bound, less one word; the plan chooses FRAM and the image
    # links and runs
    parts = res.schedule["memory_plan"]["regions"]["ram"]["parts"]
    static = sum(parts.values()) - parts["out_buffer"]
    small = static + OUT_BUFFER_MIN_BYTES + stack + plan["bytes"] - 2
    board_toml = fr5994_with_ram(tmp_path, small)
    gen2 = tmp_path / "gen-code"
    res2 = codegen(artifacts["mlp"], board_toml, gen2, backend="lea", path="fft")
    assert res2.schedule["memory_plan"]["ramfunc"]["region"] == "code"
    img2 = build(board_toml, gen2, "lea", out_dir=tmp_path / "b-code").image
    vma2, lma2, size2 = _sections(img2)[".ramfunc"]
    assert size2 == size and vma2 == lma2 and in_code(vma2)
    _run_bit_exact(artifacts["mlp"], gen2, img2, digits)
    # and the hot code left the output buffer the room (at most the default)
    assert res2.schedule["memory_plan"]["out_buffer_bytes"] == min(
        OUT_BUFFER_BYTES["msp430x"], small - static - stack
    )
