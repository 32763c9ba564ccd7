"""The on-device mode selector: a mode table from predicted energies, and the selection rule.

Before each inference the device reads its stored energy as the buffer voltage (millivolts, through a board
hook) and picks the largest mode whose predicted energy fits the energy stored above the brown-out level:

    E(V) = C/2 · (V² − V_off²)        mode i fits when E(V) ≥ margin · energy_i

so mode i needs ``V ≥ stay_mv[i] = ceil(1000 · sqrt(V_off² + 2 · margin_i · energy_i / C))`` (the search tunes
``margin_i`` per mode). Hysteresis: moving
*up* to a larger mode than the one the last inference ran in needs ``V ≥ enter_mv[i]`` (the same formula with
``margin · (1 + hysteresis)``), so noise around one threshold does not make the device flip modes every
inference; staying in a mode or moving down needs only ``stay_mv``. With no mode fitting, the smallest runs
(FLEX finishes it across power failures). The thresholds are data (``ModeTable``, emitted as C by
:func:`emit_c_table`); ``firmware/eve/bl_eve.c`` implements :func:`select_mode` bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from batteryless.errors import UsageError

MV_MAX = 65535  # thresholds are uint16 millivolts; an unreachable mode gets this


@dataclass(frozen=True)
class ModeTable:
    names: tuple[str, ...]
    energy_j: tuple[float, ...]  # predicted energy of one inference per mode, largest mode first
    stay_mv: tuple[int, ...]
    enter_mv: tuple[int, ...]
    capacitance_f: float
    v_off: float
    margin: tuple[float, ...]  # per mode
    hysteresis: float

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def _mv(v_off: float, energy_j: float, capacitance_f: float) -> int:
    v = math.sqrt(v_off * v_off + 2.0 * energy_j / capacitance_f)
    return min(MV_MAX, math.ceil(round(1000.0 * v, 6)))  # round first: 2690.0000000001 is 2690 mV


def mode_table(
    energy_j: list[float],
    capacitance_f: float,
    v_off: float,
    *,
    margin: float | list[float] = 1.0,
    hysteresis: float = 0.1,
    names: list[str] | None = None,
) -> ModeTable:
    """Thresholds for modes with the given predicted energies (largest mode first, non-increasing).

    ``margin`` (one number or one per mode) scales the energy a mode needs: below 1 a mode may start on
    less than it needs (FLEX finishes it across power failures); the search tunes it per mode."""
    if not 1 <= len(energy_j) <= 8:
        raise UsageError(f"a mode table has 1 … 8 modes, not {len(energy_j)}")
    if any(not (e > 0 and math.isfinite(e)) for e in energy_j):
        raise UsageError(f"predicted mode energies must be positive, are {energy_j}")
    if any(b > a for a, b in zip(energy_j, energy_j[1:], strict=False)):
        raise UsageError(f"mode energies must not increase from mode 0 (the largest) on: {energy_j}")
    margins = (
        [float(margin)] * len(energy_j) if isinstance(margin, int | float) else [float(m) for m in margin]
    )
    if len(margins) != len(energy_j):
        raise UsageError(f"mode table: {len(energy_j)} modes but {len(margins)} margins")
    if not (capacitance_f > 0 and v_off > 0 and all(m > 0 for m in margins) and hysteresis >= 0):
        raise UsageError("mode table: need capacitance_f > 0, v_off > 0, margins > 0, hysteresis >= 0")
    names = names or [f"m{i}" for i in range(len(energy_j))]
    return ModeTable(
        names=tuple(names),
        energy_j=tuple(float(e) for e in energy_j),
        stay_mv=tuple(_mv(v_off, m * e, capacitance_f) for m, e in zip(margins, energy_j, strict=True)),
        enter_mv=tuple(
            _mv(v_off, m * (1 + hysteresis) * e, capacitance_f)
            for m, e in zip(margins, energy_j, strict=True)
        ),
        capacitance_f=capacitance_f,
        v_off=v_off,
        margin=tuple(margins),
        hysteresis=hysteresis,
    )


def with_surplus_floor(table: ModeTable, v_on: float, v_max: float, fractions: list[float]) -> ModeTable:
    """The table with a floor under every mode but the smallest: mode i also needs the buffer above
    ``v_on + fractions[i]·(v_max − v_on)``. A device that boots at ``v_on`` and drains finds its buffer
    above ``v_on`` at an inference start only when it harvested more than it spent since (a surplus), so
    the floor keeps the larger modes for those moments; the thresholds stay data (same C selector)."""
    n = len(table.stay_mv)
    if len(fractions) != n - 1 or any(not 0 <= f <= 1 for f in fractions) or not 0 < v_on <= v_max:
        raise UsageError(f"surplus floor: need {n - 1} fractions in [0, 1] and 0 < v_on <= v_max")
    floor = [math.ceil(round(1000.0 * (v_on + f * (v_max - v_on)), 6)) for f in fractions] + [0]
    return ModeTable(
        names=table.names,
        energy_j=table.energy_j,
        stay_mv=tuple(max(a, b) for a, b in zip(table.stay_mv, floor, strict=True)),
        enter_mv=tuple(max(a, b) for a, b in zip(table.enter_mv, floor, strict=True)),
        capacitance_f=table.capacitance_f,
        v_off=table.v_off,
        margin=table.margin,
        hysteresis=table.hysteresis,
    )


def select_mode(table: ModeTable, mv: int, current: int) -> int:
    """The mode for the next inference at buffer voltage ``mv`` (millivolts) after running ``current``."""
    n = len(table.stay_mv)
    for i in range(n):
        need = table.enter_mv[i] if i < current else table.stay_mv[i]
        if mv >= need:
            return i
    return n - 1


def emit_c_table(table: ModeTable, banner: str) -> str:
    """``eve_table.c``: the generated mode table ``bl_eve_modes`` for firmware/eve/bl_eve.c."""
    n = len(table.stay_mv)
    names = ", ".join(f'"{s}"' for s in table.names)
    margins = ", ".join(f"{m:g}" for m in table.margin)
    energies = ", ".join(f"{1e6 * e:.2f}" for e in table.energy_j)
    return f"""{banner}#include <stdint.h>

#include "bl_eve.h"

/* {n} modes, largest first; C = {table.capacitance_f:g} F, V_off = {table.v_off:g} V, margins {margins},
 * hysteresis {table.hysteresis:g}. Predicted energy per inference (uJ): {energies}. */
static const uint16_t stay_mv[{n}] = {{{", ".join(f"{v}u" for v in table.stay_mv)}}};
static const uint16_t enter_mv[{n}] = {{{", ".join(f"{v}u" for v in table.enter_mv)}}};
static const char *const names[{n}] = {{{names}}};
const bl_eve_table bl_eve_modes = {{{n}u, stay_mv, enter_mv, names}};
"""
