#!/usr/bin/env python3
"""EVE policy study: which static mode tables beat the best fixed mode on every trace (issue 11, goal 5).

The EVE digits MLP and CNN of benchmarks/eve.py (same settings), their FR5994 ``ref`` schedules (per-mode
task costs measured on msp430sim, as eve.json; ``--predicted``: codegen's cost-model estimates), the
schedule-level adaptive emulator with the same demand model (one event every PERIOD s) on the four bundled
traces and both buffers. Policies, each as correct inferences per hour over the best fixed mode's:

- ``eve``: the default table (mode i fits when the stored energy above V_off covers its energy);
- ``floor-a/b``: the same with a surplus floor (``eve.select.with_surplus_floor``): mode 0 also needs the
  buffer at V_on + a·(V_max − V_on), mode 1 at V_on + b·(V_max − V_on);
- ``grid``: the best static table of a 200 mV threshold grid (chosen per trace and buffer, so not a
  policy a device could ship; coarse, so a floor rule can beat it);
- ``rate``: the rate rule (eve/select.py, harvest-rate aware) with the parameters and effective energies
  benchmarks/eve.py tuned per buffer on the four traces (``rate_policies`` in eve.json, read from there so
  the study does not tune again; tuned here if eve.json lacks them), and ``rate_holdout``: per trace, the
  setting tuned on the other three traces (eve.json's ``holdout_ratio``);
- the bound ``acc_0 / acc_min``: any policy's inferences each cost at least the smallest mode's energy, so
  in the energy-bound regime it finishes no more inferences than the smallest mode fixed, and each is at
  most acc_0 correct: it beats the best fixed mode by at most about this factor; per row ``cap``:
  (inferences/h of the smallest mode fixed) × acc_0 ÷ (best fixed correct/h);
- ``free_ceiling``, a bound for ANY ladder that keeps this mode 0 (the issue requires it within 1 point of
  the single-mode model): a "free" mode (one task of one cycle, no energy: only the boot, FLEX commit and
  demand model left) run fixed catches at most the events the trace's on-time allows; no mode of any ladder
  catches more, each inference is at most acc_0 correct, and mode 0 fixed is a fixed mode, so any EVE row
  is at most (free mode's inferences/h) ÷ (mode 0's inferences/h) × its best fixed mode.

``--periods 1,3,30`` adds a sweep of the demand period (every period listed is reported): per period and
row the fixed modes, ``cap`` and ``free_ceiling`` (fixed-mode runs only: tuning the rule at short periods
costs minutes per row; the rule's own ratios are the main period's).

Writes benchmarks/results/eve_policy.json. Run: nice .venv/bin/python benchmarks/eve_policy.py [--quick]
[--periods 1,3,30]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import tempfile
from pathlib import Path

from batteryless import __version__
from batteryless.boards import load_board
from batteryless.datasets import load_dataset
from batteryless.emulate import power_chain
from batteryless.emulate.adaptive import run_adaptive
from batteryless.emulate.power import load_from_board
from batteryless.eve.device import predicted_energy_j
from batteryless.eve.policy import policy_table, tune_policy
from batteryless.eve.select import ModeTable, mode_table, with_surplus_floor
from batteryless.eve.train import EveConfig
from batteryless.paths import atomic_write
from batteryless.schedule import Schedule, load_schedule, parse_schedule
from batteryless.spec import predict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import eve as eve_bench  # noqa: E402  (its MEASURED switch: the same task costs as eve.py's rows)
from eve import (  # noqa: E402  (eve.py's models, traces and schedules)
    BOARD,
    CAPS,
    EVE_SETTINGS,
    TRACES,
    K,
    _compress,
    _schedule,
)

RESULTS = ROOT / "benchmarks" / "results" / "eve_policy.json"
EVE_JSON = ROOT / "benchmarks" / "results" / "eve.json"


def _tuned(model: str, cap: float, acc: list[float]) -> dict | None:
    """benchmarks/eve.py's tuned rate rule for ``model`` and buffer ``cap`` (None if it has none, if its
    models' accuracies are not this run's — then they are other models — or if its task costs are on the
    other basis, measured vs predicted: the rule was tuned on other energies)."""
    try:
        data = json.loads(EVE_JSON.read_text())
    except (OSError, ValueError):
        return None
    if str(data.get("costs", "predicted")).startswith("measured") != eve_bench.MEASURED:
        return None
    for m in data.get("models", []):
        if m.get("model") == model:
            if [round(x["accuracy"], 9) for x in m.get("modes", [])] != [round(a, 9) for a in acc]:
                return None
            for r in m.get("rate_policies", []):
                # eve.py tunes a rule per backend; this study runs on `ref` (eve.py's _schedule default)
                if (
                    r["policy"] == "eve"
                    and r.get("backend", "ref") == "ref"
                    and abs(r["capacitance_f"] - cap) < 1e-12
                ):
                    return r
    return None


def free_schedule(s: dict) -> Schedule:
    """``s`` (a schedule document) with two modes: its mode 0 and a "free" mode of one task of one cycle
    that costs no energy and writes nothing (what is left of an inference is the boot, the FLEX commit and
    the demand model): the most inferences per hour any mode of any ladder could finish on a trace."""
    t0 = {
        **s["modes"][0]["tasks"][0],
        "cycles": 1,
        "energy_j": 0.0,
        "instructions": 1,
        "nvm_write_bytes": 0,
        "step_bound_cycles": None,
    }
    doc = {k: v for k, v in s.items() if k != "eve"}
    doc["modes"] = [s["modes"][0], {"name": "free", "tasks": [t0]}]
    return parse_schedule(doc, "free-mode schedule")


def bounds(fixed_inf: list[float], free_inf: float, acc: list[float]) -> dict:
    """Per row, from inferences/h of each mode fixed and of the free mode: the best fixed mode's correct/h,
    ``cap`` (this ladder: the smallest mode's inferences at acc_0) and ``free_ceiling`` (any ladder with
    this mode 0), each as a multiple of the best fixed mode."""
    best = max(n * a for n, a in zip(fixed_inf, acc, strict=True))
    return {
        "best_fixed": best,
        "cap": fixed_inf[-1] * acc[0] / best if best else None,
        "free_ceiling": free_inf / fixed_inf[0] if fixed_inf[0] else None,
    }


def sweep(
    sched: Schedule, free: Schedule, acc: list[float], chains_by_cap: dict, load, periods: list[float]
) -> list[dict]:
    """Fixed modes and the free mode at every demand period of ``periods`` (all reported)."""
    out = []
    for period in periods:
        for cap, chains in chains_by_cap.items():
            for trace, chain in chains.items():
                runs = [
                    run_adaptive(sched, None, *chain, load, fixed_mode=m, period_s=period)
                    for m in range(len(acc))
                ]
                fr = run_adaptive(free, None, *chain, load, fixed_mode=1, period_s=period)
                inf = [r.inferences / (r.duration_s / 3600.0) for r in runs]
                f_inf = fr.inferences / (fr.duration_s / 3600.0)
                b = bounds(inf, f_inf, acc)
                out.append(
                    {
                        "period_s": period,
                        "trace": trace,
                        "capacitance_f": cap,
                        "fixed_inferences_per_hour": inf,
                        "fixed_correct_per_hour": [n * a for n, a in zip(inf, acc, strict=True)],
                        "free_inferences_per_hour": f_inf,
                        **b,
                    }
                )
                print(
                    f"period {period:g} s {trace} {cap:g}: cap {b['cap']:.3f}, free {b['free_ceiling']:.3f}"
                )
    return out


FLOORS = ((0.95, 0.8), (0.9, 0.6), (0.8, 0.4))
GRID_MV = range(1800, 3700, 200)


# ladders studied for the 1.3x goal next to the benchmark's (name: (zoo model, EveConfig ladder)): the MLP
# with a fourth, tiny mode (fc1 one block row reading one of its four input blocks: 53 uJ predicted against
# the third mode's 87 uJ) so that acc_0 / acc_min exceeds 1.3. Only the threshold and the tuned rate rule
# are run on them (the surplus floors and the static grid are three-mode studies).
CANDIDATES: dict[str, tuple[str, dict]] = {
    "mlp-4": ("mlp", {"width": [1.0, 0.5, 0.125, 0.125], "keep": [1.0, 0.5, 0.25, 0.03]}),
}


def run_model(
    model: str,
    work: Path,
    quick: bool,
    period: float,
    periods: list[float],
    zoo: str | None = None,
    ladder: dict | None = None,
) -> dict:
    """``model``: a name of eve.py's EVE_SETTINGS, or a candidate ladder (``zoo`` model and ``ladder``)."""
    ds = load_dataset("digits")
    settings = EVE_SETTINGS.get(model, {}) if ladder is None else ladder
    k = len(settings.get("keep") or settings.get("width") or [None] * K)
    candidate = ladder is not None
    eve_cfg = EveConfig(
        keep=settings.get("keep"), width=settings.get("width"), layer_width=settings.get("layer_width", {})
    )
    if quick:
        eve_cfg.epochs = 1
    path = work / f"{model}-eve.bl"
    art, _, _ = _compress(
        zoo or model, path, quick, modes=k, eve=eve_cfg, layer_blocks=settings.get("layer_blocks", {})
    )
    acc = [float((predict(art, ds.x_test, mode=m) == ds.y_test).mean()) for m in range(k)]
    gen = work / f"{model}-gen"
    s = _schedule(path, gen)  # eve.py's: measured on msp430sim unless --predicted
    sched = load_schedule(gen / "schedule.json")
    energies = [predicted_energy_j(s, m) for m in s["modes"]]
    energies = [min(energies[: i + 1]) for i in range(k)]
    free = free_schedule(s)
    b = load_board(BOARD)
    load = load_from_board(b, b.clock_hz)
    rows = []
    chains_by_cap = {cap: {t: power_chain(b, t, capacitance_f=cap) for t in TRACES} for cap in CAPS}
    for cap in CAPS:
        chains = chains_by_cap[cap]
        tuned = _tuned(model, cap, acc)
        if tuned is None:
            tp = tune_policy(sched, energies, acc, chains, load, period)
            tuned = {
                "params": tp["params"],
                "effective_energy_uj": [1e6 * e for e in tp["effective_energy_j"]],
                "holdout_ratio": tp["holdout_ratio"],
                "source": "tuned here",
            }
        else:
            tuned = {**tuned, "source": "benchmarks/results/eve.json"}
        buf0 = chains[TRACES[0]][3]
        rate_table = policy_table(
            [e * 1e-6 for e in tuned["effective_energy_uj"]], buf0, period, tuned["params"]
        )
        for trace in TRACES:
            tr, conv, pan, buf = chains[trace]

            def correct_per_hour(table=None, fixed=None, chain=(tr, conv, pan, buf)):
                r = run_adaptive(sched, table, *chain, load, fixed_mode=fixed, period_s=period)
                return sum(n * a for n, a in zip(r.per_mode, acc, strict=True)) / (r.duration_s / 3600.0)

            fixed_runs = [
                run_adaptive(sched, None, tr, conv, pan, buf, load, fixed_mode=m, period_s=period)
                for m in range(k)
            ]
            fixed_inf = [r.inferences / (r.duration_s / 3600.0) for r in fixed_runs]
            fixed = [n * a for n, a in zip(fixed_inf, acc, strict=True)]
            best = max(fixed)
            fr = run_adaptive(free, None, tr, conv, pan, buf, load, fixed_mode=1, period_s=period)
            free_inf = fr.inferences / (fr.duration_s / 3600.0)
            bnd = bounds(fixed_inf, free_inf, acc)
            base = mode_table(energies, cap, buf.v_off)
            pol = {"eve": correct_per_hour(base)}
            grid_th = None
            if not candidate:
                for a, f in FLOORS:
                    pol[f"floor-{a:g}/{f:g}"] = correct_per_hour(
                        with_surplus_floor(base, buf.v_on, buf.v_max, [a, f])
                    )
                grid_best = 0.0
                for th in itertools.combinations(sorted(GRID_MV, reverse=True), k - 1):
                    t = ModeTable(
                        base.names, base.energy_j, (*th, 0), (*th, 0), cap, buf.v_off, base.margin, 0.0
                    )
                    v = correct_per_hour(t)
                    if v > grid_best:
                        grid_best, grid_th = v, list(th)
                pol["grid"] = grid_best
            pol["rate"] = correct_per_hour(rate_table)
            row = {
                "trace": trace,
                "capacitance_f": cap,
                "fixed_correct_per_hour": fixed,
                "best_fixed": best,
                "correct_per_hour": pol,
                "ratio": {k: v / best for k, v in pol.items()},
                "grid_thresholds_mv": grid_th,
                "rate_params": tuned["params"],
                "rate_source": tuned["source"],
                "rate_holdout_ratio": tuned.get("holdout_ratio", {}).get(trace),
                "fixed_inferences_per_hour": fixed_inf,
                "cap": bnd["cap"],
                "free_inferences_per_hour": free_inf,
                "free_ceiling": bnd["free_ceiling"],
            }
            rows.append(row)
            print(model, trace, cap, {k: round(v, 3) for k, v in row["ratio"].items()}, flush=True)
    extra = [p for p in periods if p != period]
    return {
        "model": model,
        "ladder": {"zoo": zoo or model, **settings},
        "accuracy": acc,
        "energy_uj": [1e6 * e for e in energies],
        "bound_acc0_over_accmin": acc[0] / acc[-1],
        "rows": rows,
        "period_sweep": sweep(sched, free, acc, chains_by_cap, load, extra) if extra else [],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short training (a smoke run, not the numbers)")
    ap.add_argument("--period", type=float, default=10.0, help="demand model: seconds between events")
    ap.add_argument(
        "--predicted",
        action="store_true",
        help="the board cost model's predicted task costs instead of measured ones (as eve.py --predicted)",
    )
    ap.add_argument(
        "--periods",
        default="",
        help="comma-separated extra demand periods (s) for the fixed-mode sweep and its bounds; all reported",
    )
    args = ap.parse_args()
    eve_bench.MEASURED = not args.predicted
    periods = [float(x) for x in args.periods.split(",") if x.strip()]
    with tempfile.TemporaryDirectory(prefix="bl-eve-policy-") as tmp:
        models = [run_model(m, Path(tmp), args.quick, args.period, periods) for m in ("mlp", "cnn")]
        models += [
            run_model(name, Path(tmp), args.quick, args.period, periods, zoo=zoo, ladder=ladder)
            for name, (zoo, ladder) in CANDIDATES.items()
        ]
    out = {
        "benchmark": "eve_policy",
        "version": __version__,
        "machine": platform.machine(),
        "quick": args.quick,
        "demand_period_s": args.period,
        "command": "nice .venv/bin/python benchmarks/eve_policy.py"
        + (" --quick" if args.quick else "")
        + (f" --periods {args.periods}" if periods else "")
        + (" --predicted" if args.predicted else ""),
        "costs": "predicted: the board's [cost.ref] table"
        if args.predicted
        else "measured: codegen --measure on msp430sim (as eve.py)",
        "sweep_periods_s": periods,
        "models": models,
    }
    atomic_write(RESULTS, json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
