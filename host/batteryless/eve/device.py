"""What codegen adds for an artifact with EVE modes: one schedule mode per EVE mode and the mode table.

Per-mode task costs are *predicted* with the board's cost table (codegen/costs.py), from each task's
features (``codegen.plan.task_features``, the one place a task's work is counted): in a smaller mode the
work features of a weight layer's tasks — MACs, butterflies, transforms — scale by the ratio of the MACs the
mode does in that layer to the full layer's (``layer_stats`` under the path codegen chose; the MAC count
includes the FFT path's transforms, and a mode skips the transforms of input blocks it never reads and
output block rows it never writes), while the per-task and per-output costs (the call, requantisation, row
set-up) stay what they are: scaling the whole task, as before, predicted the smallest modes low (0.85x the
M4's measured counts, ~0.62x cmsis's; benchmarks/cost_check.py). A direct-path circulant task that a mode
runs through the block-selecting kernel (codegen/modes.py: the selecting walk of eve_sel.c) is priced at
the walk's MAC cost. Other tasks (ReLU, pooling) cost the same in every mode. The mode table's
thresholds come from those predicted energies, the board's energy buffer and the modes' ``margin``
(set by the search; 1 otherwise) (``eve.select``).

The image executes every mode over the one weight store (codegen/modes.py: per-layer block selections,
firmware/kernels/common/eve_sel.c); ``model.cmake`` adds the selector (firmware/eve) to the build.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from batteryless.artifact import layer_stats
from batteryless.codegen.modes import UNUSED
from batteryless.eve.modes import active_blocks
from batteryless.eve.select import emit_c_table, mode_table


def mode_layer_ratios(art, paths: dict[str, str]) -> list[dict[str, float]]:
    """Per mode: weight-layer name → MACs in that mode / MACs of the full layer (under ``paths``)."""
    out = []
    for mi in range(len(art.modes)):
        ratios = {}
        for layer in art.weight_layers():
            lay = {**layer, "path": paths.get(layer["name"], layer.get("path", "direct"))}
            full = layer_stats(lay, art.tensors, art.input_shape, art.layers)["macs"]
            mode = layer_stats(
                lay, art.tensors, art.input_shape, art.layers, active=active_blocks(art, layer, mi)
            )
            ratios[layer["name"]] = mode["macs"] / full if full else 1.0
        out.append(ratios)
    return out


# task features that grow with the work a mode keeps (the rest — calls, outputs, elements — are per task)
WORK_FEATURES = (
    "macs", "conv_macs", "dense_macs", "dense_conv_macs", "walk_macs", "walk_conv_macs", "fft_macs",
    "w8_macs", "butterflies", "short_butterflies", "transforms",
)  # fmt: skip


def mode_task_features(plan, task, mi: int, ratio: float) -> dict[str, float]:
    """The cost features of ``task`` (a task of codegen's ``plan``) in mode ``mi``, whose layer does
    ``ratio`` of its MACs there. A task over output rows [r0, r1) of a layer the modes select from
    (codegen/modes.py LayerModes) does the share of its stored blocks the mode uses and writes the rows the
    mode keeps; one whose rows the mode drops only zeroes them; a linear FFT input transform the mode never
    reads is skipped. Other tasks of such a layer scale their work by ``ratio`` and their outputs by the
    rows kept. The per-task terms (the call) stay."""
    from batteryless.codegen.plan import task_features

    if getattr(task, "parts", None):  # a merged task (plan.merge_tasks): its parts, each priced as it is
        out: dict[str, float] = {}
        for part in task.parts:
            for k, v in mode_task_features(plan, part, mi, ratio).items():
                out[k] = out.get(k, 0) + v
        if mi in getattr(task, "range_modes", ()):  # the parts' work in one range call
            out["calls"] = 1
        return out
    f: dict[str, float] = dict(task_features(task))
    lm = plan.eve.get(task.layer, (None, {}))[0]
    if lm is None:
        return _scaled(f, ratio, 1.0)
    if task.in_block is not None and lm.cols:
        return f if lm.cols[mi][task.in_block] else {}
    full_rows = max(lm.rows[0], 1)
    if task.rows is None:
        return _scaled(f, ratio, min(lm.rows[mi], full_rows) / full_rows)
    r0, r1 = task.rows
    kept = max(0, min(r1, lm.rows[mi]) - r0)
    share = kept / (r1 - r0)
    if lm.rank is not None and lm.cols:
        k, q = lm.block, len(lm.cols[mi])
        grid = np.asarray(lm.rank).reshape(-1, q)[r0 // k : -(-r1 // k)]
        stored = int((grid != UNUSED).sum())
        live = -(-lm.rows[mi] // k) - r0 // k  # block rows of this task the mode keeps
        used = int((grid[: max(live, 0)] < lm.n[mi]).sum())
        share = used / stored if stored else 0.0
    if kept == 0 or share == 0.0:
        return {"calls": 1, "elements": r1 - r0}  # the rows zeroed (bl_eve_zero)
    return _scaled(f, share, kept / (r1 - r0))


def _scaled(f: dict[str, float], work: float, outputs: float) -> dict[str, float]:
    out = dict(f)
    for k in WORK_FEATURES:
        out[k] = out.get(k, 0) * work
    out["outputs"] = out.get("outputs", 0) * outputs
    return out


def mode_schedule_modes(art, schedule: dict[str, Any], plan=None, costs=None) -> list[dict[str, Any]]:
    """The schedule's ``modes``, one entry per EVE mode (mode 0 keeps codegen's tasks as they are).
    ``plan``/``costs``: codegen's plan and cost model, which price each mode's tasks from their features;
    without them (a schedule read back) a layer's tasks scale by its MAC ratio as a whole."""
    base = schedule["modes"][0]["tasks"]
    out = []
    for mi, ratios in enumerate(mode_layer_ratios(art, schedule.get("paths", {}))):
        tasks = copy.deepcopy(base)
        if mi:
            for i, t in enumerate(tasks):
                r = ratios.get(t["layer"], 1.0)
                if r != 1.0 or (plan is not None and t["layer"] in plan.eve):
                    cycles_0 = t["cycles"]
                    if plan is not None and costs is not None:
                        cycles = costs.cycles(**mode_task_features(plan, plan.tasks[i], mi, r))
                        t["cycles"] = max(1, int(round(cycles)))
                        if t.get("energy_j") is not None:
                            t["energy_j"] = costs.energy_j(cycles)
                    else:
                        t["cycles"] = max(1, int(round(t["cycles"] * r)))
                        if t.get("energy_j") is not None:
                            t["energy_j"] = t["energy_j"] * r
                    # a fine-grained step's fitted upper bound (what the schedule-level emulator charges
                    # when it exceeds the estimate: emulate/simulate.py build_program) scales with the
                    # step's priced cycles (its fixed per-call costs included, so never below the MAC
                    # share); left at mode 0's it charged every mode mode 0's steps (the digits CNN's
                    # smallest mode cost the emulator ~0.9x mode 0's energy instead of ~0.2x)
                    if t.get("step_bound_cycles") is not None:
                        share = min(1.0, t["cycles"] / cycles_0) if cycles_0 else r
                        t["step_bound_cycles"] = max(1, int(round(t["step_bound_cycles"] * share)))
                    t["instructions"] = None
                    t["measured"] = False
        out.append({"name": art.modes[mi]["name"], "tasks": tasks})
    return out


def predicted_energy_j(schedule: dict[str, Any], mode: dict[str, Any]) -> float:
    """One inference in ``mode``: its tasks' energy plus one fixed commit per task (FLEX commits each)."""
    fixed = schedule.get("commit", {}).get("fixed_energy_j", 0.0) or 0.0
    return sum((t.get("energy_j") or 0.0) + fixed for t in mode["tasks"])


def _table(schedule: dict[str, Any], board, margins: list[float], names: list[str]):
    energies = [predicted_energy_j(schedule, m) for m in schedule["modes"]]
    # the table needs energies that never grow from mode 0 on (a smaller mode that measured a hair more
    # than a larger one is given the larger one's)
    for i in range(1, len(energies)):
        energies[i] = min(energies[i], energies[i - 1])
    buf = board.energy_buffer
    return mode_table(energies, buf.capacitance_f, buf.v_off, margin=margins, names=names)


def retable(schedule: dict[str, Any], board, out: Path) -> None:
    """After measuring (codegen/measure.py): the mode table from the schedule's measured energies, into
    ``schedule["eve"]`` and ``eve_table.c`` (its banner kept)."""
    old = schedule["eve"]
    if old.get("rate"):  # the rate rule keeps its tuned (effective) energies: measuring does not retune it
        return
    table = _table(schedule, board, list(old["margin"]), list(old["names"]))
    schedule["eve"] = {**table.as_dict(), "predicted": False}
    path = Path(out) / "eve_table.c"
    banner = path.read_text().split("\n", 1)[0] + "\n"
    from batteryless.paths import atomic_write

    atomic_write(path, emit_c_table(table, banner))


def add_modes(
    art,
    schedule: dict[str, Any],
    board,
    out: Path,
    banner: str,
    cmake_banner: str = "",
    policy=None,
    plan=None,
    costs=None,
) -> list[Path]:
    """Rewrite ``schedule`` in place with every EVE mode and the mode table; write ``eve_table.c`` and
    ``model.cmake``. ``policy``: a rate-rule document (``eve.policy.policy``) or its path; without it the
    threshold rule. ``plan``/``costs``: codegen's, to price each mode's tasks (``mode_schedule_modes``)."""
    schedule["modes"] = mode_schedule_modes(art, schedule, plan, costs)
    names = [m["name"] for m in art.modes]
    if policy is not None:
        from batteryless.eve.policy import load_policy, table_from_policy

        table = table_from_policy(load_policy(policy), board.energy_buffer, names)
    else:  # margins from the search, if it ran
        table = _table(schedule, board, [m.get("margin", 1.0) for m in art.modes], names)
    schedule["eve"] = {**table.as_dict(), "predicted": True}
    from batteryless.codegen.modes import model_cmake
    from batteryless.paths import atomic_write

    path = out / "eve_table.c"
    atomic_write(path, emit_c_table(table, banner))
    cmake = out / "model.cmake"
    # appended to emit's model.cmake (BL_FFT_MAX_K, and BL_OUT_CAPACITY when the memory plan shrank the
    # output buffer): overwriting it dropped them, and an EVE image whose RAM the plan had filled exactly
    # overflowed SRAM at link (benchmarks/eve.py's CNN on lea: 42 B)
    before = cmake.read_text(encoding="utf-8") if cmake.is_file() else ""
    atomic_write(cmake, before + model_cmake("" if before else cmake_banner, len(art.modes)))
    return [path, cmake]
