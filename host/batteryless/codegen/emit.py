"""Writes the plan as C: model.h, model.c (buffers, geometry, the task dispatch), model_weights.c,
model_input.h and the CMake fragment; deterministic and banner-stamped."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from batteryless.codegen import modes as eve_modes
from batteryless.codegen import tasks as tasks_mod
from batteryless.codegen.c_source import banner, c_array
from batteryless.codegen.plan import Plan
from batteryless.eve.modes import has_modes
from batteryless.paths import atomic_write
from batteryless.spec import twiddles

EVE_ZERO_C = """/* EVE: output rows [o0, o1) of y[][h][w] that the mode drops are 0 (spec.py mode_layer_view),
 * within rows y0..y1 and columns x0..x1 of each; returns st, the status of the call made before it.
 * noinline on the MSP430: clang inlined it at each call site of an image with few of them (the digits CNN's
 * width ladder: +2.4 KB of code, not at 15 sites) — a size the memory plan's code estimate cannot predict.
 * Elsewhere inlined: the constant geometry folds into the loop (the M4 cmsis CNN's smallest mode is ~7 %
 * dearer through the call; benchmarks/eve_device.py). */
#if defined(__MSP430__)
__attribute__((noinline))
#endif
static bl_status bl_eve_zero(bl_status st, int16_t *y, uint16_t o0, uint16_t o1, uint16_t h, uint16_t w,
                             uint16_t y0, uint16_t y1, uint16_t x0, uint16_t x1)
{
  for (uint16_t o = o0; o < o1; o++)
    for (uint16_t r = y0; r < y1; r++)
      for (uint16_t c = x0; c < x1; c++) y[((uint32_t)o * h + r) * w + c] = 0;
  return st;
}"""


def _prune_eve_defs(plan: Plan, cases: str) -> None:
    """Keep the EVE statics (selections, per-mode values, geometries) the task expressions use (C11 with
    -Werror: an unused static is an error): a mode that runs whole block rows with the backend kernel, or
    drops them, needs no selection for them."""
    if "bl_eve_zero(" in cases and EVE_ZERO_C not in plan.eve_defs:
        plan.eve_defs.append(EVE_ZERO_C)
    named = re.compile(r"static const [^=]*?\b(bl_\w+|g_\w+)(\[[^\]]*\])*\s*=")

    def unused(d: str, pool: list[str]) -> bool:
        m = named.match(d)
        if m is None or not plan.eve:
            return False
        rest = cases + "\n".join(x for x in pool if x is not d)
        return re.search(rf"\b{m.group(1)}\b", rest) is None

    while True:
        pool = plan.eve_defs + plan.geoms
        defs = [d for d in plan.eve_defs if not unused(d, pool)]
        geoms = [d for d in plan.geoms if not unused(d, pool)]
        if len(defs) == len(plan.eve_defs) and len(geoms) == len(plan.geoms):
            return
        plan.eve_defs, plan.geoms = defs, geoms


def emit_sources(
    art,
    art_name,
    art_sha,
    b,
    backend,
    plan: Plan,
    out: Path,
    buffers_in: str,
    out_capacity: int | None = None,
) -> list[Path]:
    c_banner = banner(art_name, art_sha, b, backend, ("/*", "*/"))
    input_len = math.prod(art.input_shape)
    eve = has_modes(art)
    header = f"""{c_banner}#ifndef BL_MODEL_H
#define BL_MODEL_H

#include <stdint.h>

#include "bl_kernels.h"

#define BL_MODEL_INPUT_LEN {input_len}u
#define BL_MODEL_OUTPUT_LEN {art.num_classes}u
#define BL_MODEL_NUM_TASKS {len(plan.tasks)}u
/* Input elements one resumable input-load step copies (codegen granularity; the whole input when coarse). */
#define BL_MODEL_INPUT_CHUNK {plan.input_chunk or input_len}u
#define BL_MODEL_OUTPUT_FRAC {art.weight_layers()[-1]["out_frac"]}
/* 1: activation buffers live in the board's non-volatile section (BL_NVM) and survive a power failure. */
#define BL_MODEL_BUFFERS_NVM {int(buffers_in == "nvm")}

/* Copy an int16 input (input_frac fraction bits) into the model's first activation buffer. */
void bl_model_load_input(const int16_t *input);
/* Copy elements [e0, e1) of an int16 input straight from `src` (e.g. the image's input buffer, read as
 * volatile) into the first activation buffer: one resumable step of the input load. */
void bl_model_load_input_part(const volatile int16_t *src, uint16_t e0, uint16_t e1);
/* Run task t (0 .. BL_MODEL_NUM_TASKS-1): one kernel call on one unit of work. */
bl_status bl_model_task(uint16_t t);
/* The logits after the last task. */
const int16_t *bl_model_output(void);
/* 1 where task t is the last task of its layer (checkpointing at layer granularity). */
uint8_t bl_model_task_layer_end(uint16_t t);
/* All tasks in order; calls hook(t) before each task if hook is not NULL. */
bl_status bl_model_run(const int16_t *input, int16_t *logits, void (*hook)(unsigned));
/* All tasks in order with bl_mark(t + 1) before task t (the model app's run; BL_MODEL_MARK_FIRST/LAST narrow
 * the marks for a measuring build): the same calls as bl_model_run, without its per-task dispatch. */
bl_status bl_model_run_marked(const int16_t *input, int16_t *logits);
{f"{chr(10)}#define BL_MODEL_NUM_MODES {len(art.modes)}u{chr(10)}{eve_modes.MODEL_H_MODE_API}" if eve else ""}

#endif /* BL_MODEL_H */
"""
    fft_ks = sorted(
        {layer["block"] for layer in art.weight_layers() if plan.paths.get(layer["name"]) == "fft"}
    )
    weights = [c_banner, "#include <stdint.h>\n", '#include "model.h"\n\n']
    weights += plan.arrays
    if fft_ks:
        kmax = max(fft_ks)
        wr, wi = twiddles(kmax)
        weights.append(c_array("int16_t", "bl_twiddles", np.stack([wr, wi], axis=1)))
    fft_cfgs = [f"static const bl_fft_cfg fft{k} = {{{k}u, {max(fft_ks)}u, bl_twiddles}};" for k in fft_ks]
    _prune_eve_defs(plan, tasks_mod.dispatch_c(plan, b))  # the statics the dispatch uses
    model_c = f"""{c_banner}#include <stddef.h>
#include <stdint.h>

#include "bl_kernels.h"
#include "bl_platform.h"
{'#include "bl_eve.h"' + chr(10) if eve else ""}#include "model.h"

{chr(10).join(plan.decls)}
{"extern const int16_t bl_twiddles[];" if fft_ks else ""}

/* Activation buffers (ping-pong between layers; ReLU in place), FFT-path spectra and scratch. */
#if BL_MODEL_BUFFERS_NVM
#define BL_MODEL_BUF BL_NVM
#else
#define BL_MODEL_BUF
#endif
BL_MODEL_BUF int16_t bl_act0[{plan.act_len}];
BL_MODEL_BUF int16_t bl_act1[{plan.act_len}];
{f"BL_MODEL_BUF int16_t bl_xs[{plan.xs_len}];" if plan.xs_len else ""}
{f"int16_t bl_work[{4 * plan.max_k}];" if plan.max_k else ""}
{f"BL_MODEL_BUF int32_t bl_acc0[{plan.acc_len}];" if plan.acc_len else ""}
{f"BL_MODEL_BUF int32_t bl_acc1[{plan.acc_len}];" if plan.acc_len else ""}

{chr(10).join(plan.geoms)}
{chr(10).join(fft_cfgs)}
{chr(10).join(plan.eve_defs)}
{eve_modes.model_c_mode_api(len(art.modes)) if eve else ""}

void bl_model_load_input(const int16_t *input)
{{
  uint16_t i;
  for (i = 0; i < BL_MODEL_INPUT_LEN; i++) {{
    bl_act0[i] = input[i];
  }}
}}

void bl_model_load_input_part(const volatile int16_t *src, uint16_t e0, uint16_t e1)
{{
  uint16_t i;
  for (i = e0; i < e1; i++) {{
    bl_act0[i] = src[i];
  }}
}}

{tasks_mod.dispatch_c(plan, b)}
const int16_t *bl_model_output(void)
{{
  return {plan.output_buffer};
}}

bl_status bl_model_run(const int16_t *input, int16_t *logits, void (*hook)(unsigned))
{{
  uint16_t t;
  bl_status st;
  const int16_t *out;
  bl_model_load_input(input);
  for (t = 0; t < BL_MODEL_NUM_TASKS; t++) {{
    if (hook != NULL) {{
      hook(t);
    }}
    st = bl_model_task(t);
    if (st != BL_OK) {{
      return st;
    }}
  }}
  out = bl_model_output();
  for (t = 0; t < BL_MODEL_OUTPUT_LEN; t++) {{
    logits[t] = out[t];
  }}
  return BL_OK;
}}

{tasks_mod.run_marked_c(plan, b)}"""
    from batteryless.codegen.model_input import render_model_input_header

    files = []
    for name, text in (
        ("model.h", header),
        ("model.c", model_c),
        ("model_weights.c", "".join(weights)),
        ("model_input.h", render_model_input_header(art, c_banner)),  # raw input → int16, for device code
        # the largest FFT the model runs (0: none), read by the top-level CMakeLists.txt: the cmsis
        # backend's fft_q15.c then references (and the linker keeps) only CMSIS-DSP's tables up to it
        (
            "model.cmake",
            f"{banner(art_name, art_sha, b, backend, ('#', '')).rstrip()}\n"
            f'list(APPEND EXTRA_DEFINES "BL_FFT_MAX_K={plan.max_k}")\n'
            # the platform's output buffer when the memory plan shrank it (codegen/memory.py)
            + (f'list(APPEND EXTRA_DEFINES "BL_OUT_CAPACITY={out_capacity}u")\n' if out_capacity else ""),
        ),
    ):
        p = out / name
        atomic_write(p, text)
        files.append(p)
    return files
