#!/usr/bin/env python3
"""Compression benchmark (RAD): dense vs block-circulant fixed point at several block sizes.

Zoo models trained by `compress` on digits (``"user_model": false``), and a user's own model: a small torch
MLP trained by its owner, outside batteryless, on per-feature standardised breast-cancer data (scikit-learn's
bundled copy, written to an npz as a user would), compressed once with the normalisation it was trained on
and once with the old default (one scalar mean/std) to show what a mismatch costs and that it is flagged.

Writes benchmarks/results/compression.json (a list of rows) and prints a table. Run:
    .venv/bin/python benchmarks/compression.py [--mnist DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from batteryless import __version__
from batteryless.rad.admm import AdmmConfig
from batteryless.rad.compress import CompressConfig, compress

RESULTS = Path(__file__).resolve().parent / "results" / "compression.json"


def tabular_npz(path: Path, seed: int = 0) -> Path:
    """scikit-learn's breast-cancer table (569 × 30, 2 classes) as an npz, seeded stratified 80/20 split."""
    from sklearn.datasets import load_breast_cancer

    from batteryless.datasets.digits import stratified_split

    bunch = load_breast_cancer()
    x, y = np.asarray(bunch.data, dtype=np.float32), np.asarray(bunch.target, dtype=np.int64)
    train, test = stratified_split(y, 0.2, seed)
    np.savez(
        path,
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        class_names=np.array([str(n) for n in bunch.target_names]),
    )
    return path


def user_model(npz: Path, seed: int = 0):
    """What a user brings: an MLP trained with their own loop on their own per-feature standardisation
    (training-split column means and stds, as scikit-learn's StandardScaler). Returns (model, accuracy)."""
    import torch
    from torch import nn

    with np.load(npz) as f:
        xtr, ytr, xte, yte = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    mean, std = xtr.mean(axis=0), xtr.std(axis=0)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.as_tensor(xtr[:, None, :]), torch.as_tensor(ytr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(60):
        for idx in torch.randperm(len(xt), generator=gen).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(torch.as_tensor(xte[:, None, :])).argmax(1).numpy() == yte).mean())
    return net, acc


def run(
    model,
    dataset: str,
    block: int,
    bits: int,
    data: str | None,
    quick: bool,
    normalisation: str = "scalar",
    extra: dict | None = None,
) -> dict:
    cfg = CompressConfig(block_size=block, weight_bits=bits, normalisation=normalisation)
    if quick:
        cfg.dense_epochs = 5
        cfg.admm = AdmmConfig(rounds=3, retrain_epochs=3)
    t0 = time.perf_counter()
    art, rep = compress(model, dataset, data, None, cfg)
    seconds = time.perf_counter() - t0
    total = rep["total"]
    acc = rep["accuracy"]
    return {
        "model": model if isinstance(model, str) else (extra or {}).get("model_name", type(model).__name__),
        "dataset": dataset,
        "user_model": not isinstance(model, str),
        "normalisation": art.normalisation["kind"],
        **{k: v for k, v in (extra or {}).items() if k != "model_name"},
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
        "warnings": rep.get("warnings", []),
    }


def _print(r: dict) -> None:
    print(
        f"{r['model']:8s} {r['dataset']:7s} {r['normalisation']:11s} k={r['block_size']:<3d} "
        f"{r['weight_bits']:2d}-bit  {r['weight_bytes']:7,d} B ({r['compression_vs_int16']:5.1f}× vs int16)  "
        f"dense {100 * r['dense_float_accuracy']:.2f}%  circ {100 * r['circulant_float_accuracy']:.2f}%  "
        f"int ref {100 * r['reference_accuracy']:.2f}%  {r['compress_seconds']:.0f} s"
    )
    for w in r["warnings"]:
        print(f"  warning: {w}")


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
        _print(rows[-1])
    with tempfile.TemporaryDirectory(prefix="bl-bench-") as tmp:
        npz = tabular_npz(Path(tmp) / "breast_cancer.npz")
        net, owner_acc = user_model(npz)
        for norm in ("per-feature", "scalar"):  # the model's own normalisation, then the old default
            print(f"… user MLP / breast_cancer.npz, normalisation {norm}", file=sys.stderr, flush=True)
            extra = {"model_name": "user-mlp-30-32-32-2", "owner_float_accuracy": owner_acc}
            rows.append(run(net, str(npz), 16, 16, None, args.quick, norm, extra))
            rows[-1]["dataset"] = "breast_cancer.npz"
            _print(rows[-1])
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
