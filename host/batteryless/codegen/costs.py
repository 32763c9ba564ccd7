"""Cost estimates for the schedule: cycles per operation from the board's ``[cost.<backend>]`` table and
energy from its power model. Measured counts (emulators) replace these where available.

The model prices what one task does — its *features*, counted by ``codegen.plan.task_features`` (the one
place that maps a task to them) — each at one coefficient of the table:

- ``macs``: multiply-accumulates of the block-circulant direct-path kernels of linear layers
  (``bl_linear_circ_*``: a circulant index walk per product) — ``cycles_per_mac``; ``conv_macs`` those of
  convolutions (``bl_conv_circ_*``) — ``cycles_per_conv_mac``;
- ``dense_macs``: those of the dense kernels (a plain weight walk, 2-3x cheaper per product than the
  circulant kernels on the MSP430 and the M4 ref, dearer on cmsis) — ``cycles_per_dense_mac``;
  ``dense_conv_macs`` the same in convolutions (padding checks per tap: ~2.5x a linear one on the M4 ref)
  — ``cycles_per_dense_conv_mac``;
- ``walk_macs`` / ``walk_conv_macs``: those of the ``bl_mac_step`` walk that fine-grained tasks run, in
  linear layers / convolutions — ``cycles_per_walk_mac`` / ``cycles_per_walk_conv_mac``. Where the backend's
  dense kernels are the same walk (ref) a table leaves them out and they are the dense keys; the lea dense
  convolution (one MAC command per position and channel over resident vectors) is ~4x cheaper per product
  than the CPU walk, so its table has both;
- ``fft_macs``: the FFT path's frequency-domain multiplies — ``cycles_per_fft_mac``;
- ``w8_macs``: direct-path MACs over 8-bit weights, priced *on top of* their kind above (widening each
  weight: ~4.5 instructions per MAC on cmsis, whose int16 loops are SMLAD pairs; ~10 MCLK on lea, which
  stages int8 rows into LEA RAM) — ``cycles_per_w8_mac``;
- ``butterflies`` and ``transforms`` (FFTs / inverse FFTs a task runs: bit reversal, twiddle set-up and
  scaling per transform) — ``cycles_per_butterfly``, ``cycles_per_transform``; ``short_butterflies``, those
  of transforms shorter than 16 points once more, priced *on top* (the lea backend's DSPLib FFT takes 16
  points and more, shorter ones run on the CPU: firmware/kernels/lea/fft_q15.c; cmsis's 8-point transform
  costs more than its 16-point one) — ``cycles_per_short_butterfly``;
- ``elements`` (ReLU / pool) — ``cycles_per_element``;
- ``outputs``: values a weight-layer task writes (bias, requantisation, per-row loop set-up) —
  ``cycles_per_output``;
- ``calls``: one per task — ``cycles_per_call``.

Tables written before the conv / dense / 8-bit / transform / output features existed still load: a missing
``cycles_per_conv_mac``, ``cycles_per_dense_mac`` or ``cycles_per_fft_mac`` is ``cycles_per_mac``, a
missing ``cycles_per_dense_conv_mac`` is ``cycles_per_dense_mac`` (so ``cycles_per_mac`` too), a missing
``cycles_per_walk_mac`` / ``cycles_per_walk_conv_mac`` is ``cycles_per_dense_mac`` /
``cycles_per_dense_conv_mac``, and a
missing ``cycles_per_w8_mac``, ``cycles_per_short_butterfly``, ``cycles_per_transform`` or
``cycles_per_output`` is 0 (``DEFAULTS``) —
exactly the model such a table was fitted for. Every board in ``boards/`` carries all keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from batteryless.boards import Board
from batteryless.errors import BoardError

KEYS = ("cycles_per_mac", "cycles_per_butterfly", "cycles_per_element", "cycles_per_call", "commit_cycles")
# keys an older table may lack, and what it then means (see the module docstring)
OPTIONAL_KEYS = (
    "cycles_per_conv_mac",
    "cycles_per_dense_mac",
    "cycles_per_dense_conv_mac",
    "cycles_per_walk_mac",
    "cycles_per_walk_conv_mac",
    "cycles_per_fft_mac",
    "cycles_per_w8_mac",
    "cycles_per_short_butterfly",
    "cycles_per_transform",
    "cycles_per_output",
)
# a missing optional key: another key's value (a name) or a number
DEFAULTS = {
    "cycles_per_conv_mac": "cycles_per_mac",
    "cycles_per_w8_mac": 0.0,
    "cycles_per_short_butterfly": 0.0,
    "cycles_per_fft_mac": "cycles_per_mac",
    "cycles_per_dense_mac": "cycles_per_mac",
    "cycles_per_dense_conv_mac": "cycles_per_dense_mac",
    "cycles_per_walk_mac": "cycles_per_dense_mac",
    "cycles_per_walk_conv_mac": "cycles_per_dense_conv_mac",
    "cycles_per_transform": 0.0,
    "cycles_per_output": 0.0,
}
# feature (task_features) -> the table key that prices it
FEATURES = {
    "macs": "cycles_per_mac",
    "conv_macs": "cycles_per_conv_mac",
    "dense_macs": "cycles_per_dense_mac",
    "dense_conv_macs": "cycles_per_dense_conv_mac",
    "walk_macs": "cycles_per_walk_mac",
    "walk_conv_macs": "cycles_per_walk_conv_mac",
    "fft_macs": "cycles_per_fft_mac",
    "w8_macs": "cycles_per_w8_mac",
    "butterflies": "cycles_per_butterfly",
    "short_butterflies": "cycles_per_short_butterfly",
    "transforms": "cycles_per_transform",
    "elements": "cycles_per_element",
    "outputs": "cycles_per_output",
    "calls": "cycles_per_call",
}


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
    # None: the table has no such key (DEFAULTS: priced as cycles_per_mac)
    cycles_per_fft_mac: float | None = None
    cycles_per_dense_mac: float | None = None
    cycles_per_dense_conv_mac: float | None = None
    cycles_per_walk_mac: float | None = None
    cycles_per_walk_conv_mac: float | None = None
    cycles_per_conv_mac: float | None = None
    cycles_per_w8_mac: float = 0.0
    cycles_per_short_butterfly: float = 0.0
    cycles_per_transform: float = 0.0
    cycles_per_output: float = 0.0

    def coefficient(self, key: str) -> float:
        """The table's coefficient ``key`` (a FEATURES value), its documented default when absent."""
        v = getattr(self, key)
        while v is None:  # DEFAULTS: names another key (the chain ends at a required one)
            v = getattr(self, DEFAULTS[key])
            key = DEFAULTS[key]
        return float(v)

    def cycles(self, **features: int) -> float:
        """Estimated cycles of work with the given feature counts (FEATURES' names; absent ones are 0)."""
        unknown = set(features) - set(FEATURES)
        if unknown:
            raise TypeError(f"unknown cost features {sorted(unknown)}")
        return sum(n * self.coefficient(FEATURES[f]) for f, n in features.items() if n)

    def energy_j(self, cycles: float) -> float:
        return cycles * self.joules_per_cycle

    def describe(self) -> dict:
        extra = {k: getattr(self, k) for k in OPTIONAL_KEYS if getattr(self, k) is not None}
        return extra | {
            "cycles_per_mac": self.cycles_per_mac,
            "cycles_per_butterfly": self.cycles_per_butterfly,
            "cycles_per_element": self.cycles_per_element,
            "cycles_per_call": self.cycles_per_call,
            "commit_cycles": self.commit_cycles,
            "joules_per_cycle": self.joules_per_cycle,
            "source": self.source,
        }


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def cost_model(board: Board, backend: str) -> CostModel:
    """Read ``[cost.<backend>]`` from the board's board.toml (all numbers there carry a source)."""
    table = board.extra.get("cost", {}).get(backend)
    if not isinstance(table, dict):
        raise BoardError(
            f"{board.path}: no [cost.{backend}] table (cycle estimates for the {backend} backend)"
        )
    missing = [k for k in KEYS if not _number(table.get(k))]
    if missing:
        raise BoardError(
            f"{board.path}: [cost.{backend}] is missing or has non-numbers in {', '.join(missing)}"
        )
    bad = [k for k in OPTIONAL_KEYS if k in table and not _number(table[k])]
    if bad:
        raise BoardError(f"{board.path}: [cost.{backend}] {', '.join(bad)} must be a number")
    negative = [k for k in (*KEYS, *OPTIONAL_KEYS) if k in table and table[k] < 0]
    if negative:
        raise BoardError(f"{board.path}: [cost.{backend}] {', '.join(negative)} must not be negative")
    # active energy per cycle: I_active(per MHz) · f_MHz · V / f = I_per_MHz · V / 1e6
    jpc = board.power.active_current_per_mhz_a * board.power.supply_voltage_v / 1e6

    def opt(key: str) -> float | None:
        return float(table[key]) if key in table else None

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
        cycles_per_fft_mac=opt("cycles_per_fft_mac"),
        cycles_per_dense_mac=opt("cycles_per_dense_mac"),
        cycles_per_dense_conv_mac=opt("cycles_per_dense_conv_mac"),
        cycles_per_walk_mac=opt("cycles_per_walk_mac"),
        cycles_per_walk_conv_mac=opt("cycles_per_walk_conv_mac"),
        cycles_per_conv_mac=opt("cycles_per_conv_mac"),
        cycles_per_w8_mac=opt("cycles_per_w8_mac") or 0.0,
        cycles_per_short_butterfly=opt("cycles_per_short_butterfly") or 0.0,
        cycles_per_transform=opt("cycles_per_transform") or 0.0,
        cycles_per_output=opt("cycles_per_output") or 0.0,
    )
