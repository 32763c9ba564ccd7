"""What codegen adds for an artifact with EVE modes: one schedule mode per EVE mode and the mode table.

Per-mode task costs are *predicted*: each weight layer's tasks are scaled by the ratio of the MACs the mode
does in that layer to the full layer's (``eve.modes.mode_stats`` under the path codegen chose; the MAC count
includes the FFT path's transforms, and a mode skips the transforms of input blocks it never reads and
output block rows it never writes). Other tasks (ReLU, pooling) cost the same in every mode. The mode table's
thresholds come from those predicted energies, the board's energy buffer and the modes' ``margin``
(set by the search; 1 otherwise) (``eve.select``).

The image executes every mode over the one weight store (codegen/modes.py: per-layer block selections,
firmware/kernels/common/eve_sel.c); ``model.cmake`` adds the selector (firmware/eve) to the build.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from batteryless.artifact import layer_stats
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


def mode_schedule_modes(art, schedule: dict[str, Any]) -> list[dict[str, Any]]:
    """The schedule's ``modes``, one entry per EVE mode (mode 0 keeps codegen's tasks as they are)."""
    base = schedule["modes"][0]["tasks"]
    out = []
    for mi, ratios in enumerate(mode_layer_ratios(art, schedule.get("paths", {}))):
        tasks = copy.deepcopy(base)
        if mi:
            for t in tasks:
                r = ratios.get(t["layer"], 1.0)
                if r != 1.0:
                    t["cycles"] = max(1, int(round(t["cycles"] * r)))
                    if t.get("energy_j") is not None:
                        t["energy_j"] = t["energy_j"] * r
                    # a fine-grained step's fitted upper bound (what the schedule-level emulator charges
                    # when it exceeds the estimate: emulate/simulate.py build_program) scales with the
                    # step's work too; left at mode 0's it charged every mode mode 0's steps (the digits
                    # CNN's smallest mode cost the emulator ~0.9x mode 0's energy instead of ~0.2x)
                    if t.get("step_bound_cycles") is not None:
                        t["step_bound_cycles"] = max(1, int(round(t["step_bound_cycles"] * r)))
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
    art, schedule: dict[str, Any], board, out: Path, banner: str, cmake_banner: str = "", policy=None
) -> list[Path]:
    """Rewrite ``schedule`` in place with every EVE mode and the mode table; write ``eve_table.c`` and
    ``model.cmake``. ``policy``: a rate-rule document (``eve.policy.policy``) or its path; without it the
    threshold rule."""
    schedule["modes"] = mode_schedule_modes(art, schedule)
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
    atomic_write(cmake, model_cmake(cmake_banner, len(art.modes)))
    return [path, cmake]
