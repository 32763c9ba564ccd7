#!/usr/bin/env python3
"""TFLite benchmark: per zoo model, the int8 .tflite size and TFLite Micro arena vs our artifact.

Digits models (mlp, cnn) are compressed with the default RAD settings, exported with ``export_tflite`` and
verified (ai-edge-litert vs TFLite Micro, top-1 agreement with the integer reference on the test split).
MNIST/UCI-HAR models (lenet5, lenet300, har-cnn1d) need dataset files this machine does not have: they are
exported untrained (seeded weights, random calibration inputs), which gives the true .tflite size and arena
(neither depends on the weight values) but no artifact and no agreement; those fields are null with a reason.

Writes benchmarks/results/tflite.json (a list of rows). Run:
    .venv/bin/python benchmarks/tflite.py [--quick] [--mnist DIR] [--har DIR]
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
from pathlib import Path

import numpy as np

from batteryless import __version__
from batteryless.artifact import load_artifact, propagate_shapes
from batteryless.models import build_model
from batteryless.rad.admm import AdmmConfig
from batteryless.rad.compress import CompressConfig, build_report, compress
from batteryless.tflite import export_tflite
from batteryless.tflite.export import export_module
from batteryless.tflite.verify import tflm_arena, to_keras_layout_quantized

RESULTS = Path(__file__).resolve().parent / "results" / "tflite.json"
DATASET_MODELS = {"digits": ["mlp", "cnn"], "mnist": ["lenet5", "lenet300"], "har": ["har-cnn1d"]}
SHAPES = {"mnist": ((1, 28, 28), 10), "har": ((9, 128), 6)}


def activation_ram_estimate(art) -> int:
    """Largest (input + output) activation pair of one layer at int16: what a two-buffer plan needs."""
    shapes = propagate_shapes(art.layers, tuple(art.input_shape))
    return max(2 * (math.prod(a[1:]) + math.prod(b[1:])) for a, b in zip(shapes, shapes[1:], strict=False))


def trained_row(model: str, dataset: str, data: str | None, quick: bool, work: Path) -> dict:
    cfg = CompressConfig()
    if quick:
        cfg.dense_epochs = 5
        cfg.admm = AdmmConfig(rounds=3, retrain_epochs=3)
    art_path = work / f"{model}.bl"
    t0 = time.perf_counter()
    compress(model, dataset, data, art_path, cfg)
    t1 = time.perf_counter()
    rep = export_tflite(art_path, work / model, dataset, data_path=data)
    t2 = time.perf_counter()
    art = load_artifact(art_path)
    total = build_report(art)["total"]
    return {
        "model": model,
        "dataset": dataset,
        "trained": True,
        "tflite_bytes": rep["tflite_bytes"],
        "tflm_arena_bytes": rep["tflm_arena_bytes"],
        "tflm_arena_recorded_bytes": rep["tflm_arena_recorded_bytes"],
        "ops": rep["ops"],
        "artifact_weight_bytes": total["weight_bytes"],
        "artifact_bias_bytes": total["bias_bytes"],
        "artifact_dense_int16_weight_bytes": total["dense_int16_weight_bytes"],
        "artifact_activation_ram_estimate_bytes": activation_ram_estimate(art),
        "top1_agreement": rep["top1_agreement"],
        "top1_agreement_tflm": rep["top1_agreement_tflm"],
        "accuracy_tflite": rep["accuracy_tflite"],
        "accuracy_reference": rep["accuracy_reference"],
        "litert_tflm_bit_exact": rep["litert_tflm_bit_exact"],
        "litert_tflm_mismatches": rep["litert_tflm_mismatches"],
        "litert_tflm_outputs": rep["test_samples"] * art.num_classes,
        "litert_tflm_max_lsb_diff": rep["litert_tflm_max_lsb_diff"],
        "keras_tflite_max_abs_diff_rel": round(rep["keras_tflite_max_abs_diff_rel"], 4),
        "test_samples": rep["test_samples"],
        "compress_seconds": round(t1 - t0, 1),
        "export_verify_seconds": round(t2 - t1, 1),
        "note": None,
    }


def untrained_row(model: str, dataset: str) -> dict:
    shape, classes = SHAPES[dataset]
    net = build_model(model, shape, classes, seed=0).eval()
    rng = np.random.default_rng(0)
    x = rng.random(size=(64, *shape)).astype(np.float32) if len(shape) == 3 else rng.normal(size=(64, *shape))
    t0 = time.perf_counter()
    exp = export_module(net, shape, x.astype(np.float32))
    arena = tflm_arena(exp.tflite, to_keras_layout_quantized(exp.tflite, x[:1], shape))
    t1 = time.perf_counter()
    params = sum(p.numel() for p in net.parameters())
    return {
        "model": model,
        "dataset": dataset,
        "trained": False,
        "tflite_bytes": len(exp.tflite),
        "tflm_arena_bytes": arena["tflm_arena_bytes"],
        "tflm_arena_recorded_bytes": arena["tflm_arena_recorded_bytes"],
        "ops": exp.ops,
        "artifact_weight_bytes": None,
        "artifact_bias_bytes": None,
        "artifact_dense_int16_weight_bytes": 2
        * sum(p.numel() for n, p in net.named_parameters() if n.endswith("weight")),
        "artifact_activation_ram_estimate_bytes": None,
        "top1_agreement": None,
        "float_params": params,
        "export_verify_seconds": round(t1 - t0, 1),
        "note": f"no {dataset} files on this machine: untrained export (size and arena only); "
        "artifact fields need `compress` on the real dataset",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few compression epochs: a smoke run")
    ap.add_argument("--mnist", help="folder with the MNIST IDX files (trained lenet rows)")
    ap.add_argument("--har", help="UCI HAR folder (trained har-cnn1d row)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    data = {"digits": None, "mnist": args.mnist, "har": args.har}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bl-tflite-bench-") as tmp:
        for dataset, models in DATASET_MODELS.items():
            for model in models:
                print(f"{model} ({dataset}) …", file=sys.stderr, flush=True)
                if dataset == "digits" or data[dataset]:
                    row = trained_row(model, dataset, data[dataset], args.quick, Path(tmp))
                else:
                    row = untrained_row(model, dataset)
                row["run"] = {
                    "tool": f"batteryless {__version__}",
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "quick": args.quick,
                    "command": " ".join(["python", "benchmarks/tflite.py", *sys.argv[1:]]),
                }
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "run"}), file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(rows, indent=1) + "\n")
    os.replace(tmp_out, out)
    print(f"{'model':10} {'tflite B':>9} {'arena B':>8} {'artifact W B':>12} {'top1 agree':>10}")
    for r in rows:
        w = "-" if r["artifact_weight_bytes"] is None else f"{r['artifact_weight_bytes']:,}"
        a = "-" if r["top1_agreement"] is None else f"{r['top1_agreement']:.4f}"
        print(f"{r['model']:10} {r['tflite_bytes']:>9,} {r['tflm_arena_bytes']:>8,} {w:>12} {a:>10}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
