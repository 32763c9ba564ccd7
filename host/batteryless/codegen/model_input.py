"""``model_input.h``: the input quantisation of docs/numeric-spec.md ("Inputs") in C, for code on the device
that reads raw sensor values and must hand the model int16 inputs.

The host quantises with :func:`batteryless.spec.quantize_input` (float64 numpy); this header does the same
IEEE double operations in the same order — one subtraction, one division, one multiplication by an exact
power of two, + 0.5, floor, saturate — with the artifact's statistics written as exact hexadecimal float
literals, so it is bit-exact with the spec wherever ``double`` is IEEE binary64 and the compiler does not
contract ``a·b + c`` into a fused multiply-add (C11 mode, ``-ffp-contract=off``, is what the build uses;
Cortex-M4 computes double in software, exactly). ``tests/test_model_input.py`` compiles it with the host gcc
and compares every result with the spec. On the MSP430 the double arithmetic goes through the EABI
soft-double helpers (``__mspabi_addd``, ``__mspabi_divd``, …) in firmware/platform/msp430/softdouble.c
(correctly rounded, checked against the host's hardware double in ``tests/test_softdouble.py``); a program
using the header links there and runs bit-exact with the spec on the board's emulator (test_model_input.py).
"""

from __future__ import annotations

import math
from typing import Any

from batteryless.normalisation import normalisation_arrays


def _hex(v: float) -> str:
    """An exact C99 hexadecimal floating literal."""
    v = float(v)
    if v == 0:
        return "0.0"
    return v.hex()


def render_model_input_header(art: Any, banner: str) -> str:
    shape = tuple(art.input_shape)
    n = math.prod(shape)
    kind = art.normalisation.get("kind", "scalar")
    mean, std = normalisation_arrays(art.normalisation, shape)
    mean, std = mean.ravel(), std.ravel()
    # which statistic an element uses: all the same (scalar/none), its channel, or its own
    if kind == "per-channel":
        index = f"i / {n // shape[0]}u"
    elif kind == "per-feature":
        index = "i"
    else:
        index = "0u"
    scale = _hex(2.0**art.input_frac)
    return f"""{banner}#ifndef BL_MODEL_INPUT_H
#define BL_MODEL_INPUT_H

#include <stdint.h>

/* Raw input -> int16 model input, as the numeric spec says (docs/numeric-spec.md, "Inputs"):
 *   x_q[i] = sat16(floor((x[i] - mean[i]) / std[i] * 2^input_frac + 0.5)), in IEEE double.
 * Normalisation: {kind} ({art.normalisation.get("source", "train")}); input shape {shape}, channels first. */
#define BL_MODEL_INPUT_ELEMENTS {n}u
#define BL_MODEL_INPUT_FRAC {art.input_frac}
#define BL_MODEL_INPUT_NORM_LEN {len(mean)}u

static const double bl_model_input_mean[BL_MODEL_INPUT_NORM_LEN] = {{{", ".join(_hex(v) for v in mean)}}};
static const double bl_model_input_std[BL_MODEL_INPUT_NORM_LEN] = {{{", ".join(_hex(v) for v in std)}}};

/* Element i (0 .. BL_MODEL_INPUT_ELEMENTS-1) of one sample. */
static inline int16_t bl_model_quantize_element(double x, uint32_t i)
{{
  double v;
  (void)i; /* unused when one mean/std serves every element */
  v = (x - bl_model_input_mean[{index}]) / bl_model_input_std[{index}];
  v = v * {scale};
  v = v + 0.5;
  if (!(v < 32767.0)) {{ /* also NaN: the spec's inputs are finite */
    return INT16_MAX;
  }}
  if (v < -32768.0) {{
    return INT16_MIN;
  }}
  {{
    int32_t t = (int32_t)v; /* truncates toward zero; floor is one less for negative non-integers */
    if ((double)t > v) {{
      t -= 1;
    }}
    return (int16_t)t;
  }}
}}

/* One sample: BL_MODEL_INPUT_ELEMENTS raw values (channels first) -> int16 model input. */
static inline void bl_model_quantize_input(const float *x, int16_t *xq)
{{
  uint32_t i;
  for (i = 0; i < BL_MODEL_INPUT_ELEMENTS; i++) {{
    xq[i] = bl_model_quantize_element((double)x[i], i);
  }}
}}

#endif /* BL_MODEL_INPUT_H */
"""
