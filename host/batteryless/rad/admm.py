"""ADMM toward the block-circulant + fixed-point constraint set, then hard projection and retraining.

minimise  f(W) + Σ_l ρ/2 ‖W_l − Z_l + U_l‖²   (Zhang et al. ECCV 2018; ADMM-NN, REFERENCE.md §4)
  W-step: a few epochs of SGD/Adam on the augmented loss
  Z-step: Z_l ← Π_S(W_l + U_l) — nearest block-circulant matrix (average each wrapped diagonal), then its
          defining vectors rounded to the fixed-point grid; optionally the smallest blocks pruned
  U-step: U_l ← U_l + W_l − Z_l ;  ρ ← ρ·growth
Afterwards every target layer is replaced by its projection in the circulant parameterisation and retrained
with fake quantisation (QAT), pruned blocks held at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from batteryless.models.train import fit
from batteryless.progress import ProgressFn, report
from batteryless.rad.circulant import (
    BlockCirculantConv,
    BlockCirculantLinear,
    apply_block_mask,
    expand_blocks,
    project_dense,
    prune_mask,
    to_block_circulant,
)
from batteryless.rad.quantize import add_fake_quant, weight_frac


@dataclass
class AdmmConfig:
    rounds: int = 12
    epochs_per_round: int = 2
    min_steps_per_round: int = 80  # W-step length floor: small datasets get more epochs per round
    rho: float = 0.1
    rho_growth: float = 1.5
    lr: float = 3e-3
    retrain_epochs: int = 40
    weight_bits: int = 16
    prune_ratio: float = 0.0  # fraction of circulant blocks removed per layer (structured pruning)
    batch_size: int = 64
    cosine_retrain: bool = True  # cosine-annealed learning rate while retraining


@dataclass
class AdmmHistory:
    rounds: list[dict] = field(default_factory=list)  # per round: rho, residual per layer, train loss


def project(weight: torch.Tensor, block: int, bits: int, prune_ratio: float = 0.0) -> torch.Tensor:
    """Π_S: dense weight → nearest block-circulant (quantised, optionally block-pruned), as a dense tensor."""
    rows, cols = weight.shape[:2]
    w = project_dense(weight, block)
    f = weight_frac(w.abs().max().reshape(1).cpu().numpy(), bits)
    lim = 2 ** (bits - 1)
    w = torch.clamp(torch.floor(w * 2.0**f + 0.5), -lim, lim - 1) / 2.0**f
    if prune_ratio > 0:
        w = w * prune_mask(w, prune_ratio).reshape(*w.shape[:2], *([1] * (w.ndim - 2)))
    return expand_blocks(w, rows, cols)


def _prune_chain(model: nn.Sequential, ratio: float, example: torch.Tensor) -> None:
    """Block-prune every circulant layer, first to last, so that a layer keeps no block whose input columns
    the previous layer's pruning left constant (every block row feeding them pruned: only its bias
    reaches them). Pruned independently, the digits CNN at 87.5 % kept conv2's first block row and two
    classifier blocks, one of which read a channel of the pruned row (48 % accurate in a short run, 10.3 %
    in the benchmark's)."""
    from batteryless.eve.train import module_feeds  # late: eve.train imports rad

    kinds = (BlockCirculantLinear, BlockCirculantConv, nn.Linear, nn.Conv1d, nn.Conv2d)
    layers = [m for m in model if isinstance(m, kinds)]
    feeds = module_feeds(model, example)  # per weight layer in order (dense ones too)
    prev_dead = None  # bool [p_prev] of the previous weight layer's fully pruned block rows
    for layer, feed in zip(layers, feeds, strict=True):
        if not isinstance(layer, BlockCirculantLinear | BlockCirculantConv):
            prev_dead = None
            continue
        dead = None
        if feed is not None and prev_dead is not None and prev_dead.any():
            # a column is dead when every row feeding it is pruned
            cols = torch.as_tensor(~(feed & ~prev_dead[:, None]).any(axis=0))
            dead = cols[None, :].expand(layer.weight.shape[0], -1)
        mask = prune_mask(layer.weight, ratio, dead)
        apply_block_mask(layer, mask)
        prev_dead = (mask == 0).all(dim=1).numpy()


def admm_circulant(
    model: nn.Sequential,
    blocks: dict[int, int],
    x: np.ndarray,
    y: np.ndarray,
    cfg: AdmmConfig,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> tuple[nn.Sequential, AdmmHistory]:
    """ADMM on a trained dense Sequential. ``blocks`` maps module index → block size (> 1 only).

    Returns a new Sequential with block-circulant layers, retrained with fake quantisation.
    """
    targets = {i: k for i, k in blocks.items() if k > 1}
    hist = AdmmHistory()
    params = {i: model[i].weight for i in targets}
    with torch.no_grad():
        z = {i: project(params[i].detach(), k, cfg.weight_bits, cfg.prune_ratio) for i, k in targets.items()}
        u = {i: torch.zeros_like(params[i]) for i in targets}
    rho = cfg.rho

    def penalty() -> torch.Tensor:
        total = torch.zeros(())
        for i in targets:
            total = total + (rho / 2) * (params[i] - z[i] + u[i]).pow(2).sum()
        return total

    batches = max(1, -(-len(x) // cfg.batch_size))
    epochs_per_round = max(cfg.epochs_per_round, -(-cfg.min_steps_per_round // batches))
    for r in range(cfg.rounds):
        loss = fit(
            model,
            x,
            y,
            epochs=epochs_per_round,
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            seed=seed + 1000 + r,
            penalty=penalty,
        )
        with torch.no_grad():
            residual = {}
            for i, k in targets.items():
                w = params[i].detach()
                z[i] = project(w + u[i], k, cfg.weight_bits, cfg.prune_ratio)
                u[i] = u[i] + w - z[i]
                residual[str(i)] = float((w - z[i]).norm() / w.norm().clamp(min=1e-12))
        hist.rounds.append({"round": r + 1, "rho": rho, "loss": loss, "residual": residual})
        rho *= cfg.rho_growth
        report(progress, "ADMM rounds", r + 1, cfg.rounds)

    # hard projection into the circulant parameterisation, then QAT retraining with pruned blocks held at 0
    new = nn.Sequential(
        *[to_block_circulant(m, targets[i]) if i in targets else m for i, m in enumerate(model)]
    )
    if cfg.prune_ratio > 0:
        _prune_chain(new, cfg.prune_ratio, torch.as_tensor(x[:1], dtype=torch.float32))
    add_fake_quant(new, cfg.weight_bits)
    fit(
        new,
        x,
        y,
        epochs=cfg.retrain_epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=seed + 2000,
        progress=progress,
        task="QAT retraining",
        cosine=cfg.cosine_retrain,
    )
    return new, hist
