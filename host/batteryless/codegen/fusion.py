"""Fused requantise + ReLU: which weight-layer tasks absorb the ReLU that follows them.

A ReLU directly after a weight layer is max(0, y) on the layer's requantised int16 output (spec.py), so a
kernel whose requantisation saturates can clamp at 0 there instead (on the Cortex-M4 USAT #15 in place of
SSAT #16: the same instruction) and the ReLU task, a second pass over the activation, disappears. Only
backends whose kernels implement the ``_relu_`` entry points (bl_kernels.h) are listed: this table is the
one place codegen learns the capability. ``ref`` keeps the separate ReLU task; ``lea`` fuses it into the
FFT path's block rows only (its final rescale loop clamps at 0; its direct paths keep the ReLU task).
"""

from __future__ import annotations

from typing import Any

# backend -> the weight-layer kernels that have a fused ``_relu_`` variant (cmsis: the direct paths; lea: the
# linear FFT path's block kernel, bl_linear_fft_block_relu_q15; the resumable bl_mac_step keeps the ReLU)
FUSED_RELU_KERNELS: dict[str, frozenset[str]] = {
    "cmsis": frozenset({"linear_dense", "linear_circ", "conv_dense", "conv_circ"}),
    "lea": frozenset({"linear_fft_block"}),
}

WEIGHT_OPS = ("linear", "conv1d", "conv2d")


def relu_after(layers: list[dict[str, Any]], li: int) -> str | None:
    """The name of the ReLU layer that reads only layer ``li``'s output (the next layer), or None. The layer
    list is a chain (artifact.py), so the next layer is the only reader of this one's output."""
    if layers[li]["op"] not in WEIGHT_OPS or li + 1 >= len(layers):
        return None
    nxt = layers[li + 1]
    return nxt["name"] if nxt["op"] == "relu" else None


def fuses(backend: str, kernel: str) -> bool:
    """Whether ``backend``'s ``kernel`` (e.g. ``linear_circ``) has a fused requantise + ReLU variant."""
    return kernel in FUSED_RELU_KERNELS.get(backend, frozenset())


def kernel_name(kernel: str, wsuf: str, relu: bool) -> str:
    """The C entry point: ``bl_linear_circ_w16`` or, fused, ``bl_linear_circ_relu_w16``."""
    return f"bl_{kernel}_{'relu_' if relu else ''}{wsuf}"
