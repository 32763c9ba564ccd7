#!/usr/bin/env python3
"""Fit the boards' ``[cost.<backend>]`` tables to emulator counts.

Compresses small digits models (MLP and CNN, dense = block 1 and block-circulant, quick training: only their
structure matters for cost), generates them on both paths (``codegen(..., path="fft" | "direct")``), measures
every task with ``measure_schedule`` — MSP430FR5994 ``ref`` under mspdebug (MCLK cycles), mps2-an386 ``ref``
and ``cmsis`` under QEMU (instructions) — and fits the cost model's per-operation coefficients by
non-negative least squares over the tasks. A task's features are exactly what codegen's cost model charges
for it (``codegen.plan.task_features``: circulant-direct, dense/walk and FFT-path MACs apart, butterflies,
transforms, elements, outputs and one kernel call; ``codegen.costs.FEATURES``). Each row keeps the task's
raw attributes, so a refit from ``--cache`` recomputes the features without measuring again. The fit
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
import math
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
from batteryless.codegen.costs import DEFAULTS, FEATURES, KEYS, OPTIONAL_KEYS, cost_model  # noqa: E402
from batteryless.codegen.generate import fitting_plan  # noqa: E402
from batteryless.codegen.measure import measure_schedule  # noqa: E402
from batteryless.codegen.plan import Task, build_plan, task_features  # noqa: E402
from batteryless.datasets import load_dataset  # noqa: E402
from batteryless.errors import CodegenError  # noqa: E402
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
    ("cnn-k8-w8", "cnn", 8, 8),  # the tests' CNN: 8-bit circulant weights (cmsis widens them per MAC)
    ("cnn-k4", "cnn", 4, 16),  # block 4: benchmarks/eve.py's CNN has conv2 at k = 4
]
TARGETS = [("msp430fr5994", "ref"), ("mps2-an386", "ref"), ("mps2-an386", "cmsis"), ("msp430fr5994", "lea")]
# besides the default granularity: where the backend's dense kernels are not the bl_mac_step walk (lea: one
# LEA MAC per position and channel), an image whose default cuts layers into walk steps is measured coarse
# too, and every image with steps of at most 4,000 estimated cycles (the walk in linear layers as well), so
# the fit sees both (walk_macs / walk_conv_macs and the dense kernels' keys apart)
GRANULARITIES = {("msp430fr5994", "lea"): ("auto", "coarse", 4000.0)}


def gran_name(gran) -> str:
    return gran if isinstance(gran, str) else f"{gran:g}"


COEF = FEATURES  # feature -> table key (codegen/costs.py)
# raw task attributes a measured row keeps (codegen.plan.Task fields): enough to rebuild its features
RAW = (
    "name", "layer", "kind", "task_macs",  # Task(name, layer, kind, "", macs=task_macs)
    "op", "block", "weight_bits", "butterflies", "transforms", "elements", "outputs",  # set on it
)  # fmt: skip
# The hand estimates the boards carried before this fit (ASSUMED), kept here so that "before → after" stays
# reproducible once board.toml holds the fitted numbers: mac, butterfly, element, call, commit.
ASSUMED = {
    ("msp430fr5994", "ref"): (14, 90, 8, 150, 200),
    ("mps2-an386", "ref"): (3, 24, 3, 40, 120),
    ("mps2-an386", "cmsis"): (1, 8, 2, 80, 120),
    ("msp430fr5994", "lea"): (1.5, 6, 41.39, 300, 776),  # before issue 12: nothing emulated the LEA
}
SAMPLE = 3  # test sample measured (kernel work does not depend on the data)


def task_rows(art_path: Path, board: str, backend: str, path: str, granularity: str = "auto") -> list[dict]:
    """Per task of the generated plan: its raw attributes (features() turns them into the cost features)."""
    b = load_board(board)
    art, costs = load_artifact(art_path), cost_model(b, backend)
    # the task list codegen generated: its default granularity cuts tasks whose estimate exceeds a
    # power-on period into steps (codegen/granularity.py) unless the code region cannot hold the step
    # kernels (codegen/memory.py), exactly as codegen() decides
    io_words = math.prod(art.input_shape) + art.num_classes
    plan, _, _ = fitting_plan(art, b, backend, path, costs, granularity, "ram", io_words, 1)
    return [
        {"name": t.name, "layer": t.layer, "kind": t.kind, "op": t.op, "block": t.block, "task_macs": t.macs}
        | {"weight_bits": t.weight_bits}
        | {"butterflies": t.butterflies, "transforms": t.transforms, "elements": t.elements}
        | {"outputs": t.outputs, "out_bytes": t.out_bytes}
        for t in plan.tasks
    ]


def features(row: dict) -> dict[str, int]:
    """The cost model's features of a measured row, from its raw task attributes (plan.task_features)."""
    t = Task(row["name"], row["layer"], row["kind"], "", macs=row["task_macs"])
    for a in RAW[4:]:
        setattr(t, a, row[a])
    return task_features(t)


def measure_all(tmp: Path, cache: dict) -> tuple[list[dict], dict[str, Path]]:
    digits = load_dataset("digits")
    x = digits.x_test[SAMPLE]
    arts = {}
    for label, model, block, bits in MODELS:
        p = tmp / f"{label}.bl"
        compress(model, "digits", out=p, config=CompressConfig(block_size=block, weight_bits=bits, **QUICK))
        arts[label] = p
    rows = []
    for board, backend, label, path, gran in (
        (b_, k_, label, path, gran)
        for b_, k_ in TARGETS
        for label, _, block, _ in MODELS
        for path in (("direct",) if block == 1 else ("fft", "direct"))
        for gran in GRANULARITIES.get((b_, k_), ("auto",))
    ):
        key = f"{board}/{backend}/{label}/{path}" + ("" if gran == "auto" else f"/{gran_name(gran)}")
        if key in cache:
            rows += cache[key]
            continue
        gen = tmp / key.replace("/", "-")
        try:
            if gran == "coarse" and not any(
                r["kind"] == "mac_step" for r in task_rows(arts[label], board, backend, path, "auto")
            ):
                continue  # the default image has no steps: the same tasks as this one
            res = codegen(arts[label], board, gen, backend=backend, path=path, granularity=gran)
        except CodegenError as e:  # e.g. the FFT path's kernels beyond the code region: no rows
            print(f"{key}: skipped, does not fit: {e}", flush=True)
            continue
        feats = task_rows(arts[label], board, backend, path, gran)
        if not isinstance(gran, str) and not any(f["kind"] == "mac_step" for f in feats):
            continue  # no steps at that size either (an FFT-path image): nothing the others lack
        t0 = time.process_time()
        sched = measure_schedule(gen, board, arts[label], x, backend=backend)
        tasks = sched["modes"][0]["tasks"]
        assert [t["name"] for t in tasks] == [f["name"] for f in feats], key
        got = [
            features(f)
            | {
                "board": board,
                "backend": backend,
                "model": label,
                "path": path,
                "granularity": gran_name(gran),
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


def with_coefficients(table, coefs: dict):
    """``table`` (a CostModel) priced by ``coefs`` (table keys); an optional key ``coefs`` lacks takes its
    documented default (codegen/costs.py DEFAULTS)."""
    absent = {k: (None if isinstance(DEFAULTS[k], str) else DEFAULTS[k]) for k in OPTIONAL_KEYS}
    return replace(
        table, **absent | {k: float(v) for k, v in coefs.items() if k in KEYS or k in OPTIONAL_KEYS}
    )


def price(coefs: dict, row: dict) -> float:
    """A row's estimate under table keys ``coefs`` (absent optional keys: their DEFAULTS)."""

    def c(key):
        if key in coefs:
            return coefs[key]
        d = DEFAULTS[key]
        return c(d) if isinstance(d, str) else d

    return sum(row.get(f, 0) * c(k) for f, k in FEATURES.items())


def path_choices(rows: list[dict], arts: dict[str, Path], fits: dict) -> list[dict]:
    """Per circulant layer and target: the path codegen's "auto" picks under the ASSUMED table, the board's
    table when this ran (``table_picks``: the table before this fit) and the FITTED table, and the path that
    measured cheaper (sum of the layer's task counts on each path)."""
    out = []

    def layer_gran(board: str, backend: str, label: str, path: str) -> str:
        # the kernels' tasks: the coarse image where one was measured (its default cut into walk steps)
        grans = {
            r.get("granularity", "auto")
            for r in rows
            if (r["board"], r["backend"], r["model"], r["path"]) == (board, backend, label, path)
        }
        return "coarse" if "coarse" in grans else "auto"

    for key, f in fits.items():
        board, backend = f["board"], f["backend"]
        b = load_board(board)
        table = cost_model(b, backend)
        assumed = with_coefficients(table, dict(zip(KEYS, ASSUMED[(board, backend)], strict=True)))
        fitted = with_coefficients(table, f["fitted"])
        for label, _, block, _ in MODELS:
            if block == 1:
                continue
            art = load_artifact(arts[label])
            pa = build_plan(art, b, backend, "auto", assumed).paths
            pt = build_plan(art, b, backend, "auto", table).paths
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
                        and r.get("granularity", "auto") == layer_gran(board, backend, label, path)
                        and r["name"].split(".")[0] == layer
                    )
                    for path in ("fft", "direct")
                }
                if not any(meas.values()):
                    continue  # the model was not measured on this target (a --keep target's older rows)
                out.append(
                    {
                        "target": key,
                        "model": label,
                        "layer": layer,
                        "assumed_picks": pa[layer],
                        "table_picks": pt[layer],
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
    coefficients are subtracted first and not fitted. A feature no row has gets no coefficient when its
    key is optional (the table then omits it: costs.DEFAULTS) and 0 when required."""
    fixed = fixed or {}
    names = list(FEATURES)
    a = np.array([[r.get(f, 0) for f in names] for r in rows], dtype=float)
    y = np.array([r["measured"] for r in rows], dtype=float)
    present = [f for i, f in enumerate(names) if a[:, i].any() or FEATURES[f] in KEYS]
    free = [f for f in present if COEF[f] not in fixed and a[:, names.index(f)].any()]
    known = sum(
        (a[:, names.index(f)] * fixed[COEF[f]] for f in present if COEF[f] in fixed),
        start=np.zeros(len(rows)),
    )
    w = 1.0 / y  # relative error per task
    cols = [names.index(f) for f in free]
    c_free, _ = nnls(a[:, cols] * w[:, None], (y - known) * w)
    coef = {COEF[f]: float(fixed.get(COEF[f], 0.0)) for f in present}
    coef.update({COEF[f]: float(c) for f, c in zip(free, c_free, strict=True)})
    pred = sum((a[:, names.index(f)] * coef[COEF[f]] for f in present), start=np.zeros(len(rows)))
    return coef, pred


def rel_errors(pred, y) -> dict:
    e = np.abs(np.asarray(pred, dtype=float) - y) / y
    return {"max": float(e.max()), "median": float(np.median(e)), "mean": float(e.mean())}


def tables(doc: dict) -> str:
    """The docs' tables (markdown) from a results document: coefficients, per-task errors, whole inferences
    and the path picks that differ."""
    fits = doc["fits"]
    keys = list(FEATURES.values()) + ["commit_cycles"]
    out = ["| coefficient | " + " | ".join(fits) + " |", "|---" * (len(fits) + 1) + "|"]
    for k in keys:
        cells = [f"{f['fitted'][k]:g}" if k in f["fitted"] else "(default)" for f in fits.values()]
        out.append(f"| {k} | " + " | ".join(cells) + " |")
    out += ["", "| target | tasks | per-task error median / max: assumed | table before the fit | fitted |"]
    out.append("|---|---|---|---|---|")
    for key, f in fits.items():
        e = [
            f.get(n)
            for n in ("relative_error_assumed", "relative_error_board_table", "relative_error_fitted")
        ]
        out.append(
            f"| {key}{' (kept)' if 'kept_from' in f else ''} | {f['tasks']} | "
            + " | ".join("–" if x is None else f"{100 * x['median']:.1f} / {100 * x['max']:.0f} %" for x in e)
            + " |"
        )
    out += [
        "",
        "| target | model | path | measured | table before the fit | fitted |",
        "|---|---|---|---|---|---|",
    ]
    for key, f in fits.items():
        for t in f.get("totals", []):
            out.append(
                f"| {key} | {t['model']} | {t['path']} | {t['measured']:,} | {t['board_table']:,} "
                f"({t['board_table_over_measured']:.2f}×) | {t['fitted']:,} "
                f"({t['fitted_over_measured']:.2f}×) |"
            )
    moved = [
        c
        for c in doc["path_choices"]
        if len({c.get("table_picks"), c["fitted_picks"], c["measured_cheaper"]}) > 1
    ]
    out += [
        "",
        "| target | model | layer | table before the fit picks | fitted picks | measured fft / direct |",
    ]
    out.append("|---|---|---|---|---|---|")
    for c in moved:
        out.append(
            f"| {c['target']} | {c['model']} | {c['layer']} | {c['table_picks']} | {c['fitted_picks']} | "
            f"{c['measured_fft']:,} / {c['measured_direct']:,} |"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, help="keep measured rows here and reuse them")
    ap.add_argument(
        "--targets",
        help="comma-separated board/backend pairs to measure (e.g. msp430fr5994/lea); every other target's "
        "rows and the commit costs are taken from the existing results file, then everything is refitted",
    )
    ap.add_argument(
        "--tables",
        action="store_true",
        help="print docs/benchmarks.md's tables from the results file and exit",
    )
    ap.add_argument(
        "--keep",
        metavar="TARGET=FILE",
        action="append",
        default=[],
        help="take TARGET's fit and rows (e.g. msp430fr5994/lea) unchanged from the results file FILE "
        "instead of refitting it (a target whose kernels are being changed keeps its table until they land)",
    )
    args = ap.parse_args()
    if args.tables:
        print(tables(json.loads(RESULTS.read_text())))
        return 0
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    if args.targets:
        wanted = {tuple(s.split("/")) for s in args.targets.split(",")}
        unknown = wanted - set(TARGETS)
        if unknown:
            ap.error(f"unknown targets {sorted(unknown)}; known: {TARGETS}")
        old = json.loads(RESULTS.read_text())
        for r in old["rows"]:
            if (r["board"], r["backend"]) not in wanted:
                gran = r.get("granularity", "auto")
                key = f"{r['board']}/{r['backend']}/{r['model']}/{r['path']}" + (
                    "" if gran == "auto" else f"/{gran}"
                )
                cache.setdefault(key, []).append(r)
        # the commits of the wanted targets are measured again, the others kept
        cache["commit"] = {
            k: v for k, v in old["commits"].items() if k not in {commit_key(b_, k_) for b_, k_ in wanted}
        }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bl-cost-fit-") as d:
        rows, arts = measure_all(Path(d), cache)
        rows = [r | features(r) for r in rows]  # from the raw task attributes: a refit needs no re-run
        if args.cache:
            args.cache.write_text(json.dumps(cache))
        commits = commit_costs(Path(d), cache)
        if args.cache:
            args.cache.write_text(json.dumps(cache))
        fits = fit_targets(rows, commits)
        for spec in args.keep:
            target, _, src = spec.partition("=")
            old = json.loads(Path(src).read_text())
            if target not in old.get("fits", {}):
                ap.error(f"--keep {spec}: {src} has no fit for {target}")
            fits[target] = old["fits"][target] | {"kept_from": old.get("command", src)}
            rows = [r for r in rows if f"{r['board']}/{r['backend']}" != target] + [
                r for r in old["rows"] if f"{r['board']}/{r['backend']}" == target
            ]
            print(f"{target}: fit and rows kept from {src}: {fits[target]['fitted']}", flush=True)
        choices = path_choices(rows, arts, fits)
    for c in choices:
        flag = "" if c["fitted_picks"] == c["measured_cheaper"] else "  <- fitted table picks the dearer path"
        print(
            f"{c['target']:20s} {c['model']:9s} {c['layer']:6s} assumed {c['assumed_picks']:6s} table "
            f"{c['table_picks']:6s} fitted "
            f"{c['fitted_picks']:6s} measured fft {c['measured_fft']:>9,} direct {c['measured_direct']:>9,}"
            f"{flag}"
        )

    doc = {
        "generator": f"batteryless {__version__}",
        "command": ".venv/bin/python benchmarks/cost_fit.py"
        + "".join(f" --keep {k.partition('=')[0]}=(the previous results file)" for k in args.keep)
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
        "method": "per target, non-negative least squares of measured task counts on the task's cost-model "
        "features (codegen.plan.task_features, codegen.costs.FEATURES: circulant-direct macs / conv_macs, "
        "dense_macs / dense_conv_macs (dense kernels and the bl_mac_step walk), fft_macs, w8_macs, "
        "butterflies, transforms, elements, outputs, 1 call), each row weighted by 1/measured (squared "
        "relative error); commit_cycles = (flex − restart app counts under continuous "
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
        est = [round(price(old, r)) for r in sel]
        # the board's table when the rows were measured (the table before this fit)
        before = np.array([r["estimate_board_table"] for r in sel], dtype=float)
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
        # whole inferences: per model and path, measured vs the table before and the fit
        totals = []

        def image(r: dict) -> str:  # the path, and the granularity where it is not the default
            gran = r.get("granularity", "auto")
            return r["path"] if gran == "auto" else f"{r['path']}/{gran}"

        for label in dict.fromkeys(r["model"] for r in sel):
            for path in dict.fromkeys(image(r) for r in sel if r["model"] == label):
                idx = [i for i, r in enumerate(sel) if r["model"] == label and image(r) == path]
                totals.append(
                    {
                        "model": label,
                        "path": path,
                        "measured": int(y[idx].sum()),
                        "board_table": int(before[idx].sum()),
                        "fitted": round(float(pred[idx].sum())),
                        "board_table_over_measured": round(float(before[idx].sum() / y[idx].sum()), 3),
                        "fitted_over_measured": round(float(pred[idx].sum() / y[idx].sum()), 3),
                    }
                )
        commit = commits[commit_key(board, backend)]["commit_cycles"]
        fits[f"{board}/{backend}"] = {
            "board": board,
            "backend": backend,
            "unit": sel[0]["unit"],
            "tasks": len(sel),
            "assumed": old,
            "board_table": {k: getattr(table, k) for k in KEYS}
            | {k: getattr(table, k) for k in OPTIONAL_KEYS if getattr(table, k) is not None}
            | {"source": table.source},
            "fitted": {k: round(v, 2) for k, v in coefs.items()} | {"commit_cycles": commit},
            "tied": {k: f"{b_}/{k_}" for k, (b_, k_) in ties.items()},
            "fitted_untied": None if untied is None else {k: round(v, 2) for k, v in untied.items()},
            "relative_error_assumed": rel_errors(est, y),
            "relative_error_board_table": rel_errors(before, y),
            "relative_error_fitted": rel_errors(pred, y),
            "total_measured": int(y.sum()),
            "total_assumed": int(sum(est)),
            "totals": totals,
            "by_kind": by_kind,
        }
        f = fits[f"{board}/{backend}"]
        print(
            f"{board}/{backend}: {f['fitted']}; per-task rel. error (median / max) assumed "
            f"{f['relative_error_assumed']['median']:.2f} / {f['relative_error_assumed']['max']:.2f}, "
            f"table before {f['relative_error_board_table']['median']:.2f} / "
            f"{f['relative_error_board_table']['max']:.2f} -> fitted "
            f"{f['relative_error_fitted']['median']:.2f} / {f['relative_error_fitted']['max']:.2f}",
            flush=True,
        )
        for t in totals:
            print(
                f"  {t['model']:10s} {t['path']:6s} measured {t['measured']:>10,} table before "
                f"{t['board_table']:>10,} ({t['board_table_over_measured']:.2f}x) fitted {t['fitted']:>10,} "
                f"({t['fitted_over_measured']:.2f}x)"
            )
    return fits


if __name__ == "__main__":
    sys.exit(main())
