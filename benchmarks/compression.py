#!/usr/bin/env python3
"""Compression benchmark (RAD): dense vs block-circulant fixed point at several block sizes.

Writes benchmarks/results/compression.json (a list of rows) and prints a table. Run:
    .venv/bin/python benchmarks/compression.py [--mnist DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from batteryless import __version__
from batteryless.rad.admm import AdmmConfig
from batteryless.rad.compress import CompressConfig, compress

RESULTS = Path(__file__).resolve().parent / "results" / "compression.json"


def run(model: str, dataset: str, block: int, bits: int, data: str | None, quick: bool) -> dict:
    cfg = CompressConfig(block_size=block, weight_bits=bits)
    if quick:
        cfg.dense_epochs = 5
        cfg.admm = AdmmConfig(rounds=3, retrain_epochs=3)
    t0 = time.perf_counter()
    art, rep = compress(model, dataset, data, None, cfg)
    seconds = time.perf_counter() - t0
    total = rep["total"]
    acc = rep["accuracy"]
    return {
        "model": model,
        "dataset": dataset,
        "block_size": block,
        "weight_bits": bits,
        "weight_bytes": total["weight_bytes"],
        "dense_int16_weight_bytes": total["dense_int16_weight_bytes"],
        "compression_vs_int16": round(total["compression_vs_int16"], 2),
        "compression_vs_float32": round(total["compression_vs_float32"], 2),
        "macs": total["macs"],
        "dense_macs": total["dense_macs"],
        "dense_float_accuracy": acc["dense_float_accuracy"],
        "circulant_float_accuracy": acc["circulant_float_accuracy"],
        "reference_accuracy": acc["reference_accuracy"],
        "accuracy_drop_points": round(100 * (acc["dense_float_accuracy"] - acc["reference_accuracy"]), 2),
        "compress_seconds": round(seconds, 1),
        "layers": {r["name"]: {"block": r["block"], "path": r["path"]} for r in rep["layers"]},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", help="folder with the MNIST IDX files (adds LeNet-300-100 rows)")
    ap.add_argument("--quick", action="store_true", help="few epochs: a smoke run, not the published numbers")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    cases = [("mlp", "digits", k, 16) for k in (8, 16)]
    cases += [("cnn", "digits", k, 16) for k in (8, 16)]
    cases += [("mlp", "digits", 16, 8)]
    if args.mnist:
        cases += [("lenet300", "mnist", k, 16) for k in (16, 32)]
    rows = []
    for model, dataset, block, bits in cases:
        print(f"… {model}/{dataset} block {block} {bits}-bit", file=sys.stderr, flush=True)
        rows.append(run(model, dataset, block, bits, args.mnist if dataset == "mnist" else None, args.quick))
        r = rows[-1]
        print(
            f"{model:8s} {dataset:7s} k={block:<3d} {bits:2d}-bit  {r['weight_bytes']:7,d} B "
            f"({r['compression_vs_int16']:5.1f}× vs int16)  dense {100 * r['dense_float_accuracy']:.2f}%  "
            f"circ {100 * r['circulant_float_accuracy']:.2f}%  int ref {100 * r['reference_accuracy']:.2f}%  "
            f"{r['compress_seconds']:.0f} s"
        )
    meta = {
        "tool": f"batteryless {__version__}",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "command": "python benchmarks/compression.py" + (" --mnist DIR" if args.mnist else ""),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    # the issue fixes the shape: a list of rows; run metadata is repeated in each row
    tmp.write_text(json.dumps([{**row, "run": meta} for row in rows], indent=1) + "\n")
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
