"""``compress`` and ``evaluate``: dataset + network → validated integer artifact, and its report."""

from __future__ import annotations

import copy
import logging
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from batteryless import __version__
from batteryless.artifact import Artifact, load_artifact, save_artifact
from batteryless.errors import ArtifactError, CompressionError, ModelError, UsageError
from batteryless.eve.modes import has_modes
from batteryless.eve.train import EveConfig
from batteryless.models.train import evaluate_float, fit
from batteryless.progress import ProgressFn, report
from batteryless.rad.admm import AdmmConfig, admm_circulant
from batteryless.rad.circulant import check_block_size
from batteryless.rad.inputs import accuracy_warnings, normalised_splits, resolve_normalisation
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
    # the input normalisation the model expects: none | scalar | per-channel | per-feature (fitted on the
    # training split), or the user's own {"mean": ..., "std": ...}; see batteryless.normalisation
    normalisation: str | dict = "scalar"
    # the train/test split of a dataset without its own (digits): a property of the data, not of the training
    # run, so that every stage (evaluate, run, flex, export-tflite: all load the default split) tests on the
    # samples compress held out, whatever ``seed`` trained the model
    split_seed: int = 0
    # the dense accuracy the model's owner expects: sharpens the accuracy warning (rad.inputs)
    expected_accuracy: float | None = None
    # dense training before ADMM: None = when the model has no trained weights (a zoo name, a factory without
    # a state dict); True = always (a trained model is trained further); False = never (the caller declares
    # the weights trained, e.g. a factory that loads its own)
    train_dense: bool | None = None
    # torch intra-op threads while compressing: these models are tiny, and on 2 cores a second thread made
    # the default run 4× slower (61.8 s vs 13.8 s, measured under load); None keeps torch's setting
    threads: int | None = 1
    # EVE: modes > 1 trains that many nested modes over one weight store (batteryless.eve.train)
    modes: int = 1
    eve: EveConfig = field(default_factory=EveConfig)


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
    check_block_size(cfg.block_size, " (block_size / --block)")
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
                    "choose a divisor or allow zero padding (pad=True / --pad)"
                )
        else:
            # cap at the next power of two ≥ the smaller side: a 10-class output layer takes k = 16 with 6
            # padded rows; a side below 4 (a first conv on one input channel) stays dense
            small = min(rows, cols)
            k = 1 if small < 4 else min(cfg.block_size, 1 << math.ceil(math.log2(small)))
        out[i] = k
    return out


def _provenance(
    cfg: CompressConfig, model_name: str, dataset_name: str, seconds: float, model_source: str, trained: bool
) -> dict[str, Any]:
    return {
        "model_source": model_source,
        "dense_training_epochs": cfg.dense_epochs if trained else 0,
        "tool": f"batteryless {__version__}",
        # no command line and no time taken: they differ between identical runs, and the same inputs and
        # config must give the same artifact bytes (both are in compress()'s report under "run")
        "seed": cfg.seed,
        "split_seed": cfg.split_seed,
        "model": model_name,
        "dataset": dataset_name,
        "python": platform.python_version(),
        "torch": torch.__version__,
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
    state_dict: str | Path | dict | None = None,
) -> tuple[Artifact, dict[str, Any]]:
    """Train (or take) a dense model, ADMM-compress it to block-circulant fixed point, write the artifact.

    ``model`` is anything :func:`batteryless.models.load.load_model` takes: a zoo name, a model file
    (TorchScript, torch.export .pt2, torch.save, .tflite), ``module.py:factory``, or an ``nn.Module`` (taken
    as trained); ``state_dict`` gives its weights. Untrained models are trained for ``dense_epochs`` first
    (see ``CompressConfig.train_dense``). The model is checked against the dataset's input shape and class
    count, and ``out`` for writability, before any training. Returns (artifact, report).
    """
    cfg = config or CompressConfig()
    previous = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _compress(model, dataset, data_path, out, cfg, progress, state_dict)
    finally:
        torch.set_num_threads(previous)


def _compress(model, dataset, data_path, out, cfg: CompressConfig, progress, state_dict=None):
    from batteryless.datasets import load_dataset
    from batteryless.models import check_supported, fold_batchnorm
    from batteryless.models.load import load_model
    from batteryless.paths import check_output_file

    if cfg.weight_bits not in (8, 16):
        raise UsageError(f"weight bits must be 8 or 16, not {cfg.weight_bits}")
    if cfg.modes != 1:
        from batteryless.eve.train import check_modes

        check_modes(cfg.modes, cfg.eve)
    if not 0.0 <= cfg.prune_ratio < 1.0:
        raise UsageError(f"prune ratio must be in [0, 1), not {cfg.prune_ratio}")
    if out is not None:
        check_output_file(out, "the artifact")
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    ds = load_dataset(dataset, data_path, seed=cfg.split_seed)  # validated: values, dtypes, splits, labels
    warnings = list(ds.warnings)
    norm = resolve_normalisation(cfg.normalisation, ds)
    xtr, xte = normalised_splits(ds, norm, warnings)
    loaded = load_model(model, ds.input_shape, ds.num_classes, state_dict=state_dict, seed=cfg.seed)
    model_name, net = loaded.name, loaded.module
    for note in loaded.notes:
        log.info("%s: %s", model_name, note)
    train = (not loaded.trained) if cfg.train_dense is None else cfg.train_dense
    if train and cfg.dense_epochs < 1:
        why = f"{loaded.source} without a state dict" if not loaded.trained else "training was asked for"
        raise ModelError(
            f"model {model_name} has no trained weights ({why}) and dense_epochs is {cfg.dense_epochs}: "
            "give its weights (a state dict), declare them trained, or train it for at least 1 epoch"
            if not loaded.trained
            else f"model {model_name} is to be trained ({why}) but dense_epochs is {cfg.dense_epochs}"
        )
    if not train and not loaded.trained:
        log.info("%s: taken as trained as declared (its weights did not come from a file)", model_name)
    check_supported(net, ds.input_shape, ds.num_classes)  # shapes and classes before minutes of training
    unknown = set(cfg.eve.layer_width) - set(weight_layer_names(net).values()) if cfg.modes != 1 else set()
    if unknown:
        names = ", ".join(weight_layer_names(net).values())
        raise UsageError(
            f"--mode-layer-width: no weight layer named {', '.join(sorted(unknown))} (layers: {names})"
        )
    if train and loaded.source == "module":
        net = copy.deepcopy(net)  # train a copy: the caller's module is theirs
    if train:
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
    net = fold_batchnorm(net)  # after training, so BatchNorm trains with its batch statistics
    dense_acc = evaluate_float(net, xte, ds.y_test)
    log.info("dense float accuracy %.4f", dense_acc)
    more, by_norm = accuracy_warnings(
        net, ds, norm, dense_acc, pretrained=loaded.trained and not train, expected=cfg.expected_accuracy
    )
    warnings += more
    for w in warnings:  # now, not after minutes of ADMM
        log.warning("%s", w)
    blocks = choose_blocks(net, cfg)
    admm_cfg = AdmmConfig(
        **{**cfg.admm.__dict__, "weight_bits": cfg.weight_bits, "prune_ratio": cfg.prune_ratio}
    )
    circ, hist = admm_circulant(net, blocks, xtr, ds.y_train, admm_cfg, seed=cfg.seed, progress=progress)
    mode_set = None
    if cfg.modes != 1:
        from batteryless.eve.train import train_modes

        mode_set = train_modes(circ, xtr, ds.y_train, cfg.modes, cfg.eve, seed=cfg.seed, progress=progress)
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
        normalisation=norm,
        default_path=cfg.path,
    )
    art.model, art.dataset, art.class_names = model_name, ds.name, ds.class_names
    if mode_set is not None:
        from batteryless.eve.modes import set_modes

        circ_names = [lay["name"] for lay in art.weight_layers()]  # dense ones too (width only)
        set_modes(
            art,
            mode_set.keep,
            orders=dict(zip(circ_names, mode_set.orders, strict=True)),
            layer_keep=dict(zip(circ_names, mode_set.layer_keep, strict=True)),  # what training used
            layer_rows=dict(zip(circ_names, mode_set.layer_rows, strict=True)),
        )
        from batteryless.eve.modes import add_mode_biases

        add_mode_biases(
            art,
            {mi: dict(zip(circ_names, mode_set.mode_biases(mi), strict=True)) for mi in range(1, cfg.modes)},
        )
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
        "warnings": warnings,
    }
    if by_norm:
        art.metrics["accuracy_by_normalisation"] = by_norm
    if mode_set is not None:
        from batteryless.eve.train import mode_accuracies

        circ_modes = mode_accuracies(circ, mode_set, xte, ds.y_test)
        art.metrics["modes"] = [
            {
                "mode": mi,
                "circulant_float_accuracy": circ_modes[mi],
                "reference_accuracy": float((predict(art, ds.x_test, mode=mi) == ds.y_test).mean())
                if mi
                else ref_acc,
            }
            for mi in range(len(art.modes))
        ]
    if cfg.expected_accuracy is not None:
        art.metrics["expected_accuracy"] = cfg.expected_accuracy
    art.provenance = _provenance(cfg, model_name, ds.name, seconds, loaded.source, train)
    art.provenance["model_notes"] = list(loaded.notes)  # what the loader did to the model (deterministic)
    if out is not None:
        _save_or_rescue(art, out)
    rep = build_report(art)
    rep["run"] = {"seconds": round(seconds, 2), "command": " ".join(sys.argv) if sys.argv else ""}
    return art, rep


def _save_or_rescue(art: Artifact, out: str | Path) -> None:
    """Write the artifact; if ``out`` became unwritable during the run (checked at the start), keep the
    minutes of work in the temp folder and say where, instead of losing them."""
    try:
        save_artifact(art, out)
    except (OSError, ArtifactError) as err:
        if isinstance(err, ArtifactError) and Path(out).parent.exists():
            raise  # the artifact itself is wrong (validation), not the place it goes
        fd, rescue = tempfile.mkstemp(prefix="batteryless-rescued-", suffix=f"-{Path(out).name}")
        os.close(fd)
        try:
            save_artifact(art, rescue)
        except BaseException:
            Path(rescue).unlink(missing_ok=True)
            raise
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise UsageError(f"cannot write the artifact to {out} ({why}); it was saved to {rescue}") from None


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
    eve = {}
    if has_modes(art):
        from batteryless.eve.modes import mode_report

        eve = {"eve": mode_report(art)}
    return {
        **eve,
        "model": art.model,
        "dataset": art.dataset,
        "normalisation": art.normalisation.get("kind", "scalar"),
        "warnings": list(art.metrics.get("warnings", [])),
        "weight_bits": art.weight_layers()[0]["weight_bits"] if art.weight_layers() else None,
        "layers": rows,
        "total": total,
        "accuracy": acc,
    }


def heldout_split_seed(art: Artifact) -> int:
    """The split seed of the test split compress held out for ``art`` (artifacts written before
    ``split_seed`` existed split with their training seed)."""
    return int(art.provenance.get("split_seed", art.provenance.get("seed", 0)))


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
    ds = load_dataset(dataset or art.dataset, data_path, seed=heldout_split_seed(art))
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
    for row in rep.get("eve", {}).get("modes", [])[1:]:  # mode 0 is ref_acc above
        pred = predict(art, ds.x_test, paths, mode=row["mode"])
        row["reference_accuracy"] = float((pred == ds.y_test).mean()) if n else float("nan")
    if rep.get("eve"):
        rep["eve"]["modes"][0]["reference_accuracy"] = ref_acc
    rep["evaluated_on"] = {"dataset": ds.name, "samples": n}
    return rep
