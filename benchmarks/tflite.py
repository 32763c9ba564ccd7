#!/usr/bin/env python3
"""TFLite benchmark: per zoo model, the int8 .tflite size and TFLite Micro arena vs our artifact.

Digits models (mlp, cnn) are compressed with the default RAD settings, exported with ``export_tflite`` and
verified (ai-edge-litert vs TFLite Micro bit for bit, top-1 agreement with the integer reference on the test
split). The artifact side of the comparison comes from ``batteryless.codegen``: the weight bytes the
generated C stores and the RAM of its memory plan (activation ping-pong buffers, FFT spectra buffer and FFT
scratch; the stack reserve is listed apart) for mps2-an386 with the CMSIS-DSP backend (a Cortex-M4, the
kind of target TFLite Micro runs on: ``artifact_ram_plan_bytes``) and for msp430fr5994 with LEA.
MNIST/UCI-HAR models (lenet5, lenet300, har-cnn1d) need dataset files this machine does not have: they are
exported untrained (seeded weights, random calibration inputs), which gives the true .tflite size and arena
(neither depends on the weight values) but no artifact and no agreement; those fields are null with a reason.

Writes benchmarks/results/tflite.json (a list of rows). Run:
    .venv/bin/python benchmarks/tflite.py [--quick] [--mnist DIR] [--har DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from batteryless import __version__
from batteryless.artifact import load_artifact
from batteryless.codegen import codegen
from batteryless.errors import BatterylessError
from batteryless.models import build_model
from batteryless.rad.admm import AdmmConfig
from batteryless.rad.compress import CompressConfig, build_report, compress
from batteryless.tflite import export_tflite
from batteryless.tflite.export import export_module
from batteryless.tflite.verify import tflm_arena, to_keras_layout_quantized

RESULTS = Path(__file__).resolve().parent / "results" / "tflite.json"
DATASET_MODELS = {"digits": ["mlp", "cnn"], "mnist": ["lenet5", "lenet300"], "har": ["har-cnn1d"]}
SHAPES = {"mnist": ((1, 28, 28), 10), "har": ((9, 128), 6)}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (TFLite Micro runs in child processes); the
    machine is shared, so wall time would measure the neighbours."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


RAM_PLAN_BOARDS = [("mps2-an386", "cmsis"), ("msp430fr5994", "lea")]  # the first gives the main column


def ram_plans(art_path: Path, work: Path) -> dict[str, dict]:
    """Per board/backend: codegen's memory plan (schedule.json ``memory_plan``) for the artifact, buffers
    in RAM (no checkpointing), layer paths chosen by the board's cost model."""
    plans: dict[str, dict] = {}
    for board, backend in RAM_PLAN_BOARDS:
        key = f"{board}/{backend}"
        try:
            res = codegen(art_path, board, work / f"codegen-{art_path.stem}-{board}", backend=backend)
        except BatterylessError as err:
            plans[key] = {"error": str(err)}
            continue
        mem = res.schedule["memory_plan"]
        buffers = {k: v for k, v in mem["buffers"].items() if v}
        ram = mem["regions"]["ram"]
        plans[key] = {
            "ram_plan_bytes": sum(buffers.values()),
            "buffers": buffers,
            "ram_with_stack_reserve_bytes": ram["used"],
            "stack_reserve_bytes": ram["used"] - sum(mem["buffers"].values()),
            "weight_bytes": mem["weight_bytes"],
            "paths": res.paths,
        }
    return plans


def trained_row(model: str, dataset: str, data: str | None, quick: bool, work: Path) -> dict:
    cfg = CompressConfig()
    if quick:
        cfg.dense_epochs = 5
        cfg.admm = AdmmConfig(rounds=3, retrain_epochs=3)
    art_path = work / f"{model}.bl"
    t0 = cpu_seconds()
    compress(model, dataset, data, art_path, cfg)
    t1 = cpu_seconds()
    rep = export_tflite(art_path, work / model, dataset, data_path=data)
    t2 = cpu_seconds()
    art = load_artifact(art_path)
    total = build_report(art)["total"]
    plans = ram_plans(art_path, work)
    main_key = "/".join(RAM_PLAN_BOARDS[0])
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
        "artifact_ram_plan_bytes": plans[main_key].get("ram_plan_bytes"),
        "artifact_ram_plan_board": main_key,
        "artifact_codegen_weight_bytes": plans[main_key].get("weight_bytes"),
        "artifact_ram_plans": plans,
        "top1_agreement": rep["top1_agreement"],
        "top1_agreement_tflm": rep["top1_agreement_tflm"],
        "accuracy_tflite": rep["accuracy_tflite"],
        "accuracy_reference": rep["accuracy_reference"],
        "litert": f"ai-edge-litert {rep['litert_version']} {rep['litert_resolver']}",
        "litert_tflm_bit_exact": rep["litert_tflm_bit_exact"],
        "litert_tflm_mismatches": rep["litert_tflm_mismatches"],
        "litert_tflm_outputs": rep["test_samples"] * art.num_classes,
        "litert_tflm_max_lsb_diff": rep["litert_tflm_max_lsb_diff"],
        "litert_optimised_tflm_mismatches": rep["litert_optimised_tflm_mismatches"],
        "litert_optimised_tflm_max_lsb_diff": rep["litert_optimised_tflm_max_lsb_diff"],
        "top1_agreement_litert_optimised_vs_tflm": rep["top1_agreement_litert_optimised_vs_tflm"],
        "keras_tflite_max_abs_diff_rel": round(rep["keras_tflite_max_abs_diff_rel"], 4),
        "test_samples": rep["test_samples"],
        "compress_cpu_seconds": round(t1 - t0, 1),
        "export_verify_cpu_seconds": round(t2 - t1, 1),
        "note": None,
    }


def untrained_row(model: str, dataset: str) -> dict:
    shape, classes = SHAPES[dataset]
    net = build_model(model, shape, classes, seed=0).eval()
    rng = np.random.default_rng(0)
    x = rng.random(size=(64, *shape)).astype(np.float32) if len(shape) == 3 else rng.normal(size=(64, *shape))
    t0 = cpu_seconds()
    exp = export_module(net, shape, x.astype(np.float32))
    arena = tflm_arena(exp.tflite, to_keras_layout_quantized(exp.tflite, x[:1], shape))
    t1 = cpu_seconds()
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
        "artifact_ram_plan_bytes": None,
        "top1_agreement": None,
        "float_params": params,
        "export_verify_cpu_seconds": round(t1 - t0, 1),
        "note": f"no {dataset} files on this machine: untrained export (size and arena only); "
        "artifact fields need `compress` on the real dataset",
    }


def structure_fields(model: str, dataset: str, work: Path) -> dict:
    """Our artifact's weight bytes and RAM plan for a model whose dataset is not on this machine: both
    depend only on the layer shapes and block sizes, so `compress` (default block size and weight bits,
    one short epoch) runs on a synthetic .npz of the dataset's shape. Its accuracy means nothing."""
    shape, classes = SHAPES[dataset]
    rng = np.random.default_rng(0)
    npz = work / f"synthetic-{dataset}.npz"
    np.savez(
        npz,
        x_train=rng.normal(size=(256, *shape)).astype(np.float32),
        y_train=rng.integers(0, classes, 256),
        x_test=rng.normal(size=(64, *shape)).astype(np.float32),
        y_test=np.arange(64) % classes,
    )
    cfg = CompressConfig(dense_epochs=1, admm=AdmmConfig(rounds=1, retrain_epochs=1))
    art_path = work / f"{model}-structure.bl"
    compress(model, "npz", npz, art_path, cfg)
    total = build_report(load_artifact(art_path))["total"]
    plans = ram_plans(art_path, work)
    main_key = "/".join(RAM_PLAN_BOARDS[0])
    return {
        "artifact_weight_bytes": total["weight_bytes"],
        "artifact_bias_bytes": total["bias_bytes"],
        "artifact_ram_plan_bytes": plans[main_key].get("ram_plan_bytes"),
        "artifact_ram_plan_board": main_key,
        "artifact_codegen_weight_bytes": plans[main_key].get("weight_bytes"),
        "artifact_ram_plans": plans,
        "artifact_note": "structure only: compressed with default block size / weight bits on synthetic "
        "data of the dataset's shape (one short epoch); weight bytes and RAM plan depend only on the shapes",
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
                    row.update(structure_fields(model, dataset, Path(tmp)))
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
    print(f"{'model':10} {'tflite B':>9} {'arena B':>8} {'artifact W B':>12} {'RAM plan B':>10} {'top1':>7}")
    for r in rows:
        w = "-" if r["artifact_weight_bytes"] is None else f"{r['artifact_weight_bytes']:,}"
        m = "-" if r["artifact_ram_plan_bytes"] is None else f"{r['artifact_ram_plan_bytes']:,}"
        a = "-" if r["top1_agreement"] is None else f"{r['top1_agreement']:.4f}"
        print(f"{r['model']:10} {r['tflite_bytes']:>9,} {r['tflm_arena_bytes']:>8,} {w:>12} {m:>10} {a:>7}")
    print(f"wrote {out}")
    not_exact = [r["model"] for r in rows if r["trained"] and not r["litert_tflm_bit_exact"]]
    if not_exact:  # the verification default is meant to be bit-exact with TFLite Micro (docs/tflite.md)
        print(f"litert and TFLite Micro are NOT bit-exact on: {', '.join(not_exact)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
