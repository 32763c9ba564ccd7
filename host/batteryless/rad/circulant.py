"""Block-circulant Linear and Conv layers (CirCNN), first-column convention.

A weight matrix W (out × in) is split into k×k blocks; block (i, j) is circulant and defined by one length-k
vector w[i, j]: C[r, c] = w[(r − c) mod k], so C·x = IFFT(FFT(w) ∘ FFT(x)) (REFERENCE.md §4). Dimensions that
k does not divide are zero-padded up to the next multiple (the padded rows are dropped, padded inputs are 0).

Conv layers make the (out-channel × in-channel) matrix at every kernel tap block-circulant: the weight is
``w[p, q, k, *kernel]``. The forward pass is FFT-based (channel blocks are transformed once per input
position); gradients come from autograd through ``torch.fft``. ``dense_weight()`` expands the weight to the
ordinary dense layout, which the tests use as the independent reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from batteryless.errors import CompressionError


def check_block_size(block: int, where: str = "") -> None:
    if block < 1 or block & (block - 1):
        raise CompressionError(f"block size {block}{where} is not a power of two (1, 2, 4, 8, 16, …)")


def blocks(n: int, block: int) -> int:
    return math.ceil(n / block)


def circulant_index(block: int) -> torch.Tensor:
    """idx[r, c] = (r − c) mod k: C = w[idx]."""
    r = torch.arange(block).unsqueeze(1)
    c = torch.arange(block).unsqueeze(0)
    return (r - c) % block


def expand_blocks(w: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """w[p, q, k, *rest] → dense [rows, cols, *rest] (padding cropped). Differentiable."""
    p, q, k = w.shape[:3]
    rest = w.shape[3:]
    idx = circulant_index(k).to(w.device)
    full = w[:, :, idx]  # p, q, k(r), k(c), *rest
    full = full.permute(0, 2, 1, 3, *range(4, 4 + len(rest))).reshape(p * k, q * k, *rest)
    return full[:rows, :cols]


def project_dense(weight: torch.Tensor, block: int) -> torch.Tensor:
    """Nearest block-circulant matrix (Frobenius norm): average each wrapped diagonal of each block.

    weight: [rows, cols, *rest] → w[p, q, k, *rest]. Padding is treated as free (only real entries count).
    """
    rows, cols = weight.shape[:2]
    rest = weight.shape[2:]
    k = block
    p, q = blocks(rows, k), blocks(cols, k)
    padded = weight.new_zeros((p * k, q * k, *rest))
    mask = weight.new_zeros((p * k, q * k, *([1] * len(rest))))
    padded[:rows, :cols] = weight
    mask[:rows, :cols] = 1
    # [p, k(r), q, k(c), *rest] → [p, q, k(r), k(c), *rest]
    perm = (0, 2, 1, 3, *range(4, 4 + len(rest)))
    pb = padded.reshape(p, k, q, k, *rest).permute(perm)
    mb = mask.reshape(p, k, q, k, *([1] * len(rest))).permute(perm)
    idx = circulant_index(k).to(weight.device)
    sums = weight.new_zeros((p, q, k, *rest))
    counts = weight.new_zeros((p, q, k, *([1] * len(rest))))
    for d in range(k):
        sel = idx == d  # the wrapped diagonal d: positions (r, c) with r − c ≡ d
        sums[:, :, d] = pb[:, :, sel].sum(dim=2)
        counts[:, :, d] = mb[:, :, sel].sum(dim=2)
    return sums / counts.clamp(min=1)


class _BlockCirculantBase(nn.Module):
    block: int
    in_dim: int
    out_dim: int

    def _spectra(self) -> torch.Tensor:
        return torch.fft.rfft(self.weight, dim=2)  # p, q, k/2+1, *kernel

    def dense_weight(self) -> torch.Tensor:
        raise NotImplementedError

    @property
    def grid(self) -> tuple[int, int]:
        return self.weight.shape[0], self.weight.shape[1]


class BlockCirculantLinear(_BlockCirculantBase):
    def __init__(self, in_features: int, out_features: int, block: int, bias: bool = True):
        super().__init__()
        check_block_size(block)
        self.in_features, self.out_features, self.block = in_features, out_features, block
        self.in_dim, self.out_dim = in_features, out_features
        p, q = blocks(out_features, block), blocks(in_features, block)
        self.weight = nn.Parameter(torch.empty(p, q, block))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.uniform_(self.weight, -1 / math.sqrt(in_features), 1 / math.sqrt(in_features))

    @classmethod
    def from_dense(cls, layer: nn.Linear, block: int) -> BlockCirculantLinear:
        new = cls(layer.in_features, layer.out_features, block, bias=layer.bias is not None)
        with torch.no_grad():
            new.weight.copy_(project_dense(layer.weight.detach(), block))
            if layer.bias is not None:
                new.bias.copy_(layer.bias.detach())
        return new

    def dense_weight(self) -> torch.Tensor:
        return expand_blocks(self.weight, self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, q, k = self.weight.shape
        n = x.shape[0]
        x = F.pad(x, (0, q * k - self.in_features)).reshape(n, q, k)
        xf = torch.fft.rfft(x, dim=-1)  # n, q, f
        yf = torch.einsum("nqf,pqf->npf", xf, self._spectra())
        y = torch.fft.irfft(yf, n=k, dim=-1).reshape(n, p * k)[:, : self.out_features]
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, block={self.block}"


class BlockCirculantConv(_BlockCirculantBase):
    """Conv1d / Conv2d whose channel matrix at each tap is block-circulant (stride, padding, no dilation)."""

    def __init__(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, ...],
        block: int,
        stride: tuple[int, ...],
        padding: tuple[int, ...],
        bias: bool = True,
    ):
        super().__init__()
        check_block_size(block)
        self.dims = dims
        self.in_channels, self.out_channels, self.block = in_channels, out_channels, block
        self.in_dim, self.out_dim = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), tuple(stride), tuple(padding)
        p, q = blocks(out_channels, block), blocks(in_channels, block)
        self.weight = nn.Parameter(torch.empty(p, q, block, *self.kernel_size))
        fan_in = in_channels * math.prod(self.kernel_size)
        nn.init.uniform_(self.weight, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    @classmethod
    def from_dense(cls, layer: nn.Conv1d | nn.Conv2d, block: int) -> BlockCirculantConv:
        dims = 1 if isinstance(layer, nn.Conv1d) else 2
        if layer.groups != 1 or any(d != 1 for d in layer.dilation):
            raise CompressionError(f"{type(layer).__name__} with groups or dilation is not supported")
        if isinstance(layer.padding, str):
            raise CompressionError("string padding ('same'/'valid') is not supported; give explicit sizes")
        new = cls(
            dims,
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            block,
            layer.stride,
            layer.padding,
            bias=layer.bias is not None,
        )
        with torch.no_grad():
            new.weight.copy_(project_dense(layer.weight.detach(), block))
            if layer.bias is not None:
                new.bias.copy_(layer.bias.detach())
        return new

    def dense_weight(self) -> torch.Tensor:
        return expand_blocks(self.weight, self.out_channels, self.in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, q, k = self.weight.shape[:3]
        taps = math.prod(self.kernel_size)
        if self.dims == 1:
            x4 = x.unsqueeze(2)
            ks, st, pd = (1, *self.kernel_size), (1, *self.stride), (0, *self.padding)
        else:
            x4, ks, st, pd = x, self.kernel_size, self.stride, self.padding
        n, _, h, w = x4.shape
        x4 = F.pad(x4, (0, 0, 0, 0, 0, q * k - self.in_channels))
        cols = F.unfold(x4, ks, padding=pd, stride=st)  # n, (q*k)*taps, L
        length = cols.shape[-1]
        cols = cols.reshape(n, q, k, taps, length)
        xf = torch.fft.rfft(cols, dim=2)  # n, q, f, taps, L
        wf = self._spectra().reshape(p, q, k // 2 + 1, taps)
        yf = torch.einsum("nqftl,pqft->npfl", xf, wf)
        y = torch.fft.irfft(yf, n=k, dim=2).reshape(n, p * k, length)[:, : self.out_channels]
        out_h = (h + 2 * pd[0] - ks[0]) // st[0] + 1
        out_w = (w + 2 * pd[1] - ks[1]) // st[1] + 1
        y = y.reshape(n, self.out_channels, out_h, out_w)
        if self.dims == 1:
            y = y.squeeze(2)
        if self.bias is not None:
            y = y + self.bias.reshape(1, -1, *([1] * self.dims))
        return y

    def extra_repr(self) -> str:
        return (
            f"conv{self.dims}d in={self.in_channels}, out={self.out_channels}, kernel={self.kernel_size}, "
            f"block={self.block}, stride={self.stride}, padding={self.padding}"
        )


def to_block_circulant(layer: nn.Module, block: int) -> nn.Module:
    """Replace one Linear/Conv layer by its nearest block-circulant version (block 1 keeps it dense)."""
    if block == 1:
        return layer
    if isinstance(layer, nn.Linear):
        return BlockCirculantLinear.from_dense(layer, block)
    if isinstance(layer, nn.Conv1d | nn.Conv2d):
        return BlockCirculantConv.from_dense(layer, block)
    raise CompressionError(f"{type(layer).__name__} cannot be made block-circulant")


def circulant_numpy_matrix(w: np.ndarray) -> np.ndarray:
    """A single k-vector → its k×k circulant matrix (first-column convention), for tests and docs."""
    k = len(w)
    r, c = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    return w[(r - c) % k]


class BlockMask(nn.Module):
    """Parametrization that zeroes pruned circulant blocks (structured pruning; EVE builds on it)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask.float())

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask.reshape(*self.mask.shape, *([1] * (w.ndim - 2)))


def block_norms(w: torch.Tensor) -> torch.Tensor:
    """‖w[i, j]‖ per block of a circulant weight [p, q, k, *kernel]."""
    return w.flatten(2).norm(dim=2)


def prune_mask(w: torch.Tensor, ratio: float, dead: torch.Tensor | None = None) -> torch.Tensor:
    """Keep the largest-norm blocks; drop round(ratio·blocks) of them (at least one block stays).

    ``dead`` (bool [p, q]): blocks whose input the previous layer's pruning already removed (every row
    feeding their column pruned: a constant) — they are dropped before any live block."""
    norms = block_norms(w.detach())
    if dead is not None:
        norms = torch.where(dead, torch.full_like(norms, -1.0), norms)
    n = norms.numel()
    drop = min(int(round(ratio * n)), n - 1)
    mask = torch.ones_like(norms)
    if drop > 0:
        mask.view(-1)[torch.argsort(norms.view(-1), stable=True)[:drop]] = 0
    return mask


def apply_block_mask(layer: _BlockCirculantBase, mask: torch.Tensor) -> None:
    import torch.nn.utils.parametrize as parametrize

    layer.register_buffer("block_mask", mask.detach().clone())
    parametrize.register_parametrization(layer, "weight", BlockMask(mask))
