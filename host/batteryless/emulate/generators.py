"""Deterministic synthetic energy traces: same parameters and seed → the same samples, on every machine.

Each generator returns a :class:`~batteryless.emulate.traces.Trace` sampled every ``step_s`` seconds for
``duration_s`` seconds. Randomness comes only from ``numpy.random.default_rng(seed)``.

- ``constant``: a fixed power.
- ``markov``: on/off two-state Markov chain (exponential on and off times with the given means).
- ``windowed``: periodic on/off windows (duty cycle, period, phase), e.g. a light switched on a timer.
- ``solar``: irradiance over a day: a clear-sky half-sine between sunrise and sunset times an attenuation
  from a Markov cloud process (clouds pass and leave), for a panel model to convert.
- ``rf``: RF power at a distance (Friis free-space equation, times rectifier efficiency), the receiver moving
  around a mean distance; saturates at the harvester's maximum (as REACT's P2110B traces do at 10 mW).
- ``kinetic``: bursts (Poisson arrivals) of exponentially decaying power, e.g. footsteps or vibration.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from batteryless.emulate.traces import Trace, trace_path
from batteryless.errors import TraceError

SPEED_OF_LIGHT = 299_792_458.0


def _grid(duration_s: float, step_s: float) -> np.ndarray:
    if not duration_s > 0 or not step_s > 0:
        raise TraceError(f"duration_s and step_s must be > 0 (got {duration_s}, {step_s})")
    n = int(math.ceil(duration_s / step_s - 1e-9))
    if n > 500_000_000:
        raise TraceError(f"{n} samples is too many; use a larger step_s")
    return np.arange(n) * step_s


def _trace(t: np.ndarray, v: np.ndarray, step_s: float, quantity: str, name: str) -> Trace:
    return Trace(
        time_s=t,
        values=v,
        quantity=quantity,
        end_s=float(t[-1] + step_s),
        source=f"generated:{name}",
        name=name,
    )


def _markov_states(
    n: int, step_s: float, mean_on_s: float, mean_off_s: float, rng, start_on: bool
) -> np.ndarray:
    """Two-state chain sampled on a grid: exponential dwell times, vectorised via cumulative switch times."""
    if not mean_on_s > 0 or not mean_off_s > 0:
        raise TraceError("mean_on_s and mean_off_s must be > 0")
    total = n * step_s
    # draw alternating dwell times until they cover the duration
    est = int(2 * total / (mean_on_s + mean_off_s)) + 16
    while True:
        d_on = rng.exponential(mean_on_s, est)
        d_off = rng.exponential(mean_off_s, est)
        dwell = np.empty(2 * est)
        first, second = (d_on, d_off) if start_on else (d_off, d_on)
        dwell[0::2], dwell[1::2] = first, second
        switch = np.cumsum(dwell)
        if switch[-1] >= total:
            break
        est *= 2
    k = np.searchsorted(switch, np.arange(n) * step_s, "right")
    on = (k % 2 == 0) if start_on else (k % 2 == 1)
    return on


def constant(power_w: float = 1e-3, duration_s: float = 3600.0, step_s: float = 1.0) -> Trace:
    t = _grid(duration_s, step_s)
    return _trace(t, np.full(len(t), float(power_w)), step_s, "power", "constant")


def markov(
    power_w: float = 2e-3,
    mean_on_s: float = 5.0,
    mean_off_s: float = 15.0,
    duration_s: float = 3600.0,
    step_s: float = 0.1,
    seed: int = 0,
) -> Trace:
    t = _grid(duration_s, step_s)
    on = _markov_states(len(t), step_s, mean_on_s, mean_off_s, np.random.default_rng(seed), start_on=False)
    return _trace(t, np.where(on, float(power_w), 0.0), step_s, "power", "markov")


def windowed(
    power_w: float = 2e-3,
    period_s: float = 60.0,
    duty: float = 0.25,
    phase_s: float = 0.0,
    duration_s: float = 3600.0,
    step_s: float = 0.1,
) -> Trace:
    if not 0 <= duty <= 1:
        raise TraceError(f"duty must be within [0, 1], is {duty}")
    t = _grid(duration_s, step_s)
    frac = np.mod(t - phase_s, period_s) / period_s
    return _trace(t, np.where(frac < duty, float(power_w), 0.0), step_s, "power", "windowed")


def solar(
    peak_w_m2: float = 10.0,
    sunrise_h: float = 7.0,
    sunset_h: float = 19.0,
    cloud_mean_s: float = 600.0,
    clear_mean_s: float = 1800.0,
    cloud_attenuation: float = 0.3,
    flicker: float = 0.02,
    duration_s: float = 86400.0,
    step_s: float = 60.0,
    seed: int = 0,
    start_h: float = 0.0,
) -> Trace:
    """Irradiance (W/m²); ``peak_w_m2`` ≈ 1000 outdoors at noon, ≈ 2–20 on an indoor desk near a window.
    The trace starts at ``start_h`` o'clock."""
    t = _grid(duration_s, step_s)
    rng = np.random.default_rng(seed)
    hours = np.mod(start_h + t / 3600.0, 24.0)
    day = (hours > sunrise_h) & (hours < sunset_h)
    shape = np.where(day, np.sin(np.pi * (hours - sunrise_h) / (sunset_h - sunrise_h)), 0.0)
    cloudy = _markov_states(len(t), step_s, cloud_mean_s, clear_mean_s, rng, start_on=False)
    atten = np.where(cloudy, cloud_attenuation, 1.0)
    noise = 1.0 + flicker * rng.standard_normal(len(t))
    g = np.maximum(peak_w_m2 * shape * atten * noise, 0.0)
    return _trace(t, g, step_s, "irradiance", "solar")


def rf(
    tx_power_w: float = 3.0,
    frequency_hz: float = 915e6,
    distance_m: float = 3.0,
    motion_m: float = 0.5,
    motion_period_s: float = 20.0,
    gain_tx: float = 6.0,
    gain_rx: float = 1.5,
    rectifier_efficiency: float = 0.5,
    saturation_w: float = 10e-3,
    fading: float = 0.2,
    duration_s: float = 600.0,
    step_s: float = 0.02,
    seed: int = 0,
) -> Trace:
    """Harvested RF power: Friis P_rx = P_tx·G_tx·G_rx·(λ/4πd)² times rectifier efficiency, clipped."""
    t = _grid(duration_s, step_s)
    rng = np.random.default_rng(seed)
    lam = SPEED_OF_LIGHT / frequency_hz
    d = distance_m + motion_m * np.sin(2 * np.pi * t / motion_period_s + rng.uniform(0, 2 * np.pi))
    d = np.maximum(d, lam / 2)
    p = tx_power_w * gain_tx * gain_rx * (lam / (4 * np.pi * d)) ** 2 * rectifier_efficiency
    p = p * np.exp(fading * rng.standard_normal(len(t)) - fading**2 / 2)
    return _trace(t, np.minimum(p, saturation_w), step_s, "power", "rf")


def kinetic(
    rate_hz: float = 1.0,
    burst_energy_j: float = 200e-6,
    decay_s: float = 0.05,
    active_s: float = 60.0,
    idle_s: float = 120.0,
    duration_s: float = 1800.0,
    step_s: float = 0.01,
    seed: int = 0,
) -> Trace:
    """Bursts of power P(t) = (E/τ)·e^(−t/τ) arriving as a Poisson process while the wearer is active
    (active/idle periods alternate as a Markov chain)."""
    t = _grid(duration_s, step_s)
    rng = np.random.default_rng(seed)
    n = len(t)
    active = _markov_states(n, step_s, active_s, idle_s, rng, start_on=True)
    arrivals = rng.poisson(rate_hz * step_s, n) * active
    # per-sample average of the exponential kernel, so each burst carries exactly burst_energy_j
    m = int(math.ceil(10 * decay_s / step_s)) + 1
    edges = np.arange(m + 1) * step_s
    kern = burst_energy_j * -np.diff(np.exp(-edges / decay_s)) / step_s
    p = np.convolve(arrivals.astype(np.float64), kern)[:n]
    return _trace(t, np.maximum(p, 0.0), step_s, "power", "kinetic")


GENERATORS: dict[str, Callable[..., Trace]] = {
    "constant": constant,
    "markov": markov,
    "windowed": windowed,
    "solar": solar,
    "rf": rf,
    "kinetic": kinetic,
}


def generate(kind: str, **params: Any) -> Trace:
    """Build a trace with the named generator; unknown parameters are refused by name."""
    if kind not in GENERATORS:
        raise TraceError(f"unknown generator {kind!r} (known: {', '.join(GENERATORS)})")
    import inspect

    fn = GENERATORS[kind]
    sig = inspect.signature(fn)
    for key in params:
        if key not in sig.parameters:
            raise TraceError(
                f"generator {kind!r} has no parameter {key!r} (parameters: {', '.join(sig.parameters)})"
            )
    tr = fn(**params)
    return tr


GENERATED_BY = "generated by batteryless trace generate "


def generator_of(path_or_name: str | Path) -> tuple[str, dict[str, Any]]:
    """The generator and parameters a generated trace's header names (``# generated by batteryless trace
    generate KIND k=v ...``, what ``trace generate`` writes; the bundled traces have it)."""
    p = trace_path(path_or_name)
    with open(p, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    if not first.startswith("# " + GENERATED_BY):
        raise TraceError(
            f"{p}: not a generated trace (its first line does not say '{GENERATED_BY}...'): a recorded "
            "trace has no other draws; record more of the site instead"
        )
    kind, *pairs = first[len("# " + GENERATED_BY) :].split()
    params: dict[str, Any] = {}
    for kv in pairs:
        key, sep, val = kv.partition("=")
        if not sep:
            raise TraceError(f"{p}: generator parameter {kv!r} is not key=value")
        try:
            params[key] = int(val) if key == "seed" else float(val)
        except ValueError:
            raise TraceError(f"{p}: generator parameter {kv!r} is not a number") from None
    if kind not in GENERATORS:
        raise TraceError(f"{p}: unknown generator {kind!r} (known: {', '.join(GENERATORS)})")
    return kind, params


def realizations(path_or_name: str | Path, seeds: list[int]) -> list[Trace]:
    """Other draws of a generated trace: its generator and parameters with each of ``seeds`` (which must
    not include its own seed). What a policy is tuned on when it is judged on the trace itself: the same
    kind of site, not the same minutes (benchmarks/eve.py "eve-site", docs/eve.md)."""
    kind, params = generator_of(path_or_name)
    own = params.get("seed", 0)
    if own in seeds:
        raise TraceError(f"{path_or_name}: seed {own} is the trace's own; its realizations need other seeds")
    name = Path(str(path_or_name)).stem
    out = []
    for s in seeds:
        tr = generate(kind, **{**params, "seed": int(s)})
        out.append(Trace(**{**tr.__dict__, "name": f"{name}-seed{s}", "source": f"{name} (seed {s})"}))
    return out
