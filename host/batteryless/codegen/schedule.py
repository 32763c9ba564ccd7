"""schedule.json: the tasks with their estimated cycles and energy, the commit cost, the memory plan."""

from __future__ import annotations

from batteryless import __version__
from batteryless.boards import Board
from batteryless.codegen import granularity as granularity_mod
from batteryless.codegen.costs import CostModel
from batteryless.codegen.plan import Plan, task_cycles

SCHEDULE_SCHEMA = 1


def schedule_document(
    art, art_name, art_sha, b: Board, backend, plan: Plan, memory, costs: CostModel
) -> dict:
    tasks = []
    costs_step = granularity_mod.step_model(b, backend)
    for i, t in enumerate(plan.tasks):
        cycles = task_cycles(t, costs)
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
