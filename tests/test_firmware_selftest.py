"""The selftest firmware built with each real toolchain and run on each board's emulator; every printed
value is recomputed here in Python (C integer semantics written out independently), and the CMSIS-DSP
arm_rfft_q15 output is compared with numpy's FFT."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from batteryless.boards import load_board
from batteryless.errors import BuildError
from batteryless.firmware import build, parse_output, region_usage, run

pytestmark = pytest.mark.firmware

# (board, backend, number of int16 inputs the test feeds)
CONFIGS = [
    ("host", "ref", 128),
    ("mps2-an386", "ref", 128),
    ("mps2-an386", "cmsis", 128),
    ("msp430fr5994", "ref", 8),
    ("msp430fr5969", "ref", 6),
]


def _need(tool: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"{tool} not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    cache: dict[tuple[str, str], object] = {}

    def get(board: str, backend: str):
        if (board, backend) not in cache:
            out = tmp_path_factory.mktemp(f"{board}-{backend}")
            cache[(board, backend)] = build(board, backend=backend, out_dir=out)
        return cache[(board, backend)]

    return get


# --- the independent reference --------------------------------------------------------------------------


def _cdiv(a: int, b: int) -> int:
    """C division: truncate toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _crem(a: int, b: int) -> int:
    return a - b * _cdiv(a, b)


def _wrap(v: int, bits: int) -> int:
    m = 1 << bits
    v &= m - 1
    return v - m if v >= m >> 1 else v


def _sat16(v: int) -> int:
    return max(-32768, min(32767, v))


def selftest_reference(x: list[int]) -> dict[str, list[int]]:
    n = len(x)
    ref: dict[str, list[int]] = {
        "n": [n],
        "sum": [sum(x)],
        "dot": [sum(x[i] * x[n - 1 - i] for i in range(n))],
    }
    ref["q15mul"] = [_sat16((x[i] * x[(i + 1) % n] + 0x4000) >> 15) for i in range(n)]
    div16, rem16, div32, rem32 = [], [], [], []
    for i in range(n):
        xk = x[(i + 3) % n]
        m = (xk & 0x7FF) + 2
        d = -m if xk < 0 else m
        div16.append(_cdiv(x[i], d))
        rem16.append(_crem(x[i], d))
        num = x[i] * x[(i + 1) % n]
        d32 = xk * 3 + (7 if xk >= 0 else -7)
        div32.append(_cdiv(num, d32))
        rem32.append(_wrap(_crem(num, d32), 16))
    ref.update(div16=div16, rem16=rem16, div32=div32, rem32=rem32)
    ref["sra16"] = [x[i] >> (i % 16) for i in range(n)]
    ref["sll32"] = [_wrap(x[i] << (i % 16), 32) for i in range(n)]
    ref["sra32"] = [(x[i] * x[(i + 1) % n]) >> (i % 31) for i in range(n)]
    md = []
    for i in range(min(n, 4)):
        a = x[i] * x[(i + 1) % n]
        b = x[(i + 3) % n] * x[i] + 1
        d = x[(i + 1) % n] ** 2 + 1
        md.append(_cdiv(a * b, d))
    ref["muldiv64"] = md
    return ref


def test_reference_itself_on_hand_values():
    # Hand-checked: C truncates toward zero; 7 / -2 = -3 rem 1; -7 / 2 = -3 rem -1.
    assert (_cdiv(7, -2), _crem(7, -2), _cdiv(-7, 2), _crem(-7, 2)) == (-3, 1, -3, -1)
    assert _wrap(40000, 16) == 40000 - 65536 and _wrap(-1 << 31, 32) == -(1 << 31)
    assert _sat16((-32768 * -32768 + 0x4000) >> 15) == 32767


def _inputs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-32768, 32768, n).astype(np.int16)
    x[0] = -32768  # the extremes are always exercised
    x[min(1, n - 1)] = 32767
    return x


@pytest.mark.parametrize(("board", "backend", "n"), CONFIGS)
def test_selftest_matches_python_reference(images, board, backend, n):
    kind = load_board(board).emulator["kind"]
    _need({"qemu": "qemu-system-arm", "mspdebug": "mspdebug", "host": "cmake"}[kind])
    img = images(board, backend)
    for seed in (1, 2):
        x = _inputs(n, seed)
        res = run(img.image, board, inputs=x.tobytes())
        assert res.exit_code == 0, res.output
        got = parse_output(res.output)
        ref = selftest_reference([int(v) for v in x])
        for key, want in ref.items():
            assert got.get(key) == want, f"{board}/{backend} seed {seed}: {key}"
        assert f"board {board}" in res.output and res.output.rstrip().endswith("done")
        if kind == "qemu":
            assert res.unit == "instructions" and res.count and res.count > 1000
            ids = [1, 2, 3, 4] if backend == "cmsis" else [1, 2]
            assert [m[0] for m in res.marks] == ids and all(0 < c <= res.count for _, c in res.marks)
        if kind == "mspdebug":
            assert res.unit == "mclk_cycles" and res.mclk_cycles >= res.instructions > 1000


def test_selftest_without_input_exits_with_error_code(images):
    img = images("host", "ref")
    res = run(img.image, "host")
    assert res.exit_code == 3 and "error no input" in res.output


# --- CMSIS-DSP ------------------------------------------------------------------------------------------

RFFT_N = 128
# Measured over 30 random inputs at three amplitudes (see docs/build.md): max |CMSIS - numpy| = 4.1 LSB of
# the 8.8 output, always at the DC bin (truncation bias of 7 halving stages). Bound: log2(N) + 1 = 8 LSB.
RFFT_MAX_LSB = 8.0


def _rfft_reference(x: np.ndarray) -> np.ndarray:
    ref = np.fft.rfft(x.astype(np.float64)) / RFFT_N  # arm_rfft_q15, 128 points: output format 8.8
    out = np.empty(RFFT_N + 2)
    out[0::2], out[1::2] = ref.real, ref.imag
    return out


@pytest.mark.slow
def test_cmsis_rfft_q15_within_measured_lsb_bound_of_numpy(images):
    _need("qemu-system-arm")
    img = images("mps2-an386", "cmsis")
    worst, errs = 0.0, []
    for seed in range(9):
        amp = (32767, 8000, 1000)[seed % 3]
        x = np.random.default_rng(100 + seed).integers(-amp, amp + 1, RFFT_N).astype(np.int16)
        res = run(img.image, "mps2-an386", inputs=x.tobytes())
        got = np.asarray(parse_output(res.output)["rfft128"], dtype=np.float64)
        err = np.abs(got - _rfft_reference(x))
        worst = max(worst, float(err.max()))
        errs.append(float(err.mean()))
    assert worst <= RFFT_MAX_LSB
    assert np.mean(errs) < 1.5  # typical error is about one LSB, not the bound


def test_cmsis_rfft_finds_a_tone(images):
    _need("qemu-system-arm")
    img = images("mps2-an386", "cmsis")
    t = np.arange(RFFT_N)
    x = np.round(12000 * np.cos(2 * np.pi * 9 * t / RFFT_N)).astype(np.int16)
    got = np.asarray(parse_output(run(img.image, "mps2-an386", inputs=x.tobytes()).output)["rfft128"])
    mag = np.hypot(got[0::2], got[1::2])
    assert int(np.argmax(mag)) == 9
    assert abs(mag[9] - 12000 * RFFT_N / 2 / RFFT_N) <= RFFT_MAX_LSB


def test_ref_backend_has_no_cmsis_code(images):
    _need("qemu-system-arm")
    from batteryless.firmware.image import symbols

    assert "arm_rfft_q15" in symbols(images("mps2-an386", "cmsis").image)
    assert "arm_rfft_q15" not in symbols(images("mps2-an386", "ref").image)


# --- build reports --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("board", "backend"), [("msp430fr5994", "ref"), ("mps2-an386", "cmsis")])
def test_region_report_agrees_with_llvm_size(images, board, backend):
    size = shutil.which("llvm-size-14") or shutil.which("llvm-size")
    if not size:
        pytest.skip("llvm-size not installed")
    img = images(board, backend)
    out = subprocess.run([size, str(img.image)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    regs = img.regions
    assert sum(r.bss for r in regs) == bss
    assert sum(r.data for r in regs) == data
    # Our 'text' per region also counts the .data load image in the region it is loaded from.
    assert sum(r.text for r in regs) == text + data
    b = load_board(board)
    for r in regs:
        assert r.usable == b.region(r.name).usable and r.used <= r.usable


def test_board_symbols_in_image_come_from_board_toml(images):
    from batteryless.firmware.image import symbols

    b = load_board("msp430fr5994")
    syms = symbols(images("msp430fr5994", "ref").image)
    for r in b.memory:
        assert syms[f"__bl_{r.name}_origin"].address == r.origin
    assert syms["__bl_stack_top"].address == b.region("ram").end
    assert syms["bl_vectors"].address == b.region("vectors").origin


def test_ram_overflow_fails_the_build_naming_the_region(tmp_path):
    _need("clang")
    with pytest.raises(BuildError, match=r"(?i)ram"):
        build("msp430fr5969", backend="ref", out_dir=tmp_path, defines={"BL_OUT_CAPACITY": "4000u"})


def test_usable_limit_beyond_the_linker_is_enforced(tmp_path):
    """LEA RAM is 4 KB long but only 3,784 B usable: the linker accepts 3,900 B, build() must not."""
    _need("clang")
    app = tmp_path / "leabig"
    app.mkdir()
    (app / "main.c").write_text(
        '#include "bl_platform.h"\n'
        '__attribute__((section(".lea"))) static volatile char lea_buf[3900];\n'
        "int bl_app_main(void) { lea_buf[0] = 1; return lea_buf[0]; }\n"
    )
    with pytest.raises(
        BuildError, match=r"region 'lea_ram' .* needs 3900 bytes but 3784 are usable \(overflow 116"
    ):
        build("msp430fr5994", backend="ref", app=str(app), out_dir=tmp_path / "b")


def test_unknown_backend_is_refused():
    with pytest.raises(BuildError, match="has no backend 'lea'"):
        build("mps2-an386", backend="lea")


def test_compile_error_is_reported_with_the_compiler_line(tmp_path):
    app = tmp_path / "broken"
    app.mkdir()
    (app / "main.c").write_text("int bl_app_main(void) { int unused; return 0; }\n")
    with pytest.raises(BuildError, match=r"main\.c.*unused"):
        build("host", backend="ref", app=str(app), out_dir=tmp_path / "b")


def test_host_image_region_report_is_one_pseudo_region(images):
    regs = region_usage(images("host", "ref").image, load_board("host"))
    assert [r.name for r in regs] == ["image"] and regs[0].text > 0


def test_build_folder_can_switch_boards(tmp_path):
    _need("clang")
    a = build("host", backend="ref", out_dir=tmp_path)
    assert load_board("host").cpu == "host" and a.regions[0].name == "image"
    b = build("msp430fr5969", backend="ref", out_dir=tmp_path)  # another toolchain in the same folder
    assert [r.name for r in b.regions][0] == "ram"
    from batteryless.firmware.image import symbols

    assert symbols(b.image)["__bl_code_origin"].address == load_board("msp430fr5969").region("code").origin


MULAPP = r"""
#include "bl_platform.h"
/* Multiply-heavy: 16x16->32 and 32x32->32/64 products of the input, between marks 1 and 2. */
int bl_app_main(void)
{
  int16_t x[16];
  int32_t acc = 0;
  int64_t acc64 = 0;
  unsigned i, j;
  unsigned n = (unsigned)bl_input_read(x, 0u, sizeof x) / 2u;
  bl_mark(1u);
  for (i = 0; i < n; i++) {
    for (j = 0; j < n; j++) {
      acc += (int32_t)x[i] * (int32_t)x[j];
      acc64 += (int64_t)((int32_t)x[i] * 65599) * (int64_t)((int32_t)x[j] * -3);
    }
  }
  bl_mark(2u);
  bl_puts("acc ");
  bl_put_i32(acc);
  bl_puts("\nacc64 ");
  bl_put_i64(acc64);
  bl_putc('\n');
  return 0;
}
"""


def test_msp430_hardware_multiplier_path_and_software_fallback(tmp_path):
    """With the simulator's multiplier the firmware's probe finds it; without, it multiplies in software.
    Both give the exact products; the hardware path takes fewer MCLK cycles between the marks."""
    _need("mspdebug")
    import dataclasses

    app = tmp_path / "mul"
    app.mkdir()
    (app / "main.c").write_text(MULAPP)
    img = build("msp430fr5994", backend="ref", app=str(app), out_dir=tmp_path / "b").image
    board = load_board("msp430fr5994")
    no_mpy = dataclasses.replace(
        board, emulator={k: v for k, v in board.emulator.items() if k != "mpy16_base"}
    )
    x = _inputs(16, 9)
    xs = [int(v) for v in x]
    want_acc = _wrap(sum(a * b for a in xs for b in xs), 32)
    want_acc64 = _wrap(sum(_wrap(a * 65599, 32) * _wrap(b * -3, 32) for a in xs for b in xs), 64)
    deltas = []
    for bd in (board, no_mpy):
        res = run(img, bd, inputs=x.tobytes())
        got = parse_output(res.output)
        assert got["acc"] == [want_acc] and got["acc64"] == [want_acc64]
        deltas.append(res.marks[1][1] - res.marks[0][1])
    assert deltas[0] * 2 < deltas[1]  # hardware multiplies are several times cheaper
