"""A float ``nn.Sequential`` of supported layers → an equivalent Keras model (channels-last).

Layout rules (PyTorch is channels-first, TFLite channels-last):

- inputs ``(C, H, W)`` become ``(H, W, C)``; inputs ``(C, L)`` become ``(1, L, C)`` (1-D layers run as 2-D
  layers of height 1, so the exported model needs only CONV_2D / *_POOL_2D kernels); ``(N,)`` stays;
- Linear weight ``[out, in]`` → Dense kernel ``[in, out]``; Conv weight ``[O, I, kh, kw]`` (Conv1d
  ``[O, I, k]`` as ``kh = 1``) → ``[kh, kw, I, O]``;
- Flatten of an ``(H, W, C)`` map yields features in HWC order, not PyTorch's CHW order: the permutation is
  carried to the next Dense layer and folded into its kernel rows, so no TRANSPOSE op is emitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from batteryless.errors import ExportError
from batteryless.tflite._tf import tf


@dataclass
class KerasConversion:
    model: Any  # keras.Model
    input_shape: tuple[int, ...]  # PyTorch layout, no batch axis
    keras_input_shape: tuple[int, ...]  # Keras/TFLite layout, no batch axis
    layers: list[str]  # one line per Keras layer, for reports


def keras_input_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(input_shape) == 3:
        c, h, w = input_shape
        return (h, w, c)
    if len(input_shape) == 2:
        c, length = input_shape
        return (1, length, c)
    if len(input_shape) == 1:
        return tuple(input_shape)
    raise ExportError(f"input shape {tuple(input_shape)}: expected (C, H, W), (C, L) or (N,)")


def to_keras_layout(x: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Batch ``(N, *input_shape)`` in PyTorch layout → the Keras/TFLite input layout (float32)."""
    x = np.asarray(x, dtype=np.float32)
    if x.shape[1:] != tuple(input_shape):
        raise ExportError(
            f"input batch has sample shape {x.shape[1:]}, the model expects {tuple(input_shape)}"
        )
    if len(input_shape) == 3:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    if len(input_shape) == 2:
        return np.ascontiguousarray(x.transpose(0, 2, 1)[:, None, :, :])
    return np.ascontiguousarray(x)


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, tuple | list):
        return (int(v[0]), int(v[-1])) if len(v) == 2 else (1, int(v[0]))
    return (int(v), int(v))


def _as2d(v: Any, one_d: bool, fill: int = 1) -> tuple[int, int]:
    """Kernel/stride (fill 1) or padding (fill 0) of a 1-D layer as (fill, v); of a 2-D layer as given."""
    if one_d:
        s = int(v[0]) if isinstance(v, tuple | list) else int(v)
        return (fill, s)
    return _pair(v)


def to_keras(module: nn.Module, input_shape: tuple[int, ...]) -> KerasConversion:
    """Build the Keras model. Raises ExportError naming the layer it cannot convert."""
    from batteryless.models import check_supported, fold_batchnorm

    tf_ = tf()
    keras = tf_.keras
    L = keras.layers
    try:
        check_supported(module, tuple(input_shape))
        seq = fold_batchnorm(module)
    except Exception as err:  # ModelError with the layer path
        raise ExportError(f"cannot export this model: {err}") from None
    in_k = keras_input_shape(tuple(input_shape))
    inp = keras.Input(shape=in_k, batch_size=1, name="input")
    x = inp
    lines: list[str] = []
    # state: a map (torch C, H, W; 1-D as H=1) or a vector of n features with a pending permutation
    if len(input_shape) == 1:
        chw: tuple[int, int, int] | None = None
        n = int(input_shape[0])
    else:
        chw = (
            (input_shape[0], input_shape[1], input_shape[2])
            if len(input_shape) == 3
            else (input_shape[0], 1, input_shape[1])
        )
        n = math.prod(chw)
    perm: np.ndarray | None = None
    for i, m in enumerate(seq):
        where = f"layer {i} ({type(m).__name__})"
        if isinstance(m, nn.Dropout | nn.Identity):
            continue
        if isinstance(m, nn.Conv1d | nn.Conv2d):
            if chw is None:
                raise ExportError(f"{where}: needs a feature map, gets a flat vector")
            one_d = isinstance(m, nn.Conv1d)
            w = m.weight.detach().cpu().numpy().astype(np.float32)
            if one_d:
                w = w[:, :, None, :]
            kh, kw = w.shape[2], w.shape[3]
            sh, sw = _as2d(m.stride, one_d)
            ph, pw = _as2d(m.padding, one_d, fill=0)
            c, h, wd = chw
            if (ph or pw) and not (sh == sw == 1 and kh == 2 * ph + 1 and kw == 2 * pw + 1):
                x = L.ZeroPadding2D(((ph, ph), (pw, pw)), name=f"pad{i}")(x)
                padding = "valid"
            else:
                padding = "same" if (ph or pw) else "valid"
            layer = L.Conv2D(
                m.out_channels,
                (kh, kw),
                strides=(sh, sw),
                padding=padding,
                use_bias=m.bias is not None,
                name=f"conv{i}",
            )
            x = layer(x)
            weights = [w.transpose(2, 3, 1, 0)]
            if m.bias is not None:
                weights.append(m.bias.detach().cpu().numpy().astype(np.float32))
            layer.set_weights(weights)
            chw = (m.out_channels, (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1)
            lines.append(f"Conv2D {m.out_channels}@{kh}x{kw} stride {sh},{sw} padding {ph},{pw}")
        elif isinstance(m, nn.Linear):
            if chw is not None:
                raise ExportError(f"{where}: gets a feature map {chw}; add nn.Flatten() before it")
            w = m.weight.detach().cpu().numpy().astype(np.float32)
            if w.shape[1] != n:
                raise ExportError(f"{where}: expects {w.shape[1]} features, gets {n}")
            if perm is not None:
                w = w[:, perm]
                perm = None
            layer = L.Dense(m.out_features, use_bias=m.bias is not None, name=f"dense{i}")
            x = layer(x)
            weights = [np.ascontiguousarray(w.T)]
            if m.bias is not None:
                weights.append(m.bias.detach().cpu().numpy().astype(np.float32))
            layer.set_weights(weights)
            n = m.out_features
            lines.append(f"Dense {m.in_features}->{m.out_features}")
        elif isinstance(m, nn.ReLU):
            x = L.ReLU(name=f"relu{i}")(x)
            lines.append("ReLU")
        elif isinstance(m, nn.MaxPool1d | nn.MaxPool2d | nn.AvgPool1d | nn.AvgPool2d):
            if chw is None:
                raise ExportError(f"{where}: needs a feature map, gets a flat vector")
            one_d = isinstance(m, nn.MaxPool1d | nn.AvgPool1d)
            kh, kw = _as2d(m.kernel_size, one_d)
            sh, sw = _as2d(m.stride if m.stride is not None else m.kernel_size, one_d)
            cls = L.MaxPooling2D if isinstance(m, nn.MaxPool1d | nn.MaxPool2d) else L.AveragePooling2D
            x = cls((kh, kw), strides=(sh, sw), padding="valid", name=f"pool{i}")(x)
            c, h, wd = chw
            chw = (c, (h - kh) // sh + 1, (wd - kw) // sw + 1)
            lines.append(f"{cls.__name__} {kh}x{kw} stride {sh},{sw}")
        elif isinstance(m, nn.Flatten):
            if chw is not None:
                c, h, wd = chw
                perm = np.arange(c * h * wd).reshape(c, h, wd).transpose(1, 2, 0).ravel()
                if np.array_equal(perm, np.arange(perm.size)):
                    perm = None
                n = c * h * wd
                chw = None
                x = L.Reshape((n,), name=f"flatten{i}")(x)
                lines.append("Flatten (HWC order; permutation folded into the next Dense)")
        else:  # check_supported already refused anything else
            raise ExportError(f"{where}: no Keras equivalent")
    if chw is not None or perm is not None:
        raise ExportError(
            "the model must end in a Linear layer giving one logit per class (a feature map or flattened "
            "map is left at the output)"
        )
    model = keras.Model(inp, x, name="batteryless")
    return KerasConversion(model, tuple(input_shape), in_k, lines)
