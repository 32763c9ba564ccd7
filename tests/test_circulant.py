"""Block-circulant layers against their dense expansion (independent reference: plain matmul / conv)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from batteryless.errors import CompressionError
from batteryless.rad.circulant import (
    BlockCirculantConv,
    BlockCirculantLinear,
    circulant_numpy_matrix,
    expand_blocks,
    project_dense,
    to_block_circulant,
)


def test_first_column_convention_matches_fft_product():
    rng = np.random.default_rng(1)
    w, x = rng.normal(size=8), rng.normal(size=8)
    c = circulant_numpy_matrix(w)
    assert np.allclose(c[:, 0], w)  # first column is w
    assert np.allclose(c @ x, np.fft.ifft(np.fft.fft(w) * np.fft.fft(x)).real)


@pytest.mark.parametrize("shape", [(64, 128, 16), (60, 10, 8), (13, 7, 4), (8, 8, 2)])
def test_linear_equals_dense_expansion_outputs_and_gradients(shape):
    torch.manual_seed(0)
    fin, fout, k = shape
    layer = BlockCirculantLinear(fin, fout, k).double()
    x = torch.randn(5, fin, dtype=torch.double, requires_grad=True)
    y = layer(x)
    dense = layer.dense_weight()
    ref = x @ dense.T + layer.bias
    assert torch.allclose(y, ref, atol=1e-10)
    g = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (x, layer.weight), g)
    # reference gradients: through the dense formula (gather-based expansion, no FFT)
    w2 = layer.weight.detach().clone().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    ref2 = x2 @ expand_blocks(w2, fout, fin).T + layer.bias.detach()
    rx, rw = torch.autograd.grad(ref2, (x2, w2), g)
    assert torch.allclose(gx, rx, atol=1e-10)
    assert torch.allclose(gw, rw, atol=1e-10)


@pytest.mark.parametrize("dims,stride,padding", [(1, 2, 1), (2, 1, 1), (2, 2, 0)])
def test_conv_equals_dense_conv(dims, stride, padding):
    torch.manual_seed(1)
    conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(12, 20, 3, stride=stride, padding=padding).double()
    layer = BlockCirculantConv.from_dense(conv, 8).double()
    x = torch.randn(2, 12, *((11,) if dims == 1 else (9, 7)), dtype=torch.double, requires_grad=True)
    fn = F.conv1d if dims == 1 else F.conv2d
    y = layer(x)
    ref = fn(x, layer.dense_weight(), layer.bias, stride=layer.stride, padding=layer.padding)
    assert y.shape == ref.shape
    assert torch.allclose(y, ref, atol=1e-10)
    g = torch.randn_like(y)
    (gw,) = torch.autograd.grad(y, (layer.weight,), g)
    w2 = layer.weight.detach().clone().requires_grad_(True)
    ref2 = fn(
        x.detach(), expand_blocks(w2, 20, 12), layer.bias.detach(), stride=layer.stride, padding=layer.padding
    )
    (rw,) = torch.autograd.grad(ref2, (w2,), g)
    assert torch.allclose(gw, rw, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 20), cols=st.integers(1, 20), k=st.sampled_from([1, 2, 4, 8]), seed=st.integers(0, 99)
)
def test_projection_is_idempotent_and_nearest(rows, cols, k, seed):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(rows, cols, generator=gen, dtype=torch.double)
    w = project_dense(a, k)
    pa = expand_blocks(w, rows, cols)
    # idempotent: projecting a block-circulant matrix returns it unchanged
    assert torch.allclose(expand_blocks(project_dense(pa, k), rows, cols), pa, atol=1e-12)
    # nearest: no random block-circulant matrix is closer to a
    best = (a - pa).norm()
    for _ in range(5):
        other = expand_blocks(w + 0.1 * torch.randn(w.shape, generator=gen, dtype=torch.double), rows, cols)
        assert (a - other).norm() >= best - 1e-12
    # and the residual is orthogonal to the block-circulant subspace (first-order optimality)
    direction = expand_blocks(torch.randn(w.shape, generator=gen, dtype=torch.double), rows, cols)
    assert abs(float(((a - pa) * direction).sum())) < 1e-9


def test_block_size_must_be_power_of_two():
    with pytest.raises(CompressionError, match="power of two"):
        BlockCirculantLinear(16, 16, 6)
    with pytest.raises(CompressionError, match="cannot be made block-circulant"):
        to_block_circulant(nn.ReLU(), 4)
