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

A threshold on the stored energy alone cannot know the *income*: with a small buffer it never picks a mode
that needs more than the buffer holds even where the harvester refills it many times over before the next
input arrives, and with a large one it picks the largest mode whenever the buffer holds it even where the
income sustains only the smallest. The **rate rule** (``RatePolicy``, :func:`rate_select`; run-time
adaptation to the harvested energy as REHASH and Zygarde argue for, our own rule) also estimates the
harvested power from the voltage change since the previous reading plus the energy the device spent in
between, and gives the next inference a budget

    budget = income · P_in · period  +  gain · (E(V) − E(ref_mv))

— the energy expected to arrive before the next input plus a share of the stored energy above a reserve
level (negative below it) — and runs the largest mode whose predicted energy fits the budget. The
threshold rule is its special case ``income = 0, gain = 1, ref_mv = V_off``. All unsigned 32-bit
integers (energy as C/2·mV², ms), so the C selector (``bl_eve_select_rate``) matches it bit for bit; its
parameters are generated data
(:func:`emit_c_table`), tuned per board buffer and demand period by
:func:`batteryless.eve.policy.tune_policy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from batteryless.errors import UsageError

MV_MAX = 65535  # thresholds are uint16 millivolts; an unreachable mode gets this


@dataclass(frozen=True)
class RatePolicy:
    """Parameters of the rate rule (module docstring); integers as the device holds them. Energies are in
    units of C/2·(1 mV)² ("mV²": the energy the buffer holds at V millivolts is V², with no multiply by the
    capacitance), so the device needs 32-bit arithmetic only (a 16-bit MCU divides 64-bit numbers slowly)."""

    energy_mv2: tuple[int, ...]  # effective energy of one inference per mode (mV²), largest mode first
    period_ms: int  # demand: one input every period_ms
    ref_mv: int  # reserve level: stored energy above it counts into the budget, below it against
    gain_q8: int  # share of the stored energy above ref_mv in the budget (256 = all of it)
    ewma_q8: int  # weight of the newest income sample in the running estimate (256 = newest only)
    hyst_q8: int  # moving up to a larger mode than the last needs budget >= E·(1 + hyst_q8/256)
    min_dt_ms: int  # readings closer than this to the previous one do not update the income estimate
    full_mv: int  # at or above it the buffer is (nearly) full: income is being clipped, so step up a mode
    top: int = 0  # the largest mode the rule may pick (a mode that spans many power failures may not pay)
    income_q8: int = 256  # weight of the expected income in the budget (256 = what the estimate says)

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass
class RateState:
    """What the device keeps between readings (NVM: it survives power failures)."""

    mv: int = 0  # the previous reading's voltage and time
    ms: int = 0
    spent_mv2: int = 0  # energy of the inferences started since that reading
    p_mv2: int = 0  # running estimate of the income per demand period (net of leakage and boots)


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
    rate: RatePolicy | None = None  # the rate rule; None: the threshold rule

    def as_dict(self) -> dict[str, Any]:
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items() if k != "rate"}
        out["rate"] = self.rate.as_dict() if self.rate is not None else None
        return out


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


U32 = 0xFFFFFFFF
P_MAX = (1 << 30) - 1  # the income estimate saturates here (1e9 mV² per period: far above any buffer)


def rate_policy(
    energy_j: list[float],
    capacitance_f: float,
    period_s: float,
    *,
    ref_mv: int,
    gain: float,
    ewma: float = 0.25,
    hysteresis: float = 0.0,
    min_dt_s: float | None = None,
    full_mv: int = MV_MAX,
    top: int = 0,
    income: float = 1.0,
) -> RatePolicy:
    """The rate rule's integer parameters from physical ones (``gain``, ``ewma``, ``hysteresis``,
    ``income`` as fractions; ``min_dt_s`` defaults to 1/64 of the period)."""
    if not (period_s > 0 and capacitance_f > 0 and 0 <= gain <= 4 and 0 < ewma <= 1 and hysteresis >= 0):
        raise UsageError("rate policy: need period_s > 0, capacitance_f > 0, 0 <= gain <= 4, 0 < ewma <= 1")
    if not 0 <= income <= 4:
        raise UsageError(f"rate policy: income weight {income} is not in [0, 4]")
    if not 0 <= ref_mv <= MV_MAX:
        raise UsageError(f"rate policy: ref_mv {ref_mv} is not a uint16 millivolt value")
    mv2 = tuple(max(1, min(U32, round(2.0 * e / capacitance_f * 1e6))) for e in energy_j)
    if any(b > a for a, b in zip(mv2, mv2[1:], strict=False)):
        raise UsageError(f"mode energies must not increase from mode 0 (the largest) on: {energy_j}")
    if not 0 <= top < len(mv2):
        raise UsageError(f"rate policy: top mode {top} is not one of the {len(mv2)} modes")
    return RatePolicy(
        energy_mv2=mv2,
        period_ms=max(1, min(U32, round(period_s * 1000))),
        ref_mv=int(ref_mv),
        gain_q8=round(gain * 256),
        ewma_q8=max(1, round(ewma * 256)),
        hyst_q8=min(MV_MAX, round(hysteresis * 256)),
        min_dt_ms=max(1, min(U32, round(1000 * (period_s / 64 if min_dt_s is None else min_dt_s)))),
        full_mv=int(full_mv),
        top=int(top),
        income_q8=round(income * 256),
    )


def _sat(a: int) -> int:
    return min(U32, a)


def _mul_sat(a: int, b: int) -> int:
    """min(a·b, 2³² − 1) for 32-bit a, b (the C computes it from 16-bit halves, without a division)."""
    return _sat(a * b)


def _muldiv256(a: int, w: int) -> int:
    """floor(a·w/256) for 0 <= a < 2³², 0 <= w < 2¹⁶, saturating at 2³² − 1 (the C: a = 256·q + r,
    a·w/256 = q·w + r·w/256)."""
    return _sat(_mul_sat(a >> 8, w) + ((a & 0xFF) * w >> 8))


def rate_select(table: ModeTable, state: RateState, mv: int, ms: int, current: int) -> int:
    """The rate rule of ``table.rate``: the mode for the next inference at ``mv`` millivolts and device
    time ``ms``, after running ``current``; updates ``state`` as the device does (its NVM record). The
    record starts as zeros: "the buffer was empty at time 0" (a batteryless device's first boot follows
    charging from empty), so the first reading already estimates the income. Unsigned 32-bit integer
    arithmetic, saturating (C and Python round every step the same)."""
    pol = table.rate
    if pol is None:
        raise UsageError("rate_select: the mode table has no rate policy")
    e_now = mv * mv
    if ms < state.ms:  # the clock went back (a reset epoch): measure from here, keep the estimate
        state.mv, state.ms, state.spent_mv2 = mv, ms, 0
    if ms - state.ms >= pol.min_dt_ms:
        dt = ms - state.ms
        have, prev = _sat(e_now + state.spent_mv2), state.mv * state.mv
        income = have - prev if have > prev else 0  # net of leakage, boots and re-executed work
        p_inst = _mul_sat(income, pol.period_ms)  # scaled to one demand period
        if p_inst != U32:
            p_inst //= dt
        else:
            p_inst = _mul_sat(income // dt, pol.period_ms)
        p_inst = min(p_inst, P_MAX)
        if p_inst >= state.p_mv2:
            state.p_mv2 += _muldiv256(p_inst - state.p_mv2, pol.ewma_q8)
        else:
            state.p_mv2 -= _muldiv256(state.p_mv2 - p_inst, pol.ewma_q8)
        state.mv, state.ms, state.spent_mv2 = mv, ms, 0
    # budget = income·P·period + gain·(E(V) − E(ref)): the positive part and the negative part apart
    e_ref = pol.ref_mv * pol.ref_mv
    plus = _sat(
        _muldiv256(state.p_mv2, pol.income_q8)
        + (_muldiv256(e_now - e_ref, pol.gain_q8) if e_now >= e_ref else 0)
    )
    minus = _muldiv256(e_ref - e_now, pol.gain_q8) if e_now < e_ref else 0
    n = len(pol.energy_mv2)
    # a full buffer clips the income, so the estimate is only a lower bound: one mode up is affordable
    probe = mv >= pol.full_mv and pol.top < current < n
    up = (
        _sat(pol.energy_mv2[current - 1] + _muldiv256(pol.energy_mv2[current - 1], pol.hyst_q8))
        if probe
        else 0
    )
    pick = n - 1
    for i in range(pol.top, n):
        need = pol.energy_mv2[i]
        if i < current:
            need = _sat(need + _muldiv256(need, pol.hyst_q8))
        if plus >= _sat(need + minus) or (probe and up >= need):
            pick = i
            break
    state.spent_mv2 = _sat(state.spent_mv2 + pol.energy_mv2[pick])
    return pick


def select_mode(table: ModeTable, mv: int, current: int) -> int:
    """The mode for the next inference at buffer voltage ``mv`` (millivolts) after running ``current``."""
    n = len(table.stay_mv)
    for i in range(n):
        need = table.enter_mv[i] if i < current else table.stay_mv[i]
        if mv >= need:
            return i
    return n - 1


def emit_c_table(table: ModeTable, banner: str) -> str:
    """``eve_table.c``: the generated mode table ``bl_eve_modes`` (and its rate rule, if any) for
    firmware/eve/bl_eve.c."""
    n = len(table.stay_mv)
    names = ", ".join(f'"{s}"' for s in table.names)
    margins = ", ".join(f"{m:g}" for m in table.margin)
    energies = ", ".join(f"{1e6 * e:.2f}" for e in table.energy_j)
    r = table.rate
    if r is None:
        rate_c, rate_ref = "", "NULL"
    else:
        e2 = ", ".join(f"{v}u" for v in r.energy_mv2)
        fields = (
            f"energy_mv2, {r.period_ms}u, {r.min_dt_ms}u, {r.ref_mv}u, {r.gain_q8}u, {r.ewma_q8}u, "
            f"{r.hyst_q8}u, {r.full_mv}u, {r.top}u, {r.income_q8}u"
        )
        rate_c = (
            "/* The rate rule (eve/select.py rate_select): energy per inference in C/2*mV^2 units,\n"
            f" * one input every {r.period_ms} ms; budget = {r.income_q8}/256 * P_in * period + "
            f"{r.gain_q8}/256 * (E(V) - E({r.ref_mv} mV));\n * EWMA weight "
            f"{r.ewma_q8}/256; probe a larger mode at or above {r.full_mv} mV; largest mode the rule "
            f"picks: {r.top}. */\n"
            f"static const uint32_t energy_mv2[{n}] = {{{e2}}};\n"
            f"static const bl_eve_rate rate = {{{fields}}};\n"
        )
        rate_ref = "&rate"
    return f"""{banner}#include <stddef.h>
#include <stdint.h>

#include "bl_eve.h"

/* {n} modes, largest first; C = {table.capacitance_f:g} F, V_off = {table.v_off:g} V, margins {margins},
 * hysteresis {table.hysteresis:g}. Energy per inference (uJ): {energies}. */
static const uint16_t stay_mv[{n}] = {{{", ".join(f"{v}u" for v in table.stay_mv)}}};
static const uint16_t enter_mv[{n}] = {{{", ".join(f"{v}u" for v in table.enter_mv)}}};
static const char *const names[{n}] = {{{names}}};
{rate_c}const bl_eve_table bl_eve_modes = {{{n}u, stay_mv, enter_mv, names, {rate_ref}}};
"""
