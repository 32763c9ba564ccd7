#!/usr/bin/env python3
"""Datasets/models benchmark: float accuracy and training time of the digits zoo models over several seeds,
and loader time for full-size synthetic MNIST (IDX, gz) and UCI HAR (text) files in the real formats.

Writes benchmarks/results/float_training.json and prints a summary. Run:
    .venv/bin/python benchmarks/float_training.py [--seeds 5] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from batteryless import __version__
from batteryless.datasets import load_dataset
from batteryless.datasets.har import SIGNALS
from batteryless.datasets.idx import encode_idx
from batteryless.models import build_model, train_float

RESULTS = Path(__file__).resolve().parent / "results" / "float_training.json"


def bench_training(seeds: int, epochs: int) -> list[dict]:
    rows = []
    for name in ("mlp", "cnn"):
        for seed in range(seeds):
            ds = load_dataset("digits", seed=seed)
            net = build_model(name, ds.input_shape, ds.num_classes, seed=seed)
            t0 = time.perf_counter()
            _, acc = train_float(net, ds, epochs=epochs, lr=3e-3, seed=seed)
            rows.append(
                {
                    "model": name,
                    "dataset": "digits",
                    "seed": seed,
                    "epochs": epochs,
                    "lr": 3e-3,
                    "params": sum(p.numel() for p in net.parameters()),
                    "test_accuracy": acc,
                    "train_seconds": round(time.perf_counter() - t0, 2),
                }
            )
            print(f"{name:4} seed {seed}: {100 * acc:.2f}% in {rows[-1]['train_seconds']} s")
    return rows


def bench_loaders(n_mnist: int, n_har: int) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        mnist = Path(tmp) / "mnist"
        mnist.mkdir()
        for prefix, n in (("train", n_mnist), ("t10k", n_mnist // 6)):
            imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            labels = rng.integers(0, 10, n, dtype=np.uint8)
            (mnist / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(encode_idx(imgs), 6))
            (mnist / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(labels), 6))
        t0 = time.perf_counter()
        ds = load_dataset("mnist", mnist)
        out["mnist_gz"] = {
            "train": len(ds.y_train),
            "test": len(ds.y_test),
            "load_seconds": round(time.perf_counter() - t0, 3),
        }
        har = Path(tmp) / "UCI HAR Dataset"
        for split, n in (("train", n_har), ("test", n_har * 2947 // 7352)):
            (har / split / "Inertial Signals").mkdir(parents=True)
            for sig in SIGNALS:
                x = rng.standard_normal((n, 128)).astype(np.float32)
                np.savetxt(har / split / "Inertial Signals" / f"{sig}_{split}.txt", x, fmt="%.8e")
            np.savetxt(har / split / f"y_{split}.txt", rng.integers(1, 7, n), fmt="%d")
        t0 = time.perf_counter()
        ds = load_dataset("har", har)
        out["har_text"] = {
            "train": len(ds.y_train),
            "test": len(ds.y_test),
            "load_seconds": round(time.perf_counter() - t0, 3),
        }
    for k, v in out.items():
        print(f"load {k}: {v['train']}+{v['test']} samples in {v['load_seconds']} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="2 seeds, small loader files")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = 2 if args.quick else args.seeds
    rows = bench_training(seeds, args.epochs)
    loaders = bench_loaders(6000 if args.quick else 60000, 735 if args.quick else 7352)
    summary = {}
    for name in ("mlp", "cnn"):
        accs = [r["test_accuracy"] for r in rows if r["model"] == name]
        secs = [r["train_seconds"] for r in rows if r["model"] == name]
        summary[name] = {
            "accuracy_min": min(accs),
            "accuracy_mean": round(statistics.mean(accs), 4),
            "accuracy_max": max(accs),
            "train_seconds_median": statistics.median(secs),
        }
        print(
            f"{name}: accuracy min {100 * min(accs):.2f}% mean {100 * statistics.mean(accs):.2f}%, "
            f"median {statistics.median(secs)} s"
        )
    result = {
        "tool": f"batteryless {__version__}",
        "host": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "machine": platform.machine(),
        },
        "quick": args.quick,
        "training": rows,
        "summary": summary,
        "loaders": loaders,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
