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
from batteryless.emulate.simulate import POLICIES, build_program, simulate
from batteryless.emulate.traces import Trace, load_trace
from batteryless.errors import EmulationError
from batteryless.progress import ProgressFn, report
from batteryless.schedule import Schedule, load_schedule

__all__ = ["emulate", "power_chain", "prepare_segments", "POLICIES"]


def prepare_segments(
    trace: Trace, converter: Converter, panel: Panel | None = None
) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Merge equal consecutive samples, apply panel and converter.

    Returns (segment start times, charging power into the buffer, end time, harvested J, converter loss J)."""
    p_in = trace.power_w(panel)
    t = trace.time_s
    if len(p_in) > 1:
        keep = np.empty(len(p_in), dtype=bool)
        keep[0] = True
        np.not_equal(p_in[1:], p_in[:-1], out=keep[1:])
        if not keep.all():
            t, p_in = t[keep], p_in[keep]
    p_ch = converter.output_power(p_in)
    dt = np.empty(len(t))  # segment lengths, without a trace-sized copy of t
    np.subtract(t[1:], t[:-1], out=dt[:-1])
    dt[-1] = trace.end_s - t[-1]
    harvested = float(np.einsum("i,i->", p_in, dt))
    loss = 0.0 if p_ch is p_in else harvested - float(np.einsum("i,i->", p_ch, dt))
    return t, p_ch, float(trace.end_s), harvested, loss


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
    """Replay ``trace`` against each schedule under each policy; return (and optionally write) the report."""
    t0 = time.perf_counter()
    b = _resolve_board(board)
    tr, conv, pan, buf = power_chain(
        b,
        trace,
        converter,
        panel,
        trace_format=trace_format,
        resample_s=resample_s,
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
    seg_t, seg_p, t_end, harvested, conv_loss = prepare_segments(
        tr, conv, pan if tr.quantity == "irradiance" else None
    )
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    record = out is not None and plots
    runs: list[dict[str, Any]] = []
    total = len(scheds) * len(policies)
    done = 0
    labels_seen: dict[str, int] = {}
    warnings: list[str] = []
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
            report(progress, "emulate", done, total)
            prog = build_program(s, m, load, pol)
            ts = time.perf_counter()
            res = simulate(seg_t, seg_p, t_end, buf, prog, v_initial=v_initial, record=record)
            summary = run_summary(res, harvested, conv_loss)
            summary = {
                "model": label,
                "schedule": s.source,
                "schedule_is_example": s.example,
                "schedule_board": s.board,
                "mode": m.name,
                **summary,
                "max_atomic_energy_j": prog.max_atomic_energy_j(),
                "usable_buffer_energy_j": buf.usable_energy(),
                "can_always_progress": prog.max_atomic_energy_j() < buf.usable_energy(),
                "inference_energy_no_failures_j": float(prog.energy_j.sum()),
                "elapsed_s": time.perf_counter() - ts,
            }
            if out is not None and plots:
                png = out / f"{_slug(label)}_{pol}.png"
                pt, pw = _plot_power(tr, pan)
                plot_run(
                    res,
                    pt,
                    pw,
                    f"{label} · {pol} · {tr.name or tr.source} · {b.name} "
                    f"({buf.capacitance_f * 1e6:g} µF, {buf.v_off:g}–{buf.v_on:g} V)",
                    png,
                    buf.v_on,
                    buf.v_off,
                )
                summary["plot"] = png.name
            runs.append(summary)
            done += 1
    report(progress, "emulate", total, total)
    doc: dict[str, Any] = {
        "generator": f"batteryless {__version__}",
        "level": "schedule",
        "board": getattr(b, "name", "?"),
        "trace": {
            "name": tr.name,
            "source": tr.source,
            "quantity": tr.quantity,
            "samples": len(tr),
            "segments_after_merge": len(seg_t),
            "duration_s": tr.duration_s,
            "harvested_j": harvested,
            "mean_harvested_power_w": harvested / tr.duration_s,
        },
        "converter": {"name": conv.name, "quiescent_power_w": conv.quiescent_power_w, "source": conv.source},
        "panel": None
        if pan is None or tr.quantity != "irradiance"
        else {"name": pan.name, "model": pan.model, **pan.params, "source": pan.source},
        "buffer": asdict(buf),
        "load": asdict(load_from_board(b, scheds[0].clock_hz)),
        "runs": runs,
        "warnings": warnings
        + [
            f"{r['model']}/{r['policy']}: one atomic step needs {r['max_atomic_energy_j'] * 1e6:.0f} µJ, the "
            f"buffer holds {r['usable_buffer_energy_j'] * 1e6:.0f} µJ between v_on and v_off: "
            "it finishes only while harvesting during the step"
            for r in runs
            if not r["can_always_progress"]
        ],
        "firmware": None,
        "firmware_note": "schedule level only; the firmware level runs with --firmware (emulate_firmware)",
        "elapsed_s": time.perf_counter() - t0,
    }
    if out is not None:
        if plots and len(runs) > 1:
            plot_summary(runs, out / "summary.png", f"{tr.name or tr.source} on {doc['board']}")
            doc["summary_plot"] = "summary.png"
        write_json(doc, out / "report.json")
    return doc


def _plot_power(tr: Trace, panel: Panel | None, max_points: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    if len(tr) > max_points:
        tr = tr.resample(tr.duration_s / max_points)
    return tr.time_s, tr.power_w(panel if tr.quantity == "irradiance" else None)
