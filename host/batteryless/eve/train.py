"""Joint training of nested modes (``compress --modes K``).

After RAD's ADMM (block-circulant + fixed point) and QAT retraining of the full model, every circulant layer's
blocks are ranked by weight norm once (Once-for-All's importance sort: channels/blocks are ordered so that a
sub-network is a prefix), and mode i keeps the first ``keep[i]`` of them. With width (the default), mode i
also computes only ``width[i]`` of the output block rows of a layer that feeds another circulant layer, and
that layer reads only those rows (``eve.modes.nested_orders``): the smaller modes are narrower networks, not
only sparser ones. Then the shared weights are
trained with the sandwich rule of slimmable networks: every step runs the largest mode on the labels, the
smallest mode and one random middle mode on the largest mode's detached soft predictions (in-place
distillation), and sums the losses. Fake quantisation stays on throughout (QAT), on the full weights' grid,
so the one stored integer copy serves every mode.

Dense (block 1) layers narrow too: a mode computes the first ``width[i]`` of a dense layer's output rows
(channels) where the next weight layer reads them (e.g. the digits CNN's first conv, which stays dense on one
input channel, and every layer after it shrinks with it). Their rows are not re-sorted (a dense layer
feeding a circulant one would have to move whole block columns of it); sandwich training puts the
importance into the prefix. Rows a mode drops are 0 in training as in the spec (bias included).

Not done here (yet): ADMM with the nested block sparsity as part of its constraint set (the ranking comes
after ADMM).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.utils.parametrize as parametrize
from torch import nn
from torch.nn import functional as F

from batteryless.errors import UsageError
from batteryless.eve.modes import MAX_MODES, default_keep, feed_matrix, nested_orders, row_order
from batteryless.progress import ProgressFn, report
from batteryless.rad.circulant import BlockCirculantConv, BlockCirculantLinear


@dataclass
class EveConfig:
    keep: list[float] | None = None  # block fraction per mode, largest first; None: default_keep(K, smallest)
    smallest: float = 0.25
    # sandwich epochs and learning rate: the small end needs the optimisation budget (digits MLP, benchmark
    # ladder, seed 0, modes 0/1/2: 40 epochs at 1e-3 96.10/91.09/65.18 %, 80 at 5e-3 96.10/93.04/81.89 %;
    # CNN 93.87/89.97/75.49 → 94.15/90.81/84.12 %; benchmarks/eve_mode0.py, docs/eve.md)
    epochs: int = 80
    lr: float = 5e-3
    batch_size: int = 64
    temperature: float = 1.0  # in-place distillation softmax temperature
    # the last circulant layer (the classifier) keeps every block in every mode: on the digits MLP it is 8 %
    # of the MACs, and shrinking it with the rest cost the smallest mode 30 points (50.7 % vs 81.1 %)
    full_last: bool = True
    # fraction of output block rows each mode computes in every circulant layer that feeds another circulant
    # layer (largest first; None: geometric like ``keep``; all 1: no width). A narrow mode also skips the
    # next layer's input blocks and transforms, which block sparsity alone cannot: on the FFT path the
    # transforms do not shrink with it (digits MLP, keep 1/0.5/0.25: 1.62× fewer predicted cycles without
    # width, 3.50× with width 1/0.5/0.25)
    width: list[float] | None = None
    # per weight layer name (e.g. "conv1"): its own width fractions, overriding ``width`` for that layer (the
    # digits CNN's dense conv1 is a third of mode 0's cost, and its width costs the most accuracy)
    layer_width: dict[str, list[float]] = field(default_factory=dict)
    # each mode but the largest trains its own bias of every circulant layer (stored as the mode's ``bias``
    # override: 4 bytes per output row and mode)
    # True / "all": every circulant layer; "last": the classifier only (4 bytes per class and mode)
    mode_bias: bool | str = False
    # weight of the largest mode's loss in every sandwich step (the students' distillation terms weigh 1),
    # and epochs after the sandwich that train mode 0 alone at ``lr`` × ``mode0_lr`` (None: a quarter of
    # ``epochs``; the smaller modes read the same weights and drift with them, the small learning rate keeps
    # that small). Both protect mode 0, the one compared with the single-mode model: digits CNN (benchmark
    # ladder), seeds 0/1/2, mode 0 93.59/94.71/92.76 % → 93.87/94.71/93.31 % (single-mode 94.71/95.26/93.59),
    # smallest mode 74.93/65.46/70.47 → 75.49/62.95/68.52 % (benchmarks/eve_mode0.py, docs/eve.md)
    mode0_weight: float = 2.0
    mode0_epochs: int | None = None
    mode0_lr: float = 0.1
    # the smaller modes' side of the sandwich: the smallest mode's loss weight, and the share of the
    # students' loss taken from the labels instead of mode 0's soft outputs (0: distillation only)
    small_weight: float = 1.0
    label_mix: float = 0.0
    # epochs after everything else that train only the smaller modes' own biases (``mode_bias``), shared
    # weights frozen: mode 0 cannot move, the small modes adapt to the final weights
    bias_epochs: int = 0

    def mode0_phase(self) -> int:
        """Epochs of the mode-0-only phase."""
        return self.epochs // 4 if self.mode0_epochs is None else self.mode0_epochs


class ModeMask(nn.Module):
    """Parametrization: multiplies each circulant block by the current mode's 0/1 mask (set between steps)."""

    def __init__(self, p: int, q: int):
        super().__init__()
        self.register_buffer("mask", torch.ones(p, q))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask.reshape(*self.mask.shape, *([1] * (w.ndim - 2)))


class ModeBias(nn.Module):
    """Parametrization: the layer's bias plus the current mode's trained offset (mode 0's stays 0)."""

    def __init__(self, modes: int, rows: int):
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(modes, rows))
        self.mode = 0

    def forward(self, b: torch.Tensor) -> torch.Tensor:
        return b if self.mode == 0 else b + self.delta[self.mode]


@dataclass
class ModeSet:
    """The circulant layers of a model, their block orders and every mode's masks."""

    layers: list[nn.Module]
    orders: list[np.ndarray]
    keep: list[float]
    masks: list[list[torch.Tensor]] = field(default_factory=list)  # [mode][layer] → [p, q]
    layer_keep: list[list[float]] = field(default_factory=list)  # [layer] → keep per mode
    layer_rows: list[list[int]] = field(default_factory=list)  # [layer] → output block rows per mode
    # [mode][layer] → float [out rows] 0/1 of the rows the mode computes (None: all); applied to the layer's
    # output by a forward hook, so a dropped row is 0 as in the spec (spec.py: bias included)
    row_masks: list[list[torch.Tensor | None]] = field(default_factory=list)
    current: list[int] = field(default_factory=lambda: [0])

    def set(self, mode: int) -> None:
        self.current[0] = mode
        for layer, m in zip(self.layers, self.masks[mode], strict=True):
            # rebind, not copy_: the previous mode's forward still needs its mask for backward
            _mode_mask(layer).mask = m
            if parametrize.is_parametrized(layer, "bias"):
                layer.parametrizations["bias"][0].mode = mode

    def mode_biases(self, mode: int) -> list[np.ndarray | None]:
        """Per layer: the bias ``mode`` runs with (float), or None where it is the layer's own."""
        out = []
        for layer in self.layers:
            if not parametrize.is_parametrized(layer, "bias") or mode == 0:
                out.append(None)
                continue
            pm = layer.parametrizations["bias"]
            with torch.no_grad():
                out.append((pm.original + pm[0].delta[mode]).detach().double().numpy())
        return out


def _mode_mask(layer: nn.Module) -> ModeMask:
    for pm in layer.parametrizations["weight"]:
        if isinstance(pm, ModeMask):
            return pm
    raise AssertionError("layer has no ModeMask")


_CHANNEL_PRESERVING = (
    nn.ReLU,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.Dropout,
    nn.Identity,
)


def _dims(m: nn.Module) -> tuple[int, int, int]:
    """(output rows, input columns, block) of a weight module (block 1: dense)."""
    if isinstance(m, BlockCirculantLinear | BlockCirculantConv):
        return m.out_dim, m.in_dim, m.block
    if isinstance(m, nn.Linear):
        return m.out_features, m.in_features, 1
    return m.out_channels, m.in_channels, 1


_WEIGHT = (BlockCirculantLinear, BlockCirculantConv, nn.Linear, nn.Conv1d, nn.Conv2d)


def module_feeds(model: nn.Sequential, example: torch.Tensor | None) -> list[np.ndarray | None]:
    """Per weight layer (dense ones too): the feed matrix from the weight layer before it
    (``eve.modes.feed_matrix``; the same rule as ``eve.modes.artifact_feeds`` on the artifact), or None."""
    shapes: dict[int, tuple[int, ...]] = {}
    if example is not None:
        hooks = [
            m.register_forward_pre_hook(lambda _m, a, i=i: shapes.__setitem__(i, tuple(a[0].shape)))
            for i, m in enumerate(model)
        ]
        try:
            with torch.no_grad():
                model(example[:1])
        finally:
            for h in hooks:
                h.remove()
    out: list[np.ndarray | None] = []
    prev, spatial, linked = None, 1, False
    for i, m in enumerate(model):
        if isinstance(m, _WEIGHT):
            feed = None
            if linked and prev is not None:
                prows, _, pk = _dims(prev)
                _, cols, k = _dims(m)
                feed = feed_matrix(prows, pk, cols, k, spatial)
            out.append(feed)
            prev, spatial, linked = m, 1, True
        elif isinstance(m, nn.Flatten) and i in shapes:
            spatial *= int(np.prod(shapes[i][2:])) if len(shapes[i]) > 2 else 1
        elif not isinstance(m, _CHANNEL_PRESERVING):
            linked = False
    return out


def _weights(layers: list[nn.Module]) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    weights, prunes = [], []
    for layer in layers:
        with torch.no_grad():
            weights.append(layer.weight.detach().numpy())  # through the parametrizations (pruning, quant)
        prune = getattr(layer, "block_mask", None)
        prunes.append(None if prune is None else prune.numpy())
    return weights, prunes


def _column_groups(feed: np.ndarray) -> list[np.ndarray] | None:
    """Per row of a feed matrix, the columns it feeds, if every column is fed by exactly one row and every
    row feeds a run of the same length (then moving rows moves whole block columns); else None."""
    if not (feed.sum(axis=0) == 1).all():
        return None
    groups = [np.flatnonzero(r) for r in feed]
    if len({len(g) for g in groups}) != 1 or any(len(g) and g[-1] - g[0] + 1 != len(g) for g in groups):
        return None
    return groups


@torch.no_grad()
def sort_rows(layers: list[nn.Module], feeds: list[np.ndarray | None]) -> None:
    """Reorder the output block rows of every circulant layer feeding another one into importance order
    (``eve.modes.row_order``), and the next layer's input block columns with them: the network computes
    the same function, and a narrow mode is then a prefix of rows (``out_blocks``), like Once-for-All's
    channel sort. Skipped for a layer whose rows cannot move as whole blocks (a partial last block row,
    columns shared between rows) or that is pruned (its masks would have to move too)."""
    weights, prunes = _weights(layers)
    ranks = row_order(weights, prunes, feeds)
    for li in range(len(layers) - 1):
        layer, nxt, feed = layers[li], layers[li + 1], feeds[li + 1]
        groups = None if feed is None else _column_groups(feed)
        circ = (BlockCirculantLinear, BlockCirculantConv)
        if (
            groups is None
            or not isinstance(layer, circ)
            or not isinstance(nxt, circ)
            or layer.out_dim % layer.block
            or prunes[li] is not None
            or prunes[li + 1] is not None
        ):
            continue
        perm = torch.as_tensor(ranks[li].astype(np.int64))
        cols = torch.as_tensor(np.concatenate([groups[r] for r in ranks[li]]).astype(np.int64))
        w = _raw_weight(layer)
        w.copy_(w[perm])
        if layer.bias is not None:
            layer.bias.copy_(layer.bias.reshape(-1, layer.block)[perm].reshape(-1))
        wn = _raw_weight(nxt)
        wn.copy_(wn[:, cols])


def _raw_weight(layer: nn.Module) -> torch.Tensor:
    """The trained tensor under any parametrizations (fake quant is per tensor: permutation-invariant)."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations["weight"].original
    return layer.weight


def attach_modes(
    model: nn.Sequential,
    keep: list[float],
    full_last: bool = False,
    width: list[float] | None = None,
    example: torch.Tensor | None = None,
    mode_bias: bool | str = False,
    layer_width: dict[str, list[float]] | None = None,
) -> ModeSet:
    """Order each circulant layer's blocks (``eve.modes.nested_orders``), build every mode's prefix mask and
    attach a ModeMask (mode 0).

    ``full_last``: the last weight layer keeps all its blocks in every mode (that its input columns may
    shrink with the previous layer's width is separate). ``width``: see ``EveConfig.width``; ``example``
    (one input) lets a Flatten between two weight layers be followed (else they are not linked). Dense
    (block 1) layers take part with their width only (every weight of a kept row; ``orders`` None)."""
    layers = [m for m in model if isinstance(m, _WEIGHT)]
    if not any(isinstance(m, BlockCirculantLinear | BlockCirculantConv) for m in layers):
        raise UsageError("--modes needs at least one block-circulant layer (every layer stayed dense)")
    dense = [_dims(m)[2] == 1 for m in layers]
    ms = ModeSet(layers=layers, orders=[], keep=keep, masks=[[] for _ in keep])
    last = len(layers) - 1
    lkeep = [
        [1.0] * len(keep) if dense[li] or (full_last and li == last) else list(keep)
        for li in range(len(layers))
    ]
    lwidth = [list(width) if width else [1.0] * len(keep) for _ in layers]
    if layer_width:
        names = _layer_names(layers)
        unknown = set(layer_width) - set(names)
        if unknown:
            raise UsageError(
                f"no weight layer named {', '.join(sorted(unknown))} (layers: {', '.join(names)})"
            )
        for li, name in enumerate(names):
            if name in layer_width:
                lwidth[li] = _fractions(list(layer_width[name]), len(keep), f"width of {name}", "fractions")
    feeds = module_feeds(model, example) if width or layer_width else [None] * len(layers)
    if width or layer_width:
        sort_rows(layers, feeds)
    weights, prunes = _weights(layers)
    orders, counts, rows = nested_orders(weights, prunes, feeds, lkeep, lwidth, dense)
    ms.layer_rows = rows
    ms.row_masks = [[] for _ in keep]
    for li, (layer, w, prune, order, n_mode) in enumerate(
        zip(layers, weights, prunes, orders, counts, strict=True)
    ):
        p, q = w.shape[:2]
        out_rows, _, k = _dims(layer)
        stored = int((prune != 0).sum()) if prune is not None else p * q
        ms.orders.append(order)
        # the fraction that reproduces the prefix length in eve.modes.prefix_lengths (round(f·stored) = n)
        ms.layer_keep.append([1.0] * len(keep) if n_mode is None else [n / stored for n in n_mode])
        for mi in range(len(keep)):
            mask = torch.zeros(p * q)
            if order is None:  # dense: every weight of the kept rows
                mask.reshape(p, q)[: rows[li][mi], :] = 1.0
            else:
                mask[torch.as_tensor(order[: n_mode[mi]].astype(np.int64))] = 1.0
            ms.masks[mi].append(mask.reshape(p, q))
            kept = min(rows[li][mi] * k, out_rows)
            rm = None
            if kept < out_rows:
                rm = torch.zeros(out_rows)
                rm[:kept] = 1.0
            ms.row_masks[mi].append(rm)
        parametrize.register_parametrization(layer, "weight", ModeMask(p, q))
        if _biased(mode_bias, li, last) and layer.bias is not None and not dense[li]:
            parametrize.register_parametrization(layer, "bias", ModeBias(len(keep), layer.bias.shape[0]))
        if any(ms.row_masks[mi][li] is not None for mi in range(len(keep))):
            layer.register_forward_hook(_row_hook(ms, li))
    ms.set(0)
    return ms


def _biased(mode_bias: bool | str, li: int, last: int) -> bool:
    """Whether weight layer ``li`` gets per-mode biases under ``EveConfig.mode_bias``."""
    if mode_bias in (False, None, "", "none"):
        return False
    return mode_bias in (True, "all") or (mode_bias == "last" and li == last)


def _layer_names(layers: list[nn.Module]) -> list[str]:
    """The artifact's names of the weight layers (fc1, fc2, conv1, …: ``rad.compress.weight_layer_names``
    on the model before it became circulant)."""
    counts = {"fc": 0, "conv": 0}
    out = []
    for m in layers:
        kind = "fc" if isinstance(m, nn.Linear | BlockCirculantLinear) else "conv"
        counts[kind] += 1
        out.append(f"{kind}{counts[kind]}")
    return out


def _row_hook(ms: ModeSet, li: int):
    """Forward hook: the rows the current mode drops are 0 (the spec zeroes them after requantisation)."""

    def hook(_m, _args, out):
        rm = ms.row_masks[ms.current[0]][li]
        if rm is None:
            return out
        return out * rm.reshape(1, -1, *([1] * (out.ndim - 2)))

    return hook


def _fractions(values: list[float], modes: int, flag: str, what: str) -> list[float]:
    if len(values) != modes:
        raise UsageError(f"{modes} modes need {modes} {what} ({flag}), got {len(values)}")
    rising = any(b > a for a, b in zip(values, values[1:], strict=False))
    if values[0] != 1.0 or rising or any(not 0 < f <= 1 for f in values):
        raise UsageError(f"{flag} must start at 1 and not increase, each in (0, 1]: {values}")
    return values


def check_modes(modes: int, cfg: EveConfig) -> list[float]:
    """The keep fraction of every mode, or a UsageError naming what is wrong (checked before any training);
    the width fractions (``mode_width``) are checked too."""
    if not 2 <= modes <= MAX_MODES:
        raise UsageError(f"--modes must be 2 … {MAX_MODES} (1 is the plain model), not {modes}")
    keep = list(cfg.keep) if cfg.keep else default_keep(modes, cfg.smallest)
    _fractions(keep, modes, "--mode-keep", "keep fractions")
    mode_width(modes, cfg)
    for name, fr in (cfg.layer_width or {}).items():
        _fractions(list(fr), modes, f"--mode-layer-width {name}", "width fractions")
    if cfg.epochs < 0:
        raise UsageError(f"--mode-epochs must be >= 0, not {cfg.epochs}")
    if not cfg.mode0_weight > 0:
        raise UsageError(f"--mode0-weight must be > 0, not {cfg.mode0_weight}")
    if cfg.mode0_epochs is not None and cfg.mode0_epochs < 0:
        raise UsageError(f"--mode0-epochs must be >= 0, not {cfg.mode0_epochs}")
    if not cfg.lr > 0:
        raise UsageError(f"--mode-lr must be > 0, not {cfg.lr}")
    if cfg.mode_bias not in (True, False, None, "", "none", "all", "last"):
        raise UsageError(f"--mode-bias must be none, all or last, not {cfg.mode_bias!r}")
    if not cfg.small_weight > 0:
        raise UsageError(f"--mode-small-weight must be > 0, not {cfg.small_weight}")
    if not 0 <= cfg.label_mix <= 1:
        raise UsageError(f"--mode-label-mix must be in [0, 1], not {cfg.label_mix}")
    if cfg.bias_epochs < 0:
        raise UsageError(f"--mode-bias-epochs must be >= 0, not {cfg.bias_epochs}")
    if cfg.bias_epochs and cfg.mode_bias in (False, None, "", "none"):
        raise UsageError("--mode-bias-epochs trains the modes' own biases: it needs --mode-bias")
    if not cfg.mode0_lr > 0:
        raise UsageError(f"mode0_lr must be > 0, not {cfg.mode0_lr}")
    return keep


def mode_width(modes: int, cfg: EveConfig) -> list[float]:
    """Width fractions per mode: ``cfg.width``, or the default ladder (geometric from 1 to ``smallest``)."""
    width = list(cfg.width) if cfg.width else default_keep(modes, cfg.smallest)
    return _fractions(width, modes, "--mode-width", "width fractions")


def train_modes(
    model: nn.Sequential,
    x: np.ndarray,
    y: np.ndarray,
    modes: int,
    cfg: EveConfig,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> ModeSet:
    """Sandwich-rule training with in-place distillation; leaves ``model`` in mode 0, eval mode."""
    keep = check_modes(modes, cfg)
    xt = torch.as_tensor(x, dtype=torch.float32)
    ms = attach_modes(
        model, keep, cfg.full_last, mode_width(modes, cfg), xt[:1], cfg.mode_bias, cfg.layer_width
    )
    yt = torch.as_tensor(y, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed + 3000)
    pick = random.Random(seed + 3001)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    t = cfg.temperature
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            ms.set(0)
            big = model(xt[idx])
            loss = F.cross_entropy(big, yt[idx]) * cfg.mode0_weight
            teacher = F.softmax(big.detach() / t, dim=1)
            students = [modes - 1] + ([pick.randrange(1, modes - 1)] if modes > 2 else [])
            for mi in students:
                ms.set(mi)
                loss = loss + _student_loss(model(xt[idx]), teacher, yt[idx], cfg) * (
                    cfg.small_weight if mi == modes - 1 else 1.0
                )
            loss.backward()
            opt.step()
        sched.step()
        report(progress, "EVE sandwich training", epoch + 1, cfg.epochs)
    if cfg.mode0_phase():
        _train_mode0(model, ms, xt, yt, cfg, gen, progress)
    if cfg.bias_epochs:
        _train_biases(model, ms, xt, yt, cfg, gen, progress)
    model.eval()
    ms.set(0)
    return ms


def _student_loss(out: torch.Tensor, teacher: torch.Tensor, y: torch.Tensor, cfg: EveConfig) -> torch.Tensor:
    """A smaller mode's loss: distillation from mode 0's soft outputs, mixed with the labels' by
    ``label_mix``."""
    t = cfg.temperature
    kd = F.kl_div(F.log_softmax(out / t, dim=1), teacher, reduction="batchmean") * t * t
    if not cfg.label_mix:
        return kd
    return (1 - cfg.label_mix) * kd + cfg.label_mix * F.cross_entropy(out, y)


def _train_biases(
    model: nn.Sequential,
    ms: ModeSet,
    xt: torch.Tensor,
    yt: torch.Tensor,
    cfg: EveConfig,
    gen: torch.Generator,
    progress: ProgressFn | None,
) -> None:
    """Train only the smaller modes' bias offsets (``ModeBias.delta``), every shared tensor frozen, on the
    student loss against mode 0 (which these offsets do not touch: its delta is never used)."""
    deltas = [
        layer.parametrizations["bias"][0].delta
        for layer in ms.layers
        if parametrize.is_parametrized(layer, "bias")
    ]
    if not deltas:
        return
    frozen = [p for p in model.parameters() if p.requires_grad and all(p is not d for d in deltas)]
    for p in frozen:
        p.requires_grad_(False)
    opt = torch.optim.Adam(deltas, lr=cfg.lr)
    modes = len(ms.keep)
    try:
        for epoch in range(cfg.bias_epochs):
            order = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(xt), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                opt.zero_grad(set_to_none=True)
                ms.set(0)
                with torch.no_grad():
                    teacher = F.softmax(model(xt[idx]) / cfg.temperature, dim=1)
                loss = torch.zeros(())
                for mi in range(1, modes):
                    ms.set(mi)
                    loss = loss + _student_loss(model(xt[idx]), teacher, yt[idx], cfg)
                loss.backward()
                opt.step()
            report(progress, "EVE per-mode bias tuning", epoch + 1, cfg.bias_epochs)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        ms.set(0)


def _train_mode0(
    model: nn.Sequential,
    ms: ModeSet,
    xt: torch.Tensor,
    yt: torch.Tensor,
    cfg: EveConfig,
    gen: torch.Generator,
    progress: ProgressFn | None,
) -> None:
    """Fine-tune the shared weights on mode 0's loss alone (QAT stays on), at ``lr`` × ``mode0_lr``."""
    ms.set(0)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr * cfg.mode0_lr)
    for epoch in range(cfg.mode0_phase()):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        report(progress, "EVE mode-0 fine-tuning", epoch + 1, cfg.mode0_phase())


@torch.no_grad()
def mode_accuracies(model: nn.Module, ms: ModeSet, x: np.ndarray, y: np.ndarray) -> list[float]:
    """Float (fake-quantised circulant) accuracy of every mode; leaves the model in mode 0."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    out = []
    for mi in range(len(ms.keep)):
        ms.set(mi)
        pred = torch.cat([model(xt[i : i + 512]).argmax(1) for i in range(0, len(xt), 512)])
        out.append(float((pred.numpy() == np.asarray(y)).mean()) if len(y) else float("nan"))
    ms.set(0)
    return out
