"""Task granularity: how large one atomic task may be, from the board's energy buffer and power model, and
how a direct-path layer is cut into ``bl_mac_step`` steps that fit (firmware/include/bl_kernels.h).

A power-on period of a buffer of capacitance C between v_on and v_off holds E = C (v_on² − v_off²) / 2 of
usable energy, i.e. E / (energy per cycle) cycles of the active CPU. An atomic step (one task plus its
commit, after the boot and recovery of its power-on period) that does not fit in one period never
completes: FLEX then makes no progress at all. ``auto`` keeps the coarse default tasks when the largest
fits in half a period (the other half is margin for the boot, recovery, commit and a buffer that is not
full); otherwise every task is cut to at most that half-period budget.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from batteryless.boards import Board
from batteryless.codegen.costs import CostModel
from batteryless.errors import UsageError

PERIOD_FRACTION = (
    0.5  # of a power-on period one atomic task may take (the rest: boot, recovery, commit, margin)
)


@dataclass(frozen=True)
class Granularity:
    mode: str  # "coarse" (the default whole-unit tasks) or "fine" (tasks cut to max_step_cycles)
    max_step_cycles: float | None  # None for coarse
    power_on_cycles: float | None  # of the board's buffer (None when given explicitly)
    reason: str
    boot_cycles: float = 0.0  # a resumed boot (reset to the first task), paid in every power-on period

    def describe(self) -> dict:
        return {
            "mode": self.mode,
            "max_step_cycles": None if self.max_step_cycles is None else round(self.max_step_cycles),
            "power_on_cycles": None if self.power_on_cycles is None else round(self.power_on_cycles),
            "period_fraction": PERIOD_FRACTION,
            "boot_cycles": round(self.boot_cycles),
            "reason": self.reason,
        }


def with_capacitance(board: Board, capacitance_f: float) -> Board:
    """``board`` with its energy buffer's capacitance replaced (the rest of the buffer kept), so ``auto``
    granularity follows the buffer that will actually be used (an emulation's, not only the default)."""
    c = capacitance_f
    if isinstance(c, bool) or not isinstance(c, int | float) or not math.isfinite(c) or c <= 0:
        raise UsageError(f"capacitance must be a positive number of farads, not {capacitance_f!r}")
    return dataclasses.replace(board, energy_buffer=dataclasses.replace(board.energy_buffer, capacitance_f=c))


def power_on_cycles(board: Board, costs: CostModel) -> float:
    """Active-CPU cycles one full charge of the board's energy buffer pays for."""
    return board.energy_buffer.usable_energy_j / costs.joules_per_cycle


def parse_granularity(value: str | int | float | None) -> str | float:
    """``auto`` (default), ``coarse``, or a positive number: the most estimated cycles one task may take."""
    if value is None or value == "auto":
        return "auto"
    if value == "coarse":
        return "coarse"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"granularity must be auto, coarse or a number of cycles, not {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise UsageError(f"granularity must be a positive number of cycles, not {value!r}")
    return v


def boot_cycles(board: Board, backend: str) -> float:
    """Upper bound of a resumed boot (reset vector to the first task: start-up, recovery with its record
    check, the app's loop set-up) from the board's ``[cost.<backend>.step]`` ``boot``, or 0 where the board
    has no such figure. Every power-on period pays it before its first step."""
    model = step_model(board, backend)
    return float(model.get("boot", 0.0)) if model else 0.0


def choose(board: Board, costs: CostModel, want: str | float, coarse_largest: float) -> Granularity:
    """The granularity for ``want`` (``parse_granularity``), given the largest coarse task's estimate.
    ``auto`` takes the boot out of the power-on period first (``boot_cycles``), then allows a task half of
    the rest."""
    if want == "coarse":
        return Granularity("coarse", None, None, "asked for (--granularity coarse)")
    if isinstance(want, float):
        if coarse_largest <= want:
            return Granularity("coarse", None, None, f"every default task fits {want:.0f} cycles")
        return Granularity("fine", want, None, f"asked for at most {want:.0f} cycles per task")
    period = power_on_cycles(board, costs)
    boot = boot_cycles(board, costs.backend)
    # a period that cannot even hold the boot gets the finest tasks (no step can finish there anyway)
    budget = PERIOD_FRACTION * max(period - boot, 0.0) or 1.0
    buf = board.energy_buffer
    what = f"{buf.capacitance_f * 1e6:g} uF {buf.v_on:g}->{buf.v_off:g} V buffer"
    what += f": {period:,.0f} cycles per charge"
    if boot:
        what += f", {boot:,.0f} of them a resumed boot"
    if coarse_largest <= budget:
        return Granularity(
            "coarse",
            None,
            period,
            f"{what}; the largest default task ({coarse_largest:,.0f}) fits half of the rest",
            boot,
        )
    return Granularity(
        "fine",
        budget,
        period,
        f"{what}; the largest default task ({coarse_largest:,.0f}) does not fit half of the rest",
        boot,
    )


def step_model(board: Board, backend: str) -> dict[str, float] | None:
    """The board's fitted bound of one atomic step per task kind (``[cost.<backend>.step]``), or None."""
    table = board.extra.get("cost", {}).get(backend, {}).get("step")
    if not isinstance(table, dict):
        return None
    return {k: float(v) for k, v in table.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def step_bound(model: dict[str, float] | None, task) -> int | None:
    """Upper bound (cycles) of the atomic step of one codegen Task — the task, the flex app's loop and the
    commit — or None when the board has no bound for its kind (FFT-path and coarse direct-path tasks)."""
    if model is None:
        return None
    if task.kind == "mac_step":
        p = "linear" if task.op == "linear" else "conv"
        keys = (f"{p}_call", f"{p}_per_output", f"{p}_per_mac")
        if all(k in model for k in keys):
            return math.ceil(model[keys[0]] + model[keys[1]] * task.outputs + model[keys[2]] * task.macs)
        return None
    kind = "pool" if task.kind in ("maxpool", "avgpool") else task.kind
    if kind in ("relu", "pool") and f"{kind}_call" in model and f"{kind}_per_element" in model:
        return math.ceil(model[f"{kind}_call"] + model[f"{kind}_per_element"] * task.elements)
    return None


def largest_step_bound(model: dict[str, float] | None, tasks: list[dict], input_chunk_len: int) -> dict:
    """schedule.json's ``largest_step_bound``: the largest per-task bound including the input-load chunks,
    or None (with the kinds that have no bound) when any task has none."""
    bounds = [t.get("step_bound_cycles") for t in tasks]
    if model is not None and "input_call" in model and "input_per_element" in model:
        bounds.append(math.ceil(model["input_call"] + model["input_per_element"] * input_chunk_len))
    else:
        bounds.append(None)
    missing = sorted({t["kind"] for t in tasks if t.get("step_bound_cycles") is None})
    if any(b is None for b in bounds):
        return {"largest_step_bound": None, "step_bound_missing": missing or ["input"]}
    return {"largest_step_bound": max(bounds), "step_bound_missing": []}


def input_chunk(input_len: int, costs: CostModel, max_step: float) -> int:
    """Input elements one resumable input-load step may copy within ``max_step`` estimated cycles."""
    per = (max_step - costs.cycles_per_call) // max(costs.cycles_per_element, 1e-9)
    return int(min(input_len, max(1, per)))


def mac_units(
    out_ch: int,
    out_h: int,
    out_w: int,
    in_ch: int,
    taps: int,
    costs: CostModel,
    max_step: float,
    conv: bool = False,
    w8: bool = False,
) -> list[tuple[int, int, int, int, int, int, int, int]]:
    """``bl_mac_unit`` tuples (o0, o1, oy0, oy1, ox0, ox1, c0, c1) covering a direct-path layer in steps of
    at most ``max_step`` estimated cycles: whole outputs (all input channels) grouped along columns, rows,
    then channels while they fit; otherwise one output at a time over input-channel ranges (partials).
    ``conv``: a convolution's steps (priced as walk_conv_macs); ``w8``: over 8-bit weights (+ w8_macs)."""
    # the bl_mac_step walk: priced as plan.task_features counts a mac_step task (walk_macs, outputs)
    mac = costs.coefficient("cycles_per_walk_conv_mac" if conv else "cycles_per_walk_mac")
    mac += costs.cycles_per_w8_mac if w8 else 0.0
    budget = max(max_step - costs.cycles_per_call, mac * taps + costs.cycles_per_output)
    per_out = in_ch * taps * mac + costs.cycles_per_output
    units = []
    if per_out <= budget:
        n = max(1, int(budget // max(per_out, 1e-9)))  # outputs per step
        if n < out_w:
            for o in range(out_ch):
                for oy in range(out_h):
                    for ox in range(0, out_w, n):
                        units.append((o, o + 1, oy, oy + 1, ox, min(out_w, ox + n), 0, in_ch))
        elif n < out_h * out_w:
            rows = n // out_w
            for o in range(out_ch):
                for oy in range(0, out_h, rows):
                    units.append((o, o + 1, oy, min(out_h, oy + rows), 0, out_w, 0, in_ch))
        else:
            chans = n // (out_h * out_w)
            for o in range(0, out_ch, chans):
                units.append((o, min(out_ch, o + chans), 0, out_h, 0, out_w, 0, in_ch))
        return units
    cs = max(1, int((budget - costs.cycles_per_output) // max(taps * mac, 1e-9)))  # input channels per step
    for o in range(out_ch):
        for oy in range(out_h):
            for ox in range(out_w):
                for c0 in range(0, in_ch, cs):
                    units.append((o, o + 1, oy, oy + 1, ox, ox + 1, c0, min(in_ch, c0 + cs)))
    return units


def _reciprocal(d: int, j_max: int) -> tuple[int, int]:
    """(m, sh) with ((j * m) >> 16) >> sh == j // d for every j in [0, j_max] and m < 2**16 (bl_mac_grid),
    found by checking every j: the firmware then divides with one 16x16 multiplication and a short shift
    of its high word. (1, 0) for d == 1 (the firmware skips it)."""
    if d == 1:
        return 1, 0
    j = np.arange(j_max + 1, dtype=np.uint64)
    want = j // d
    for sh in range(16):
        m = -(-(1 << (16 + sh)) // d)  # ceil(2^(16+sh) / d)
        if m >= 1 << 16:
            break
        if np.array_equal((j * np.uint64(m)) >> np.uint64(16 + sh), want):
            return m, sh
    raise ValueError(f"no 16-bit reciprocal of {d} is exact up to {j_max}")


def mac_grid(
    units: list[tuple[int, ...]], out_ch: int, out_h: int, out_w: int, in_ch: int, conv=None, k: int = 1
) -> dict | None:
    """The ``bl_mac_grid`` (firmware/include/bl_kernels.h) whose step j is ``units[j]`` for every j, or None
    when the units are not such a grid (the caller then dispatches them one by one). Checked, not assumed:
    the grid's units are regenerated and compared with ``units``. ``conv`` (in_h, in_w, kh, kw, sh, sw, ph,
    pw) and the block size ``k`` of a conv layer add the pixel-step constants (``px`` = 1) when every step is
    one output pixel of one output channel: the per-layer values the firmware's pixel step reads instead of
    re-deriving and re-checking them from the geometry every step (pixel_constants)."""
    if not units or len(units) >= 1 << 16:
        return None
    o0, o1, oy0, oy1, ox0, ox1, c0, c1 = units[0]
    s_o, s_y, s_x, s_c = o1 - o0, oy1 - oy0, ox1 - ox0, c1 - c0
    n = [-(-dim // s) for dim, s in ((out_ch, s_o), (out_h, s_y), (out_w, s_x), (in_ch, s_c))]
    if math.prod(n) != len(units):
        return None
    regen = [
        (o, min(out_ch, o + s_o), y, min(out_h, y + s_y), x, min(out_w, x + s_x), c, min(in_ch, c + s_c))
        for o in range(0, out_ch, s_o)
        for y in range(0, out_h, s_y)
        for x in range(0, out_w, s_x)
        for c in range(0, in_ch, s_c)
    ]
    if regen != [tuple(u) for u in units]:
        return None
    _, n_y, n_x, n_c = n
    try:
        m_c, sh_c = _reciprocal(n_c, len(units) - 1)
        m_x, sh_x = _reciprocal(n_x, len(units) // n_c - 1)
        m_y, sh_y = _reciprocal(n_y, len(units) // (n_c * n_x) - 1)
    except ValueError:
        return None
    grid = {
        "n_y": n_y, "n_x": n_x, "n_c": n_c, "s_o": s_o, "s_y": s_y, "s_x": s_x, "s_c": s_c,
        "m_c": m_c, "m_x": m_x, "m_y": m_y, "sh_c": sh_c, "sh_x": sh_x, "sh_y": sh_y,
    }  # fmt: skip
    px = None
    if conv is not None and (s_o, s_y, s_x) == (1, 1, 1):
        px = pixel_constants(out_ch, out_h, out_w, in_ch, conv, k, len(units))
    return grid | (px or dict.fromkeys(PIXEL_FIELDS, 0) | {"pix": None})


# the pixel step's constants (bl_mac_grid with pix); all 0 and pix None when the grid has none
PIXEL_FIELDS = ("n_steps", "in_hw", "out_hw", "block_step", "q", "m_k", "m_o", "sh_k", "sh_o")


def pixel_constants(
    out_ch: int, out_h: int, out_w: int, in_ch: int, conv, k: int, n_steps: int
) -> dict | None:
    """The per-layer constants of the firmware's pixel step (one output pixel of one output channel over a
    range of input channels) and its per-pixel table ``pix`` (bl_mac_pixel: first live input, first live
    tap, live rows and columns, the live-tap ranges of bl_ref_live_first / bl_ref_live_end), or None when
    the layer does not fit its 16-bit arithmetic. Derived from the same geometry as the layer's
    bl_conv_geom, whose output size is checked here, so the firmware need not check it every step."""
    in_h, in_w, kh, kw, sh, sw, ph, pw = conv
    if min(k, kh, kw, sh, sw) < 1 or in_ch < 1 or out_ch < 1 or in_h + 2 * ph < kh or in_w + 2 * pw < kw:
        return None
    if out_h != (in_h + 2 * ph - kh) // sh + 1 or out_w != (in_w + 2 * pw - kw) // sw + 1:
        return None
    taps = kh * kw
    q = -(-in_ch // k)  # blocks of input channels
    n_weights = (-(-out_ch // k)) * q * k * taps  # circulant: a k-vector per block and tap; dense: k = 1
    if max(in_ch * in_h * in_w, out_ch * out_h * out_w, n_weights, in_h, in_w) > 0x7FFF:
        return None
    try:
        m_k, sh_k = _reciprocal(k, max(out_ch, in_ch))
        m_o, sh_o = _reciprocal(out_h * out_w, out_ch * out_h * out_w)
    except ValueError:
        return None

    def live(c0: int, t: int, size: int) -> tuple[int, int]:  # [first, end) of the taps inside the input
        return min(max(-c0, 0), t), min(max(size - c0, 0), t)

    pix = []
    for oy in range(out_h):
        dy0, dy1 = live(oy * sh - ph, kh, in_h)
        for ox in range(out_w):
            dx0, dx1 = live(ox * sw - pw, kw, in_w)
            rows, cols = max(dy1 - dy0, 0), max(dx1 - dx0, 0)
            if rows == 0 or cols == 0:
                pix.append((0, 0, 0, 0))
            else:
                pix.append(((oy * sh - ph + dy0) * in_w + ox * sw - pw + dx0, dy0 * kw + dx0, rows, cols))
    return {
        "n_steps": n_steps, "in_hw": in_h * in_w, "out_hw": out_h * out_w, "block_step": k * taps,
        "q": q, "m_k": m_k, "m_o": m_o, "sh_k": sh_k, "sh_o": sh_o, "pix": pix,
    }  # fmt: skip


# bl_mac_grid's fields in declaration order (the uint16 fields first, then the uint8 shifts; then pix, which
# the planner emits: a table's name or NULL)
GRID_FIELDS = (
    "n_y", "n_x", "n_c", "s_o", "s_y", "s_x", "s_c", "m_c", "m_x", "m_y",
    "n_steps", "in_hw", "out_hw", "block_step", "q", "m_k", "m_o",
    "sh_c", "sh_x", "sh_y", "sh_k", "sh_o",
)  # fmt: skip
