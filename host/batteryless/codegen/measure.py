"""Replace a schedule's estimated task costs with counts measured by running the real firmware.

The model app marks the start of every task (``bl_mark(t + 1)``) and the end of the inference
(``bl_mark(0)``); the emulator records the instruction (QEMU) or MCLK-cycle (mspdebug) count at each mark, so
task t costs ``count(mark t+2) − count(mark t+1)``. mspdebug keeps only the last few marks, so there the
image is rebuilt with a window of marked tasks at a time (``BL_MODEL_MARK_FIRST/LAST``).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from batteryless.artifact import load_artifact
from batteryless.boards import Board, load_board, with_emulator
from batteryless.codegen.costs import cost_model
from batteryless.errors import EmulationError, UsageError
from batteryless.paths import atomic_write
from batteryless.progress import ProgressFn, report
from batteryless.spec import quantize_input

MSPDEBUG_WINDOW = 12  # tasks marked per mspdebug run (its tracer keeps ~16 marks)


def _task_counts(marks: list[tuple[int | None, int]], first: int, last: int, n_tasks: int) -> dict[int, int]:
    at = {m: c for m, c in marks if m is not None}
    out = {}
    for t in range(first, last):
        start = at.get(t + 1)
        end = at.get(t + 2) if t + 1 < n_tasks else at.get(0)
        if start is not None and end is not None:
            out[t] = end - start
    return out


def measure_schedule(
    model_dir: str | Path,
    board: str | Path | Board,
    artifact: str | Path,
    sample: np.ndarray,
    backend: str | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Build ``model_dir`` for ``board``, run it on one float ``sample`` and write measured counts into
    ``model_dir/schedule.json`` (``measured: true``; energy from the board's power model). Returns it.

    An EVE model is measured in every mode (one image per mode, ``BL_MODEL_START_MODE``), and its mode
    table (``eve_table.c``, the schedule's ``eve``) is recomputed from the measured energies."""
    from batteryless.firmware import build, run

    b = board if isinstance(board, Board) else load_board(board)
    kind = b.emulator.get("kind")
    if kind not in ("qemu", "mspdebug", "msp430sim"):
        raise UsageError(
            f"board {b.name}: no instruction or cycle counter to measure with (emulator {kind!r})"
        )
    model_dir = Path(model_dir)
    sched_path = model_dir / "schedule.json"
    try:
        schedule = json.loads(sched_path.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(
            f"{sched_path}: cannot read the schedule ({err}); run `batteryless codegen` first"
        ) from None
    if schedule.get("board") != b.name:
        raise UsageError(f"{sched_path} was generated for board {schedule.get('board')!r}, not {b.name!r}")
    backend = backend or schedule.get("backend")
    # a backend that needs another emulator of the board (board.toml [emulator].by_backend: the FR5994's lea
    # images need the LEA, which only the msp430sim emulator has)
    b = with_emulator(b, b.emulator.get("by_backend", {}).get(str(backend)))
    kind = b.emulator.get("kind")
    n = len(schedule["modes"][0]["tasks"])
    n_modes = len(schedule["modes"]) if schedule.get("eve") else 1
    art = load_artifact(artifact)
    x = np.asarray(quantize_input(art, np.asarray(sample)[None]), dtype="<i2")[0].tobytes()
    window = MSPDEBUG_WINDOW if kind == "mspdebug" else n
    unit = None
    totals = []
    costs = cost_model(b, backend)
    windows = math.ceil(n / window)
    with tempfile.TemporaryDirectory(prefix="bl-measure-") as tmp:
        for mi in range(n_modes):
            counts: dict[int, int] = {}
            for w in range(windows):
                first, last = w * window, min(n, (w + 1) * window)
                # mark one task past the window too: its start is the end of the window's last task
                marked = {"BL_MODEL_MARK_FIRST": f"{first}u", "BL_MODEL_MARK_LAST": f"{last + 1}u"}
                defines: dict[str, str | int] = {} if windows == 1 else marked
                if mi:
                    defines["BL_MODEL_START_MODE"] = f"{mi}u"
                img = build(b, model_dir, backend, out_dir=Path(tmp) / f"m{mi}w{w}", defines=defines).image
                res = run(img, b, inputs=x)
                if res.exit_code != 0:
                    raise EmulationError(
                        f"measuring run failed (exit {res.exit_code}): {res.output.strip()[-300:]}"
                    )
                unit = res.unit
                counts.update(_task_counts(res.marks, first, last, n))
                report(progress, f"measure {b.name}", mi * windows + w + 1, n_modes * windows)
            missing = [t for t in range(n) if t not in counts]
            if missing:
                raise EmulationError(f"no marks recorded for tasks {missing[:8]} (the emulator dropped them)")
            for t, task in enumerate(schedule["modes"][mi]["tasks"]):
                if unit == "instructions":
                    task["instructions"] = counts[t]
                    task["cycles"] = counts[t]  # one instruction ≈ one cycle on the M4; unit recorded below
                else:
                    task["cycles"] = counts[t]
                task["energy_j"] = costs.energy_j(task["cycles"])
                task["measured"] = True
            totals.append(sum(counts.values()))
    schedule["measured"] = {"unit": unit, "board": b.name, "total": totals[0]}
    if n_modes > 1:
        from batteryless.eve.device import retable

        schedule["measured"]["per_mode"] = totals
        retable(schedule, b, model_dir)
    atomic_write(sched_path, json.dumps(schedule, indent=1, sort_keys=True) + "\n")
    return schedule
