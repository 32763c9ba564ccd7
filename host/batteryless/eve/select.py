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

**Cheap on a 16-bit CPU** (issue 11: a mode switch under 1 % of one inference). The device divides nothing
and multiplies at most a few 16×16 numbers per selection: everything that depends only on the policy is
computed here, at generation, into the table (:func:`rate_constants`: the reserve's energy, each mode's
energy with the hysteresis, and a table of ``period·2^shift / m`` reciprocals); the income per period,
``income · period / dt``, takes the top 7 significant bits ``m`` of ``dt`` (exact below 128 ms) and the top
16 of the income and multiplies them through that table (one 16×16 product; relative error below 2 %,
from the dropped bits of ``dt``); the Q8 weights multiply by shifts when they are powers of two (the tuner's
grid). A first version divided ``income·period`` by ``dt`` in 32 bits: 6,712 MCLK cycles per selection on
the MSP430 (software division and 32×32 multiplies).
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
    # the smallest mode the rule may pick, and the one it runs when nothing fits (None: the last mode). With
    # top = bottom the rule is one fixed mode: what a site calibration returns where adapting does not pay
    bottom: int | None = None

    def last(self) -> int:
        return len(self.energy_mv2) - 1 if self.bottom is None else self.bottom

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
DT_BITS = 7  # significant bits of dt the income rate keeps (the reciprocal table has 2**DT_BITS entries)
INCOME_BITS = 16  # significant bits of the income multiplied by a reciprocal (a 16x16 product)


def _recip_floor(min_dt_ms: int) -> int:
    """The smallest table index a reading can use: dt >= min_dt_ms, and dt >= 2**DT_BITS keeps m >= 64."""
    return min(1 << (DT_BITS - 1), max(1, min_dt_ms))


def _recip_shift(period_ms: int, min_dt_ms: int) -> int:
    """The largest shift r <= 31 with period·2^r / m <= 65535 for every index m the rule can use (-1:
    none)."""
    m_lo = _recip_floor(min_dt_ms)
    r = -1
    while r < 31 and (period_ms << (r + 1)) // m_lo <= 0xFFFF:
        r += 1
    return r


@dataclass(frozen=True)
class RateConstants:
    """What the device needs of a RatePolicy beyond its fields, computed at generation (no division or 32-bit
    multiply on the device): the reserve level's energy, each mode's energy to move up to it (hysteresis
    included), and reciprocals recip[m] = floor(period_ms · 2^shift / m) for m < 2**DT_BITS (0 where
    unused)."""

    ref_mv2: int
    energy_up_mv2: tuple[int, ...]
    shift: int
    recip: tuple[int, ...]


_CONSTS: dict[RatePolicy, RateConstants] = {}


def rate_constants(pol: RatePolicy) -> RateConstants:
    """The policy's generated constants (cached: the emulator calls the rule at every inference start)."""
    c = _CONSTS.get(pol)
    if c is None:
        r = _recip_shift(pol.period_ms, pol.min_dt_ms)
        if r < 0:
            raise UsageError(
                f"rate policy: a period of {pol.period_ms} ms over readings {pol.min_dt_ms} ms apart does "
                "not fit the rule's 16-bit reciprocal table (period / min(min_dt, 64 ms) must be <= 65535)"
            )
        m_lo = _recip_floor(pol.min_dt_ms)
        c = RateConstants(
            ref_mv2=pol.ref_mv * pol.ref_mv,
            energy_up_mv2=tuple(_sat(e + _muldiv256(e, pol.hyst_q8)) for e in pol.energy_mv2),
            shift=r,
            recip=tuple(0 if m < m_lo else (pol.period_ms << r) // m for m in range(1 << DT_BITS)),
        )
        _CONSTS[pol] = c
    return c


def income_per_period(c: RateConstants, income: int, dt: int) -> int:
    """income · period / dt from the reciprocal table, saturating at P_MAX (dt >= 1): dt = m·2^s with m its
    top DT_BITS bits, income = i·2^t with i its top INCOME_BITS bits, so income·period/dt ≈ i·recip[m] ·
    2^(t − s − shift) (one 16x16 product and shifts; the C does the same steps)."""
    s = max(0, dt.bit_length() - DT_BITS)
    t = max(0, income.bit_length() - INCOME_BITS)
    prod = (income >> t) * c.recip[dt >> s]
    sh = c.shift + s - t
    if sh >= 0:
        return min(P_MAX, prod >> sh)
    return P_MAX if prod > (P_MAX >> -sh) else prod << -sh


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
    bottom: int | None = None,
) -> RatePolicy:
    """The rate rule's integer parameters from physical ones (``gain``, ``ewma``, ``hysteresis``,
    ``income`` as fractions; ``min_dt_s`` defaults to 1/64 of the period; the rule picks among modes
    ``top`` … ``bottom``, the smallest mode by default)."""
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
    if bottom is not None and not top <= bottom < len(mv2):
        raise UsageError(
            f"rate policy: bottom mode {bottom} is not one of the {len(mv2)} modes from the top mode {top} on"
        )
    pol = RatePolicy(
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
        bottom=None if bottom is None else int(bottom),
    )
    rate_constants(pol)  # refuses a period the reciprocal table cannot hold
    return pol


def _sat(a: int) -> int:
    return min(U32, a)


def _muldiv256(a: int, w: int) -> int:
    """floor(a·w/256) for 0 <= a < 2³², 0 <= w < 2¹⁶, saturating at 2³² − 1 (the C: a shift when w is a power
    of two, else from 16-bit halves; the same value)."""
    return _sat(a * w >> 8)


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
    c = rate_constants(pol)
    if ms - state.ms >= pol.min_dt_ms:
        dt = ms - state.ms
        have, prev = _sat(e_now + state.spent_mv2), state.mv * state.mv
        income = have - prev if have > prev else 0  # net of leakage, boots and re-executed work
        p_inst = income_per_period(c, income, dt)  # scaled to one demand period
        if p_inst >= state.p_mv2:
            state.p_mv2 += _muldiv256(p_inst - state.p_mv2, pol.ewma_q8)
        else:
            state.p_mv2 -= _muldiv256(state.p_mv2 - p_inst, pol.ewma_q8)
        state.mv, state.ms, state.spent_mv2 = mv, ms, 0
    # budget = income·P·period + gain·(E(V) − E(ref)): the positive part and the negative part apart
    e_ref = c.ref_mv2
    plus = _sat(
        _muldiv256(state.p_mv2, pol.income_q8)
        + (_muldiv256(e_now - e_ref, pol.gain_q8) if e_now >= e_ref else 0)
    )
    minus = _muldiv256(e_ref - e_now, pol.gain_q8) if e_now < e_ref else 0
    n = len(pol.energy_mv2)
    # a full buffer clips the income, so the estimate is only a lower bound: one mode up is affordable
    probe = mv >= pol.full_mv and pol.top < current < n
    up = c.energy_up_mv2[current - 1] if probe else 0
    last = pol.last()
    pick = last
    for i in range(pol.top, last + 1):
        need = c.energy_up_mv2[i] if i < current else pol.energy_mv2[i]
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
        c = rate_constants(r)
        e2 = ", ".join(f"{v}u" for v in r.energy_mv2)
        e2up = ", ".join(f"{v}u" for v in c.energy_up_mv2)
        recip = ", ".join(f"{v}u" for v in c.recip)
        fields = (
            f"energy_mv2, {r.period_ms}u, {r.min_dt_ms}u, {r.ref_mv}u, {r.gain_q8}u, {r.ewma_q8}u, "
            f"{r.hyst_q8}u, {r.full_mv}u, {r.top}u, {r.last()}u, {r.income_q8}u, energy_up_mv2, "
            f"{c.ref_mv2}u, recip, {c.shift}u"
        )
        rate_c = (
            "/* The rate rule (eve/select.py rate_select): energy per inference in C/2*mV^2 units,\n"
            f" * one input every {r.period_ms} ms; budget = {r.income_q8}/256 * P_in * period + "
            f"{r.gain_q8}/256 * (E(V) - E({r.ref_mv} mV));\n * EWMA weight "
            f"{r.ewma_q8}/256; probe a larger mode at or above {r.full_mv} mV; the rule picks modes "
            f"{r.top} .. {r.last()}. */\n"
            f"static const uint32_t energy_mv2[{n}] = {{{e2}}};\n"
            "/* generated constants (eve/select.py rate_constants): each mode's energy with the hysteresis,\n"
            f" * and recip[m] = floor(period_ms * 2^{c.shift} / m), the income rate's reciprocals (no\n"
            " * division on the device) */\n"
            f"static const uint32_t energy_up_mv2[{n}] = {{{e2up}}};\n"
            f"static const uint16_t recip[{len(c.recip)}] = {{{recip}}};\n"
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
