"""Energy-harvesting emulation at schedule level: trace → panel → converter → buffer → MCU running a schedule.

``emulate(schedules, trace, board)`` replays one trace against one or more schedules (e.g. dense vs RAD)
under each checkpoint policy (``flex``, ``per-layer``, ``restart``) and returns a report dict; with
``out_dir`` it also writes ``report.json`` and PNG plots. See docs/emulation.md.

The firmware level (``--firmware``: the real image under QEMU / mspdebug with power cut where the trace
says) is :func:`batteryless.emulate.firmware.emulate_firmware`; the CLI puts its results into the same
report under ``"firmware"`` (``None`` here).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from batteryless import __version__
from batteryless.emulate.power import (
    Buffer,
    Converter,
    Panel,
    buffer_from_board,
    load_converter,
    load_from_board,
    load_panel,
)
from batteryless.emulate.report import plot_run, plot_summary, run_summary, write_json
from batteryless.emulate.simulate import POLICIES, Simulator, build_program
from batteryless.emulate.stream import PowerSketch, chunk_power, chunk_segments
from batteryless.emulate.traces import Trace, TraceStream, load_trace, open_trace, resampled
from batteryless.errors import EmulationError
from batteryless.progress import ProgressFn, report
from batteryless.schedule import Schedule, load_schedule

__all__ = ["emulate", "power_chain", "prepare_segments", "POLICIES"]


def prepare_segments(
    trace: Trace, converter: Converter, panel: Panel | None = None
) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Merge equal consecutive samples, apply panel and converter (the whole trace as one chunk).

    Returns (segment start times, charging power into the buffer, end time, harvested J, converter loss J)."""
    seg_t, p_ch, harvested, loss = chunk_segments(trace.time_s, trace.power_w(panel), trace.end_s, converter)
    return seg_t, p_ch, float(trace.end_s), harvested, loss


def _resolve_board(board: Any):
    if isinstance(board, str | Path):
        from batteryless.boards import load_board

        return load_board(board)
    return board


def power_chain(
    board: Any,
    trace: str | Path | Trace,
    converter: str | Path | Converter = "ideal",
    panel: str | Path | Panel | None = "indoor-5cm2",
    *,
    trace_format: str | None = None,
    resample_s: float | None = None,
    **buffer_overrides: float | None,
) -> tuple[Trace, Converter, Panel | None, Buffer]:
    """Load what both emulation levels share: the trace, the converter, the panel (checked against an
    irradiance trace) and the board's energy buffer with any overrides (``capacitance_f``, ``v_on``, ...)."""
    tr = trace if isinstance(trace, Trace) else load_trace(trace, trace_format, resample_s)
    conv = converter if isinstance(converter, Converter) else load_converter(converter)
    pan = panel if isinstance(panel, Panel) or panel is None else load_panel(panel)
    if tr.quantity == "irradiance" and pan is None:
        raise EmulationError(f"{tr.source}: an irradiance trace needs a panel model (--panel)")
    return tr, conv, pan, buffer_from_board(board, **buffer_overrides)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def emulate(
    schedules: str | Path | Schedule | list[str | Path | Schedule],
    trace: str | Path | Trace,
    board: str | Path | Any,
    *,
    policies: tuple[str, ...] | list[str] = POLICIES,
    mode: str | None = None,
    converter: str | Path | Converter = "ideal",
    panel: str | Path | Panel | None = "indoor-5cm2",
    capacitance_f: float | None = None,
    v_on: float | None = None,
    v_off: float | None = None,
    v_max: float | None = None,
    leakage_resistance_ohm: float | None = None,
    esr_ohm: float | None = None,
    v_initial: float = 0.0,
    out_dir: str | Path | None = None,
    plots: bool = True,
    trace_format: str | None = None,
    resample_s: float | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Replay ``trace`` against each schedule under each policy; return (and optionally write) the report.

    A trace file is read once, in chunks (``traces.open_trace``), and every chunk is fed to every run
    (``simulate.Simulator``): memory stays bounded by the chunk size whatever the trace length
    (``resample_s`` averages the chunks as they come)."""
    t0 = time.perf_counter()
    b = _resolve_board(board)
    conv = converter if isinstance(converter, Converter) else load_converter(converter)
    pan = panel if isinstance(panel, Panel) or panel is None else load_panel(panel)
    buf = buffer_from_board(
        b,
        capacitance_f=capacitance_f,
        v_on=v_on,
        v_off=v_off,
        v_max=v_max,
        leakage_resistance_ohm=leakage_resistance_ohm,
        esr_ohm=esr_ohm,
    )
    scheds = schedules if isinstance(schedules, list) else [schedules]
    if not scheds:
        raise EmulationError("no schedule given")
    scheds = [s if isinstance(s, Schedule) else load_schedule(s) for s in scheds]
    for p in policies:
        if p not in POLICIES:
            raise EmulationError(f"unknown policy {p!r} (known: {', '.join(POLICIES)})")
    if isinstance(trace, Trace):
        stream = TraceStream.from_trace(trace)
    else:
        stream = open_trace(trace, trace_format)
        if resample_s:
            stream = resampled(stream, resample_s)
    if stream.quantity == "irradiance" and pan is None:
        raise EmulationError(f"{stream.source}: an irradiance trace needs a panel model (--panel)")
    use_pan = pan if stream.quantity == "irradiance" else None
    out = Path(out_dir) if out_dir is not None else None
    record = out is not None and plots
    labels_seen: dict[str, int] = {}
    warnings: list[str] = []
    runs: list[
        dict[str, Any]
    ] = []  # per run: label, schedule, mode, program (simulator once the trace starts)
    for s in scheds:
        if s.board != getattr(b, "name", s.board):
            warnings.append(f"{s.source}: costs were estimated for board {s.board!r}, emulated on {b.name!r}")
        m = s.mode(mode)
        load = load_from_board(b, s.clock_hz)
        label = s.label or Path(s.source).stem
        labels_seen[label] = labels_seen.get(label, 0) + 1
        if labels_seen[label] > 1:
            label = f"{label} #{labels_seen[label]}"
        for pol in policies:
            runs.append({"label": label, "schedule": s, "mode": m, "program": build_program(s, m, load, pol)})
    duration_hint = stream.duration_hint_s or 0.0
    sketch = PowerSketch(duration_hint) if record and duration_hint > 0 else None
    harvested = conv_loss = 0.0
    n_segments = 0
    t_first: float | None = None
    t_last = 0.0
    task = "emulate: trace samples"
    report(progress, task, 0, max(stream.samples_hint, 1))
    done = 0
    for chunk in stream.chunks():
        if t_first is None:
            t_first = float(chunk.time_s[0])
            for r in runs:
                r["sim"] = Simulator(
                    buf,
                    r["program"],
                    t_start=t_first,
                    v_initial=v_initial,
                    record=record,
                    plot_dt=max(duration_hint, 1e-9) / 4000,
                )
                r["elapsed_s"] = 0.0
        p_in = chunk_power(chunk.time_s, chunk.values, stream.quantity, use_pan)
        if sketch is not None:
            sketch.add(chunk.time_s - t_first, p_in, chunk.end_s - t_first)
        seg_t, seg_p, h, loss = chunk_segments(chunk.time_s, p_in, chunk.end_s, conv)
        harvested += h
        conv_loss += loss
        n_segments += len(seg_t)
        del p_in
        for r in runs:
            ts = time.perf_counter()
            r["sim"].feed(seg_t, seg_p, chunk.end_s)
            r["elapsed_s"] += time.perf_counter() - ts
        t_last = chunk.end_s
        done += len(chunk.time_s)
        report(progress, task, done, max(stream.samples_hint, done))
    report(progress, task, done, done)
    assert t_first is not None  # the stream raises on an empty trace
    duration = t_last - t_first
    summaries: list[dict[str, Any]] = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for r in runs:
        res = r["sim"].finish(t_last)
        prog, s = r["program"], r["schedule"]
        summary = {
            "model": r["label"],
            "schedule": s.source,
            "schedule_is_example": s.example,
            "schedule_board": s.board,
            "mode": r["mode"].name,
            **run_summary(res, harvested, conv_loss),
            "max_atomic_energy_j": prog.max_atomic_energy_j(),
            "usable_buffer_energy_j": buf.usable_energy(),
            "can_always_progress": prog.max_atomic_energy_j() < buf.usable_energy(),
            "inference_energy_no_failures_j": float(prog.energy_j.sum()),
            "elapsed_s": r["elapsed_s"],
        }
        if out is not None and plots:
            png = out / f"{_slug(r['label'])}_{prog.policy}.png"
            pt, pw = sketch.curve() if sketch is not None else (np.zeros(0), np.zeros(0))
            plot_run(
                res,
                pt + t_first,
                pw,
                f"{r['label']} · {prog.policy} · {stream.name or stream.source} · {b.name} "
                f"({buf.capacitance_f * 1e6:g} µF, {buf.v_off:g}–{buf.v_on:g} V)",
                png,
                buf.v_on,
                buf.v_off,
            )
            summary["plot"] = png.name
        summaries.append(summary)
    doc: dict[str, Any] = {
        "generator": f"batteryless {__version__}",
        "level": "schedule",
        "board": getattr(b, "name", "?"),
        "trace": {
            "name": stream.name,
            "source": stream.source,
            "quantity": stream.quantity,
            "samples": stream.samples,
            "segments_after_merge": n_segments,
            "start_s": stream.start_s,
            "duration_s": duration,
            "harvested_j": harvested,
            "mean_harvested_power_w": harvested / duration,
        },
        "converter": {"name": conv.name, "quiescent_power_w": conv.quiescent_power_w, "source": conv.source},
        "panel": None
        if use_pan is None
        else {"name": use_pan.name, "model": use_pan.model, **use_pan.params, "source": use_pan.source},
        "buffer": asdict(buf),
        "load": asdict(load_from_board(b, scheds[0].clock_hz)),
        "runs": summaries,
        "warnings": warnings
        + [
            f"{r['model']}/{r['policy']}: one atomic step needs {r['max_atomic_energy_j'] * 1e6:.0f} µJ, the "
            f"buffer holds {r['usable_buffer_energy_j'] * 1e6:.0f} µJ between v_on and v_off: "
            "it finishes only while harvesting during the step"
            for r in summaries
            if not r["can_always_progress"]
        ],
        "firmware": None,
        "firmware_note": "schedule level only; the firmware level runs with --firmware (emulate_firmware)",
        "elapsed_s": time.perf_counter() - t0,
    }
    if out is not None:
        if plots and len(summaries) > 1:
            plot_summary(summaries, out / "summary.png", f"{stream.name or stream.source} on {doc['board']}")
            doc["summary_plot"] = "summary.png"
        write_json(doc, out / "report.json")
    return doc
