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
