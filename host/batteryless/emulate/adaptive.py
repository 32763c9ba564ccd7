"""Schedule-level emulation of an EVE model: the mode is chosen before each inference from the stored energy.

The closed-form :class:`~batteryless.emulate.simulate.Simulator` replays one program back to back, which is
what a fixed model does; an adaptive model branches at every inference start on the buffer's voltage, so it
is run here phase by phase instead (same power chain, same programs from ``build_program``, same physics:
piecewise-constant net power, leakage dE/dt = P − k·E, clipping at v_max, brown-out at the load's ESR-adjusted
level). FLEX semantics: the mode picked at an inference's start is committed with its progress, so after a
power failure the inference resumes in that mode. With one mode this loop and the Simulator count the same
inferences (tests/test_eve_emulate.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from batteryless.emulate.power import Buffer, Load
from batteryless.emulate.simulate import build_program, crossing_time
from batteryless.emulate.stream import chunk_power, chunk_segments
from batteryless.emulate.traces import Trace, TraceStream
from batteryless.eve.select import ModeTable, RateState, rate_select, select_mode
from batteryless.schedule import Schedule


@dataclass
class AdaptiveResult:
    duration_s: float = 0.0
    inferences: int = 0
    per_mode: list[int] = field(default_factory=list)  # completed inferences per mode
    latencies_s: list[float] = field(default_factory=list)
    power_failures: int = 0
    boots: int = 0
    switches: int = 0  # inference starts in a different mode than the previous one
    events_taken: int = 0  # demand model: events an inference was started for
    task_energy_j: float = 0.0  # energy of every task phase run (also those lost to power failures)
    timeline: list[tuple[float, float, int]] = field(default_factory=list)  # (t, V, mode) per inference start

    def summary(self) -> dict[str, Any]:
        hours = self.duration_s / 3600.0
        return {
            "inferences": self.inferences,
            "inferences_per_hour": self.inferences / hours if hours else 0.0,
            "per_mode": list(self.per_mode),
            "power_failures": self.power_failures,
            "boots": self.boots,
            "switches": self.switches,
            "events_taken": self.events_taken,
            "mean_latency_s": float(np.mean(self.latencies_s)) if self.latencies_s else None,
            "energy_per_inference_j": self.task_energy_j / self.inferences if self.inferences else None,
        }


def _segments(trace: Trace, converter, panel) -> tuple[np.ndarray, np.ndarray, float]:
    ts, ps = [], []
    end = 0.0
    for chunk in TraceStream.from_trace(trace).chunks():
        p_in = chunk_power(
            chunk.time_s, chunk.values, trace.quantity, panel if trace.quantity != "power" else None
        )
        seg_t, seg_p, _, _ = chunk_segments(chunk.time_s, p_in, chunk.end_s, converter)
        ts.append(seg_t)
        ps.append(seg_p)
        end = chunk.end_s
    return np.concatenate(ts), np.concatenate(ps), end


def run_adaptive(
    schedule: Schedule,
    table: ModeTable | None,
    trace: Trace,
    converter,
    panel,
    buffer: Buffer,
    load: Load,
    *,
    fixed_mode: int | None = None,
    v_initial: float = 0.0,
    record: bool = False,
    period_s: float | None = None,
) -> AdaptiveResult:
    """Run ``schedule``'s modes under FLEX on ``trace``; the mode comes from ``table`` or is ``fixed_mode``.

    ``period_s``: the demand model. None: inferences back to back (the device always has work). A number: a
    sensor event every ``period_s`` seconds; the device runs one inference per event, on the newest event
    when it becomes free (a one-deep buffer: events that arrive while it is busy or off and are superseded
    are missed), and idles (no load) between events."""
    progs = [build_program(schedule, m, load, "flex") for m in schedule.modes]
    n_modes = len(progs)
    if table is not None and len(table.stay_mv) != n_modes:
        raise ValueError(f"mode table has {len(table.stay_mv)} modes, the schedule {n_modes}")
    seg_t, seg_p, t_end = _segments(trace, converter, panel)
    c, k = buffer.capacitance_f, buffer.leak_rate
    e_on, e_max = buffer.energy(buffer.v_on), buffer.energy(buffer.v_max)
    res = AdaptiveResult(per_mode=[0] * n_modes)
    boot_p, boot_d = load.boot_energy_j / load.boot_time_s, load.boot_time_s
    thr_cache: dict[float, float] = {}

    def e_off(p_load: float) -> float:
        v = thr_cache.get(p_load)
        if v is None:
            v = thr_cache[p_load] = 0.5 * c * float(buffer.brownout_voltage(p_load)) ** 2
        return v

    def evolve(e: float, p: float, tau: float) -> float:
        if k > 0:
            e_inf = p / k
            e = e_inf + (e - e_inf) * math.exp(-k * tau)
        else:
            e = e + p * tau
        return min(e, e_max)  # constant p: once at v_max it stays there (the surplus is clipped)

    t = float(seg_t[0])
    e = buffer.energy(min(v_initial, buffer.v_max))
    i = 0
    n_seg = len(seg_t)
    on = False
    cur_mode = n_modes - 1 if fixed_mode is None else fixed_mode  # the device starts cautious
    inf_mode: int | None = None  # mode of the inference in progress (committed with its progress)
    ph = safe_ph = 0
    inf_start: float | None = None
    last_started: int | None = None
    last_event = -1  # demand model: index of the newest event taken
    rate_state = RateState()  # the rate rule's NVM record (survives power failures)

    def seg_end(j: int) -> float:
        return float(seg_t[j + 1]) if j + 1 < n_seg else t_end

    while t < t_end:
        if not on:
            # charge with no load until v_on
            while t < t_end and e < e_on * (1 - 1e-12):
                tau = seg_end(i) - t
                p = float(seg_p[i])
                e_new = evolve(e, p, tau)
                if e_new >= e_on:
                    dt = crossing_time(e, p, k, e_on, tau)
                    t, e = t + dt, e_on
                    break
                t, e = t + tau, e_new
                if i + 1 < n_seg:
                    i += 1
            if t >= t_end:
                break
            on = True
            res.boots += 1
            phase_p, phase_d, booting = boot_p, boot_d, True
        elif inf_mode is None and period_s is not None and math.floor(t / period_s) <= last_event:
            # no new event: idle (no load) until the next one; leakage may still brown the device out
            phase_p, phase_d, booting = 0.0, (last_event + 1) * period_s - t, True
            phase_d = max(phase_d, 1e-9)
        elif inf_mode is None:
            if period_s is not None:
                last_event = math.floor(t / period_s)
                res.events_taken += 1
            # an inference starts: pick its mode from the stored energy (the board hook reads mV)
            if fixed_mode is not None:
                m = fixed_mode
            else:
                mv = int(1000.0 * float(buffer.voltage(e)))
                if table.rate is not None:  # the device's clock: ms since the trace's start
                    ms = int(1000.0 * (t - float(seg_t[0])))
                    m = rate_select(table, rate_state, mv, ms, cur_mode)
                else:
                    m = select_mode(table, mv, cur_mode)
            if last_started is not None and m != last_started:
                res.switches += 1
            last_started = cur_mode = inf_mode = m
            if record:
                res.timeline.append((t, float(buffer.voltage(e)), m))
            ph = safe_ph = 0
            inf_start = t if inf_start is None else inf_start
            continue
        else:
            prog = progs[inf_mode]
            phase_p, phase_d, booting = float(prog.power_w[ph]), float(prog.duration_s[ph]), False
        # run one phase (boot or program phase) across trace segments; stop at a brown-out
        left = phase_d
        thr = e_off(phase_p)
        failed = False
        while left > 0 and t < t_end:
            tau = min(left, seg_end(i) - t)
            p = float(seg_p[i]) - phase_p
            e_new = evolve(e, p, tau)
            if e_new < thr:  # monotone within a piece: it crossed
                dt = crossing_time(e, p, k, thr, tau)
                if not booting:
                    res.task_energy_j += phase_p * dt
                t, e = t + dt, thr
                failed = True
                break
            if not booting:
                res.task_energy_j += phase_p * tau
            t, e, left = t + tau, e_new, left - tau
            if t >= seg_end(i) and i + 1 < n_seg:
                i += 1
        if failed:
            on = False
            res.power_failures += 1
            ph = safe_ph
            continue
        if left > 0:  # the trace ended mid-phase
            break
        if booting:
            continue
        prog = progs[inf_mode]
        if prog.safe[ph]:
            safe_ph = ph + 1
        if prog.complete[ph]:
            res.inferences += 1
            res.per_mode[inf_mode] += 1
            res.latencies_s.append(t - inf_start)
            inf_start, inf_mode = None, None
            ph = safe_ph = 0
        else:
            ph += 1
    res.duration_s = t_end - float(seg_t[0])
    return res
