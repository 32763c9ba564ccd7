"""The `lea` backend: the DSPLib software model (firmware/dsplib/model) against numpy and the numeric spec,
the lea kernels against the spec (every golden test of tests/test_kernels_ref.py, re-run on a lea build),
host `lea` firmware of the digits MLP and CNN bit-exact with the spec on every test sample, and the
MSP430FR5994 `lea` image linking with its LEA buffers inside the board's lea_ram region."""

from __future__ import annotations

import ctypes as C
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from batteryless import spec

ROOT = Path(__file__).resolve().parents[1]
DSPLIB = ROOT / "firmware" / "dsplib"
LEA_DIR = ROOT / "firmware" / "kernels" / "lea"
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC"]

pytestmark = pytest.mark.firmware

MSP_SUCCESS, MSP_SIZE_ERROR, MSP_LEA_INVALID_ADDRESS = 0, 1, 5
P16 = C.POINTER(C.c_int16)
P32 = C.POINTER(C.c_int32)

# Test-side buffers: some in LEA RAM (DSPLIB_DATA), one outside it.
HELPER_C = r"""
#include <stdint.h>
#include "DSPLib.h"
DSPLIB_DATA(t_fft, MSP_ALIGN_CMPLX_FFT_Q15(512))
int16_t t_fft[2 * 512];
DSPLIB_DATA(t_a, 4)
int16_t t_a[512];
DSPLIB_DATA(t_b, 4)
int16_t t_b[512];
DSPLIB_DATA(t_r, 4)
int32_t t_r[2];
__attribute__((aligned(4096))) int16_t t_plain[2 * 512];
extern char __stop_bl_learam[];
void *t_lea_end(void) { return __stop_bl_learam; }
"""


class FftParams(C.Structure):
    _fields_ = [("length", C.c_uint16), ("bitReverse", C.c_bool), ("twiddleTable", P16)]


class MacParams(C.Structure):
    _fields_ = [("length", C.c_uint16)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    d = tmp_path_factory.mktemp("dsplib")
    (d / "helper.c").write_text(HELPER_C)
    so = d / "libmodel.so"
    cmd = ["gcc", *CFLAGS, f"-I{DSPLIB}", "-o", str(so), str(d / "helper.c")]
    cmd += [str(p) for p in sorted((DSPLIB / "model").glob("*.c"))]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    lib = C.CDLL(str(so))
    for name in ("msp_cmplx_fft_fixed_q15", "msp_cmplx_ifft_fixed_q15"):
        getattr(lib, name).argtypes = [C.POINTER(FftParams), C.c_void_p]
        getattr(lib, name).restype = C.c_int
    for name in ("msp_mac_q15", "msp_cmplx_mac_q15"):
        getattr(lib, name).argtypes = [C.POINTER(MacParams), C.c_void_p, C.c_void_p, C.c_void_p]
        getattr(lib, name).restype = C.c_int
    return lib


def _buf(lib, name, n, ctype=C.c_int16):
    return (ctype * n).in_dll(lib, name)


def _addr(arr, byte_offset=0):
    return C.addressof(arr) + byte_offset


def _fft(lib, z, inverse=False, bit_reverse=True, name="t_fft", offset=0):
    """Run the model's complex FFT on interleaved int16 z (2N values) in buffer `name`; (status, result)."""
    n = len(z) // 2
    buf = _buf(lib, name, 2 * 512)
    start = offset // 2
    buf[start : start + 2 * n] = [int(v) for v in z]
    fn = lib.msp_cmplx_ifft_fixed_q15 if inverse else lib.msp_cmplx_fft_fixed_q15
    st = fn(C.byref(FftParams(n, bit_reverse, None)), _addr(buf, offset))
    return st, np.array(buf[start : start + 2 * n], dtype=np.int64)


# --- the twiddle ROM stand-in -------------------------------------------------------------------------------
def test_rom_table_is_the_spec_twiddles_for_every_length():
    text = (DSPLIB / "model" / "msp_model_rom.c").read_text()
    body = text[text.index("{", text.index("msp_model_twiddle_rom")) + 1 : text.rindex("}")]
    rom = np.array([int(t) for t in re.findall(r"-?\d+", body)], dtype=np.int64)
    assert rom.size == 512
    for n in (16, 32, 64, 128, 256, 512):
        wr, wi = spec.twiddles(n)
        step = 512 // n
        assert np.array_equal(rom[0::2][:256:step], wr), n
        assert np.array_equal(rom[1::2][:256:step], wi), n
        # inverse twiddles the model derives: (Wr, sat16(-Wi)) == the spec's q(+sin)
        _, wi_inv = spec.twiddles(n, inverse=True)
        assert np.array_equal(np.clip(-rom[1::2][:256:step], -32768, 32767), wi_inv), n


# --- msp_cmplx_fft_fixed_q15 / msp_cmplx_ifft_fixed_q15 ---------------------------------------------------
@pytest.mark.parametrize("n", [16, 32, 64, 128, 256, 512])
@pytest.mark.parametrize("inverse", [False, True])
def test_model_fft_is_the_spec_fft_bit_for_bit(model, n, inverse):
    rng = np.random.default_rng(n + inverse)
    vectors = [rng.integers(-32768, 32768, size=2 * n) for _ in range(4)]
    vectors.append(np.full(2 * n, -32768))
    vectors.append(np.tile([32767, -32768], n))
    vectors.append(rng.integers(-300, 300, size=2 * n))
    for z in vectors:
        st, got = _fft(model, z, inverse)
        assert st == MSP_SUCCESS
        re_, im_ = spec.fft_q15(z[0::2], z[1::2], inverse=inverse)
        assert np.array_equal(got[0::2], re_) and np.array_equal(got[1::2], im_), (n, inverse)


def test_model_fft_scaling_is_dft_over_n(model):
    """TI documents y = fft(x)/N (forward) and y = ifft(x) (inverse): check against numpy within the spec's
    rounding bound (log2(N)/2 + 1 LSB per output, docs/numeric-spec.md)."""
    rng = np.random.default_rng(7)
    n = 64
    z = rng.integers(-8000, 8000, size=2 * n)
    c = z[0::2] + 1j * z[1::2]
    _, fwd = _fft(model, z)
    assert np.max(np.abs(fwd[0::2] + 1j * fwd[1::2] - np.fft.fft(c) / n)) <= np.log2(n) / 2 + 1
    _, inv = _fft(model, z, inverse=True)
    assert np.max(np.abs(inv[0::2] + 1j * inv[1::2] - np.fft.ifft(c))) <= np.log2(n) / 2 + 1


def test_model_fft_without_bit_reversal_takes_reordered_input(model):
    rng = np.random.default_rng(3)
    n = 32
    z = rng.integers(-32768, 32768, size=2 * n)
    perm = spec.bit_reverse_permutation(n)
    zr = np.empty_like(z)
    zr[0::2], zr[1::2] = z[0::2][perm], z[1::2][perm]
    _, a = _fft(model, z, bit_reverse=True)
    _, b = _fft(model, zr, bit_reverse=False)
    assert np.array_equal(a, b)


def test_model_fft_refuses_bad_lengths_and_addresses(model):
    z16 = np.zeros(32, dtype=np.int64)
    fn = model.msp_cmplx_fft_fixed_q15
    for n in (8, 24, 1024, 0):
        st = fn(C.byref(FftParams(n, True, None)), _addr(_buf(model, "t_fft", 1024)))
        assert st == MSP_SIZE_ERROR, n
    # 16 points need 64-byte alignment: 64 bytes in is fine, 32 bytes in is not
    assert _fft(model, z16, offset=64)[0] == MSP_SUCCESS
    assert _fft(model, z16, offset=32)[0] == MSP_LEA_INVALID_ADDRESS
    assert _fft(model, z16, inverse=True, offset=32)[0] == MSP_LEA_INVALID_ADDRESS
    # outside LEA RAM (ordinary memory, aligned): refused
    assert _fft(model, z16, name="t_plain")[0] == MSP_LEA_INVALID_ADDRESS

    # operands that run past the end of LEA RAM are refused, those that end exactly there are not
    model.t_lea_end.restype = C.c_void_p
    end = model.t_lea_end()
    assert end % 4 == 0
    tr = _addr(_buf(model, "t_r", 2, C.c_int32))
    ta = _addr(_buf(model, "t_a", 512))
    mac = model.msp_mac_q15
    assert mac(C.byref(MacParams(2)), end - 4, ta, tr) == MSP_SUCCESS
    assert mac(C.byref(MacParams(4)), end - 4, ta, tr) == MSP_LEA_INVALID_ADDRESS


# --- msp_mac_q15 / msp_cmplx_mac_q15 ----------------------------------------------------------------------
def _mac(model, a, b, complex_=False, a_off=0, b_name="t_b"):
    ta, tb = _buf(model, "t_a", 512), _buf(model, b_name, 512)
    tr = _buf(model, "t_r", 2, C.c_int32)
    ta[: len(a)] = [int(v) for v in a]
    tb[: len(b)] = [int(v) for v in b]
    n = len(a) // 2 if complex_ else len(a)
    fn = model.msp_cmplx_mac_q15 if complex_ else model.msp_mac_q15
    st = fn(C.byref(MacParams(n)), _addr(ta, a_off), _addr(tb), _addr(tr))
    return st, (tr[0], tr[1])


def _sat32(v: int) -> int:
    return max(-(2**31), min(2**31 - 1, v))


def test_model_mac_is_twice_the_dot_product_saturated(model):
    rng = np.random.default_rng(11)
    for n in (2, 6, 64, 256, 512):
        for amp in (300, 32768):
            a = rng.integers(-amp, amp, size=n)
            b = rng.integers(-amp, amp, size=n)
            st, (r, _) = _mac(model, a, b)
            assert st == MSP_SUCCESS
            assert r == _sat32(2 * int(np.dot(a, b))), (n, amp)
    # the documented corner: (-1.0) * (-1.0) does not fit Q31 — saturates
    assert _mac(model, [-32768, -32768], [-32768, -32768])[1][0] == 2**31 - 1
    assert _mac(model, [-32768, 0], [32767, 0])[1][0] == -2 * 32768 * 32767


def test_model_cmplx_mac_is_twice_the_complex_dot_product(model):
    rng = np.random.default_rng(12)
    for n in (2, 8, 32, 256):
        a = rng.integers(-32768, 32768, size=2 * n)
        b = rng.integers(-32768, 32768, size=2 * n)
        st, (re_, im_) = _mac(model, a, b, complex_=True)
        assert st == MSP_SUCCESS
        s_re = sum(int(a[2 * i]) * int(b[2 * i]) - int(a[2 * i + 1]) * int(b[2 * i + 1]) for i in range(n))
        s_im = sum(int(a[2 * i]) * int(b[2 * i + 1]) + int(a[2 * i + 1]) * int(b[2 * i]) for i in range(n))
        assert (re_, im_) == (_sat32(2 * s_re), _sat32(2 * s_im)), n


def test_model_mac_refuses_odd_lengths_and_bad_addresses(model):
    assert _mac(model, [1, 2, 3], [1, 2, 3])[0] == MSP_SIZE_ERROR
    assert _mac(model, [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], complex_=True)[0] == MSP_SIZE_ERROR
    assert _mac(model, [1, 2], [3, 4], a_off=2)[0] == MSP_LEA_INVALID_ADDRESS  # 2-byte aligned only
    assert _mac(model, [1, 2], [3, 4], b_name="t_plain")[0] == MSP_LEA_INVALID_ADDRESS
    assert _mac(model, [1, 2, 3, 4], [3, 4, 5, 6], complex_=True, a_off=2)[0] == MSP_LEA_INVALID_ADDRESS


# --- the lea kernels against the spec: every golden test of test_kernels_ref.py on a lea build -----------
sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_kernels_ref as _golden  # noqa: E402


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    so = tmp_path_factory.mktemp("bllea") / "libbllea.so"
    sources = sorted(LEA_DIR.glob("*.c")) + sorted((LEA_DIR / "host").glob("*.c"))
    cmd = ["gcc", *CFLAGS, f"-I{ROOT / 'firmware' / 'include'}", f"-I{LEA_DIR}", "-o", str(so)]
    cmd += [str(p) for p in sources]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, f"{' '.join(cmd)}\n{built.stderr}"
    lib = C.CDLL(str(so))
    for name, (res, args) in _golden._SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


for _name, _fn in list(vars(_golden).items()):
    if _name.startswith("test_") and "lib" in inspect.signature(_fn).parameters:
        globals()[f"{_name}__lea"] = _fn
del _name, _fn


def test_lea_kernels_use_lea_ram_and_call_dsplib(lib):
    """The lea build really goes through the DSPLib calls: its LEA scratch lies in the LEA RAM section and
    the DSPLib entry points are linked in (a cheap guard against the backend silently being ref)."""
    for sym in ("msp_cmplx_fft_fixed_q15", "msp_cmplx_ifft_fixed_q15", "msp_mac_q15", "msp_cmplx_mac_q15"):
        assert hasattr(lib, sym)
    so = Path(lib._name)
    out = subprocess.run(["nm", str(so)], capture_output=True, text=True, check=True).stdout
    addr = {m.group(2): int(m.group(1), 16) for m in re.finditer(r"^([0-9a-f]+) \w (\S+)$", out, re.M)}
    lo, hi = addr["__start_bl_learam"], addr["__stop_bl_learam"]
    for sym in ("bl_lea_fft_buf", "bl_lea_xt", "bl_lea_st", "bl_lea_result"):
        assert lo <= addr[sym] < hi, sym
    assert addr["bl_lea_fft_buf"] % (4 * 64) == 0


# --- generated firmware: host lea builds (DSPLib model) and the MSP430FR5994 lea image ---------------------
@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("path", ["fft", "direct"])
def test_host_lea_firmware_bit_exact_on_whole_test_set(artifacts, tmp_path, model, path):
    from batteryless.artifact import load_artifact
    from batteryless.codegen import codegen
    from batteryless.datasets import load_dataset
    from batteryless.firmware import build, run_dataset
    from batteryless.firmware.image import symbols

    digits = load_dataset("digits")
    res = codegen(artifacts[model], "host", tmp_path / "gen", backend="lea", path=path)
    assert res.schedule["backend"] == "lea"
    img = build("host", tmp_path / "gen", "lea", out_dir=tmp_path / "build").image
    syms = symbols(img)
    used = {"fft": ("msp_cmplx_mac_q15", "msp_cmplx_ifft_fixed_q15"), "direct": ("msp_mac_q15",)}[path]
    assert all(s in syms for s in used), "the host lea image must call the DSPLib model"
    n = len(digits.x_test)
    run = run_dataset(img, "host", artifacts[model], "digits", count=n)
    ref = spec.integer_inference(load_artifact(artifacts[model]), digits.x_test, res.paths)
    assert np.array(run.logits).shape == ref.shape == (n, 10)
    assert np.array_equal(np.array(run.logits), ref)


@pytest.mark.parametrize("model,path", [("mlp", "fft"), ("cnn", "direct"), ("cnn", "fft")])
def test_msp430_lea_image_links_with_lea_buffers_in_lea_ram(artifacts, tmp_path, model, path):
    from batteryless.boards import load_board
    from batteryless.codegen import codegen
    from batteryless.firmware import build
    from batteryless.firmware.image import sections, symbols

    if shutil.which("clang") is None or shutil.which("ld.lld-14") is None:
        pytest.skip("clang / ld.lld-14 not installed")
    codegen(artifacts[model], "msp430fr5994", tmp_path / "gen", backend="lea", path=path)
    res = build("msp430fr5994", tmp_path / "gen", "lea", out_dir=tmp_path / "build")
    board = load_board("msp430fr5994")
    lea = board.region("lea_ram")
    syms = symbols(res.image)
    lea_syms = ("bl_lea_fft_buf", "bl_lea_xt", "bl_lea_st", "bl_lea_result")
    for name in lea_syms:
        s = syms[name]
        assert lea.origin <= s.address and s.address + s.size <= lea.origin + lea.usable, name
    assert syms["bl_lea_fft_buf"].address % (4 * 64) == 0  # MSP_ALIGN_CMPLX_FFT_Q15(BL_LEA_FFT_MAX)
    assert all(syms[n].address % 4 == 0 for n in lea_syms)
    # every object of the .lea section is one of ours and the section lies in lea_ram
    sec = {s.name: s for s in sections(res.image)}[".lea"]
    assert lea.origin <= sec.address and sec.address + sec.size <= lea.origin + lea.usable
    # the LEA driver's entry points are linked: the image uses the lea kernels (the FFT path's per-bin
    # complex MACs go through the driver's batched call, DSPLib.h bl_lea_cmac_many)
    assert ("bl_lea_cmac_many" if path == "fft" else "msp_mac_q15") in syms


def test_msp430_lea_image_refuses_to_run_in_mspdebug(artifacts, tmp_path):
    """mspdebug has no LEA: the LEA driver finds no LEA RAM bounds (LEAMT <= LEAMB) and returns
    MSP_LEA_INCORRECT_REVISION, so a run ends in the kernels' error status instead of hanging or producing
    logits LEA never computed."""
    from batteryless.codegen import codegen
    from batteryless.errors import EmulationError
    from batteryless.firmware import build, run_dataset

    if shutil.which("clang") is None or shutil.which("mspdebug") is None:
        pytest.skip("clang / mspdebug not installed")
    codegen(artifacts["mlp"], "msp430fr5994", tmp_path / "gen", backend="lea", path="direct")
    img = build("msp430fr5994", tmp_path / "gen", "lea", out_dir=tmp_path / "build").image
    with pytest.raises(EmulationError, match="error status 1"):
        run_dataset(img, "msp430fr5994", artifacts["mlp"], "digits", count=1)


# --- building against TI's DSPLib (--dsplib-dir): only the validation is testable here (no TI code) ---------
def test_dsplib_dir_must_be_tis_dsplib(tmp_path):
    """A folder that is not TI's DSPLib, or the option on a backend/board it is not for, is a one-line
    BuildError before anything is configured (the build folder is never created)."""
    from batteryless.errors import BuildError
    from batteryless.firmware import build

    out = tmp_path / "out"
    (tmp_path / "notdsplib" / "include").mkdir(parents=True)  # include/ without DSPLib.h, no source/
    with pytest.raises(BuildError, match=r"not TI's DSPLib \(expected include/DSPLib.h and a source/ folder"):
        build("msp430fr5994", backend="lea", dsplib_dir=tmp_path / "notdsplib", out_dir=out)
    with pytest.raises(BuildError, match="not TI's DSPLib"):
        build("msp430fr5994", backend="lea", dsplib_dir=tmp_path / "missing", out_dir=out)
    ti_like = tmp_path / "DSPLib"
    (ti_like / "include").mkdir(parents=True)
    (ti_like / "include" / "DSPLib.h").write_text("/* stand-in */\n")
    (ti_like / "source").mkdir()
    with pytest.raises(BuildError, match="for the lea backend on an MSP430 board, not backend 'ref'"):
        build("msp430fr5994", backend="ref", dsplib_dir=ti_like, out_dir=out)
    with pytest.raises(BuildError, match="for the lea backend on an MSP430 board, not backend 'lea' on host"):
        build("host", backend="lea", dsplib_dir=ti_like, out_dir=out)
    assert not out.exists()


def test_dsplib_dir_cli_error_is_one_line(tmp_path):
    from batteryless.errors import BuildError

    proc = subprocess.run(
        [sys.executable, "-m", "batteryless.cli", "build", "--board", "msp430fr5994", "--backend", "lea",
         "--dsplib-dir", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "host")},
    )  # fmt: skip
    assert proc.returncode == BuildError.exit_code
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not TI's DSPLib" in lines[0]
    assert not (tmp_path / "out").exists()
