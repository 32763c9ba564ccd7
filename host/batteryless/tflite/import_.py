"""A .tflite model (float or int8) → a channels-first torch ``nn.Sequential`` (``import-tflite``).

The model must be one chain of the common MCU operators: FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D,
AVERAGE_POOL_2D, MAX_POOL_2D, RESHAPE, SOFTMAX, RELU, RELU6, RELU_N1_TO_1 (plus QUANTIZE/DEQUANTIZE at
the edges and DEQUANTIZE of float16 constants). Any other operator is refused by name.

- int8/int16 weights are de-quantised (per-tensor or per-channel scales); the torch model is float;
- NHWC → NCHW: conv kernels ``[O, kh, kw, I]`` → ``[O, I, kh, kw]``; a flatten of an ``(H, W, C)`` map
  feeds the next fully connected layer in HWC order, so its weight columns are permuted to CHW order;
- DEPTHWISE_CONV_2D becomes an ordinary Conv2d whose kernel is zero outside each channel's own group
  (the same function, and a layer the compressor accepts);
- SAME padding becomes symmetric zero padding where it is symmetric; otherwise the model is refused;
- a SOFTMAX at the end is dropped (the compressor trains logits; the argmax is unchanged) and reported;
- static shape arithmetic is folded: a Keras Flatten built with an unknown batch dimension converts to
  SHAPE → STRIDED_SLICE → PACK → RESHAPE (the batch size is read from the tensor at run time). On the
  device the batch is 1, the size every tensor has in the file, so SHAPE of a tensor is a constant and the
  ops computing a new shape from it (STRIDED_SLICE, PACK, CONCATENATION) are evaluated here; RESHAPE then
  has a constant target shape like any other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from batteryless.errors import ExportError
from batteryless.paths import atomic_path
from batteryless.progress import ProgressFn, report
from batteryless.tflite.flatbuffer import Graph, Operator, read_file, read_graph

SUPPORTED_OPS = (
    "FULLY_CONNECTED",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "RESHAPE",
    "SOFTMAX",
    "RELU",
    "RELU6",
    "RELU_N1_TO_1",
    "QUANTIZE",
    "DEQUANTIZE",
)


@dataclass
class ImportedModel:
    model: nn.Sequential
    input_shape: tuple[int, ...]  # channels-first, no batch axis
    tflite_input_shape: tuple[int, ...]  # as in the file, with the batch axis
    quantized: bool  # weights were integer and have been de-quantised
    input_quantization: tuple[float, int] | None  # (scale, zero point) of an integer model input
    output_quantization: tuple[float, int] | None
    ops: list[str]
    notes: list[str] = field(default_factory=list)
    compressor_problems: str | None = None  # why `compress` would refuse the model (e.g. ReLU6), or None

    def summary(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "tflite_input_shape": list(self.tflite_input_shape),
            "quantized": self.quantized,
            "input_quantization": self.input_quantization,
            "ops": self.ops,
            "layers": [repr(m) for m in self.model],
            "notes": self.notes,
            "compressor_ready": self.compressor_problems is None,
            "compressor_problems": self.compressor_problems,
        }


def _dequantize(g: Graph, index: int, consts: dict[int, np.ndarray], what: str) -> np.ndarray:
    if index in consts:
        return consts[index]
    t = g.tensors[index]
    raw = g.constant(index)
    if raw is None:
        raise ExportError(f"{what}: tensor {t.name!r} should be a constant but has no data")
    if raw.dtype.kind == "f":
        return raw.astype(np.float64)
    if t.scale is None:
        raise ExportError(f"{what}: integer tensor {t.name!r} has no quantisation scale")
    scale = t.scale.astype(np.float64)
    zp = t.zero_point.astype(np.float64) if t.zero_point is not None else np.zeros(1)
    if scale.size > 1:
        axis = t.quantized_dimension
        if not 0 <= axis < raw.ndim or raw.shape[axis] != scale.size:
            raise ExportError(
                f"{what}: tensor {t.name!r} has {scale.size} scales for axis {axis} of {raw.shape}"
            )
        shape = [1] * raw.ndim
        shape[axis] = scale.size
        scale = scale.reshape(shape)
        zp = zp.reshape(shape) if zp.size == scale.size else zp.reshape(-1)[:1]
    return (raw.astype(np.float64) - zp) * scale


def _same_pad(size: int, k: int, s: int, where: str) -> int:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    if total % 2:
        raise ExportError(
            f"{where}: SAME padding here is asymmetric ({total // 2} before, {total - total // 2} after), "
            "which a PyTorch Conv2d cannot express; re-export the model with VALID padding or odd kernels"
        )
    return total // 2


def _activation(name: str, where: str) -> list[nn.Module]:
    if name == "NONE":
        return []
    if name == "RELU":
        return [nn.ReLU()]
    if name == "RELU6":
        return [nn.ReLU6()]
    if name == "RELU_N1_TO_1":
        return [nn.Hardtanh(-1.0, 1.0)]
    raise ExportError(f"{where}: fused activation {name} is not supported (RELU, RELU6, RELU_N1_TO_1 are)")


def _set(m: nn.Module, weight: np.ndarray, bias: np.ndarray | None) -> nn.Module:
    with torch.no_grad():
        m.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        if bias is not None:
            m.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return m


_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _check_arity(g: Graph, where: str) -> None:
    """Every operator has its data input(s) and one output, all real tensors (a corrupt file may not)."""
    for op in g.operators:
        need = 2 if op.name in _WEIGHTED else 1
        if len(op.inputs) < need or any(t < 0 for t in op.inputs[:need]):
            raise ExportError(
                f"{where}: operator {op.index} ({op.name}) has inputs {list(op.inputs)}; it needs {need}"
            )
        if len(op.outputs) != 1 or op.outputs[0] < 0:
            raise ExportError(
                f"{where}: operator {op.index} ({op.name}) has outputs {list(op.outputs)}; it needs one"
            )


SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION")


def _strided_slice(x: np.ndarray, begin, end, strides, o: dict[str, Any]) -> np.ndarray | None:
    """TFLite STRIDED_SLICE of a 1-D integer vector (a shape); None for forms not folded (they are then
    refused by name like any unsupported operator)."""
    if x.ndim != 1 or o.get("ellipsis_mask") or o.get("new_axis_mask") or o.get("offset"):
        return None
    if not (len(begin) == len(end) == len(strides) == 1) or int(strides[0]) == 0:
        return None
    b = None if o.get("begin_mask", 0) & 1 else int(begin[0])
    e = None if o.get("end_mask", 0) & 1 else int(end[0])
    if o.get("shrink_axis_mask", 0) & 1:
        # a masked begin with shrink means index 0 to TFLite's kernel but is ignored by TensorFlow: not folded
        if b is None or not -len(x) <= b < len(x):
            return None
        return np.asarray(x[b])
    return x[slice(b, e, int(strides[0]))]


def fold_static_shapes(g: Graph, where: str) -> tuple[dict[int, np.ndarray], set[int]]:
    """Evaluate the shape arithmetic of ``g`` (batch 1): (tensor → value, indices of the folded ops)."""
    values: dict[int, np.ndarray] = {}
    folded: set[int] = set()

    def static(t: int) -> np.ndarray | None:
        if t in values:
            return values[t]
        if t < 0 or t >= len(g.tensors):
            return None
        try:
            return g.constant(t)
        except ExportError:
            return None

    for op in g.operators:
        if op.name not in SHAPE_OPS or len(op.outputs) != 1 or op.outputs[0] < 0 or not op.inputs:
            continue
        value: np.ndarray | None = None
        if op.name == "SHAPE":
            if 0 <= op.inputs[0] < len(g.tensors):
                value = np.asarray(g.tensors[op.inputs[0]].shape, dtype=np.int32)
        else:
            args = [static(t) for t in op.inputs]
            if any(a is None for a in args):
                continue  # computes on data, not on shapes: refused as unsupported
            if op.name == "STRIDED_SLICE" and len(args) == 4:
                value = _strided_slice(*args, op.options)  # type: ignore[arg-type]
            elif op.name == "PACK":
                try:
                    value = np.stack(args, axis=op.options.get("axis", 0))  # type: ignore[arg-type]
                except ValueError:
                    value = None
            elif op.name == "CONCATENATION" and op.options.get("activation", "NONE") == "NONE":
                try:
                    value = np.concatenate(
                        [np.atleast_1d(a) for a in args],  # type: ignore[arg-type]
                        axis=op.options.get("axis", 0),
                    )
                except ValueError:
                    value = None
        if value is not None:
            values[op.outputs[0]] = value.astype(np.int64)
            folded.add(op.index)
    return values, folded


def _refuse_unsupported(g: Graph, where: str, folded: set[int] | frozenset[int] = frozenset()) -> None:
    bad: dict[str, list[int]] = {}
    for op in g.operators:
        if op.index in folded:
            continue
        if op.code == -1:
            bad.setdefault("CUSTOM", []).append(op.index)
        elif op.name not in SUPPORTED_OPS:
            bad.setdefault(op.name, []).append(op.index)
    if bad:
        listed = "; ".join(
            f"{name} (operator {', '.join(map(str, ix[:5]))}{', …' if len(ix) > 5 else ''})"
            for name, ix in bad.items()
        )
        raise ExportError(
            f"{where}: unsupported operator{'s' if len(bad) > 1 else ''}: {listed}. "
            f"import-tflite handles {', '.join(SUPPORTED_OPS)}"
        )


def build_sequential(g: Graph, where: str = "model") -> ImportedModel:
    """Turn a decoded graph into the equivalent channels-first Sequential."""
    shapes, folded = fold_static_shapes(g, where)
    _refuse_unsupported(g, where, folded)
    _check_arity(g, where)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise ExportError(
            f"{where}: needs exactly one input and one output, has {len(g.inputs)}/{len(g.outputs)}"
        )
    consts: dict[int, np.ndarray] = {}
    chain: list[Operator] = []
    for op in g.operators:  # DEQUANTIZE of a constant (float16 weights) is folded, not a layer
        if op.index in folded:
            continue
        if op.name == "DEQUANTIZE" and g.constant(op.inputs[0]) is not None:
            consts[op.outputs[0]] = _dequantize(g, op.inputs[0], consts, f"{where}: operator {op.index}")
        else:
            chain.append(op)
    t_in = g.tensors[g.inputs[0]]
    shape = tuple(t_in.shape)
    if len(shape) == 4 and shape[0] == 1:
        chw: tuple[int, int, int] | None = (shape[3], shape[1], shape[2])
        n = math.prod(chw)
        input_shape: tuple[int, ...] = chw
    elif len(shape) == 2 and shape[0] == 1:
        chw, n = None, shape[1]
        input_shape = (n,)
    else:
        raise ExportError(
            f"{where}: input tensor {t_in.name!r} has shape {list(shape)}; expected [1, H, W, C] or [1, N]"
        )
    in_q = (
        (float(t_in.scale[0]), int(t_in.zero_point[0]))
        if t_in.dtype.kind == "i" and t_in.scale is not None
        else None
    )
    t_out = g.tensors[g.outputs[0]]
    out_q = (
        (float(t_out.scale[0]), int(t_out.zero_point[0]))
        if t_out.dtype.kind == "i" and t_out.scale is not None
        else None
    )
    layers: list[nn.Module] = []
    notes: list[str] = []
    if folded:
        names = sorted({g.operators[i].name for i in folded}, key=SHAPE_OPS.index)
        notes.append(f"folded static shape operators {', '.join(names)} (batch 1, as on the device)")
    quantized = False
    perm: np.ndarray | None = None
    cur = g.inputs[0]
    for pos, op in enumerate(chain):
        at = f"{where}: operator {op.index} ({op.name})"
        if not op.inputs or op.inputs[0] != cur:
            raise ExportError(
                f"{at}: does not take the previous operator's output; only a single chain of operators "
                "(no branches or skip connections) can become an nn.Sequential"
            )
        out_t = g.tensors[op.outputs[0]]
        name = op.name
        if name in ("QUANTIZE", "DEQUANTIZE"):
            pass  # type conversions at the model's edges: the torch model is float throughout
        elif name in ("RELU", "RELU6", "RELU_N1_TO_1"):
            layers.extend(_activation(name, at))
        elif name == "SOFTMAX":
            rest = [o.name for o in chain[pos + 1 :]]
            if any(r not in ("QUANTIZE", "DEQUANTIZE") for r in rest):
                raise ExportError(f"{at}: SOFTMAX is supported only as the last operator")
            notes.append("dropped the final SOFTMAX: the model outputs logits (same argmax)")
        elif name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            if chw is None:
                raise ExportError(f"{at}: needs a [1, H, W, C] feature map, gets a flat vector")
            o = op.options
            if o.get("dilation_w", 1) != 1 or o.get("dilation_h", 1) != 1:
                raise ExportError(f"{at}: dilation {o['dilation_h']}x{o['dilation_w']} is not supported")
            w = _dequantize(g, op.inputs[1], consts, at)
            quantized |= g.tensors[op.inputs[1]].dtype.kind == "i"
            b = _dequantize(g, op.inputs[2], consts, at) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            c, h, wd = chw
            if name == "CONV_2D":
                if w.ndim != 4 or w.shape[3] != c:
                    raise ExportError(f"{at}: filter shape {list(w.shape)} does not fit {c} input channels")
                weight = w.transpose(0, 3, 1, 2)
            else:
                if w.ndim != 4 or w.shape[0] != 1 or w.shape[3] % c:
                    raise ExportError(
                        f"{at}: depthwise filter shape {list(w.shape)} does not fit {c} channels"
                    )
                mult = w.shape[3] // c
                weight = np.zeros((w.shape[3], c, w.shape[1], w.shape[2]))
                for oc in range(w.shape[3]):
                    weight[oc, oc // mult] = w[0, :, :, oc]
                notes.append(
                    f"operator {op.index}: depthwise conv expanded to a dense Conv2d (zeros off-group)"
                )
            oc_n, _, kh, kw = weight.shape
            sh, sw = o["stride_h"], o["stride_w"]
            if sh < 1 or sw < 1:
                raise ExportError(f"{at}: stride {sh}x{sw} is invalid")
            if o["padding"] == "SAME":
                ph, pw = _same_pad(h, kh, sh, at), _same_pad(wd, kw, sw, at)
            else:
                ph = pw = 0
            conv = nn.Conv2d(c, oc_n, (kh, kw), stride=(sh, sw), padding=(ph, pw), bias=b is not None)
            layers.append(_set(conv, weight, b))
            layers.extend(_activation(o["activation"], at))
            chw = (oc_n, (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1)
        elif name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            if chw is None:
                raise ExportError(f"{at}: needs a [1, H, W, C] feature map, gets a flat vector")
            o = op.options
            kh, kw, sh, sw = o["filter_h"], o["filter_w"], o["stride_h"], o["stride_w"]
            if min(kh, kw, sh, sw) < 1:
                raise ExportError(f"{at}: filter {kh}x{kw} / stride {sh}x{sw} is invalid")
            c, h, wd = chw
            if o["padding"] == "SAME" and (
                max((-(-h // sh) - 1) * sh + kh - h, 0) or max((-(-wd // sw) - 1) * sw + kw - wd, 0)
            ):
                raise ExportError(f"{at}: pooling with SAME padding that pads is not supported; use VALID")
            cls = nn.MaxPool2d if name == "MAX_POOL_2D" else nn.AvgPool2d
            layers.append(cls((kh, kw), stride=(sh, sw)))
            layers.extend(_activation(o["activation"], at))
            if o["padding"] == "SAME":
                chw = (c, -(-h // sh), -(-wd // sw))
            else:
                chw = (c, (h - kh) // sh + 1, (wd - kw) // sw + 1)
        elif name == "RESHAPE":
            target = tuple(out_t.shape)
            if len(op.inputs) > 1 and op.inputs[1] in shapes:  # a folded shape must say the same
                given = [int(v) for v in np.atleast_1d(shapes[op.inputs[1]])]
                size = math.prod(g.tensors[cur].shape)
                known = math.prod(v for v in given if v != -1)
                resolved = tuple(size // known if v == -1 and known else v for v in given)
                if resolved != target:
                    raise ExportError(
                        f"{at}: the computed shape {given} gives {list(resolved)}, the file says "
                        f"{list(target)}; only shapes fixed at batch 1 can be folded"
                    )
            if chw is not None and len(target) == 2 and target[0] == 1 and target[1] == math.prod(chw):
                c, h, wd = chw
                perm = np.arange(c * h * wd).reshape(c, h, wd).transpose(1, 2, 0).ravel()
                if np.array_equal(perm, np.arange(perm.size)):
                    perm = None
                layers.append(nn.Flatten())
                n, chw = math.prod(chw), None
            elif chw is None and target == (1, n):
                pass
            else:
                was = list((1, chw[1], chw[2], chw[0])) if chw else [1, n]
                raise ExportError(f"{at}: reshape {was} → {list(target)} is not a flatten; not supported")
        elif name == "FULLY_CONNECTED":
            o = op.options
            if o.get("weights_format", 0) != 0:
                raise ExportError(f"{at}: shuffled weight format {o['weights_format']} is not supported")
            w = _dequantize(g, op.inputs[1], consts, at)
            quantized |= g.tensors[op.inputs[1]].dtype.kind == "i"
            b = _dequantize(g, op.inputs[2], consts, at) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            if chw is not None:  # FULLY_CONNECTED flattens a map itself (HWC order)
                c, h, wd = chw
                perm = np.arange(c * h * wd).reshape(c, h, wd).transpose(1, 2, 0).ravel()
                layers.append(nn.Flatten())
                n, chw = c * h * wd, None
            if w.ndim != 2 or w.shape[1] != n:
                raise ExportError(f"{at}: weights {list(w.shape)} do not take {n} input features")
            if perm is not None:
                w2 = np.empty_like(w)
                w2[:, perm] = w
                w, perm = w2, None
            fc = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
            layers.append(_set(fc, w, b))
            layers.extend(_activation(o["activation"], at))
            n = w.shape[0]
        else:  # pragma: no cover - _refuse_unsupported covers it
            raise ExportError(f"{at}: not supported")
        cur = op.outputs[0]
    if cur != g.outputs[0]:
        raise ExportError(f"{where}: the chain of operators does not end at the model's output tensor")
    if chw is not None:
        raise ExportError(
            f"{where}: the model ends in a feature map {list(chw)}; "
            "it must end in FULLY_CONNECTED (a classifier)"
        )
    model = nn.Sequential(*layers).eval()
    problems = None
    try:
        from batteryless.models import check_supported

        check_supported(model, input_shape)
    except Exception as err:  # ModelError naming the layer
        problems = str(err)
    return ImportedModel(
        model=model,
        input_shape=input_shape,
        tflite_input_shape=tuple(shape),
        quantized=quantized,
        input_quantization=in_q,
        output_quantization=out_q,
        ops=g.op_names(),
        notes=notes,
        compressor_problems=problems,
    )


def load_tflite(data: bytes, where: str = "<bytes>") -> ImportedModel:
    return build_sequential(read_graph(data, where), where)


def import_tflite(
    path: str | Path, out: str | Path | None = None, progress: ProgressFn | None = None
) -> ImportedModel:
    """Read ``path`` (.tflite) into a torch model; with ``out``, also save it (``torch.save`` of a dict with
    the Sequential under ``"model"`` and the import summary) atomically."""
    report(progress, "import", 0, 2)
    if out is not None and Path(out).is_dir():  # the folder would be created below; a folder is no file
        from batteryless.paths import check_output_file

        check_output_file(out, "the imported model")
    g = read_file(path)
    imported = build_sequential(g, str(path))
    report(progress, "import", 1, 2)
    if out is not None:
        with atomic_path(out) as tmp:
            torch.save(
                {
                    "format": "batteryless-imported-tflite",
                    "source": str(path),
                    "model": imported.model,
                    **imported.summary(),
                },
                tmp,
            )
    report(progress, "import", 2, 2)
    return imported
