"""ACE code generation: artifact + board → deterministic C sources and ``schedule.json``.

The generated model is a list of atomic *tasks* (DESIGN.md contract 5): each task is one kernel call on one
unit of work (an output block, a row range, the input FFTs of one block, …) that reads one activation buffer
and writes another (ReLU works in place, which is idempotent), so a checkpointing runtime can commit after any
task and re-execute the next one. ``bl_model_task(t)`` runs task t; ``bl_model_run`` runs them all.

Files written to ``out_dir``: ``model.h``, ``model.c`` (buffers and the task switch), ``model_weights.c``
(const weights, spectra, biases, twiddles — in the board's non-volatile code region), ``model_input.h``
(raw input → int16 as the numeric spec quantises it, codegen/model_input.py), ``schedule.json``.
Every file starts with a banner naming the tool version and inputs; same inputs → same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from batteryless import __version__
from batteryless.artifact import Artifact, load_artifact, propagate_shapes
from batteryless.boards import Board, load_board
from batteryless.codegen import fusion
from batteryless.codegen import granularity as granularity_mod
from batteryless.codegen import modes as eve_modes
from batteryless.codegen import tasks as tasks_mod
from batteryless.codegen.costs import CostModel, cost_model
from batteryless.errors import CodegenError, UsageError
from batteryless.eve.modes import has_modes
from batteryless.paths import atomic_write
from batteryless.spec import twiddles
from batteryless.stand_in import codegen_warning

SCHEDULE_SCHEMA = 1
DENSE_ROWS_PER_TASK = 16  # dense linear: rows per task
DENSE_CHANNELS_PER_TASK = 8  # dense conv: output channels per task
STACK_RESERVE_BYTES = {"msp430x": 512, "cortex-m4": 2048, "cortex-m55": 2048, "host": 0}
CODE_ESTIMATE_BYTES = {"msp430x": 12 * 1024, "cortex-m4": 24 * 1024, "cortex-m55": 24 * 1024, "host": 0}


@dataclass
class Task:
    name: str
    layer: str
    kind: str
    call: str  # the C statement (returns bl_status)
    macs: int = 0
    butterflies: int = 0
    elements: int = 0
    out_bytes: int = 0  # bytes of activation this task writes (what a commit after it saves)
    outputs: int = 0  # bl_mac_step: outputs of its unit (the step bound's per-output term)
    op: str = ""  # bl_mac_step: the layer's op (linear / conv steps have their own step bounds)
    # EVE: the block-selecting call for a mode that runs this layer differently (codegen/modes.py), with
    # {sel}, {shift}, {bias}, ... filled per mode; None: every mode makes the call above
    sel_fmt: str | None = None
    in_block: int | None = None  # linear FFT input transform: the input block j (a mode may not read it)
    # EVE, a dense layer some mode narrows: the task's whole per-mode C expression (modes.dense_rows_case)
    mode_expr: str | None = None
    # EVE, a whole-row task of a circulant layer: its output rows [r0, r1) and the C that zeroes a row range
    # of its output (a mode that drops them all only zeroes; codegen/modes.py task_case)
    rows: tuple[int, int] | None = None
    zero: Any = None
    # loop continuation: (C template with {j}, j) when this task is step j of a run of steps that differ
    # only by j (codegen/tasks.py dispatches such a run as one entry); None: dispatched by its own call
    chunk: tuple[str, int] | None = None
    # bl_mac_step: the task's bl_mac_unit when its call names it as {unit} (the unit table holds only the
    # units of tasks dispatched one by one; codegen/tasks.py numbers them)
    unit: tuple[int, ...] | None = None


@dataclass
class CodegenResult:
    out_dir: Path
    files: list[Path]
    schedule: dict[str, Any]
    paths: dict[str, str]  # layer → "fft" | "direct", as generated (pass to spec.integer_inference)
    # One line when the board says this backend's images will not compute on the part (board.toml
    # [stand_in]; batteryless.stand_in), else None. The CLI prints it; the C is generated either way
    # (the image still links, and its size and host runs are still useful).
    warning: str | None = None


@dataclass
class _Plan:
    tasks: list[Task] = field(default_factory=list)
    arrays: list[str] = field(default_factory=list)  # C definitions for model_weights.c
    decls: list[str] = field(default_factory=list)  # extern declarations for model.c
    geoms: list[str] = field(default_factory=list)  # static const geometry structs in model.c
    paths: dict[str, str] = field(default_factory=dict)
    act_len: int = 0
    xs_len: int = 0
    max_k: int = 0
    weight_bytes: int = 0
    layers: list[dict[str, Any]] = field(default_factory=list)
    output_buffer: str = "bl_act0"
    units: list[tuple[int, ...]] = field(default_factory=list)  # bl_mac_unit table (fine granularity)
    acc_len: int = 0  # int32 per partial buffer bl_acc0 / bl_acc1 (0: none needed)
    input_chunk: int = 0  # input elements one resumable input-load task copies (0: the whole input)
    eve: dict[str, Any] = field(default_factory=dict)  # layer -> (LayerModes, C literals) (codegen/modes.py)
    eve_defs: list[str] = field(default_factory=list)  # per-mode selections and values, static in model.c
    ranges: bool = False  # range dispatch (loop continuation) for this board (codegen/tasks.py)


def _c_array(ctype: str, name: str, values: np.ndarray, attrs: str = "") -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1).tolist()] or ["0"]
    lines, line = [], ""
    for tok in flat:
        if line and len(line) + len(tok) + 1 > 110:
            lines.append(line)
            line = ""
        line += tok + ","
    lines.append(line)
    return f"const {ctype} {name}[{len(flat)}]{attrs} = {{\n" + "\n".join(lines) + "\n};\n"


def _elem_type(layer: dict) -> tuple[str, str, int]:
    return ("int8_t", "w8", 1) if layer["weight_bits"] == 8 else ("int16_t", "w16", 2)


def choose_path(layer: dict, shapes_in: tuple, shapes_out: tuple, costs: CostModel, want: str) -> str:
    """Per-layer path: the one asked for, or ("auto") the cheaper one under the board's cost model."""
    if layer["block"] == 1:
        return "direct"
    if want in ("fft", "direct"):
        return want
    if want == "artifact":
        return layer.get("path", "direct")
    direct = _layer_cost(layer, shapes_in, shapes_out, "direct", costs)
    fft = _layer_cost(layer, shapes_in, shapes_out, "fft", costs)
    return "fft" if fft < direct else "direct"


def _layer_cost(layer, shape_in, shape_out, path, costs: CostModel) -> float:
    """Estimated cycles of one weight layer on ``path``: the features ``_plan`` gives its tasks (which are
    what the direct kernels iterate: real output rows/channels only, never the padding of the last block),
    priced by the board's cost table."""
    k = layer["block"]
    rows, cols = (
        (layer["out_features"], layer["in_features"])
        if layer["op"] == "linear"
        else (layer["out_channels"], layer["in_channels"])
    )
    p, q = math.ceil(rows / k), math.ceil(cols / k)
    taps = math.prod(layer.get("kernel_size", [1]))
    pos_out = math.prod(shape_out[2:]) if layer["op"] != "linear" else 1
    pos_in = math.prod(shape_in[2:]) if layer["op"] != "linear" else 1
    if path == "direct":
        # one task per block of k output rows (the last one partial), each row over the q·k (zero-padded)
        # input columns of its block row
        return costs.cycles(macs=rows * q * k * taps * pos_out, calls=p)
    bfly = (k // 2) * int(math.log2(k))
    # input transforms: one task per input block (linear) or per input row (conv); then one task per block row
    in_tasks = q if layer["op"] == "linear" else (shape_in[2] if len(shape_in) > 3 else 1)
    return costs.cycles(
        fft_macs=4 * p * q * (k // 2 + 1) * taps * pos_out,
        butterflies=bfly * (q * pos_in + p * pos_out),
        calls=in_tasks + p,
    )


EVE_ZERO_C = """/* EVE: output rows [o0, o1) of y[][h][w] that the mode drops are 0 (spec.py mode_layer_view),
 * within rows y0..y1 and columns x0..x1 of each; returns st, the status of the call made before it. */
static bl_status bl_eve_zero(bl_status st, int16_t *y, uint16_t o0, uint16_t o1, uint16_t h, uint16_t w,
                             uint16_t y0, uint16_t y1, uint16_t x0, uint16_t x1)
{
  for (uint16_t o = o0; o < o1; o++)
    for (uint16_t r = y0; r < y1; r++)
      for (uint16_t c = x0; c < x1; c++) y[((uint32_t)o * h + r) * w + c] = 0;
  return st;
}"""


def _dense_modes(plan: _Plan, lm) -> bool:
    """Whether ``lm`` is a dense layer's per-mode rows (its tasks are generated per mode)."""
    return lm is not None and lm.rank is None


def _zero_fmt(y: str, h: int, w: int, y0: int, y1: int, x0: int, x1: int):
    return lambda st, a, b: f"bl_eve_zero({st}, {y}, {a}u, {b}u, {h}u, {w}u, {y0}u, {y1}u, {x0}u, {x1}u)"


def _prune_eve_defs(plan: _Plan, cases: str) -> None:
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


def _mac_step_tasks(
    plan: _Plan, name, layer, geom, dims, wname, wsuf, bias_c, shift, cur, other, costs, max_step, eve=None
):
    """A direct-path layer as bl_mac_step tasks of at most ``max_step`` estimated cycles (granularity.py):
    each unit's chain over input-channel ranges alternates the partial buffers bl_acc0 / bl_acc1."""
    out_ch, out_h, out_w, in_ch, taps = dims
    k = layer["block"]
    units = granularity_mod.mac_units(out_ch, out_h, out_w, in_ch, taps, costs, max_step)
    if any(u[6] > 0 for u in units):
        plan.acc_len = max(plan.acc_len, out_ch * out_h * out_w)
    # loop continuation: every step of the layer is one call on the layer's grid with the step index j
    # (codegen/tasks.py makes the consecutive steps one dispatch entry); EVE layers keep one call per step
    grid = None
    if eve is None and plan.ranges:
        grid = granularity_mod.mac_grid(units, out_ch, out_h, out_w, in_ch)
    if grid is not None:
        gname = f"grid_{name}"
        plan.geoms.append(
            f"static const bl_mac_grid {gname} = {{"
            + ", ".join(f"{grid[f]}u" for f in granularity_mod.GRID_FIELDS)
            + "};"
        )
        accs = "bl_acc0, bl_acc1" if any(u[6] > 0 for u in units) else "NULL, NULL"
        at_fmt = (
            f"bl_mac_step_at_{wsuf}({cur}, &{geom}, {wname}, {k}u, {accs}, {bias_c}, {shift}, {other}, "
            f"&{gname}, {{j}})"
        )
    prev = None
    for j, u in enumerate(units):
        o0, o1, oy0, oy1, ox0, ox1, c0, c1 = u
        first = c0 == 0
        src = None if first else prev
        dst = "bl_acc0" if src in (None, "bl_acc1") else "bl_acc1"
        prev = dst
        if c1 == in_ch:
            dst = "NULL"  # the last step writes y
        n = (o1 - o0) * (oy1 - oy0) * (ox1 - ox0)
        is_eve = eve is not None
        if is_eve:  # EVE: the unit's index is fixed now (the mode calls below name it too)
            ui = len(plan.units)
            plan.units.append(u)
        call = (
            f"bl_mac_step_{wsuf}({cur}, &{geom}, {wname}, {k}u, {src or 'NULL'}, {dst}, {bias_c}, "
            f"{shift}, {other}, &bl_units[{ui if is_eve else '{unit}'}])"
        )
        chunk = None if grid is None else (at_fmt, j)
        mode_expr = None
        if _dense_modes(plan, eve):
            # a unit the mode drops entirely is skipped (its last step zeroes the output); one it keeps in
            # part runs whole, and its last step zeroes the dropped rows
            last = c1 == in_ch
            zero = _zero_fmt(other, out_h, out_w, oy0, oy1, ox0, ox1)
            mode_expr = eve_modes.dense_rows_case(
                eve,
                lambda a, b, call=call: call,
                o0,
                o1,
                (lambda st, a, b, zero=zero: zero(st, a, b)) if last else (lambda st, a, b: st),
            )
        plan.tasks.append(
            Task(
                f"{name}.o{o0}y{oy0}x{ox0}c{c0}",
                name,
                "mac_step",
                call,
                chunk=chunk,
                unit=None if is_eve else u,
                macs=n * (c1 - c0) * taps,
                out_bytes=2 * n if c1 == in_ch else 4 * n,
                outputs=n,
                op=layer["op"],
                sel_fmt=f"bl_mac_step_sel_{wsuf}({cur}, &{geom}, {wname}, {k}u, {src or 'NULL'}, {dst}, "
                f"{{bias}}, {{shift}}, {other}, &bl_units[{ui if is_eve else 0}], {{sel}})"
                if is_eve and mode_expr is None
                else None,
                mode_expr=mode_expr,
            )
        )


def _fft_tasks_fit(layer, s_in, s_out, costs: CostModel, max_step: float) -> bool:
    """Whether the FFT path's smallest tasks (one input transform, one output block) fit ``max_step``."""
    k = layer["block"]
    log2k = int(math.log2(k))
    bfly = (k // 2) * log2k
    if layer["op"] == "linear":
        q = math.ceil(layer["in_features"] / k)
        fin = costs.cycles(butterflies=bfly, calls=1)
        blk = costs.cycles(macs=4 * q * (k // 2 + 1), butterflies=bfly, calls=1)
    else:
        q = math.ceil(layer["in_channels"] / k)
        taps = math.prod(layer.get("kernel_size", [1]))
        pos_out = math.prod(s_out[2:])
        fin = costs.cycles(butterflies=q * s_in[-1] * bfly, calls=1)
        blk = costs.cycles(macs=4 * q * (k // 2 + 1) * taps * pos_out, butterflies=pos_out * bfly, calls=1)
    return max(fin, blk) <= max_step


def _plan(
    art: Artifact, board: Board, backend: str, want_path: str, costs: CostModel, max_step: float | None = None
) -> _Plan:
    """The tasks of one inference. ``max_step`` (fine granularity): no task's estimate above it — ReLU over
    element ranges, pools over channel ranges, direct-path layers in bl_mac_step steps, and FFT-path layers
    whose smallest step does not fit moved to the direct path."""
    shapes = propagate_shapes(art.layers, art.input_shape)
    plan = _Plan(ranges=tasks_mod.uses_ranges(board))
    plan.act_len = max(math.prod(s[1:]) for s in shapes)
    cur, other = "bl_act0", "bl_act1"
    # EVE: per mode, how many leading elements of the activation `cur` can be nonzero (None: all). A mode
    # that narrows a weight layer zeroes the rows it drops; the ReLUs and pools after it then work on the
    # kept channels only (the rest stay 0: relu(0) = pool(0) = 0, bit for bit the spec)
    live: list[int] | None = None
    fused_into: dict[str, str] = {}  # ReLU layer -> the weight layer applying it (codegen/fusion.py)
    for li, layer in enumerate(art.layers):
        op, name = layer["op"], layer["name"]
        s_in, s_out = shapes[li], shapes[li + 1]
        n_out = math.prod(s_out[1:])
        entry: dict[str, Any] = {
            "name": name,
            "op": op,
            "in_shape": list(s_in[1:]),
            "out_shape": list(s_out[1:]),
        }
        if op == "flatten":
            plan.layers.append(entry)
            continue
        if op == "relu" and name in fused_into:
            # applied by the weight layer's fused kernel: no task (in place, so the buffers do not swap)
            entry["fused_into"] = fused_into[name]
            plan.layers.append(entry)
            continue
        if op == "relu":
            per = n_out
            if max_step is not None and costs.cycles(elements=n_out, calls=1) > max_step:
                per = max(1, int((max_step - costs.cycles_per_call) // max(costs.cycles_per_element, 1e-9)))
            for j, e0 in enumerate(range(0, n_out, per)):
                n = min(per, n_out - e0)
                buf = f"{cur} + {e0}" if e0 else cur
                call = f"bl_relu_q15({buf}, {buf}, {n}u)"
                mode_expr = None
                if live is not None and any(e < e0 + n for e in live):
                    mode_expr = eve_modes.mode_chain(
                        [
                            call
                            if e >= e0 + n
                            else "BL_OK"
                            if e <= e0
                            else f"bl_relu_q15({buf}, {buf}, {e - e0}u)"
                            for e in live
                        ]
                    )
                plan.tasks.append(
                    Task(
                        name if per == n_out else f"{name}.e{e0}",
                        name,
                        "relu",
                        call,
                        elements=n,
                        out_bytes=2 * n,
                        mode_expr=mode_expr,
                        chunk=None
                        if per == n_out
                        else (f"{tasks_mod.RELU_CHUNK}({cur}, {n_out}u, {per}u, {{j}})", j),
                    )
                )
            plan.layers.append(entry)
            continue
        if op.startswith(("maxpool", "avgpool")):
            one_d = op.endswith("1d")
            c = s_in[1]
            ih, iw = (1, s_in[2]) if one_d else s_in[2:]
            oh, ow = (1, s_out[2]) if one_d else s_out[2:]
            kh, kw = (1, layer["kernel_size"][0]) if one_d else layer["kernel_size"]
            sh, sw = (1, layer["stride"][0]) if one_d else layer["stride"]
            g = f"g_{name}"
            plan.geoms.append(
                f"static const bl_pool_geom {g} = {{{c}u, {ih}u, {iw}u, {oh}u, {ow}u, {kh}u, {kw}u, "
                f"{sh}u, {sw}u}};"
            )
            fn = "bl_maxpool_q15" if op.startswith("max") else "bl_avgpool_q15"
            per_ch = ih * iw
            chans = c
            if max_step is not None and costs.cycles(elements=c * per_ch, calls=1) > max_step:
                chans = max(
                    1, int((max_step - costs.cycles_per_call) // max(per_ch * costs.cycles_per_element, 1e-9))
                )
            if (
                max_step is not None
                and not one_d
                and chans == 1
                and costs.cycles(elements=per_ch, calls=1) > max_step
            ):
                # one channel does not fit either: output-row ranges of one channel, each a 1-channel pool
                # over just the input rows its windows read (no padding, so the sub-geometry is exact)
                per_row = max(sh * iw * costs.cycles_per_element, 1e-9)
                rows = max(1, int((max_step - costs.cycles_per_call) // per_row))
                plan.geoms = [s for s in plan.geoms if not s.startswith(f"static const bl_pool_geom {g} =")]
                for ch in range(c):
                    for r0 in range(0, oh, rows):
                        nr = min(rows, oh - r0)
                        gr = f"g_{name}_r{nr}"
                        if not any(s.startswith(f"static const bl_pool_geom {gr} ") for s in plan.geoms):
                            plan.geoms.append(
                                f"static const bl_pool_geom {gr} = {{1u, {(nr - 1) * sh + kh}u, {iw}u, "
                                f"{nr}u, {ow}u, {kh}u, {kw}u, {sh}u, {sw}u}};"
                            )
                        xo, yo = ch * ih * iw + r0 * sh * iw, ch * oh * ow + r0 * ow
                        # every chunk the same sub-pool, and no input rows left over between channels:
                        # chunk j's input / output start at j times a fixed stride (loop continuation)
                        uniform = oh % rows == 0 and ih == oh * sh
                        j = ch * (oh // rows) + r0 // rows
                        plan.tasks.append(
                            Task(
                                f"{name}.ch{ch}r{r0}",
                                name,
                                op[:7],
                                f"{fn}({cur} + {xo}, &{gr}, {other} + {yo}, 0u, 1u)",
                                elements=((nr - 1) * sh + kh) * iw,
                                out_bytes=2 * nr * ow,
                                chunk=(
                                    f"{tasks_mod.POOL_ROWS}({fn}, {cur}, &{gr}, {other}, {rows * sh * iw}u, "
                                    f"{rows * ow}u, {{j}})",
                                    j,
                                )
                                if uniform
                                else None,
                            )
                        )
                cur, other = other, cur
                if live is not None:  # every channel pooled: the dropped ones stay 0
                    live = [-(-e // per_ch) * oh * ow for e in live]
                plan.layers.append(entry)
                continue
            live_ch = None if live is None else [min(c, -(-e // per_ch)) for e in live]
            for j, c0 in enumerate(range(0, c, chans)):
                c1 = min(c, c0 + chans)
                call = f"{fn}({cur}, &{g}, {other}, {c0}u, {c1}u)"
                mode_expr = None
                if live_ch is not None and any(r < c1 for r in live_ch):
                    # the kept channels pooled, the dropped ones zeroed (the other buffer holds old data)
                    mode_expr = eve_modes.dense_rows_case(
                        eve_modes.LayerModes(name, None, [], live_ch, []),
                        lambda a, b, fn=fn, cur=cur, g=g, other=other: (
                            f"{fn}({cur}, &{g}, {other}, {a}u, {b}u)"
                        ),
                        c0,
                        c1,
                        _zero_fmt(other, oh, ow, 0, oh, 0, ow),
                    )
                plan.tasks.append(
                    Task(
                        name if chans == c else f"{name}.ch{c0}",
                        name,
                        op[:7],
                        call,
                        elements=(c1 - c0) * per_ch,
                        out_bytes=2 * n_out * (c1 - c0) // c,
                        mode_expr=mode_expr,
                        chunk=None
                        if chans == c
                        else (f"{tasks_mod.POOL_CHUNK}({fn}, {cur}, &{g}, {other}, {chans}u, {{j}})", j),
                    )
                )
            if live_ch is not None:
                live = [r * oh * ow for r in live_ch]
            cur, other = other, cur
            plan.layers.append(entry)
            continue
        # weight layers
        path = choose_path(layer, s_in, s_out, costs, want_path)
        if path == "fft" and max_step is not None and not _fft_tasks_fit(layer, s_in, s_out, costs, max_step):
            path = "direct"  # no FFT step is smaller than one transform; the direct path cuts to any size
            entry["path_reason"] = "granularity: the FFT path's smallest step does not fit max_step_cycles"
        plan.paths[name] = path
        entry.update(block=layer["block"], path=path, weight_bits=layer["weight_bits"])
        ctype, wsuf, wbytes = _elem_type(layer)
        k = layer["block"]
        # the bias the path reads: int32 at the accumulator's format (direct) or bias_out (FFT, below)
        bias = f"{name}_bias" if layer.get("bias") and path == "direct" else None
        if bias:
            plan.arrays.append(_c_array("int32_t", bias, art.tensors[layer["bias"]]))
            plan.decls.append(f"extern const int32_t {bias}[];")
        bias_c = bias or "NULL"
        if op == "linear":
            rows, cols = layer["out_features"], layer["in_features"]
        else:
            rows, cols = layer["out_channels"], layer["in_channels"]
        p, q = math.ceil(rows / k), math.ceil(cols / k)
        shift = layer["in_frac"] + layer["weight_frac"] - layer["out_frac"]
        lm = eve_modes.layer_modes(art, layer)  # EVE: how each mode runs this layer (None: as stored)
        # the ReLU after this layer, if the backend's whole-unit direct kernel can apply it (not under EVE
        # modes, whose per-mode calls use the selecting kernels; the fine path's bl_mac_step keeps the task)
        relu = fusion.relu_after(art.layers, li) if lm is None and path == "direct" else None
        fuse = False
        if lm is not None and op == "linear":
            _add_geom(plan, f"g_{name}", f"{{{cols}u, 1u, 1u, {rows}u, 1u, 1u, 1u, 1u, 1u, 1u, 0u, 0u}}")
        if path == "fft":
            plan.max_k = max(plan.max_k, k)
            spec_name = f"{name}_spectra"
            plan.arrays.append(_c_array("int16_t", spec_name, art.tensors[layer["spectra"]]))
            plan.decls.append(f"extern const int16_t {spec_name}[];")
            plan.weight_bytes += art.tensors[layer["spectra"]].size * 2
            bo = f"{name}_bias_out" if layer.get("bias_out") else None
            if bo:
                plan.arrays.append(_c_array("int32_t", bo, art.tensors[layer["bias_out"]]))
                plan.decls.append(f"extern const int32_t {bo}[];")
            bo_c = bo or "NULL"
            log2k = int(math.log2(k))
            shift_z = layer["in_frac"] + layer["spectra_frac"] - log2k - layer["spectrum_frac"]
            shift_out = layer["spectrum_frac"] - layer["out_frac"]
            cfg = f"fft{k}"
            entry.update(shift_z=shift_z, shift_out=shift_out)
            lits = {"shift_z": str(shift_z), "shift_out": str(shift_out), "bias_out": bo_c}
        else:
            wname = f"{name}_w"
            plan.arrays.append(_c_array(ctype, wname, art.tensors[layer["weight"]]))
            plan.decls.append(f"extern const {ctype} {wname}[];")
            plan.weight_bytes += art.tensors[layer["weight"]].size * wbytes
            entry.update(shift=shift)
            lits = {"shift": str(shift), "bias": bias_c}
        if lm is not None:
            arrays, decls, defs = eve_modes.layer_data(lm, art, _c_array, path)
            plan.arrays += arrays
            plan.decls += decls
            plan.eve_defs += defs
            plan.weight_bytes += lm.rank.size * 2 if lm.rank is not None else 0
        taps = math.prod(layer.get("kernel_size", [1]))
        if op == "linear":
            if path == "fft":
                plan.xs_len = max(plan.xs_len, q * k)
                for j in range(q):
                    plan.tasks.append(
                        Task(
                            f"{name}.fft_in{j}",
                            name,
                            "fft_in",
                            f"bl_linear_fft_input_q15({cur}, {cols}u, &{cfg}, bl_xs, {j}u, {j + 1}u, "
                            f"bl_work)",
                            butterflies=(k // 2) * log2k,
                            out_bytes=2 * k,
                            in_block=j,
                        )
                    )
                for i in range(p):
                    nrows = min(k, rows - i * k)
                    plan.tasks.append(
                        Task(
                            f"{name}.block{i}",
                            name,
                            "fft_block",
                            f"bl_linear_fft_block_q15(bl_xs, {cols}u, {spec_name}, &{cfg}, {shift_z}, "
                            f"{shift_out}, "
                            f"{bo_c}, {other}, {rows}u, {i}u, bl_work)",
                            macs=4 * q * (k // 2 + 1),
                            butterflies=(k // 2) * log2k,
                            out_bytes=2 * nrows,
                            sel_fmt=f"bl_conv_fft_block_sel_q15(bl_xs, &g_{name}, {spec_name}, &{cfg}, "
                            f"{{shift_z}}, {{shift_out}}, {{bias_out}}, {other}, {i}u, 0u, 1u, bl_work, "
                            "{sel})"
                            if lm
                            else None,
                            rows=(i * k, i * k + nrows),
                            zero=_zero_fmt(other, 1, 1, 0, 1, 0, 1),
                        )
                    )
            elif (
                max_step is not None
                and costs.cycles(macs=min(rows, k if k > 1 else DENSE_ROWS_PER_TASK) * q * k, calls=1)
                > max_step
            ):
                g = f"g_{name}"
                _add_geom(plan, g, f"{{{cols}u, 1u, 1u, {rows}u, 1u, 1u, 1u, 1u, 1u, 1u, 0u, 0u}}")
                dims = (rows, 1, 1, cols, 1)
                _mac_step_tasks(
                    plan,
                    name,
                    layer,
                    g,
                    dims,
                    wname,
                    wsuf,
                    bias_c,
                    shift,
                    cur,
                    other,
                    costs,
                    max_step,
                    lm,
                )
            else:
                step = k if k > 1 else DENSE_ROWS_PER_TASK
                if (
                    backend == "cmsis"
                    and k > 1
                    and (max_step is None or costs.cycles(macs=rows * q * k, calls=1) <= max_step)
                ):
                    # the cmsis kernel reverses and doubles the input blocks once per call
                    # (firmware/kernels/cmsis/linear.c): one call per layer where the granularity allows
                    step = rows
                fuse = relu is not None and fusion.fuses(backend, "linear_circ" if k > 1 else "linear_dense")
                for r0 in range(0, rows, step):
                    r1 = min(rows, r0 + step)
                    mode_expr = None
                    if k > 1:
                        call = (
                            f"{fusion.kernel_name('linear_circ', wsuf, fuse)}({cur}, {cols}u, {wname}, {k}u, "
                            f"{bias_c}, {shift}, "
                            f"{other}, "
                            f"{rows}u, {r0}u, {r1}u)"
                        )
                        macs = (r1 - r0) * q * k
                    else:
                        fmt = (
                            f"{fusion.kernel_name('linear_dense', wsuf, fuse)}({cur}, {cols}u, {wname}, "
                            f"{bias_c}, {shift}, {other}, "
                            f"{rows}u, {{a}}u, {{b}}u)"
                        )
                        dense_call = lambda a, b, f=fmt: f.format(a=a, b=b)  # noqa: E731
                        call = dense_call(r0, r1)
                        macs = (r1 - r0) * cols
                        if _dense_modes(plan, lm):
                            zero = _zero_fmt(other, 1, 1, 0, 1, 0, 1)
                            mode_expr = eve_modes.dense_rows_case(lm, dense_call, r0, r1, zero)
                    sel_fmt = None
                    if (
                        lm is not None and mode_expr is None
                    ):  # the rows as one whole step of the selecting kernel
                        plan.units.append((r0, r1, 0, 1, 0, 1, 0, cols))
                        sel_fmt = (
                            f"bl_mac_step_sel_{wsuf}({cur}, &g_{name}, {wname}, {k}u, NULL, NULL, {{bias}}, "
                            f"{{shift}}, {other}, &bl_units[{len(plan.units) - 1}], {{sel}})"
                        )
                    plan.tasks.append(
                        Task(
                            f"{name}.rows{r0}" + (f"+{relu}" if fuse else ""),
                            name,
                            "mac",
                            call,
                            macs=macs,
                            out_bytes=2 * (r1 - r0),
                            sel_fmt=sel_fmt,
                            mode_expr=mode_expr,
                            rows=(r0, r1),
                            zero=_zero_fmt(other, 1, 1, 0, 1, 0, 1),
                        )
                    )
        else:
            one_d = op == "conv1d"
            c, o = cols, rows
            ih, iw = (1, s_in[2]) if one_d else s_in[2:]
            oh, ow = (1, s_out[2]) if one_d else s_out[2:]
            kh, kw = (1, layer["kernel_size"][0]) if one_d else layer["kernel_size"]
            sh, sw = (1, layer["stride"][0]) if one_d else layer["stride"]
            ph, pw = (0, layer["padding"][0]) if one_d else layer["padding"]
            g = f"g_{name}"
            plan.geoms.append(
                f"static const bl_conv_geom {g} = {{{c}u, {ih}u, {iw}u, {o}u, {oh}u, {ow}u, "
                f"{kh}u, {kw}u, {sh}u, {sw}u, {ph}u, {pw}u}};"
            )
            if path == "fft":
                plan.xs_len = max(plan.xs_len, q * k * ih * iw)
                # EVE: a mode that reads only the first input block columns transforms only those (xs keeps
                # block j at the same place whatever in_ch says: bl_kernels.h), with an in_ch-cut geometry
                in_geom = [g] * (len(lm.cols) if lm is not None and lm.rank is not None else 0)
                for mi, used in enumerate(lm.cols if in_geom else []):
                    n_in = min(c, (max(j for j, u in enumerate(used) if u) + 1) * k)
                    if n_in < c:
                        in_geom[mi] = f"g_{name}_in{n_in}"
                        _add_geom(
                            plan,
                            in_geom[mi],
                            f"{{{n_in}u, {ih}u, {iw}u, {o}u, {oh}u, {ow}u, "
                            f"{kh}u, {kw}u, {sh}u, {sw}u, {ph}u, {pw}u}}",
                        )
                for y in range(ih):
                    fin = "bl_conv_fft_input_q15({cur}, &{g}, &{cfg}, bl_xs, {y}u, {y1}u, bl_work)"
                    mode_expr = None
                    if any(x != g for x in in_geom):
                        mode_expr = eve_modes.mode_chain(
                            [fin.format(cur=cur, g=x, cfg=cfg, y=y, y1=y + 1) for x in in_geom]
                        )
                    plan.tasks.append(
                        Task(
                            f"{name}.fft_in_row{y}",
                            name,
                            "fft_in",
                            f"bl_conv_fft_input_q15({cur}, &{g}, &{cfg}, bl_xs, {y}u, {y + 1}u, bl_work)",
                            mode_expr=mode_expr,
                            butterflies=q * iw * (k // 2) * log2k,
                            out_bytes=2 * q * k * iw,
                        )
                    )
                for i in range(p):
                    nch = min(k, o - i * k)
                    plan.tasks.append(
                        Task(
                            f"{name}.block{i}",
                            name,
                            "fft_block",
                            f"bl_conv_fft_block_q15(bl_xs, &{g}, {spec_name}, &{cfg}, {shift_z}, "
                            f"{shift_out}, {bo_c}, "
                            f"{other}, {i}u, 0u, {oh}u, bl_work)",
                            macs=4 * q * (k // 2 + 1) * taps * oh * ow,
                            butterflies=oh * ow * (k // 2) * log2k,
                            out_bytes=2 * nch * oh * ow,
                            sel_fmt=f"bl_conv_fft_block_sel_q15(bl_xs, &{g}, {spec_name}, &{cfg}, "
                            f"{{shift_z}}, {{shift_out}}, {{bias_out}}, {other}, {i}u, 0u, {oh}u, bl_work, "
                            "{sel})"
                            if lm
                            else None,
                            rows=(i * k, i * k + nch),
                            zero=_zero_fmt(other, oh, ow, 0, oh, 0, ow),
                        )
                    )
            elif (
                max_step is not None
                and costs.cycles(
                    macs=min(o, k if k > 1 else DENSE_CHANNELS_PER_TASK) * q * k * taps * oh * ow, calls=1
                )
                > max_step
            ):
                dims = (o, oh, ow, c, kh * kw)
                _mac_step_tasks(
                    plan,
                    name,
                    layer,
                    g,
                    dims,
                    wname,
                    wsuf,
                    bias_c,
                    shift,
                    cur,
                    other,
                    costs,
                    max_step,
                    lm,
                )
            else:
                step = k if k > 1 else DENSE_CHANNELS_PER_TASK
                fuse = relu is not None and fusion.fuses(backend, "conv_circ" if k > 1 else "conv_dense")
                for o0 in range(0, o, step):
                    o1 = min(o, o0 + step)
                    mode_expr = None
                    if k > 1:
                        call = (
                            f"{fusion.kernel_name('conv_circ', wsuf, fuse)}({cur}, &{g}, {wname}, {k}u, "
                            f"{bias_c}, {shift}, {other}, "
                            f"{o0}u, {o1}u, 0u, {oh}u)"
                        )
                        macs = (o1 - o0) * q * k * taps * oh * ow
                    else:
                        fmt = (
                            f"{fusion.kernel_name('conv_dense', wsuf, fuse)}({cur}, &{g}, {wname}, {bias_c}, "
                            f"{shift}, {other}, "
                            f"{{a}}u, {{b}}u, 0u, {oh}u)"
                        )
                        dense_call = lambda a, b, f=fmt: f.format(a=a, b=b)  # noqa: E731
                        call = dense_call(o0, o1)
                        macs = (o1 - o0) * c * taps * oh * ow
                        if _dense_modes(plan, lm):
                            zero = _zero_fmt(other, oh, ow, 0, oh, 0, ow)
                            mode_expr = eve_modes.dense_rows_case(lm, dense_call, o0, o1, zero)
                    sel_fmt = None
                    if (
                        lm is not None and mode_expr is None
                    ):  # the channels as one whole step of the sel kernel
                        plan.units.append((o0, o1, 0, oh, 0, ow, 0, c))
                        sel_fmt = (
                            f"bl_mac_step_sel_{wsuf}({cur}, &{g}, {wname}, {k}u, NULL, NULL, {{bias}}, "
                            f"{{shift}}, {other}, &bl_units[{len(plan.units) - 1}], {{sel}})"
                        )
                    plan.tasks.append(
                        Task(
                            f"{name}.ch{o0}" + (f"+{relu}" if fuse else ""),
                            name,
                            "mac",
                            call,
                            macs=macs,
                            out_bytes=2 * (o1 - o0) * oh * ow,
                            sel_fmt=sel_fmt,
                            mode_expr=mode_expr,
                            rows=(o0, o1),
                            zero=_zero_fmt(other, oh, ow, 0, oh, 0, ow),
                        )
                    )
        if fuse:
            entry["fused_relu"] = relu
            fused_into[relu] = name
        if lm is not None:
            plan.eve[name] = (lm, lits)
        out_hw = math.prod(s_out[2:]) if len(s_out) > 2 else 1
        live = None if lm is None or all(r >= rows for r in lm.rows) else [r * out_hw for r in lm.rows]
        cur, other = other, cur
        plan.layers.append(entry)
    plan.output_buffer = cur
    return plan


def _add_geom(plan: _Plan, name: str, init: str) -> None:
    line = f"static const bl_conv_geom {name} = {init};"
    if line not in plan.geoms:
        plan.geoms.append(line)


def _banner(art_name: str, art_sha: str, board: Board, backend: str, comment: tuple[str, str]) -> str:
    open_, close = comment
    return (
        f"{open_} Generated by batteryless {__version__} from {art_name} (sha256 {art_sha[:16]}) for board "
        f"{board.name}, backend {backend}. Do not edit. {close}\n"
    )


def _memory_plan(plan: _Plan, board: Board, backend: str, buffers_in: str) -> dict[str, Any]:
    act_bytes = 2 * plan.act_len
    # activations and FFT-path spectra persist across tasks (NVM when checkpointing); scratch stays in RAM
    persistent = {"bl_act0": act_bytes, "bl_act1": act_bytes, "bl_xs": 2 * plan.xs_len}
    if plan.acc_len:  # bl_mac_step partials (fine granularity), double-buffered
        persistent.update(bl_acc0=4 * plan.acc_len, bl_acc1=4 * plan.acc_len)
    buffers = {**persistent, "bl_work": 2 * 2 * plan.max_k}
    stack = STACK_RESERVE_BYTES.get(board.cpu, 0)
    in_nvm = sum(persistent.values()) if buffers_in == "nvm" else 0
    ram_buf = sum(buffers.values()) - in_nvm
    ram_need = ram_buf + stack
    code_need = plan.weight_bytes + CODE_ESTIMATE_BYTES.get(board.cpu, 0)
    regions: dict[str, Any] = {}
    for role, need, what in (
        ("ram", ram_need, f"buffers {ram_buf} B + stack reserve {stack} B"),
        ("nvm", in_nvm, f"activation buffers kept in NVM {in_nvm} B"),
        (
            "code",
            code_need,
            f"weights {plan.weight_bytes} B + code estimate {CODE_ESTIMATE_BYTES.get(board.cpu, 0)} B",
        ),
    ):
        if not board.has_region(role) or (role == "nvm" and not in_nvm):
            continue
        reg = board.region(role)
        regions[role] = {"used": need, "size": reg.usable, "what": what}
        if need > reg.usable:
            raise CodegenError(
                f"model does not fit board {board.name}: region '{role}' needs {need} bytes ({what}) but has "
                f"{reg.usable} usable — overflow {need - reg.usable} bytes. Use larger blocks, "
                f"8-bit weights, "
                "pruning, or a bigger board."
            )
    return {
        "regions": regions,
        "buffers": buffers,
        "buffers_in": buffers_in,
        "weight_bytes": plan.weight_bytes,
    }


def _write_atomic(path: Path, text: str) -> None:
    atomic_write(path, text)  # generated sources get the umask's mode, like any file a compiler writes


def codegen(
    artifact: str | Path,
    board: str | Path | Board,
    out_dir: str | Path,
    backend: str | None = None,
    path: str = "auto",
    buffers_in: str = "ram",
    granularity: str | float | None = "auto",
    capacitance_f: float | None = None,
    eve_policy: str | Path | dict | None = None,
) -> CodegenResult:
    """Generate the model's C sources and schedule.json for ``board`` into ``out_dir``.

    ``path``: "auto" (cheaper of FFT / direct per circulant layer under the board's cost model), "fft",
    "direct", or "artifact" (the artifact's own per-layer choice). ``buffers_in``: "ram", or "nvm" to keep
    the activation buffers in the board's non-volatile section (what an intermittent runtime needs).
    ``granularity``: "auto" (from the board's energy buffer and power model: the default tasks if the
    largest fits half a power-on period, else tasks cut to that), "coarse" (the default tasks), or the most
    estimated cycles one task may take (codegen/granularity.py); schedule.json records the choice.
    ``capacitance_f``: the energy buffer ``auto`` sizes tasks for (default: the board's ``[energy_buffer]``),
    e.g. the buffer an emulation will use. ``eve_policy``: for an EVE artifact, a rate-rule document
    (``batteryless policy``) whose parameters the mode table carries (eve/policy.py).
    """
    if path not in ("auto", "fft", "direct", "artifact"):
        raise UsageError(f"path must be auto, fft, direct or artifact, not {path!r}")
    art_path = Path(artifact)
    art = load_artifact(art_path)
    b = board if isinstance(board, Board) else load_board(board)
    if capacitance_f is not None:
        b = granularity_mod.with_capacitance(b, capacitance_f)
    backend = backend or b.default_backend
    if backend not in b.backends:
        raise UsageError(
            f"backend {backend!r} is not available on board {b.name} (it has: {', '.join(b.backends)})"
        )
    if backend not in ("ref", "cmsis", "lea"):
        raise CodegenError(
            f"backend {backend!r}: only the ref, cmsis and lea kernels exist; generate with --backend ref"
        )
    if eve_policy is not None:  # checked before anything is written
        from batteryless.eve.policy import load_policy, table_from_policy

        if not has_modes(art):
            raise UsageError(f"{art_path}: an EVE policy is for an artifact with modes (compress --modes K)")
        eve_policy = load_policy(eve_policy)
        table_from_policy(eve_policy, b.energy_buffer, [m["name"] for m in art.modes])
    costs = cost_model(b, backend)
    want = granularity_mod.parse_granularity(granularity)
    plan = _plan(art, b, backend, path, costs)
    gran = granularity_mod.choose(b, costs, want, max(_task_cycles(t, costs) for t in plan.tasks))
    if gran.mode == "fine":
        plan = _plan(art, b, backend, path, costs, gran.max_step_cycles)
        plan.input_chunk = granularity_mod.input_chunk(
            math.prod(art.input_shape), costs, gran.max_step_cycles
        )
    if buffers_in not in ("ram", "nvm"):
        raise UsageError(f"buffers_in must be ram or nvm, not {buffers_in!r}")
    memory = _memory_plan(plan, b, backend, buffers_in)
    art_sha = hashlib.sha256(art_path.read_bytes()).hexdigest()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = _emit(art, art_path.name, art_sha, b, backend, plan, out, buffers_in)
    schedule = _schedule(art, art_path.name, art_sha, b, backend, plan, memory, costs)
    in_len = math.prod(art.input_shape)
    chunk = plan.input_chunk or in_len
    schedule["granularity"] = {
        **gran.describe(),
        "largest_task_cycles": max(t["cycles"] for t in schedule["modes"][0]["tasks"]),
        # the intermittent runtime loads the input into NVM in resumable tasks of this many elements
        # (firmware/apps/flex: tasks 0 .. input_tasks-1, before the model's tasks)
        "input_chunk": chunk,
        "input_tasks": -(-in_len // chunk),
    }
    schedule["granularity"].update(
        granularity_mod.largest_step_bound(
            granularity_mod.step_model(b, backend), schedule["modes"][0]["tasks"], chunk
        )
    )
    if has_modes(art):  # EVE: every mode in the schedule, and the mode table (eve/device.py)
        from batteryless.eve.device import add_modes

        banner = _banner(art_path.name, art_sha, b, backend, ("/*", "*/"))
        cmake_banner = _banner(art_path.name, art_sha, b, backend, ("#", "")).replace(" \n", "\n")
        files += add_modes(art, schedule, b, out, banner, cmake_banner, policy=eve_policy)
    sched_path = out / "schedule.json"
    _write_atomic(sched_path, json.dumps(schedule, indent=1, sort_keys=True) + "\n")
    return CodegenResult(
        out, [*files, sched_path], schedule, dict(plan.paths), warning=codegen_warning(b, backend)
    )


def _emit(art, art_name, art_sha, b, backend, plan: _Plan, out: Path, buffers_in: str) -> list[Path]:
    c_banner = _banner(art_name, art_sha, b, backend, ("/*", "*/"))
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
        weights.append(_c_array("int16_t", "bl_twiddles", np.stack([wr, wi], axis=1)))
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
"""
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
            f"{_banner(art_name, art_sha, b, backend, ('#', '')).rstrip()}\n"
            f'list(APPEND EXTRA_DEFINES "BL_FFT_MAX_K={plan.max_k}")\n',
        ),
    ):
        p = out / name
        _write_atomic(p, text)
        files.append(p)
    return files


def _task_cycles(t: Task, costs: CostModel) -> float:
    return costs.cycles(macs=t.macs, butterflies=t.butterflies, elements=t.elements, calls=1)


def _schedule(art, art_name, art_sha, b: Board, backend, plan: _Plan, memory, costs: CostModel) -> dict:
    tasks = []
    costs_step = granularity_mod.step_model(b, backend)
    for i, t in enumerate(plan.tasks):
        fft = t.kind == "fft_block"  # frequency-domain multiplies: priced by cycles_per_fft_mac
        cycles = costs.cycles(
            macs=0 if fft else t.macs,
            fft_macs=t.macs if fft else 0,
            butterflies=t.butterflies,
            elements=t.elements,
            calls=1,
        )
        tasks.append(
            {
                "index": i,
                "name": t.name,
                "layer": t.layer,
                "kind": t.kind,
                "cycles": int(round(cycles)),
                "instructions": None,
                "energy_j": costs.energy_j(cycles),
                "nvm_write_bytes": t.out_bytes,
                "measured": False,
                # upper bound of this task's atomic step (task + loop + commit) from the board's fitted
                # [cost.<backend>.step]; None where no bound is fitted (e.g. FFT-path tasks)
                "step_bound_cycles": granularity_mod.step_bound(costs_step, t),
            }
        )
    return {
        "schema": SCHEDULE_SCHEMA,
        "generator": f"batteryless {__version__}",
        "artifact": {"file": art_name, "sha256": art_sha, "model": art.model, "dataset": art.dataset},
        "board": b.name,
        "backend": backend,
        "clock_hz": int(b.clock_hz),
        "cost_model": costs.describe(),
        "layers": plan.layers,
        "paths": dict(plan.paths),
        "modes": [{"name": m["name"], "tasks": tasks} for m in art.modes[:1]],
        "commit": {
            "fixed_cycles": costs.commit_cycles,
            "fixed_energy_j": costs.energy_j(costs.commit_cycles),
        },
        "memory_plan": memory,
    }
