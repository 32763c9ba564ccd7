"""Reports: the JSON document and matplotlib PNG plots of an emulation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from batteryless.emulate.simulate import Result
from batteryless.paths import atomic_path, atomic_write

MCU_TERMS = ("boot", "useful", "commit", "wasted", "in_progress")


def run_summary(res: Result, harvested_j: float, converter_loss_j: float) -> dict[str, Any]:
    en = dict(res.energy)
    en["harvested"] = harvested_j
    en["converter_loss"] = converter_loss_j
    en["delta_stored"] = en["stored_final"] - en["stored_initial"]
    mcu = sum(en[k] for k in MCU_TERMS)
    en["mcu_total"] = mcu
    accounted = en["converter_loss"] + en["clipped"] + en["leaked"] + mcu + en["delta_stored"]
    err = abs(harvested_j - accounted) / harvested_j if harvested_j > 0 else abs(accounted)
    hours = res.duration_s / 3600.0
    lat = np.asarray(res.latencies_s)
    latency = None
    if len(lat):
        latency = {
            "count": len(lat),
            "min_s": float(lat.min()),
            "median_s": float(np.median(lat)),
            "p90_s": float(np.percentile(lat, 90)),
            "max_s": float(lat.max()),
            "mean_s": float(lat.mean()),
        }
    return {
        "policy": res.policy,
        "inferences": res.inferences,
        "inferences_per_hour": res.inferences / hours if hours > 0 else None,
        "latency": latency,
        "power_failures": res.power_failures,
        "boots": res.boots,
        "commits": res.commits,
        "tasks_completed": res.tasks_completed,
        "time_on_s": res.time_on_s,
        "time_off_s": res.time_off_s,
        "energy_j": en,
        "mcu_energy_per_inference_j": mcu / res.inferences if res.inferences else None,
        "harvested_per_inference_j": harvested_j / res.inferences if res.inferences else None,
        "conservation_relative_error": err,
    }


def to_jsonable(x):
    """NaN/inf → None, numpy scalars → Python, tuples → lists (strict JSON)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: to_jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return to_jsonable(x.item())
    return x


def write_json(doc: dict[str, Any], path: Path) -> Path:
    """Atomic write (temp file + rename); NaN/inf become null."""
    clean = to_jsonable

    return atomic_write(path, json.dumps(clean(doc), indent=2) + "\n")


def _savefig(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:  # the suffix tells matplotlib the format
        fig.savefig(tmp, dpi=110)
    return path


def plot_run(
    res: Result,
    power_t: np.ndarray,
    power_w: np.ndarray,
    title: str,
    path: Path,
    v_on: float,
    v_off: float,
    max_marks: int = 3000,
) -> Path:
    """Harvested power and buffer voltage over time with power-on periods, checkpoints and completions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = res.timeline.arrays() if res.timeline is not None else None
    span = max(float(power_t[-1] - power_t[0]), 1e-9) if len(power_t) else 1.0
    scale, unit = (3600.0, "h") if span > 3 * 3600 else (60.0, "min") if span > 300 else (1.0, "s")
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [1, 1.4]}
    )
    ax1.step(power_t / scale, power_w * 1e3, where="post", lw=0.8, color="tab:orange")
    ax1.set_ylabel("harvested power (mW)")
    ax1.set_title(title, fontsize=10)
    if tl is not None:
        spans = np.asarray(tl["on_periods"], dtype=np.float64).reshape(-1, 2)
        if len(spans) and len(spans) <= max_marks and np.median(spans[:, 1] - spans[:, 0]) > span / 1500:
            bars = [(a / scale, (b - a) / scale) for a, b in spans]
            for ax in (ax1, ax2):
                ylo, yhi = ax.get_ylim() if ax is ax1 else (0, v_on * 1.25)
                ax.broken_barh(bars, (ylo, yhi - ylo), color="tab:green", alpha=0.15, lw=0)
        elif len(spans):
            # too many or too short to draw one by one: the fraction of each bin with the MCU powered
            t0 = float(power_t[0])
            edges = np.linspace(t0, t0 + span, 401)
            on = np.zeros(400)
            for col, sign in ((0, -1.0), (1, 1.0)):  # ∫ on-indicator = Σ (min(b, x) − min(a, x))
                srt = np.sort(spans[:, col])
                csum = np.concatenate(([0.0], np.cumsum(srt)))
                n_le = np.searchsorted(srt, edges, "right")
                cum = csum[n_le] + edges * (len(srt) - n_le)
                on += sign * np.diff(cum)
            frac = on / np.diff(edges)
            ax3 = ax2.twinx()
            ax3.fill_between(edges[:-1] / scale, frac, step="post", color="tab:green", alpha=0.2, lw=0)
            ax3.set_ylim(0, 1.25)
            ax3.set_ylabel("fraction of time powered", color="tab:green")
        ax2.plot(tl["t"] / scale, tl["v"], lw=0.7, color="tab:blue", label="buffer voltage")
        c = tl["commits"]
        if len(c):
            c = c[:: max(1, len(c) // max_marks)]
            ax2.plot(
                c / scale, np.full(len(c), v_off * 0.93), "|", color="tab:gray", ms=6, label="checkpoint"
            )
        d = tl["completions"]
        if len(d):
            d = d[:: max(1, len(d) // max_marks)]
            ax2.plot(
                d / scale, np.full(len(d), v_on * 1.08), "v", color="tab:red", ms=4, label="inference done"
            )
    ax2.axhline(v_on, color="k", ls="--", lw=0.6)
    ax2.axhline(v_off, color="k", ls=":", lw=0.6)
    ax2.set_ylim(0, v_on * 1.25)
    ax2.set_ylabel("buffer voltage (V)")
    ax2.set_xlabel(f"time ({unit}); green: MCU powered")
    ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    try:
        return _savefig(fig, path)
    finally:
        plt.close(fig)


def plot_summary(runs: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Inferences per hour and where the harvested energy went, one bar per (model, policy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['model']}\n{r['policy']}" for r in runs]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax1.bar(labels, [r["inferences_per_hour"] or 0 for r in runs], color="tab:blue")
    ax1.set_ylabel("inferences per hour")
    terms = ("useful", "commit", "boot", "wasted", "in_progress", "leaked", "clipped", "converter_loss")
    bottom = np.zeros(len(runs))
    for term in terms:
        vals = np.array([r["energy_j"][term] * 1e3 for r in runs])
        ax2.bar(labels, vals, bottom=bottom, label=term)
        bottom += vals
    ax2.set_ylabel("energy (mJ)")
    ax2.legend(fontsize=7, ncol=2)
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        return _savefig(fig, path)
    finally:
        plt.close(fig)
