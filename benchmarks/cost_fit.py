#!/usr/bin/env python3
"""Fit the boards' ``[cost.<backend>]`` tables to emulator counts.

Compresses small digits models (MLP and CNN, dense = block 1 and block-circulant, quick training: only their
structure matters for cost), generates them on both paths (``codegen(..., path="fft" | "direct")``), measures
every task with ``measure_schedule`` — MSP430FR5994 ``ref`` under mspdebug (MCLK cycles), mps2-an386 ``ref``
and ``cmsis`` under QEMU (instructions) — and fits the cost model's per-operation coefficients by
non-negative least squares over the tasks. A task's features are exactly what codegen's cost model charges
for it: ``macs``, ``butterflies``, ``elements`` and one kernel ``call`` (codegen's ``build_plan``). The fit
minimises the squared *relative* error per task (each row divided by its measured count), so the small
element-wise tasks count as much as the big MAC tasks. ``commit_cycles`` comes from the FLEX app: (flex −
restart policy) counts under continuous power divided by the number of commits.

Writes benchmarks/results/cost_fit.json. Run:
    .venv/bin/python benchmarks/cost_fit.py [--cache FILE]
(--cache keeps the measured rows in FILE and reuses them on the next run: refit without re-measuring.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from batteryless import __version__  # noqa: E402
from batteryless.artifact import load_artifact  # noqa: E402
from batteryless.boards import load_board  # noqa: E402
from batteryless.codegen import codegen  # noqa: E402
from batteryless.codegen import granularity as granularity_mod  # noqa: E402
from batteryless.codegen.costs import KEYS, OPTIONAL_KEYS, cost_model  # noqa: E402
from batteryless.codegen.measure import measure_schedule  # noqa: E402
from batteryless.codegen.plan import build_plan, task_cycles  # noqa: E402
from batteryless.datasets import load_dataset  # noqa: E402
from batteryless.rad.admm import AdmmConfig  # noqa: E402
from batteryless.rad.compress import CompressConfig, compress  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cost_fit.json"
QUICK = dict(dense_epochs=3, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10))
# (label, zoo model, block size, weight bits)
MODELS = [
    ("mlp-dense", "mlp", 1, 8),  # int16 dense weights (34 KB) do not fit the FR5994 code region
    ("mlp-k16", "mlp", 16, 16),
    ("mlp-k8", "mlp", 8, 16),
    ("cnn-dense", "cnn", 1, 16),
    ("cnn-k8", "cnn", 8, 16),
]
TARGETS = [("msp430fr5994", "ref"), ("mps2-an386", "ref"), ("mps2-an386", "cmsis"), ("msp430fr5994", "lea")]
# Targets whose FFT-path multiplies (fft_block tasks) get their own coefficient (cycles_per_fft_mac): the
# cmsis backend's direct MACs are DSP-extension loops, its FFT path's complex MAC plain C, so one
# coefficient for both made "auto" pick the dearer FFT path on every layer. Elsewhere both count as macs.
# The lea backend likewise: its direct MACs are CPU staging of every weight into LEA RAM plus one LEA MAC per
# row, its FFT path's one LEA complex MAC per bin over all blocks (~4x cheaper per multiply in session 4).
SPLIT_FFT_MAC = {("mps2-an386", "cmsis"), ("msp430fr5994", "lea")}
FEATURES = ("macs", "fft_macs", "butterflies", "elements", "calls")
COEF = {
    "macs": "cycles_per_mac",
    "fft_macs": "cycles_per_fft_mac",
    "butterflies": "cycles_per_butterfly",
    "elements": "cycles_per_element",
    "calls": "cycles_per_call",
}
# The hand estimates the boards carried before this fit (ASSUMED), kept here so that "before → after" stays
# reproducible once board.toml holds the fitted numbers: mac, butterfly, element, call, commit.
ASSUMED = {
    ("msp430fr5994", "ref"): (14, 90, 8, 150, 200),
    ("mps2-an386", "ref"): (3, 24, 3, 40, 120),
    ("mps2-an386", "cmsis"): (1, 8, 2, 80, 120),
    ("msp430fr5994", "lea"): (1.5, 6, 41.39, 300, 776),  # before issue 12: nothing emulated the LEA
}
SAMPLE = 3  # test sample measured (kernel work does not depend on the data)


def task_features(art_path: Path, board: str, backend: str, path: str) -> list[dict]:
    """Per task: what codegen's cost model charges (macs, butterflies, elements, one call)."""
    b = load_board(board)
    art, costs = load_artifact(art_path), cost_model(b, backend)
    plan = build_plan(art, b, backend, path, costs)
    # the task list codegen generated: its default granularity cuts tasks whose estimate exceeds a
    # power-on period into steps (codegen/granularity.py), as codegen() does
    gran = granularity_mod.choose(
        b, costs, granularity_mod.parse_granularity(None), max(task_cycles(t, costs) for t in plan.tasks)
    )
    if gran.mode == "fine":
        plan = build_plan(art, b, backend, path, costs, gran.max_step_cycles)
    split = (board, backend) in SPLIT_FFT_MAC
    rows = []
    for t in plan.tasks:
        fft = split and t.kind == "fft_block"
        rows.append(
            {"name": t.name, "kind": t.kind, "macs": 0 if fft else t.macs, "fft_macs": t.macs if fft else 0}
            | {"butterflies": t.butterflies, "elements": t.elements, "calls": 1}
        )
    return rows


def measure_all(tmp: Path, cache: dict) -> tuple[list[dict], dict[str, Path]]:
    digits = load_dataset("digits")
    x = digits.x_test[SAMPLE]
    arts = {}
    for label, model, block, bits in MODELS:
        p = tmp / f"{label}.bl"
        compress(model, "digits", out=p, config=CompressConfig(block_size=block, weight_bits=bits, **QUICK))
        arts[label] = p
    rows = []
    for board, backend in TARGETS:
        for label, _, block, _ in MODELS:
            for path in ("direct",) if block == 1 else ("fft", "direct"):
                key = f"{board}/{backend}/{label}/{path}"
                if key in cache:
                    rows += cache[key]
                    continue
                gen = tmp / key.replace("/", "-")
                res = codegen(arts[label], board, gen, backend=backend, path=path)
                feats = task_features(arts[label], board, backend, path)
                t0 = time.process_time()
                sched = measure_schedule(gen, board, arts[label], x, backend=backend)
                tasks = sched["modes"][0]["tasks"]
                assert [t["name"] for t in tasks] == [f["name"] for f in feats], key
                got = [
                    {
                        "board": board,
                        "backend": backend,
                        "model": label,
                        "path": path,
                        "paths": res.paths,
                        "unit": sched["measured"]["unit"],
                        "measured": t["cycles"],
                        "estimate_board_table": res.schedule["modes"][0]["tasks"][i]["cycles"],
                        **f,
                    }
                    for i, (t, f) in enumerate(zip(tasks, feats, strict=True))
                ]
                cache[key] = got
                rows += got
                print(
                    f"{key}: {len(got)} tasks, measured {sum(r['measured'] for r in got):,} "
                    f"(board table {sum(r['estimate_board_table'] for r in got):,}), "
                    f"{time.process_time() - t0:.1f} s CPU",
                    flush=True,
                )
    return rows, arts


def path_choices(rows: list[dict], arts: dict[str, Path], fits: dict) -> list[dict]:
    """Per circulant layer and target: the path codegen's "auto" picks under the ASSUMED and the FITTED
    table, and the path that measured cheaper (sum of the layer's task counts on each path)."""
    out = []
    for key, f in fits.items():
        board, backend = f["board"], f["backend"]
        b = load_board(board)
        table = cost_model(b, backend)
        assumed = replace(
            table,
            cycles_per_fft_mac=None,
            **dict(zip(KEYS, map(float, ASSUMED[(board, backend)]), strict=True)),
        )
        fitted = replace(
            table, **{k: float(v) for k, v in f["fitted"].items() if k in KEYS or k in OPTIONAL_KEYS}
        )
        for label, _, block, _ in MODELS:
            if block == 1:
                continue
            art = load_artifact(arts[label])
            pa = build_plan(art, b, backend, "auto", assumed).paths
            pf = build_plan(art, b, backend, "auto", fitted).paths
            circulant = {la["name"] for la in art.weight_layers() if la["block"] > 1}
            for layer in sorted(circulant):
                meas = {
                    path: sum(
                        r["measured"]
                        for r in rows
                        if r["board"] == board
                        and r["backend"] == backend
                        and r["model"] == label
                        and r["path"] == path
                        and r["name"].split(".")[0] == layer
                    )
                    for path in ("fft", "direct")
                }
                out.append(
                    {
                        "target": key,
                        "model": label,
                        "layer": layer,
                        "assumed_picks": pa[layer],
                        "fitted_picks": pf[layer],
                        "measured_fft": meas["fft"],
                        "measured_direct": meas["direct"],
                        "measured_cheaper": "fft" if meas["fft"] < meas["direct"] else "direct",
                    }
                )
    return out


def commit_costs(tmp: Path, cache: dict) -> dict:
    """Per-commit cost of the FLEX runtime: (flex − restart) under continuous power / commits made.
    Both apps run the same generated model with the same boot and input reload; flex adds one commit per
    task (CRC of the record, record write, version flip) and its bookkeeping."""
    from batteryless.boards import with_emulator
    from batteryless.flex import build_flex, model_input, run_schedule

    if "commit" in cache and all(k in cache["commit"] for k, _, _ in COMMIT_TARGETS):
        return cache["commit"]
    art = tmp / "mlp-k16.bl"
    inp = model_input(art, 0)
    out = dict(cache.get("commit", {}))
    for key, board, backend in COMMIT_TARGETS:
        if key in out:
            continue  # from the previous results file (--targets): not re-measured
        # the lea image runs on the board's LEA-capable emulator (board.toml [emulator].by_backend)
        emu_board = with_emulator(board, "msp430sim") if backend == "lea" else board
        counts, tasks = {}, None
        for policy in ("flex", "restart"):
            img = build_flex(art, board, tmp / f"flex-{key}-{policy}", policy=policy, backend=backend)
            r = run_schedule(img, emu_board, inp, [], timeout=900)
            if r.error or r.instructions is None:
                raise RuntimeError(f"{key} {policy}: {r.error}")
            counts[policy] = r.instructions
            tasks = img.num_tasks
        out[key] = {
            "model": f"mlp-k16 ({backend} backend, buffers in NVM, auto paths)",
            "tasks": tasks,
            "flex_count": counts["flex"],
            "restart_count": counts["restart"],
            "commit_cycles": round((counts["flex"] - counts["restart"]) / tasks),
            "unit": "MCLK cycles" if board.startswith("msp430") else "instructions",
        }
        if backend == "lea":
            out[key]["emulator"] = "msp430sim (MCLK cycles incl. FRAM wait states)"
        print(f"commit {key}: {out[key]}", flush=True)
    cache["commit"] = out
    return out


# Whose FLEX commit each target's table carries: (key in "commits", board, backend measured). The lea image
# is measured on its own emulator (msp430sim, LEA present) rather than taking the ref image's mspdebug count.
COMMIT_TARGETS = [
    ("msp430fr5994", "msp430fr5994", "ref"),
    ("mps2-an386", "mps2-an386", "ref"),
    ("msp430fr5994/lea", "msp430fr5994", "lea"),
]


def commit_key(board: str, backend: str) -> str:
    if (board, backend) == ("msp430fr5994", "lea"):
        return "msp430fr5994/lea"
    return "msp430fr5994" if board.startswith("msp430") else "mps2-an386"


# Coefficients taken from another target's fit instead of fitted. Empty since the cmsis backend has its own
# relu / maxpool (DSP extension, firmware/kernels/cmsis/relu.c, pool.c): tying its element cost to the ref
# fit, as before, would charge the ref C loops' cost.
TIED: dict = {}


def fit(rows: list[dict], fixed: dict[str, float] | None = None) -> tuple[dict, np.ndarray]:
    """NNLS of measured counts on the features, minimising squared relative errors; ``fixed``
    coefficients are subtracted first and not fitted."""
    fixed = fixed or {}
    free = [f for f in FEATURES if COEF[f] not in fixed]
    a = np.array([[r[f] for f in FEATURES] for r in rows], dtype=float)
    y = np.array([r["measured"] for r in rows], dtype=float)
    known = sum(a[:, FEATURES.index(f)] * fixed[COEF[f]] for f in FEATURES if COEF[f] in fixed)
    w = 1.0 / y  # relative error per task
    cols = [FEATURES.index(f) for f in free]
    c_free, _ = nnls(a[:, cols] * w[:, None], (y - known) * w)
    coef = {COEF[f]: fixed.get(COEF[f], 0.0) for f in FEATURES}
    coef.update({COEF[f]: float(c) for f, c in zip(free, c_free, strict=True)})
    pred = a @ np.array([coef[COEF[f]] for f in FEATURES])
    if not a[:, FEATURES.index("fft_macs")].any():
        del coef["cycles_per_fft_mac"]  # a target without the split: no such coefficient in its table
    return coef, pred


def rel_errors(pred, y) -> dict:
    e = np.abs(np.asarray(pred, dtype=float) - y) / y
    return {"max": float(e.max()), "median": float(np.median(e)), "mean": float(e.mean())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, help="keep measured rows here and reuse them")
    ap.add_argument(
        "--targets",
        help="comma-separated board/backend pairs to measure (e.g. msp430fr5994/lea); every other target's "
        "rows and the commit costs are taken from the existing results file, then everything is refitted",
    )
    args = ap.parse_args()
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    if args.targets:
        wanted = {tuple(s.split("/")) for s in args.targets.split(",")}
        unknown = wanted - set(TARGETS)
        if unknown:
            ap.error(f"unknown targets {sorted(unknown)}; known: {TARGETS}")
        old = json.loads(RESULTS.read_text())
        for r in old["rows"]:
            if (r["board"], r["backend"]) not in wanted:
                cache.setdefault(f"{r['board']}/{r['backend']}/{r['model']}/{r['path']}", []).append(r)
        cache["commit"] = {
            k: v
            for k, v in old["commits"].items()
            if k != "msp430fr5994/lea" or ("msp430fr5994", "lea") not in wanted
        }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bl-cost-fit-") as d:
        rows, arts = measure_all(Path(d), cache)
        if args.cache:
            args.cache.write_text(json.dumps(cache))
        commits = commit_costs(Path(d), cache)
        if args.cache:
            args.cache.write_text(json.dumps(cache))
        fits = fit_targets(rows, commits)
        choices = path_choices(rows, arts, fits)
    for c in choices:
        flag = "" if c["fitted_picks"] == c["measured_cheaper"] else "  <- fitted table picks the dearer path"
        print(
            f"{c['target']:20s} {c['model']:9s} {c['layer']:6s} assumed {c['assumed_picks']:6s} fitted "
            f"{c['fitted_picks']:6s} measured fft {c['measured_fft']:>9,} direct {c['measured_direct']:>9,}"
            f"{flag}"
        )

    doc = {
        "generator": f"batteryless {__version__}",
        "command": ".venv/bin/python benchmarks/cost_fit.py"
        + (
            f" --targets {args.targets} (the other targets' rows from the previous run)"
            if args.targets
            else ""
        ),
        "host": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
        "models": [
            {"label": lab, "model": m, "block": k, "weight_bits": bits, "compress": "QUICK (tests' settings)"}
            for lab, m, k, bits in MODELS
        ],
        "sample": f"digits test sample {SAMPLE}",
        "tied": "none (every coefficient fitted per target)",
        "method": "per target, non-negative least squares of measured task counts on the task's macs, "
        "butterflies, elements and 1 call (codegen's cost-model features), each row weighted by "
        "1/measured (squared relative error); commit_cycles = (flex − restart app counts under continuous "
        "power) / commits, digits MLP k=16",
        "fits": fits,
        "path_choices": choices,
        "commits": commits,
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)
    print(f"wrote {RESULTS}")
    return 0


def fit_targets(rows: list[dict], commits: dict) -> dict:
    fits: dict = {}
    for board, backend in TARGETS:
        sel = [r for r in rows if r["board"] == board and r["backend"] == backend]
        y = np.array([r["measured"] for r in sel], dtype=float)
        ties = TIED.get((board, backend), {})
        fixed = {k: fits[f"{b_}/{k_}"]["fitted"][k] for k, (b_, k_) in ties.items()}
        coefs, pred = fit(sel, fixed)
        untied = fit(sel)[0] if ties else None
        b = load_board(board)
        old = dict(zip(KEYS, ASSUMED[(board, backend)], strict=True))
        est = [round(sum(r[f] * old.get(COEF[f], old["cycles_per_mac"]) for f in FEATURES)) for r in sel]
        table = cost_model(b, backend)
        by_kind = {}
        for kind in sorted({r["kind"] for r in sel}):
            idx = [i for i, r in enumerate(sel) if r["kind"] == kind]
            by_kind[kind] = {
                "tasks": len(idx),
                "measured": int(y[idx].sum()),
                "fitted": float(pred[idx].sum()),
                "relative_error_fitted": rel_errors(pred[idx], y[idx]),
            }
        commit = commits[commit_key(board, backend)]["commit_cycles"]
        fits[f"{board}/{backend}"] = {
            "board": board,
            "backend": backend,
            "unit": sel[0]["unit"],
            "tasks": len(sel),
            "assumed": old,
            "board_table": {k: getattr(table, k) for k in KEYS}
            | ({} if table.cycles_per_fft_mac is None else {"cycles_per_fft_mac": table.cycles_per_fft_mac})
            | {"source": table.source},
            "fitted": {k: round(v, 2) for k, v in coefs.items()} | {"commit_cycles": commit},
            "tied": {k: f"{b_}/{k_}" for k, (b_, k_) in ties.items()},
            "fitted_untied": None if untied is None else {k: round(v, 2) for k, v in untied.items()},
            "relative_error_assumed": rel_errors(est, y),
            "relative_error_fitted": rel_errors(pred, y),
            "total_measured": int(y.sum()),
            "total_assumed": int(sum(est)),
            "by_kind": by_kind,
        }
        print(
            f"{board}/{backend}: {coefs}; rel. error assumed max "
            f"{fits[f'{board}/{backend}']['relative_error_assumed']['max']:.2f} median "
            f"{fits[f'{board}/{backend}']['relative_error_assumed']['median']:.2f} → fitted max "
            f"{fits[f'{board}/{backend}']['relative_error_fitted']['max']:.2f} median "
            f"{fits[f'{board}/{backend}']['relative_error_fitted']['median']:.2f}",
            flush=True,
        )
    return fits


if __name__ == "__main__":
    sys.exit(main())
