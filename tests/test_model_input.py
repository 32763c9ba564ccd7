"""codegen's model_input.h (raw input → int16) compiled with the host gcc, against spec.quantize_input for
every normalisation kind, on random inputs, exact rounding half-ways and saturation edges."""

import copy
import subprocess

import numpy as np
import pytest

from batteryless.codegen.model_input import render_model_input_header
from batteryless.normalisation import fit_normalisation
from batteryless.spec import quantize_input
from test_spec import _small_artifact

MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model_input.h"
int main(void) {
  float x[BL_MODEL_INPUT_ELEMENTS];
  int16_t q[BL_MODEL_INPUT_ELEMENTS];
  unsigned n = 0;
  while (n < BL_MODEL_INPUT_ELEMENTS && fread(&x[n], sizeof(float), 1, stdin) == 1) n++;
  while (n == BL_MODEL_INPUT_ELEMENTS) {
    bl_model_quantize_input(x, q);
    fwrite(q, sizeof(int16_t), BL_MODEL_INPUT_ELEMENTS, stdout);
    n = 0;
    while (n < BL_MODEL_INPUT_ELEMENTS && fread(&x[n], sizeof(float), 1, stdin) == 1) n++;
  }
  return 0;
}
"""


@pytest.mark.firmware
@pytest.mark.parametrize("kind", ["none", "scalar", "per-channel", "per-feature"])
def test_c_input_quantisation_is_bit_exact_with_the_spec(tmp_path, kind):
    art, _ = _small_artifact("cnn1d")  # input (4, 32)
    art = copy.deepcopy(art)
    rng = np.random.default_rng(3)
    train = rng.normal(size=(40, 4, 32)) * np.array([1, 30, 0.01, 5])[None, :, None] + 0.3
    art.normalisation = fit_normalisation(kind, train)
    (tmp_path / "model_input.h").write_text(render_model_input_header(art, "/* test */\n"))
    (tmp_path / "main.c").write_text(MAIN)
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
    subprocess.run(["gcc", *flags, "-o", "main", "main.c"], check=True, cwd=tmp_path)
    x = (rng.normal(size=(200, 4, 32)) * np.array([1, 30, 0.01, 5])[None, :, None] * 3).astype(np.float32)
    # edges: (k + 0.5) / 2^frac is exactly half-way for kind none (rounds half up, also below zero), and
    # values far beyond int16 saturate
    halves = ((np.arange(-64, 64) + 0.5) / 2.0**art.input_frac).astype(np.float32).reshape(1, 4, 32)
    big = np.full((2, 4, 32), 3e38, np.float32)
    big[1] *= -1
    x = np.concatenate([x, halves, big, np.zeros((1, 4, 32), np.float32)])
    out = subprocess.run(["./main"], input=x.tobytes(), capture_output=True, check=True, cwd=tmp_path).stdout
    got = np.frombuffer(out, dtype="<i2").reshape(x.shape)
    want = quantize_input(art, x)
    assert np.array_equal(got, want)
    assert (want == 32767).any() and (want == -32768).any()  # the saturation edges were exercised
    if kind == "none":
        assert want[200].ravel().tolist() == list(range(-63, 65))  # floor(k + 0.5 + 0.5) = k + 1


APP = r"""
#include "bl_platform.h"
#include "model_input.h"

static float x[BL_MODEL_INPUT_ELEMENTS];
static int16_t q[BL_MODEL_INPUT_ELEMENTS];

int bl_app_main(void)
{
  uint32_t samples = bl_input_length() / (uint32_t)sizeof x;
  uint32_t s;
  for (s = 0u; s < samples; s++) {
    (void)bl_input_read(x, (size_t)(s * sizeof x), sizeof x);
    bl_model_quantize_input(x, q);
    bl_put_line_i16("xq", q, BL_MODEL_INPUT_ELEMENTS);
  }
  return 0;
}
"""


@pytest.mark.firmware
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["scalar", "per-feature"])
def test_msp430_program_using_the_header_links_and_is_bit_exact(tmp_path, kind):
    """The header's double arithmetic on the MSP430FR5994: clang --target=msp430 + ld.lld link it against the
    platform's soft-double helpers (firmware/platform/msp430/softdouble.c), and the board's emulator runs it
    bit-exact with the spec on random, half-way and saturating inputs."""
    import shutil

    from batteryless.firmware import build, run

    if shutil.which("mspdebug") is None:
        pytest.skip("mspdebug is not installed (scripts/setup.sh)")
    art, _ = _small_artifact("cnn1d")  # input (4, 32): 512 bytes of float32 per sample
    art = copy.deepcopy(art)
    rng = np.random.default_rng(5)
    scale = np.array([1, 30, 0.01, 5])[None, :, None]
    art.normalisation = fit_normalisation(kind, rng.normal(size=(40, 4, 32)) * scale + 0.3)
    app = tmp_path / "app"
    app.mkdir()
    (app / "model_input.h").write_text(render_model_input_header(art, "/* test */\n"))
    (app / "main.c").write_text(APP)
    image = build("msp430fr5994", backend="ref", app=str(app), out_dir=tmp_path / "build").image
    halves = ((np.arange(-64, 64) + 0.5) / 2.0**art.input_frac).astype(np.float32).reshape(1, 4, 32)
    big = np.full((1, 4, 32), 3e38, np.float32)
    big[0, ::2] *= -1
    tiny = np.full((1, 4, 32), 1e-45, np.float32)  # float subnormals
    x = np.concatenate([(rng.normal(size=(3, 4, 32)) * scale * 3).astype(np.float32), halves, big, tiny])
    got = []
    for sample in x:  # one sample per run: its line fills most of the 1 KB output buffer
        r = run(image, "msp430fr5994", inputs=sample.tobytes(), timeout=600)
        assert r.exit_code == 0, r.output
        got += [[int(v) for v in ln.split()[1:]] for ln in r.output.splitlines() if ln.startswith("xq ")]
    want = quantize_input(art, x).reshape(len(x), -1)
    assert np.array_equal(np.array(got), want)
    assert (want == 32767).any() and (want == -32768).any()
