#!/usr/bin/env python3
"""The 1.3x goal's best chance, measured: a four-mode ladder with a tiny mode, a rule calibrated per site.

Issue 11 asks for EVE >= 1.3x the best fixed mode's correct inferences per hour on one variable trace. The
policy study (benchmarks/eve_policy.py, docs/eve.md) bounds every selector by acc_0 / acc_min for a ladder,
and only the four-mode ``mlp-4`` ladder (width 1 / 0.5 / 0.125 / 0.125, keep 1 / 0.5 / 0.25 / 0.03: a tiny
fourth mode) has rows whose bound passes 1.3 — at demand periods of 1 s and 3 s (events faster than the
traces' income for mode 0). This script trains that ladder as benchmarks/eve.py trains its EVE models,
measures its FR5994 ``ref`` schedule on msp430sim (eve.py's ``_schedule``), and on exactly those rows tunes
the rate rule for the site — on three other draws of the trace's generator (seeds 2-4,
``emulate.generators.realizations``), never on the bundled trace — then runs it on the bundled trace: correct
inferences per hour over the bundled trace's best fixed mode.

Writes benchmarks/results/eve_site_ladder.json. Run (about 3 min):
    nice .venv/bin/python benchmarks/eve_site_ladder.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import eve  # noqa: E402  (benchmarks/eve.py: the EVE training and schedule measurement, one place)
from batteryless import __version__  # noqa: E402
from batteryless.boards import load_board  # noqa: E402
from batteryless.datasets import load_dataset  # noqa: E402
from batteryless.emulate import power_chain  # noqa: E402
from batteryless.emulate.adaptive import run_adaptive  # noqa: E402
from batteryless.emulate.generators import realizations  # noqa: E402
from batteryless.emulate.power import load_from_board  # noqa: E402
from batteryless.eve.device import predicted_energy_j  # noqa: E402
from batteryless.eve.policy import correct_per_hour, tune_policy  # noqa: E402
from batteryless.eve.train import EveConfig  # noqa: E402
from batteryless.schedule import load_schedule  # noqa: E402
from batteryless.spec import predict  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "eve_site_ladder.json"
LADDER = {"width": [1.0, 0.5, 0.125, 0.125], "keep": [1.0, 0.5, 0.25, 0.03]}
SEEDS = [2, 3, 4]
# (demand period s, trace, buffer F): the rows whose acc_0/acc_min cap passes 1.3 in eve_policy.json's sweep,
# and their neighbours
ROWS = [
    (1.0, "kinetic-walk", 1e-3),
    (1.0, "markov-2mw", 100e-6),
    (3.0, "kinetic-walk", 1e-3),
    (3.0, "kinetic-walk", 100e-6),
    (3.0, "markov-2mw", 100e-6),
]


def main() -> int:
    t0 = time.perf_counter()
    ds = load_dataset("digits")
    b = load_board(eve.BOARD)
    load = load_from_board(b, b.clock_hz)
    with tempfile.TemporaryDirectory(prefix="bl-eve-site-") as tmp:
        work = Path(tmp)
        path = work / "mlp4.bl"
        art, _, _ = eve._compress(
            "mlp", path, False, modes=4, eve=EveConfig(keep=LADDER["keep"], width=LADDER["width"])
        )
        acc = [float((predict(art, ds.x_test, mode=m) == ds.y_test).mean()) for m in range(4)]
        s = eve._schedule(path, work / "gen")
        sched = load_schedule(work / "gen" / "schedule.json")
    energies = [predicted_energy_j(s, m) for m in s["modes"]]
    energies = [min(energies[: i + 1]) for i in range(len(energies))]
    rows = []
    for period, trace, cap in ROWS:
        draws = {r.name: power_chain(b, r, capacitance_f=cap) for r in realizations(trace, SEEDS)}
        tp = tune_policy(sched, energies, acc, draws, load, period)
        chain = power_chain(b, trace, capacitance_f=cap)
        fixed = [
            correct_per_hour(run_adaptive(sched, None, *chain, load, fixed_mode=m, period_s=period), acc)
            for m in range(len(acc))
        ]
        got = correct_per_hour(run_adaptive(sched, tp["table"], *chain, load, period_s=period), acc)
        rows.append(
            {
                "period_s": period,
                "trace": trace,
                "capacitance_f": cap,
                "fixed_correct_per_hour": fixed,
                "site_correct_per_hour": got,
                "site_over_best_fixed": got / max(fixed),
                "params": tp["params"],
                "calibration_ratio": tp["ratio"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    doc = {
        "generator": f"batteryless {__version__}",
        "command": "nice .venv/bin/python benchmarks/eve_site_ladder.py",
        "ladder": LADDER,
        "accuracy": acc,
        "energy_uj": [1e6 * e for e in energies],
        "calibration_seeds": SEEDS,
        "costs": "measured: codegen --measure on msp430sim (FR5994 ref), as benchmarks/eve.py",
        "rows": rows,
        "best": max(r["site_over_best_fixed"] for r in rows),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    RESULTS.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {RESULTS}: best {doc['best']:.3f}x the best fixed mode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
