"""Plain seeded float training (Adam, cross-entropy) and evaluation on CPU.

Thread count is the caller's business (``torch.set_num_threads``); with the same seed and thread count the
trained weights are the same.
"""

from __future__ import annotations

from collections.abc import Callable

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


def fit(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 64,
    seed: int = 0,
    weight_decay: float = 0.0,
    penalty: Callable[[], torch.Tensor] | None = None,
    cosine: bool = False,
    progress: ProgressFn | None = None,
    task: str = "float training",
) -> float:
    """The one training loop: Adam + cross-entropy over mini-batches in a seeded order (the global RNG is
    not touched). ``penalty`` adds a term to every step's loss (ADMM uses it); ``cosine`` anneals the
    learning rate to 0. Leaves the model in eval mode; returns the last epoch's mean loss."""
    if epochs < 0:
        raise UsageError(f"epochs must be >= 0, got {epochs}")
    if lr <= 0:
        raise UsageError(f"learning rate must be > 0, got {lr}")
    if batch_size < 1:
        raise UsageError(f"batch size must be >= 1, got {batch_size}")
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1)) if cosine else None
    loss_fn = nn.CrossEntropyLoss()
    n = len(xt)
    mean = float("nan")
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            if penalty is not None:
                loss = loss + penalty()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        mean = total / max(n, 1)
        if sched is not None:
            sched.step()
        report(progress, task, epoch + 1, epochs)
    model.eval()
    return mean


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
    """Train ``model`` in place on ``dataset``'s train split; return (model, test accuracy)."""
    fit(
        model,
        dataset.x_train,
        dataset.y_train,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        weight_decay=weight_decay,
        progress=progress,
    )
    return model, evaluate_float(model, dataset.x_test, dataset.y_test)
