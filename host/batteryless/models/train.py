"""Plain seeded float training (Adam, cross-entropy) and evaluation on CPU.

Thread count is the caller's business (``torch.set_num_threads``); with the same seed and thread count the
trained weights are the same.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from batteryless.datasets.base import Dataset
from batteryless.errors import UsageError
from batteryless.progress import ProgressFn, report


def _logits(model: nn.Module, x: np.ndarray, batch_size: int) -> torch.Tensor:
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(model(torch.as_tensor(x[i : i + batch_size], dtype=torch.float32)))
    return torch.cat(outs) if outs else torch.zeros(0)


def evaluate_float(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on float inputs ``x`` and labels ``y``."""
    if len(x) != len(y):
        raise UsageError(f"evaluate: {len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise UsageError("evaluate: no samples")
    was_training = model.training
    model.eval()
    try:
        pred = _logits(model, x, batch_size).argmax(dim=1).numpy()
    finally:
        model.train(was_training)
    return float((pred == np.asarray(y)).mean())


def train_float(
    model: nn.Module,
    dataset: Dataset,
    epochs: int = 30,
    lr: float = 3e-3,
    seed: int = 0,
    progress: ProgressFn | None = None,
    batch_size: int = 64,
    weight_decay: float = 0.0,
) -> tuple[nn.Module, float]:
    """Train ``model`` in place with Adam on ``dataset``'s train split; return (model, test accuracy).

    Mini-batch order comes from a generator seeded with ``seed`` (the global RNG is not touched).
    """
    if epochs < 0:
        raise UsageError(f"epochs must be >= 0, got {epochs}")
    if lr <= 0:
        raise UsageError(f"learning rate must be > 0, got {lr}")
    if batch_size < 1:
        raise UsageError(f"batch size must be >= 1, got {batch_size}")
    x = torch.as_tensor(dataset.x_train, dtype=torch.float32)
    y = torch.as_tensor(dataset.y_train, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    n = len(x)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        report(progress, "float training", epoch + 1, epochs)
    model.eval()
    return model, evaluate_float(model, dataset.x_test, dataset.y_test)
