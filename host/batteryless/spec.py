"""The numeric specification: pure-integer inference in numpy.

Every firmware backend computes exactly what this module computes (docs/numeric-spec.md is the same text in
prose). Integers only: activations are int16 with per-tensor fraction bits, weights int16/int8, accumulators
are 32-bit two's complement (wrapping), requantisation rounds half up and saturates. Circulant layers may use
the FFT path (fixed-point radix-2 FFT with a 1/2 scaling in every stage, precomputed int16 weight spectra with
their own exponent, 32-bit frequency-domain accumulation, one requantisation before the inverse FFT) or the
direct path (MACs on the expanded circulant blocks); both are defined here, bit for bit.

numpy int64 holds every intermediate exactly; where the spec says "wrap to 32 bits", :func:`wrap32` applies.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from batteryless.errors import ArtifactError
from batteryless.normalisation import normalise

if TYPE_CHECKING:
    from batteryless.artifact import Artifact

INT16_MIN, INT16_MAX = -32768, 32767


# --- primitives -----------------------------------------------------------------------------------------
def sat16(v: np.ndarray) -> np.ndarray:
    return np.clip(v, INT16_MIN, INT16_MAX).astype(np.int64)


def wrap32(v: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int32 (what a 32-bit accumulator holds after any sequence of adds)."""
    return ((np.asarray(v, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def shift_round(v: np.ndarray, shift: int) -> np.ndarray:
    """Exact ``v · 2^-shift`` rounded half up (shift > 0) or ``v · 2^-shift`` (shift ≤ 0). No saturation."""
    v = np.asarray(v, dtype=np.int64)
    if shift > 0:
        return (v + (1 << (shift - 1))) >> shift
    return v << (-shift)


def quantize(x: np.ndarray, frac: int, bits: int = 16) -> np.ndarray:
    """Float → signed ``bits`` integer at ``frac`` fraction bits: floor(x·2^frac + 0.5), saturated."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(np.floor(np.asarray(x, dtype=np.float64) * 2.0**frac + 0.5), lo, hi).astype(np.int64)


# --- fixed-point FFT --------------------------------------------------------------------------------------
def twiddles(k: int, inverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Q15 twiddles W[j] = e^(∓2πij/k), j < k/2: each part round(·32768) clamped to int16."""
    j = np.arange(k // 2)
    sign = 1.0 if inverse else -1.0
    re = np.clip(np.floor(np.cos(2 * np.pi * j / k) * 32768 + 0.5), INT16_MIN, INT16_MAX)
    im = np.clip(np.floor(sign * np.sin(2 * np.pi * j / k) * 32768 + 0.5), INT16_MIN, INT16_MAX)
    return re.astype(np.int64), im.astype(np.int64)


def bit_reverse_permutation(k: int) -> np.ndarray:
    bits = k.bit_length() - 1
    return np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(k)], dtype=np.int64)


def fft_q15(re: np.ndarray, im: np.ndarray, inverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point radix-2 decimation-in-time FFT over the last axis (length k, a power of two).

    Bit-reversed input order, then log2(k) stages. Butterfly on (a, b) with twiddle index t = j·(k/m):
      if t == 0: T = b                            (exact; Q15 cannot hold +1.0)
      else:      T.re = (Wr·b.re − Wi·b.im + 2^14) >> 15 ;  T.im = (Wr·b.im + Wi·b.re + 2^14) >> 15
      a' = sat16((a + T) >> 1) ;  b' = sat16((a − T) >> 1)        (arithmetic shifts, per component)
    So the result is DFT(x)/k (forward, e^-) or k·IDFT(x)/k = IDFT(x) (inverse, e^+), each within rounding.
    """
    re = np.asarray(re, dtype=np.int64)
    im = np.asarray(im, dtype=np.int64)
    k = re.shape[-1]
    if k & (k - 1) or k < 2:
        raise ValueError(f"FFT length {k} is not a power of two ≥ 2")
    perm = bit_reverse_permutation(k)
    re, im = re[..., perm].copy(), im[..., perm].copy()
    wr_all, wi_all = twiddles(k, inverse)
    lead = re.shape[:-1]
    m = 2
    while m <= k:
        half = m // 2
        tw = np.arange(half) * (k // m)
        wr, wi = wr_all[tw], wi_all[tw]
        r = re.reshape(*lead, k // m, m)
        i = im.reshape(*lead, k // m, m)
        ar, ai = r[..., :half], i[..., :half]
        br, bi = r[..., half:], i[..., half:]
        tr = (wr * br - wi * bi + (1 << 14)) >> 15
        ti = (wr * bi + wi * br + (1 << 14)) >> 15
        tr[..., 0] = br[..., 0]  # twiddle index 0 at j = 0: exact
        ti[..., 0] = bi[..., 0]
        nr = np.concatenate([sat16((ar + tr) >> 1), sat16((ar - tr) >> 1)], axis=-1)
        ni = np.concatenate([sat16((ai + ti) >> 1), sat16((ai - ti) >> 1)], axis=-1)
        re, im = nr.reshape(*lead, k), ni.reshape(*lead, k)
        m *= 2
    return re, im


def pack_spectrum(re: np.ndarray, im: np.ndarray) -> np.ndarray:
    """Bins 0..k/2 of a real signal's spectrum (last axis k/2+1) → k int16 values:
    [Re 0, Re k/2, Re 1, Im 1, …, Re k/2−1, Im k/2−1] (DC and Nyquist are real)."""
    f = re.shape[-1]
    k = 2 * (f - 1)
    out = np.empty((*re.shape[:-1], k), dtype=np.int64)
    out[..., 0] = re[..., 0]
    out[..., 1] = re[..., f - 1]
    out[..., 2::2] = re[..., 1 : f - 1]
    out[..., 3::2] = im[..., 1 : f - 1]
    return out


def unpack_spectrum(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = packed.shape[-1]
    f = k // 2 + 1
    re = np.zeros((*packed.shape[:-1], f), dtype=np.int64)
    im = np.zeros_like(re)
    re[..., 0] = packed[..., 0]
    re[..., f - 1] = packed[..., 1]
    re[..., 1 : f - 1] = packed[..., 2::2]
    im[..., 1 : f - 1] = packed[..., 3::2]
    return re, im


# --- layers ------------------------------------------------------------------------------------------------
def expand_circulant_int(w: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Integer circulant vectors w[p, q, k, *kernel] → dense [rows, cols, *kernel] (first-column rule)."""
    p, q, k = w.shape[:3]
    r = np.arange(k)[:, None]
    c = np.arange(k)[None, :]
    full = w[:, :, (r - c) % k]  # p, q, k, k, *kernel
    axes = (0, 2, 1, 3, *range(4, full.ndim))
    return full.transpose(axes).reshape(p * k, q * k, *w.shape[3:])[:rows, :cols]


def _requant_accumulator(acc: np.ndarray, bias: np.ndarray | None, shift: int) -> np.ndarray:
    acc = wrap32(acc)
    if bias is not None:
        acc = wrap32(acc + bias)
    return sat16(shift_round(acc, shift))


def _dense_weight(layer: dict, tensors: dict[str, np.ndarray]) -> np.ndarray:
    w = tensors[layer["weight"]].astype(np.int64)
    if layer["block"] == 1:
        return w
    rows, cols = (
        (layer["out_features"], layer["in_features"])
        if layer["op"] == "linear"
        else (layer["out_channels"], layer["in_channels"])
    )
    return expand_circulant_int(w, rows, cols)


def _im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int]):
    """x[n, c, h, w] → cols[n, c, taps, L] (zero padding), output size."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - kernel[0]) // stride[0] + 1
    ow = (w + 2 * pad[1] - kernel[1]) // stride[1] + 1
    cols = np.empty((n, c, kernel[0] * kernel[1], oh * ow), dtype=np.int64)
    t = 0
    for dy in range(kernel[0]):
        for dx in range(kernel[1]):
            patch = xp[:, :, dy : dy + stride[0] * oh : stride[0], dx : dx + stride[1] * ow : stride[1]]
            cols[:, :, t, :] = patch.reshape(n, c, oh * ow)
            t += 1
    return cols, (oh, ow)


def _conv_geometry(layer: dict):
    if layer["op"] == "conv1d":
        return (1, layer["kernel_size"][0]), (1, layer["stride"][0]), (0, layer["padding"][0])
    return tuple(layer["kernel_size"]), tuple(layer["stride"]), tuple(layer["padding"])


def _as_4d(x: np.ndarray, op: str) -> np.ndarray:
    return x[:, :, None, :] if op in ("conv1d", "maxpool1d", "avgpool1d") else x


def linear_or_conv(layer: dict, tensors: dict[str, np.ndarray], x: np.ndarray, path: str) -> np.ndarray:
    if path == "fft" and layer["block"] > 1:
        return _fft_path(layer, tensors, x)
    shift = layer["in_frac"] + layer["weight_frac"] - layer["out_frac"]
    bias = tensors[layer["bias"]].astype(np.int64) if layer.get("bias") else None
    w = _dense_weight(layer, tensors)
    if layer["op"] == "linear":
        acc = x @ w.T  # exact in int64, wrapped below
        return _requant_accumulator(acc, bias, shift)
    kernel, stride, pad = _conv_geometry(layer)
    cols, (oh, ow) = _im2col(_as_4d(x, layer["op"]), kernel, stride, pad)
    wk = w.reshape(w.shape[0], w.shape[1], -1)  # o, c, taps
    acc = np.einsum("nctl,oct->nol", cols, wk)
    out = _requant_accumulator(acc, None if bias is None else bias[None, :, None], shift)
    out = out.reshape(x.shape[0], -1, oh, ow)
    return out[:, :, 0, :] if layer["op"] == "conv1d" else out


def _fft_path(layer: dict, tensors: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    k = layer["block"]
    log2k = k.bit_length() - 1
    # spectra are packed along axis 2 ([p, q, k, *kernel]): unpack with bins last, then move bins back
    sr, si = unpack_spectrum(np.moveaxis(tensors[layer["spectra"]].astype(np.int64), 2, -1))
    sr, si = np.moveaxis(sr, -1, 2), np.moveaxis(si, -1, 2)  # p, q, F, *kernel
    p, q = sr.shape[:2]
    f = k // 2 + 1
    n = x.shape[0]
    shift_z = layer["in_frac"] + layer["spectra_frac"] - log2k - layer["spectrum_frac"]
    bias_out = tensors[layer["bias_out"]].astype(np.int64) if layer.get("bias_out") else None
    if layer["op"] == "linear":
        xb = np.pad(x, ((0, 0), (0, q * k - x.shape[1]))).reshape(n, q, k)
        xr, xi = fft_q15(xb, np.zeros_like(xb))
        xr, xi = xr[..., :f], xi[..., :f]  # n, q, F
        pr = np.einsum("nqf,pqf->npf", xr, sr) - np.einsum("nqf,pqf->npf", xi, si)
        pi = np.einsum("nqf,pqf->npf", xr, si) + np.einsum("nqf,pqf->npf", xi, sr)
        out = _inverse_and_finish(pr, pi, shift_z, k, layer)  # n, p*k at spectrum_frac
        out = out.reshape(n, p * k)[:, : layer["out_features"]]
        return _finish_bias(out, bias_out, layer)
    kernel, stride, pad = _conv_geometry(layer)
    x4 = _as_4d(x, layer["op"])
    c = x4.shape[1]
    x4 = np.pad(x4, ((0, 0), (0, q * k - c), (0, 0), (0, 0)))
    h, w = x4.shape[2:]
    blocks_in = x4.reshape(n, q, k, h, w).transpose(0, 1, 3, 4, 2)  # n, q, h, w, k
    xr, xi = fft_q15(blocks_in, np.zeros_like(blocks_in))
    # spectra of each input position (zero positions have zero spectra, so zero padding commutes with the FFT)
    xr = xr[..., :f].transpose(0, 1, 4, 2, 3).reshape(n, q * f, h, w)
    xi = xi[..., :f].transpose(0, 1, 4, 2, 3).reshape(n, q * f, h, w)
    cr, (oh, ow) = _im2col(xr, kernel, stride, pad)
    ci, _ = _im2col(xi, kernel, stride, pad)
    cr = cr.reshape(n, q, f, -1, oh * ow)
    ci = ci.reshape(n, q, f, -1, oh * ow)
    wr = sr.reshape(p, q, f, -1)
    wi = si.reshape(p, q, f, -1)
    pr = np.einsum("nqftl,pqft->nplf", cr, wr) - np.einsum("nqftl,pqft->nplf", ci, wi)
    pi = np.einsum("nqftl,pqft->nplf", cr, wi) + np.einsum("nqftl,pqft->nplf", ci, wr)
    out = _inverse_and_finish(pr, pi, shift_z, k, layer)  # n, p, L, k
    out = out.transpose(0, 1, 3, 2).reshape(n, p * k, oh * ow)[:, : layer["out_channels"]]
    out = _finish_bias(out, None if bias_out is None else bias_out[:, None], layer)
    out = out.reshape(n, -1, oh, ow)
    return out[:, :, 0, :] if layer["op"] == "conv1d" else out


def _inverse_and_finish(pr: np.ndarray, pi: np.ndarray, shift_z: int, k: int, layer: dict) -> np.ndarray:
    """Frequency-domain accumulators (…, F) → requantised spectrum Z → inverse FFT → real part (…, k)."""
    zr = sat16(shift_round(wrap32(pr), shift_z))
    zi = sat16(shift_round(wrap32(pi), shift_z))
    f = k // 2 + 1
    # Hermitian completion: Z[k − j] = conj(Z[j]); conj saturates (−(−32768) → 32767)
    fr = np.concatenate([zr, zr[..., f - 2 : 0 : -1]], axis=-1)
    fi = np.concatenate([zi, sat16(-zi[..., f - 2 : 0 : -1])], axis=-1)
    out_r, _ = fft_q15(fr, fi, inverse=True)
    return out_r


def _finish_bias(out: np.ndarray, bias_out: np.ndarray | None, layer: dict) -> np.ndarray:
    v = shift_round(out, layer["spectrum_frac"] - layer["out_frac"])
    if bias_out is not None:
        v = v + bias_out
    return sat16(v)


def _pool(x: np.ndarray, layer: dict) -> np.ndarray:
    op = layer["op"]
    one_d = op.endswith("1d")
    kh, kw = (1, layer["kernel_size"][0]) if one_d else tuple(layer["kernel_size"])
    sh, sw = (1, layer["stride"][0]) if one_d else tuple(layer["stride"])
    x4 = _as_4d(x, op)
    n, c, h, w = x4.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    win = np.stack(
        [x4[:, :, dy : dy + sh * oh : sh, dx : dx + sw * ow : sw] for dy in range(kh) for dx in range(kw)],
        axis=-1,
    )
    if op.startswith("max"):
        out = win.max(axis=-1)
    else:
        cnt = kh * kw
        out = np.floor_divide(win.sum(axis=-1) + cnt // 2, cnt)
    return out[:, :, 0, :] if one_d else out


def as_input_batch(artifact: Artifact, x: np.ndarray) -> np.ndarray:
    """``x`` as (N, *input_shape): a batch of that shape is taken as it is; for a 1-D feature model (input
    shape (1, F)) a plain (N, F) table is given its channel axis. Anything else is refused, naming shapes."""
    x = np.asarray(x)
    shape = tuple(artifact.input_shape)
    if x.shape[1:] == shape:
        return x
    if len(shape) == 2 and shape[0] == 1 and x.ndim == 2 and x.shape[1] == shape[1]:
        return x[:, None, :]
    table = f" or (N, {shape[1]})" if len(shape) == 2 and shape[0] == 1 else ""
    raise ArtifactError(
        f"input of shape {x.shape} is not a batch of the artifact's input shape {shape} "
        f"(give (N, {', '.join(map(str, shape))}){table})"
    )


def quantize_input(artifact: Artifact, x: np.ndarray) -> np.ndarray:
    """Host side: normalise with the artifact's statistics (``normalisation``: none, scalar, per-channel or
    per-feature, float64 ``(x − mean) / std``), then quantise to int16 at input_frac. Every path that feeds a
    device (firmware runs, FLEX, codegen measurements) quantises through here."""
    x = as_input_batch(artifact, x)
    return quantize(normalise(artifact.normalisation, artifact.input_shape, x), artifact.input_frac)


def mode_layer_view(
    artifact: Artifact, layer: dict, mode: int
) -> tuple[dict, dict[str, np.ndarray], int | None]:
    """One weight layer as EVE ``mode`` runs it: (layer with the mode's overrides, tensors, kept rows).

    A block the mode does not use contributes nothing: its circulant vector and its packed spectrum count as
    zero (a zero block adds exactly 0 to every accumulator on both paths, so a device that skips it computes
    the same bits). Output rows the mode drops (``out_blocks``) are 0 after requantisation, bias included."""
    from batteryless.eve.modes import active_blocks, effective_layer, out_rows

    eff = effective_layer(artifact, layer, mode)
    active = active_blocks(artifact, layer, mode)
    tensors = artifact.tensors
    if active is not None and not active.all():
        shape = active.shape + (1,) * (tensors[layer["weight"]].ndim - 2)
        tensors = dict(tensors)
        tensors[layer["weight"]] = np.where(active.reshape(shape), tensors[layer["weight"]], 0)
        if layer.get("spectra"):
            tensors[layer["spectra"]] = np.where(active.reshape(shape), tensors[layer["spectra"]], 0)
    return eff, tensors, out_rows(artifact, layer, mode)


def integer_inference_q(
    artifact: Artifact,
    xq: np.ndarray,
    paths: dict[str, str] | None = None,
    collect: list | None = None,
    mode: int | str = 0,
) -> np.ndarray:
    """Inference on already-quantised int16 inputs; returns int16-range logits as int64.

    ``paths`` overrides each circulant layer's path ("fft" | "direct"); ``collect``, if given, receives every
    layer's output (for per-layer golden comparisons); ``mode`` picks an EVE mode (index or name; 0 is the
    largest, and the only mode of an artifact without modes).
    """
    from batteryless.eve.modes import mode_index

    mi = mode_index(artifact, mode)
    x = as_input_batch(artifact, np.asarray(xq, dtype=np.int64))
    paths = paths or {}
    for layer in artifact.layers:
        op = layer["op"]
        if op in ("linear", "conv1d", "conv2d"):
            eff, tensors, rows = mode_layer_view(artifact, layer, mi)
            x = linear_or_conv(eff, tensors, x, paths.get(layer["name"], layer.get("path", "direct")))
            if rows is not None:
                x[:, rows:] = 0
        elif op == "relu":
            x = np.maximum(x, 0)
        elif op in ("maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d"):
            x = _pool(x, layer)
        elif op == "flatten":
            x = x.reshape(x.shape[0], -1)
        else:  # validated on load; kept as a guard for hand-built artifacts
            raise ArtifactError(f"layer {layer.get('name')!r}: unknown op {op!r}")
        if collect is not None:
            collect.append(x)
    return x


def integer_inference(
    artifact: Artifact, x: np.ndarray, paths: dict[str, str] | None = None, mode: int | str = 0
) -> np.ndarray:
    """Float inputs (N, *input_shape), or (N, F) for a (1, F) feature model → integer logits (N, classes) at
    the last layer's out_frac, in EVE ``mode``."""
    return integer_inference_q(artifact, quantize_input(artifact, x), paths, mode=mode)


def predict(
    artifact: Artifact,
    x: np.ndarray,
    paths: dict[str, str] | None = None,
    batch: int = 256,
    mode: int | str = 0,
):
    out = [
        np.argmax(integer_inference(artifact, x[i : i + batch], paths, mode=mode), axis=1)
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def frac_for_max(max_abs: float, bits: int = 16, margin: float = 1.0, lo: int = -8, hi: int = 24) -> int:
    """Largest fraction bits f such that max_abs·margin·2^f fits a signed ``bits`` integer."""
    limit = (1 << (bits - 1)) - 1
    if max_abs <= 0 or not math.isfinite(max_abs):
        return hi
    return int(max(lo, min(hi, math.floor(math.log2(limit / (max_abs * margin))))))
