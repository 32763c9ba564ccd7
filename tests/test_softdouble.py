"""firmware/platform/msp430/softdouble.c (the MSP430's IEEE double helpers) compiled by the host gcc and
compared bit for bit with the host's hardware double (numpy): add, sub, mul, div, compare, float → double,
double → int32 (truncation), int32 → double, on random bit patterns, ordinary values, subnormals, near
cancellations, exact ties and the special values. The MSP430 link and run is in test_model_input.py."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HARNESS = r"""
#include <stdint.h>
#include <stdio.h>
void bl_softdouble_op(uint64_t *out, const uint64_t *b, const uint64_t *a, unsigned op);
uint64_t bl_softdouble_from_float(uint32_t f);
int32_t bl_softdouble_to_int32(uint64_t a);
uint64_t bl_softdouble_from_int32(int32_t v);
int main(void)
{
  uint64_t ab[2], r[8];
  unsigned op;
  while (fread(ab, 8, 2, stdin) == 2) {
    for (op = 0; op < 5; op++) {
      bl_softdouble_op(&r[op], &ab[1], &ab[0], op);
    }
    r[5] = bl_softdouble_from_float((uint32_t)ab[0]);
    r[6] = (uint64_t)(int64_t)bl_softdouble_to_int32(ab[0]);
    r[7] = bl_softdouble_from_int32((int32_t)(uint32_t)ab[1]);
    fwrite(r, 8, 8, stdout);
  }
  return 0;
}
"""
SPECIALS = [
    0.0,
    -0.0,
    np.inf,
    -np.inf,
    np.nan,
    1.0,
    -1.0,
    0.5,
    2.0**-1074,
    -(2.0**-1074),
    2.0**-1022,
    np.finfo(float).max,
    -np.finfo(float).max,
    32767.0,
    -32768.0,
    2.0**31,
    -(2.0**31),
    2.0**31 - 1,
]


@pytest.fixture(scope="module")
def softdouble(tmp_path_factory):
    d = tmp_path_factory.mktemp("softdouble")
    (d / "main.c").write_text(HARNESS)
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
    src = ROOT / "firmware" / "platform" / "msp430" / "softdouble.c"
    subprocess.run(["gcc", *flags, "-o", "sd", str(src), "main.c"], check=True, cwd=d)
    return d / "sd"


def _operands(rng: np.random.Generator, n: int) -> np.ndarray:
    sign = rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(63)
    pools = [
        rng.integers(0, 2**63, n, dtype=np.uint64) | sign,  # any bit pattern: NaNs, infinities, extremes
        (rng.normal(size=n) * 10.0 ** rng.integers(-8, 9, n)).view(np.uint64),  # ordinary values
        rng.integers(0, 2**52, n, dtype=np.uint64) | sign,  # subnormals
        rng.integers(-(2**31), 2**31, n).astype(np.float64).view(np.uint64),  # integers
        np.array(SPECIALS).view(np.uint64)[rng.integers(0, len(SPECIALS), n)],
        (rng.normal(size=n) * 2.0 ** rng.integers(-1060, -1000, n)).view(
            np.uint64
        ),  # around the subnormal edge
    ]
    return np.choose(rng.integers(0, len(pools), n), pools)


def _run(sd: Path, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inp = np.stack([a, b], 1).astype("<u8").tobytes()
    out = subprocess.run([str(sd)], input=inp, capture_output=True, check=True).stdout
    return np.frombuffer(out, "<u8").reshape(len(a), 8)


def _same(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Bit-equal, or both NaN (the helpers return the default NaN; payloads are not part of the contract)."""
    return (got.view(np.uint64) == want.view(np.uint64)) | (np.isnan(got) & np.isnan(want))


@pytest.mark.parametrize("seed", [0, 1])
def test_softdouble_equals_hardware_double(softdouble, seed):
    rng = np.random.default_rng(seed)
    n = 60000
    a, b = _operands(rng, n), _operands(rng, n)
    near = rng.random(n) < 0.2  # a few ulps apart: cancellation in a - b
    b = np.where(near, a + rng.integers(-3, 4, n).astype(np.uint64), b)
    b = np.where(rng.random(n) < 0.1, a ^ np.uint64(1 << 63), b)  # a + (-a)
    r = _run(softdouble, a, b)
    x, y = a.view(np.float64), b.view(np.float64)
    with np.errstate(all="ignore"):
        for op, want in enumerate([x + y, x - y, x * y, x / y]):
            assert _same(r[:, op].view(np.float64), want).all(), f"operation {op}"
        f32 = (a & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
        assert _same(r[:, 5].view(np.float64), f32.astype(np.float64)).all()
    ordered = np.where(x < y, -1, np.where(x > y, 1, 0))
    assert np.array_equal(r[:, 4].view(np.int64), np.where(np.isnan(x) | np.isnan(y), 1, ordered))
    fits = ~np.isnan(x) & (np.abs(x) < 2.0**31)
    assert np.array_equal(r[fits, 6].view(np.int64), np.trunc(x[fits]).astype(np.int64))
    assert (r[~fits, 6].view(np.int64) == -(2**31)).all()
    ints = (b & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)
    assert np.array_equal(r[:, 7].view(np.float64), ints.astype(np.float64))


def test_exact_ties_round_to_even(softdouble):
    """1 + m·2^-52 plus 2^-53 lies exactly half-way between two doubles: even m stays, odd m rounds up; the
    same at the subnormal edge, and for products and quotients that are exact ties."""
    m = np.arange(0, 64, dtype=np.float64)
    x = np.concatenate(
        [1.0 + m * 2.0**-52, -(1.0 + m * 2.0**-52), (2 + m) * 2.0**-1074, [3.0, 1.5, 2.0**-1073]]
    )
    y = np.concatenate(
        [
            np.full(64, 2.0**-53),
            np.full(64, -(2.0**-53)),
            np.full(64, 2.0**-1074),
            [2.0**-52, 2.0**-52, 0.5],
        ]
    )
    r = _run(softdouble, x.view(np.uint64), y.view(np.uint64))
    for op, want in enumerate([x + y, x - y, x * y, x / y]):
        assert _same(r[:, op].view(np.float64), want).all(), f"operation {op}"
    assert (x + y != x).any() and (x + y == x).any()  # both rounding directions occur
