"""Tuning the rate rule (``eve.select.RatePolicy``) for one model, board buffer and demand period.

The rule's parameters are generated data: this module finds them on the schedule-level emulator
(``emulate.adaptive.run_adaptive``) over a set of harvesting traces, so codegen can emit them
(``codegen(..., eve_policy=...)``) and the device runs them (``bl_eve_select_rate``). Two steps:

1. **Effective energy per mode.** Each mode runs fixed on every trace; its energy per finished inference
   counts what the predicted energy leaves out — tasks re-executed after power failures and the boots —
   so a mode that needs more than the buffer holds (and spans failures) is charged what it really costs.
   The rule compares these with its budget. The same runs give the best fixed mode per trace.
2. **Grid** over the reserve level ``ref_mv`` (V_off, V_on, and two levels between V_on and V_max), the
   share ``gain`` of the stored energy above it, the income estimate's ``ewma`` weight, the ``income``
   weight, the largest mode the rule picks (``top``) and whether a full buffer probes a larger mode
   (``full_mv``), and each mode alone (``top`` = ``bottom``: the rule may be one fixed mode where adapting
   does not pay on those traces): the setting whose worst trace (correct inferences per hour over that
   trace's best fixed mode) is highest wins, ties by the mean. With ``gain`` 0 the reserve level does not
   enter the budget, so those settings are taken once (not once per ``ref_mv``). Session 9 widened the
   grid with a slower estimate (``ewma`` 0.25) and a cautious income weight (0.75): on the session-8
   measured schedules (the bundled four traces, both buffers) these were the settings that moved the worst
   trace most — a 100 µF buffer cannot hold one inference of the CNN's mode 0, so trusting a noisy income
   estimate made the rule start mode 0 on a brief surplus and lose events to the power failures it then
   spans (the CNN `lea` 100 µF row's worst trace 0.974 → 0.989, docs/eve.md "Why EVE loses where it
   loses").

The score of every setting on every trace is kept, so a held-out check costs nothing more:
``holdout`` picks the setting on all traces but one and reports its ratio on the one left out (how the rule
does on a trace it was not tuned on).

**A site.** Tuned on the traces of one kind of site (e.g. other draws of a generated trace,
``emulate.generators.realizations``, or several recordings of the place the device will live), the rule is
that site's: adaptive where adapting pays there, else the site's best fixed mode (benchmarks/eve.py
``eve-site``, docs/eve.md "Calibrated for a site").
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from batteryless.emulate.adaptive import run_adaptive
from batteryless.errors import UsageError
from batteryless.eve.select import ModeTable, mode_table, rate_policy

GAINS = (0.0, 0.25, 1.0)
EWMAS = (0.25, 0.5, 1.0)
INCOMES = (0.75, 1.0, 1.5)


def correct_per_hour(res, acc: list[float]) -> float:
    """Correct inferences per hour of an emulator run (``run_adaptive``): per mode, inferences x accuracy."""
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
    rate rule of ``params`` (``ref_mv``, ``gain``, ``ewma``, ``full_mv``, ``top``, ``income`` and an optional
    ``bottom``)."""
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
        income=float(params.get("income", 1.0)),
        bottom=None if params.get("bottom") is None else int(params["bottom"]),
    )
    return ModeTable(**{**base.__dict__, "rate": pol})


def grid(buffer, n_modes: int) -> list[dict[str, Any]]:
    v_off, v_on, v_max = buffer.v_off, buffer.v_on, buffer.v_max
    refs = sorted({round(1000 * v) for v in (v_off, v_on, (v_on + v_max) / 2, v_max - 0.1)})
    full = round(1000 * (v_max - 0.1))
    tops = range(min(2, n_modes - 1)) if n_modes > 2 else (0,)  # never only the smallest (a fixed mode)
    # gain 0: the reserve level drops out of the budget; one ref_mv (the lowest) stands for all
    reserves = [(r, g) for g in GAINS for r in (refs if g else refs[:1])]
    adaptive = [
        {"ref_mv": r, "gain": g, "ewma": w, "full_mv": full, "top": top, "income": i}
        for (r, g), w, top, i in itertools.product(reserves, EWMAS, tops, INCOMES)
    ]
    # each mode alone (top = bottom): where adapting does not pay on the traces tuned on, the rule may be
    # the best fixed mode rather than an adaptive setting that loses to it
    fixed = [
        {"ref_mv": refs[0], "gain": 0.0, "ewma": 1.0, "full_mv": full, "top": m, "bottom": m, "income": 1.0}
        for m in range(n_modes)
    ]
    return adaptive + fixed


def _pick(scores: list[dict[str, float]], traces: list[str], settings: list[dict[str, Any]]) -> int:
    """The setting whose worst trace is best, ties by the mean, then a fixed mode (``bottom`` set) over an
    adaptive setting that does no better on these traces: the same answers, and predictable."""
    return max(
        range(len(scores)),
        key=lambda j: (
            round(min(scores[j][t] for t in traces), 12),
            round(sum(scores[j][t] for t in traces), 12),
            settings[j].get("bottom") is not None,
        ),
    )


def tune_policy(
    schedule,
    energy_j: list[float],
    accuracy: list[float],
    chains: dict[str, tuple],
    load,
    period_s: float,
    *,
    settings: list[dict[str, Any]] | None = None,
    progress=None,
) -> dict[str, Any]:
    """The rate rule for ``schedule``'s modes (``energy_j`` predicted, ``accuracy`` per mode) on the traces
    of ``chains`` (trace name → ``power_chain(...)`` tuple, all with the same buffer). Returns ``params``,
    the ``table``, the effective energies, per trace the best fixed mode's correct/h and the chosen
    setting's ratio, and ``holdout`` ratios. ``settings``: the candidates (default: :func:`grid`)."""
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
    best = {t: max(correct_per_hour(r, accuracy) for r in fixed[t]) for t in traces}
    eff = effective_energies([fixed[t] for t in traces], energy_j, load.boot_energy_j)
    settings = settings or grid(buffer, k)
    scores = []
    for j, params in enumerate(settings):
        table = policy_table(eff, buffer, period_s, params)
        scores.append(
            {
                t: correct_per_hour(
                    run_adaptive(schedule, table, *chains[t], load, period_s=period_s), accuracy
                )
                / best[t]
                for t in traces
            }
        )
        if progress is not None:
            progress("rate rule settings", j + 1, len(settings))
    chosen = _pick(scores, traces, settings)
    holdout = {}
    if len(traces) > 1:
        for t in traces:
            j = _pick(scores, [u for u in traces if u != t], settings)
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


def policy(
    artifact: str | Path,
    board: str | Path,
    traces: list[str],
    *,
    period_s: float = 10.0,
    capacitance_f: float | None = None,
    backend: str | None = None,
    out: str | Path | None = None,
    draws: list[int] | None = None,
    progress=None,
) -> dict[str, Any]:
    """``batteryless policy``: tune the rate rule for an EVE artifact on ``board`` (its buffer, or
    ``capacitance_f``), the demand period and ``traces``; the document ``codegen(..., eve_policy=)`` reads.
    The schedule is codegen's for ``backend`` with activation buffers in NVM (what FLEX runs); the modes'
    accuracies are the artifact's integer (spec) accuracies from ``compress --modes``.

    ``draws`` (seeds): tune on those draws of each (generated) trace instead of the traces themselves — a
    site calibration — and report the tuned rule on the traces (``site_ratio``: correct/h over each
    trace's best fixed mode, on minutes the rule was not tuned on)."""
    import json
    import tempfile

    from batteryless.artifact import load_artifact
    from batteryless.boards import load_board
    from batteryless.codegen import codegen
    from batteryless.emulate import power_chain
    from batteryless.emulate.generators import realizations
    from batteryless.emulate.power import load_from_board
    from batteryless.eve.device import predicted_energy_j
    from batteryless.eve.modes import has_modes
    from batteryless.paths import atomic_write
    from batteryless.schedule import load_schedule

    if not traces:
        raise UsageError("policy: no traces to tune on")
    # the draws first: a recorded trace (no generator) is refused before the codegen
    site = {t: realizations(t, list(draws)) for t in traces} if draws else None
    art = load_artifact(artifact)
    if not has_modes(art):
        raise UsageError(f"{artifact}: the artifact has no EVE modes (compress --modes K)")
    rows = {r.get("mode"): r.get("reference_accuracy") for r in art.metrics.get("modes", [])}
    acc = [rows.get(m) for m in range(len(art.modes))]
    if any(a is None for a in acc):
        raise UsageError(f"{artifact}: no per-mode reference_accuracy in its metrics (compress --modes K)")
    b = load_board(board)
    with tempfile.TemporaryDirectory(prefix="bl-policy-") as tmp:
        res = codegen(artifact, b, tmp, backend=backend, buffers_in="nvm", capacitance_f=capacitance_f)
        sched = load_schedule(Path(tmp) / "schedule.json")
    energies = [predicted_energy_j(res.schedule, m) for m in res.schedule["modes"]]
    energies = [min(energies[: i + 1]) for i in range(len(energies))]
    cap = capacitance_f or b.energy_buffer.capacitance_f
    load = load_from_board(b, b.clock_hz)
    chains = {t: power_chain(b, t, capacitance_f=cap) for t in traces}
    tune_on = (
        {r.name: power_chain(b, r, capacitance_f=cap) for rs in site.values() for r in rs} if site else chains
    )
    tuned = tune_policy(sched, energies, acc, tune_on, load, period_s, progress=progress)
    site_ratio = {}
    if site:  # the calibrated rule on the traces themselves, against each one's best fixed mode
        for t, ch in chains.items():
            best = max(
                correct_per_hour(run_adaptive(sched, None, *ch, load, fixed_mode=m, period_s=period_s), acc)
                for m in range(len(acc))
            )
            got = correct_per_hour(run_adaptive(sched, tuned["table"], *ch, load, period_s=period_s), acc)
            site_ratio[t] = got / best if best else None
    buf = next(iter(chains.values()))[3]
    doc = {
        "kind": "batteryless-eve-policy",
        "board": b.name,
        "backend": res.schedule.get("backend"),
        "capacitance_f": cap,
        "v_off": buf.v_off,
        "period_s": period_s,
        "traces": list(traces),
        "draws": list(draws) if draws else None,
        "tuned_on": list(tune_on),
        "site_ratio": site_ratio or None,
        "params": tuned["params"],
        "effective_energy_j": tuned["effective_energy_j"],
        "predicted_energy_j": energies,
        "accuracy": acc,
        "best_fixed_correct_per_hour": tuned["best_fixed_correct_per_hour"],
        "ratio": tuned["ratio"],
        "holdout_ratio": tuned["holdout_ratio"],
        "settings": tuned["settings"],
    }
    if out is not None:
        atomic_write(Path(out), json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return doc


def load_policy(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """A policy document (``policy``'s output) from a path or a dict, checked."""
    import json

    if isinstance(source, dict):
        doc = source
    else:
        try:
            doc = json.loads(Path(source).read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"eve policy {source}: cannot read it ({e})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "batteryless-eve-policy":
        raise UsageError(f"eve policy {source}: not a policy document (batteryless policy writes one)")
    for key in ("capacitance_f", "period_s", "params", "effective_energy_j"):
        if key not in doc:
            raise UsageError(f"eve policy: missing {key!r}")
    return doc


def table_from_policy(doc: dict[str, Any], buffer, names: list[str]) -> ModeTable:
    """The mode table codegen emits for a policy document, on the board's ``buffer``."""
    if abs(doc["capacitance_f"] - buffer.capacitance_f) > 1e-9 * max(1.0, buffer.capacitance_f):
        raise UsageError(
            f"eve policy: tuned for a {doc['capacitance_f'] * 1e6:g} µF buffer, the board has "
            f"{buffer.capacitance_f * 1e6:g} µF (codegen --capacitance-uf, or rerun policy)"
        )
    if len(doc["effective_energy_j"]) != len(names):
        raise UsageError(f"eve policy: {len(doc['effective_energy_j'])} modes, the model has {len(names)}")
    return policy_table(list(doc["effective_energy_j"]), buffer, float(doc["period_s"]), doc["params"], names)
