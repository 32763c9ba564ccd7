"""Cost estimates for the schedule: cycles per operation from the board's ``[cost.<backend>]`` table and
energy from its power model. Measured counts (emulators) replace these where available."""

from __future__ import annotations

from dataclasses import dataclass

from batteryless.boards import Board
from batteryless.errors import BoardError

KEYS = ("cycles_per_mac", "cycles_per_butterfly", "cycles_per_element", "cycles_per_call", "commit_cycles")
# Optional: the FFT path's frequency-domain multiplies priced apart from the direct path's MACs, for backends
# where the two loops cost very differently (cmsis: DSP-extension direct MACs ~1-2 instructions, the FFT
# path's plain-C complex MAC ~2.5 per real multiply plus its FFTs). Absent: cycles_per_mac.
OPTIONAL_KEYS = ("cycles_per_fft_mac",)


@dataclass(frozen=True)
class CostModel:
    board: str
    backend: str
    cycles_per_mac: float
    cycles_per_butterfly: float
    cycles_per_element: float
    cycles_per_call: float
    commit_cycles: int
    joules_per_cycle: float
    source: str
    cycles_per_fft_mac: float | None = None

    def cycles(
        self, macs: int = 0, butterflies: int = 0, elements: int = 0, calls: int = 0, fft_macs: int = 0
    ) -> float:
        fft_mac = self.cycles_per_mac if self.cycles_per_fft_mac is None else self.cycles_per_fft_mac
        return (
            macs * self.cycles_per_mac
            + fft_macs * fft_mac
            + butterflies * self.cycles_per_butterfly
            + elements * self.cycles_per_element
            + calls * self.cycles_per_call
        )

    def energy_j(self, cycles: float) -> float:
        return cycles * self.joules_per_cycle

    def describe(self) -> dict:
        extra = {} if self.cycles_per_fft_mac is None else {"cycles_per_fft_mac": self.cycles_per_fft_mac}
        return extra | {
            "cycles_per_mac": self.cycles_per_mac,
            "cycles_per_butterfly": self.cycles_per_butterfly,
            "cycles_per_element": self.cycles_per_element,
            "cycles_per_call": self.cycles_per_call,
            "commit_cycles": self.commit_cycles,
            "joules_per_cycle": self.joules_per_cycle,
            "source": self.source,
        }


def cost_model(board: Board, backend: str) -> CostModel:
    """Read ``[cost.<backend>]`` from the board's board.toml (all numbers there carry a source)."""
    table = board.extra.get("cost", {}).get(backend)
    if not isinstance(table, dict):
        raise BoardError(
            f"{board.path}: no [cost.{backend}] table (cycle estimates for the {backend} backend)"
        )
    missing = [k for k in KEYS if not isinstance(table.get(k), int | float)]
    if missing:
        raise BoardError(
            f"{board.path}: [cost.{backend}] is missing or has non-numbers in {', '.join(missing)}"
        )
    fft_mac = table.get("cycles_per_fft_mac")
    if fft_mac is not None and not isinstance(fft_mac, int | float):
        raise BoardError(f"{board.path}: [cost.{backend}] cycles_per_fft_mac must be a number")
    # active energy per cycle: I_active(per MHz) · f_MHz · V / f = I_per_MHz · V / 1e6
    jpc = board.power.active_current_per_mhz_a * board.power.supply_voltage_v / 1e6
    return CostModel(
        board=board.name,
        backend=backend,
        cycles_per_mac=float(table["cycles_per_mac"]),
        cycles_per_butterfly=float(table["cycles_per_butterfly"]),
        cycles_per_element=float(table["cycles_per_element"]),
        cycles_per_call=float(table["cycles_per_call"]),
        commit_cycles=int(table["commit_cycles"]),
        joules_per_cycle=jpc,
        source=str(table.get("source", "")),
        cycles_per_fft_mac=None if fft_mac is None else float(fft_mac),
    )
