"""The power chain: harvester (panel) → converter → energy buffer (capacitor) → thresholds → MCU load.

Numbers live in data files (``batteryless/data/converters/*.toml``, ``data/panels/*.toml``) and in the
board's ``board.toml`` (energy buffer, MCU power model), never in this code.

Modelling choices (see docs/emulation.md):

- **Panel**: ``efficiency-area`` (P = G·A·η) or ``single-diode`` (ideal diode, no series/shunt resistance)
  operated at a fixed fraction of its open-circuit voltage, the way fractional-Voc MPPT chargers do.
- **Converter**: efficiency interpolated in log10(input power) from a table; a constant quiescent power is
  subtracted from what reaches the buffer, and the output is clamped at zero (no harvest → the converter
  delivers nothing; it does not drain the buffer).
- **Energy buffer**: capacitance C, leakage resistance R (leak power V²/R), ESR. The MCU is a constant-power
  load P while a phase runs; the terminal voltage is the larger root of Vt² − V·Vt + P·ESR = 0, so the
  brown-out (Vt < v_off) happens when the internal voltage drops below ``v_off + P·ESR / v_off``. The I²·ESR
  loss itself is neglected (I·ESR/V ≲ 1e-3 for the boards' loads); it only moves the brown-out point.
- **Thresholds**: the MCU powers on when the buffer reaches ``v_on`` and browns out below ``v_off``
  (hysteresis); the converter stops charging at ``v_max`` (the excess is counted as *clipped*).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from batteryless.errors import EmulationError

BOLTZMANN_OVER_Q = 8.617333262e-5  # V/K: physical constant k/q


def _data_dir(kind: str) -> Path:
    return Path(str(resources.files("batteryless") / "data" / kind))


def _load_toml(kind: str, name_or_path: str | Path) -> tuple[dict[str, Any], Path]:
    p = Path(name_or_path)
    if not p.suffix == ".toml" or not p.exists():
        p = _data_dir(kind) / f"{name_or_path}.toml"
    if not p.is_file():
        known = ", ".join(sorted(x.stem for x in _data_dir(kind).glob("*.toml")))
        raise EmulationError(
            f"no {kind[:-1]} named {str(name_or_path)!r} (bundled: {known}; or give a .toml file)"
        )
    try:
        return tomllib.loads(p.read_text(encoding="utf-8")), p
    except tomllib.TOMLDecodeError as e:
        raise EmulationError(f"{p}: invalid TOML: {e}") from None


def _num(d: dict, key: str, where: Path, *, lo: float | None = None, hi: float | None = None) -> float:
    if key not in d:
        raise EmulationError(f"{where}: missing field {key!r}")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise EmulationError(f"{where}: field {key!r} must be a finite number, is {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise EmulationError(f"{where}: field {key!r} = {v} is outside [{lo}, {hi}]")
    return float(v)


# --- converter -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Converter:
    name: str
    input_power_w: tuple[float, ...]
    efficiency: tuple[float, ...]
    quiescent_power_w: float = 0.0
    source: str = ""

    def output_power(self, p_in: np.ndarray) -> np.ndarray:
        """Power delivered into the buffer for harvested input power ``p_in`` (W, array)."""
        p = np.asarray(p_in, dtype=np.float64)
        if set(self.efficiency) == {1.0} and not self.quiescent_power_w:
            return p  # lossless: the same samples
        if len(self.efficiency) == 1 or len(set(self.efficiency)) == 1:
            eta = self.efficiency[0]
            out = p * eta
        else:
            lx = np.log10(np.asarray(self.input_power_w))
            with np.errstate(divide="ignore"):
                lp = np.log10(np.maximum(p, 1e-30))
            out = p * np.interp(lp, lx, np.asarray(self.efficiency))
        if self.quiescent_power_w:
            out = np.maximum(out - self.quiescent_power_w, 0.0)
        return out


def load_converter(name_or_path: str | Path = "ideal") -> Converter:
    d, p = _load_toml("converters", name_or_path)
    xs, ys = d.get("input_power_w"), d.get("efficiency")
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys) or not xs:
        raise EmulationError(
            f"{p}: 'input_power_w' and 'efficiency' must be lists of the same non-zero length"
        )
    if any(not isinstance(x, int | float) or x <= 0 for x in xs) or any(
        b <= a for a, b in zip(xs, xs[1:], strict=False)
    ):
        raise EmulationError(f"{p}: 'input_power_w' must be positive and strictly increasing")
    if any(not isinstance(y, int | float) or not 0 <= y <= 1 for y in ys):
        raise EmulationError(f"{p}: 'efficiency' values must be between 0 and 1")
    return Converter(
        name=str(d.get("name", p.stem)),
        input_power_w=tuple(float(x) for x in xs),
        efficiency=tuple(float(y) for y in ys),
        quiescent_power_w=_num(d, "quiescent_power_w", p, lo=0.0, hi=1.0)
        if "quiescent_power_w" in d
        else 0.0,
        source=str(d.get("source", "")),
    )


# --- panel -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Panel:
    name: str
    model: str  # "efficiency-area" | "single-diode"
    params: dict[str, float] = field(default_factory=dict)
    source: str = ""

    def power(self, irradiance_w_m2: np.ndarray) -> np.ndarray:
        """Electrical power at the operating point for irradiance G (W/m², array)."""
        g = np.maximum(np.asarray(irradiance_w_m2, dtype=np.float64), 0.0)  # a new array: scaled in place
        if self.model == "efficiency-area":
            g *= self.params["area_m2"]
            g *= self.params["efficiency"]
            return g
        p = self.params
        n_vt = p["ideality"] * p["cells_in_series"] * BOLTZMANN_OVER_Q * p["temperature_k"]
        isc_ref, voc_ref = p["isc_a_at_1000_w_m2"], p["voc_v_at_1000_w_m2"]
        i0 = isc_ref / math.expm1(voc_ref / n_vt)
        iph = isc_ref * g / 1000.0
        voc = n_vt * np.log1p(iph / i0)
        v = p["mppt_fraction_of_voc"] * voc
        i = iph - i0 * np.expm1(v / n_vt)
        return np.maximum(v * i, 0.0)


def load_panel(name_or_path: str | Path = "indoor-5cm2") -> Panel:
    d, p = _load_toml("panels", name_or_path)
    model = d.get("model")
    if model == "efficiency-area":
        params = {
            "area_m2": _num(d, "area_m2", p, lo=1e-8, hi=100),
            "efficiency": _num(d, "efficiency", p, lo=0, hi=1),
        }
    elif model == "single-diode":
        params = {
            "isc_a_at_1000_w_m2": _num(d, "isc_a_at_1000_w_m2", p, lo=1e-9, hi=100),
            "voc_v_at_1000_w_m2": _num(d, "voc_v_at_1000_w_m2", p, lo=0.1, hi=1000),
            "cells_in_series": _num(d, "cells_in_series", p, lo=1, hi=1000),
            "ideality": _num(d, "ideality", p, lo=0.5, hi=5),
            "temperature_k": _num(d, "temperature_k", p, lo=150, hi=450),
            "mppt_fraction_of_voc": _num(d, "mppt_fraction_of_voc", p, lo=0.05, hi=0.99),
        }
    else:
        raise EmulationError(f"{p}: field 'model' must be 'efficiency-area' or 'single-diode', is {model!r}")
    return Panel(name=str(d.get("name", p.stem)), model=model, params=params, source=str(d.get("source", "")))


# --- energy buffer ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Buffer:
    capacitance_f: float
    v_on: float
    v_off: float
    v_max: float
    leakage_resistance_ohm: float | None = None  # None or inf: no leakage
    esr_ohm: float = 0.0
    source: str = ""

    def validate(self) -> None:
        if not self.capacitance_f > 0:
            raise EmulationError(f"energy buffer: capacitance_f must be > 0, is {self.capacitance_f}")
        if not 0 < self.v_off < self.v_on <= self.v_max:
            raise EmulationError(
                f"energy buffer: need 0 < v_off < v_on <= v_max, got v_off={self.v_off} v_on={self.v_on} "
                f"v_max={self.v_max}"
            )
        r = self.leakage_resistance_ohm
        if r is not None and not r > 0:
            raise EmulationError(f"energy buffer: leakage_resistance_ohm must be > 0 (or absent), is {r}")
        if self.esr_ohm < 0:
            raise EmulationError(f"energy buffer: esr_ohm must be ≥ 0, is {self.esr_ohm}")

    @property
    def leak_rate(self) -> float:
        """k in dE/dt = P − k·E (leak power V²/R = k·E with k = 2/(R·C)); 0 without leakage."""
        r = self.leakage_resistance_ohm
        if r is None or math.isinf(r):
            return 0.0
        return 2.0 / (r * self.capacitance_f)

    def energy(self, v: float) -> float:
        return 0.5 * self.capacitance_f * v * v

    def voltage(self, e: float | np.ndarray):
        return np.sqrt(2.0 * np.maximum(e, 0.0) / self.capacitance_f)

    def brownout_voltage(self, load_w: float | np.ndarray):
        """Internal (open-circuit) voltage below which the terminal voltage under ``load_w`` is < v_off."""
        return self.v_off + np.asarray(load_w) * self.esr_ohm / self.v_off

    def usable_energy(self) -> float:
        return self.energy(self.v_on) - self.energy(self.v_off)


def buffer_from_board(board: Any, **overrides: float | None) -> Buffer:
    eb = board.energy_buffer
    base = Buffer(
        capacitance_f=float(eb.capacitance_f),
        v_on=float(eb.v_on),
        v_off=float(eb.v_off),
        v_max=float(eb.v_max),
        leakage_resistance_ohm=None
        if eb.leakage_resistance_ohm in (None, 0)
        else float(eb.leakage_resistance_ohm),
        esr_ohm=float(eb.esr_ohm or 0.0),
        source=str(getattr(eb, "source", "")),
    )
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        base = replace(
            base, **changes, source=base.source + " (overridden: " + ", ".join(sorted(changes)) + ")"
        )
    base.validate()
    return base


# --- MCU load --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """Constant-power load phases derived from the board's power model."""

    active_power_w: float  # at the schedule's clock
    boot_time_s: float
    boot_energy_j: float
    nvm_write_energy_per_byte_j: float
    clock_hz: float
    nvm_write_cycles_per_byte: float
    sources: dict[str, str]


def load_from_board(board: Any, clock_hz: float | None = None) -> Load:
    pm = board.power
    clock = float(clock_hz or board.clock_hz)
    v = float(pm.supply_voltage_v)
    sources = dict(getattr(pm, "sources", {}) or {})
    per_byte_cycles = getattr(pm, "nvm_write_cycles_per_byte", None)
    if per_byte_cycles is None:
        per_byte_cycles = 1.0
        sources["nvm_write_cycles_per_byte"] = "ASSUMED by the emulator: 1 cycle per byte written"
    load = Load(
        active_power_w=float(pm.active_current_per_mhz_a) * clock / 1e6 * v,
        boot_time_s=float(pm.boot_time_s),
        boot_energy_j=float(pm.boot_charge_c) * v,
        nvm_write_energy_per_byte_j=float(pm.nvm_write_energy_per_byte_j),
        clock_hz=clock,
        nvm_write_cycles_per_byte=float(per_byte_cycles),
        sources=sources,
    )
    for name in ("active_power_w", "boot_time_s", "boot_energy_j", "nvm_write_energy_per_byte_j"):
        val = getattr(load, name)
        if not math.isfinite(val) or val < 0:
            raise EmulationError(f"board {getattr(board, 'name', '?')}: power model gives {name} = {val}")
    if load.active_power_w <= 0 or load.boot_time_s <= 0:
        raise EmulationError(
            f"board {getattr(board, 'name', '?')}: power model needs active_current_per_mhz_a > 0 "
            "and boot_time_s > 0"
        )
    return load
