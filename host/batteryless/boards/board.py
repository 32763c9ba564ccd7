"""The typed board description: memory regions, power model, energy buffer, and the ``Board`` that
``load_board`` returns (DESIGN.md contract 4). The field names and allowed values live here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batteryless.errors import BoardError

CPUS = ("msp430x", "cortex-m4", "cortex-m55", "host")
ACCELERATORS = ("lea", "cmsis-dsp", "none")
BACKENDS = ("ref", "lea", "cmsis")
# none: build and size only (imported boards)
EMULATOR_KINDS = ("qemu", "mspdebug", "host", "msp430sim", "none")
POWER_FIELDS = (
    "supply_voltage_v",
    "active_current_per_mhz_a",
    "sleep_current_a",
    "boot_time_s",
    "boot_charge_c",
    "nvm_write_energy_per_byte_j",
)
BUFFER_FIELDS = ("capacitance_f", "v_on", "v_off", "v_max", "leakage_resistance_ohm", "esr_ohm")
BOOTLOADER_KEYS = (
    "protocol",
    "baud",
    "fast_baud",
    "parity",
    "max_data_per_packet",
    "password_address",
    "password_length",
    "protected_ranges",
    "erase_on_bad_password",
    "bsl_rom",
    "entry_default",
)


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    origin: int
    length: int
    volatile: bool
    usable: int

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.origin + self.length


@dataclass(frozen=True)
class PowerModel:
    supply_voltage_v: float
    active_current_per_mhz_a: float
    sleep_current_a: float
    boot_time_s: float
    boot_charge_c: float
    nvm_write_energy_per_byte_j: float
    accel_op_energy_j: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def active_power_w(self, clock_hz: float) -> float:
        """Active power at ``clock_hz`` (current per MHz × MHz × supply voltage)."""
        return self.active_current_per_mhz_a * clock_hz / 1e6 * self.supply_voltage_v

    def energy_per_cycle_j(self, clock_hz: float) -> float:
        """Energy of one CPU cycle at ``clock_hz`` (active power / clock)."""
        return self.active_current_per_mhz_a / 1e6 * self.supply_voltage_v


@dataclass(frozen=True)
class EnergyBuffer:
    capacitance_f: float
    v_on: float
    v_off: float
    v_max: float
    leakage_resistance_ohm: float
    esr_ohm: float
    source: str

    @property
    def usable_energy_j(self) -> float:
        """½C(V_on² − V_off²): what one charge delivers between the thresholds."""
        return 0.5 * self.capacitance_f * (self.v_on**2 - self.v_off**2)


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    clock_hz: float
    backends: list[str]
    default_backend: str
    dir: Path
    memory: list[MemoryRegion]
    accelerator: str
    power: PowerModel
    energy_buffer: EnergyBuffer
    bootloader: dict[str, Any] | None
    emulator: dict[str, Any]
    toolchain: dict[str, Any]
    # Other top-level tables of board.toml that this loader does not interpret (e.g. codegen's [cost]).
    extra: dict[str, Any] = field(default_factory=dict)
    # [stand_in]: backend -> why its images for this board will not compute on the real part (they link a
    # stand-in; batteryless.stand_in). Backends not listed really run there.
    stand_in: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The board.toml this board was read from."""
        return self.dir / "board.toml"

    def region(self, name: str) -> MemoryRegion:
        for r in self.memory:
            if r.name == name:
                return r
        have = ", ".join(r.name for r in self.memory)
        raise BoardError(f"{self.path}: board {self.name!r} has no memory region {name!r} (it has: {have})")

    def has_region(self, name: str) -> bool:
        return any(r.name == name for r in self.memory)

    def toolchain_file(self, key: str) -> Path:
        """A file named in [toolchain] (e.g. ``cmake_toolchain``, ``linker_script``), checked to exist."""
        rel = self.toolchain.get(key)
        if rel is None:
            raise BoardError(f"{self.path}: [toolchain].{key} is not set for board {self.name!r}")
        p = self.dir / str(rel)
        if not p.is_file():
            raise BoardError(f"{self.path}: [toolchain].{key} names {p}, which does not exist")
        return p


# --- loading --------------------------------------------------------------------------------------------
