"""Codegen for EVE modes: every mode runs on the device over the one weight store.

A circulant layer that some mode runs differently from the stored layer (fewer blocks, fewer output rows,
or its own requantisation values) gets, as generated data:

- ``<layer>_rank`` (uint16, with the weights): each block's position in the layer's ``block_order``
  (``BL_BLOCK_UNUSED`` for a block ``block_mask`` prunes) — the one importance order every mode shares;
- per mode a ``bl_block_sel`` {rank, n, out_rows}: the mode uses the blocks with rank < n (a prefix of the
  order, ``blocks`` in the artifact) and zeroes rows >= out_rows (``out_blocks``);
- per-mode shifts and bias pointers when a mode overrides them.

Each of the layer's tasks then calls its backend kernel when the mode runs the stored layer as it is
(``bl_sel_<layer>[bl_mode] == NULL``: mode 0 keeps the backend's speed) and the block-selecting kernel of
``firmware/kernels/common/eve_sel.c`` otherwise — except that a linear layer's block row whose used blocks are
the first q' of the row (a width ladder: the previous layer's kept rows) runs the backend's own kernel as a
layer of q' blocks (``Task.row_fmt``; on the FR5994 that keeps the smaller modes on the LEA). The task list is
the same in every mode, so a resumed inference keeps its task indices; the mode itself is committed with FLEX
progress (checkpointing/flex.h). The selection reproduces :func:`batteryless.eve.modes.active_blocks` exactly
(checked here at generation).

A dense (block 1) layer that a mode narrows (``out_blocks``: its first rows) has no rank table: each of its
tasks is generated per mode (:func:`dense_rows_case`) — the backend's own dense kernel over the task's rows
the mode keeps, and ``bl_eve_zero`` (model.c) for the rows it drops, which the spec makes 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from batteryless.errors import CodegenError
from batteryless.eve.modes import active_blocks, block_grid, effective_layer, has_modes, out_rows

UNUSED = 0xFFFF


@dataclass
class LayerModes:
    """How each mode runs one circulant weight layer."""

    name: str
    rank: np.ndarray | None  # [p*q] uint16; None: a dense layer (only its rows narrow)
    n: list[int]  # per mode: blocks with rank < n
    rows: list[int]  # per mode: output rows kept
    full: list[bool]  # per mode: runs the stored layer as it is (the backend's own kernel)
    values: list[dict[str, Any]] = field(default_factory=list)  # per mode: shift(s) and bias tensor names
    cols: list[list[bool]] = field(default_factory=list)  # per mode: input blocks j some used block reads
    linear: bool = False  # a linear layer (its FFT input transforms are one task per input block)
    # per mode: block rows the mode uses exactly as stored (every stored block, the stored values): a task
    # over only such rows runs the backend's own kernel in that mode
    whole_rows: list[list[bool]] = field(default_factory=list)
    block: int = 1
    # per mode: for each block row, q' when the mode uses exactly the row's first q' input blocks (each
    # stored) with the stored values, else None: a linear layer's task over such a row runs the backend's own
    # FFT block as a q'-block layer (Task.row_fmt) instead of the portable selecting kernel
    row_prefix: list[list[int | None]] = field(default_factory=list)

    def value_expr(self, key: str, literal: str) -> str:
        """A per-mode value as C: the literal when every mode has the same, else the per-mode table."""
        vals = [v[key] for v in self.values]
        return literal if len(set(vals)) == 1 else f"bl_{key}_{self.name}[bl_mode]"


def _values(eff: dict[str, Any]) -> dict[str, Any]:
    k = eff["block"]
    return {
        "shift": eff["in_frac"] + eff["weight_frac"] - eff["out_frac"],
        "shift_z": eff["in_frac"]
        + eff.get("spectra_frac", 0)
        - int(math.log2(k))
        - eff.get("spectrum_frac", 0)
        if eff.get("spectra")
        else None,
        "shift_out": eff.get("spectrum_frac", 0) - eff["out_frac"] if eff.get("spectra") else None,
        "bias": eff.get("bias"),
        "bias_out": eff.get("bias_out"),
    }


def layer_modes(art, layer: dict[str, Any]) -> LayerModes | None:
    """The per-mode selection of ``layer``; None when every mode runs it as stored."""
    if not has_modes(art):
        return None
    m = len(art.modes)
    base = _values(layer)
    values = [_values(effective_layer(art, layer, mi)) for mi in range(m)]
    if layer["block"] == 1:
        if any(v != base for v in values):
            raise CodegenError(
                f"layer {layer['name']!r}: per-mode requantisation of a dense (block 1) layer is not "
                "generated yet; give the override to circulant layers only"
            )
        n_rows = layer["out_features"] if layer["op"] == "linear" else layer["out_channels"]
        rows = [
            n_rows if out_rows(art, layer, mi) is None else int(out_rows(art, layer, mi)) for mi in range(m)
        ]
        if all(r == n_rows for r in rows):
            return None
        return LayerModes(layer["name"], None, [0] * m, rows, [r == n_rows for r in rows], values)
    p, q = block_grid(layer)
    if layer.get("block_order"):
        order = np.asarray(art.tensors[layer["block_order"]]).astype(np.int64).reshape(-1)
    else:
        order = np.arange(p * q)
    rank = np.empty(p * q, dtype=np.int64)
    rank[order] = np.arange(p * q)
    if layer.get("block_mask"):
        rank[np.asarray(art.tensors[layer["block_mask"]]).reshape(-1) == 0] = UNUSED
    ns, rows, full, cols, whole, prefix = [], [], [], [], [], []
    stored = (
        np.asarray(art.tensors[layer["block_mask"]]).reshape(p, q) != 0
        if layer.get("block_mask")
        else np.ones((p, q), dtype=bool)
    )
    n_rows = layer["out_features"] if layer["op"] == "linear" else layer["out_channels"]
    for mi in range(m):
        ml = (art.modes[mi].get("layers") or {}).get(layer["name"], {})
        n = int(ml.get("blocks", p * q))
        r = out_rows(art, layer, mi)
        r = n_rows if r is None else min(int(r), n_rows)
        want = active_blocks(art, layer, mi)
        got = (rank < n).reshape(p, q)
        got[math.ceil(r / layer["block"]) :, :] = False
        if not np.array_equal(got, want):  # a guard: the C selection must be the spec's, block for block
            raise CodegenError(f"layer {layer['name']!r}: mode {mi}'s block selection cannot be generated")
        ns.append(n)
        rows.append(r)
        cols.append([bool(v) for v in want.any(axis=0)])
        full.append(bool(want.all()) and r == n_rows and values[mi] == base)
        whole.append([bool((want[i] == stored[i]).all()) and values[mi] == base for i in range(p)])
        prefix.append([_row_prefix(want[i], stored[i]) if values[mi] == base else None for i in range(p)])
    if all(full):
        return None
    return LayerModes(
        layer["name"],
        rank.astype(np.uint16),
        ns,
        rows,
        full,
        values,
        cols,
        layer["op"] == "linear",
        whole,
        layer["block"],
        prefix,
    )


def _row_prefix(used: np.ndarray, stored: np.ndarray) -> int | None:
    """q' when the blocks ``used`` of a block row are exactly its first q' (q' >= 1), all stored."""
    qp = int(used.sum())
    if qp == 0 or not used[:qp].all() or not stored[:qp].all():
        return None
    return qp


def layer_data(lm: LayerModes, art, c_array, path: str) -> tuple[list[str], list[str], list[str]]:
    """(arrays for model_weights.c, extern declarations, static definitions for model.c) of one layer on
    ``path`` ("fft" | "direct": which shifts and bias the calls take)."""
    m = len(lm.n)
    if lm.rank is None:  # a dense layer: its tasks are generated per mode (dense_rows_case)
        return [], [], []
    arrays = [c_array("uint16_t", f"{lm.name}_rank", lm.rank)]
    decls = [f"extern const uint16_t {lm.name}_rank[];"]
    defs = []
    for mi in range(m):
        if not lm.full[mi]:
            defs.append(
                f"static const bl_block_sel bl_sel_{lm.name}_m{mi} = {{{lm.name}_rank, {lm.n[mi]}u, "
                f"{lm.rows[mi]}u}};"
            )
    ptrs = ", ".join("NULL" if lm.full[mi] else f"&bl_sel_{lm.name}_m{mi}" for mi in range(m))
    defs.append(f"static const bl_block_sel *const bl_sel_{lm.name}[{m}] = {{{ptrs}}};")
    fft = path == "fft"
    for key in ("shift_z", "shift_out") if fft else ("shift",):
        vals = [v[key] for v in lm.values]
        if vals[0] is not None and len(set(vals)) > 1:
            defs.append(f"static const int16_t bl_{key}_{lm.name}[{m}] = {{{', '.join(map(str, vals))}}};")
    if fft and layer_skips_inputs(lm):
        table = ", ".join("{" + ", ".join(f"{int(v)}u" for v in c) + "}" for c in lm.cols)
        defs.append(f"static const uint8_t bl_cols_{lm.name}[{m}][{len(lm.cols[0])}] = {{{table}}};")
    for key in ("bias_out",) if fft else ("bias",):
        vals = [v[key] for v in lm.values]
        if len(set(vals)) > 1:
            names = []
            for t in vals:
                if t is None:
                    names.append("NULL")
                    continue
                cname = f"{lm.name}_mb_{t.replace('.', '_')}"
                if cname not in names:
                    arrays.append(c_array("int32_t", cname, art.tensors[t]))
                    decls.append(f"extern const int32_t {cname}[];")
                names.append(cname)
            defs.append(f"static const int32_t *const bl_{key}_{lm.name}[{m}] = {{{', '.join(names)}}};")
    return arrays, decls, defs


def dense_rows_case(lm: LayerModes, call, o0: int, o1: int, zero) -> str:
    """A dense layer's task over output rows [o0, o1) in every mode: ``call(a, b)`` is the backend call
    over rows [a, b) (a task that cannot be cut returns its whole call) and ``zero(st, a, b)`` the C
    expression that zeroes rows [a, b) of its output after status ``st``. Per mode: the call over the kept
    rows, the
    dropped ones zeroed; one conditional per distinct variant."""
    exprs = []
    for r in lm.rows:
        if r >= o1:
            exprs.append(call(o0, o1))
        elif r <= o0:
            exprs.append(zero("BL_OK", o0, o1))
        else:
            exprs.append(zero(call(o0, r), r, o1))
    return mode_chain(exprs)


def mode_chain(exprs: list[str]) -> str:
    """One C expression choosing ``exprs[bl_mode]`` (mode 0's as the default; equal ones merged)."""
    out = exprs[0]
    for mi in range(len(exprs) - 1, 0, -1):
        if exprs[mi] != exprs[0]:
            out = f"bl_mode == {mi}u ? {exprs[mi]} : ({out})"
    return out


def task_case(
    lm: LayerModes | None,
    call: str,
    sel_fmt: str | None,
    literals: dict[str, str],
    rows: tuple[int, int] | None = None,
    zero=None,
    row_fmt: str | None = None,
) -> str:
    """The C expression of one task: the backend call, or (a mode that runs the layer differently) the
    block-selecting call filled from ``sel_fmt`` with the layer's per-mode values.

    ``rows`` (the task's output rows [r0, r1), a whole-row task) with ``zero`` (see
    :func:`dense_rows_case`): per mode, the backend call where the mode uses the task's block rows exactly
    as stored, only ``zero`` where it drops them all (the spec's 0 without the selecting kernel's loops),
    the selecting call otherwise. ``row_fmt`` (a task over one block row of a linear FFT layer: the backend's
    FFT block over that row alone as a layer of {in_features} inputs and {rows} rows): in a mode that uses
    a prefix of the row's input blocks (the EVE width ladder: the previous layer's kept rows), that call
    (the backend's speed: LEA on the MSP430) with the rows the mode drops zeroed, instead of the selecting
    kernel; it sums the same blocks, so it gives the same bits."""
    if lm is None or sel_fmt is None:
        return call
    if rows is not None and zero is not None:
        r0, r1 = rows
        i0, i1 = r0 // lm.block, math.ceil(r1 / lm.block)
        exprs = []
        for mi in range(len(lm.n)):
            if runs_stored(lm, mi, rows):
                exprs.append(call)
            elif lm.rows[mi] <= r0:
                exprs.append(zero("BL_OK", r0, r1))
            elif row_fmt is not None and i1 == i0 + 1 and lm.row_prefix and lm.row_prefix[mi][i0] is not None:
                keep = min(r1, lm.rows[mi])
                b0 = i0 * lm.block
                expr = row_fmt.format(
                    in_features=lm.row_prefix[mi][i0] * lm.block, rows=keep - b0, r0=r0 - b0, r1=keep - b0
                )
                exprs.append(expr if keep == r1 else zero(expr, keep, r1))
            else:
                fill = {key: lm.value_expr(key, lit) for key, lit in literals.items()}
                fill["sel"] = f"&bl_sel_{lm.name}_m{mi}"
                exprs.append(sel_fmt.format(**fill))
        return mode_chain(exprs)
    fill = {key: lm.value_expr(key, lit) for key, lit in literals.items()}
    fill["sel"] = f"bl_sel_{lm.name}[bl_mode]"
    return f"bl_sel_{lm.name}[bl_mode] == NULL ? {call} : {sel_fmt.format(**fill)}"


def runs_stored(lm: LayerModes, mi: int, rows: tuple[int, int] | None) -> bool:
    """Whether mode ``mi`` runs a task of the layer with the backend's own call (:func:`task_case`): a mode
    that runs the stored layer as it is, or (``rows``: a whole-row task's output rows [r0, r1)) one that
    keeps those rows and uses their block rows exactly as stored."""
    if lm.full[mi]:
        return True
    if rows is None:
        return False
    r0, r1 = rows
    return r1 <= lm.rows[mi] and all(lm.whole_rows[mi][r0 // lm.block : math.ceil(r1 / lm.block)])


def reads_input(lm: LayerModes, mi: int, j: int) -> bool:
    """Whether mode ``mi`` transforms input block ``j`` of a linear FFT layer (:func:`input_case`)."""
    return not layer_skips_inputs(lm) or lm.cols[mi][j]


def layer_skips_inputs(lm: LayerModes) -> bool:
    """Whether some mode reads none of the layer's blocks in an input block column (its transform is
    skipped: the block-selecting kernel never reads that part of the spectra buffer)."""
    return lm.linear and any(not all(c) for c in lm.cols)


def input_case(lm: LayerModes, call: str, j: int) -> str:
    """A linear FFT input transform of block ``j``: skipped in a mode that reads no block of column j."""
    if not layer_skips_inputs(lm):
        return call
    return f"bl_cols_{lm.name}[bl_mode][{j}] != 0u ? {call} : BL_OK"


def model_c_mode_api(n_modes: int) -> str:
    """The mode state and API of an EVE model (model.c)."""
    return f"""/* EVE: the mode the tasks run in (RAM: the runtime sets it before an inference's first
 * task and again after every boot, from the mode FLEX committed with the progress). */
#ifndef BL_MODEL_START_MODE
#define BL_MODEL_START_MODE 0u
#endif
static uint8_t bl_mode = BL_MODEL_START_MODE;

bl_status bl_model_set_mode(uint8_t mode)
{{
  if (mode >= {n_modes}u) {{
    return BL_ERR_ARG;
  }}
  bl_mode = mode;
  return BL_OK;
}}

uint8_t bl_model_get_mode(void)
{{
  return bl_mode;
}}

uint8_t bl_model_select_mode(uint8_t current)
{{
  return bl_eve_choose(&bl_eve_modes, current);
}}
"""


MODEL_H_MODE_API = """/* EVE modes (0 = the largest). bl_model_set_mode: the mode the following tasks
 * run in (BL_ERR_ARG if the model has no such mode); bl_model_select_mode: the mode for the next
 * inference from the stored energy (bl_eve_read_mv, the generated table eve_table.c) after an inference
 * in `current`. */
bl_status bl_model_set_mode(uint8_t mode);
uint8_t bl_model_get_mode(void);
uint8_t bl_model_select_mode(uint8_t current);
"""


def model_cmake(banner: str, n_modes: int) -> str:
    """model.cmake of an EVE model: the selector's sources and the mode count every source sees (FLEX
    records the mode only when the image has modes: checkpointing/flex.h)."""
    return (
        f"{banner}"
        'list(APPEND BL_SOURCES "${BL_ROOT}/firmware/eve/bl_eve.c")\n'
        'list(APPEND BL_INCLUDES "${BL_ROOT}/firmware/eve")\n'
        f'list(APPEND EXTRA_DEFINES "BL_EVE_MODES={n_modes}")\n'
    )
