#!/usr/bin/env python3
"""Emulator benchmark: schedule-level speed on a 24 h trace at 1 kHz, and energy per inference / inferences
per hour on the bundled traces for the dense and RAD EXAMPLE schedules under each checkpoint policy.

Writes benchmarks/results/emulator.json and prints a summary. Run:
    .venv/bin/python benchmarks/emulator.py [--quick]
(--quick uses a 2 h trace instead of 24 h for the speed figure and is labelled as such in the results.)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from batteryless import __version__
from batteryless.boards import load_board
from batteryless.emulate import emulate, prepare_segments
from batteryless.emulate.generators import generate
from batteryless.emulate.power import buffer_from_board, load_converter, load_from_board, load_panel
from batteryless.emulate.simulate import build_program, simulate
from batteryless.emulate.traces import bundled_traces
from batteryless.schedule import load_schedule

RESULTS = Path(__file__).resolve().parent / "results" / "emulator.json"
BOARD = "msp430fr5994"


def speed(hours: float, repeats: int) -> dict:
    """Seconds to emulate ``hours`` of a 1 kHz solar trace (samples all distinct), one schedule and policy."""
    start = 0.0 if hours >= 24 else 12.0 - hours / 2  # a short run is centred on noon
    trace = generate("solar", peak_w_m2=20.0, duration_s=hours * 3600.0, step_s=1e-3, seed=1, start_h=start)
    board = load_board(BOARD)
    sched = load_schedule("example-dense")
    buf = buffer_from_board(board)
    prog = build_program(sched, sched.mode(), load_from_board(board, sched.clock_hz), "flex")
    conv, panel = load_converter("ideal"), load_panel("indoor-5cm2")
    walls, cpus = [], []
    for _ in range(repeats):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        seg_t, seg_p, t_end, harvested, _ = prepare_segments(trace, conv, panel)
        res = simulate(seg_t, seg_p, t_end, buf, prog)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        del seg_t, seg_p
    return {
        "trace": "generated solar day (seed 1, peak 20 W/m², indoor-5cm2 panel), step 1 ms, flicker noise: "
        "every sample distinct",
        "hours": hours,
        "start_hour": start,
        "samples": len(trace),
        "schedule": "example-dense",
        "policy": "flex",
        "wall_seconds": walls,
        "cpu_seconds": cpus,
        "best_wall_seconds": min(walls),
        "power_failures": res.power_failures,
        "inferences": res.inferences,
        "harvested_j": harvested,
        "microseconds_per_power_cycle_upper_bound": 1e6 * min(cpus) / max(res.power_failures, 1),
    }


def codegen_schedules(workdir: Path) -> tuple[list[Path], dict]:
    """Dense and RAD versions of the digits CNN (short training: only their structure matters for cost),
    through `compress` and `codegen` (lea backend, activation buffers in FRAM) → two real schedule.json."""
    from batteryless.codegen import codegen
    from batteryless.rad.admm import AdmmConfig
    from batteryless.rad.compress import CompressConfig, compress

    out, info = [], {}
    for label, block in (("cnn-dense", 1), ("cnn-rad", 8)):
        cfg = CompressConfig(
            block_size=block, pad=True, dense_epochs=10, admm=AdmmConfig(rounds=2, retrain_epochs=2)
        )
        art_path = workdir / f"{label}.bl"
        _, rep = compress("cnn", "digits", None, art_path, cfg)
        res = codegen(art_path, BOARD, workdir / f"gen-{label}", backend="lea", buffers_in="nvm")
        sched = workdir / f"gen-{label}" / "schedule.json"
        doc = json.loads(sched.read_text())
        doc["label"] = f"{label} (codegen)"
        sched.write_text(json.dumps(doc, indent=1) + "\n")
        out.append(sched)
        info[label] = {
            "block": block,
            "reference_accuracy": rep.get("accuracy", {}).get("reference_accuracy"),
            "weight_bytes": rep["total"]["weight_bytes"],
            "cost_model_source": doc.get("cost_model", {}).get("source"),
            "tasks": len(doc["modes"][0]["tasks"]),
            "energy_no_failures_uj": 1e6 * sum(t["energy_j"] or 0 for t in doc["modes"][0]["tasks"]),
            "paths": res.paths,
        }
    return out, info


def rows_for_bundled(schedules: list) -> tuple[list[dict], list[dict]]:
    rows, reports = [], []
    for name in bundled_traces():
        doc = emulate(schedules, name, BOARD, out_dir=None)
        reports.append(
            {
                "trace": name,
                "duration_s": doc["trace"]["duration_s"],
                "mean_harvested_power_w": doc["trace"]["mean_harvested_power_w"],
                "elapsed_s": doc["elapsed_s"],
            }
        )
        for r in doc["runs"]:
            e = r["energy_j"]
            rows.append(
                {
                    "trace": name,
                    "model": {"dense (example)": "dense", "RAD (example)": "rad"}.get(r["model"], r["model"]),
                    "policy": r["policy"],
                    "energy_per_inference_uj": None
                    if r["mcu_energy_per_inference_j"] is None
                    else r["mcu_energy_per_inference_j"] * 1e6,
                    "inferences_per_hour": r["inferences_per_hour"],
                    "inferences": r["inferences"],
                    "power_failures": r["power_failures"],
                    "median_latency_s": r["latency"]["median_s"] if r["latency"] else None,
                    "wasted_fraction_of_mcu_energy": e["wasted"] / e["mcu_total"] if e["mcu_total"] else None,
                    "commit_fraction_of_mcu_energy": e["commit"] / e["mcu_total"] if e["mcu_total"] else None,
                    "boot_fraction_of_mcu_energy": e["boot"] / e["mcu_total"] if e["mcu_total"] else None,
                    "energy_no_failures_uj": r["inference_energy_no_failures_j"] * 1e6,
                    "conservation_relative_error": r["conservation_relative_error"],
                }
            )
    return rows, reports


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 h instead of 24 h for the speed figure")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    hours = 2.0 if args.quick else 24.0
    sp = speed(hours, args.repeats)
    print(
        f"schedule level, {hours:g} h at 1 kHz ({sp['samples']:,} samples, {sp['power_failures']:,} "
        f"power cycles): best {sp['best_wall_seconds']:.2f} s wall, CPU {min(sp['cpu_seconds']):.2f} s",
        flush=True,
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        real, real_info = codegen_schedules(Path(tmp))
        rows, traces = rows_for_bundled(["example-dense", "example-rad", *real])
    ratios, ratios_codegen = {}, {}
    for tr in {r["trace"] for r in rows}:
        d = next(r for r in rows if r["trace"] == tr and r["model"] == "dense" and r["policy"] == "flex")
        q = next(r for r in rows if r["trace"] == tr and r["model"] == "rad" and r["policy"] == "flex")
        if d["energy_per_inference_uj"] and q["energy_per_inference_uj"]:
            ratios[tr] = d["energy_per_inference_uj"] / q["energy_per_inference_uj"]
        d = next(
            r
            for r in rows
            if r["trace"] == tr and r["model"] == "cnn-dense (codegen)" and r["policy"] == "flex"
        )
        q = next(
            r
            for r in rows
            if r["trace"] == tr and r["model"] == "cnn-rad (codegen)" and r["policy"] == "flex"
        )
        if d["energy_per_inference_uj"] and q["energy_per_inference_uj"]:
            ratios_codegen[tr] = d["energy_per_inference_uj"] / q["energy_per_inference_uj"]
    for r in rows:
        e = r["energy_per_inference_uj"]
        print(
            f"{r['trace']:14s} {r['model']:20s} {r['policy']:10s} "
            f"{'—' if e is None else f'{e:8.1f}'} µJ/inference  {r['inferences_per_hour']:10.1f} /h"
        )
    doc = {
        "generator": f"batteryless {__version__}",
        "host": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
        "numpy": np.__version__,
        "board": BOARD,
        "quick": args.quick,
        # the emulator is single-threaded: its process CPU time is its time on one core; the wall time
        # (in schedule_level_speed) also counts waiting for the CPU while other jobs share the machine
        "schedule_level_seconds_24h_1khz": None if args.quick else min(sp["cpu_seconds"]),
        "schedule_level_seconds_measure": "best process CPU seconds of the repeats (single-threaded); "
        "wall seconds are in schedule_level_speed",
        "schedule_level_speed": sp,
        "firmware_power_cycles_per_s": None,
        "firmware_power_cycles_per_s_reason": "firmware-level emulation (--firmware) is not implemented "
        "yet: it needs the FLEX harnesses; nothing was measured",
        "schedules_note": "example-dense / example-rad are hand-written EXAMPLE schedules with made-up costs "
        "(energy = cycles x 0.36 nJ); the ratios below reflect those numbers, not a compiled model",
        "dense_over_rad_energy_per_inference_flex": ratios,
        "codegen_schedules": real_info,
        "codegen_note": "cnn-dense / cnn-rad: the digits CNN compressed with a short schedule (block 1 vs "
        "8), codegen for msp430fr5994 (lea backend, buffers in FRAM); task costs are codegen's ASSUMED "
        "cost-model estimates, not measurements",
        "dense_over_rad_energy_per_inference_flex_codegen": ratios_codegen,
        "traces": traces,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
