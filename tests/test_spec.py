"""The numeric spec (integer numpy model): checked against a scalar re-implementation written from
docs/numeric-spec.md, against float math, and for determinism."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from batteryless import spec
from batteryless.rad.circulant import BlockCirculantConv, BlockCirculantLinear
from batteryless.rad.quantize import to_artifact


# --- scalar reference of the fixed-point FFT, written from the prose spec, loop by loop -------------------
def _ref_twiddle(k, j, inverse):
    import math

    def q(v):
        return max(-32768, min(32767, math.floor(v * 32768 + 0.5)))

    s = math.sin(2 * math.pi * j / k)
    return q(math.cos(2 * math.pi * j / k)), q(s if inverse else -s)


def _ref_fft(re, im, inverse=False):
    k = len(re)
    bits = k.bit_length() - 1
    order = [int(format(i, f"0{bits}b")[::-1], 2) for i in range(k)]
    zr = [int(re[i]) for i in order]
    zi = [int(im[i]) for i in order]
    sat = lambda v: max(-32768, min(32767, v))  # noqa: E731
    m = 2
    while m <= k:
        for start in range(0, k, m):
            for j in range(m // 2):
                t = j * (k // m)
                a, b = start + j, start + j + m // 2
                if t == 0:
                    tr, ti = zr[b], zi[b]
                else:
                    wr, wi = _ref_twiddle(k, t, inverse)
                    tr = (wr * zr[b] - wi * zi[b] + 16384) >> 15
                    ti = (wr * zi[b] + wi * zr[b] + 16384) >> 15
                ar, ai = zr[a], zi[a]
                zr[a], zi[a] = sat((ar + tr) >> 1), sat((ai + ti) >> 1)
                zr[b], zi[b] = sat((ar - tr) >> 1), sat((ai - ti) >> 1)
        m *= 2
    return zr, zi


@settings(max_examples=60, deadline=None)
@given(
    logk=st.integers(1, 6),
    data=st.data(),
    inverse=st.booleans(),
)
def test_fft_q15_matches_scalar_reference(logk, data, inverse):
    k = 1 << logk
    ints = st.integers(-32768, 32767)
    re = data.draw(st.lists(ints, min_size=k, max_size=k))
    im = data.draw(st.lists(ints, min_size=k, max_size=k))
    got_r, got_i = spec.fft_q15(np.array([re]), np.array([im]), inverse=inverse)
    ref_r, ref_i = _ref_fft(re, im, inverse)
    assert got_r[0].tolist() == ref_r
    assert got_i[0].tolist() == ref_i


@pytest.mark.parametrize("k", [2, 4, 8, 16, 32, 64])
def test_fft_q15_approximates_scaled_dft(k):
    rng = np.random.default_rng(k)
    x = rng.integers(-20000, 20000, (200, k))
    r, i = spec.fft_q15(x, np.zeros_like(x))
    ref = np.fft.fft(x, axis=-1) / k
    # stated bound: ≤ log2(k)/2 + 1 LSB (one rounding per stage, halved by the next stage's shift)
    bound = np.log2(k) / 2 + 1
    assert np.abs(r - ref.real).max() <= bound and np.abs(i - ref.imag).max() <= bound
    # DC and Nyquist of a real input are exactly real
    assert not i[:, 0].any() and not i[:, k // 2].any()


def test_pack_unpack_roundtrip():
    rng = np.random.default_rng(0)
    for k in (2, 4, 8, 16):
        packed = rng.integers(-32768, 32767, (3, 5, k))
        assert np.array_equal(spec.pack_spectrum(*spec.unpack_spectrum(packed)), packed)


def test_wrap_and_rounding_primitives():
    assert spec.wrap32(np.array([2**31, -(2**31) - 1, 5])).tolist() == [-(2**31), 2**31 - 1, 5]
    # half rounds up (toward +inf): 3/2 → 2, −3/2 → −1
    assert spec.shift_round(np.array([3, -3, 5, -5]), 1).tolist() == [2, -1, 3, -2]
    assert spec.quantize(np.array([1e9, -1e9, 0.5]), 0).tolist() == [32767, -32768, 1]


def _small_artifact(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "mlp":
        net = nn.Sequential(
            nn.Flatten(),
            BlockCirculantLinear(64, 32, 8),
            nn.ReLU(),
            nn.Linear(32, 16),
            nn.ReLU(),
            BlockCirculantLinear(16, 10, 4),
        )
        shape = (1, 8, 8)
    elif kind == "cnn2d":
        net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            BlockCirculantConv(2, 8, 16, (3, 3), 8, (1, 1), (1, 1)),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            BlockCirculantLinear(64, 10, 8),
        )
        shape = (1, 8, 8)
    else:
        net = nn.Sequential(
            BlockCirculantConv(1, 4, 8, (5,), 4, (2,), (2,)),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Flatten(),
            nn.Linear(64, 6),
        )
        shape = (4, 32)
    x = np.random.default_rng(seed).normal(size=(64, *shape)).astype(np.float32)
    art = to_artifact(
        net.eval(),
        x,
        weight_bits=16,
        input_shape=shape,
        num_classes=net[-1].out_features if hasattr(net[-1], "out_features") else 10,
        normalisation={"mean": 0.0, "std": 1.0},
    )
    return art, x


@pytest.mark.parametrize("kind", ["mlp", "cnn2d", "cnn1d"])
@pytest.mark.parametrize("path", ["fft", "direct"])
def test_integer_inference_tracks_float_model(kind, path):
    art, x = _small_artifact(kind)
    paths = {layer["name"]: path for layer in art.weight_layers()}
    logits = spec.integer_inference(art, x, paths) / 2.0 ** art.weight_layers()[-1]["out_frac"]
    with torch.no_grad():
        ref = art.to_float_module()(torch.as_tensor(art.normalise(x))).numpy()
    scale = np.abs(ref).max()
    # stated bound: integer logits within 2% of the float logits' range (16-bit weights and activations)
    assert np.abs(logits - ref).max() <= 0.02 * scale
    assert (np.argmax(logits, 1) == np.argmax(ref, 1)).mean() >= 0.95


def test_integer_inference_is_deterministic_and_collects_layers():
    art, x = _small_artifact("cnn2d")
    collected: list = []
    a = spec.integer_inference_q(art, spec.quantize_input(art, x), collect=collected)
    b = spec.integer_inference(art, x)
    assert np.array_equal(a, b)
    assert len(collected) == len(art.layers)
    assert all(c.min() >= -32768 and c.max() <= 32767 for c in collected)


def test_wrong_input_shape_is_refused():
    art, x = _small_artifact("mlp")
    from batteryless.errors import ArtifactError

    with pytest.raises(ArtifactError, match="input shape"):
        spec.integer_inference(art, x[:, :, :4, :])
