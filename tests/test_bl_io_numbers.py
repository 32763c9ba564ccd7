"""firmware/platform/bl_io.c number printing (bl_put_u32 / bl_put_i32, written without division): the host
build prints exactly Python's decimal formatting for edge values and a seeded random sample; the file
compiles warning-free for the MSP430 (16-bit int) and the Cortex-M4."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = ROOT / "firmware" / "platform"
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror"]

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "bl_platform.h"
void bl_putc(char c) { putchar(c); }
int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (argv[i][0] == 'u') bl_put_u32((uint32_t)strtoull(argv[i + 1], 0, 10));
    else bl_put_i32((int32_t)strtoll(argv[i + 1], 0, 10));
    bl_putc('\n');
  }
  return 0;
}
"""

U32 = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 9999, 10000, 10001, 65534, 65535, 65536, 65537, 99999]
U32 += [100000, 100001, 999999, 1000000, 9999999, 10000000, 99999999, 100000000, 999999999, 1000000000]
U32 += [1000000001, 2147483647, 2147483648, 3999999999, 4000000000, 4294967294, 4294967295]
I32 = [0, 1, -1, 9, -9, 10, -10, 32767, -32768, 32768, -32769, 65535, -65535, 65536, -65536, 99999, -99999]
I32 += [100000, -100000, 2147483647, -2147483647, -2147483648]


@pytest.fixture(scope="module", params=[1, 0], ids=["by-subtraction", "by-division"])
def exe(tmp_path_factory, request) -> Path:
    """The host build of both formatting variants (the MSP430 uses subtraction, the others division)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    d = tmp_path_factory.mktemp("bl_io")
    (d / "driver.c").write_text(DRIVER)
    out = d / "bl_io_numbers"
    srcs = [str(d / "driver.c"), str(PLATFORM / "bl_io.c")]
    variant = f"-DBL_IO_DECIMAL_BY_SUBTRACTION={request.param}"
    cmd = ["gcc", *CFLAGS, variant, "-O2", f"-I{PLATFORM}", *srcs, "-o", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, f"{' '.join(cmd)}\n{run.stderr}"
    return out


def _printed(exe: Path, values: list[tuple[str, int]]) -> list[str]:
    args = [a for kind, v in values for a in (kind, str(v))]
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=True).stdout.splitlines()


def test_edge_values_print_as_python_formats_them(exe):
    values = [("u", v) for v in U32] + [("i", v) for v in I32]
    assert _printed(exe, values) == [str(v) for _, v in values]


def test_random_values_print_as_python_formats_them(exe):
    rng = random.Random(7)
    values = []
    for _ in range(3000):
        bits = rng.randint(0, 32)  # every magnitude, not just the large ones a uniform draw gives
        values.append(("u", rng.getrandbits(bits) if bits else 0))
        values.append(("i", rng.randint(-(2**31), 2**31 - 1) >> rng.randint(0, 31)))
    assert _printed(exe, values) == [str(v) for _, v in values]


@pytest.mark.parametrize(
    "compiler",
    [
        ["clang", "--target=msp430", "-D__MSP430FR5994__"],
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"],
    ],
    ids=["msp430-clang", "cortex-m4-gcc"],
)
def test_bl_io_cross_compiles_warning_free(tmp_path, compiler):
    if shutil.which(compiler[0]) is None:
        pytest.skip(f"{compiler[0]} is not installed (scripts/setup.sh installs it)")
    obj = tmp_path / "bl_io.o"
    cmd = [*compiler, *CFLAGS, "-O2", f"-I{PLATFORM}", "-c", str(PLATFORM / "bl_io.c"), "-o", str(obj)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, f"{' '.join(cmd)}\n{run.stderr}"
