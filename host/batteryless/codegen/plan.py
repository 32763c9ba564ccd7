"""The model as a plan of atomic tasks (DESIGN.md contract 5): per layer the path (FFT / direct), the
kernel call of each task, its cost features, and the const arrays the tasks read (weights, spectra, biases,
twiddles, EVE selections). ``build_plan`` is what ``codegen`` emits; the cost fit and benchmarks reuse it."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from batteryless.artifact import Artifact, propagate_shapes
from batteryless.boards import Board
from batteryless.codegen import fusion
from batteryless.codegen import granularity as granularity_mod
from batteryless.codegen import modes as eve_modes
from batteryless.codegen import tasks as tasks_mod
from batteryless.codegen.c_source import c_array
from batteryless.codegen.costs import CostModel

DENSE_ROWS_PER_TASK = 16  # dense linear: rows per task
DENSE_CHANNELS_PER_TASK = 8  # dense conv: output channels per task
# transforms shorter than this are priced once more per butterfly (costs.py short_butterflies: the lea
# backend's DSPLib FFT takes 16 points and more, shorter ones run on the CPU)
SHORT_FFT = 16


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
    # weight-layer tasks: the output values it computes (bl_mac_step: of its unit, the step bound's
    # per-output term too); the cost model's `outputs` feature
    outputs: int = 0
    block: int = 0  # weight-layer tasks: the layer's block size (1: dense), which kernel family runs it
    weight_bits: int = 0  # direct-path weight-layer tasks: the stored weights' width (8 or 16)
    transforms: int = 0  # FFT-path tasks: FFTs / inverse FFTs it runs
    # weight-layer tasks: the layer's op (linear / conv2d / conv1d: bl_mac_step's linear and conv steps have
    # their own step bounds, and dense conv MACs their own cost)
    op: str = ""
    # EVE: the block-selecting call for a mode that runs this layer differently (codegen/modes.py), with
    # {sel}, {shift}, {bias}, ... filled per mode; None: every mode makes the call above
    sel_fmt: str | None = None
    # EVE, a task over one block row of a linear layer (FFT block or direct circulant rows): the backend's
    # kernel over this row alone with {in_features}, {rows} (and {r0}, {r1}) to fill — a mode using a prefix
    # of the row's input blocks runs it (codegen/modes.py task_case)
    row_fmt: str | None = None
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
    calls: int = 1  # kernel calls the task makes (more than 1: merged tasks, merge_tasks)
    # a kernel that takes a range of this task's units (input blocks, block rows, output rows): the call
    # over units [{lo}, {hi}) and this task's own span; merge_tasks makes consecutive tasks one such call
    range_fmt: str | None = None
    span: tuple[int, int] | None = None
    # a merged task (merge_tasks): the tasks it runs in order (a per-mode prediction can price each part)
    parts: list[Task] = field(default_factory=list)
    # a merged task of an EVE layer: the modes in which it makes one range call over its parts' span
    range_modes: tuple[int, ...] = ()


@dataclass
class Plan:
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


def elem_type(layer: dict) -> tuple[str, str, int]:
    return ("int8_t", "w8", 1) if layer["weight_bits"] == 8 else ("int16_t", "w16", 2)


def choose_path(layer: dict, shapes_in: tuple, shapes_out: tuple, costs: CostModel, want: str) -> str:
    """Per-layer path: the one asked for, or ("auto") the cheaper one under the board's cost model."""
    if layer["block"] == 1:
        return "direct"
    if want in ("fft", "direct"):
        return want
    if want == "artifact":
        return layer.get("path", "direct")
    direct = layer_cost(layer, shapes_in, shapes_out, "direct", costs)
    fft = layer_cost(layer, shapes_in, shapes_out, "fft", costs)
    return "fft" if fft < direct else "direct"


def layer_cost(layer, shape_in, shape_out, path, costs: CostModel) -> float:
    """Estimated cycles of one weight layer on ``path``: the features ``build_plan`` gives its tasks (which
    are what the direct kernels iterate: real output rows/channels only, never the padding of the last block),
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
        macs = rows * q * k * taps * pos_out
        return costs.cycles(
            **{"macs" if layer["op"] == "linear" else "conv_macs": macs},
            w8_macs=macs if layer.get("weight_bits") == 8 else 0,
            outputs=rows * pos_out,
            calls=p,
        )
    bfly = (k // 2) * int(math.log2(k))
    # input transforms: one task per input block (linear) or per input row (conv); then one task per block row
    in_tasks = q if layer["op"] == "linear" else (shape_in[2] if len(shape_in) > 3 else 1)
    return costs.cycles(
        fft_macs=4 * p * q * (k // 2 + 1) * taps * pos_out,
        butterflies=bfly * (q * pos_in + p * pos_out),
        short_butterflies=bfly * (q * pos_in + p * pos_out) if k < SHORT_FFT else 0,
        transforms=q * pos_in + p * pos_out,
        outputs=rows * pos_out,
        calls=in_tasks + p,
    )


def whole_task_cycles(layer: dict, pos_out: int, costs: CostModel, n: int | None = None) -> float:
    """Estimate of one whole-unit direct-path task of a weight layer (the features ``build_plan`` gives
    it): ``n`` output rows / channels (default: a block row, or DENSE_ROWS_PER_TASK /
    DENSE_CHANNELS_PER_TASK of a dense layer) at ``pos_out`` output positions each."""
    k = layer["block"]
    linear = layer["op"] == "linear"
    rows, cols = (
        (layer["out_features"], layer["in_features"])
        if linear
        else (layer["out_channels"], layer["in_channels"])
    )
    if n is None:
        n = min(rows, k if k > 1 else DENSE_ROWS_PER_TASK if linear else DENSE_CHANNELS_PER_TASK)
    macs = n * math.ceil(cols / k) * k * math.prod(layer.get("kernel_size", [1])) * pos_out
    kind = ("macs" if linear else "conv_macs") if k > 1 else "dense_macs" if linear else "dense_conv_macs"
    w8 = macs if layer.get("weight_bits") == 8 else 0
    return costs.cycles(**{kind: macs}, w8_macs=w8, outputs=n * pos_out, calls=1)


def _dense_modes(plan: Plan, lm) -> bool:
    """Whether ``lm`` is a dense layer's per-mode rows (its tasks are generated per mode)."""
    return lm is not None and lm.rank is None


def _zero_fmt(y: str, h: int, w: int, y0: int, y1: int, x0: int, x1: int):
    return lambda st, a, b: f"bl_eve_zero({st}, {y}, {a}u, {b}u, {h}u, {w}u, {y0}u, {y1}u, {x0}u, {x1}u)"


def _mac_step_tasks(
    plan: Plan,
    name,
    layer,
    geom,
    dims,
    wname,
    wsuf,
    bias_c,
    shift,
    cur,
    other,
    costs,
    max_step,
    eve=None,
    conv=None,
):
    """A direct-path layer as bl_mac_step tasks of at most ``max_step`` estimated cycles (granularity.py):
    each unit's chain over input-channel ranges alternates the partial buffers bl_acc0 / bl_acc1. ``conv``:
    a conv layer's (in_h, in_w, kh, kw, sh, sw, ph, pw), from which the grid gets its pixel-step constants."""
    out_ch, out_h, out_w, in_ch, taps = dims
    k = layer["block"]
    units = granularity_mod.mac_units(
        out_ch,
        out_h,
        out_w,
        in_ch,
        taps,
        costs,
        max_step,
        conv=layer["op"] != "linear",
        w8=layer["weight_bits"] == 8,
    )
    if any(u[6] > 0 for u in units):
        plan.acc_len = max(plan.acc_len, out_ch * out_h * out_w)
    # loop continuation: every step of the layer is one call on the layer's grid with the step index j
    # (codegen/tasks.py makes the consecutive steps one dispatch entry); EVE layers keep one call per step
    grid = None
    if eve is None and plan.ranges:
        grid = granularity_mod.mac_grid(units, out_ch, out_h, out_w, in_ch, conv=conv, k=k)
    if grid is not None:
        gname = f"grid_{name}"
        pix = "NULL"
        if grid["pix"] is not None:  # the pixel step's per-pixel table (bl_mac_pixel)
            pix = f"pix_{name}"
            rows = ",\n".join("  {" + ", ".join(f"{v}u" for v in e) + "}" for e in grid["pix"])
            plan.geoms.append(f"static const bl_mac_pixel {pix}[{len(grid['pix'])}] = {{\n{rows}\n}};")
        plan.geoms.append(
            f"static const bl_mac_grid {gname} = {{"
            + ", ".join(f"{grid[f]}u" for f in granularity_mod.GRID_FIELDS)
            + f", {pix}}};"
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
            # part runs on its kept rows only (a unit of its own, every step of the chain alike: the partials
            # of the dropped rows are never written nor read), and its last step zeroes the dropped rows
            last = c1 == in_ch

            def rows_call(a, b, u=u, call=call, src=src, dst=dst):
                if (a, b) == (u[0], u[1]):
                    return call
                narrow = (a, b, *u[2:])
                if narrow not in plan.units:
                    plan.units.append(narrow)
                return (
                    f"bl_mac_step_{wsuf}({cur}, &{geom}, {wname}, {k}u, {src or 'NULL'}, {dst}, {bias_c}, "
                    f"{shift}, {other}, &bl_units[{plan.units.index(narrow)}])"
                )

            zero = _zero_fmt(other, out_h, out_w, oy0, oy1, ox0, ox1)
            mode_expr = eve_modes.dense_rows_case(
                eve,
                rows_call,
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
                block=k,
                weight_bits=layer["weight_bits"],
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
    short = k < SHORT_FFT
    if layer["op"] == "linear":
        q = math.ceil(layer["in_features"] / k)
        fin = costs.cycles(butterflies=bfly, short_butterflies=bfly * short, transforms=1, calls=1)
        blk = costs.cycles(
            fft_macs=4 * q * (k // 2 + 1),
            butterflies=bfly,
            short_butterflies=bfly * short,
            transforms=1,
            outputs=k,
            calls=1,
        )
    else:
        q = math.ceil(layer["in_channels"] / k)
        taps = math.prod(layer.get("kernel_size", [1]))
        pos_out = math.prod(s_out[2:])
        fin = costs.cycles(
            butterflies=q * s_in[-1] * bfly,
            short_butterflies=q * s_in[-1] * bfly * short,
            transforms=q * s_in[-1],
            calls=1,
        )
        blk = costs.cycles(
            fft_macs=4 * q * (k // 2 + 1) * taps * pos_out,
            butterflies=pos_out * bfly,
            short_butterflies=pos_out * bfly * short,
            transforms=pos_out,
            outputs=k * pos_out,
            calls=1,
        )
    return max(fin, blk) <= max_step


def build_plan(
    art: Artifact, board: Board, backend: str, want_path: str, costs: CostModel, max_step: float | None = None
) -> Plan:
    """The tasks of one inference. ``max_step`` (fine granularity): no task's estimate above it — ReLU over
    element ranges, pools over channel ranges, direct-path layers in bl_mac_step steps, and FFT-path layers
    whose smallest step does not fit moved to the direct path."""
    shapes = propagate_shapes(art.layers, art.input_shape)
    plan = Plan(ranges=tasks_mod.uses_ranges(board))
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
        ctype, wsuf, wbytes = elem_type(layer)
        k = layer["block"]
        # the bias the path reads: int32 at the accumulator's format (direct) or bias_out (FFT, below)
        bias = f"{name}_bias" if layer.get("bias") and path == "direct" else None
        if bias:
            plan.arrays.append(c_array("int32_t", bias, art.tensors[layer["bias"]]))
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
        relu = (
            fusion.relu_after(art.layers, li)
            if lm is None
            and (path == "direct" or (op == "linear" and fusion.fuses(backend, "linear_fft_block")))
            else None
        )
        fuse = False
        if lm is not None and op == "linear":
            add_geom(plan, f"g_{name}", f"{{{cols}u, 1u, 1u, {rows}u, 1u, 1u, 1u, 1u, 1u, 1u, 0u, 0u}}")
        if path == "fft":
            plan.max_k = max(plan.max_k, k)
            spec_name = f"{name}_spectra"
            plan.arrays.append(c_array("int16_t", spec_name, art.tensors[layer["spectra"]]))
            plan.decls.append(f"extern const int16_t {spec_name}[];")
            plan.weight_bytes += art.tensors[layer["spectra"]].size * 2
            bo = f"{name}_bias_out" if layer.get("bias_out") else None
            if bo:
                plan.arrays.append(c_array("int32_t", bo, art.tensors[layer["bias_out"]]))
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
            plan.arrays.append(c_array(ctype, wname, art.tensors[layer["weight"]]))
            plan.decls.append(f"extern const {ctype} {wname}[];")
            plan.weight_bytes += art.tensors[layer["weight"]].size * wbytes
            entry.update(shift=shift)
            lits = {"shift": str(shift), "bias": bias_c}
        if lm is not None:
            arrays, decls, defs = eve_modes.layer_data(lm, art, c_array, path)
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
                            transforms=1,
                            block=k,
                            op=op,
                            out_bytes=2 * k,
                            in_block=j,
                            range_fmt=f"bl_linear_fft_input_q15({cur}, {cols}u, &{cfg}, bl_xs, "
                            "{lo}u, {hi}u, bl_work)",
                            span=(j, j + 1),
                        )
                    )
                fuse = relu is not None  # fusion.fuses(backend, "linear_fft_block") above
                for i in range(p):
                    nrows = min(k, rows - i * k)
                    plan.tasks.append(
                        Task(
                            f"{name}.block{i}" + (f"+{relu}" if fuse else ""),
                            name,
                            "fft_block",
                            f"bl_linear_fft_block_{'relu_' if fuse else ''}q15(bl_xs, {cols}u, {spec_name}, "
                            f"&{cfg}, {shift_z}, "
                            f"{shift_out}, "
                            f"{bo_c}, {other}, {rows}u, {i}u, {i + 1}u, bl_work)",
                            macs=4 * q * (k // 2 + 1),
                            butterflies=(k // 2) * log2k,
                            transforms=1,
                            outputs=nrows,
                            block=k,
                            op=op,
                            out_bytes=2 * nrows,
                            sel_fmt=f"bl_conv_fft_block_sel_q15(bl_xs, &g_{name}, {spec_name}, &{cfg}, "
                            f"{{shift_z}}, {{shift_out}}, {{bias_out}}, {other}, {i}u, 0u, 1u, bl_work, "
                            "{sel})"
                            if lm
                            else None,
                            # row i alone: its spectra, bias and output from row i on, as block row 0 of a
                            # layer of {rows} rows (xs keeps block j at j*k whatever in_features says).
                            # Not on the MSP430's ref backend: there the portable selecting FFT block
                            # (common/eve_sel.c) is the cheaper code (the digits MLP's modes 1 / 2 cost 2-3 %
                            # more through the row call); the M4's ref and the LEA gain from it
                            row_fmt=f"bl_linear_fft_block_{'relu_' if fuse else ''}q15(bl_xs, "
                            f"{{in_features}}u, {spec_name} + {i * q * k}u, &{cfg}, {shift_z}, {shift_out}, "
                            f"{bo_c if bo_c == 'NULL' else f'{bo_c} + {i * k}u'}, {other} + {i * k}u, "
                            "{rows}u, 0u, 1u, bl_work)"
                            if lm and not (backend == "ref" and board.cpu == "msp430x")
                            else None,
                            rows=(i * k, i * k + nrows),
                            zero=_zero_fmt(other, 1, 1, 0, 1, 0, 1),
                            range_fmt=f"bl_linear_fft_block_{'relu_' if fuse else ''}q15(bl_xs, {cols}u, "
                            f"{spec_name}, &{cfg}, {shift_z}, {shift_out}, {bo_c}, {other}, {rows}u, "
                            "{lo}u, {hi}u, bl_work)",
                            span=(i, i + 1),
                        )
                    )
            elif max_step is not None and whole_task_cycles(layer, 1, costs) > max_step:
                g = f"g_{name}"
                add_geom(plan, g, f"{{{cols}u, 1u, 1u, {rows}u, 1u, 1u, 1u, 1u, 1u, 1u, 0u, 0u}}")
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
                    and (max_step is None or whole_task_cycles(layer, 1, costs, rows) <= max_step)
                ):
                    # the cmsis kernel reverses and doubles the input blocks once per call
                    # (firmware/kernels/cmsis/linear.c): one call per layer where the granularity allows
                    step = rows
                fuse = relu is not None and fusion.fuses(backend, "linear_circ" if k > 1 else "linear_dense")
                for r0 in range(0, rows, step):
                    r1 = min(rows, r0 + step)
                    mode_expr = None
                    if k > 1:
                        fmt = (
                            f"{fusion.kernel_name('linear_circ', wsuf, fuse)}({cur}, {cols}u, {wname}, {k}u, "
                            f"{bias_c}, {shift}, "
                            f"{other}, "
                            f"{rows}u, {{a}}u, {{b}}u)"
                        )
                        call = fmt.format(a=r0, b=r1)
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
                    row_fmt = None
                    # only on lea: there the row kernel runs on the LEA and the selecting walk on the CPU
                    # (mode 1 of the digits MLP 85 k -> 15 k MCLK in fc3). On ref the walk IS the faster
                    # code (ref/mac_walk.inc; bl_linear_circ_* is ~4x dearer per MAC on the MSP430: the FR5994
                    # ref MLP's mode 1 cost 9.5 % more through it, the CNN's 11 %), and cmsis has its own
                    # SMLAD/Helium selecting loops (cmsis/eve_sel.c)
                    if backend == "lea" and sel_fmt is not None and k > 1 and r0 // k == (r1 - 1) // k:
                        # block row i alone, as block row 0 of a layer of {rows} rows: its weights, bias and
                        # output from row i*k on (codegen/modes.py task_case: a mode using a prefix of the
                        # row's input blocks runs the backend's kernel over {in_features} inputs)
                        i0 = r0 // k
                        row_fmt = (
                            f"{fusion.kernel_name('linear_circ', wsuf, fuse)}({cur}, {{in_features}}u, "
                            f"{wname} + {i0 * q * k}u, {k}u, "
                            f"{bias_c if bias_c == 'NULL' else f'{bias_c} + {i0 * k}u'}, {shift}, "
                            f"{other} + {i0 * k}u, {{rows}}u, {{r0}}u, {{r1}}u)"
                        )
                    plan.tasks.append(
                        Task(
                            f"{name}.rows{r0}" + (f"+{relu}" if fuse else ""),
                            name,
                            "mac",
                            call,
                            macs=macs,
                            weight_bits=layer["weight_bits"],
                            outputs=r1 - r0,
                            block=k,
                            op=op,
                            out_bytes=2 * (r1 - r0),
                            sel_fmt=sel_fmt,
                            row_fmt=row_fmt,
                            mode_expr=mode_expr,
                            rows=(r0, r1),
                            zero=_zero_fmt(other, 1, 1, 0, 1, 0, 1),
                            range_fmt=fmt.replace("{a}", "{lo}").replace("{b}", "{hi}"),
                            span=(r0, r1),
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
                        add_geom(
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
                            transforms=q * iw,
                            block=k,
                            op=op,
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
                            transforms=oh * ow,
                            outputs=nch * oh * ow,
                            block=k,
                            op=op,
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
            elif max_step is not None and whole_task_cycles(layer, oh * ow, costs) > max_step:
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
                    conv=(ih, iw, kh, kw, sh, sw, ph, pw),
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
                            weight_bits=layer["weight_bits"],
                            outputs=(o1 - o0) * oh * ow,
                            block=k,
                            op=op,
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


def add_geom(plan: Plan, name: str, init: str) -> None:
    line = f"static const bl_conv_geom {name} = {init};"
    if line not in plan.geoms:
        plan.geoms.append(line)


def task_features(t: Task) -> dict[str, int]:
    """The cost model's features of one task (``costs.FEATURES``): the one place a task's work is counted
    for its estimate (schedule.json, granularity, the cost fit). MACs go by the kernel family that runs
    them: the circulant direct kernels (``macs``), the dense kernels (``dense_macs``), the ``bl_mac_step``
    weight walk of fine-grained tasks (``walk_macs``), each apart for convolutions (``conv_macs``,
    ``dense_conv_macs``, ``walk_conv_macs``: padding checks per tap), the FFT path's frequency-domain
    multiplies (``fft_macs``); direct-path MACs over 8-bit weights count once more as ``w8_macs`` (the
    widening on top)."""
    walk = t.kind == "mac_step"
    dense = t.kind == "mac" and t.block == 1
    circ = t.kind == "mac" and t.block != 1
    conv = t.op.startswith("conv")
    return {
        "macs": t.macs if circ and not conv else 0,
        "conv_macs": t.macs if circ and conv else 0,
        "dense_macs": t.macs if dense and not conv else 0,
        "dense_conv_macs": t.macs if dense and conv else 0,
        "walk_macs": t.macs if walk and not conv else 0,
        "walk_conv_macs": t.macs if walk and conv else 0,
        "fft_macs": t.macs if t.kind == "fft_block" else 0,
        "w8_macs": t.macs if t.kind in ("mac", "mac_step") and t.weight_bits == 8 else 0,
        "butterflies": t.butterflies,
        "short_butterflies": t.butterflies if 0 < t.block < SHORT_FFT else 0,
        "transforms": t.transforms,
        "elements": t.elements,
        "outputs": t.outputs if t.kind in ("mac", "mac_step", "fft_block") else 0,
        "calls": t.calls,
    }


def task_cycles(t: Task, costs: CostModel) -> float:
    return costs.cycles(**task_features(t))


# EVE images: the C of a merged task, its parts' expressions in order; the first status that is not BL_OK
# is the task's (bl_eve_st, a plain RAM static: a resumed task recomputes it)
MERGE_STATUS_C = "static bl_status bl_eve_st; /* a merged task's status so far (plan.py merge_tasks) */"
MERGE_KINDS = ("fft_in", "fft_block", "mac")
# A merged task's estimate stays within this share of a power-on period (after the boot): a power failure
# re-runs on average half the task it cut, so merging only small tasks trades a few hundred cycles of commit
# per task for at most ~3 % of a period lost per failure (the FR5994 ref MLP's 58 k-cycle FFT block rows stay
# apart at 100 uF: 800 k cycles per charge; its lea block rows of ~4 k merge)
MERGE_PERIOD_FRACTION = 1 / 16


def range_call(group: list[Task]) -> str | None:
    """The one kernel call over consecutive tasks' units (``Task.range_fmt`` over their joined spans), or
    None when the tasks are not one kernel's calls over adjacent ranges, each its own plain call."""
    first = group[0]
    if first.range_fmt is None or any(t.range_fmt != first.range_fmt or t.span is None for t in group):
        return None
    if any(a.span[1] != b.span[0] for a, b in itertools.pairwise(group)):  # type: ignore[index]
        return None
    if any(t.call != first.range_fmt.format(lo=t.span[0], hi=t.span[1]) for t in group):  # type: ignore[index]
        return None
    return first.range_fmt.format(lo=first.span[0], hi=group[-1].span[1])  # type: ignore[index]


def merge_tasks(plan: Plan, costs: CostModel, budget: float) -> int:
    """Fewer, larger tasks: consecutive tasks of one weight layer and one kind (FFT input transforms, FFT
    block rows, direct-path row groups) become one task while its estimate stays within ``budget`` (the
    coarse granularity's share of a power-on period, granularity.choose; unbounded when coarse tasks were
    asked for), so a merged task still finishes in one charge of the board's buffer. Two kinds of merge:

    - a layer without EVE modes whose kernel takes a range of units (``Task.range_fmt``): ONE kernel call
      over the group's span, so the kernel pays its per-call work (arguments, checks, per-layer set-up,
      staging) once: the digits MLP's FFT path on the FR5994 ``lea`` 29 -> 6 calls, 63.7 k -> 55.7 k MCLK
      per inference (docs/msp430sim.md);
    - an EVE layer: in a mode where every part makes its plain backend call (``tasks.makes_call``: mode 0,
      which uses every block as stored, and any mode keeping the parts' rows as stored) that same range
      call; in the other modes the parts' per-mode expressions (``tasks.task_expr``: a mode skips an input
      block or runs a row with the selecting kernel as before), chained; the first status that is not
      BL_OK is the task's. The mode is one C conditional in front (``bl_mode`` does not change within an
      inference: FLEX commits it with the progress). FLEX commits once per task (246 MCLK plus the task's
      NVM writes on the FR5994): the digits MLP's EVE image on ``lea`` had 27 tasks of 1-22 k cycles —
      7.8 k cycles of commits on a 95 k-cycle mode 0 (docs/eve.md).

    Each part writes its own outputs from inputs no part writes (an input block's spectrum, a block row's
    outputs), so running them in order in one task is what the separate tasks did; FLEX re-runs the whole
    task after a power failure, as it re-ran one part. Returns how many tasks were merged away. The
    features (and so the estimate) are the parts' sums, with one call for a range call (mode 0's: the
    schedule's other modes are priced per part, ``eve.device.mode_task_features``)."""
    out: list[Task] = []
    group: list[Task] = []
    chained = False
    n_modes = len(next(iter(plan.eve.values()))[0].n) if plan.eve else 1

    def ranged(t: Task) -> bool:
        return t.layer not in plan.eve and t.range_fmt is not None and t.span is not None

    def flush() -> None:
        nonlocal chained
        if len(group) == 1:
            out.append(group[0])
        elif group:
            first, last = group[0], group[-1]
            one = range_call(group)
            if ranged(first) and one is not None:
                expr, mode_expr, calls, parts, range_modes = one, None, 1, [], ()
            else:
                exprs = [tasks_mod.task_expr(plan, t) for t in group]
                chain = f"({exprs[-1]})"
                for e in reversed(exprs[:-1]):
                    chain = f"(bl_eve_st = ({e})) != BL_OK ? bl_eve_st : {chain}"
                range_modes = tuple(
                    mi
                    for mi in range(n_modes)
                    if one is not None and all(tasks_mod.makes_call(plan, t, mi) for t in group)
                )
                if len(range_modes) == n_modes:
                    expr = one
                elif range_modes:
                    which = " || ".join(f"bl_mode == {mi}u" for mi in range_modes)
                    expr = f"({which}) ? {one} : ({chain})"
                else:
                    expr = chain
                chained = chained or len(range_modes) < n_modes
                calls = 1 if 0 in range_modes else sum(t.calls for t in group)
                mode_expr, parts = expr, list(group)
            out.append(
                Task(
                    f"{first.name}..{last.name.split('.', 1)[-1]}",
                    first.layer,
                    first.kind,
                    expr,
                    macs=sum(t.macs for t in group),
                    butterflies=sum(t.butterflies for t in group),
                    elements=sum(t.elements for t in group),
                    out_bytes=sum(t.out_bytes for t in group),
                    outputs=sum(t.outputs for t in group),
                    block=first.block,
                    weight_bits=first.weight_bits,
                    transforms=sum(t.transforms for t in group),
                    op=first.op,
                    mode_expr=mode_expr,
                    calls=calls,
                    parts=parts,
                    range_modes=range_modes,
                )
            )
        group.clear()

    for t in plan.tasks:
        mergeable = (
            t.kind in MERGE_KINDS
            and t.chunk is None
            and t.unit is None
            and (t.layer in plan.eve or ranged(t))
        )
        if (
            group
            and mergeable
            and t.layer == group[0].layer
            and t.kind == group[0].kind
            and (
                not ranged(t) or (t.range_fmt == group[0].range_fmt and t.span[0] == group[-1].span[1])  # type: ignore[index]
            )
            and sum(task_cycles(u, costs) for u in (*group, t)) <= budget
        ):
            group.append(t)
            continue
        flush()
        if mergeable:
            group.append(t)
        else:
            out.append(t)
    flush()
    merged = len(plan.tasks) - len(out)
    if merged:
        plan.tasks = out
        if chained and MERGE_STATUS_C not in plan.eve_defs:
            plan.eve_defs.append(MERGE_STATUS_C)
    return merged
