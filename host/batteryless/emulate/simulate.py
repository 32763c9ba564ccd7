"""Event-driven, schedule-level emulation over piecewise-constant segments.

The stored energy E = ½·C·V² obeys dE/dt = P − k·E inside any interval where the charging power (after the
converter) and the MCU load are constant, with P = P_charge − P_load and k = 2/(R·C) (leak power V²/R).
Its solution E(t) = E∞ + (E₀ − E∞)·e^(−k·t), E∞ = P/k (or E₀ + P·t without leakage) gives threshold
crossing times in closed form; nothing is integrated with a time step.

Speed: the composition of the per-interval maps E ↦ min(a·E + b, E_max) stays in that family, so the energy
at every boundary of a long run of intervals is computed with prefix sums (and a running minimum where the
buffer can fill, :func:`advance`) in numpy. The state machine (off → boot → tasks/commits → brown-out) runs
once per event chunk, normally one *off* and one *on* chunk per power cycle: an *off* chunk looks ahead over
trace segments for the first time the buffer reaches ``v_on`` (E·e^(kt) at segment ends is a prefix sum of
per-segment gains precomputed once for the whole trace); an *on* chunk lays the load program (boot, tasks,
commits, next inference …) over the trace, merges both sets of boundaries and looks for the first interval
in which the buffer drops below the brown-out level. The cost is a fixed number of numpy calls per power
cycle (≈ 45) plus a few passes over the samples; leaked energy is the energy balance of each chunk (stored
before + harvested − load − stored after), which for one constant interval is the closed form
k·∫E dt = P·τ + E_s − E_end.

Energy terms (all in joules, see docs/emulation.md): ``harvested`` (at the converter input) =
``converter_loss + clipped + leaked + boot + useful + commit + wasted + in_progress + Δstored``.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from batteryless.emulate.power import Buffer, Load
from batteryless.errors import EmulationError
from batteryless.schedule import Mode, Schedule

POLICIES = ("flex", "per-layer", "restart")
KIND_BOOT, KIND_TASK, KIND_COMMIT = 0, 1, 2
_MAX_KT = 30.0  # keep exp(k·T) well inside float range within one chunk
_PRECOMPUTE_PIECE = 1 << 15  # segments per piece of the per-segment precomputation


@dataclass(frozen=True)
class Program:
    """The load phases of one inference under one checkpoint policy."""

    policy: str
    power_w: np.ndarray
    duration_s: np.ndarray
    kind: np.ndarray  # KIND_TASK | KIND_COMMIT
    safe: np.ndarray  # completing this phase saves progress (commit, or the last task under restart)
    complete: np.ndarray  # completing this phase completes the inference
    task: np.ndarray  # index of the task (for commits: the task it commits)
    boot_power_w: float
    boot_duration_s: float

    @property
    def energy_j(self) -> np.ndarray:
        return self.power_w * self.duration_s

    def max_atomic_energy_j(self) -> float:
        """Largest energy between two safe points, plus a boot: what one power-on period must supply."""
        e = self.energy_j
        best, run = 0.0, 0.0
        for i in range(len(e)):
            run += e[i]
            if self.safe[i]:
                best, run = max(best, run), 0.0
        return max(best, run) + self.boot_power_w * self.boot_duration_s


def build_program(schedule: Schedule, mode: Mode, load: Load, policy: str) -> Program:
    if policy not in POLICIES:
        raise EmulationError(f"unknown policy {policy!r} (known: {', '.join(POLICIES)})")
    clock = schedule.clock_hz
    energy_per_cycle = load.active_power_w / load.clock_hz
    ends = set(mode.layer_ends())
    rows: list[tuple[float, float, int, bool, bool, int]] = []
    n = len(mode.tasks)
    for i, t in enumerate(mode.tasks):
        cycles = t.cycles
        if t.step_bound_cycles is not None and policy == "flex":
            # the step bound (task + loop + commit, measured-fit upper bound) is what one power-on period
            # must hold; the estimate of the bulk cost model is ~2-5x low for fine-grained steps
            cycles = max(cycles, t.step_bound_cycles - schedule.commit_fixed_cycles)
        d = max(cycles, 1) / clock
        e = max(cycles, 1) * energy_per_cycle
        if t.energy_j is not None:
            e = t.energy_j * max(cycles, 1) / max(t.cycles, 1)
        last = i == n - 1
        commit_here = policy == "flex" or (policy == "per-layer" and i in ends)
        rows.append((e / d, d, KIND_TASK, last and not commit_here, last and not commit_here, i))
        if commit_here:
            cyc = schedule.commit_fixed_cycles + t.nvm_write_bytes * load.nvm_write_cycles_per_byte
            dc = max(cyc, 1) / clock
            ec = schedule.commit_fixed_energy_j + t.nvm_write_bytes * load.nvm_write_energy_per_byte_j
            rows.append((ec / dc, dc, KIND_COMMIT, True, last, i))
    a = np.array(rows, dtype=np.float64)
    return Program(
        policy=policy,
        power_w=a[:, 0].copy(),
        duration_s=a[:, 1].copy(),
        kind=a[:, 2].astype(np.int8),
        safe=a[:, 3].astype(bool),
        complete=a[:, 4].astype(bool),
        task=a[:, 5].astype(np.int64),
        boot_power_w=load.boot_energy_j / load.boot_time_s,
        boot_duration_s=load.boot_time_s,
    )


# --- the closed-form kernel ------------------------------------------------------------------------------
def advance(e0: float, p: np.ndarray, tau: np.ndarray, k: float, e_max: float):
    """Energy at the end of each interval, E ← min(E∞ + (E − E∞)e^(−kτ), E_max), composed in closed form
    (prefix sums and a running minimum), plus the energies at interval starts and 1 − e^(−kτ)."""
    if k > 0:
        em1 = -np.expm1(-k * tau)
        g = np.exp(k * tau.cumsum())
        s = (p * em1 * g).cumsum()
        s /= k
        lim = np.minimum.accumulate(e_max * g - s)
        e_end = (s + np.minimum(e0, lim)) / g
    else:
        em1 = None
        s = np.cumsum(p * tau)
        lim = np.minimum.accumulate(e_max - s)
        e_end = s + np.minimum(e0, lim)
    e_start = np.empty_like(e_end)
    e_start[0] = e0
    e_start[1:] = e_end[:-1]
    return e_start, e_end, em1


def terms_sum(e_s, e_end, p, tau, em1, k: float, e_max: float) -> tuple[float, float]:
    """Total leaked and clipped energy of whole intervals (fast path when the buffer never hit ``e_max``)."""
    if len(p) == 0:
        return 0.0, 0.0
    if float(e_end.max()) < e_max * (1 - 1e-9):
        if k > 0:
            # k·∫E dt = P·τ + (E_s − P/k)(1 − e^(−kτ)) per interval
            return float(_dot(p, tau) + _dot(e_s, em1) - _dot(p, em1) / k), 0.0
        return 0.0, 0.0
    lk, cl = piece_terms(e_s, p, tau, k, e_max)
    return float(lk.sum()), float(cl.sum())


def piece_terms(e_s: np.ndarray, p: np.ndarray, tau: np.ndarray, k: float, e_max: float):
    """Leaked and clipped energy of each interval given its starting energy (independent closed forms)."""
    e_s = np.asarray(e_s, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    if k > 0:
        e_inf = p / k
        unclamped = e_inf + (e_s - e_inf) * np.exp(-k * tau)
        clamp = unclamped > e_max * (1 + 1e-12)
        tc = tau.copy()
        if clamp.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                r = (e_max - e_inf[clamp]) / (e_s[clamp] - e_inf[clamp])
                tc[clamp] = np.clip(-np.log(np.clip(r, 1e-300, None)) / k, 0.0, tau[clamp])
        # k·∫E dt over [0, tc] plus k·E_max over the clamped rest
        leaked = k * e_inf * tc + (e_s - e_inf) * (-np.expm1(-k * tc))
        rest = tau - tc
        leaked = leaked + k * e_max * rest
        clipped = np.where(clamp, (p - k * e_max) * rest, 0.0)
        return leaked, np.maximum(clipped, 0.0)
    leaked = np.zeros_like(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = np.where(p > 0, (e_max - e_s) / p, tau)
    rest = np.where(e_s + p * tau > e_max * (1 + 1e-12), tau - np.clip(tc, 0, tau), 0.0)
    return leaked, p * rest


def piece_terms_scalar(e_s: float, p: float, tau: float, k: float, e_max: float) -> tuple[float, float]:
    """:func:`piece_terms` for one interval, in plain floats."""
    if tau <= 0:
        return 0.0, 0.0
    if k > 0:
        e_inf = p / k
        end = e_inf + (e_s - e_inf) * math.exp(-k * tau)
        if end <= e_max * (1 + 1e-12):
            return p * tau + (e_s - e_inf) * -math.expm1(-k * tau), 0.0
    elif e_s + p * tau <= e_max * (1 + 1e-12):
        return 0.0, 0.0
    lk, cl = piece_terms(np.array([e_s]), np.array([p]), np.array([tau]), k, e_max)
    return float(lk[0]), float(cl[0])


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Single-threaded dot product: a threaded BLAS ``np.dot`` can stall for milliseconds on a busy host, so
    long vectors go through einsum; short ones (BLAS runs them on one thread) through the cheaper call."""
    if len(a) < 4096:
        return float(a.dot(b))
    return float(np.einsum("i,i->", a, b))


def _diff_from(start: float, ends: np.ndarray) -> np.ndarray:
    out = np.empty_like(ends)
    out[0] = ends[0] - start
    np.subtract(ends[1:], ends[:-1], out=out[1:])
    return out


def crossing_time(e_s: float, p: float, k: float, target: float, tau: float) -> float:
    """Time within an interval at which E reaches ``target`` (clipped to [0, tau])."""
    if k > 0:
        e_inf = p / k
        num, den = target - e_inf, e_s - e_inf
        if den == 0 or num / den <= 0:
            return tau
        t = -math.log(num / den) / k
    else:
        if p == 0:
            return tau
        t = (target - e_s) / p
    return min(max(t, 0.0), tau)


def _segment_tables(seg_t: np.ndarray, seg_p: np.ndarray, t_end: float, k: float):
    """Per trace segment: harvested energy P·τ (for the leak by energy balance) and, for the off state, the
    closed-form gain b = P·(1 − e^(−kτ))/k scaled by a growth factor G = e^(k·(segment end − T)), and G:
    E·G at segment ends is then a prefix sum of b·G. T is rebased every _MAX_KT/k seconds (blocks of
    segments) so that G stays below e^_MAX_KT; T is the end of the block's first segment (G = 1 there),
    which makes a long first segment (a night) plain closed form. Three arrays of the trace's length, plus
    the first segment of each block (and the trace's length after the last)."""
    n_seg = len(seg_t)
    kt_span = _MAX_KT / k if k > 0 else math.inf
    blk_start, blk_base = [], []  # first segment and T of each block
    j = 0
    while j < n_seg:
        base = float(seg_t[j + 1]) if j + 1 < n_seg else t_end
        # segments j+1 .. j2-1 end (at seg_t[j+2 ..]) within kt_span of base; so may the last one
        j2 = j + 1 + int(seg_t[j + 2 :].searchsorted(base + kt_span, "right"))
        if j2 == n_seg - 1 and t_end - base <= kt_span:
            j2 = n_seg
        blk_start.append(j)
        blk_base.append(base)
        j = j2
    blk_start.append(n_seg)
    seg_e = np.empty(n_seg)
    seg_bg = np.empty(n_seg) if k > 0 else None
    seg_g = np.empty(n_seg) if k > 0 else None
    # filled in cache-sized pieces (each within one block): a few passes over L2-resident data instead of
    # a dozen passes over trace-sized arrays
    for bi, base in enumerate(blk_base):
        for a in range(blk_start[bi], blk_start[bi + 1], _PRECOMPUTE_PIECE):
            b = min(a + _PRECOMPUTE_PIECE, blk_start[bi + 1])
            ends = seg_t[a + 1 : b + 1] if b < n_seg else np.append(seg_t[a + 1 :], t_end)
            dt = seg_e[a:b]
            np.subtract(ends, seg_t[a:b], out=dt)
            if k > 0:
                g = seg_g[a:b]
                np.subtract(ends, base, out=g)
                g *= k
                np.exp(g, out=g)
                bg = seg_bg[a:b]
                np.multiply(dt, -k, out=bg)
                np.expm1(bg, out=bg)
                bg *= seg_p[a:b]
                bg /= -k
                bg *= g
            dt *= seg_p[a:b]
    return seg_e, seg_bg, seg_g, blk_start


# --- result ----------------------------------------------------------------------------------------------
@dataclass
class Timeline:
    """Downsampled voltage and the events, for plots and for the firmware level to compare against."""

    t: list[np.ndarray] = field(default_factory=list)
    v: list[np.ndarray] = field(default_factory=list)
    on_periods: list[tuple[float, float]] = field(default_factory=list)
    commits: list[np.ndarray] = field(default_factory=list)
    completions: list[float] = field(default_factory=list)

    def arrays(self) -> dict[str, Any]:
        return {
            "t": np.concatenate(self.t) if self.t else np.zeros(0),
            "v": np.concatenate(self.v) if self.v else np.zeros(0),
            "on_periods": list(self.on_periods),
            "commits": np.concatenate(self.commits) if self.commits else np.zeros(0),
            "completions": np.asarray(self.completions),
        }


@dataclass
class Result:
    policy: str
    duration_s: float
    inferences: int = 0
    latencies_s: list[float] = field(default_factory=list)
    power_failures: int = 0
    boots: int = 0
    commits: int = 0
    tasks_completed: int = 0
    time_off_s: float = 0.0
    time_on_s: float = 0.0
    energy: dict[str, float] = field(default_factory=dict)
    timeline: Timeline | None = None


def _pair(
    comp_i: np.ndarray,
    comp_t: np.ndarray,
    start_i: np.ndarray,
    start_t: np.ndarray,
    inf_start,
    res: Result,
    tl,
) -> float | None:
    """Match inference completions with the first start of each inference (re-runs keep the first start).

    Events are ordered by phase index (not by time, which rounding could tie)."""
    si = 0
    for ci, ct in zip(comp_i, comp_t, strict=True):
        if inf_start is None and si < len(start_i) and start_i[si] < ci:
            inf_start = float(start_t[si])
        while si < len(start_i) and start_i[si] < ci:
            si += 1
        res.inferences += 1
        res.latencies_s.append(float(ct - (inf_start if inf_start is not None else ct)))
        if tl is not None:
            tl.completions.append(float(ct))
        inf_start = None
    if inf_start is None and si < len(start_i):
        inf_start = float(start_t[si])
    return inf_start


# --- the emulator ----------------------------------------------------------------------------------------
class Simulator:
    """The emulator as a state machine fed the trace in chunks (``feed``), then ``finish``-ed.

    A chunk is a run of segments ``seg_t`` (s, strictly increasing, the first one at the previous chunk's
    end) ending at ``t_end``; the state (time, stored energy, on/off, program position, the phase that was
    running when the last chunk ended and how long it had run, the energy pool since the last safe point)
    carries over exactly, so a trace fed in pieces gives the result of the trace fed whole (to rounding).
    Memory is that of one chunk whatever the trace length."""

    def __init__(
        self,
        buffer: Buffer,
        program: Program,
        *,
        t_start: float = 0.0,
        v_initial: float = 0.0,
        record: bool = False,
        plot_dt: float = 1.0,
    ) -> None:
        self.buffer, self.program = buffer, program
        k = self.k = buffer.leak_rate
        self.e_on, self.e_max = buffer.energy(buffer.v_on), buffer.energy(buffer.v_max)
        self.e_init = buffer.energy(min(v_initial, buffer.v_max))
        peak_load = max(float(program.power_w.max()), program.boot_power_w)
        if self._e_off(peak_load) >= self.e_on:
            raise EmulationError(
                f"with ESR {buffer.esr_ohm} Ω a {peak_load * 1e3:.2f} mW load browns out immediately at v_on "
                f"{buffer.v_on} V: raise v_on or lower the ESR"
            )
        self.t_start = float(t_start)
        self.plot_dt = plot_dt
        self.res = Result(policy=program.policy, duration_s=0.0)
        self.en = {
            k_: 0.0 for k_ in ("leaked", "clipped", "boot", "useful", "commit", "wasted", "in_progress")
        }
        self.tl = Timeline() if record else None
        prog_e = program.energy_j
        n_prog = self.n_prog = len(prog_e)
        prog_dur_total = float(program.duration_s.sum())
        mean_p = float(prog_e.sum()) / prog_dur_total
        self.kt_span = _MAX_KT / k if k > 0 else math.inf
        # the program tiled so that any start position can be sliced without copying
        max_phases = self.max_phases = max(4096, 4 * n_prog)
        reps = int(math.ceil((n_prog + max_phases) / n_prog))
        self.tile_p = tile_p = np.tile(program.power_w, reps)
        self.tile_d = tile_d = np.tile(program.duration_s, reps)
        self.tile_pos = tile_pos = np.tile(np.arange(n_prog), reps)
        self.tile_kind = tile_kind = np.tile(program.kind, reps)
        tile_safe = np.tile(program.safe, reps)
        self.tile_compl = tile_compl = np.tile(program.complete, reps)
        tile_e = tile_p * tile_d
        zero = np.zeros(1)
        self.cum_work = np.concatenate((zero, np.cumsum(np.where(tile_kind == KIND_TASK, tile_e, 0.0))))
        self.cum_commit = np.concatenate((zero, np.cumsum(np.where(tile_kind == KIND_COMMIT, tile_e, 0.0))))
        self.cum_ntask = np.concatenate((zero, np.cumsum(tile_kind == KIND_TASK)))
        self.cum_ncommit = np.concatenate((zero, np.cumsum(tile_kind == KIND_COMMIT)))
        self.cum_compl = np.concatenate((zero, np.cumsum(tile_compl)))
        self.cum_start = np.concatenate((zero, np.cumsum(tile_pos == 0)))
        n_tile = len(tile_safe)
        idx_all = np.arange(n_tile)
        self.last_safe_upto = np.maximum.accumulate(np.where(tile_safe, idx_all, -1))
        # the few inference starts/completions of an on period are paired one by one (plain Python lists):
        # ev_next[j] = first index ≥ j that completes or starts an inference; ev_compl / ev_start say which
        ev_idx = np.flatnonzero(tile_compl | (tile_pos == 0))
        self.ev_next = np.append(ev_idx, n_tile)[np.searchsorted(ev_idx, np.arange(n_tile + 1))].tolist()
        self.ev_compl = tile_compl.tolist()
        self.ev_start = (tile_pos == 0).tolist()
        mean_d = prog_dur_total / n_prog
        self.tol = 1e-12 * self.e_on
        self.tile_thr = self._e_off(tile_p)
        self.tile_lo = self.tile_thr - self.tol  # a piece browns out when its energy ends below this
        self.boot_thr = float(self._e_off(program.boot_power_w))
        self.boot_cache: dict[int, tuple[np.ndarray, ...]] = {}
        # the state carried from chunk to chunk
        self.t = self.t_start
        self.e = self.e_init
        self.on = False
        self.booting = False
        self.on_start = self.t_start
        self.pos = 0  # next program phase to run (or the one running, see ran_s)
        self.safe_pos = 0  # where to resume after a power failure
        self.pool = 0.0  # task energy spent since the last safe point
        self.inf_start: float | None = None
        # the phase at pos (or the boot) that was running when the last chunk ended: how long it ran and the
        # energy it used (counted when it completes, when the power fails, or at the end as in progress)
        self.ran_s = 0.0
        self.ran_e = 0.0
        self.off_chunk = 1024
        self.seg_window = 256  # trace segments expected within one on chunk (a search window, widened)
        self.on_phases = int(max(16, 2 * (self.e_on - self._e_off(mean_p)) / mean_p / mean_d))
        self.finished = False

    def _e_off(self, load_w):  # brown-out level as stored energy, per load
        return 0.5 * self.buffer.capacitance_f * self.buffer.brownout_voltage(load_w) ** 2

    def finish(self, t_end: float | None = None) -> Result:
        """Close the run at the end of the last chunk: the phase in progress counts as in progress."""
        if not self.finished:
            self.finished = True
            if self.ran_e:
                if self.booting:
                    self.en["boot"] += self.ran_e
                else:
                    self.pool += self.ran_e
                self.ran_e = 0.0
            if self.on and self.tl is not None:
                self.tl.on_periods.append((self.on_start, self.t))
            self.en["in_progress"] = self.pool
            self.en["stored_initial"] = self.e_init
            self.en["stored_final"] = self.e
            self.res.duration_s = float((self.t if t_end is None else t_end) - self.t_start)
            self.res.energy = self.en
            self.res.timeline = self.tl
        return self.res

    def feed(self, seg_t: np.ndarray, seg_p_charge: np.ndarray, t_end: float) -> None:
        """Run through segments starting at ``seg_t`` (the first at the current time) up to ``t_end``."""
        seg_t = np.asarray(seg_t, dtype=np.float64)
        seg_p = np.asarray(seg_p_charge, dtype=np.float64)
        n_seg = len(seg_t)
        if n_seg == 0 or t_end <= seg_t[0]:
            return
        if self.finished:
            raise EmulationError("the run is finished: no more trace can be fed")
        if abs(float(seg_t[0]) - self.t) > 1e-9 * max(1.0, abs(self.t)):
            raise EmulationError(
                f"a trace chunk starts at {seg_t[0]!r} s, the previous one ended at {self.t!r} s"
            )
        buffer, program = self.buffer, self.program
        k, e_on, e_max = self.k, self.e_on, self.e_max
        res, en, tl = self.res, self.en, self.tl
        n_prog, max_phases, kt_span = self.n_prog, self.max_phases, self.kt_span
        tile_p, tile_d, tile_pos, tile_kind = self.tile_p, self.tile_d, self.tile_pos, self.tile_kind
        tile_compl, tile_thr, tile_lo = self.tile_compl, self.tile_thr, self.tile_lo
        cum_work, cum_commit, cum_ntask = self.cum_work, self.cum_commit, self.cum_ntask
        cum_ncommit, cum_compl, cum_start = self.cum_ncommit, self.cum_compl, self.cum_start
        last_safe_upto, ev_next, ev_compl, ev_start = (
            self.last_safe_upto,
            self.ev_next,
            self.ev_compl,
            self.ev_start,
        )
        tol, boot_thr, boot_cache = self.tol, self.boot_thr, self.boot_cache
        e_on_lo = e_on * (1 - 1e-12)
        t_first, plot_dt = self.t_start, self.plot_dt
        t, e, on, booting, on_start = self.t, self.e, self.on, self.booting, self.on_start
        pos, safe_pos, pool, inf_start = self.pos, self.safe_pos, self.pool, self.inf_start
        ran_s, ran_e = self.ran_s, self.ran_e
        off_chunk, seg_window, on_phases = self.off_chunk, self.seg_window, self.on_phases
        t = float(seg_t[0])
        i = 0  # segment index: seg_t[i] <= t
        seg_e, seg_bg, seg_g, blk_start = _segment_tables(seg_t, seg_p, t_end, k)

        def _seg_ends(a: int, b: int) -> np.ndarray:
            """End times of segments a .. b-1."""
            return seg_t[a + 1 : b + 1] if b < n_seg else np.append(seg_t[a + 1 :], t_end)

        def record_v(ts: np.ndarray, es: np.ndarray, e0: float, p: np.ndarray, tau: np.ndarray) -> None:
            """About one voltage point per plot_dt; pieces longer than that get points from the closed form"""
            if tl is None or len(ts) == 0:
                return
            b = np.floor((ts - t_first) / plot_dt)
            _, first = np.unique(b, return_index=True)
            rec_t, rec_e = [ts[first]], [es[first]]
            for j in np.flatnonzero(tau[: len(ts)] > 2 * plot_dt)[:1000]:
                e_s = e0 if j == 0 else float(es[j - 1])
                tt = np.linspace(0.0, float(tau[j]), min(int(tau[j] / plot_dt), 200) + 2)[1:-1]
                if k > 0:
                    e_inf = float(p[j]) / k
                    ee = e_inf + (e_s - e_inf) * np.exp(-k * tt)
                else:
                    ee = e_s + float(p[j]) * tt
                rec_t.append(ts[j] - tau[j] + tt)
                rec_e.append(np.minimum(ee, e_max))
            t_all, e_all = np.concatenate(rec_t), np.concatenate(rec_e)
            order = np.argsort(t_all, kind="stable")
            tl.t.append(t_all[order])
            tl.v.append(buffer.voltage(e_all[order]))

        while t < t_end:
            if not on:
                # ---- off: look ahead over trace segments for the first time E reaches e_on ---------------
                if e < e_on_lo:
                    # the MCU draws nothing: per-segment gains come precomputed (seg_bg); only the first,
                    # partial segment (from t) is special; a chunk stays within one block of segments
                    b = bisect.bisect_right(blk_start, i) - 1  # block holding segment i
                    j1 = min(blk_start[b + 1], i + off_chunk)
                    n = j1 - i
                    end0 = float(seg_t[i + 1]) if i + 1 < n_seg else t_end
                    tau0 = end0 - t
                    p0 = float(seg_p[i])
                    if k > 0:
                        # E·G at segment ends: e·G(t) + b₀·G₀ (first, partial segment) + Σ b·G (whole ones)
                        g0 = float(seg_g[i])
                        c0 = (e * math.exp(-k * tau0) + p0 * -math.expm1(-k * tau0) / k) * g0
                        e_end = np.add.accumulate(seg_bg[i:j1])
                        e_end += c0 - float(seg_bg[i])
                        e_end /= seg_g[i:j1]
                    else:
                        e_end = np.add.accumulate(seg_e[i:j1])
                        e_end += e + p0 * tau0 - float(seg_e[i])
                    reached = e_end >= e_on_lo
                    m = int(reached.argmax())
                    hit = bool(reached[m])
                    if hit:
                        e_s = e if m == 0 else float(e_end[m - 1])
                        end_m = float(seg_t[i + m + 1]) if i + m + 1 < n_seg else t_end
                        tau_m = tau0 if m == 0 else end_m - float(seg_t[i + m])
                        p_m = float(seg_p[i + m])
                        dt = crossing_time(e_s, p_m, k, e_on, tau_m)
                        t_new = end_m - tau_m + dt
                        e_new, n_full, gained = e_on, m, p_m * dt
                        if tl is not None:
                            tt_ = np.append(_seg_ends(i, i + m), t_new)
                            record_v(
                                tt_, np.append(e_end[:m], e_on), e, seg_p[i : i + m + 1], _diff_from(t, tt_)
                            )
                    else:
                        t_new = float(seg_t[j1]) if j1 < n_seg else t_end
                        e_new, n_full, gained = float(e_end[-1]), n, 0.0
                        if tl is not None:
                            ends = _seg_ends(i, j1)
                            record_v(ends, e_end, e, seg_p[i:j1], _diff_from(t, ends))
                    if k > 0:
                        # leaked = stored before + harvested − stored after (no load, no clipping below v_on)
                        if n_full:
                            gained += p0 * tau0
                            if n_full > 1:
                                gained += float(np.add.reduce(seg_e[i + 1 : i + n_full]))
                        en["leaked"] += e + gained - e_new
                    res.time_off_s += t_new - t
                    t, e = t_new, e_new
                    if hit:
                        i += m
                        off_chunk = min(max(2 * (m + 1) + 64, 256), 1 << 22)
                    else:
                        i += n
                        off_chunk = min(off_chunk * 2, 1 << 22)
                        continue
                # ---- power on: boot first ---------------------------------------------------------------
                on, booting, on_start = True, True, t
                res.boots += 1
                if tl is not None:
                    tl.t.append(np.array([t]))
                    tl.v.append(np.array([buffer.voltage(e)]))
                if t >= t_end:
                    break

            # ---- on: lay the load program over the trace and look for the brown-out ----------------------
            n_ph = min(on_phases, max_phases)
            if booting:
                cached = boot_cache.get(pos)
                if cached is None:
                    full = slice(pos, pos + max_phases)
                    cached = boot_cache[pos] = (
                        np.concatenate(((program.boot_power_w,), tile_p[full])),
                        np.concatenate(((program.boot_duration_s,), tile_d[full])),
                        np.concatenate(((boot_thr,), tile_thr[full])),
                        np.concatenate(((boot_thr - tol,), tile_lo[full])),
                        np.concatenate(((-1,), tile_pos[full])),
                    )
                c_p, c_d, c_thr, c_lo, c_pos = cached
                n1 = n_ph + 1
                ph_p, ph_d, ph_thr, ph_lo, ph_pos = c_p[:n1], c_d[:n1], c_thr[:n1], c_lo[:n1], c_pos[:n1]
            else:
                sl = slice(pos, pos + n_ph)
                ph_p, ph_d, ph_thr, ph_lo, ph_pos = (
                    tile_p[sl],
                    tile_d[sl],
                    tile_thr[sl],
                    tile_lo[sl],
                    tile_pos[sl],
                )
            if ran_s:
                # the phase (or boot) running when the last chunk ended: only its rest is left to run
                ph_d = ph_d.copy()
                ph_d[0] = ph_d[0] - ran_s
            ph_end = np.add.accumulate(ph_d)
            ph_end += t
            if ph_end[-1] - t > kt_span:  # keep e^(k·T) finite: fewer phases in this chunk
                n_keep = max(int(ph_end.searchsorted(t + kt_span, "right")), 1)
                ph_end, ph_p, ph_d, ph_thr, ph_lo, ph_pos = (
                    a[:n_keep] for a in (ph_end, ph_p, ph_d, ph_thr, ph_lo, ph_pos)
                )
            chunk_end = min(float(ph_end[-1]), t_end)
            # j1 = first segment starting at or after chunk_end (searched in a window after i first)
            j1 = i + 1 + int(seg_t[i + 1 : i + 1 + seg_window].searchsorted(chunk_end, "left"))
            if j1 == i + 1 + seg_window and j1 < n_seg:
                j1 += int(seg_t[j1:].searchsorted(chunk_end, "left"))
            if j1 <= i + 1:
                # no trace boundary inside the chunk: the pieces are the phases
                n_in = int(ph_end.searchsorted(chunk_end, "left")) + 1
                bounds = ph_end[:n_in].copy()
                bounds[-1] = chunk_end
                tau = _diff_from(t, bounds)
                p = seg_p[i] - ph_p[:n_in]
                lo = ph_lo[:n_in]
                pi = None  # piece m is phase m
            else:
                n_lt = int(ph_end.searchsorted(chunk_end, "left"))
                n_sb = j1 - i - 1
                cb = np.empty(n_sb + n_lt + 2)
                cb[0] = t
                cb[1 : n_sb + 1] = seg_t[i + 1 : j1]
                cb[n_sb + 1 : -1] = ph_end[:n_lt]
                cb[-1] = chunk_end
                cb.sort(kind="stable")  # two sorted runs: a merge
                bounds = cb[1:]
                tau = bounds - cb[:-1]
                # piece (b_prev, b] lies in segment i + sloc and in phase pi
                sloc = seg_t[i + 1 : j1].searchsorted(bounds, "left")
                pi = ph_end.searchsorted(bounds, "left")
                p = seg_p[i:j1].take(sloc)
                p -= ph_p.take(pi)
                lo = ph_lo.take(pi)
            if e <= e_max and float(np.maximum.reduce(p)) <= 0.0:
                # the load exceeds the harvest throughout: E only falls, so no clamp, and a piece is below its
                # brown-out level iff its end is
                if k > 0:
                    e_end = tau * -k
                    np.expm1(e_end, out=e_end)  # −(1 − e^(−kτ))
                    g = np.add.accumulate(tau)
                    g *= k
                    np.exp(g, out=g)
                    e_end *= p
                    e_end *= g
                    np.add.accumulate(e_end, out=e_end)
                    e_end /= -k
                    e_end += e
                    e_end /= g
                else:
                    e_end = p * tau
                    np.add.accumulate(e_end, out=e_end)
                    e_end += e
                below = e_end < lo
                m = int(below.argmax())
                failed = bool(below[m])
                if failed:
                    n_full = m
                    e_s = e if m == 0 else float(e_end[m - 1])
                    if e_s < float(lo[m]):
                        dt, e_stop = 0.0, e_s
                    else:
                        thr_m = float(ph_thr[m if pi is None else pi[m]])
                        dt = crossing_time(e_s, float(p[m]), k, thr_m, float(tau[m]))
                        e_stop = thr_m
                    t_stop = float(bounds[m] - tau[m] + dt)
                    if tl is not None:
                        tt_ = np.append(bounds[:m], t_stop)
                        record_v(tt_, np.append(e_end[:m], e_stop), e, p, _diff_from(t, tt_))
                else:
                    n_full = len(tau)
                    t_stop = chunk_end
                    e_stop = float(e_end[-1])
                    if tl is not None:
                        record_v(bounds, e_end, e, p, tau)
                if k > 0:
                    # leaked = stored before − stored after + (harvest − load) over the pieces run
                    gained = float(p[m]) * dt if failed else 0.0
                    if n_full:
                        gained += _dot(p[:n_full], tau[:n_full])
                    en["leaked"] += e - e_stop + gained
            else:
                e_st, e_end, em1 = advance(e, p, tau, k, e_max)
                below = np.minimum(e_st, e_end) < lo
                m = int(below.argmax())
                failed = bool(below[m])
                if failed:
                    if e_st[m] < lo[m]:
                        dt = 0.0
                        e_stop = float(e_st[m])
                    else:
                        thr_m = float(ph_thr[m if pi is None else pi[m]])
                        dt = crossing_time(float(e_st[m]), float(p[m]), k, thr_m, float(tau[m]))
                        e_stop = thr_m
                    lk, cl = terms_sum(
                        e_st[:m], e_end[:m], p[:m], tau[:m], None if em1 is None else em1[:m], k, e_max
                    )
                    lk1, cl1 = piece_terms_scalar(float(e_st[m]), float(p[m]), dt, k, e_max)
                    lk, cl = lk + lk1, cl + cl1
                    t_stop = float(bounds[m] - tau[m] + dt)
                    if tl is not None:
                        tt_ = np.append(bounds[:m], t_stop)
                        record_v(tt_, np.append(e_end[:m], e_stop), e, p, _diff_from(t, tt_))
                else:
                    lk, cl = terms_sum(e_st, e_end, p, tau, em1, k, e_max)
                    t_stop = chunk_end
                    e_stop = float(e_end[-1])
                    if tl is not None:
                        record_v(bounds, e_end, e, p, tau)
                en["leaked"] += lk
                en["clipped"] += cl
            seg_window = max(64, 2 * (j1 - i))

            # ---- bookkeeping over the phases that ran in [t, t_stop] ---------------------------------
            n_done = int(ph_end.searchsorted(t_stop, "right"))  # phases are sequential: a prefix is done
            if n_done < len(ph_end):
                part_t0 = float(ph_end[n_done] - ph_d[n_done])  # start of the phase running at t_stop
                partial = part_t0 < t_stop
            else:
                partial = False
            part_e = float(ph_p[n_done]) * (t_stop - part_t0) if partial else 0.0
            off = 1 if booting else 0  # the boot phase is never part of the program tiles
            if booting and n_done >= 1:
                en["boot"] += program.boot_power_w * program.boot_duration_s
            nd = max(n_done - off, 0)  # program phases done
            part_start = partial and ph_pos[n_done] == 0
            if nd:
                q_end = pos + nd
                cw = cum_work[q_end] - cum_work[pos]
                en["commit"] += float(cum_commit[q_end] - cum_commit[pos])
                res.tasks_completed += int(cum_ntask[q_end] - cum_ntask[pos])
                res.commits += int(cum_ncommit[q_end] - cum_ncommit[pos])
                ls = int(last_safe_upto[q_end - 1])
                if ls >= pos:
                    w_before = cum_work[ls + 1] - cum_work[pos]
                    en["useful"] += pool + float(w_before)
                    pool = float(cw - w_before)
                    safe_pos = (int(tile_pos[ls]) + 1) % n_prog
                else:
                    pool += float(cw)
                n_comp = int(cum_compl[q_end] - cum_compl[pos])
                n_start = int(cum_start[q_end] - cum_start[pos])
                if tl is None and n_comp + n_start <= 8:
                    # few events: pair them one by one in phase order (a completion before a start at the
                    # same phase); an inference's latency runs from its first start
                    q = ev_next[pos]
                    while q < q_end:
                        r = q - pos + off
                        if ev_compl[q]:
                            ct = float(ph_end[r])
                            res.inferences += 1
                            res.latencies_s.append(ct - inf_start if inf_start is not None else 0.0)
                            inf_start = None
                        if ev_start[q] and inf_start is None:
                            inf_start = float(ph_end[r] - ph_d[r])
                        q = ev_next[q + 1]
                    if part_start and inf_start is None:
                        inf_start = part_t0
                elif tl is not None or n_comp or n_start or part_start:
                    tsl = slice(pos, q_end)
                    ends_done = ph_end[off : off + nd]
                    starts_done = ends_done - ph_d[off : off + nd]
                    if tl is not None:
                        ck = tile_kind[tsl] == KIND_COMMIT
                        if ck.any():
                            tl.commits.append(ends_done[ck])
                    comp_i = np.flatnonzero(tile_compl[tsl]) if n_comp else np.zeros(0, dtype=np.int64)
                    start_i = np.flatnonzero(tile_pos[tsl] == 0) if n_start else np.zeros(0, dtype=np.int64)
                    start_t = starts_done[start_i]
                    if part_start:
                        start_i = np.append(start_i, nd)
                        start_t = np.append(start_t, part_t0)
                    if len(comp_i) or len(start_i):
                        inf_start = _pair(comp_i, ends_done[comp_i], start_i, start_t, inf_start, res, tl)
            elif part_start and inf_start is None:
                inf_start = part_t0

            res.time_on_s += t_stop - t
            t = t_stop
            e = e_stop
            # the segment holding t: i or a later one up to j1 (t_stop <= chunk_end <= seg_t[j1])
            i += int(seg_t[i + 1 : j1 + 1].searchsorted(t, "right"))
            if n_done:
                ran_s, ran_e = 0.0, 0.0  # the carried phase completed (its whole energy is counted above)
            if failed:
                if ran_e:  # the carried phase was cut by the power failure
                    if booting:
                        en["boot"] += ran_e
                    else:
                        pool += ran_e
                    ran_s, ran_e = 0.0, 0.0
                if partial:
                    if ph_pos[n_done] < 0:
                        en["boot"] += part_e
                    else:
                        pool += part_e
                en["wasted"] += pool
                pool = 0.0
                pos = safe_pos
                on = False
                res.power_failures += 1
                if tl is not None:
                    tl.on_periods.append((on_start, t))
                on_phases = max(16, 2 * n_done)
            elif t >= t_end:
                # the chunk ends mid-run: the next chunk resumes the phase running now (or the trace ends
                # and finish() counts it as in progress)
                if partial:
                    ran_s += t_stop - part_t0
                    ran_e += part_e
                pos = (pos + nd) % n_prog
                booting = booting and n_done == 0
                break
            else:
                pos = (pos + nd) % n_prog
                on_phases = on_phases * 2
            booting = False
        self.t, self.e, self.on, self.booting, self.on_start = t, e, on, booting, on_start
        self.pos, self.safe_pos, self.pool, self.inf_start = pos, safe_pos, pool, inf_start
        self.ran_s, self.ran_e = ran_s, ran_e
        self.off_chunk, self.seg_window, self.on_phases = off_chunk, seg_window, on_phases


def simulate(
    seg_t: np.ndarray,
    seg_p_charge: np.ndarray,
    t_end: float,
    buffer: Buffer,
    program: Program,
    *,
    v_initial: float = 0.0,
    record: bool = False,
    plot_points: int = 4000,
) -> Result:
    """Run ``program`` back to back on a buffer charged by piecewise-constant ``seg_p_charge`` (W, after the
    converter) starting at ``seg_t`` (s, strictly increasing) until ``t_end`` (one chunk: :class:`Simulator`).

    Returns counters and the energy terms other than the harvest/converter ones (the caller adds those)."""
    seg_t = np.asarray(seg_t, dtype=np.float64)
    if len(seg_t) == 0 or t_end <= seg_t[0]:
        raise EmulationError("the trace is empty (no time covered)")
    sim = Simulator(
        buffer,
        program,
        t_start=float(seg_t[0]),
        v_initial=v_initial,
        record=record,
        plot_dt=(t_end - float(seg_t[0])) / max(plot_points, 10),
    )
    sim.feed(seg_t, seg_p_charge, t_end)
    return sim.finish(t_end)


def constant_load_program(load: Load, phase_s: float = 1e-3) -> Program:
    """A program that keeps the MCU busy at its active power (one safe phase repeated), for budgets."""
    return Program(
        policy="flex",
        power_w=np.array([load.active_power_w]),
        duration_s=np.array([phase_s]),
        kind=np.array([KIND_TASK], dtype=np.int8),
        safe=np.array([True]),
        complete=np.array([True]),
        task=np.array([0]),
        boot_power_w=load.boot_energy_j / load.boot_time_s,
        boot_duration_s=load.boot_time_s,
    )


def power_on_budgets(
    seg_t: np.ndarray,
    seg_p_charge: np.ndarray,
    t_end: float,
    buffer: Buffer,
    load: Load,
    v_initial: float = 0.0,
    samples: int = 0,
) -> list[dict[str, float]]:
    """The power-on periods a trace gives an MCU that runs flat out at its active power, each with the
    cycles it can execute after booting: the budgets the firmware level cuts the real image at.
    ``samples`` > 0: each period also gets ``v_samples``, the buffer's voltage at that many evenly spaced
    moments after the boot (``(seconds after the boot ends, V)``, the last at the period's end),
    interpolated on the recorded voltage timeline: what an EVE image reads at an inference start.

    Returns one dict per power-on period: ``start_s``, ``end_s`` (None if the trace ended first),
    ``cycles`` (whole cycles after the boot), ``v_boot`` (the buffer's voltage at the period's start: the
    moment the MCU powers on, from the recorded voltage timeline)."""
    res = simulate(
        seg_t, seg_p_charge, t_end, buffer, constant_load_program(load), v_initial=v_initial, record=True
    )
    out = []
    periods = res.timeline.on_periods if res.timeline is not None else []
    tv = res.timeline.arrays() if res.timeline is not None else None
    for n, (a, b) in enumerate(periods):
        ended = n < res.power_failures
        run = max(b - a - load.boot_time_s, 0.0)
        v_boot = float(np.interp(a, tv["t"], tv["v"])) if tv is not None and len(tv["t"]) else buffer.v_on
        row = {
            "start_s": a,
            "end_s": b if ended else None,
            "cycles": math.floor(run * load.clock_hz + 1e-6),
            "v_boot": v_boot,
        }
        if samples > 0:
            offs = [run * (j + 1) / samples for j in range(samples)]
            vs = (
                np.interp([a + load.boot_time_s + o for o in offs], tv["t"], tv["v"])
                if tv is not None and len(tv["t"])
                else [v_boot] * samples
            )
            row["v_samples"] = [(o, float(v)) for o, v in zip(offs, vs, strict=True)]
        out.append(row)
    return out
