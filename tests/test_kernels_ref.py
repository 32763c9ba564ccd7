"""The portable `ref` C kernels (firmware/kernels/ref) against the numeric spec (batteryless.spec), bit for
bit: built with the host gcc into a shared library and called through ctypes. Also: one build with
UBSan + ASan, and compile-only builds for MSP430 (16-bit int) and Cortex-M4 that must be warning-free."""

from __future__ import annotations

import ctypes as C
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from batteryless import spec
from batteryless.rad.circulant import BlockCirculantConv, BlockCirculantLinear
from batteryless.rad.quantize import to_artifact

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "firmware" / "include"
REF_DIR = ROOT / "firmware" / "kernels" / "ref"
SOURCES = sorted(REF_DIR.glob("*.c"))
# The golden tests call only the API of bl_kernels.h. Other backends re-run them on their own builds:
# test_kernels_lea.py imports every test here that takes `lib` and gives it a lea build linked with the
# DSPLib host model (firmware/kernels/lea/host). (An environment selector here, BL_KERNEL_BACKENDS, built a
# backend's top folder only, so lea never linked; it was removed rather than kept as a second route.)
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror"]

pytestmark = pytest.mark.firmware

BL_OK, BL_ERR_ARG, BL_ERR_SHAPE, BL_ERR_FFT_SIZE = 0, 1, 2, 3

P16 = C.POINTER(C.c_int16)
P8 = C.POINTER(C.c_int8)
P32 = C.POINTER(C.c_int32)


class FftCfg(C.Structure):
    _fields_ = [("k", C.c_uint16), ("tw_k", C.c_uint16), ("tw", P16)]


class ConvGeom(C.Structure):
    _fields_ = [
        (n, C.c_uint16)
        for n in ("in_ch", "in_h", "in_w", "out_ch", "out_h", "out_w", "kh", "kw", "sh", "sw", "ph", "pw")
    ]


class PoolGeom(C.Structure):
    _fields_ = [(n, C.c_uint16) for n in ("ch", "in_h", "in_w", "out_h", "out_w", "kh", "kw", "sh", "sw")]


U16, S16, U32 = C.c_uint16, C.c_int16, C.c_uint32
_SIGNATURES = {
    "bl_sat16_s64": (C.c_int16, [C.c_int64]),
    "bl_rshift_round_s64": (C.c_int64, [C.c_int64, S16]),
    "bl_requant_s32": (C.c_int16, [C.c_int32, S16]),
    "bl_wrap_s32": (C.c_int32, [U32]),
    "bl_asr_s32": (C.c_int32, [C.c_int32, U16]),
    "bl_fft_q15": (C.c_int, [P16, C.POINTER(FftCfg), C.c_bool]),
    "bl_linear_dense_w16": (C.c_int, [P16, U16, P16, P32, S16, P16, U16, U16, U16]),
    "bl_linear_dense_w8": (C.c_int, [P16, U16, P8, P32, S16, P16, U16, U16, U16]),
    "bl_linear_circ_w16": (C.c_int, [P16, U16, P16, U16, P32, S16, P16, U16, U16, U16]),
    "bl_linear_circ_w8": (C.c_int, [P16, U16, P8, U16, P32, S16, P16, U16, U16, U16]),
    "bl_linear_fft_input_q15": (C.c_int, [P16, U16, C.POINTER(FftCfg), P16, U16, U16, P16]),
    "bl_linear_fft_block_q15": (
        C.c_int,
        [P16, U16, P16, C.POINTER(FftCfg), S16, S16, P32, P16, U16, U16, U16, P16],
    ),
    "bl_conv_geom_check": (C.c_int, [C.POINTER(ConvGeom)]),
    "bl_conv_dense_w16": (C.c_int, [P16, C.POINTER(ConvGeom), P16, P32, S16, P16, U16, U16, U16, U16]),
    "bl_conv_dense_w8": (C.c_int, [P16, C.POINTER(ConvGeom), P8, P32, S16, P16, U16, U16, U16, U16]),
    "bl_conv_circ_w16": (C.c_int, [P16, C.POINTER(ConvGeom), P16, U16, P32, S16, P16, U16, U16, U16, U16]),
    "bl_conv_circ_w8": (C.c_int, [P16, C.POINTER(ConvGeom), P8, U16, P32, S16, P16, U16, U16, U16, U16]),
    "bl_conv_fft_input_q15": (C.c_int, [P16, C.POINTER(ConvGeom), C.POINTER(FftCfg), P16, U16, U16, P16]),
    "bl_conv_fft_block_q15": (
        C.c_int,
        [P16, C.POINTER(ConvGeom), P16, C.POINTER(FftCfg), S16, S16, P32, P16, U16, U16, U16, P16],
    ),
    "bl_relu_q15": (C.c_int, [P16, P16, U32]),
    "bl_pool_geom_check": (C.c_int, [C.POINTER(PoolGeom)]),
    "bl_maxpool_q15": (C.c_int, [P16, C.POINTER(PoolGeom), P16, U16, U16]),
    "bl_mac_step_w16": (C.c_int, [P16, C.POINTER(ConvGeom), P16, U16, P32, P32, P32, S16, P16, C.c_void_p]),
    "bl_mac_step_w8": (C.c_int, [P16, C.POINTER(ConvGeom), P8, U16, P32, P32, P32, S16, P16, C.c_void_p]),
    "bl_avgpool_q15": (C.c_int, [P16, C.POINTER(PoolGeom), P16, U16, U16]),
}


@pytest.fixture(scope="session")
def lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    so = tmp_path_factory.mktemp("blref") / "libblref.so"
    cmd = ["gcc", *CFLAGS, "-O2", "-shared", "-fPIC", f"-I{INCLUDE}", f"-I{REF_DIR}", "-o", str(so)]
    cmd += [*map(str, SOURCES)]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, f"{' '.join(cmd)}\n{built.stderr}"
    lib = C.CDLL(str(so))
    for name, (res, args) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


# --- helpers -----------------------------------------------------------------------------------------------
def _buf(a, dtype):
    """Contiguous copy of `a` as `dtype` and a ctypes pointer to it (keep the array alive while in use)."""
    arr = np.ascontiguousarray(a, dtype=dtype)
    ptr = {np.int16: P16, np.int8: P8, np.int32: P32}[dtype]
    return arr, arr.ctypes.data_as(ptr)


def _null(ptr_type):
    return C.cast(None, ptr_type)


def twiddle_table(k: int) -> np.ndarray:
    """The forward twiddle table the kernels take, from the spec's formula (written here independently):
    interleaved (q(cos 2πt/k), q(−sin 2πt/k)) for t < k/2, q(v) = clamp(floor(v·32768 + 0.5))."""

    def q(v: float) -> int:
        return max(-32768, min(32767, math.floor(v * 32768 + 0.5)))

    out = []
    for t in range(k // 2):
        out += [q(math.cos(2 * math.pi * t / k)), q(-math.sin(2 * math.pi * t / k))]
    return np.array(out, dtype=np.int16)


class Fft:
    """A bl_fft_cfg with its table kept alive."""

    def __init__(self, k: int, tw_k: int | None = None):
        self.table = twiddle_table(tw_k or k)
        self.cfg = FftCfg(k, tw_k or k, self.table.ctypes.data_as(P16))

    @property
    def ref(self):
        return C.byref(self.cfg)


def _sat16(v):
    return np.clip(v, -32768, 32767)


def _c_fft(lib, re, im, k, inverse, tw_k=None):
    z = np.empty(2 * k, dtype=np.int16)
    z[0::2], z[1::2] = re, im
    f = Fft(k, tw_k)
    assert lib.bl_fft_q15(z.ctypes.data_as(P16), f.ref, inverse) == BL_OK
    return z[0::2].astype(np.int64), z[1::2].astype(np.int64)


# --- primitives --------------------------------------------------------------------------------------------
def test_twiddle_table_formula_matches_spec_and_inverse_is_saturated_conjugate():
    for logk in range(1, 16):
        k = 1 << logk
        table = twiddle_table(k).astype(np.int64)
        fr, fi = spec.twiddles(k)
        ir, ii = spec.twiddles(k, inverse=True)
        assert np.array_equal(table[0::2], fr) and np.array_equal(table[1::2], fi)
        # the kernels derive the inverse twiddles as (Wr, sat16(−Wi)): must equal the spec's q(+sin)
        assert np.array_equal(ir, fr) and np.array_equal(ii, _sat16(-fi))
        # a table for a larger length serves smaller ones with a stride
        if logk < 15:
            assert np.array_equal(twiddle_table(2 * k).reshape(-1, 2)[::2], twiddle_table(k).reshape(-1, 2))


@settings(max_examples=200, deadline=None)
@given(v=st.integers(-(2**31), 2**31 - 1), s=st.integers(-31, 45))
def test_requant_matches_spec(lib, v, s):
    # s >= -31: beyond, the spec's own int64 shift v << -s would overflow (the C saturates exactly)
    want = int(spec.sat16(spec.shift_round(np.array([v]), s))[0])
    assert lib.bl_requant_s32(v, s) == want
    assert lib.bl_rshift_round_s64(v, s) == int(spec.shift_round(np.array([v]), s)[0])
    if 0 <= s <= 40:
        assert lib.bl_asr_s32(v, s) == v >> s


def test_rshift_round_32bit_path_edges(lib):
    # the 32-bit constant-shift path (|v| < 2^31, 1 <= s <= 31) and its 64-bit neighbours, against exact
    # Python integers: floor((v + 2^(s-1)) / 2^s)
    vals = {0, 1, -1, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**40, -(2**40)}
    vals |= {sign * ((1 << b) + d) for b in range(31) for d in (-1, 0, 1) for sign in (1, -1)}
    for v in sorted(vals):
        for s in range(1, 34):
            assert lib.bl_rshift_round_s64(v, s) == (v + (1 << (s - 1))) >> s, (v, s)


def test_wrap_and_edge_primitives(lib):
    for u in (0, 1, 2**31 - 1, 2**31, 2**32 - 1, 0x9ABCDEF0):
        assert lib.bl_wrap_s32(u) == int(spec.wrap32(np.array([u]))[0])
    assert lib.bl_rshift_round_s64(-3, 1) == -1 and lib.bl_rshift_round_s64(3, 1) == 2
    assert lib.bl_rshift_round_s64(5, -70) == 2**62 and lib.bl_rshift_round_s64(-5, -40) == -5 * 2**40
    assert lib.bl_rshift_round_s64(-5, -61) == -(2**62)
    assert lib.bl_requant_s32(-(2**31), 60) == 0 and lib.bl_requant_s32(1, -32768) == 32767


# --- FFT ---------------------------------------------------------------------------------------------------
_extreme16 = st.one_of(st.sampled_from([-32768, 32767, -32767, 0, 1, -1]), st.integers(-32768, 32767))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(logk=st.integers(1, 6), data=st.data(), inverse=st.booleans(), tw_extra=st.integers(0, 2))
def test_fft_matches_spec(lib, logk, data, inverse, tw_extra):
    k = 1 << logk
    re = data.draw(st.lists(_extreme16, min_size=k, max_size=k))
    im = data.draw(st.lists(_extreme16, min_size=k, max_size=k))
    got = _c_fft(lib, re, im, k, inverse, tw_k=k << tw_extra)
    want = spec.fft_q15(np.array(re), np.array(im), inverse=inverse)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_fft_saturating_corners(lib):
    for k in (2, 4, 8, 16, 32, 64, 256, 1024):
        for re, im in (
            (np.full(k, -32768), np.full(k, -32768)),
            (np.full(k, 32767), np.full(k, -32768)),
            (np.tile([32767, -32768], k // 2), np.tile([-32768, 32767], k // 2)),
        ):
            for inverse in (False, True):
                got = _c_fft(lib, re, im, k, inverse)
                want = spec.fft_q15(re, im, inverse=inverse)
                assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), (k, inverse)


def test_fft_rejects_bad_sizes(lib):
    z = np.zeros(12, dtype=np.int16)
    for k, tw_k in ((6, 8), (1, 2), (8, 4), (4, 12)):
        table = np.zeros(16, dtype=np.int16)
        cfg = FftCfg(k, tw_k, table.ctypes.data_as(P16))
        assert lib.bl_fft_q15(z.ctypes.data_as(P16), C.byref(cfg), False) == BL_ERR_FFT_SIZE
    assert lib.bl_fft_q15(_null(P16), Fft(4).ref, False) == BL_ERR_ARG


# --- random layers -----------------------------------------------------------------------------------------
def _fracs(rng, k=1):
    """Random but plausible fraction bits (shift may be negative, zero or large)."""
    in_frac = int(rng.integers(4, 12))
    weight_frac = int(rng.integers(6, 14))
    out_frac = int(rng.integers(in_frac + weight_frac - 22, in_frac + weight_frac + 3))
    return in_frac, weight_frac, out_frac


def _rand16(rng, shape, lim=32768):
    return rng.integers(-lim, lim, size=shape).astype(np.int64)


def _linear_layer(rng, in_f, out_f, k, bits, with_bias, fft):
    in_frac, weight_frac, out_frac = _fracs(rng)
    lim = 128 if bits == 8 else 32768
    wshape = (out_f, in_f) if k == 1 else (-(-out_f // k), -(-in_f // k), k)
    tensors = {"w": _rand16(rng, wshape, lim).astype(np.int8 if bits == 8 else np.int16)}
    layer = {
        "name": "fc",
        "op": "linear",
        "block": k,
        "in_features": in_f,
        "out_features": out_f,
        "weight": "w",
        "weight_bits": bits,
        "in_frac": in_frac,
        "weight_frac": weight_frac,
        "out_frac": out_frac,
    }
    if with_bias:
        tensors["b"] = rng.integers(-(2**31), 2**31, size=out_f).astype(np.int32)
        layer["bias"] = "b"
    if fft:
        _add_fft_fields(rng, layer, tensors, wshape, with_bias, out_f)
    return layer, tensors


def _add_fft_fields(rng, layer, tensors, wshape, with_bias, rows):
    k = layer["block"]
    tensors["s"] = _rand16(rng, wshape).astype(np.int16)
    layer["spectra"] = "s"
    layer["spectra_frac"] = int(rng.integers(8, 16))
    lo = layer["in_frac"] + layer["spectra_frac"] - int(math.log2(k))
    layer["spectrum_frac"] = int(rng.integers(lo - 18, lo + 3))
    layer["out_frac"] = int(rng.integers(layer["spectrum_frac"] - 4, layer["spectrum_frac"] + 6))
    if with_bias:
        tensors["bo"] = rng.integers(-40000, 40000, size=rows).astype(np.int32)
        layer["bias_out"] = "bo"


def _bias_ptr(layer, tensors, key):
    if key in layer:
        arr, ptr = _buf(tensors[layer[key]], np.int32)
        return arr, ptr
    return None, _null(P32)


def c_linear(lib, layer, tensors, x, path, chunk=None):
    """One sample x[in_features] through the C kernels, in units of work (row ranges / blocks)."""
    k, in_f, out_f = layer["block"], layer["in_features"], layer["out_features"]
    xa, xp = _buf(x, np.int16)
    y = np.zeros(out_f, dtype=np.int16)
    yp = y.ctypes.data_as(P16)
    if path == "fft" and k > 1:
        f = Fft(k)
        q, p = -(-in_f // k), -(-out_f // k)
        xs = np.zeros(q * k, dtype=np.int16)
        work = np.zeros(2 * k, dtype=np.int16)
        wp = work.ctypes.data_as(P16)
        for j0 in range(0, q, 2):  # units of two input blocks
            assert (
                lib.bl_linear_fft_input_q15(xp, in_f, f.ref, xs.ctypes.data_as(P16), j0, min(q, j0 + 2), wp)
                == 0
            )
        sa, sp = _buf(tensors[layer["spectra"]], np.int16)
        _, bp = _bias_ptr(layer, tensors, "bias_out")
        shift_z = layer["in_frac"] + layer["spectra_frac"] - int(math.log2(k)) - layer["spectrum_frac"]
        shift_out = layer["spectrum_frac"] - layer["out_frac"]
        for i0 in range(0, p, 2):  # units of two block rows (a range call, as codegen's merged tasks)
            st_ = lib.bl_linear_fft_block_q15(
                xs.ctypes.data_as(P16),
                in_f,
                sp,
                f.ref,
                shift_z,
                shift_out,
                bp,
                yp,
                out_f,
                i0,
                min(p, i0 + 2),
                wp,
            )
            assert st_ == BL_OK
        return y
    w = tensors[layer["weight"]]
    w8 = w.dtype == np.int8
    wa, wp = _buf(w, np.int8 if w8 else np.int16)
    _, bp = _bias_ptr(layer, tensors, "bias")
    shift = layer["in_frac"] + layer["weight_frac"] - layer["out_frac"]
    step = chunk or max(1, k)
    for r0 in range(0, out_f, step):
        r1 = min(out_f, r0 + step)
        if k == 1:
            fn = lib.bl_linear_dense_w8 if w8 else lib.bl_linear_dense_w16
            st_ = fn(xp, in_f, wp, bp, shift, yp, out_f, r0, r1)
        else:
            fn = lib.bl_linear_circ_w8 if w8 else lib.bl_linear_circ_w16
            st_ = fn(xp, in_f, wp, k, bp, shift, yp, out_f, r0, r1)
        assert st_ == BL_OK
    return y


@pytest.mark.parametrize("seed", range(12))
def test_linear_layers_match_spec(lib, seed):
    rng = np.random.default_rng(seed)
    k = [1, 2, 4, 8, 16][seed % 5]
    in_f = int(rng.integers(1, 70))
    out_f = int(rng.integers(1, 40))
    bits = 8 if seed % 3 == 0 else 16
    for fft in (False, True) if k > 1 else (False,):
        layer, tensors = _linear_layer(rng, in_f, out_f, k, bits, with_bias=seed % 4 != 1, fft=fft)
        # inputs: realistic small values for some rows, full range (wrapping accumulators) for others
        x = np.concatenate([_rand16(rng, (2, in_f), 3000), _rand16(rng, (2, in_f))])
        path = "fft" if fft else "direct"
        want = spec.linear_or_conv(layer, tensors, x, path)
        for n in range(len(x)):
            got = c_linear(lib, layer, tensors, x[n], path, chunk=int(rng.integers(1, 7)))
            assert np.array_equal(got, want[n]), (seed, path, n)


def _conv_layer(rng, dims, in_ch, out_ch, k, bits, fft, with_bias=True):
    kernel = [int(rng.integers(1, 4)), int(rng.integers(1, 6))] if dims == 2 else [int(rng.integers(1, 6))]
    stride = [int(rng.integers(1, 3)) for _ in kernel]
    padding = [int(rng.integers(0, kk)) for kk in kernel]  # padding < kernel, as torch allows more but rare
    in_frac, weight_frac, out_frac = _fracs(rng)
    lim = 128 if bits == 8 else 32768
    wshape = (out_ch, in_ch, *kernel) if k == 1 else (-(-out_ch // k), -(-in_ch // k), k, *kernel)
    tensors = {"w": _rand16(rng, wshape, lim).astype(np.int8 if bits == 8 else np.int16)}
    layer = {
        "name": "conv",
        "op": f"conv{dims}d",
        "block": k,
        "in_channels": in_ch,
        "out_channels": out_ch,
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "weight": "w",
        "weight_bits": bits,
        "in_frac": in_frac,
        "weight_frac": weight_frac,
        "out_frac": out_frac,
    }
    if with_bias:
        tensors["b"] = rng.integers(-(2**31), 2**31, size=out_ch).astype(np.int32)
        layer["bias"] = "b"
    if fft:
        _add_fft_fields(rng, layer, tensors, wshape, with_bias, out_ch)
    return layer, tensors


def _geom(layer, in_shape):
    """bl_conv_geom for a conv layer on one sample of shape (C, H, W) or (C, L)."""
    if layer["op"] == "conv1d":
        c, h, w = in_shape[0], 1, in_shape[1]
        (kh, kw), (sh, sw), (ph, pw) = (
            (1, *layer["kernel_size"]),
            (1, *layer["stride"]),
            (0, *layer["padding"]),
        )
    else:
        c, h, w = in_shape
        (kh, kw), (sh, sw), (ph, pw) = layer["kernel_size"], layer["stride"], layer["padding"]
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    return ConvGeom(c, h, w, layer["out_channels"], oh, ow, kh, kw, sh, sw, ph, pw)


def c_conv(lib, layer, tensors, x, path, rng):
    """One sample through the C conv kernels, in units of work of random size."""
    g = _geom(layer, x.shape)
    assert lib.bl_conv_geom_check(C.byref(g)) == BL_OK
    k = layer["block"]
    xa, xp = _buf(x, np.int16)
    y = np.zeros((g.out_ch, g.out_h, g.out_w), dtype=np.int16)
    yp = y.ctypes.data_as(P16)
    row_step = int(rng.integers(1, g.out_h + 1))
    if path == "fft" and k > 1:
        f = Fft(k)
        q, p = -(-g.in_ch // k), -(-g.out_ch // k)
        xs = np.zeros((q * k, g.in_h, g.in_w), dtype=np.int16)
        work = np.zeros(2 * k, dtype=np.int16)
        wp = work.ctypes.data_as(P16)
        for y0 in range(0, g.in_h, 2):
            st_ = lib.bl_conv_fft_input_q15(
                xp, C.byref(g), f.ref, xs.ctypes.data_as(P16), y0, min(g.in_h, y0 + 2), wp
            )
            assert st_ == BL_OK
        sa, sp = _buf(tensors[layer["spectra"]], np.int16)
        _, bp = _bias_ptr(layer, tensors, "bias_out")
        shift_z = layer["in_frac"] + layer["spectra_frac"] - int(math.log2(k)) - layer["spectrum_frac"]
        shift_out = layer["spectrum_frac"] - layer["out_frac"]
        for i in range(p):
            for oy0 in range(0, g.out_h, row_step):
                st_ = lib.bl_conv_fft_block_q15(
                    xs.ctypes.data_as(P16), C.byref(g), sp, f.ref, shift_z, shift_out, bp, yp, i, oy0,
                    min(g.out_h, oy0 + row_step), wp,
                )  # fmt: skip
                assert st_ == BL_OK
    else:
        w = tensors[layer["weight"]]
        w8 = w.dtype == np.int8
        wa, wptr = _buf(w, np.int8 if w8 else np.int16)
        _, bp = _bias_ptr(layer, tensors, "bias")
        shift = layer["in_frac"] + layer["weight_frac"] - layer["out_frac"]
        ch_step = max(1, k)
        for o0 in range(0, g.out_ch, ch_step):
            o1 = min(g.out_ch, o0 + ch_step)
            for oy0 in range(0, g.out_h, row_step):
                oy1 = min(g.out_h, oy0 + row_step)
                if k == 1:
                    fn = lib.bl_conv_dense_w8 if w8 else lib.bl_conv_dense_w16
                    st_ = fn(xp, C.byref(g), wptr, bp, shift, yp, o0, o1, oy0, oy1)
                else:
                    fn = lib.bl_conv_circ_w8 if w8 else lib.bl_conv_circ_w16
                    st_ = fn(xp, C.byref(g), wptr, k, bp, shift, yp, o0, o1, oy0, oy1)
                assert st_ == BL_OK
    return y[:, 0, :] if layer["op"] == "conv1d" else y


@pytest.mark.parametrize("seed", range(16))
def test_conv_layers_match_spec(lib, seed):
    rng = np.random.default_rng(100 + seed)
    dims = 1 + seed % 2
    k = [1, 2, 4, 8][seed % 4 if seed < 8 else (seed // 2) % 4]
    in_ch, out_ch = int(rng.integers(1, 11)), int(rng.integers(1, 11))
    bits = 8 if seed % 5 == 0 else 16
    shape = (
        (in_ch, int(rng.integers(3, 8)), int(rng.integers(5, 10)))
        if dims == 2
        else (in_ch, int(rng.integers(5, 20)))
    )
    for fft in (False, True) if k > 1 else (False,):
        layer, tensors = _conv_layer(rng, dims, in_ch, out_ch, k, bits, fft, with_bias=seed % 3 != 2)
        x = np.concatenate([_rand16(rng, (1, *shape), 2000), _rand16(rng, (1, *shape))])
        path = "fft" if fft else "direct"
        want = spec.linear_or_conv(layer, tensors, x, path)
        for n in range(len(x)):
            got = c_conv(lib, layer, tensors, x[n], path, rng)
            assert np.array_equal(got, want[n]), (seed, path, n)


@pytest.mark.parametrize("k", [1, 4])
def test_conv_padding_wider_than_kernel_matches_spec(lib, k):
    # windows lying wholly in the zero padding (pad >= kernel): the kernels' live tap ranges must be empty
    rng = np.random.default_rng(7 + k)
    for fft in (False, True) if k > 1 else (False,):
        layer, tensors = _conv_layer(rng, 2, 5, 6, k, 16, fft)
        layer["kernel_size"], layer["stride"], layer["padding"] = [2, 3], [1, 2], [3, 4]
        wshape = (6, 5, 2, 3) if k == 1 else (2, 2, k, 2, 3)
        tensors["w"] = _rand16(rng, wshape, 32768).astype(np.int16)
        if fft:
            _add_fft_fields(rng, layer, tensors, wshape, True, 6)
        x = _rand16(rng, (2, 5, 4, 5), 3000)
        path = "fft" if fft else "direct"
        want = spec.linear_or_conv(layer, tensors, x, path)
        for n in range(len(x)):
            assert np.array_equal(c_conv(lib, layer, tensors, x[n], path, rng), want[n]), (path, n)


@pytest.mark.parametrize(
    "case",
    [
        # (in_ch, out_ch, kernel, stride, padding, k, bits, shape, shift, bias scale, channels per call)
        (1, 8, [3, 3], [1, 1], [1, 1], 1, 16, (8, 8), 15, 2**20, 8),  # the digits CNN's conv1
        (8, 16, [3, 3], [1, 1], [1, 1], 1, 16, (4, 4), 15, 2**20, 8),  # its conv2
        (8, 16, [3, 3], [1, 1], [1, 1], 8, 16, (4, 4), 9, 2**20, 8),  # circulant conv2
        (20, 7, [3, 3], [2, 1], [1, 2], 1, 8, (5, 6), 12, 2**31, 7),  # slot groups of 3 (L = 180), any bias
        (60, 3, [3, 3], [1, 1], [1, 1], 4, 16, (3, 3), 14, 2**27, 3),  # L = 540: beyond one area
        (5, 40, [1, 5], [1, 2], [0, 2], 1, 16, (1, 11), 3, 2**31, 40),  # conv1d-like, odd L, 40 channels
        (3, 33, [2, 3], [1, 1], [1, 1], 1, 16, (4, 4), 20, 2**27, 33),  # more channels than a MAC loop takes
    ],
)
def test_conv_many_channels_per_call_saturating_match_spec(lib, case):
    """Direct conv calls over many output channels at once (the lea backend's resident route: weight slot
    groups, channel counts beyond its MAC loop, vectors beyond one LEA-RAM area, odd lengths), with
    full-scale weights and inputs whose signs agree so that dot products reach and pass the int32 bounds
    (the lea MAC saturates there: "Exact MACs"), shifts outside 1..15 and biases beyond 2^28."""
    in_ch, out_ch, kernel, stride, padding, k, bits, shape, shift, bscale, per_call = case
    rng = np.random.default_rng(in_ch * 100 + out_ch)
    lim = 128 if bits == 8 else 32768
    wshape = (out_ch, in_ch, *kernel) if k == 1 else (-(-out_ch // k), -(-in_ch // k), k, *kernel)
    w = np.where(rng.random(wshape) < 0.85, lim - 1, -lim).astype(np.int8 if bits == 8 else np.int16)
    w[..., 0] = rng.integers(-lim, lim, size=w[..., 0].shape)  # some ordinary values too
    in_frac, weight_frac = 8, 10
    layer = {
        "name": "conv", "op": "conv2d", "block": k, "in_channels": in_ch, "out_channels": out_ch,
        "kernel_size": kernel, "stride": stride, "padding": padding, "weight": "w", "weight_bits": bits,
        "in_frac": in_frac, "weight_frac": weight_frac, "out_frac": in_frac + weight_frac - shift,
        "bias": "b",
    }  # fmt: skip
    tensors = {"w": w, "b": rng.integers(-bscale, bscale, size=out_ch).astype(np.int32)}
    x = np.stack(
        [
            np.where(rng.random((in_ch, *shape)) < 0.9, 32767, -32768),  # mostly full-scale positive
            rng.integers(-32768, 32768, size=(in_ch, *shape)),
            np.full((in_ch, *shape), -32768),
        ]
    ).astype(np.int64)
    want = spec.linear_or_conv(layer, tensors, x, "direct")
    g = _geom(layer, x[0].shape)
    assert lib.bl_conv_geom_check(C.byref(g)) == BL_OK
    wa, wptr = _buf(w, np.int8 if bits == 8 else np.int16)
    _, bp = _bias_ptr(layer, tensors, "bias")
    for n in range(len(x)):
        xa, xp = _buf(x[n], np.int16)
        y = np.zeros((g.out_ch, g.out_h, g.out_w), dtype=np.int16)
        yp = y.ctypes.data_as(P16)
        for o0 in range(0, out_ch, per_call):
            o1 = min(out_ch, o0 + per_call)
            for oy0, oy1 in ((0, 1), (1, g.out_h)) if g.out_h > 1 else ((0, 1),):
                if k == 1:
                    fn = lib.bl_conv_dense_w8 if bits == 8 else lib.bl_conv_dense_w16
                    assert fn(xp, C.byref(g), wptr, bp, shift, yp, o0, o1, oy0, oy1) == BL_OK
                else:
                    fn = lib.bl_conv_circ_w8 if bits == 8 else lib.bl_conv_circ_w16
                    assert fn(xp, C.byref(g), wptr, k, bp, shift, yp, o0, o1, oy0, oy1) == BL_OK
        assert np.array_equal(y, want[n]), (case, n)
    if bits == 8:  # int8 weights stay below the bound: the case is there for its shapes
        return
    # the precondition: some dot products really are beyond what one IQ31 MAC result can hold
    wd = spec._dense_weight(layer, tensors).reshape(out_ch, in_ch, -1).astype(np.int64)
    cols, _ = spec._im2col(x[:1], kernel, stride, padding)
    assert np.abs(np.einsum("nctl,oct->nol", cols, wd)).max() >= 2**30


def c_pool(lib, layer, x, rng):
    one_d = layer["op"].endswith("1d")
    if one_d:
        c, h, w = x.shape[0], 1, x.shape[1]
        (kh, kw), (sh, sw) = (1, layer["kernel_size"][0]), (1, layer["stride"][0])
    else:
        (c, h, w), (kh, kw), (sh, sw) = x.shape, layer["kernel_size"], layer["stride"]
    g = PoolGeom(c, h, w, (h - kh) // sh + 1, (w - kw) // sw + 1, kh, kw, sh, sw)
    y = np.zeros((c, g.out_h, g.out_w), dtype=np.int16)
    xa, xp = _buf(x, np.int16)
    fn = lib.bl_maxpool_q15 if layer["op"].startswith("max") else lib.bl_avgpool_q15
    c0 = 0
    while c0 < c:
        c1 = min(c, c0 + int(rng.integers(1, 4)))
        assert fn(xp, C.byref(g), y.ctypes.data_as(P16), c0, c1) == BL_OK
        c0 = c1
    return y[:, 0, :] if one_d else y


@pytest.mark.parametrize("op", ["maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d"])
def test_pool_and_relu_match_spec(lib, op):
    rng = np.random.default_rng(7)
    for _ in range(10):
        one_d = op.endswith("1d")
        ks = [int(rng.integers(1, 4))] if one_d else [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
        stv = [int(rng.integers(1, 4)) for _ in ks]
        layer = {"name": "p", "op": op, "kernel_size": ks, "stride": stv}
        shape = (int(rng.integers(1, 6)), *(int(rng.integers(kk, kk + 7)) for kk in ks))
        x = _rand16(rng, (3, *shape))
        x[0] = rng.choice([-32768, 32767, -1, 1], size=shape)  # extremes and ±1 (negative rounding)
        want = spec._pool(x, layer)
        for n in range(len(x)):
            assert np.array_equal(c_pool(lib, layer, x[n], rng), want[n])
    xr = _rand16(rng, 101)
    xa, xp = _buf(xr, np.int16)
    assert lib.bl_relu_q15(xp, xp, xa.size) == BL_OK  # in place
    assert np.array_equal(xa, np.maximum(xr, 0))


def test_bad_arguments_are_refused(lib):
    x, xp = _buf(np.zeros(64), np.int16)
    y = np.zeros(64, dtype=np.int16)
    yp = y.ctypes.data_as(P16)
    w, wp = _buf(np.zeros(64 * 64), np.int16)
    assert lib.bl_linear_dense_w16(xp, 8, wp, _null(P32), 0, yp, 8, 3, 3) == BL_ERR_ARG  # empty range
    assert lib.bl_linear_dense_w16(xp, 8, wp, _null(P32), 0, yp, 8, 0, 9) == BL_ERR_ARG  # past the end
    assert lib.bl_linear_dense_w16(_null(P16), 8, wp, _null(P32), 0, yp, 8, 0, 8) == BL_ERR_ARG
    assert lib.bl_linear_circ_w16(xp, 8, wp, 0, _null(P32), 0, yp, 8, 0, 8) == BL_ERR_SHAPE
    work = np.zeros(32, dtype=np.int16)
    for i0, i1 in ((2, 3), (1, 1), (0, 3)):  # past the last block row (p = 2), empty, running past it
        assert (
            lib.bl_linear_fft_block_q15(
                xp, 8, wp, Fft(4).ref, 0, 0, _null(P32), yp, 8, i0, i1, work.ctypes.data_as(P16)
            )
            == BL_ERR_ARG
        )
    g = ConvGeom(2, 5, 5, 3, 5, 4, 3, 3, 1, 1, 1, 1)  # out_w should be 5
    assert lib.bl_conv_geom_check(C.byref(g)) == BL_ERR_SHAPE
    assert lib.bl_conv_dense_w16(xp, C.byref(g), wp, _null(P32), 0, yp, 0, 1, 0, 1) == BL_ERR_SHAPE
    g.out_w = 5
    assert lib.bl_conv_dense_w16(xp, C.byref(g), wp, _null(P32), 0, yp, 0, 4, 0, 1) == BL_ERR_ARG
    pg = PoolGeom(2, 4, 4, 2, 3, 2, 2, 2, 2)
    assert lib.bl_maxpool_q15(xp, C.byref(pg), yp, 0, 2) == BL_ERR_SHAPE


# --- whole artifacts ---------------------------------------------------------------------------------------
def _artifact(kind: str, bits: int, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "mlp":
        net = nn.Sequential(
            nn.Flatten(),
            BlockCirculantLinear(36, 24, 4),
            nn.ReLU(),
            nn.Linear(24, 20),
            nn.ReLU(),
            BlockCirculantLinear(20, 7, 8),
        )
        shape = (1, 6, 6)
    elif kind == "cnn2d":
        net = nn.Sequential(
            nn.Conv2d(2, 6, 3, stride=1, padding=1),
            nn.ReLU(),
            nn.AvgPool2d(2),
            BlockCirculantConv(2, 6, 12, (3, 2), 4, (2, 1), (1, 1)),
            nn.ReLU(),
            nn.MaxPool2d((1, 2)),
            nn.Flatten(),
            BlockCirculantLinear(48, 5, 8),
        )
        shape = (2, 7, 9)
    else:
        net = nn.Sequential(
            BlockCirculantConv(1, 3, 8, (5,), 2, (2,), (2,)),
            nn.ReLU(),
            nn.MaxPool1d(3, 2),
            nn.Conv1d(8, 4, 3, padding=1),
            nn.AvgPool1d(2),
            nn.Flatten(),
            nn.Linear(12, 6),
        )
        shape = (3, 28)
    x = np.random.default_rng(seed).normal(size=(24, *shape)).astype(np.float32)
    num_classes = net[-1].out_features
    art = to_artifact(
        net.eval(), x, weight_bits=bits, input_shape=shape, num_classes=num_classes,
        normalisation={"mean": 0.0, "std": 1.0},
    )  # fmt: skip
    return art, x


def c_network(lib, art, xq, paths, rng):
    """Run one sample through the C kernels layer by layer (no Python arithmetic), returning every output."""
    outs = []
    x = np.asarray(xq, dtype=np.int64)
    for layer in art.layers:
        op = layer["op"]
        path = paths.get(layer["name"], layer.get("path", "direct"))
        if op == "linear":
            x = c_linear(lib, layer, art.tensors, x, path).astype(np.int64)
        elif op in ("conv1d", "conv2d"):
            x = c_conv(lib, layer, art.tensors, x, path, rng).astype(np.int64)
        elif op == "relu":
            xa, xp = _buf(x, np.int16)
            assert lib.bl_relu_q15(xp, xp, xa.size) == BL_OK
            x = xa.astype(np.int64)
        elif op.startswith(("maxpool", "avgpool")):
            x = c_pool(lib, layer, x, rng).astype(np.int64)
        elif op == "flatten":
            x = x.reshape(-1)
        outs.append(x)
    return outs


@pytest.mark.parametrize("kind", ["mlp", "cnn2d", "cnn1d"])
@pytest.mark.parametrize("bits", [16, 8])
def test_whole_artifacts_layer_by_layer(lib, kind, bits):
    art, x = _artifact(kind, bits)
    xq = spec.quantize_input(art, x[:6])
    rng = np.random.default_rng(1)
    for path in ("fft", "direct"):
        paths = {layer["name"]: path for layer in art.weight_layers()}
        collected: list = []
        logits = spec.integer_inference_q(art, xq, paths, collect=collected)
        assert np.abs(logits).max() > 0  # a non-trivial network: outputs are not all zero
        for n in range(len(xq)):
            outs = c_network(lib, art, xq[n], paths, rng)
            assert len(outs) == len(collected)
            for li, (got, want) in enumerate(zip(outs, collected, strict=True)):
                assert np.array_equal(got, want[n]), (kind, bits, path, n, art.layers[li]["name"])


# --- sanitizers and cross compilers ------------------------------------------------------------------------
def _c_array(name, ctype, values):
    return f"static {ctype} {name}[] = {{{', '.join(str(int(v)) for v in np.ravel(values))}}};\n"


def test_kernels_under_ubsan_and_asan(tmp_path):
    """A small C driver (FFT extremes, linear FFT block, padded strided conv on both paths, pools) built with
    -fsanitize=undefined,address; every output checked against the spec; any sanitizer report fails."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    rng = np.random.default_rng(5)
    k = 8
    fft_in = np.tile([-32768, 32767, 32767, -32768], 2 * k // 4)
    lin, lt = _linear_layer(rng, 13, 11, 4, 16, True, True)
    conv, ct = _conv_layer(rng, 2, 5, 6, 4, 16, True)
    conv["kernel_size"], conv["stride"], conv["padding"] = [3, 3], [2, 1], [1, 2]
    ct["w"] = _rand16(rng, (2, 2, 4, 3, 3)).astype(np.int16)
    ct["s"] = _rand16(rng, (2, 2, 4, 3, 3)).astype(np.int16)
    xl = _rand16(rng, 13)
    xc = _rand16(rng, (5, 6, 7))
    g = _geom(conv, xc.shape)
    sz_l = lin["in_frac"] + lin["spectra_frac"] - 2 - lin["spectrum_frac"]
    sz_c = conv["in_frac"] + conv["spectra_frac"] - 2 - conv["spectrum_frac"]
    so_l, so_c = lin["spectrum_frac"] - lin["out_frac"], conv["spectrum_frac"] - conv["out_frac"]
    sd_c = conv["in_frac"] + conv["weight_frac"] - conv["out_frac"]
    geom = ", ".join(str(getattr(g, n)) for n, _ in ConvGeom._fields_)
    src = (
        '#include <stdio.h>\n#include "bl_kernels.h"\n'
        + _c_array("tw8", "const int16_t", twiddle_table(8))
        + _c_array("tw4", "const int16_t", twiddle_table(4))
        + _c_array("tw_big", "const int16_t", twiddle_table(1024))
        + _c_array("z", "int16_t", fft_in)
        + _c_array("xl", "const int16_t", xl)
        + _c_array("sl", "const int16_t", lt["s"])
        + _c_array("bl", "const int32_t", lt["bo"])
        + _c_array("xc", "const int16_t", xc)
        + _c_array("wc", "const int16_t", ct["w"])
        + _c_array("sc", "const int16_t", ct["s"])
        + _c_array("bc", "const int32_t", ct["b"])
        + _c_array("boc", "const int32_t", ct["bo"])
        + f"""
static void put(const int16_t *v, unsigned n) {{
  for (unsigned e = 0; e < n; e++) printf("%d ", v[e]);
  printf("\\n");
}}
int main(void) {{
  bl_fft_cfg f8 = {{8, 8, tw8}}, f4 = {{4, 4, tw4}};
  int16_t work[8], xs[16], yl[11], xsc[8 * 42], yc[6 * {g.out_h * g.out_w}], yd[6 * {g.out_h * g.out_w}];
  int16_t yp[5 * 3 * 3];
  int bad = 0;
  bad |= bl_fft_q15(z, &f8, 0); put(z, 16);
  bad |= bl_fft_q15(z, &f8, 1); put(z, 16);
  bad |= bl_linear_fft_input_q15(xl, 13, &f4, xs, 0, 4, work);
  for (uint16_t i = 0; i < 3; i++)
    bad |= bl_linear_fft_block_q15(xs, 13, sl, &f4, {sz_l}, {so_l}, bl, yl, 11, i, i + 1, work);
  put(yl, 11);
  bl_conv_geom g = {{{geom}}};
  bad |= bl_conv_fft_input_q15(xc, &g, &f4, xsc, 0, 6, work);
  for (uint16_t i = 0; i < 2; i++)
    bad |= bl_conv_fft_block_q15(xsc, &g, sc, &f4, {sz_c}, {so_c}, boc, yc, i, 0, {g.out_h}, work);
  put(yc, sizeof yc / 2);
  bad |= bl_conv_circ_w16(xc, &g, wc, 4, bc, {sd_c}, yd, 0, 6, 0, {g.out_h});
  put(yd, sizeof yd / 2);
  bl_pool_geom pg = {{5, 6, 7, 3, 3, 2, 3, 2, 2}};
  bad |= bl_avgpool_q15(xc, &pg, yp, 0, 5); put(yp, 45);
  bad |= bl_maxpool_q15(xc, &pg, yp, 0, 5); put(yp, 45);
  /* adversarial FFT inputs for every length up to 1024 (the butterfly's 32-bit sums must not overflow) */
  static int16_t zz[2048];
  for (uint16_t k = 2; k <= 1024; k *= 2) {{
    bl_fft_cfg fk = {{k, 1024, tw_big}};
    for (int pat = 0; pat < 4; pat++) {{
      for (uint16_t e = 0; e < 2 * k; e++) {{
        static const int16_t ext[4] = {{-32768, 32767, -32768, -32768}};
        zz[e] = pat == 0 ? -32768 : pat == 1 ? ext[e % 4] : pat == 2 ? (int16_t)((e & 2) ? 32767 : -32768)
                                                                      : (int16_t)(e * 7919u);
      }}
      bad |= bl_fft_q15(zz, &fk, pat & 1);
      bad |= bl_fft_q15(zz, &fk, !(pat & 1));
    }}
  }}
  return bad;
}}
"""
    )
    (tmp_path / "drv.c").write_text(src)
    exe = tmp_path / "drv"
    cmd = ["gcc", *CFLAGS, "-Wno-unused-parameter", "-O1", "-g", "-fsanitize=undefined,address",
           "-fno-sanitize-recover=all", f"-I{INCLUDE}", "-o", str(exe), str(tmp_path / "drv.c"),
           *map(str, SOURCES)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr
    lines = [np.array(ln.split(), dtype=np.int64) for ln in run.stdout.strip().splitlines()]
    zr, zi = spec.fft_q15(fft_in[0::2], fft_in[1::2])
    assert np.array_equal(lines[0], np.stack([zr, zi], 1).ravel())
    zr, zi = spec.fft_q15(zr, zi, inverse=True)
    assert np.array_equal(lines[1], np.stack([zr, zi], 1).ravel())
    assert np.array_equal(lines[2], spec.linear_or_conv(lin, lt, xl[None], "fft")[0])
    assert np.array_equal(lines[3], spec.linear_or_conv(conv, ct, xc[None], "fft")[0].ravel())
    assert np.array_equal(lines[4], spec.linear_or_conv(conv, ct, xc[None], "direct")[0].ravel())
    pool = spec._pool
    pl = {"kernel_size": [2, 3], "stride": [2, 2]}
    assert np.array_equal(lines[5], pool(xc[None], {**pl, "op": "avgpool2d"})[0].ravel())
    assert np.array_equal(lines[6], pool(xc[None], {**pl, "op": "maxpool2d"})[0].ravel())


@pytest.mark.parametrize(
    "compiler",
    [
        ["clang", "--target=msp430", "-D__MSP430FR5994__"],
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"],
    ],
    ids=["msp430-clang", "cortex-m4-gcc"],
)
def test_kernels_cross_compile_warning_free(tmp_path, compiler):
    if shutil.which(compiler[0]) is None:
        pytest.skip(f"{compiler[0]} is not installed (scripts/setup.sh installs it)")
    for src in SOURCES:
        obj = tmp_path / (src.stem + ".o")
        cmd = [*compiler, *CFLAGS, "-O2", f"-I{INCLUDE}", "-c", str(src), "-o", str(obj)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        assert run.returncode == 0, f"{' '.join(cmd)}\n{run.stderr}"
        assert obj.stat().st_size > 0


# --- units of work (FLEX): a call writes exactly its unit, never its inputs, and is idempotent --------------
def _only_unit_written(call, out: np.ndarray, unit_mask: np.ndarray, inputs: list[np.ndarray]):
    before_inputs = [a.copy() for a in inputs]
    out[...] = 12345
    assert call() == BL_OK
    first = out.copy()
    assert np.all(first[~unit_mask] == 12345), "wrote outside its unit of work"
    assert call() == BL_OK  # re-run after a (simulated) power failure: same result
    assert np.array_equal(out, first)
    assert all(np.array_equal(a, b) for a, b in zip(inputs, before_inputs, strict=True)), "wrote its inputs"
    return first


def test_units_of_work_write_only_their_outputs(lib):
    rng = np.random.default_rng(11)
    k = 4
    layer, t = _linear_layer(rng, 13, 11, k, 16, True, True)
    x, xp = _buf(_rand16(rng, 13, 3000), np.int16)
    f = Fft(k)
    work = np.zeros(2 * k, dtype=np.int16)
    wp = work.ctypes.data_as(P16)
    xs = np.zeros(16, dtype=np.int16)
    mask = np.zeros(16, dtype=bool)
    mask[4:12] = True
    _only_unit_written(
        lambda: lib.bl_linear_fft_input_q15(xp, 13, f.ref, xs.ctypes.data_as(P16), 1, 3, wp), xs, mask, [x]
    )
    lib.bl_linear_fft_input_q15(xp, 13, f.ref, xs.ctypes.data_as(P16), 0, 4, wp)
    s, sp = _buf(t["s"], np.int16)
    bo, bop = _buf(t["bo"], np.int32)
    y = np.zeros(11, dtype=np.int16)
    sz = layer["in_frac"] + layer["spectra_frac"] - 2 - layer["spectrum_frac"]
    so = layer["spectrum_frac"] - layer["out_frac"]
    for i in range(3):
        mask = np.zeros(11, dtype=bool)
        mask[i * k : i * k + k] = True
        _only_unit_written(
            lambda i=i: lib.bl_linear_fft_block_q15(
                xs.ctypes.data_as(P16), 13, sp, f.ref, sz, so, bop, y.ctypes.data_as(P16), 11, i, i + 1, wp
            ),
            y,
            mask,
            [xs, s, bo],
        )
    w, wptr = _buf(t["w"], np.int16)
    mask = np.zeros(11, dtype=bool)
    mask[2:7] = True
    _only_unit_written(
        lambda: lib.bl_linear_circ_w16(xp, 13, wptr, k, _null(P32), 3, y.ctypes.data_as(P16), 11, 2, 7),
        y,
        mask,
        [x, w],
    )
    # conv: one output channel block x a row range, and input spectra of a row range
    conv, ct = _conv_layer(rng, 2, 5, 7, k, 16, True)
    xc, xcp = _buf(_rand16(rng, (5, 6, 7), 3000), np.int16)
    g = _geom(conv, xc.shape)
    xsc = np.zeros((8, 6, 7), dtype=np.int16)
    mask = np.zeros(xsc.shape, dtype=bool)
    mask[:, 2:5, :] = True
    _only_unit_written(
        lambda: lib.bl_conv_fft_input_q15(xcp, C.byref(g), f.ref, xsc.ctypes.data_as(P16), 2, 5, wp),
        xsc,
        mask,
        [xc],
    )
    lib.bl_conv_fft_input_q15(xcp, C.byref(g), f.ref, xsc.ctypes.data_as(P16), 0, 6, wp)
    sc, scp = _buf(ct["s"], np.int16)
    yc = np.zeros((7, g.out_h, g.out_w), dtype=np.int16)
    mask = np.zeros(yc.shape, dtype=bool)
    mask[4:7, 1 : min(3, g.out_h), :] = True
    sz = conv["in_frac"] + conv["spectra_frac"] - 2 - conv["spectrum_frac"]
    _only_unit_written(
        lambda: lib.bl_conv_fft_block_q15(
            xsc.ctypes.data_as(P16), C.byref(g), scp, f.ref, sz, 0, _null(P32), yc.ctypes.data_as(P16), 1, 1,
            min(3, g.out_h), wp,
        ),
        yc,
        mask,
        [xsc, sc],
    )  # fmt: skip
    wc, wcp = _buf(ct["w"], np.int16)
    mask = np.zeros(yc.shape, dtype=bool)
    mask[1:3, 0:1, :] = True
    _only_unit_written(
        lambda: lib.bl_conv_circ_w16(
            xcp, C.byref(g), wcp, k, _null(P32), 9, yc.ctypes.data_as(P16), 1, 3, 0, 1
        ),
        yc,
        mask,
        [xc, wc],
    )


class MacUnit(C.Structure):
    _fields_ = [(n, C.c_uint16) for n in ("o0", "o1", "oy0", "oy1", "ox0", "ox1", "c0", "c1")]


def c_mac_steps(lib, layer, tensors, x, rng):
    """One sample through bl_mac_step_*: random output units (channel, row and column ranges), each over
    random input-channel ranges with the partial alternating between two buffers; after every step the
    same step runs again (what FLEX does after a power failure inside it) and must change nothing."""
    if layer["op"] == "linear":
        g = ConvGeom(layer["in_features"], 1, 1, layer["out_features"], 1, 1, 1, 1, 1, 1, 0, 0)
        xx = x.reshape(-1, 1, 1)
    else:
        g = _geom(layer, x.shape)
        xx = x.reshape(x.shape[0], -1, x.shape[-1])
    w = tensors[layer["weight"]]
    w8 = w.dtype == np.int8
    wa, wptr = _buf(w, np.int8 if w8 else np.int16)
    xa, xp = _buf(xx, np.int16)
    _, bp = _bias_ptr(layer, tensors, "bias")
    shift = layer["in_frac"] + layer["weight_frac"] - layer["out_frac"]
    fn = lib.bl_mac_step_w8 if w8 else lib.bl_mac_step_w16
    n_out = g.out_ch * g.out_h * g.out_w
    y = np.zeros(n_out, dtype=np.int16)
    acc = [np.zeros(n_out, dtype=np.int32) for _ in range(2)]

    def cuts(n):
        pts = sorted(set(rng.integers(1, n, size=int(rng.integers(0, 4))).tolist())) if n > 1 else []
        return list(zip([0, *pts], [*pts, n], strict=True))

    for o0, o1 in cuts(g.out_ch):
        for oy0, oy1 in cuts(g.out_h):
            for ox0, ox1 in cuts(g.out_w):
                src = None
                for c0, c1 in cuts(g.in_ch):
                    dst = 1 - src if src is not None else 0
                    u = MacUnit(o0, o1, oy0, oy1, ox0, ox1, c0, c1)
                    ain = acc[src].ctypes.data_as(P32) if src is not None else _null(P32)
                    args = (
                        xp,
                        C.byref(g),
                        wptr,
                        layer["block"],
                        ain,
                        acc[dst].ctypes.data_as(P32),
                        bp,
                        shift,
                    )
                    assert fn(*args, y.ctypes.data_as(P16), C.byref(u)) == BL_OK
                    before = (acc[dst].copy(), y.copy())
                    assert fn(*args, y.ctypes.data_as(P16), C.byref(u)) == BL_OK  # re-run: idempotent
                    assert np.array_equal(before[0], acc[dst]) and np.array_equal(before[1], y)
                    src = dst
    if layer["op"] == "linear":
        return y
    return y.reshape(g.out_ch, g.out_w) if layer["op"] == "conv1d" else y.reshape(g.out_ch, g.out_h, g.out_w)


@pytest.mark.parametrize("seed", range(12))
def test_mac_steps_over_any_split_match_spec(lib, seed):
    """The resumable direct path (bl_mac_step_*) over random output units and input-channel ranges gives
    the spec's direct-path result bit for bit, for linear, conv1d and conv2d, dense and circulant, int16
    and int8 weights, and re-running any step changes nothing."""
    rng = np.random.default_rng(900 + seed)
    k = [1, 2, 4, 8][seed % 4]
    bits = 8 if seed % 3 == 0 else 16
    if seed % 3 == 2:
        in_f, out_f = int(rng.integers(1, 40)), int(rng.integers(1, 30))
        layer, tensors = _linear_layer(rng, in_f, out_f, k, bits, seed % 4 != 1, False)
        x = _rand16(rng, (2, in_f), 3000)
    else:
        dims = 1 + seed % 2
        in_ch, out_ch = int(rng.integers(1, 11)), int(rng.integers(1, 11))
        shape = (in_ch, int(rng.integers(3, 8)), int(rng.integers(5, 10))) if dims == 2 else (in_ch, 12)
        layer, tensors = _conv_layer(rng, dims, in_ch, out_ch, k, bits, False, with_bias=seed % 4 != 1)
        x = _rand16(rng, (2, *shape), 3000)
    want = spec.linear_or_conv(layer, tensors, x, "direct")
    for n in range(len(x)):
        assert np.array_equal(c_mac_steps(lib, layer, tensors, x[n], rng), want[n]), (seed, n)


def test_mac_step_refuses_bad_units_and_aliased_partials(lib):
    g = ConvGeom(4, 1, 1, 3, 1, 1, 1, 1, 1, 1, 0, 0)
    w = np.ones(12, dtype=np.int16)
    x = np.ones(4, dtype=np.int16)
    acc = np.zeros(3, dtype=np.int32)
    y = np.zeros(3, dtype=np.int16)
    xp, wp, ap, yp = (a.ctypes.data_as(t) for a, t in ((x, P16), (w, P16), (acc, P32), (y, P16)))

    def step(u, ain, aout, yy=yp):
        return lib.bl_mac_step_w16(xp, C.byref(g), wp, 1, ain, aout, _null(P32), 0, yy, C.byref(u))

    assert step(MacUnit(0, 3, 0, 1, 0, 1, 0, 2), _null(P32), ap) == BL_OK
    assert np.array_equal(acc, [2, 2, 2])
    assert step(MacUnit(0, 3, 0, 1, 0, 1, 2, 4), ap, ap) == BL_ERR_ARG  # reads and writes one buffer
    assert step(MacUnit(0, 3, 0, 1, 0, 1, 2, 4), _null(P32), _null(P32)) == BL_ERR_ARG  # c0 > 0: no partial
    assert step(MacUnit(0, 3, 0, 1, 0, 1, 2, 4), ap, _null(P32), _null(P16)) == BL_ERR_ARG  # last: no y
    assert step(MacUnit(0, 4, 0, 1, 0, 1, 0, 2), _null(P32), ap) == BL_ERR_ARG  # o1 > out_ch
    assert step(MacUnit(0, 3, 0, 1, 0, 1, 2, 2), ap, _null(P32)) == BL_ERR_ARG  # empty channel range
    assert step(MacUnit(0, 3, 0, 1, 0, 1, 2, 4), ap, _null(P32)) == BL_OK and np.array_equal(y, [4, 4, 4])
