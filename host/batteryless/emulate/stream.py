"""From trace chunks to simulator segments: panel, converter, merging of equal neighbours, the harvest and
converter-loss totals, and a fixed-size sketch of the power for plots. Shared by the in-memory path
(:func:`prepare_segments`, one chunk) and the streaming one (``emulate``: every chunk fed to every run)."""

from __future__ import annotations

import numpy as np

from batteryless.emulate.power import Converter, Panel


def chunk_segments(
    time_s: np.ndarray, p_in: np.ndarray, end_s: float, converter: Converter
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Merge equal consecutive samples of one chunk and apply the converter.

    Returns (segment start times, charging power into the buffer, harvested J, converter loss J)."""
    t = time_s
    if len(p_in) > 1:
        keep = np.empty(len(p_in), dtype=bool)
        keep[0] = True
        np.not_equal(p_in[1:], p_in[:-1], out=keep[1:])
        if not keep.all():
            t, p_in = t[keep], p_in[keep]
    p_ch = converter.output_power(p_in)
    dt = np.empty(len(t))  # segment lengths, without a chunk-sized copy of t
    np.subtract(t[1:], t[:-1], out=dt[:-1])
    dt[-1] = end_s - t[-1]
    harvested = float(np.einsum("i,i->", p_in, dt))
    loss = 0.0 if p_ch is p_in else harvested - float(np.einsum("i,i->", p_ch, dt))
    return t, p_ch, harvested, loss


def chunk_power(time_s: np.ndarray, values: np.ndarray, quantity: str, panel: Panel | None) -> np.ndarray:
    """Harvested power (W) of a chunk's samples (irradiance through the panel)."""
    if quantity == "power":
        return values
    if panel is None:
        from batteryless.errors import TraceError

        raise TraceError("an irradiance trace needs a panel model (--panel NAME)")
    return panel.power(values)


class PowerSketch:
    """Mean harvested power over ``n_bins`` equal windows of an expected duration, accumulated chunk by chunk
    (each sample's energy goes to the window it starts in): the trace curve of the plots, in fixed memory."""

    def __init__(self, duration_s: float, n_bins: int = 4000) -> None:
        self.width = max(duration_s, 1e-9) / n_bins
        self.energy = np.zeros(n_bins + 1)
        self.time = np.zeros(n_bins + 1)

    def add(self, time_s: np.ndarray, p_in: np.ndarray, end_s: float) -> None:
        dt = np.diff(np.append(time_s, end_s))
        b = np.clip((time_s / self.width).astype(np.int64), 0, len(self.energy) - 1)
        self.energy += np.bincount(b, weights=p_in * dt, minlength=len(self.energy))
        self.time += np.bincount(b, weights=dt, minlength=len(self.time))

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        used = self.time > 0
        t = np.flatnonzero(used) * self.width
        return t, self.energy[used] / self.time[used]
