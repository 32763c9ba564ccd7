"""The task dispatch of a generated model: ``bl_model_task(t)``, the layer-end test and the ``bl_mac_unit``
table, from the planned tasks (codegen/__init__.py plans them; this module only renders how task t is
reached). Kept apart from the planner so the dispatch's size can change without touching the planning."""

from __future__ import annotations

from typing import Any

from batteryless.codegen import modes as eve_modes


def task_expr(plan: Any, t: Any) -> str:
    """A task's C expression: its call, or for an EVE layer the call each mode makes (codegen/modes.py;
    ``t.mode_expr``: the planner generated it per mode already)."""
    if t.mode_expr is not None:
        return t.mode_expr
    lm, lits = plan.eve.get(t.layer, (None, {}))
    if lm is not None and t.in_block is not None:
        return eve_modes.input_case(lm, t.call, t.in_block)
    return eve_modes.task_case(lm, t.call, t.sel_fmt, lits, t.rows, t.zero, t.row_fmt)


def makes_call(plan: Any, t: Any, mi: int) -> bool:
    """Whether task ``t``'s expression (:func:`task_expr`) makes exactly its backend call ``t.call`` in EVE
    mode ``mi`` (plan.merge_tasks: a run of such tasks can be one range call in that mode)."""
    lm = plan.eve.get(t.layer, (None, {}))[0]
    if t.mode_expr is not None:
        # the planner's own per-mode expression; of those only a dense layer's output rows are read here
        # (modes.dense_rows_case: the whole call in a mode keeping every row of the task), any other is
        # taken as another call
        return lm is not None and lm.rank is None and t.rows is not None and lm.rows[mi] >= t.rows[1]
    if lm is None or (t.sel_fmt is None and t.in_block is None):
        return True
    if t.in_block is not None:
        return eve_modes.reads_input(lm, mi, t.in_block)
    return eve_modes.runs_stored(lm, mi, t.rows if t.zero is not None else None)


# Targets whose fine-grained images get range dispatch (loop continuation). The MSP430's code must fit the
# lower 64 KB of FRAM with the weights: one switch case and one bl_mac_unit per task do not (a fine CNN has
# thousands of tasks). On the Cortex-M flash is plentiful and a step's instructions are the tighter budget:
# the per-task switch costs no decode, which keeps the M4's fine steps inside 1,000-instruction periods.
RANGE_DISPATCH_CPUS = ("msp430x",)


def uses_ranges(board: Any) -> bool:
    return getattr(board, "cpu", None) in RANGE_DISPATCH_CPUS


def _units_table(units: list[tuple[int, ...]]) -> str:
    """The bl_mac_unit of every bl_mac_step task dispatched by its own call (const: flash / FRAM code)."""
    if not units:
        return ""
    rows = ",\n".join("  {" + ", ".join(f"{v}u" for v in u) + "}" for u in units)
    return f"static const bl_mac_unit bl_units[{len(units)}] = {{\n{rows}\n}};\n\n"


RELU_CHUNK = "bl_model_relu_chunk"
POOL_CHUNK = "bl_model_pool_chunk"
POOL_ROWS = "bl_model_pool_rows"

# Helpers the chunk templates of codegen/__init__.py call: step j of a layer cut into equal element /
# channel / row ranges (the last one may be short). Emitted only when used (static: unused ones would warn).
# noinline: inlined into a range entry, clang folds the entry's base into a constant offset of the buffer's
# address (bl_act1 - base * stride), which the MSP430's 16-bit relocations reject when it leaves 0..64K.
_POOL_FN = """typedef bl_status (*bl_model_pool_fn)(const int16_t *, const bl_pool_geom *, int16_t *,
                                      uint16_t, uint16_t);
"""
_HELPERS = {
    RELU_CHUNK: """__attribute__((noinline))
static bl_status bl_model_relu_chunk(int16_t *b, uint16_t len, uint16_t per, uint16_t j)
{
  const uint16_t e0 = (uint16_t)(j * per);
  const uint16_t n = (uint16_t)(len - e0) < per ? (uint16_t)(len - e0) : per;
  return e0 < len ? bl_relu_q15(b + e0, b + e0, n) : BL_ERR_ARG;
}
""",
    POOL_CHUNK: """__attribute__((noinline))
static bl_status bl_model_pool_chunk(bl_model_pool_fn fn, const int16_t *x,
                                     const bl_pool_geom *g, int16_t *y, uint16_t chans, uint16_t j)
{
  const uint16_t c0 = (uint16_t)(j * chans);
  const uint16_t c1 = (uint16_t)(g->ch - c0) < chans ? g->ch : (uint16_t)(c0 + chans);
  return fn(x, g, y, c0, c1);
}
""",
    POOL_ROWS: """__attribute__((noinline))
static bl_status bl_model_pool_rows(bl_model_pool_fn fn, const int16_t *x,
                                    const bl_pool_geom *g, int16_t *y, uint16_t x_stride,
                                    uint16_t y_stride, uint16_t j)
{
  return fn(x + (uint16_t)(j * x_stride), g, y + (uint16_t)(j * y_stride), 0u, 1u);
}
""",
}


def entries(plan: Any, ranges: bool = True) -> list[tuple[int, int, str | None]]:
    """The dispatch entries (first task, end task, chunk template or None): with ``ranges``, consecutive
    tasks with the same chunk template and consecutive step indices form one range entry; every other task
    is its own."""
    out: list[tuple[int, int, str | None]] = []
    for i, t in enumerate(plan.tasks):
        if not ranges or t.mode_expr is not None:  # EVE: a per-mode expression is dispatched as it is
            out.append((i, i + 1, None))
            continue
        if t.chunk is not None and out and out[-1][2] == t.chunk[0]:
            first = out[-1][0]
            if plan.tasks[first].chunk[1] + (i - first) == t.chunk[1]:
                out[-1] = (first, i + 1, t.chunk[0])
                continue
        out.append((i, i + 1, t.chunk[0] if t.chunk is not None else None))
    return out


def layer_ends(plan: Any) -> list[int]:
    """1 where task i is the last task of its layer."""
    tl = plan.tasks
    return [int(i + 1 == len(tl) or tl[i + 1].layer != t.layer) for i, t in enumerate(tl)]


def dispatch_c(plan: Any, board: Any) -> str:
    """``bl_model_task`` and ``bl_model_task_layer_end`` (model.c). Without range entries (coarse images)
    the dispatch is one switch; with them, a chain of ``if (t < end)`` tests in task order, each a range
    (``return step(args, t - base)``: code size O(layers), not O(tasks)) or a switch over a run of single
    tasks."""
    ents = entries(plan, uses_ranges(board))
    units = list(plan.units)  # EVE whole-step units (their indices are fixed in the mode calls)
    helpers = [_POOL_FN] if any(e[2] is not None and e[2].startswith("bl_model_pool") for e in ents) else []
    helpers += [
        h for name, h in _HELPERS.items() if any(e[2] is not None and e[2].startswith(name) for e in ents)
    ]
    body = []
    if all(e[2] is None for e in ents):
        body.append(_switch(plan, 0, len(plan.tasks), "  ", units))
    else:
        k = 0
        while k < len(ents):
            first, end, fmt = ents[k]
            if fmt is not None:
                base = first - plan.tasks[first].chunk[1]
                j = "t" if base == 0 else f"(uint16_t)(t - {base}u)"
                names = f"{plan.tasks[first].name} .. {plan.tasks[end - 1].name}"
                body.append(f"  if (t < {end}u) {{ /* {names} */\n    return {fmt.format(j=j)};\n  }}")
                k += 1
                continue
            while k + 1 < len(ents) and ents[k + 1][2] is None:  # a run of single tasks: one switch
                k += 1
            end = ents[k][1]
            body.append(f"  if (t < {end}u) {{\n{_switch(plan, first, end, '    ', units)}\n  }}")
            k += 1
        body.append("  return BL_ERR_ARG;")
    if not any("bl_units[" in b for b in body):  # every mode runs a backend kernel for the EVE units
        units = []
    ends = [i for i, e in enumerate(layer_ends(plan)) if e]
    test = " || ".join(f"t == {i}u" for i in ends)
    return f"""{_units_table(units)}{"".join(h + chr(10) for h in helpers)}bl_status bl_model_task(uint16_t t)
{{
{chr(10).join(body)}
}}

uint8_t bl_model_task_layer_end(uint16_t t)
{{
  return (uint8_t)({test});
}}
"""


def _switch(plan: Any, first: int, end: int, ind: str, units: list[tuple[int, ...]]) -> str:
    lines = []
    for i in range(first, end):
        t = plan.tasks[i]
        expr = task_expr(plan, t)
        if t.unit is not None:  # numbered here: only singly dispatched steps have a row in the table
            expr = expr.format(unit=len(units))
            units.append(t.unit)
        lines.append(f"{ind}case {i}u: /* {t.name} */\n{ind}  return {expr};")
    cases = "\n".join(lines)
    return f"{ind}switch (t) {{\n{cases}\n{ind}default:\n{ind}  return BL_ERR_ARG;\n{ind}}}"


# The most tasks a coarse image runs as straight-line code (``run_marked_c``); more (and every
# range-dispatched or bl_mac_step image) loop over bl_model_task.
STRAIGHT_MAX_TASKS = 64

_MARK_MACRO = """/* bl_mark(t + 1) before task t: the emulators time tasks by it; a measuring build
 * (codegen/measure.py) keeps only the marks of tasks [BL_MODEL_MARK_FIRST, BL_MODEL_MARK_LAST). */
#if defined(BL_MODEL_MARK_FIRST) && defined(BL_MODEL_MARK_LAST)
#define BL_MODEL_MARK(t) \\
  do { \\
    if ((unsigned)(t) - BL_MODEL_MARK_FIRST < BL_MODEL_MARK_LAST - BL_MODEL_MARK_FIRST) bl_mark((t) + 1u); \\
  } while (0)
#else
#define BL_MODEL_MARK(t) bl_mark((t) + 1u)
#endif
"""


def run_marked_c(plan: Any, board: Any) -> str:
    """``bl_model_run_marked`` (model.c): the plain model app's run — the input copy, every task in order with
    its mark, the logits — without bl_model_run's per-task hook call and bl_model_task's dispatch: a coarse
    image's tasks as straight-line calls (~70 MCLK a task less on the MSP430), any other (and every EVE
    image: its per-mode task expressions would be in the image twice, the FR5994 lea MLP's code region has no
    room for that) a loop over bl_model_task. The intermittent runtime (firmware/apps/flex) keeps calling
    bl_model_task(t) one task at a time: what FLEX images run and commit is unchanged."""
    straight = (
        not plan.eve  # EVE: each task's per-mode expression once (the switch), not twice: code room
        and len(plan.tasks) <= STRAIGHT_MAX_TASKS
        and all(e[2] is None for e in entries(plan, uses_ranges(board)))
        and all(t.unit is None for t in plan.tasks)
    )
    if straight:
        body = []
        for i, t in enumerate(plan.tasks):
            body.append(
                f"  BL_MODEL_MARK({i}u); /* {t.name} */\n  st = {task_expr(plan, t)};\n"
                "  if (st != BL_OK) {\n    return st;\n  }"
            )
        run = "\n".join(body)
    else:
        run = """  for (t = 0; t < BL_MODEL_NUM_TASKS; t++) {
    BL_MODEL_MARK(t);
    st = bl_model_task(t);
    if (st != BL_OK) {
      return st;
    }
  }"""
    return f"""{_MARK_MACRO}
bl_status bl_model_run_marked(const int16_t *input, int16_t *logits)
{{
  uint16_t t;
  bl_status st;
  const int16_t *out;
  bl_model_load_input(input);
{run}
  out = bl_model_output();
  for (t = 0; t < BL_MODEL_OUTPUT_LEN; t++) {{
    logits[t] = out[t];
  }}
  return BL_OK;
}}
"""
