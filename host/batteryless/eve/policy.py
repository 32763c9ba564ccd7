"""Tuning the rate rule (``eve.select.RatePolicy``) for one model, board buffer and demand period.

The rule's parameters are generated data: this module finds them on the schedule-level emulator
(``emulate.adaptive.run_adaptive``) over a set of harvesting traces, so codegen can emit them
(``codegen(..., eve_policy=...)``) and the device runs them (``bl_eve_select_rate``). Two steps:

1. **Effective energy per mode.** Each mode runs fixed on every trace; its energy per finished inference
   counts what the predicted energy leaves out — tasks re-executed after power failures and the boots —
   so a mode that needs more than the buffer holds (and spans failures) is charged what it really costs.
   The rule compares these with its budget. The same runs give the best fixed mode per trace.
2. **Grid** over the reserve level ``ref_mv`` (V_off, V_on, and two levels between V_on and V_max), the
   share ``gain`` of the stored energy above it, the income estimate's ``ewma`` weight and whether a full
   buffer probes a larger mode (``full_mv``): the setting whose worst trace (correct inferences per hour
   over that trace's best fixed mode) is highest wins, ties by the mean.

The score of every setting on every trace is kept, so a held-out check costs nothing more:
``holdout`` picks the setting on all traces but one and reports its ratio on the one left out (how the rule
does on a trace it was not tuned on).
"""

from __future__ import annotations

import itertools
from typing import Any

from batteryless.emulate.adaptive import run_adaptive
from batteryless.eve.select import ModeTable, mode_table, rate_policy
from batteryless.errors import UsageError

GAINS = (0.0, 0.25, 1.0)
EWMAS = (0.5, 1.0)


def _correct_per_hour(res, acc: list[float]) -> float:
    hours = res.duration_s / 3600.0
    return sum(n * a for n, a in zip(res.per_mode, acc, strict=True)) / hours if hours else 0.0


def effective_energies(runs: list, energy_j: list[float], boot_energy_j: float) -> list[float]:
    """Per mode: (task energy + boots' energy) / finished inferences over ``runs`` (one list of fixed-mode
    results per trace); the predicted energy where a mode finished nothing; made non-increasing."""
    out = []
    for m, e_pred in enumerate(energy_j):
        spent = sum(r[m].task_energy_j + r[m].power_failures * boot_energy_j for r in runs)
        done = sum(r[m].inferences for r in runs)
        out.append(max(e_pred, spent / done) if done else e_pred)
    return [min(out[: i + 1]) for i in range(len(out))]


def policy_table(
    energy_j: list[float], buffer, period_s: float, params: dict[str, Any], names: list[str] | None = None
) -> ModeTable:
    """The mode table (thresholds from ``energy_j``, used until the device has an income estimate) with the
    rate rule of ``params`` (``ref_mv``, ``gain``, ``ewma``, ``full_mv``)."""
    base = mode_table(energy_j, buffer.capacitance_f, buffer.v_off, names=names)
    pol = rate_policy(
        energy_j,
        buffer.capacitance_f,
        period_s,
        ref_mv=int(params["ref_mv"]),
        gain=float(params["gain"]),
        ewma=float(params["ewma"]),
        full_mv=int(params["full_mv"]),
        top=int(params.get("top", 0)),
    )
    return ModeTable(**{**base.__dict__, "rate": pol})


def grid(buffer, n_modes: int) -> list[dict[str, Any]]:
    v_off, v_on, v_max = buffer.v_off, buffer.v_on, buffer.v_max
    refs = sorted({round(1000 * v) for v in (v_off, v_on, (v_on + v_max) / 2, v_max - 0.1)})
    fulls = (round(1000 * (v_max - 0.1)), 65535)
    tops = range(min(2, n_modes - 1)) if n_modes > 2 else (0,)  # never only the smallest (a fixed mode)
    return [
        {"ref_mv": r, "gain": g, "ewma": w, "full_mv": f, "top": top}
        for r, g, w, f, top in itertools.product(refs, GAINS, EWMAS, fulls, tops)
    ]


def _pick(scores: list[dict[str, float]], traces: list[str]) -> int:
    return max(
        range(len(scores)),
        key=lambda j: (min(scores[j][t] for t in traces), sum(scores[j][t] for t in traces)),
    )


def tune_policy(
    schedule,
    energy_j: list[float],
    accuracy: list[float],
    chains: dict[str, tuple],
    load,
    period_s: float,
    *,
    progress=None,
) -> dict[str, Any]:
    """The rate rule for ``schedule``'s modes (``energy_j`` predicted, ``accuracy`` per mode) on the traces
    of ``chains`` (trace name → ``power_chain(...)`` tuple, all with the same buffer). Returns ``params``,
    the ``table``, the effective energies, per trace the best fixed mode's correct/h and the chosen
    setting's ratio, and ``holdout`` ratios."""
    if not chains:
        raise UsageError("tune_policy: no traces")
    if len(energy_j) != len(accuracy) or len(energy_j) != len(schedule.modes):
        raise UsageError("tune_policy: one energy and one accuracy per schedule mode")
    traces = list(chains)
    buffer = next(iter(chains.values()))[3]
    k = len(energy_j)
    fixed = {
        t: [run_adaptive(schedule, None, *chains[t], load, fixed_mode=m, period_s=period_s) for m in range(k)]
        for t in traces
    }
    best = {t: max(_correct_per_hour(r, accuracy) for r in fixed[t]) for t in traces}
    eff = effective_energies([fixed[t] for t in traces], energy_j, load.boot_energy_j)
    settings = grid(buffer, k)
    scores = []
    for j, params in enumerate(settings):
        table = policy_table(eff, buffer, period_s, params)
        scores.append(
            {
                t: _correct_per_hour(run_adaptive(schedule, table, *chains[t], load, period_s=period_s), accuracy)
                / best[t]
                for t in traces
            }
        )
        if progress is not None:
            progress(j + 1, len(settings))
    chosen = _pick(scores, traces)
    holdout = {}
    if len(traces) > 1:
        for t in traces:
            j = _pick(scores, [u for u in traces if u != t])
            holdout[t] = scores[j][t]
    return {
        "params": settings[chosen],
        "table": policy_table(eff, buffer, period_s, settings[chosen]),
        "effective_energy_j": eff,
        "best_fixed_correct_per_hour": best,
        "ratio": scores[chosen],
        "holdout_ratio": holdout,
        "settings": len(settings),
    }
