"""The LEA in the MSP430FR5994 simulator and the lea backend's driver on it.

Register level (hand-assembled MSP430 code writing the LEA registers, as the driver does): each command's
result against an independent Python computation (numpy sums; the FFT against batteryless.spec.fft_q15),
the documented error flags for operands outside LEA RAM or misaligned, odd lengths and overflowing commands,
the busy time, and a power cut while LEA is busy. Firmware level: the digits MLP and CNN `lea` images
bit-exact with the numeric spec on both paths, and FLEX power-failure schedules on a `lea` image, with
cuts placed while a LEA command is running."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from batteryless import spec
from batteryless.boards import with_emulator
from batteryless.errors import EmulationError
from batteryless.firmware.msp430sim import Msp430Sim

LEA = 0x0A80
PMCTL, PMS1, PMS0, PMCB, IFG, CNF1 = LEA + 0x40, LEA + 0x48, LEA + 0x4C, LEA + 0x50, LEA + 0x78, LEA + 0x08
COVL, OOR, SDI, DONE = 0x01, 0x04, 0x08, 0x10
FFT, MAC, CMAC, BREV_EVEN, BREV_ODD = 4, 21, 26, 33, 34
CODE = 0x4400


def _mov(v: int, addr: int) -> list[int]:
    return [0x40B2, v & 0xFFFF, addr]  # MOV #v,&addr


def _program(commands, wait=True):
    """Code that enables LEA and runs each (cmd, s0, blk) in turn, waiting for the done flag after each;
    finally R5 = LEAIFG and R6 = LEACNF1 (low word), then JMP $. Returns (words, address of the JMP)."""
    w = _mov(1, PMCTL)
    for cmd, s0, blk in commands:
        w += _mov(0x1F, IFG) + _mov(s0 >> 2, PMS0) + _mov(blk >> 2, PMS1) + _mov((cmd << 2) | 2, PMCB)
        if wait:
            w += [0xB0B2, DONE, IFG, 0x27FC]  # L: BIT #DONE,&LEAIFG ; JZ L
    w += [0x4215, IFG, 0x4216, CNF1]  # MOV &LEAIFG,R5 ; MOV &LEACNF1,R6
    return w + [0x3FFF], CODE + 2 * len(w)


def _run(commands, mem, wait=True, **sim_kw):
    words, end = _program(commands, wait)
    s = Msp430Sim(stop_pc=end, **sim_kw)
    s.power_on()
    s.load(CODE, struct.pack(f"<{len(words)}H", *words))
    for addr, data in mem.items():
        s.load(addr, data)
    s.set_reg(0, CODE)
    s.run(max_cycles=1_000_000)
    assert s.reg(0) == end
    return s


def _i16(a) -> bytes:
    return np.asarray(a, dtype="<i2").tobytes()


def _blk(*fields) -> bytes:
    return struct.pack(f"<{len(fields)}H", *fields)


def _sat32(v: int) -> int:
    return max(-(2**31), min(2**31 - 1, v))


# --- commands -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 32, 64])
def test_mac_is_twice_the_dot_product(n):
    rng = np.random.default_rng(n)
    a, b = rng.integers(-32768, 32768, (2, n))
    s = _run(
        [(MAC, 0x2C00, 0x2E00)],
        {0x2C00: _i16(a), 0x2D00: _i16(b), 0x2E00: _blk(n, 0x2D00 >> 2, 0x2E80 >> 2, 0)},
    )
    (got,) = struct.unpack("<i", s.read(0x2E80, 4))
    assert got == _sat32(2 * int(np.dot(a.astype(np.int64), b)))
    assert s.reg(5) == DONE and s.reg(6) & 1 == 0


def test_mac_saturates_to_int32():
    n = 4
    a = [32767] * n
    s = _run(
        [(MAC, 0x2C00, 0x2E00)],
        {0x2C00: _i16(a), 0x2D00: _i16(a), 0x2E00: _blk(n, 0x2D00 >> 2, 0x2E80 >> 2, 0)},
    )
    assert struct.unpack("<i", s.read(0x2E80, 4))[0] == 2**31 - 1  # 2 * 4 * 32767^2 > 2^31


def test_complex_mac():
    n = 16
    rng = np.random.default_rng(5)
    a, b = rng.integers(-32768, 32768, (2, n, 2))
    blk = _blk(n, 0x2D00 >> 2, 0x2E80 >> 2, 1, 1, 0)
    s = _run([(CMAC, 0x2C00, 0x2E00)], {0x2C00: _i16(a), 0x2D00: _i16(b), 0x2E00: blk})
    za = a[:, 0].astype(np.int64) + 1j * a[:, 1]
    zb = b[:, 0].astype(np.int64) + 1j * b[:, 1]
    want = (za * zb).sum()
    assert struct.unpack("<2i", s.read(0x2E80, 8)) == (_sat32(2 * int(want.real)), _sat32(2 * int(want.imag)))


def test_complex_mac_with_input_offsets_skips_elements():
    # input1Offset / input2Offset = 8: elements 0, 8, 16, ... of each operand (the lea FFT path's bins of
    # successive blocks in the packed layout, offset k/2); the elements in between must not count
    n, off = 4, 8
    rng = np.random.default_rng(6)
    a, b = rng.integers(-2000, 2000, (2, n * off, 2))
    blk = _blk(n, 0x2D00 >> 2, 0x2E80 >> 2, off, off, 0)
    s = _run([(CMAC, 0x2C00, 0x2E00)], {0x2C00: _i16(a), 0x2D00: _i16(b), 0x2E00: blk})
    za = a[::off, 0].astype(np.int64) + 1j * a[::off, 1]
    zb = b[::off, 0].astype(np.int64) + 1j * b[::off, 1]
    want = (za * zb).sum()
    assert struct.unpack("<2i", s.read(0x2E80, 8)) == (2 * int(want.real), 2 * int(want.imag))


@pytest.mark.parametrize("n", [16, 32, 64, 128])
def test_bit_reversal_then_fft_equals_the_spec(n):
    """BITREVERSECOMPLEX (EVEN for even log2 N, sqrtVectorSize = sqrt(N); ODD: sqrt(N/2)) then
    FFTCOMPLEXFIXEDSCALING {N/2, log2 N}: the spec's forward transform (fft/N, its rounding)."""
    rng = np.random.default_rng(n)
    z = rng.integers(-32768, 32768, (n, 2))
    z[0] = (-32768, 32767)
    lg = n.bit_length() - 1
    brev = (BREV_ODD, int(np.sqrt(n // 2))) if lg % 2 else (BREV_EVEN, int(np.sqrt(n)))
    mem = {0x3000: _i16(z), 0x2E00: _blk(brev[1], 0), 0x2E10: _blk(n // 2, lg)}
    s = _run([(brev[0], 0x3000, 0x2E00), (FFT, 0x3000, 0x2E10)], mem)
    got = np.frombuffer(s.read(0x3000, 4 * n), dtype="<i2").reshape(n, 2)
    re, im = spec.fft_q15(z[:, 0].astype(np.int64), z[:, 1].astype(np.int64))
    assert np.array_equal(got[:, 0], re) and np.array_equal(got[:, 1], im)
    assert s.reg(5) == DONE


# --- the documented LEA errors ---------------------------------------------------------------------------


def test_operand_outside_lea_ram_raises_out_of_range_and_writes_nothing():
    mem = {0x1C00: _i16([1, 2]), 0x2D00: _i16([3, 4]), 0x2E00: _blk(2, 0x2D00 >> 2, 0x2E80 >> 2, 0),
           0x2E80: b"\xaa" * 4}  # fmt: skip
    s = _run([(MAC, 0x1C00, 0x2E00)], mem)  # srcA in ordinary SRAM
    assert s.reg(5) == OOR | DONE and s.read(0x2E80, 4) == b"\xaa" * 4


def test_misaligned_fft_data_raises_out_of_range():
    n = 32  # needs 4 * 32 = 128-byte alignment; 0x2C40 is only 64-byte aligned
    z = _i16(np.arange(2 * n))
    s = _run([(FFT, 0x2C40, 0x2E00)], {0x2C40: z, 0x2E00: _blk(n // 2, 5)})
    assert s.reg(5) == OOR | DONE and s.read(0x2C40, 4 * n) == z


def test_parameter_block_outside_lea_ram_raises_out_of_range():
    s = _run([(MAC, 0x2C00, 0x2000)], {0x2000: _blk(2, 0x2D00 >> 2, 0x2E80 >> 2, 0)})
    assert s.reg(5) == OOR | DONE


def test_odd_length_and_bad_fft_size_raise_scalar_inconsistency():
    s = _run([(MAC, 0x2C00, 0x2E00)], {0x2E00: _blk(3, 0x2D00 >> 2, 0x2E80 >> 2, 0)})
    assert s.reg(5) == SDI | DONE
    t = _run([(FFT, 0x3000, 0x2E00)], {0x2E00: _blk(8, 5)})  # N/2 = 8 but log2 = 5
    assert t.reg(5) == SDI | DONE


def test_command_while_busy_raises_command_overflow():
    blk = _blk(64, 0x2D00 >> 2, 0x2E80 >> 2, 0)
    s = _run([(MAC, 0x2C00, 0x2E00), (MAC, 0x2C00, 0x2E00)], {0x2E00: blk}, wait=False)
    assert s.reg(5) & COVL and s.reg(6) & 1  # still busy with the first


def test_lea_is_busy_for_its_documented_time_and_the_cpu_runs_on():
    """MAC over n elements occupies LEA for 24 + n/2 cycles (the ASSUMED timing table); the CPU polls."""
    n = 64
    s = _run([(MAC, 0x2C00, 0x2E00)], {0x2E00: _blk(n, 0x2D00 >> 2, 0x2E80 >> 2, 0)})
    assert s.lea_stats()["busy_cycles"] == 24 + n // 2
    assert s.lea_stats()["commands"] == {MAC: 1} and s.lea_stats()["elements"] == {MAC: n}


@pytest.mark.parametrize("scale, busy", [(0.5, 28), (2.0, 112), (1 / 256, 1)])
def test_lea_timing_scale_stretches_every_command_and_keeps_its_result(scale, busy):
    """The sensitivity knob: a MAC's ASSUMED 24 + n/2 = 56 cycles times the scale (rounded, at least one);
    the CPU polls the longer or shorter, the result is the same."""
    n = 64
    x = np.arange(n, dtype=np.int16) - 20
    mem = {0x2E00: _blk(n, 0x2D00 >> 2, 0x2E80 >> 2, 0), 0x2C00: _i16(x), 0x2D00: _i16(3 * x)}
    base = _run([(MAC, 0x2C00, 0x2E00)], mem)
    s = _run([(MAC, 0x2C00, 0x2E00)], mem, lea_timing_scale=scale)
    assert s.lea_stats()["busy_cycles"] == busy
    assert (
        s.read(0x2E80, 4)
        == base.read(0x2E80, 4)
        == struct.pack("<i", 2 * int(np.dot(x.astype(np.int64), 3 * x.astype(np.int64))))
    )
    with pytest.raises(EmulationError, match="lea_timing_scale"):
        Msp430Sim(lea_timing_scale=0.0)


def test_power_cut_while_busy_loses_the_result_and_the_lea_state():
    words, _ = _program([(MAC, 0x2C00, 0x2E00)], wait=False)
    s = Msp430Sim()
    s.power_on()
    s.load(CODE, struct.pack(f"<{len(words)}H", *words))
    s.load(0x2E00, _blk(64, 0x2D00 >> 2, 0x2E80 >> 2, 0))
    s.set_reg(0, CODE)
    s.run(max_insns=5)  # the LEAPMCB write is the 5th instruction
    assert s.lea_busy
    s.power_cut()
    assert not s.lea_busy
    s.set_reg(0, CODE + 2 * (len(words) - 5))  # MOV &LEAIFG,R5 ; MOV &LEACNF1,R6
    s.run(max_insns=s.instructions + 2)
    assert s.reg(5) == 0 and s.reg(6) & 1 == 0


# --- firmware ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.firmware
@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("path", ["fft", "direct"])
def test_lea_model_images_bit_exact_on_the_emulated_lea(artifacts, digits, tmp_path, model, path):
    """The FR5994 lea firmware on the emulated LEA: logits equal the numeric spec's (benchmarks/lea.py runs
    every digits test sample)."""
    from batteryless.artifact import load_artifact
    from batteryless.codegen import codegen
    from batteryless.firmware import build, run_dataset
    from batteryless.firmware.image import symbols
    from batteryless.firmware.msp430sim import run_many

    n = 4
    res = codegen(artifacts[model], "msp430fr5994", tmp_path / "gen", backend="lea", path=path)
    img = build("msp430fr5994", tmp_path / "gen", "lea", out_dir=tmp_path / "b").image
    used = "bl_lea_cmac_many" if path == "fft" else "msp_mac_q15"  # the driver's batched complex MACs
    assert used in symbols(img) and "msp_model_twiddle_rom" not in symbols(img)  # the driver, not the model
    board = with_emulator("msp430fr5994", "msp430sim")
    got = run_dataset(img, board, artifacts[model], "digits", count=n)
    want = spec.integer_inference(load_artifact(artifacts[model]), digits.x_test[:n], res.paths)
    assert np.array_equal(np.array(got.logits), want)
    # benchmarks/lea.py's inference window (run_many, one simulator for all samples) is the runner's
    # (run_image per sample: marks 1 -> 0), and every LEA command starts inside it
    xq = np.asarray(spec.quantize_input(load_artifact(artifacts[model]), digits.x_test[:n]), dtype="<i2")
    many = run_many(img, [xq[i].tobytes() for i in range(n)], mark_addr=int(board.emulator["mark_register"]))
    assert [r.inference_cycles for r in many] == got.inference_counts
    assert all(r.lea_commands_outside_inference == 0 for r in many)
    assert all(0 < r.inference_cycles < r.mclk_cycles for r in many)
    # benchmarks/lea.py's profile_sample0: the per-function profile restricted to that window adds up to
    # sample 0's inference cycles (the whole-run profile to more: start-up, input, printing)
    from batteryless.firmware.msp430sim import profile_image

    window = profile_image(img, xq[0].tobytes(), mark_addr=int(board.emulator["mark_register"]))
    assert sum(window.values()) == many[0].inference_cycles
    assert sum(profile_image(img, xq[0].tobytes()).values()) > many[0].inference_cycles
    assert "bl_c_start" not in window and "bl_model_run_marked" in window


@pytest.mark.slow
@pytest.mark.firmware
def test_flex_power_cuts_on_the_lea_image_with_lea_busy(artifacts, tmp_path):
    from batteryless.firmware import patch_input
    from batteryless.firmware.image import symbols
    from batteryless.flex import build_flex, model_input, run_schedule, verify_intermittent

    board = with_emulator("msp430fr5994", "msp430sim")
    img = build_flex(artifacts["mlp"], board, tmp_path / "flex", backend="lea")
    x = model_input(artifacts["mlp"], 0)
    rep = verify_intermittent(None, board, image=img, inputs=x, random=6, seed=2, workers=1)
    assert rep.passed and rep.schedules == 6 and rep.reboots >= 6
    # cuts two instructions after a LEA command was started: LEA is busy when the power goes
    p = patch_input(img.image, x, tmp_path / "p.elf")
    s = Msp430Sim(stop_pc=symbols(p)["bl_done"].address)
    s.load_elf(p)
    s.power_on()
    s.run(max_cycles=10**9)
    starts = s.lea_starts()
    assert len(starts) > 50
    for c in sorted(random.Random(1).sample(starts, 4)):
        probe = Msp430Sim()
        probe.load_elf(p)
        probe.power_on()
        probe.run(max_insns=c + 2)
        assert probe.lea_busy
        r = run_schedule(img, board, x, [c + 2], rep.reference, 120)
        assert r.correct and r.reboots == 1, r


@pytest.mark.firmware
def test_saturating_lea_macs_are_recomputed_exactly(artifacts, tmp_path):
    """The lea kernels take a LEA MAC result at an int32 bound as possibly saturated and recompute that dot
    product on the CPU (docs/kernels.md, "Exact MACs"). Full-scale weights / spectra and full-scale inputs
    drive fc1's accumulators far beyond 2^30 on both paths (asserted below from the spec's own numbers):
    the FR5994 lea image on the emulated LEA must still equal the numeric spec, wrapping included."""
    from batteryless.artifact import clone, load_artifact, save_artifact
    from batteryless.codegen import codegen
    from batteryless.firmware import build, parse_output
    from batteryless.firmware.msp430sim import run_many

    art = clone(load_artifact(artifacts["mlp"]))
    fc1 = next(layer for layer in art.layers if layer["op"] == "linear")
    rng = np.random.default_rng(5)
    for name in (fc1["weight"], fc1["spectra"]):
        t = art.tensors[name]
        art.tensors[name] = np.where(rng.random(t.shape) < 0.9, 32767, -32768).astype(t.dtype)
    path_art = save_artifact(art, tmp_path / "saturating.bl")
    shape = (3, *art.input_shape)
    x = np.where(rng.random(shape) < 0.9, 1e3, -1e3)  # quantises to +-full scale
    # and a full-scale square wave of period 4: every FFT-path input block has a full-scale complex bin
    # k/4, whose complex-MAC sums over the blocks (LEA commands, not the real DC/Nyquist sums on the
    # MPY32) go beyond 2^30 with the full-scale spectra
    sq = np.where(np.arange(int(np.prod(art.input_shape))) % 4 < 2, 1e3, -1e3).reshape(art.input_shape)
    x = np.concatenate([x, sq[None]])
    xq = np.asarray(spec.quantize_input(art, x), dtype="<i2").reshape(len(x), -1)
    assert np.abs(xq.astype(np.int32)).min() >= 32767
    # precondition: the direct path's first dot product is beyond what one IQ31 MAC result can hold
    w = art.tensors[fc1["weight"]].astype(np.int64)
    k = fc1["block"]
    row0 = np.array([w[0, j, (0 - cc) % k] for j in range(w.shape[1]) for cc in range(k)])
    assert abs(int(row0[: xq.shape[1]] @ xq[0].astype(np.int64))) >= 2**30
    for path in ("fft", "direct"):
        gen = tmp_path / f"gen-{path}"
        # coarse: the lea layer kernels themselves (auto may make fine bl_mac_step images, the ref walk)
        res = codegen(path_art, "msp430fr5994", gen, backend="lea", path=path, granularity="coarse")
        img = build("msp430fr5994", gen, "lea", out_dir=tmp_path / f"b-{path}").image
        runs = run_many(img, [xq[i].tobytes() for i in range(len(xq))])
        want = spec.integer_inference(art, x, res.paths)
        got = [parse_output(r.output).get("logits") for r in runs]
        assert [list(g) for g in got] == want.tolist(), path


@pytest.mark.firmware
def test_fft_layers_at_shift_15_on_the_lea_route_equal_the_spec(artifacts, digits, tmp_path):
    """A block row whose spectrum requantisation shift is s = 15 (in_frac + spectra_frac - log2 k -
    spectrum_frac; 3 of 4 fully trained digits MLPs have such a layer, benchmarks/block_sweep.py) takes the
    LEA complex-MAC loop's s = 15 conversion (bl_lea_cmac_rq_run: the high word, no shift), whose
    maybe-saturated flag sends a row to the exact recomputation. Every FFT layer of the MLP set to s = 15:
    digits samples, and full-scale spectra with full-scale inputs, whose complex-MAC sums reach the int32
    bounds (asserted from the spec's own numbers) so the flag must fire — the FR5994 lea image equals the
    numeric spec on both."""
    from batteryless.artifact import clone, load_artifact, save_artifact

    base = load_artifact(artifacts["mlp"])
    rng = np.random.default_rng(15)
    cases = {}
    for name in ("digits", "saturating"):
        art = clone(base)
        for layer in art.layers:
            if layer["op"] == "linear" and layer.get("spectra"):
                log2k = int(layer["block"]).bit_length() - 1
                layer["spectrum_frac"] = layer["in_frac"] + layer["spectra_frac"] - log2k - 15
        x = digits.x_test[:5]
        if name == "saturating":
            fc1 = next(layer for layer in art.layers if layer["op"] == "linear")
            t = art.tensors[fc1["spectra"]]
            art.tensors[fc1["spectra"]] = np.where(rng.random(t.shape) < 0.9, 32767, -32768).astype(t.dtype)
            n_in = int(np.prod(art.input_shape))
            sq = np.where(np.arange(n_in) % 4 < 2, 1e3, -1e3).reshape(art.input_shape)
            x = np.concatenate([np.where(rng.random((2, *art.input_shape)) < 0.9, 1e3, -1e3), sq[None]])
            # precondition, from the spec's own numbers: fc1's complex-MAC sums (bins 1 .. k/2 - 1, over the
            # q input blocks) reach 2^30, where the LEA's doubled IQ31 result is at its bound
            k, xq1 = fc1["block"], spec.quantize_input(art, x).reshape(len(x), -1).astype(np.int64)
            q = -(-xq1.shape[1] // k)
            xb = np.pad(xq1, ((0, 0), (0, q * k - xq1.shape[1]))).reshape(len(x), q, k)
            xr, xi = spec.fft_q15(xb, np.zeros_like(xb))
            sr, si = spec.unpack_spectrum(np.moveaxis(art.tensors[fc1["spectra"]].astype(np.int64), 2, -1))
            mid = slice(1, k // 2)
            pr = np.einsum("nqf,pqf->npf", xr[..., mid], sr[..., mid]) - np.einsum(
                "nqf,pqf->npf", xi[..., mid], si[..., mid]
            )
            assert np.abs(pr).max() >= 2**30
        cases[name] = (save_artifact(art, tmp_path / f"{name}.bl"), art, x)
    for name, (path_art, art, x) in cases.items():
        _assert_lea_image_is_the_spec(path_art, art, x, "fft", tmp_path / name)


@pytest.mark.firmware
def test_conv_resident_route_saturating_and_shifted_equal_the_spec(artifacts, digits, tmp_path):
    """The direct conv path's resident route on the FR5994 (conv.c conv_resident: every patch once, the
    call's weight vectors resident in LEA RAM, one MAC per (position, channel) through the driver's
    MAC + requantisation loop bl_lea_mac_rq_run): the CNN's convolutions with int16 weights at requantisation
    shifts 9 and 12 (the loop's shift and saturation branches; the digits CNN runs at 15) on digits samples,
    and full-scale weights with full-scale inputs whose dot products pass the int32 bounds (asserted from the
    spec's numbers), so LEA results at a bound must flag the position for the exact recomputation. The
    image on the emulated LEA equals the numeric spec, wrapping included."""
    from batteryless.artifact import clone, load_artifact, save_artifact

    base = load_artifact(artifacts["cnn"])
    rng = np.random.default_rng(9)
    for name in ("shifted", "saturating"):
        art = clone(base)
        convs = [layer for layer in art.layers if layer["op"] == "conv2d"]
        for layer, s in zip(convs, (9, 12), strict=False):
            t = art.tensors[layer["weight"]]
            if name == "saturating":
                w = np.where(rng.random(t.shape) < 0.9, 32767, -32768)
            else:
                w = t.astype(np.int64) * 256  # int8 -> int16 at the same scale
            art.tensors[layer["weight"]] = w.astype(np.int16)
            layer["weight_bits"] = 16
            layer["weight_frac"] = layer["out_frac"] - layer["in_frac"] + s
        x = digits.x_test[:3]
        if name == "saturating":
            x = np.concatenate([np.where(rng.random((2, *art.input_shape)) < 0.9, 1e3, -1e3), x[:1]])
            conv1 = convs[0]
            xq = spec.quantize_input(art, x).astype(np.int64)
            cols, _ = spec._im2col(xq[:1], conv1["kernel_size"], conv1["stride"], conv1["padding"])
            wd = spec._dense_weight(conv1, art.tensors).reshape(conv1["out_channels"], 1, -1).astype(np.int64)
            assert np.abs(np.einsum("nctl,oct->nol", cols, wd)).max() >= 2**30
        path_art = save_artifact(art, tmp_path / f"{name}.bl")
        _assert_lea_image_is_the_spec(path_art, art, x, "direct", tmp_path / name)


def _assert_lea_image_is_the_spec(path_art, art, x, path: str, work) -> None:
    """The FR5994 `lea` image of ``path_art`` (coarse tasks on ``path``) on msp430sim gives the numeric
    spec's logits for every sample of ``x``."""
    from batteryless.codegen import codegen
    from batteryless.firmware import build, parse_output
    from batteryless.firmware.msp430sim import run_many

    res = codegen(path_art, "msp430fr5994", work / "gen", backend="lea", path=path, granularity="coarse")
    img = build("msp430fr5994", work / "gen", "lea", out_dir=work / "b").image
    xq = np.asarray(spec.quantize_input(art, x), dtype="<i2").reshape(len(x), -1)
    runs = run_many(img, [xq[i].tobytes() for i in range(len(xq))])
    want = spec.integer_inference(art, x, res.paths)
    got = [parse_output(r.output).get("logits") for r in runs]
    assert [list(g) for g in got] == want.tolist(), work.name
