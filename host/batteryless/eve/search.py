"""``search``: find nested mode ladders for a trained artifact under the board's constraints (Optuna).

Each trial picks, per circulant layer and per mode, the fraction of the layer's stored blocks the mode keeps
and, for a layer feeding another circulant layer, the fraction of its output block rows the mode computes
(width; nested by construction: mode i keeps ``r_i`` of mode i−1's fraction), builds the modes over the
artifact's one weight store (``eve.modes.set_modes``: importance order, the first rows), and scores the
candidate. With ``block_sizes`` a trial also picks a block size per listed layer and recompresses the
artifact's float model with it (ADMM, QAT and sandwich training with the trial's keep/width ladder: slower,
a compression per trial, ``Retrain``). Scoring:

- constraints (each ≤ 0 when met): codegen's memory plan fits the board's NVM and RAM (codegen refuses
  otherwise); the largest atomic step of every mode (task + its FLEX commit + a boot) fits the energy one
  power-on period of the board's buffer gives, ½·C·(V_on² − V_off²);
- objectives: correct inferences per hour on the chosen traces (maximise; schedule-level emulation of the
  adaptive selector with the demand model, ``emulate.adaptive``), and the mean energy per inference there
  (minimise). Per-mode accuracy is the integer spec's on the dataset's test split.

Optuna's NSGA-II with per-trial constraints; a study in ``storage`` (e.g. ``sqlite:///search.db``) resumes:
a rerun only adds the trials still missing. Candidates violating a constraint are never returned.

Without ``block_sizes`` the modes are not retrained per trial (the artifact's own weights serve every
candidate). With ``ray`` the trials run through ray tune
with Optuna's searcher (``OptunaSearch``, multi-objective); infeasible results are filtered out afterwards
(the searcher itself does not see the constraints) and ``storage`` does not apply.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from batteryless.artifact import Artifact, load_artifact, save_artifact
from batteryless.errors import CodegenError, CompressionError, UsageError
from batteryless.eve.modes import artifact_feeds, mode_stats, set_modes
from batteryless.progress import ProgressFn, report
from batteryless.rad.circulant import check_block_size


def _need_optuna():
    try:
        import optuna
    except ImportError:  # pragma: no cover - installed by pyproject
        raise UsageError("search needs optuna (pip install optuna; scripts/setup.sh installs it)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def candidate(
    art: Artifact,
    keep: dict[str, list[float]],
    margins: list[float] | None = None,
    width: dict[str, list[float]] | None = None,
) -> Artifact:
    """A copy of ``art`` with modes from per-layer keep fractions (largest mode first), per-layer width
    fractions (output block rows, the first ones: a trained artifact's rows are in importance order) and,
    if given, the selector's energy margin per mode (kept in the modes; codegen turns them into
    eve_table.c)."""
    a = copy.deepcopy(art)
    k = len(next(iter(keep.values())))
    set_modes(a, [1.0] * k, layer_keep=keep, layer_width=width or None)
    for m, margin in zip(a.modes, margins or [], strict=False):
        m["margin"] = margin
    return a


def _margins(modes: int, draw) -> list[float]:
    """Selector margins per mode in [0.1, 1.5]; the smallest mode's is 1 (it runs when nothing fits)."""
    return [round(draw(f"margin.m{i}"), 3) for i in range(modes - 1)] + [1.0]


def evaluate_candidate(
    art: Artifact,
    board,
    x_test: np.ndarray,
    y_test: np.ndarray,
    traces: list[str],
    capacitance_f: float | None,
    period_s: float | None,
    work: Path,
    measure: bool = False,
) -> dict[str, Any]:
    """Constraints and objectives of one candidate (see the module docstring). ``measure``: the schedule's
    task costs (and so the modes' energies, the largest step and the emulated energy) are counted by running
    the candidate's firmware on the board's emulator, every mode (``codegen.measure.measure_schedule``, on
    the first test sample), instead of the board's cost model."""
    from batteryless.codegen import codegen
    from batteryless.emulate import power_chain
    from batteryless.emulate.adaptive import run_adaptive
    from batteryless.emulate.power import load_from_board
    from batteryless.eve.select import mode_table
    from batteryless.schedule import load_schedule
    from batteryless.spec import predict

    out: dict[str, Any] = {"fits_memory": True}
    path = save_artifact(art, work / "cand.bl")
    try:
        res = codegen(path, board, work / "gen", buffers_in="nvm")
    except CodegenError as err:
        out["fits_memory"] = False
        out["memory_error"] = str(err)
        out["constraints"] = [1.0, 0.0]
        return out
    sched = res.schedule
    if measure:
        from batteryless.codegen.measure import measure_schedule

        sched = measure_schedule(work / "gen", board, path, x_test[0])
        out["measured"] = sched["measured"]
    buf = board.energy_buffer
    cap = capacitance_f or buf.capacitance_f
    usable = 0.5 * cap * (buf.v_on**2 - buf.v_off**2)
    load = load_from_board(board, board.clock_hz)
    fixed = sched["commit"]["fixed_energy_j"]
    worst = max(
        (t["energy_j"] or 0.0) + fixed + t["nvm_write_bytes"] * load.nvm_write_energy_per_byte_j
        for m in sched["modes"]
        for t in m["tasks"]
    )
    worst += load.boot_energy_j
    out["largest_step_j"] = worst
    out["power_on_energy_j"] = usable
    out["constraints"] = [0.0, (worst - usable) / usable]
    acc = [float((predict(art, x_test, mode=m) == y_test).mean()) for m in range(len(art.modes))]
    out["accuracy"] = acc
    out["energy_j"] = list(sched["eve"]["energy_j"]) if "eve" in sched else []
    out["macs"] = [mode_stats(art, m)["total"]["macs"] for m in range(len(art.modes))]
    s = load_schedule(work / "gen" / "schedule.json")
    correct = energy = inferences = hours = 0.0
    for trace in traces:
        tr, conv, pan, b = power_chain(board, trace, capacitance_f=cap)
        table = mode_table(
            out["energy_j"], b.capacitance_f, b.v_off, margin=[m.get("margin", 1.0) for m in art.modes]
        )
        r = run_adaptive(s, table, tr, conv, pan, b, load, period_s=period_s)
        correct += sum(n * a for n, a in zip(r.per_mode, acc, strict=True))
        energy += r.task_energy_j
        inferences += r.inferences
        hours += r.duration_s / 3600.0
    out["correct_per_hour"] = correct / hours if hours else 0.0
    out["energy_per_inference_j"] = energy / inferences if inferences else math.inf
    return out


RESULT_KEYS = ("accuracy", "energy_j", "macs", "constraints")
SETTING_KEYS = ("keep", "width", "margins", "blocks", "mode_keep", "mode_width")


def _settings(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in SETTING_KEYS if k in row}


def _keep(circ: list[dict], modes: int, draw) -> dict[str, list[float]]:
    """Per-layer nested keep fractions from the ratios ``draw(name)`` in [0.1, 1] (one per layer and mode)."""
    keep = {}
    for lay in circ:
        fr = [1.0]
        for i in range(1, modes):
            fr.append(fr[-1] * draw(f"{lay['name']}.r{i}"))
        keep[lay["name"]] = [round(f, 4) for f in fr]
    return keep


def _width(narrow: list[str], modes: int, draw) -> dict[str, list[float]]:
    """Per-layer nested width fractions (output block rows) from ratios ``draw(name)`` in [0.1, 1]."""
    width = {}
    for name in narrow:
        fr = [1.0]
        for i in range(1, modes):
            fr.append(fr[-1] * draw(f"{name}.w{i}"))
        width[name] = [round(f, 4) for f in fr]
    return width


def narrowable(art: Artifact) -> list[str]:
    """Weight layers (dense ones too) whose output rows feed the next weight layer (a mode may compute
    fewer)."""
    wl = art.weight_layers()
    feeds = artifact_feeds(art)
    return [lay["name"] for lay, nxt in zip(wl, feeds[1:], strict=False) if nxt is not None]


@dataclass
class Space:
    """What a trial draws: without ``blocks``, per circulant layer and mode the keep and width ratios over
    the artifact's one store; with ``blocks`` (layer → block sizes to try), a block size per layer and
    global per-mode keep and width ratios, and the model is recompressed for the trial (``Retrain``)."""

    circ: list[str]
    narrow: list[str]
    modes: int
    blocks: dict[str, list[int]] = field(default_factory=dict)

    def params(self) -> list[tuple[str, str, Any]]:
        """(name, "float" | "choice", range or choices) of every parameter."""
        out: list[tuple[str, str, Any]] = []
        if self.blocks:
            out += [(f"{n}.block", "choice", list(v)) for n, v in self.blocks.items()]
            out += [(f"r{i}", "float", (0.1, 1.0)) for i in range(1, self.modes)]
            out += [(f"w{i}", "float", (0.1, 1.0)) for i in range(1, self.modes)]
        else:
            out += [(f"{n}.r{i}", "float", (0.1, 1.0)) for n in self.circ for i in range(1, self.modes)]
            out += [(f"{n}.w{i}", "float", (0.1, 1.0)) for n in self.narrow for i in range(1, self.modes)]
        out += [(f"margin.m{i}", "float", (0.1, 1.5)) for i in range(self.modes - 1)]
        return out

    def draw(self, get) -> dict[str, Any]:
        """One trial's settings from ``get(name)`` (Optuna's suggest_* or a Ray config)."""
        if self.blocks:
            chain = [1.0]
            wchain = [1.0]
            for i in range(1, self.modes):
                chain.append(chain[-1] * get(f"r{i}"))
                wchain.append(wchain[-1] * get(f"w{i}"))
            return {
                "blocks": {n: int(get(f"{n}.block")) for n in self.blocks},
                "mode_keep": [round(f, 4) for f in chain],
                "mode_width": [round(f, 4) for f in wchain],
                "margins": _margins(self.modes, get),
            }
        return {
            "keep": _keep([{"name": n} for n in self.circ], self.modes, get),
            "width": _width(self.narrow, self.modes, get),
            "margins": _margins(self.modes, get),
        }


@dataclass
class Retrain:
    """How a trial with its own block sizes recompresses the artifact's float model (``rad.compress``:
    ADMM toward the new blocks, QAT, then the modes' sandwich training); short by default."""

    admm_rounds: int = 4
    retrain_epochs: int = 10
    mode_epochs: int = 20
    dense_epochs: int = 0  # the artifact's weights are the starting point


def build_candidate(
    art: Artifact,
    settings: dict[str, Any],
    retrain: Retrain | None,
    seed: int,
    dataset: str | None = None,
    data_path: str | Path | None = None,
) -> Artifact:
    """The candidate artifact of one trial's settings (``Space.draw``); a recompression trains on
    ``dataset`` (default: the artifact's) read from ``data_path``."""
    if "blocks" not in settings:
        return candidate(art, settings["keep"], settings["margins"], settings["width"])
    from batteryless.eve.train import EveConfig
    from batteryless.rad.admm import AdmmConfig
    from batteryless.rad.compress import CompressConfig, compress, heldout_split_seed

    rt = retrain or Retrain()
    cfg = CompressConfig(
        layer_blocks=settings["blocks"],
        weight_bits=art.weight_layers()[0]["weight_bits"],
        dense_epochs=rt.dense_epochs,
        train_dense=False,
        admm=AdmmConfig(rounds=rt.admm_rounds, retrain_epochs=rt.retrain_epochs),
        normalisation={"mean": art.normalisation["mean"], "std": art.normalisation["std"]},
        split_seed=heldout_split_seed(art),
        seed=seed,
        modes=len(settings["mode_keep"]),
        eve=EveConfig(keep=settings["mode_keep"], width=settings["mode_width"], epochs=rt.mode_epochs),
    )
    new, _ = compress(art.to_float_module(), dataset or art.dataset, data_path, config=cfg)
    for m, margin in zip(new.modes, settings["margins"], strict=False):
        m["margin"] = margin
    return new


def _ray_trial(
    config, art, board, x_test, y_test, traces, capacitance_f, period_s, space, retrain, seed, data, measure
):
    """One trial on a Ray worker: the same scoring as the local path; constraints travel with the result."""
    settings = space.draw(lambda name: config[name])
    cand = build_candidate(art, settings, retrain, seed, *data)
    with tempfile.TemporaryDirectory() as tmp:
        res = evaluate_candidate(
            cand, board, x_test, y_test, traces, capacitance_f, period_s, Path(tmp), measure
        )
    ok = res["fits_memory"]
    return {
        "correct_per_hour": res["correct_per_hour"] if ok else 0.0,
        "energy_per_inference_j": res["energy_per_inference_j"] if ok else 1.0,
        "feasible": all(c <= 0 for c in res["constraints"]),
        "settings": settings,
        "result": {k: v for k, v in res.items() if k != "memory_error"},
    }


def _search_ray(
    art,
    board,
    space,
    retrain,
    trials,
    ds,
    traces,
    capacitance_f,
    period_s,
    address,
    out,
    seed,
    progress,
    t0,
    data,
    measure=False,
) -> dict[str, Any]:
    """ray tune + Optuna's searcher (multi-objective); infeasible results are filtered out afterwards."""
    try:
        import ray
        from ray import tune
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise UsageError(
            "--ray needs ray[tune] (scripts/setup.sh installs it; pip install 'ray[tune]')"
        ) from None
    if address != "connected" and not ray.is_initialized():
        ray.init(
            address=None if address == "local" else address, include_dashboard=False, log_to_driver=False
        )
    param_space = {
        name: tune.uniform(*arg) if kind == "float" else tune.choice(arg)
        for name, kind, arg in space.params()
    }
    searcher = OptunaSearch(
        metric=["correct_per_hour", "energy_per_inference_j"], mode=["max", "min"], seed=seed
    )
    trainable = tune.with_parameters(
        _ray_trial,
        art=art,
        board=board,
        x_test=ds.x_test,
        y_test=ds.y_test,
        traces=list(traces),
        capacitance_f=capacitance_f,
        period_s=period_s,
        space=space,
        retrain=retrain,
        seed=seed,
        data=data,
        measure=measure,
    )
    report(progress, "search trials on Ray", 0, trials)
    with tempfile.TemporaryDirectory(prefix="bl-ray-") as results:  # not ~/ray_results
        grid = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space=param_space,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=trials),
            run_config=tune.RunConfig(storage_path=results, verbose=0),
        ).fit()
        rows = [r.metrics for r in grid if r.metrics and "feasible" in r.metrics]
    report(progress, "search trials on Ray", trials, trials)
    feas = [r for r in rows if r["feasible"] and r["correct_per_hour"] > 0]
    pareto = [
        r
        for r in feas
        if not any(
            o["correct_per_hour"] >= r["correct_per_hour"]
            and o["energy_per_inference_j"] <= r["energy_per_inference_j"]
            and (o["correct_per_hour"], o["energy_per_inference_j"])
            != (r["correct_per_hour"], r["energy_per_inference_j"])
            for o in feas
        )
    ]
    pareto = [
        {
            "trial": r.get("trial_id"),
            "correct_per_hour": r["correct_per_hour"],
            "energy_per_inference_uj": 1e6 * r["energy_per_inference_j"],
            **r["settings"],
            **{k: r["result"][k] for k in RESULT_KEYS},
        }
        for r in sorted(pareto, key=lambda r: -r["correct_per_hour"])
    ]
    if out is not None and pareto:
        save_artifact(build_candidate(art, _settings(pareto[0]), retrain, seed, *data), out)
    return {
        "pareto": pareto,
        "trials": len(rows),
        "search_seconds": round(time.perf_counter() - t0, 2),
        "infeasible": sum(1 for r in rows if not r["feasible"]),
        "engine": "ray",
    }


def search(
    artifact: str | Path | Artifact,
    board: str | Path | Any = "msp430fr5994",
    *,
    modes: int = 3,
    trials: int = 20,
    traces: tuple[str, ...] | list[str] = ("markov-2mw",),
    capacitance_f: float | None = None,
    period_s: float | None = 10.0,
    storage: str | None = None,
    study_name: str = "eve",
    dataset: str | None = None,
    data_path: str | Path | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
    ray: str | None = None,
    block_sizes: dict[str, list[int]] | None = None,
    retrain: Retrain | None = None,
    measure: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the search; return the feasible Pareto set and write the best candidate to ``out``.

    ``measure``: score every candidate on counts measured by running its firmware on the board's emulator
    (every mode; QEMU instructions or MSP430 MCLK cycles) instead of the board's cost model — slower (an image
    per mode and trial).

    ``ray``: run the trials on a Ray cluster instead (an address, ``auto`` for a running cluster, ``local``
    to start one on this machine, or ``connected`` when ``ray.init`` was already called).

    ``block_sizes`` (layer → block sizes to try, e.g. ``{"fc1": [8, 16]}``): each trial also picks a block
    size per listed layer and recompresses the artifact's float model with it (``Retrain``), its modes
    trained with the trial's global keep and width ladder; slower (a compression per trial)."""
    optuna = _need_optuna()
    from batteryless.boards import load_board
    from batteryless.datasets import load_dataset
    from batteryless.rad.compress import heldout_split_seed

    if not 2 <= modes <= 8:
        raise UsageError(f"--modes must be 2 … 8, not {modes}")
    if trials < 1:
        raise UsageError(f"--trials must be >= 1, not {trials}")
    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    b = board if not isinstance(board, str | Path) else load_board(board)
    if measure and b.emulator.get("kind") not in ("qemu", "mspdebug", "msp430sim"):
        raise UsageError(
            f"--measure: board {b.name} has no emulator that counts instructions or cycles "
            f"(emulator {b.emulator.get('kind')!r}); use a QEMU or MSP430 board"
        )
    circ = [lay for lay in art.weight_layers() if lay["block"] > 1]
    if not circ:
        raise UsageError("search needs a block-circulant layer: every layer of this artifact is dense")
    ds = load_dataset(dataset or art.dataset, data_path, seed=heldout_split_seed(art))
    data = (dataset, data_path)  # where a recompressing trial (block sizes) reads its training split
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        load_if_exists=True,
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(seed=seed),
    )
    done = len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])
    t0 = time.perf_counter()

    narrow = narrowable(art)
    unknown = set(block_sizes or {}) - {lay["name"] for lay in art.weight_layers()}
    if unknown:
        names = ", ".join(lay["name"] for lay in art.weight_layers())
        raise UsageError(
            f"--block-sizes: no weight layer named {', '.join(sorted(unknown))} (layers: {names})"
        )
    for name, sizes in (block_sizes or {}).items():
        if not sizes:
            raise UsageError(f"--block-sizes: no block size given for {name}")
        for k in sizes:
            check_block_size(k, f" (--block-sizes {name})")
    space = Space([lay["name"] for lay in circ], narrow, modes, dict(block_sizes or {}))

    if ray is not None:
        return _search_ray(
            art,
            b,
            space,
            retrain,
            trials,
            ds,
            traces,
            capacitance_f,
            period_s,
            ray,
            out,
            seed,
            progress,
            t0,
            data,
            measure,
        )

    def objective(trial) -> tuple[float, float]:
        def get(name):
            kind, arg = kinds[name]
            if kind == "choice":
                return trial.suggest_categorical(name, arg)
            return trial.suggest_float(name, *arg)

        settings = space.draw(get)
        try:
            cand = build_candidate(art, settings, retrain, seed, *data)
        except CompressionError as err:  # e.g. a block size that does not divide the layer
            res = {"fits_memory": False, "constraints": [1.0, 0.0], "memory_error": str(err)}
        else:
            with tempfile.TemporaryDirectory() as tmp:
                res = evaluate_candidate(
                    cand, b, ds.x_test, ds.y_test, list(traces), capacitance_f, period_s, Path(tmp), measure
                )
        trial.set_user_attr("constraints", res["constraints"])
        for key, value in zip(("memory", "power_on_period"), res["constraints"], strict=True):
            trial.set_constraint(key, value)  # NSGA-II ranks infeasible trials after feasible ones
        trial.set_user_attr("settings", settings)
        trial.set_user_attr("result", {k: v for k, v in res.items() if k != "memory_error"})
        if not res["fits_memory"]:
            return 0.0, math.inf
        return res["correct_per_hour"], res["energy_per_inference_j"]

    kinds = {name: (kind, arg) for name, kind, arg in space.params()}
    best = [-math.inf]

    def callback(study_, trial) -> None:
        vals = trial.values
        feasible = all(c <= 0 for c in trial.user_attrs.get("constraints", [1.0]))
        if vals and feasible and vals[0] > best[0]:
            best[0] = vals[0]
        n = len(study_.trials)
        report(progress, f"search trials (best {best[0]:.1f} correct/h)", min(n, trials), trials)

    if trials > done:
        study.optimize(objective, n_trials=trials - done, callbacks=[callback])
    feasible = [
        t
        for t in study.best_trials
        if all(c <= 0 for c in t.user_attrs.get("constraints", [1.0])) and t.values[0] > 0
    ]
    pareto = [
        {
            "trial": t.number,
            "correct_per_hour": t.values[0],
            "energy_per_inference_uj": 1e6 * t.values[1],
            **t.user_attrs["settings"],
            **{k: t.user_attrs["result"][k] for k in RESULT_KEYS},
        }
        for t in sorted(feasible, key=lambda t: -t.values[0])
    ]
    if out is not None and pareto:
        save_artifact(build_candidate(art, _settings(pareto[0]), retrain, seed, *data), out)
    return {
        "pareto": pareto,
        "trials": len(study.trials),
        "search_seconds": round(time.perf_counter() - t0, 2),
        "infeasible": sum(
            1 for t in study.trials if any(c > 0 for c in t.user_attrs.get("constraints", [1.0]))
        ),
    }
