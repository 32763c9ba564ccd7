"""Fixed-point quantisation: fake-quant for training (a torch parametrization) and the float → integer
conversion that produces an artifact whose integer inference is the numeric spec (batteryless.spec).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.utils.parametrize as parametrize
from torch import nn

from batteryless.artifact import Artifact
from batteryless.errors import CompressionError
from batteryless.rad.circulant import BlockCirculantConv, BlockCirculantLinear
from batteryless.spec import frac_for_max, pack_spectrum, quantize

log = logging.getLogger(__name__)

WEIGHT_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, BlockCirculantLinear, BlockCirculantConv)
# Headroom kept above calibration maxima (activations can exceed what calibration saw).
ACT_MARGIN = 1.25
ACC_LIMIT = 2**31 * 0.5  # final 32-bit accumulators must stay below this on calibration data


def quantize_bias(bias: np.ndarray, frac: int) -> np.ndarray:
    """A float bias as int32 with ``frac`` fraction bits (round half up, saturated): ``bias`` is added to
    accumulators at ``in_frac + weight_frac``, ``bias_out`` to outputs at ``out_frac``."""
    return np.clip(np.floor(np.asarray(bias, np.float64) * 2.0**frac + 0.5), -(2**31), 2**31 - 1).astype(
        np.int32
    )


def weight_frac(w: torch.Tensor | np.ndarray, bits: int) -> int:
    return frac_for_max(float(np.abs(np.asarray(w)).max()) if np.asarray(w).size else 0.0, bits)


class FakeQuant(nn.Module):
    """Rounds a weight to ``bits``-bit fixed point with per-tensor fraction bits (straight-through grad)."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = weight_frac(w.detach().abs().max().reshape(1).cpu().numpy(), self.bits)
            lim = 2 ** (self.bits - 1)
            q = torch.clamp(torch.floor(w * 2.0**f + 0.5), -lim, lim - 1) / 2.0**f
        return w + (q - w).detach()


def add_fake_quant(model: nn.Module, bits: int) -> nn.Module:
    for m in model.modules():
        if isinstance(m, WEIGHT_MODULES) and not parametrize.is_parametrized(m, "weight"):
            parametrize.register_parametrization(m, "weight", FakeQuant(bits))
    return model


def _layer_name(i: int, op: str) -> str:
    return f"{op}{i}"


@torch.no_grad()
def to_artifact(
    model: nn.Sequential,
    calib_x: np.ndarray,
    *,
    weight_bits: int = 16,
    input_shape: tuple[int, ...],
    num_classes: int,
    normalisation: dict[str, float],
    default_path: str = "fft",
) -> Artifact:
    """Convert a trained (dense and/or block-circulant) Sequential into an integer artifact.

    ``calib_x`` are *normalised* inputs; their activations set every tensor's fraction bits.
    """
    model = model.eval()
    x = torch.as_tensor(calib_x, dtype=torch.float32)
    acts = [x]
    for m in model:
        acts.append(m(acts[-1]))
    layers: list[dict] = []
    tensors: dict[str, np.ndarray] = {}
    frac = frac_for_max(float(x.abs().max()), margin=1.0)
    input_frac = frac
    counters: dict[str, int] = {}
    for i, m in enumerate(model):
        op = _op_of(m)
        counters[op] = counters.get(op, 0) + 1
        name = _layer_name(counters[op], {"linear": "fc", "conv1d": "conv", "conv2d": "conv"}.get(op, op))
        layer: dict = {"name": name, "op": op}
        if op in ("linear", "conv1d", "conv2d"):
            layer.update(
                _weight_layer(m, name, acts[i], acts[i + 1], frac, weight_bits, default_path, tensors)
            )
            frac = layer["out_frac"]
        elif op.startswith(("maxpool", "avgpool")):
            ks = _tuple(m.kernel_size, 1 if op.endswith("1d") else 2)
            st = _tuple(m.stride if m.stride is not None else m.kernel_size, len(ks))
            if any(_tuple(m.padding, len(ks))) or getattr(m, "ceil_mode", False):
                raise CompressionError(f"{type(m).__name__} with padding or ceil_mode is not supported")
            layer.update(kernel_size=list(ks), stride=list(st))
        layers.append(layer)
    return Artifact(
        layers=layers,
        tensors=tensors,
        input_shape=tuple(input_shape),
        num_classes=num_classes,
        input_frac=input_frac,
        normalisation=normalisation,
    )


def _tuple(v, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, tuple | list) else (int(v),) * n


def _op_of(m: nn.Module) -> str:
    if isinstance(m, nn.Linear | BlockCirculantLinear):
        return "linear"
    if isinstance(m, BlockCirculantConv):
        return f"conv{m.dims}d"
    for cls, op in (
        (nn.Conv1d, "conv1d"),
        (nn.Conv2d, "conv2d"),
        (nn.ReLU, "relu"),
        (nn.Flatten, "flatten"),
        (nn.MaxPool1d, "maxpool1d"),
        (nn.MaxPool2d, "maxpool2d"),
        (nn.AvgPool1d, "avgpool1d"),
        (nn.AvgPool2d, "avgpool2d"),
    ):
        if isinstance(m, cls):
            return op
    raise CompressionError(f"layer {type(m).__name__} cannot be quantised (unsupported)")


def _uncropped_block_outputs(m: BlockCirculantLinear | BlockCirculantConv, x_in: torch.Tensor) -> np.ndarray:
    """The layer's outputs without bias for all p·k rows (or channels), rows beyond out_features included,
    in float64 as [N, p, k, *spatial]: what the FFT path's inverse transform reconstructs block by block."""
    p, k = m.weight.shape[0], m.block
    with torch.no_grad():
        w = m.weight.detach().double()  # through the parametrizations (fake quant, masks), as the artifact
    if isinstance(m, BlockCirculantLinear):
        full = BlockCirculantLinear(m.in_features, p * k, k, bias=False)
    else:
        full = BlockCirculantConv(
            m.dims, m.in_channels, p * k, m.kernel_size, k, m.stride, m.padding, bias=False
        )
    full = full.double()
    with torch.no_grad():
        full.weight.copy_(w)
        y = full(x_in.detach().double()).numpy()
    return y.reshape(y.shape[0], p, k, *y.shape[2:])


def _weight_layer(m, name, x_in, y_out, in_frac, bits, default_path, tensors) -> dict:
    w = m.weight.detach().double().numpy()  # parametrized modules give the fake-quantised weight here
    circulant = isinstance(m, BlockCirculantLinear | BlockCirculantConv)
    k = m.block if circulant else 1
    info: dict = {"block": k, "weight_bits": bits, "in_frac": in_frac}
    if isinstance(m, nn.Linear | BlockCirculantLinear):
        info.update(in_features=m.in_features, out_features=m.out_features)
    else:
        dims = m.dims if circulant else (1 if isinstance(m, nn.Conv1d) else 2)
        if not circulant and (m.groups != 1 or any(d != 1 for d in m.dilation)):
            raise CompressionError(f"{name}: grouped or dilated convolutions are not supported")
        if isinstance(m.padding, str):
            raise CompressionError(f"{name}: string padding is not supported; give explicit sizes")
        info.update(
            in_channels=m.in_channels,
            out_channels=m.out_channels,
            kernel_size=list(_tuple(m.kernel_size, dims)),
            stride=list(_tuple(m.stride, dims)),
            padding=list(_tuple(m.padding, dims)),
        )
    wf = weight_frac(w, bits)
    y_max = float(y_out.abs().max())
    out_frac = min(frac_for_max(y_max, margin=ACT_MARGIN), in_frac + wf)
    # the final 32-bit accumulator (before the shift) must fit comfortably
    wf_max = wf
    while y_max * 2.0 ** (in_frac + wf) > ACC_LIMIT and wf > -8:
        wf -= 1
    if wf < wf_max:
        log.info("%s: weight fraction bits %d → %d to keep 32-bit accumulators below 2^30", name, wf_max, wf)
    wq = quantize(w, wf, bits)
    dtype = np.int8 if bits == 8 else np.int16
    tensors[f"{name}.weight"] = wq.astype(dtype)
    info.update(weight=f"{name}.weight", weight_frac=wf, out_frac=out_frac, path="direct")
    bias = m.bias.detach().double().numpy() if m.bias is not None else None
    if bias is not None:
        tensors[f"{name}.bias"] = quantize_bias(bias, in_frac + wf)
        info["bias"] = f"{name}.bias"
    mask = getattr(m, "block_mask", None)
    if mask is not None:
        tensors[f"{name}.block_mask"] = mask.detach().numpy().astype(np.uint8)
        info["block_mask"] = f"{name}.block_mask"
    if k > 1:
        info["path"] = default_path
        w_deq = wq / 2.0**wf
        spec = np.fft.rfft(w_deq, axis=2)  # p, q, F, *kernel
        sf = frac_for_max(max(np.abs(spec.real).max(), np.abs(spec.imag).max()))
        # spectrum of the output blocks (no bias): sets the requantised spectrum's format. It must be the
        # spectrum of the *whole* last block row: when k does not divide the rows, the rows the model crops
        # are still in the block the inverse FFT rebuilds, and their (nonzero) outputs are in its spectrum
        zspec = np.fft.rfft(_uncropped_block_outputs(m, x_in), axis=2)
        z_max = max(np.abs(zspec.real).max(), np.abs(zspec.imag).max()) if zspec.size else 0.0
        zf = min(out_frac, frac_for_max(z_max, margin=ACT_MARGIN))
        log2k = int(math.log2(k))
        # frequency-domain accumulators ≈ Z·2^(in + sf − log2k) must fit 32 bits, and the shift must be ≥ 0
        while sf > -8 and (z_max * 2.0 ** (in_frac + sf - log2k) > ACC_LIMIT):
            sf -= 1
        zf = min(zf, in_frac + sf - log2k)
        # pack_spectrum works on the last axis: move bins last, pack, move back
        packed = pack_spectrum(
            np.moveaxis(quantize(spec.real, sf), 2, -1), np.moveaxis(quantize(spec.imag, sf), 2, -1)
        )
        tensors[f"{name}.spectra"] = np.moveaxis(packed, -1, 2).astype(np.int16)
        info.update(spectra=f"{name}.spectra", spectra_frac=sf, spectrum_frac=zf)
        if bias is not None:
            tensors[f"{name}.bias_out"] = quantize_bias(bias, out_frac)
            info["bias_out"] = f"{name}.bias_out"
    return info
