"""The memory plan's one RAM accounting (codegen/memory.py, issue 12): the plan's parts against the linked
ELF's RAM sections on the FR5994 (buffers, the app's input copy and logits, platform and kernel state, the
output buffer, the hot code), the output buffer shrunk when the image would not fit otherwise (and the image
still bit-exact with it), and an image that overflows the RAM region by a few bytes refused with the
project's message before anything is written. Its code estimate (codegen/code_size.py) against the linked
ELF's code region (at or above it, within CODE_MARGIN_BYTES), an image a few bytes over the code region
refused the same way, and ``auto`` granularity falling back to the default tasks when fine ones do not fit
the code region."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from batteryless import spec
from batteryless.artifact import load_artifact
from batteryless.codegen.memory import (
    CODE_MARGIN_BYTES,
    OUT_BUFFER_BYTES,
    OUT_BUFFER_MIN_BYTES,
    STACK_RESERVE_BYTES,
)
from batteryless.errors import CodegenError
from board_variants import fr5994_with_code, fr5994_with_ram

RAM = (0x1C00, 0x2C00)  # the FR5994's SRAM region (board.toml), LEA RAM excluded
STACK = STACK_RESERVE_BYTES["msp430x"]


def _ram_sections(elf: Path) -> dict[str, int]:
    """Allocated sections that run in SRAM: name -> size."""
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as fh:
        return {
            s.name: s["sh_size"]
            for s in ELFFile(fh).iter_sections()
            if s["sh_flags"] & 2 and RAM[0] <= s["sh_addr"] < RAM[1]
        }


def _static(mp: dict) -> int:
    """The plan's static RAM (parts incl. the output buffer), without the hot code and the stack reserve."""
    return sum(mp["regions"]["ram"]["parts"].values())


@pytest.mark.firmware
@pytest.mark.parametrize(
    ("model", "path", "backend"), [("mlp", "fft", "lea"), ("cnn", "fft", "lea"), ("mlp", "direct", "ref")]
)
def test_plan_equals_the_linked_ram(artifacts, tmp_path, model, path, backend):
    """Every part the plan counts is in the ELF and nothing else is: the linked .data/.bss/.noinit equal the
    plan's static RAM within the kernel state's bound (8 B), .noinit is the output buffer the plan chose,
    .ramfunc is within the hot-code bound and in SRAM exactly when the plan says so, and the whole region
    keeps the stack reserve free."""
    from batteryless.codegen import codegen
    from batteryless.firmware import build

    gen = tmp_path / "gen"
    res = codegen(artifacts[model], "msp430fr5994", gen, backend=backend, path=path)
    mp = res.schedule["memory_plan"]
    secs = _ram_sections(build("msp430fr5994", gen, backend, out_dir=tmp_path / "b").image)
    linked = sum(v for k, v in secs.items() if k != ".ramfunc")
    assert 0 <= _static(mp) - linked <= 8, (secs, mp["regions"]["ram"])
    assert secs.get(".noinit") == mp["out_buffer_bytes"]
    hot = mp["ramfunc"]
    assert (secs.get(".ramfunc", 0) > 0) == (hot["region"] == "ram")
    if hot["region"] == "ram":
        assert 0 < secs[".ramfunc"] <= hot["bytes"]
    assert linked + secs.get(".ramfunc", 0) + STACK <= mp["regions"]["ram"]["used"] <= 4096


@pytest.mark.firmware
def test_output_buffer_shrinks_when_the_image_needs_the_room(artifacts, digits, tmp_path):
    """On an FR5994 whose SRAM holds the MLP's static RAM and stack reserve with 300 B for the output buffer,
    codegen builds it with a 300 B buffer (model.cmake), the ELF links so, and the image prints its logits
    bit-exact with the numeric spec."""
    from batteryless.codegen import codegen
    from batteryless.firmware import build, parse_output
    from batteryless.firmware.msp430sim import run_many

    res = codegen(artifacts["mlp"], "msp430fr5994", tmp_path / "full", backend="ref", path="direct")
    full = res.schedule["memory_plan"]
    assert full["out_buffer_bytes"] == OUT_BUFFER_BYTES["msp430x"]
    assert "BL_OUT_CAPACITY" not in (tmp_path / "full" / "model.cmake").read_text()
    rest = _static(full) - full["out_buffer_bytes"]
    board = fr5994_with_ram(tmp_path, rest + STACK + 300)
    gen = tmp_path / "gen"
    res = codegen(artifacts["mlp"], board, gen, backend="ref", path="direct")
    assert res.schedule["memory_plan"]["out_buffer_bytes"] == 300
    assert '"BL_OUT_CAPACITY=300u"' in (gen / "model.cmake").read_text()
    img = build(board, gen, "ref", out_dir=tmp_path / "b").image
    assert _ram_sections(img)[".noinit"] == 300
    art = load_artifact(artifacts["mlp"])
    xq = np.asarray(spec.quantize_input(art, digits.x_test[:2]), dtype="<i2")
    want = spec.integer_inference(
        art, digits.x_test[:2], json.loads((gen / "schedule.json").read_text())["paths"]
    )
    for i, r in enumerate(run_many(img, [x.tobytes() for x in xq])):
        assert r.exit_code == 0 and list(parse_output(r.output)["logits"]) == [int(v) for v in want[i]]


def test_ram_overflow_by_a_few_bytes_is_refused_before_writing(artifacts, tmp_path):
    """Two bytes short of the static RAM with the smallest output buffer and the stack reserve: refused with
    the region, the need and the overflow; nothing written. Exactly enough: accepted (and the hot code, with
    no room left, runs from FRAM)."""
    from batteryless.codegen import codegen

    res = codegen(artifacts["mlp"], "msp430fr5994", tmp_path / "ref", backend="lea", path="fft")
    full = res.schedule["memory_plan"]
    need = _static(full) - full["out_buffer_bytes"] + OUT_BUFFER_MIN_BYTES + STACK
    short = fr5994_with_ram(tmp_path, need - 2)
    gen = tmp_path / "gen"
    with pytest.raises(CodegenError) as err:
        codegen(artifacts["mlp"], short, gen, backend="lea", path="fft")
    msg = str(err.value)
    assert "does not fit board" in msg and "region 'ram'" in msg
    assert f"needs {need} bytes" in msg and "overflow 2 bytes" in msg and "stack reserve 512 B" in msg
    assert not gen.exists() or not any(gen.iterdir())
    exact = fr5994_with_ram(tmp_path, need)
    ok = codegen(artifacts["mlp"], exact, tmp_path / "ok", backend="lea", path="fft").schedule["memory_plan"]
    assert ok["out_buffer_bytes"] == OUT_BUFFER_MIN_BYTES and ok["ramfunc"]["region"] == "code"
    assert ok["regions"]["ram"]["used"] == need


CODE = (0x4000, 0xE000)  # the FR5994's code region (board.toml)


def _linked_code(elf: Path) -> int:
    """Bytes the linked image keeps in the code region: code, consts, and the load images of .data and the
    hot code (.ramfunc, copied to SRAM at start-up or run in place)."""
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as fh:
        secs = [s for s in ELFFile(fh).iter_sections() if s["sh_flags"] & 2 and s["sh_type"] != "SHT_NOBITS"]
        by_name = {s.name: s for s in secs}
        assert all(CODE[0] <= by_name[n]["sh_addr"] < CODE[1] for n in (".text", ".rodata") if n in by_name)
        return sum(s["sh_size"] for s in secs if s.name in (".text", ".rodata", ".ramfunc", ".data"))


@pytest.mark.firmware
@pytest.mark.parametrize(
    ("model", "backend", "granularity", "app"),
    [
        ("mlp", "lea", "coarse", "model"),  # the FFT path's LEA kernels and hot code
        ("cnn", "lea", 300000, "model"),  # fine conv1 steps (the step walk) beside the LEA FFT conv2
        ("mlp", "lea", "coarse", "flex"),  # the FLEX app (buffers in NVM)
    ],
)
def test_code_estimate_bounds_the_linked_image(artifacts, tmp_path, model, backend, granularity, app):
    """The plan's code-region use is at or above what the linker keeps and at most CODE_MARGIN_BYTES
    above it (every part the image links is counted; nothing grossly more)."""
    from batteryless.codegen import codegen
    from batteryless.firmware import build
    from batteryless.flex import build_flex

    if app == "flex":
        img = build_flex(artifacts[model], "msp430fr5994", tmp_path, backend=backend, granularity=granularity)
        mp = json.loads((img.model_dir / "schedule.json").read_text())["memory_plan"]
        elf = img.image
    else:
        gen = tmp_path / "gen"
        res = codegen(artifacts[model], "msp430fr5994", gen, backend=backend, granularity=granularity)
        mp = res.schedule["memory_plan"]
        elf = build("msp430fr5994", gen, backend, out_dir=tmp_path / "b").image
    est, linked = mp["regions"]["code"]["used"], _linked_code(elf)
    assert "runtime, app and kernels" in mp["regions"]["code"]["what"]  # the object graph, not the flat guess
    assert 0 <= est - linked <= CODE_MARGIN_BYTES, (est, linked, mp["regions"]["code"])


def test_code_overflow_by_a_few_bytes_is_refused_before_writing(artifacts, tmp_path):
    """A code region two bytes short of the plan's code estimate (path and granularity given: nothing to
    fall back to): refused with the region, the need and the overflow, nothing written; exactly enough:
    accepted with the same estimate."""
    from batteryless.codegen import codegen

    kw = dict(backend="lea", granularity="coarse", path="fft")
    res = codegen(artifacts["cnn"], "msp430fr5994", tmp_path / "ref", **kw)
    need = res.schedule["memory_plan"]["regions"]["code"]["used"]
    gen = tmp_path / "gen"
    with pytest.raises(CodegenError) as err:
        codegen(artifacts["cnn"], fr5994_with_code(tmp_path, need - 2), gen, **kw)
    msg = str(err.value)
    assert "does not fit board" in msg and "region 'code'" in msg
    assert f"needs {need} bytes" in msg and "overflow 2 bytes" in msg
    assert not gen.exists() or not any(gen.iterdir())
    ok = codegen(artifacts["cnn"], fr5994_with_code(tmp_path, need), tmp_path / "ok", **kw)
    assert ok.schedule["memory_plan"]["regions"]["code"]["used"] == need
    assert "fallback" not in ok.schedule["memory_plan"]


def test_auto_falls_back_when_the_code_region_cannot_hold_its_choice(artifacts, tmp_path):
    """On its 100 uF buffer ``auto`` cuts the CNN's lea conv1 into steps, whose step kernels take code the
    default tasks do not: with a code region between the two estimates ``auto`` generates the default tasks
    and says why; below the default tasks' estimate, the direct path (no FFT kernels). The same fine
    granularity and path asked for explicitly is refused, suggesting coarse. The board's cost table is
    session 9's for the convolutions (the CPU-run direct convolution, ~0.6 M MCLK for conv1; the FFT path
    picked for conv2): the fallbacks are what is tested, and today's table (the LEA resident route) puts
    every digits CNN layer on direct coarse tasks at 100 uF, where no fallback is needed."""
    from batteryless.codegen import codegen

    cap = 100e-6  # conv1 (~0.6 M MCLK at these costs) above half a period, conv2's FFT tasks below it
    cpu_conv = {
        "cycles_per_conv_mac": 57.92,
        "cycles_per_dense_conv_mac": 87.69,
        "cycles_per_walk_conv_mac": 87.69,
        "cycles_per_fft_mac": 21.83,
        "cycles_per_butterfly": 0.0,
        "cycles_per_short_butterfly": 310.96,
        "cycles_per_transform": 965.35,
    }
    full = fr5994_with_code(tmp_path, 0xA000, cpu_conv)
    fine = codegen(artifacts["cnn"], full, tmp_path / "fine", backend="lea", capacitance_f=cap)
    assert fine.schedule["granularity"]["mode"] == "fine" and "fft" in fine.paths.values()
    coarse = codegen(artifacts["cnn"], full, tmp_path / "c", backend="lea", granularity="coarse")
    f_need = fine.schedule["memory_plan"]["regions"]["code"]["used"]
    c_need = coarse.schedule["memory_plan"]["regions"]["code"]["used"]
    assert c_need < f_need, (c_need, f_need)
    board = fr5994_with_code(tmp_path, (c_need + f_need) // 2 // 2 * 2, cpu_conv)
    res = codegen(artifacts["cnn"], board, tmp_path / "gen", backend="lea", capacitance_f=cap)
    gran, mp = res.schedule["granularity"], res.schedule["memory_plan"]
    assert gran["mode"] == "coarse" and "do not fit the code region" in gran["reason"], gran
    assert f"{f_need} B estimated" in gran["reason"] and f"need {f_need} B of code" in mp["fallback"]
    assert mp["regions"]["code"]["used"] == c_need and res.paths == coarse.paths
    assert [t["name"] for t in res.schedule["modes"][0]["tasks"]] == [
        t["name"] for t in coarse.schedule["modes"][0]["tasks"]
    ]
    # a region the default tasks on the FFT path do not fit either: every circulant layer direct
    small = fr5994_with_code(tmp_path, c_need - 2, cpu_conv)
    res = codegen(artifacts["cnn"], small, tmp_path / "direct", backend="lea", capacitance_f=cap)
    assert set(res.paths.values()) == {"direct"} and "fallback" in res.schedule["memory_plan"]
    assert res.schedule["memory_plan"]["regions"]["code"]["used"] <= c_need - 2
    # asked for explicitly (the FFT path, steps of the same budget): refused with the hint, nothing written
    kw = dict(backend="lea", path="fft", granularity=fine.schedule["granularity"]["max_step_cycles"])
    with pytest.raises(CodegenError, match="--granularity coarse") as err:
        codegen(artifacts["cnn"], board, tmp_path / "asked", **kw)
    assert "region 'code'" in str(err.value) and not (tmp_path / "asked").exists()


def test_eve_model_cmake_keeps_the_output_buffer_size(artifacts, tmp_path):
    """An EVE image whose output buffer the memory plan shrank: model.cmake carries both the EVE selector
    and BL_OUT_CAPACITY (add_modes once overwrote emit's model.cmake, and such an image overflowed SRAM at
    link)."""
    from batteryless.artifact import load_artifact, save_artifact
    from batteryless.codegen import codegen
    from batteryless.eve.modes import set_modes

    art = load_artifact(artifacts["mlp"])
    set_modes(art, [1.0, 0.5, 0.25])
    eve = save_artifact(art, tmp_path / "mlp3.bl")
    full = codegen(eve, "msp430fr5994", tmp_path / "full", backend="ref", path="direct")
    mp = full.schedule["memory_plan"]
    rest = _static(mp) - mp["out_buffer_bytes"]
    board = fr5994_with_ram(tmp_path, rest + STACK + 300)
    codegen(eve, board, tmp_path / "gen", backend="ref", path="direct")
    text = (tmp_path / "gen" / "model.cmake").read_text()
    assert '"BL_OUT_CAPACITY=300u"' in text and '"BL_EVE_MODES=3"' in text and "BL_FFT_MAX_K" in text
    assert text.count("Generated by") == 1


def test_auto_unmerges_eve_tasks_when_merged_ones_do_not_fit_the_code(artifacts, tmp_path):
    """An EVE MLP's default tasks merged by auto granularity (plan.merge_tasks) take more code than unmerged:
    with a code region between the two estimates ``auto`` generates them unmerged on the same paths (not
    the direct path), and says why."""
    from batteryless.artifact import load_artifact, save_artifact
    from batteryless.codegen import codegen
    from batteryless.eve.modes import set_modes

    art = load_artifact(artifacts["mlp"])
    set_modes(art, [1.0, 0.5, 0.25])
    eve = save_artifact(art, tmp_path / "mlp3.bl")
    from batteryless.boards import load_board
    from batteryless.codegen.costs import cost_model
    from batteryless.codegen.generate import plan_for
    from batteryless.codegen.memory import code_parts

    b = load_board("msp430fr5994")
    merged, _ = plan_for(load_artifact(eve), b, "lea", "auto", cost_model(b, "lea"), "auto")
    m_need = sum(code_parts(merged, b, "lea", "flex", 3)[0].values())
    plain = codegen(
        eve, "msp430fr5994", tmp_path / "p", backend="lea", buffers_in="nvm", granularity="coarse"
    )
    n_m, n_p = len(merged.tasks), len(plain.schedule["modes"][0]["tasks"])
    p_need = plain.schedule["memory_plan"]["regions"]["code"]["used"]
    assert n_m < n_p and p_need < m_need, (n_m, n_p, p_need, m_need)
    board = fr5994_with_code(tmp_path, min((p_need + m_need) // 2 // 2 * 2, 0xA000))
    res = codegen(eve, board, tmp_path / "gen", backend="lea", buffers_in="nvm")
    gran = res.schedule["granularity"]
    assert len(res.schedule["modes"][0]["tasks"]) == n_p and res.paths == plain.paths
    assert "merged tasks" in gran["reason"] and "do not fit the code region" in gran["reason"], gran


@pytest.mark.firmware
def test_link_overflow_beyond_the_estimate_names_the_plan_and_the_way_out(artifacts, tmp_path):
    """Where the linker finds the image larger than a region the memory plan said it fits (the code estimate
    is fitted on other models: one unlike them can exceed it), build's error carries the linker's line, the
    plan's figure and how to generate a smaller image. Here the image is built for a board whose code region
    is shorter than the one codegen planned for."""
    from batteryless.codegen import codegen
    from batteryless.errors import BuildError
    from batteryless.firmware import build

    gen = tmp_path / "gen"
    res = codegen(artifacts["mlp"], "msp430fr5994", gen, backend="lea", granularity="coarse")
    code = res.schedule["memory_plan"]["regions"]["code"]
    short = fr5994_with_code(tmp_path, (code["used"] - 2048) // 2 * 2)
    with pytest.raises(BuildError) as exc:
        build(short, gen, "lea", out_dir=tmp_path / "b")
    msg = str(exc.value)
    assert "will not fit in region" in msg
    assert f"estimated {code['used']:,} of {code['size']:,} bytes" in msg and "--path direct" in msg
