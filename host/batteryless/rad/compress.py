"""``compress`` and ``evaluate``: dataset + network → validated integer artifact, and its report."""

from __future__ import annotations

import logging
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from batteryless import __version__
from batteryless.artifact import Artifact, load_artifact, save_artifact
from batteryless.errors import CompressionError, UsageError
from batteryless.models.train import evaluate_float, fit
from batteryless.progress import ProgressFn, report
from batteryless.rad.admm import AdmmConfig, admm_circulant
from batteryless.rad.circulant import check_block_size
from batteryless.rad.quantize import to_artifact
from batteryless.spec import predict

log = logging.getLogger(__name__)
WEIGHT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass
class CompressConfig:
    block_size: int = 16  # global default; capped per layer to the largest power of two ≤ min(rows, cols)
    layer_blocks: dict[str, int] = field(default_factory=dict)  # explicit per-layer sizes ("fc1": 8, …)
    pad: bool = False  # allow explicit per-layer sizes that do not divide the layer (zero padding)
    weight_bits: int = 16
    prune_ratio: float = 0.0
    dense_epochs: int = 40
    lr: float = 2e-3
    admm: AdmmConfig = field(default_factory=AdmmConfig)
    calibration_samples: int = 512
    path: str = "fft"
    seed: int = 0
    # torch intra-op threads while compressing: these models are tiny, and on 2 cores a second thread made
    # the default run 4× slower (61.8 s vs 13.8 s, measured under load); None keeps torch's setting
    threads: int | None = 1


def weight_layer_names(model: nn.Sequential) -> dict[int, str]:
    """Module index → the name the artifact gives the layer (fc1, fc2, conv1, …)."""
    names: dict[int, str] = {}
    counts = {"fc": 0, "conv": 0}
    for i, m in enumerate(model):
        if isinstance(m, WEIGHT_TYPES):
            kind = "fc" if isinstance(m, nn.Linear) else "conv"
            counts[kind] += 1
            names[i] = f"{kind}{counts[kind]}"
    return names


def _dims(m: nn.Module) -> tuple[int, int]:
    if isinstance(m, nn.Linear):
        return m.out_features, m.in_features
    return m.out_channels, m.in_channels


def choose_blocks(model: nn.Sequential, cfg: CompressConfig) -> dict[int, int]:
    """Block size per weight layer. The global size is capped per layer (see below); explicit per-layer
    sizes are taken as given and must divide the layer unless ``pad`` is set."""
    check_block_size(cfg.block_size, " (--block)")
    names = weight_layer_names(model)
    unknown = set(cfg.layer_blocks) - set(names.values())
    if unknown:
        raise CompressionError(
            f"no weight layer named {', '.join(sorted(unknown))}; the layers are {', '.join(names.values())}"
        )
    out: dict[int, int] = {}
    for i, name in names.items():
        rows, cols = _dims(model[i])
        if name in cfg.layer_blocks:
            k = cfg.layer_blocks[name]
            check_block_size(k, f" for layer {name}")
            if not cfg.pad and (rows % k or cols % k):
                raise CompressionError(
                    f"block size {k} does not divide layer {name} ({rows}×{cols}); "
                    "choose a divisor or pass --pad to zero-pad"
                )
        else:
            # cap at the next power of two ≥ the smaller side: a 10-class output layer takes k = 16 with 6
            # padded rows; a side below 4 (a first conv on one input channel) stays dense
            small = min(rows, cols)
            k = 1 if small < 4 else min(cfg.block_size, 1 << math.ceil(math.log2(small)))
        out[i] = k
    return out


def _provenance(cfg: CompressConfig, model_name: str, dataset_name: str, seconds: float) -> dict[str, Any]:
    return {
        "tool": f"batteryless {__version__}",
        "command": " ".join(sys.argv) if sys.argv else "",
        "seed": cfg.seed,
        "model": model_name,
        "dataset": dataset_name,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "compress_seconds": round(seconds, 2),
        "config": {
            "block_size": cfg.block_size,
            "layer_blocks": cfg.layer_blocks,
            "weight_bits": cfg.weight_bits,
            "prune_ratio": cfg.prune_ratio,
            "dense_epochs": cfg.dense_epochs,
            "admm_rounds": cfg.admm.rounds,
            "retrain_epochs": cfg.admm.retrain_epochs,
        },
    }


def compress(
    model: str | nn.Module = "mlp",
    dataset: str = "digits",
    data_path: str | Path | None = None,
    out: str | Path | None = None,
    config: CompressConfig | None = None,
    progress: ProgressFn | None = None,
) -> tuple[Artifact, dict[str, Any]]:
    """Train (or take) a dense model, ADMM-compress it to block-circulant fixed point, write the artifact.

    ``model`` is a zoo name or a user ``nn.Module`` made of supported layers. Returns (artifact, report).
    """
    cfg = config or CompressConfig()
    previous = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _compress(model, dataset, data_path, out, cfg, progress)
    finally:
        torch.set_num_threads(previous)


def _compress(model, dataset, data_path, out, cfg: CompressConfig, progress):
    from batteryless.datasets import load_dataset
    from batteryless.models import build_model, check_supported, fold_batchnorm

    if cfg.weight_bits not in (8, 16):
        raise UsageError(f"weight bits must be 8 or 16, not {cfg.weight_bits}")
    if not 0.0 <= cfg.prune_ratio < 1.0:
        raise UsageError(f"prune ratio must be in [0, 1), not {cfg.prune_ratio}")
    if out is not None and not Path(out).parent.exists():
        raise UsageError(f"cannot write {out}: folder {Path(out).parent} does not exist")
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    ds = load_dataset(dataset, data_path, seed=cfg.seed)
    mean, std = float(ds.x_train.mean()), float(ds.x_train.std()) or 1.0
    xtr = ((ds.x_train - mean) / std).astype(np.float32)
    xte = ((ds.x_test - mean) / std).astype(np.float32)
    if isinstance(model, str):
        model_name = model
        net = build_model(model, ds.input_shape, ds.num_classes, seed=cfg.seed)
        pretrained = False
    else:
        model_name = type(model).__name__
        net = model
        pretrained = True
    check_supported(net)
    net = fold_batchnorm(net)
    if not pretrained:
        fit(
            net,
            xtr,
            ds.y_train,
            epochs=cfg.dense_epochs,
            lr=cfg.lr,
            seed=cfg.seed,
            progress=progress,
            task="dense training",
        )
    dense_acc = evaluate_float(net, xte, ds.y_test)
    log.info("dense float accuracy %.4f", dense_acc)
    blocks = choose_blocks(net, cfg)
    admm_cfg = AdmmConfig(
        **{**cfg.admm.__dict__, "weight_bits": cfg.weight_bits, "prune_ratio": cfg.prune_ratio}
    )
    circ, hist = admm_circulant(net, blocks, xtr, ds.y_train, admm_cfg, seed=cfg.seed, progress=progress)
    circ_acc = evaluate_float(circ, xte, ds.y_test)
    layer_names = weight_layer_names(net)

    def named(residual: dict[str, float]) -> dict[str, float]:  # module index → artifact layer name
        return {layer_names[int(i)]: v for i, v in residual.items()}

    rng = np.random.default_rng(cfg.seed)
    calib = xtr[rng.permutation(len(xtr))[: cfg.calibration_samples]]
    art = to_artifact(
        circ,
        calib,
        weight_bits=cfg.weight_bits,
        input_shape=ds.input_shape,
        num_classes=ds.num_classes,
        normalisation={"mean": mean, "std": std},
        default_path=cfg.path,
    )
    art.model, art.dataset, art.class_names = model_name, ds.name, ds.class_names
    report(progress, "integer reference", 0, 1)
    ref_acc = float((predict(art, ds.x_test) == ds.y_test).mean())
    report(progress, "integer reference", 1, 1)
    seconds = time.perf_counter() - t0
    art.metrics = {
        "dense_float_accuracy": dense_acc,
        "circulant_float_accuracy": circ_acc,
        "reference_accuracy": ref_acc,
        "test_samples": int(len(ds.y_test)),
        "admm_final_residual": named(hist.rounds[-1]["residual"]) if hist.rounds else {},
        "admm_history": [{**r, "residual": named(r["residual"])} for r in hist.rounds],
    }
    art.provenance = _provenance(cfg, model_name, ds.name, seconds)
    if out is not None:
        save_artifact(art, out)
    return art, build_report(art)


def build_report(art: Artifact, accuracies: dict[str, float] | None = None) -> dict[str, Any]:
    rows = [art.layer_stats(layer) for layer in art.weight_layers()]
    keys = (
        "params",
        "dense_params",
        "weight_bytes",
        "dense_int16_weight_bytes",
        "bias_bytes",
        "macs",
        "dense_macs",
    )
    total = {key: sum(r[key] for r in rows) for key in keys}
    total["compression_vs_int16"] = total["dense_int16_weight_bytes"] / max(total["weight_bytes"], 1)
    total["compression_vs_float32"] = 2 * total["compression_vs_int16"]
    acc = {
        key: art.metrics.get(key)
        for key in ("dense_float_accuracy", "circulant_float_accuracy", "reference_accuracy")
    }
    if accuracies:
        acc.update(accuracies)
    return {
        "model": art.model,
        "dataset": art.dataset,
        "weight_bits": art.weight_layers()[0]["weight_bits"] if art.weight_layers() else None,
        "layers": rows,
        "total": total,
        "accuracy": acc,
    }


def evaluate(
    artifact: str | Path | Artifact,
    dataset: str | None = None,
    data_path: str | Path | None = None,
    paths: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Run the integer reference (the numeric spec) on a dataset's test split and report."""
    from batteryless.datasets import load_dataset

    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    ds = load_dataset(dataset or art.dataset, data_path, seed=int(art.provenance.get("seed", 0)))
    if tuple(ds.input_shape) != tuple(art.input_shape):
        raise UsageError(
            f"dataset {ds.name} has input shape {ds.input_shape}, the artifact expects {art.input_shape}"
        )
    preds = []
    n = len(ds.x_test)
    for i in range(0, n, 256):
        preds.append(predict(art, ds.x_test[i : i + 256], paths))
        report(progress, "integer reference", min(i + 256, n), n)
    ref_acc = float((np.concatenate(preds) == ds.y_test).mean()) if n else float("nan")
    float_acc = evaluate_float(art.to_float_module(), art.normalise(ds.x_test), ds.y_test)
    rep = build_report(art, {"reference_accuracy": ref_acc, "dequantized_float_accuracy": float_acc})
    rep["evaluated_on"] = {"dataset": ds.name, "samples": n}
    return rep
