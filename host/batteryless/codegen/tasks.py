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
    return eve_modes.task_case(lm, t.call, t.sel_fmt, lits, t.rows, t.zero)


def units_table(plan: Any) -> str:
    """The bl_mac_unit of every bl_mac_step task (const: flash / FRAM code region)."""
    if not plan.units:
        return ""
    rows = ",\n".join("  {" + ", ".join(f"{v}u" for v in u) + "}" for u in plan.units)
    return f"static const bl_mac_unit bl_units[{len(plan.units)}] = {{\n{rows}\n}};\n"


def layer_ends(plan: Any) -> list[int]:
    """1 where task i is the last task of its layer."""
    tl = plan.tasks
    return [int(i + 1 == len(tl) or tl[i + 1].layer != t.layer) for i, t in enumerate(tl)]


def dispatch_c(plan: Any) -> str:
    """``bl_model_task`` and ``bl_model_task_layer_end`` (model.c)."""
    cases = "\n".join(
        f"  case {i}u: /* {t.name} */\n    return {task_expr(plan, t)};" for i, t in enumerate(plan.tasks)
    )
    ends = layer_ends(plan)
    return f"""bl_status bl_model_task(uint16_t t)
{{
  switch (t) {{
{cases}
  default:
    return BL_ERR_ARG;
  }}
}}

const uint8_t bl_model_task_layer_end[BL_MODEL_NUM_TASKS] = {{{", ".join(f"{e}u" for e in ends)}}};
"""
