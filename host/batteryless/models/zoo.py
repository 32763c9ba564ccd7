"""Zoo models: small channels-first ``nn.Sequential`` networks sized for an MSP430FR5994 after compression.

Widths are multiples of 8/16 where the architecture allows it so that power-of-two circulant blocks divide
them (LeNet-300-100 keeps its defining 300/100 widths; blocks of 4 divide both).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from batteryless.errors import ModelError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ZooEntry:
    name: str
    dataset: str  # the dataset it is designed for
    description: str
    dims: int  # 2: (C, H, W) input, 1: (C, L) input, 0: any (flattened)
    build: Callable[[Shape, int], nn.Sequential]


def _flat_features(layers: list[nn.Module], input_shape: Shape, model: str) -> int:
    with torch.no_grad():
        try:
            out = nn.Sequential(*layers)(torch.zeros(1, *input_shape))
        except RuntimeError as err:
            raise ModelError(
                f"model {model!r} does not fit input shape {tuple(input_shape)}: {str(err).splitlines()[0]}"
            ) from None
    return int(out.numel())


def _mlp(input_shape: Shape, classes: int) -> nn.Sequential:
    n = math.prod(input_shape)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(n, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, classes),
    )


def _cnn(input_shape: Shape, classes: int) -> nn.Sequential:
    c = input_shape[0]
    feats: list[nn.Module] = [
        nn.Conv2d(c, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
    ]
    n = _flat_features(feats, input_shape, "cnn")
    return nn.Sequential(*feats, nn.Linear(n, classes))


def _lenet5(input_shape: Shape, classes: int) -> nn.Sequential:
    c = input_shape[0]
    feats: list[nn.Module] = [
        nn.Conv2d(c, 8, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    ]
    n = _flat_features(feats, input_shape, "lenet5")
    return nn.Sequential(
        *feats,
        nn.Linear(n, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, classes),
    )


def _lenet300(input_shape: Shape, classes: int) -> nn.Sequential:
    n = math.prod(input_shape)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(n, 300),
        nn.ReLU(),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.Linear(100, classes),
    )


def _har_cnn1d(input_shape: Shape, classes: int) -> nn.Sequential:
    c = input_shape[0]
    feats: list[nn.Module] = [
        nn.Conv1d(c, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(16, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(32, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(4),
        nn.Flatten(),
    ]
    n = _flat_features(feats, input_shape, "har-cnn1d")
    return nn.Sequential(*feats, nn.Linear(n, 64), nn.ReLU(), nn.Linear(64, classes))


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry("mlp", "digits", "MLP in-128-64-classes (Flatten first)", 0, _mlp),
        ZooEntry(
            "cnn",
            "digits",
            "conv 8@3x3 (pad 1), relu, maxpool 2, conv 16@3x3 (pad 1), relu, flatten, linear",
            2,
            _cnn,
        ),
        ZooEntry(
            "lenet5",
            "mnist",
            "LeNet-5 style: conv 8@5x5 (pad 2), pool, conv 16@5x5, pool, fc 128, fc 64, fc classes",
            2,
            _lenet5,
        ),
        ZooEntry("lenet300", "mnist", "LeNet-300-100: MLP in-300-100-classes", 0, _lenet300),
        ZooEntry(
            "har-cnn1d",
            "har",
            "1-D CNN: conv 16@5, pool 2, conv 32@5, pool 2, conv 32@5, pool 4, fc 64, fc classes",
            1,
            _har_cnn1d,
        ),
    )
}


def list_models() -> list[str]:
    return list(ZOO)


def build_model(name: str, input_shape: Shape, num_classes: int, seed: int = 0) -> nn.Sequential:
    """Build zoo model ``name`` for inputs shaped ``input_shape`` (without the batch axis).

    Weights are initialised from ``seed`` without touching the global torch RNG: same seed, same weights.
    """
    try:
        entry = ZOO[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; the zoo has: {', '.join(ZOO)}") from None
    shape = tuple(int(d) for d in input_shape)
    if any(d <= 0 for d in shape) or not shape:
        raise ModelError(f"model {name!r}: input shape {shape} must be non-empty with positive sizes")
    if entry.dims and len(shape) != entry.dims + 1:
        layout = "(C, H, W)" if entry.dims == 2 else "(C, L)"
        raise ModelError(
            f"model {name!r} takes {layout} inputs but the dataset's samples have shape {shape}; "
            f"choose a model for this data (the zoo has: {', '.join(ZOO)})"
        )
    if num_classes < 2:
        raise ModelError(f"model {name!r}: need at least 2 classes, got {num_classes}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = entry.build(shape, int(num_classes))
    return model


def models(dataset: str | None = None, path=None, seed: int = 0) -> dict:
    """What the ``models`` verb shows: each zoo model with its parameter count for its own dataset's shape,
    or for ``dataset`` (loaded from ``path`` where needed) if given. Models that do not fit that dataset's
    shape are listed with the reason instead of a count."""
    from batteryless.datasets import dataset_info, load_dataset

    target = None
    if dataset is not None:
        ds = load_dataset(dataset, path, seed)
        target = (ds.input_shape, ds.num_classes)
    rows = []
    for e in ZOO.values():
        if target is None:
            info = dataset_info(e.dataset)
            shape, classes = info.input_shape, info.num_classes
        else:
            shape, classes = target
        row = {"name": e.name, "dataset": e.dataset, "description": e.description, "params": None}
        try:
            net = build_model(e.name, shape, classes, seed)  # type: ignore[arg-type]
            row["params"] = sum(p.numel() for p in net.parameters())
        except ModelError as err:
            row["note"] = str(err)
        rows.append(row)
    return {"models": rows}
