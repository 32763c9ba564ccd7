"""Supported-layer check and BatchNorm folding.

The toolchain compiles a chain of layers: an ``nn.Sequential`` (nested Sequentials are flattened) of
Linear, Conv1d/2d, ReLU, MaxPool1d/2d, AvgPool1d/2d, Flatten and BatchNorm1d/2d, channels-first. Dropout
and Identity are accepted and dropped (they do nothing at inference). Anything else, and any container
with its own ``forward``, is refused with the layer's path and type.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from batteryless.errors import ModelError

SUPPORTED_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.ReLU,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.Flatten,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
)
NO_OP_LAYERS: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Identity)
_SUPPORTED_NAMES = "Linear, Conv1d, Conv2d, ReLU, MaxPool1d/2d, AvgPool1d/2d, Flatten, BatchNorm1d/2d"


def _path(prefix: str) -> str:
    return prefix or "<model>"


def _ones(v) -> bool:
    return all(int(d) == 1 for d in (v if isinstance(v, tuple | list) else (v,)))


def _zeros(v) -> bool:
    return all(int(d) == 0 for d in (v if isinstance(v, tuple | list) else (v,)))


def _layer_problem(m: nn.Module) -> str | None:
    """Why a supported layer type is still not compilable with these settings (None if it is)."""
    if isinstance(m, nn.Conv1d | nn.Conv2d):
        if isinstance(m.padding, str):
            return f"padding={m.padding!r} (give explicit padding sizes)"
        if m.groups != 1:
            return f"groups={m.groups} (only groups=1)"
        if not _ones(m.dilation):
            return f"dilation={m.dilation} (only 1)"
        if m.padding_mode != "zeros":
            return f"padding_mode={m.padding_mode!r} (only 'zeros')"
    elif isinstance(m, nn.MaxPool1d | nn.MaxPool2d):
        if not _zeros(m.padding) or m.ceil_mode or not _ones(m.dilation) or m.return_indices:
            return "padding, ceil_mode, dilation and return_indices must be left at their defaults"
    elif isinstance(m, nn.AvgPool1d | nn.AvgPool2d):
        if not _zeros(m.padding) or m.ceil_mode or getattr(m, "divisor_override", None) is not None:
            return "padding, ceil_mode and divisor_override must be left at their defaults"
    elif isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            return f"Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}) (only start_dim=1, end_dim=-1)"
    elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
        if not m.track_running_stats or m.running_mean is None or m.running_var is None:
            return "track_running_stats=False (folding needs running statistics)"
    return None


def _walk(module: nn.Module, prefix: str, problems: list[str], leaves: list[tuple[str, nn.Module]]) -> None:
    if type(module) is nn.Sequential:
        for name, child in module.named_children():
            _walk(child, f"{prefix}.{name}" if prefix else name, problems, leaves)
        return
    kind = type(module).__name__
    if (
        isinstance(module, SUPPORTED_LAYERS + NO_OP_LAYERS)
        and type(module) in SUPPORTED_LAYERS + NO_OP_LAYERS
    ):
        why = _layer_problem(module)
        if why:
            problems.append(f"{_path(prefix)} ({kind}): {why}")
        leaves.append((prefix, module))
        return
    if any(True for _ in module.children()):
        problems.append(
            f"{_path(prefix)} ({kind}): a container with its own forward(); rewrite it as nn.Sequential "
            "of supported layers"
        )
    else:
        problems.append(f"{_path(prefix)} ({kind}): unsupported layer type")


def _describe(shape: tuple[int, ...]) -> str:
    return str(tuple(int(d) for d in shape))


def _expects(m: nn.Module, x: torch.Tensor) -> str | None:
    """Why leaf ``m`` cannot take a batch ``x`` (batch axis first), or None. Checked before calling the
    layer: torch would accept some mismatches silently (a Conv2d takes an unbatched (C, H, W) input, a
    Linear works on the last axis of a feature map) and report others as a bare matrix error."""
    per = _describe(tuple(x.shape[1:]))
    if isinstance(m, nn.Linear):
        if x.dim() != 2:
            return f"gets a feature map of shape {per}; a Linear needs a flat vector (add nn.Flatten() first)"
        if x.shape[1] != m.in_features:
            return f"expects {m.in_features} input features (in_features) but gets input of shape {per}"
    elif isinstance(m, nn.Conv1d | nn.Conv2d | nn.MaxPool1d | nn.MaxPool2d | nn.AvgPool1d | nn.AvgPool2d):
        dims = 1 if isinstance(m, nn.Conv1d | nn.MaxPool1d | nn.AvgPool1d) else 2
        layout = "(C, L)" if dims == 1 else "(C, H, W)"
        if x.dim() != dims + 2:
            return f"needs {layout} inputs but gets shape {per}"
        if isinstance(m, nn.Conv1d | nn.Conv2d) and x.shape[1] != m.in_channels:
            return f"expects {m.in_channels} input channels but gets {x.shape[1]} (input shape {per})"
    elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
        if x.dim() < 2 or x.shape[1] != m.num_features:
            return f"normalises {m.num_features} features but gets shape {per}"
    return None


def check_supported(
    module: nn.Module,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
) -> None:
    """Raise ModelError listing every layer the toolchain cannot compile (path and type).

    With ``input_shape`` (no batch axis) a zero input is also run through the model, layer by layer, so a
    shape mismatch is reported in one line with the layer and both shapes before any training starts.
    With ``num_classes`` the output must give one logit per class.
    """
    if not isinstance(module, nn.Module):
        raise ModelError(f"expected a torch nn.Module, got {type(module).__name__}")
    problems: list[str] = []
    leaves: list[tuple[str, nn.Module]] = []
    _walk(module, "", problems, leaves)
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise ModelError(
            f"model has layers batteryless cannot compile: {shown}. Supported: {_SUPPORTED_NAMES}"
        )
    if not any(isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d) for _, m in leaves):
        raise ModelError("model has no Linear or Conv layer: nothing to compile")
    if input_shape is None:
        return
    # dtype only here: fold_batchnorm also calls this check, and float64 folding is legitimate there
    for path, m in leaves:
        for pname, p in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)):
            if p.is_floating_point() and p.dtype != torch.float32:
                raise ModelError(
                    f"layer {_path(path)} ({type(m).__name__}) has {pname} of dtype "
                    f"{str(p.dtype).removeprefix('torch.')}; the toolchain trains and quantises float32 "
                    "models (convert it with model.float())"
                )
    shape = tuple(int(d) for d in input_shape)
    x = torch.zeros(1, *shape)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for path, m in leaves:
                why = _expects(m, x)
                if why is None:
                    try:
                        x = m(x)
                        continue
                    except RuntimeError as err:
                        why = (
                            f"cannot take input of shape {_describe(tuple(x.shape[1:]))}: "
                            + (str(err).splitlines()[0])
                        )
                raise ModelError(
                    f"layer {_path(path)} ({type(m).__name__}) {why} (model input shape {_describe(shape)})"
                )
    finally:
        module.train(was_training)
    if x.dim() != 2:
        raise ModelError(
            f"model output has shape {_describe(tuple(x.shape[1:]))} per sample; it must end in a Linear "
            "giving one logit per class (add Flatten before the classifier)"
        )
    if num_classes is not None and x.shape[1] != num_classes:
        last = next((p for p, m in reversed(leaves) if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)), "")
        extra = (
            " (two classes need two outputs: the toolchain takes the argmax of the logits)"
            if (x.shape[1] == 1)
            else ""
        )
        raise ModelError(
            f"model gives {x.shape[1]} output{'s' if x.shape[1] != 1 else ''} per sample (last layer "
            f"{_path(last)}) but the dataset has {num_classes} classes; the last layer needs one output per "
            f"class{extra}"
        )


def fold_batchnorm(model: nn.Module) -> nn.Sequential:
    """A new flat Sequential with every BatchNorm folded into the Conv/Linear right before it.

    Dropout/Identity are dropped. The input model is not modified. The result computes in eval mode what
    ``model.eval()`` computes (BatchNorm with its running statistics).
    """
    check_supported(model)
    leaves: list[tuple[str, nn.Module]] = []
    _walk(model, "", [], leaves)
    out: list[nn.Module] = []
    prev_path = ""
    for path, m in leaves:
        if isinstance(m, NO_OP_LAYERS):
            continue
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            prev = out[-1] if out else None
            ok = (
                isinstance(m, nn.BatchNorm2d)
                and isinstance(prev, nn.Conv2d)
                or isinstance(m, nn.BatchNorm1d)
                and isinstance(prev, nn.Linear | nn.Conv1d)
            )
            if not ok:
                after = (
                    f"{_path(prev_path)} ({type(prev).__name__})" if prev is not None else "the model input"
                )
                raise ModelError(
                    f"{_path(path)} ({type(m).__name__}) follows {after}; BatchNorm can only be folded into "
                    "the Conv/Linear right before it (BatchNorm2d after Conv2d, BatchNorm1d after Linear or "
                    "Conv1d)"
                )
            n_out = prev.out_features if isinstance(prev, nn.Linear) else prev.out_channels
            if m.num_features != n_out:
                raise ModelError(
                    f"{_path(path)} ({type(m).__name__}) has {m.num_features} features but "
                    f"{_path(prev_path)} produces {n_out}"
                )
            out[-1] = _fold(prev, m)
            continue
        out.append(copy.deepcopy(m))
        prev_path = path
    folded = nn.Sequential(*out)
    folded.train(model.training)
    return folded


def _fold(layer: nn.Linear | nn.Conv1d | nn.Conv2d, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> nn.Module:
    with torch.no_grad():
        var = bn.running_var.double()
        mean = bn.running_mean.double()
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
        scale = gamma / torch.sqrt(var + bn.eps)
        w = layer.weight.double()
        b = layer.bias.double() if layer.bias is not None else torch.zeros_like(var)
        new = copy.deepcopy(layer)
        if new.bias is None:
            new.bias = nn.Parameter(torch.zeros(var.shape[0], dtype=layer.weight.dtype))
        shape = (-1,) + (1,) * (w.dim() - 1)
        new.weight.copy_((w * scale.reshape(shape)).to(layer.weight.dtype))
        new.bias.copy_(((b - mean) * scale + beta).to(layer.weight.dtype))
    return new
