#!/usr/bin/env python3
"""Emulator benchmark: schedule-level speed on a 24 h trace at 1 kHz, and energy per inference / inferences
per hour on the bundled traces for the dense and RAD EXAMPLE schedules under each checkpoint policy.

Writes benchmarks/results/emulator.json and prints a summary. Run:
    .venv/bin/python benchmarks/emulator.py [--quick]
(--quick uses a 2 h trace instead of 24 h for the speed figure and is labelled as such in the results.)
    .venv/bin/python benchmarks/emulator.py --only end-to-end
measures the end-to-end rows (a trace file read and emulated, each row in its own process: wall, CPU, peak
RSS; 24 h @ 1 kHz as CSV and as Shepherd HDF5, 1 h @ 100 kHz as Shepherd HDF5, generated and deleted) and
merges them into the results file; --only speed re-measures the in-memory speed row the same way.
    .venv/bin/python benchmarks/emulator.py --tables
prints the markdown tables of docs/benchmarks.md "## Emulation" from the existing results file (no
measurement).
The firmware-level figure comes from benchmarks/emulator_firmware.py `measure(quick)`; --no-firmware skips
it and keeps the firmware keys of the existing results file.
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


# --- end to end: reading the file included, each row in its own process (peak RSS per row) ---------------
# (format, hours, rate_hz): the 24 h trace of the speed row at 1 kHz as CSV (irradiance, as `trace generate`
# writes it) and as Shepherd HDF5 (power = V x I through the indoor-5cm2 panel, written by shepherd-data's
# Writer), and one hour at Shepherd's own 100 kHz (360 M samples).
E2E_ROWS = (("csv", 24.0, 1000.0), ("hdf5", 24.0, 1000.0), ("hdf5", 1.0, 100_000.0))
E2E_GOALS = {"csv_24h_1khz_wall_s": 20.0, "hdf5_24h_1khz_wall_s": 10.0, "peak_rss_mb": 1024.0}


def _solar(hours: float, start_h: float):
    return generate("solar", peak_w_m2=20.0, duration_s=hours * 3600.0, step_s=1e-3, seed=1, start_h=start_h)


def make_trace_file(fmt: str, hours: float, rate_hz: float, path: Path) -> None:
    """Write the benchmark trace (run in a child process: generating it takes memory the row must not
    be charged for). Above 1 kHz each 1 kHz sample is split into rate/1000 samples with ±5 % noise
    (seeded per block): every sample distinct, written block by block."""
    import logging

    from batteryless.emulate.traces import write_csv

    start = 0.0 if hours >= 24 else 12.0 - hours / 2  # a short trace is centred on noon, like speed()
    tr = _solar(hours, start)
    if fmt == "csv":
        write_csv(tr, path, comment=f"benchmark: solar {hours:g} h at 1 kHz (seed 1, peak 20 W/m2)")
        return
    from shepherd_data import Writer

    logging.getLogger("SHPCore").setLevel(logging.ERROR)
    p_w = load_panel("indoor-5cm2").power(tr.values)
    up = int(round(rate_hz / 1000.0))
    block = max(1, (1 << 20) // up)  # 1 kHz samples per written block
    with Writer(path, mode="harvester", datatype="ivsample", verbose=False) as w:
        for a in range(0, len(p_w), block):
            p = np.repeat(p_w[a : a + block], up)
            if up > 1:
                p *= np.random.default_rng(a).uniform(0.95, 1.05, len(p))
            t = (a * up + np.arange(len(p))) / rate_hz
            v = np.full(len(p), 2.0)
            w.append_iv_data_si(t, v, p / v)


def e2e_row(fmt: str, path: Path) -> dict:
    """One end-to-end emulation of a trace file (the caller runs this in a fresh process)."""
    import resource

    t0, c0 = time.perf_counter(), time.process_time()
    doc = emulate("example-dense", path, BOARD, policies=("flex",), plots=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    r = doc["runs"][0]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": peak,
        "samples": doc["trace"]["samples"],
        "power_failures": r["power_failures"],
        "inferences": r["inferences"],
        "harvested_j": doc["trace"]["harvested_j"],
        "file_bytes": path.stat().st_size,
    }


def end_to_end(workdir: Path) -> list[dict]:
    """The E2E_ROWS, each file generated in one child process and emulated in another, then deleted."""
    rows = []
    me = str(Path(__file__).resolve())
    for fmt, hours, rate in E2E_ROWS:
        path = workdir / f"e2e_{hours:g}h_{rate:g}hz.{'csv' if fmt == 'csv' else 'h5'}"
        try:
            import subprocess

            subprocess.run(
                [sys.executable, me, "--make-trace", fmt, str(hours), str(rate), str(path)], check=True
            )
            out = subprocess.run(
                [sys.executable, me, "--e2e-row", fmt, str(path)], check=True, capture_output=True, text=True
            )
            row = {"format": fmt, "hours": hours, "rate_hz": rate, **json.loads(out.stdout.splitlines()[-1])}
            row["ns_per_sample_cpu"] = 1e9 * row["cpu_s"] / row["samples"]
            row["ns_per_sample_wall"] = 1e9 * row["wall_s"] / row["samples"]
            rows.append(row)
            print(
                f"end to end {fmt} {hours:g} h @ {rate:g} Hz: {row['samples']:,} samples, "
                f"{row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU, {row['peak_rss_mb']:.0f} MB peak, "
                f"{row['power_failures']:,} power failures, {row['ns_per_sample_cpu']:.0f} ns/sample CPU",
                flush=True,
            )
        finally:
            path.unlink(missing_ok=True)
    return rows


def merge_results(new: dict) -> None:
    """Write ``new`` keys into the results file, keeping every other key."""
    old = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
    old.update(new)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(old, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)


# Dense vs RAD models run through the real toolchain: (family, label, zoo model, block, weight bits, pad).
# Short training (only the structure matters for cost; accuracies are recorded). The dense MLP has int8
# weights: with int16 weights (34 KB) it does not fit the FR5994's 40 KB code region next to the code.
MODELS = [
    ("mlp", "mlp-dense", "mlp", 1, 8, False),
    ("mlp", "mlp-rad", "mlp", 16, 16, False),
    ("cnn", "cnn-dense", "cnn", 1, 16, False),
    ("cnn", "cnn-rad", "cnn", 8, 16, True),
]
BIG_BUFFER_F = 1e-3  # second pass for the measured schedules whose largest task exceeds the 100 µF buffer
SAMPLE = 3  # digits test sample the measured run classifies (kernel work does not depend on the data)


def _breakdown(tasks: list[dict]) -> dict:
    """Measured cycles by task kind and by layer, and the FFT share: input-FFT tasks are FFT only; an
    output block is inverse FFT(s) + the frequency-domain MAC, its FFT part taken as its butterflies times
    the measured cycles per butterfly of the same layer's input-FFT tasks."""
    total = sum(t["cycles"] for t in tasks)
    kinds: dict[str, int] = {}
    layers: dict[str, int] = {}
    for t in tasks:
        kinds[t["kind"]] = kinds.get(t["kind"], 0) + t["cycles"]
        layers[t["layer"]] = layers.get(t["layer"], 0) + t["cycles"]
    fft = 0.0
    for layer in layers:
        fin = [t for t in tasks if t["layer"] == layer and t["kind"] == "fft_in"]
        blocks = [t for t in tasks if t["layer"] == layer and t["kind"] == "fft_block"]
        if not fin:
            continue
        per_bfly = sum(t["cycles"] for t in fin) / sum(t["butterflies"] for t in fin)
        fft += sum(t["cycles"] for t in fin) + sum(per_bfly * t["butterflies"] for t in blocks)
    freq_mac = kinds.get("fft_block", 0) - (fft - kinds.get("fft_in", 0))
    return {
        "cycles": total,
        "by_kind": {k: {"cycles": v, "fraction": v / total} for k, v in sorted(kinds.items())},
        "by_layer": {k: {"cycles": v, "fraction": v / total} for k, v in layers.items()},
        "fft_fraction": fft / total,
        "frequency_domain_mac_fraction": freq_mac / total,
        # mac_step: a direct-path layer split into bl_mac_step steps (fine granularity)
        "direct_mac_fraction": (kinds.get("mac", 0) + kinds.get("mac_step", 0)) / total,
        "elementwise_fraction": sum(v for k, v in kinds.items() if k in ("relu", "maxpool", "avgpool"))
        / total,
    }


def codegen_schedules(workdir: Path) -> tuple[list[Path], dict]:
    """The digits MLP and CNN, dense and RAD, through `compress` and `codegen` for msp430fr5994 with the
    activation buffers in FRAM (FLEX), every task's MCLK cycles MEASURED (energy by the board's power
    model): the `ref` backend under mspdebug, the `lea` backend on msp430sim (the emulator its
    [emulator].by_backend names: the only one with a LEA). Returns the schedule.json paths and
    per-schedule information."""
    from batteryless.artifact import load_artifact
    from batteryless.boards import with_emulator
    from batteryless.codegen import codegen
    from batteryless.codegen.costs import cost_model
    from batteryless.codegen.generate import plan_for
    from batteryless.codegen.measure import measure_schedule
    from batteryless.datasets import load_dataset
    from batteryless.rad.admm import AdmmConfig
    from batteryless.rad.compress import CompressConfig, compress

    board = load_board(BOARD)
    x = load_dataset("digits").x_test[SAMPLE]
    out, info = [], {}
    for family, label, model, block, bits, pad in MODELS:
        cfg = CompressConfig(
            block_size=block,
            weight_bits=bits,
            pad=pad,
            dense_epochs=10,
            admm=AdmmConfig(rounds=2, retrain_epochs=2),
        )
        art_path = workdir / f"{label}.bl"
        _, rep = compress(model, "digits", None, art_path, cfg)
        for backend, kind in (("ref", "measured"), ("lea", "measured")):
            gen = workdir / f"gen-{label}-{backend}"
            res = codegen(art_path, board, gen, backend=backend, buffers_in="nvm")
            sched = gen / "schedule.json"
            if kind == "measured":
                measure_schedule(gen, board, art_path, x, backend=backend)
            doc = json.loads(sched.read_text())
            name = f"{label} ({backend}, {kind})"
            doc["label"] = name
            sched.write_text(json.dumps(doc, indent=1) + "\n")
            out.append(sched)
            tasks = doc["modes"][0]["tasks"]
            # the same tasks codegen planned at its default (auto) granularity: cut to fit the buffer (fine)
            # or merged into range calls (coarse; plan.merge_tasks)
            costs = cost_model(board, backend)
            plan, _ = plan_for(load_artifact(art_path), board, backend, "auto", costs, "auto")
            assert [p.name for p in plan.tasks] == [t["name"] for t in tasks], name
            feats = [
                {**t, "macs": p.macs, "butterflies": p.butterflies, "elements": p.elements}
                for t, p in zip(tasks, plan.tasks, strict=True)
            ]
            info[name] = {
                "family": family,
                "variant": "dense" if block == 1 else "rad",
                "backend": backend,
                "costs": kind,
                "block": block,
                "weight_bits": bits,
                "reference_accuracy": rep.get("accuracy", {}).get("reference_accuracy"),
                "weight_bytes": rep["total"]["weight_bytes"],
                "cost_model_source": doc.get("cost_model", {}).get("source"),
                "measured_unit": (doc.get("measured") or {}).get("unit"),
                "measured_on": with_emulator(
                    board, board.emulator.get("by_backend", {}).get(backend)
                ).emulator["kind"]
                if kind == "measured"
                else None,
                "tasks": len(tasks),
                "macs": sum(f["macs"] for f in feats),
                "butterflies": sum(f["butterflies"] for f in feats),
                "commit_fixed_cycles": doc["commit"]["fixed_cycles"],
                "energy_no_failures_uj": 1e6 * sum(t["energy_j"] or 0 for t in tasks),
                "paths": res.paths,
                "breakdown": _breakdown(feats),
            }
    return out, info


def codegen_ratios(rows: list[dict], info: dict) -> dict:
    """Dense / RAD energy per inference under FLEX, per model family and backend, per trace; plus the same
    ratio without power failures (schedule energy only)."""
    out: dict = {}
    for name, i in info.items():
        if i["variant"] != "dense":
            continue
        rad = next(
            n
            for n, j in info.items()
            if j["family"] == i["family"] and j["backend"] == i["backend"] and j["variant"] == "rad"
        )
        per_trace = {}
        for tr in sorted({r["trace"] for r in rows}):
            d = next(r for r in rows if r["trace"] == tr and r["model"] == name and r["policy"] == "flex")
            q = next(r for r in rows if r["trace"] == tr and r["model"] == rad and r["policy"] == "flex")
            ok = d["energy_per_inference_uj"] and q["energy_per_inference_uj"]
            per_trace[tr] = d["energy_per_inference_uj"] / q["energy_per_inference_uj"] if ok else None
        out[f"{i['family']} {i['backend']} ({i['costs']})"] = {
            "dense": name,
            "rad": rad,
            "flex_per_trace": per_trace,
            "no_failures": i["energy_no_failures_uj"] / info[rad]["energy_no_failures_uj"],
        }
    return out


def rows_for_bundled(schedules: list, capacitance_f: float | None = None) -> tuple[list[dict], list[dict]]:
    rows, reports = [], []
    cap = capacitance_f or load_board(BOARD).energy_buffer.capacitance_f
    for name in bundled_traces():
        doc = emulate(schedules, name, BOARD, out_dir=None, capacitance_f=capacitance_f)
        reports.append(
            {
                "trace": name,
                "capacitance_f": cap,
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
                    "capacitance_f": cap,
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


FIRMWARE_KEYS = ("firmware_power_cycles_per_s", "firmware_level")


def firmware_keys(quick: bool, skip: bool) -> dict:
    """The firmware-level keys: measured by benchmarks/emulator_firmware.py, or (``skip``) carried over from
    the existing results file."""
    if skip:
        old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        kept = {k: old[k] for k in FIRMWARE_KEYS if k in old}
        return kept or {"firmware_power_cycles_per_s": None, "firmware_level": "skipped (--no-firmware)"}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from emulator_firmware import measure

    return measure(quick)


def _num(x: float | None, digits: int = 1) -> str:
    """A number with thousands separators, or "—" for None (no inference finished)."""
    return "—" if x is None else f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown_tables(doc: dict) -> str:
    """The markdown tables of docs/benchmarks.md "## Emulation", from an emulator.json document (no
    measurement): the EXAMPLE-schedule table, the per-schedule breakdown of the codegen schedules, and
    their bundled-trace rows on the board's buffer (`rows`) and on 1 mF (`rows_1mf`)."""
    out = ["<!-- example schedules: rows with model dense / rad -->"]
    out.append(
        _row(["trace", "model", "policy", "µJ / inference", "inferences / h", "power failures", "wasted"])
    )
    out.append("|" + "---|" * 7)
    for r in doc["rows"]:
        if r["model"] not in ("dense", "rad"):
            continue
        e = r["energy_per_inference_uj"]
        e_txt = "—" if e is None else (f"{e:.0f}" if e >= 1e5 else f"{e:.1f}")
        out.append(
            _row(
                [
                    r["trace"],
                    r["model"],
                    r["policy"],
                    e_txt,
                    f"{r['inferences_per_hour']:.0f}",
                    r["power_failures"],
                    _pct(r["wasted_fraction_of_mcu_energy"]),
                ]
            )
        )
    info = doc["codegen_schedules"]
    out += ["", "<!-- codegen schedules: codegen_schedules[...] incl. breakdown -->"]
    head = ["schedule", "tasks", "paths (FFT layers)", "weight bytes", "ref. accuracy"]
    head += ["µJ / inference, no failures", "FFT", "freq.-domain MAC", "direct MAC", "ReLU / pool"]
    out += [_row(head), "|" + "---|" * len(head)]
    for name, i in info.items():
        b = i["breakdown"]
        fft = ", ".join(layer for layer, p in i["paths"].items() if p == "fft") or "—"
        fracs = (
            "fft_fraction",
            "frequency_domain_mac_fraction",
            "direct_mac_fraction",
            "elementwise_fraction",
        )
        out.append(
            _row(
                [name, i["tasks"], fft, f"{i['weight_bytes']:,}", f"{100 * i['reference_accuracy']:.1f} %"]
                + [_num(i["energy_no_failures_uj"])]
                + [f"{100 * b[k]:.0f} %" for k in fracs]
            )
        )
    for key, label in (("rows", "board buffer"), ("rows_1mf", "1 mF")):
        rows = [r for r in doc.get(key, []) if r["model"] in info]
        if not rows:
            continue
        out += ["", f"<!-- codegen schedules on the bundled traces, {label}: {key} -->"]
        head = ["trace", "model", "µJ / inference flex · per-layer · restart", "inferences / h (flex)"]
        head += ["power failures", "FLEX commits / boot / wasted (share of MCU energy)"]
        out += [_row(head), "|" + "---|" * len(head)]
        traces = list(dict.fromkeys(r["trace"] for r in rows))
        for tr in traces:
            for name in info:
                by = {r["policy"]: r for r in rows if r["trace"] == tr and r["model"] == name}
                if not by:
                    continue
                f = by["flex"]
                shares = [f["commit_fraction_of_mcu_energy"], f["boot_fraction_of_mcu_energy"]]
                shares.append(f["wasted_fraction_of_mcu_energy"])
                energy = " · ".join(
                    _num(by[p]["energy_per_inference_uj"]) for p in ("flex", "per-layer", "restart")
                )
                out.append(
                    _row(
                        [tr, name, energy, f"{f['inferences_per_hour']:,.0f}", f"{f['power_failures']:,}"]
                        + [" / ".join("—" if s is None else f"{100 * s:.1f}" for s in shares) + " %"]
                    )
                )
    e2e = doc.get("end_to_end")
    if e2e:
        out += ["", "<!-- end to end (reading the file included), one process per row: end_to_end -->"]
        head = ["trace file", "samples", "file", "wall s", "CPU s", "peak RSS MB", "power failures"]
        head += ["ns / sample (CPU)"]
        out += [_row(head), "|" + "---|" * len(head)]
        for r in e2e:
            size = r.get("file_bytes")
            out.append(
                _row(
                    [
                        f"{r['hours']:g} h @ {r['rate_hz'] / 1000:g} kHz, "
                        + ("CSV" if r["format"] == "csv" else "Shepherd HDF5"),
                        f"{r['samples']:,}",
                        "—" if size is None else f"{size / 1e9:.2f} GB",
                        f"{r['wall_s']:.1f}",
                        f"{r['cpu_s']:.1f}",
                        f"{r['peak_rss_mb']:.0f}",
                        f"{r['power_failures']:,}",
                        f"{r['ns_per_sample_cpu']:.0f}",
                    ]
                )
            )
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 h instead of 24 h for the speed figure")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--no-firmware",
        action="store_true",
        help="skip the firmware-level run (emulator_firmware.py); keep its keys from the existing results",
    )
    ap.add_argument(
        "--tables",
        action="store_true",
        help="print the markdown tables of docs/benchmarks.md '## Emulation' from the results file "
        "(no measurement)",
    )
    ap.add_argument(
        "--only",
        choices=("speed", "end-to-end", "codegen"),
        help="measure only the in-memory speed row, the end-to-end rows or the schedule rows (EXAMPLE and "
        "codegen dense vs RAD schedules); merge them into the results file, keeping its other keys",
    )
    ap.add_argument("--make-trace", nargs=4, metavar=("FMT", "HOURS", "RATE", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--e2e-row", nargs=2, metavar=("FMT", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_trace:
        fmt, hours, rate, path = args.make_trace
        make_trace_file(fmt, float(hours), float(rate), Path(path))
        return 0
    if args.e2e_row:
        print(json.dumps(e2e_row(args.e2e_row[0], Path(args.e2e_row[1]))))
        return 0
    if args.only == "end-to-end":
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
            free = shutil.disk_usage(tmp).free
            if free < 12e9:
                sys.exit(f"error: {free / 1e9:.1f} GB free next to the benchmark; the rows need ~12 GB")
            rows = end_to_end(Path(tmp))
        merge_results(
            {
                "end_to_end": rows,
                "end_to_end_note": "emulate() on a trace file (example-dense, flex, msp430fr5994, no plots), "
                "reading included, each row in a fresh process: peak_rss_mb = that process's ru_maxrss; "
                "cpu_s = its process CPU time (the machine is shared: wall_s includes waiting for a core). "
                "Files generated by make_trace_file() in another process and deleted after the row",
                "end_to_end_goals": E2E_GOALS,
            }
        )
        print(f"wrote {RESULTS}")
        return 0
    if args.only == "speed":
        sp = speed(2.0 if args.quick else 24.0, args.repeats)
        print(f"in memory: CPU {min(sp['cpu_seconds']):.2f} s, wall {sp['best_wall_seconds']:.2f} s")
        new = {"schedule_level_speed": sp}
        if not args.quick:
            new["schedule_level_seconds_24h_1khz"] = min(sp["cpu_seconds"])
        merge_results(new)
        print(f"wrote {RESULTS}")
        return 0
    if args.only == "codegen":
        merge_results(codegen_keys())
        print(f"wrote {RESULTS}")
        return 0
    if args.tables:
        if not RESULTS.is_file():
            sys.exit(f"error: {RESULTS} does not exist: run benchmarks/emulator.py first")
        sys.stdout.write(markdown_tables(json.loads(RESULTS.read_text(encoding="utf-8"))))
        return 0
    hours = 2.0 if args.quick else 24.0
    sp = speed(hours, args.repeats)
    print(
        f"schedule level, {hours:g} h at 1 kHz ({sp['samples']:,} samples, {sp['power_failures']:,} "
        f"power cycles): best {sp['best_wall_seconds']:.2f} s wall, CPU {min(sp['cpu_seconds']):.2f} s",
        flush=True,
    )
    cg = codegen_keys()
    rows = cg["rows"]
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
        **firmware_keys(args.quick, args.no_firmware),
        **cg,
    }
    merge_results(doc)  # keeps the end_to_end rows (measured with --only end-to-end)
    print(f"wrote {RESULTS}")
    return 0


def codegen_keys() -> dict:
    """The schedule-level rows of the EXAMPLE and the codegen schedules on the bundled traces, the dense /
    RAD ratios and the codegen schedules' information (the results file's keys)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        real, real_info = codegen_schedules(Path(tmp))
        rows, traces = rows_for_bundled(["example-dense", "example-rad", *real])
        # the measured CNN's largest task (conv1, ~0.4 mJ) exceeds the 100 µF buffer's 288 µJ, so it
        # finishes there only while the harvest makes up the rest: the measured schedules again with a
        # 1 mF buffer (2.88 mJ usable)
        measured = [p for p, i in zip(real, real_info.values(), strict=True) if i["costs"] == "measured"]
        rows_big, traces_big = rows_for_bundled(measured, capacitance_f=BIG_BUFFER_F)
    ratios = {}
    for tr in {r["trace"] for r in rows}:
        d = next(r for r in rows if r["trace"] == tr and r["model"] == "dense" and r["policy"] == "flex")
        q = next(r for r in rows if r["trace"] == tr and r["model"] == "rad" and r["policy"] == "flex")
        if d["energy_per_inference_uj"] and q["energy_per_inference_uj"]:
            ratios[tr] = d["energy_per_inference_uj"] / q["energy_per_inference_uj"]
    ratios_codegen = codegen_ratios(rows, real_info)
    ratios_big = codegen_ratios(rows_big, {n: i for n, i in real_info.items() if i["costs"] == "measured"})
    return {
        "schedules_note": "example-dense / example-rad are hand-written EXAMPLE schedules with made-up costs "
        "(energy = cycles x 0.36 nJ); the ratios below reflect those numbers, not a compiled model",
        "dense_over_rad_energy_per_inference_flex": ratios,
        "codegen_schedules": real_info,
        "codegen_note": "digits MLP and CNN, dense (block 1) vs RAD (MLP block 16, CNN block 8), compressed "
        "with a short training schedule (10 dense epochs, 2 ADMM rounds: only the structure matters for "
        "cost; accuracies recorded), codegen for msp430fr5994 with activation buffers in FRAM and the "
        "per-layer path chosen by the board's cost table. '(ref, measured)': every task's MCLK cycles "
        "measured under mspdebug (measure_schedule, one digits test sample), energy = cycles x the board's "
        "active energy per cycle. '(lea, measured)': the same on msp430sim (MSP430X timing, MPY32, FRAM "
        "wait states, emulated LEA with ASSUMED command timings, docs/msp430sim.md), the emulator the "
        "board's [emulator].by_backend names for lea: ref and lea rows come from different emulators, so "
        "compare dense / RAD within a backend (codegen_schedules[...].measured_on). FLEX commits cost the "
        "board's commit_cycles (fitted, benchmarks/cost_fit.py) plus the NVM write energy of the task's "
        "output. The dense MLP has int8 weights (int16 does not fit the 40 KB code region)",
        "dense_over_rad_energy_per_inference_flex_codegen": ratios_codegen,
        "dense_over_rad_energy_per_inference_flex_measured_1mf": ratios_big,
        "rows_1mf_note": "rows_1mf: the measured schedules again with a 1 mF buffer (other buffer "
        "values from the board), because the measured CNN's conv1 task (~0.4 mJ) does not fit in the "
        "100 uF buffer's 288 uJ",
        "traces_1mf": traces_big,
        "rows_1mf": rows_big,
        "traces": traces,
        "rows": rows,
    }


if __name__ == "__main__":
    sys.exit(main())
