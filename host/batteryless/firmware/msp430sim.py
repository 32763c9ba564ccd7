"""The project's own MSP430FR5994 simulator (``tools/msp430sim/bl_msp430sim.c``) driven through ctypes.

It executes MSP430/MSP430X code, models the MPY32 and the FRAM controller's wait states (NWAITS from the
firmware's FRCTL0 write, with a small read cache) and counts MCLK cycles; a power cut at cycle or
instruction N keeps FRAM and loses registers, SRAM, LEA RAM and peripheral state. The C source is compiled
once per source hash into the helper cache (like the QEMU plugin). See docs/emulation.md ("MSP430FR5994
simulator") for what is modelled, the timing sources and why this route was chosen over patching mspdebug.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

from batteryless.errors import EmulationError

ROOT = Path(__file__).resolve().parents[3]
SIM_DIR = ROOT / "tools" / "msp430sim"
SIM_SOURCES = ("bl_msp430sim.c", "crc32.c")
# The LEA's arithmetic is the DSPLib software model's code, compiled into the simulator (one implementation).
MODEL_SOURCES = tuple(
    ROOT / "firmware" / "dsplib" / p
    for p in ("DSPLib.h", "model/msp_model.h", "model/msp_model_lea.c", "model/msp_model_rom.c",
              "model/msp_transform.c")
)  # fmt: skip

STOP_LIMIT, STOP_PC, STOP_HALT, STOP_ILLEGAL, STOP_VACANT = range(5)
STOP_NAMES = {
    STOP_LIMIT: "limit",
    STOP_PC: "stop_pc",
    STOP_HALT: "halt",
    STOP_ILLEGAL: "illegal instruction",
    STOP_VACANT: "fetch from vacant memory",
}
# bl_sim_counter indices
_C_CYCLES, _C_INSNS, _C_FRAM_READS, _C_FRAM_MISSES, _C_FRAM_WRITES, _C_RESETS, _C_MARKS = range(7)
_C_ILLEGAL, _C_LAST_PC, _C_NWAITS = 7, 8, 9


def library_path() -> Path:
    """Build (once per source hash) and return the simulator's shared library."""
    from batteryless.firmware.tools import host_shared_library

    key_files = [SIM_DIR / n for n in SIM_SOURCES] + list(MODEL_SOURCES)
    path, _ = host_shared_library("msp430sim", SIM_DIR / "bl_msp430sim.c", key_files, "the MSP430 simulator")
    return path


_LIB: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(str(library_path()))
        P, U32, U64, I32 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int32
        for name, res, args in (
            ("bl_sim_new", P, []),
            ("bl_sim_free", None, [P]),
            ("bl_sim_load", I32, [P, U32, ctypes.c_char_p, U32]),
            ("bl_sim_read", I32, [P, U32, ctypes.c_void_p, U32]),
            ("bl_sim_config", None, [P, U32, U32, I32, U32]),
            ("bl_sim_power_on", None, [P]),
            ("bl_sim_set_timing", None, [P, I32]),
            ("bl_sim_set_lea_timing", None, [P, U32]),
            ("bl_sim_power_cut", None, [P]),
            ("bl_sim_run", I32, [P, U64, U64]),
            ("bl_sim_reg", U32, [P, I32]),
            ("bl_sim_set_reg", None, [P, I32, U32]),
            ("bl_sim_counter", U64, [P, I32]),
            ("bl_sim_set_cycles", None, [P, U64, U64]),
            ("bl_sim_marks", U32, [P, U32, U32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]),
            ("bl_sim_clear_marks", None, [P]),
            ("bl_sim_set_supply_mv", None, [P, U32]),
            ("bl_sim_lea_starts", U32, [P, U32, U32, ctypes.c_void_p]),
            ("bl_sim_profile", I32, [P, I32, ctypes.c_void_p]),
        ):
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        _LIB = lib
    return _LIB


@dataclass(frozen=True)
class Mark:
    value: int
    cycle: int
    instruction: int


class Msp430Sim:
    """One simulated MSP430FR5994. Load an image (or raw bytes), power on, run, cut, read memory.

    ``fram_timing=False`` models no FRAM wait states and ``cpu_timing="msp430"`` the original MSP430 CPU's
    cycle tables (both to compare with mspdebug's simulator, which models neither the MSP430X nor FRAM).
    ``lea_timing_scale`` multiplies every LEA command's ASSUMED duration (docs/msp430sim.md "LEA"): a
    sensitivity knob for results that depend on timings no TI figure here confirms."""

    def __init__(
        self,
        *,
        stop_pc: int | None = None,
        mark_addr: int | None = None,
        fram_timing: bool = True,
        seed: int = 0,
        cpu_timing: str = "msp430x",
        lea_timing_scale: float = 1.0,
    ) -> None:
        if cpu_timing not in ("msp430x", "msp430"):
            raise EmulationError(f"cpu_timing must be 'msp430x' or 'msp430', got {cpu_timing!r}")
        if not 1 / 256 <= lea_timing_scale <= 64:
            raise EmulationError(f"lea_timing_scale must be in [1/256, 64], got {lea_timing_scale!r}")
        self._lib = _lib()
        self._h = self._lib.bl_sim_new()
        if not self._h:
            raise EmulationError("MSP430 simulator: out of memory")
        self._lib.bl_sim_config(
            self._h,
            0xFFFFFFFF if stop_pc is None else stop_pc,
            mark_addr or 0,
            1 if fram_timing else 0,
            seed & 0xFFFFFFFF,
        )
        self._lib.bl_sim_set_timing(self._h, 1 if cpu_timing == "msp430" else 0)
        self._lib.bl_sim_set_lea_timing(self._h, round(256 * lea_timing_scale))

    def close(self) -> None:
        if self._h:
            self._lib.bl_sim_free(self._h)
            self._h = None

    def __enter__(self) -> Msp430Sim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # memory
    def load(self, addr: int, data: bytes) -> None:
        if self._lib.bl_sim_load(self._h, addr, bytes(data), len(data)) != 0:
            raise EmulationError(f"MSP430 simulator: cannot load {len(data)} bytes at 0x{addr:X}")

    def read(self, addr: int, length: int) -> bytes:
        buf = ctypes.create_string_buffer(length)
        if self._lib.bl_sim_read(self._h, addr, buf, length) != 0:
            raise EmulationError(f"MSP430 simulator: cannot read {length} bytes at 0x{addr:X}")
        return buf.raw

    def load_elf(self, path: str | Path) -> None:
        """Load every PT_LOAD segment's file bytes at its physical (load) address, as a programmer does."""
        from elftools.elf.elffile import ELFFile

        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                    self.load(int(seg["p_paddr"]), seg.data())

    # execution
    def power_on(self) -> None:
        self._lib.bl_sim_power_on(self._h)

    def power_cut(self) -> None:
        """Cut power: registers, SRAM (incl. LEA RAM) and peripherals are lost; boots again at once."""
        self._lib.bl_sim_power_cut(self._h)

    def set_supply_mv(self, mv: int) -> None:
        """The supply (AVCC, the energy buffer's voltage) in millivolts that the ADC12_B model converts for
        the EVE supply hook (firmware/platform/msp430/eve_supply_adc.c); kept across power cuts."""
        if not isinstance(mv, int) or isinstance(mv, bool) or not 0 <= mv <= 0xFFFF:
            raise EmulationError(f"MSP430 simulator: the supply is an int of mV 0..65535, got {mv!r}")
        self._lib.bl_sim_set_supply_mv(self._h, mv)

    def run(self, max_cycles: int = 0, max_insns: int = 0) -> int:
        """Run until an absolute cycle / instruction count (0 = none), stop_pc, halt or a fault."""
        return int(self._lib.bl_sim_run(self._h, max_cycles, max_insns))

    def reg(self, i: int) -> int:
        return int(self._lib.bl_sim_reg(self._h, i))

    def set_reg(self, i: int, value: int) -> None:
        self._lib.bl_sim_set_reg(self._h, i, value)

    def _counter(self, i: int) -> int:
        return int(self._lib.bl_sim_counter(self._h, i))

    @property
    def cycles(self) -> int:
        return self._counter(_C_CYCLES)

    @property
    def instructions(self) -> int:
        return self._counter(_C_INSNS)

    @property
    def resets(self) -> int:
        return self._counter(_C_RESETS)

    @property
    def nwaits(self) -> int:
        return self._counter(_C_NWAITS)

    def fram_stats(self) -> dict[str, int]:
        return {
            "reads": self._counter(_C_FRAM_READS),
            "read_misses": self._counter(_C_FRAM_MISSES),
            "writes": self._counter(_C_FRAM_WRITES),
        }

    def constant_sources(self) -> list[int]:
        """How many constant-generator source operands (#0 #1 #2 #4 #8 #-1) were executed, by As 0..3."""
        return [self._counter(10 + i) for i in range(4)]

    def fault(self) -> str:
        return f"opcode 0x{self._counter(_C_ILLEGAL):04X} at PC 0x{self._counter(_C_LAST_PC):05X}"

    @property
    def lea_busy(self) -> bool:
        """A LEA command is running now."""
        return bool(self._counter(15))

    def lea_stats(self) -> dict[str, object]:
        """LEA commands completed and their summed lengths, by command number, and the busy MCLK cycles."""
        counts = {c: self._counter(100 + c) for c in range(80)}
        return {
            "busy_cycles": self._counter(14),
            "commands": {c: n for c, n in counts.items() if n},
            "elements": {c: self._counter(200 + c) for c, n in counts.items() if n},
        }

    def dma_stats(self) -> dict[str, int]:
        """DMA byte/word transfers done and the MCLK cycles the transfers held the CPU (docs/msp430sim.md)."""
        return {"transfers": self._counter(16), "cycles": self._counter(17)}

    def lea_starts(self, start: int = 0) -> list[int]:
        """Instruction counts at which LEA commands were started (LEA is busy right after each), from the
        ``start``-th command on."""
        out: list[int] = []
        while True:
            buf = (ctypes.c_uint64 * 4096)()
            got = self._lib.bl_sim_lea_starts(self._h, start + len(out), 4096, buf)
            out += [int(buf[i]) for i in range(got)]
            if got < 4096:
                return out

    def clear_marks(self) -> None:
        self._lib.bl_sim_clear_marks(self._h)

    def enable_profile(self) -> None:
        """Count MCLK cycles per instruction address from now on (see :meth:`profile`)."""
        if self._lib.bl_sim_profile(self._h, 1, None) != 0:
            raise EmulationError("MSP430 simulator: out of memory for the profile")

    def profile(self, symbols_by_address: list[tuple[int, str]]) -> dict[str, int]:
        """Cycles per function: ``symbols_by_address`` is [(start address, name)], sorted."""
        import bisect

        buf = (ctypes.c_uint64 * 0x8000)()
        self._lib.bl_sim_profile(self._h, 0, buf)
        starts = [a for a, _ in symbols_by_address]
        out: dict[str, int] = {}
        for i in range(0x8000):
            if buf[i]:
                k = bisect.bisect_right(starts, 2 * i) - 1
                name = symbols_by_address[k][1] if k >= 0 else "?"
                out[name] = out.get(name, 0) + int(buf[i])
        return out

    def marks(self) -> list[Mark]:
        n = self._counter(_C_MARKS)
        out: list[Mark] = []
        start = 0
        while start < n:
            k = min(4096, n - start)
            vals = (ctypes.c_uint16 * k)()
            cyc = (ctypes.c_uint64 * k)()
            ins = (ctypes.c_uint64 * k)()
            got = self._lib.bl_sim_marks(self._h, start, k, vals, cyc, ins)
            out += [Mark(int(vals[i]), int(cyc[i]), int(ins[i])) for i in range(got)]
            start += got
            if not got:
                break
        return out


# --- running a batteryless image (the runner for board.toml [emulator].kind = "msp430sim") ---------------

CHUNK_CYCLES = 20_000_000  # between timeout checks (~0.3 s of host time)


def run_image(
    elf: Path, board, timeout: float, cuts: list[int], cut_unit: str = "instructions",
    supply_mv: int | None = None, writes: list[tuple[int, str, int, int, int]] | None = None,
):  # fmt: skip
    """Run a batteryless MSP430 image to ``bl_done``; return a :class:`batteryless.firmware.RunResult`.

    ``cuts``: ascending absolute counts (``cut_unit`` "instructions" as for mspdebug, or "mclk_cycles")
    at which power is cut: the count reaches N at the end of the instruction that crosses it, then
    registers, SRAM, LEA RAM and peripherals are lost and the image boots again from its reset vector with
    FRAM as it was. Marks: writes to ``[emulator].mark_register`` with their MCLK cycle. ``output`` is
    the last boot's output (the buffer is SRAM), ``boot_outputs`` what each earlier boot printed before
    its cut. ``supply_mv``: the supply the ADC12_B model converts (the EVE supply hook), 0 if not given.
    ``writes``: (count, symbol, address, size, value) from :func:`batteryless.firmware.run` (``count`` in
    ``cut_unit``): written once the count reaches it, before the next instruction; a write to
    ``bl_eve_supply_mv`` also sets the ADC model's supply."""
    import time

    from batteryless.firmware import RunResult
    from batteryless.firmware.image import symbols

    if cut_unit not in ("instructions", "mclk_cycles"):
        raise EmulationError(f"cut_unit must be 'instructions' or 'mclk_cycles', got {cut_unit!r}")
    syms = symbols(elf)
    for need in ("bl_done", "bl_out_buf", "bl_out_len", "bl_exit_code"):
        if need not in syms:
            raise EmulationError(f"{elf}: symbol {need} missing; not an MSP430 batteryless image")
    mark_reg = board.emulator.get("mark_register")
    sim = Msp430Sim(stop_pc=syms["bl_done"].address & ~1, mark_addr=int(mark_reg) if mark_reg else None)
    try:
        sim.load_elf(elf)
        if supply_mv is not None:
            sim.set_supply_mv(supply_mv)
        sim.power_on()
        deadline = time.monotonic() + timeout
        cut_counts: list[int] = []
        boot_outputs: list[str] = []
        out_buf = syms["bl_out_buf"]

        def output() -> str:
            n = int.from_bytes(sim.read(syms["bl_out_len"].address, 2), "little")
            return sim.read(out_buf.address, min(n, out_buf.size)).decode("ascii", errors="replace")

        def advance(limit_cycles: int = 0, limit_insns: int = 0) -> int:
            while True:
                step_to = sim.cycles + CHUNK_CYCLES
                lim = min(step_to, limit_cycles) if limit_cycles else step_to
                why = sim.run(max_cycles=lim, max_insns=limit_insns)
                if why != STOP_LIMIT:
                    return why
                if (limit_cycles and sim.cycles >= limit_cycles) or (
                    limit_insns and sim.instructions >= limit_insns
                ):
                    return why
                if time.monotonic() > deadline:
                    raise EmulationError(
                        f"{elf}: MSP430 simulator run did not reach bl_done within {timeout:.0f} s "
                        f"({sim.cycles} cycles; firmware hung?)"
                    )

        pending = list(writes or [])

        def now() -> int:
            return sim.instructions if cut_unit == "instructions" else sim.cycles

        def apply_due() -> None:
            while pending and pending[0][0] <= now():
                _, name, addr, size, value = pending.pop(0)
                if addr >= 0:  # -1: bl_eve_supply_mv of an image with the ADC hook (no variable)
                    sim.load(addr, int(value).to_bytes(size, "little"))
                if name == "bl_eve_supply_mv":
                    sim.set_supply_mv(int(value))

        def advance_to(c: int) -> int:
            while True:
                apply_due()
                stop = min(c, pending[0][0]) if pending else c
                why = advance(limit_insns=stop) if cut_unit == "instructions" else advance(limit_cycles=stop)
                if why != STOP_LIMIT or now() >= c:
                    return why

        apply_due()
        for c in cuts:
            why = advance_to(c)
            if why != STOP_LIMIT:
                break  # the firmware finished (or faulted) before this cut: later cuts never happen
            cut_counts.append(sim.instructions if cut_unit == "instructions" else sim.cycles)
            # what this boot printed (SRAM, lost at the cut): on the chip a UART would have sent it out
            boot_outputs.append(output())
            sim.power_cut()
            apply_due()
        else:
            while pending:
                why = advance_to(pending[0][0])
                if why != STOP_LIMIT:
                    break
            else:
                why = advance()
        if why == STOP_ILLEGAL or why == STOP_VACANT:
            raise EmulationError(f"{elf}: MSP430 simulator stopped: {STOP_NAMES[why]}, {sim.fault()}")
        if why == STOP_HALT:
            raise EmulationError(f"{elf}: the CPU went to sleep with interrupts off before bl_done")
        code = int.from_bytes(sim.read(syms["bl_exit_code"].address, 2), "little", signed=True)
        marks = [(m.value, m.cycle) for m in sim.marks()]
        res = RunResult(
            output(), code, "mclk_cycles", sim.cycles, sim.instructions, sim.cycles, marks,
            len(cut_counts), cut_counts, boot_outputs=boot_outputs,
        )  # fmt: skip
        return res
    finally:
        sim.close()


@dataclass(frozen=True)
class SampleRun:
    """One image run of :func:`run_many`."""

    output: str
    exit_code: int
    mclk_cycles: int
    instructions: int
    lea: dict
    # the model run alone (only with ``mark_addr``): MCLK cycles from the app's first task mark (1) to its
    # end mark (0), and how many LEA commands started outside that window; None without both marks
    inference_cycles: int | None = None
    lea_commands_outside_inference: int | None = None


def run_many(
    elf: Path,
    inputs: list[bytes],
    timeout: float = 600.0,
    mark_addr: int | None = None,
    lea_timing_scale: float = 1.0,
) -> list[SampleRun]:
    """Run a batteryless MSP430 image once per input in one simulator: every run starts from the image's
    loaded bytes (reloaded, FRAM included) and a power-on reset, with the input written into ``bl_input``
    (magic, length, data — what :func:`batteryless.firmware.patch_input` writes into the file). The same
    counts as :func:`run_image` without writing an ELF per sample; for benchmarks over whole test sets.
    ``mark_addr`` (the board's ``[emulator].mark_register``): also time the inference between the model
    app's marks (``SampleRun.inference_cycles``). ``lea_timing_scale``: as :class:`Msp430Sim`'s."""
    import struct
    import time

    from elftools.elf.elffile import ELFFile

    from batteryless.firmware.image import INPUT_HEADER, INPUT_MAGIC, symbols

    syms = symbols(elf)
    for need in ("bl_done", "bl_out_buf", "bl_out_len", "bl_exit_code", "bl_input"):
        if need not in syms:
            raise EmulationError(f"{elf}: symbol {need} missing; not an MSP430 batteryless image")
    with open(elf, "rb") as fh:
        segs = [
            (int(s["p_paddr"]), s.data())
            for s in ELFFile(fh).iter_segments()
            if s["p_type"] == "PT_LOAD" and s["p_filesz"]
        ]
    inp = syms["bl_input"]
    capacity = inp.size - INPUT_HEADER
    out_buf = syms["bl_out_buf"]
    deadline = time.monotonic() + timeout
    results = []
    sim = Msp430Sim(
        stop_pc=syms["bl_done"].address & ~1, mark_addr=mark_addr, lea_timing_scale=lea_timing_scale
    )
    n_starts = 0
    try:
        for k, data in enumerate(inputs):
            if len(data) > capacity:
                raise EmulationError(f"{elf}: input {k} has {len(data)} bytes; bl_input holds {capacity}")
            for addr, blob in segs:
                sim.load(addr, blob)
            sim.load(
                inp.address, struct.pack("<II", INPUT_MAGIC, len(data)) + data + bytes(capacity - len(data))
            )
            sim.power_cut()
            sim.clear_marks()
            c0, i0, lea0 = sim.cycles, sim.instructions, sim.lea_stats()
            while True:
                why = sim.run(max_cycles=sim.cycles + CHUNK_CYCLES)
                if why != STOP_LIMIT:
                    break
                if time.monotonic() > deadline:
                    raise EmulationError(f"{elf}: input {k} did not reach bl_done within the time budget")
            if why != STOP_PC:
                raise EmulationError(
                    f"{elf}: input {k}: simulator stopped ({STOP_NAMES[why]}, {sim.fault()})"
                )
            lea1 = sim.lea_stats()
            lea = {
                "busy_cycles": lea1["busy_cycles"] - lea0["busy_cycles"],
                "commands": {
                    c: n - lea0["commands"].get(c, 0)  # type: ignore[union-attr]
                    for c, n in lea1["commands"].items()  # type: ignore[union-attr]
                },
                "elements": {
                    c: n - lea0["elements"].get(c, 0)  # type: ignore[union-attr]
                    for c, n in lea1["elements"].items()  # type: ignore[union-attr]
                },
            }
            inference, outside = None, None
            if mark_addr is not None:
                marks = sim.marks()
                first = next((m for m in marks if m.value == 1), None)
                end = next((m for m in reversed(marks) if m.value == 0), None)
                starts = sim.lea_starts(n_starts)
                n_starts += len(starts)
                if first is not None and end is not None:
                    inference = end.cycle - first.cycle
                    lo, hi = first.instruction, end.instruction
                    outside = sum(1 for i in starts if not lo <= i <= hi)
            n = int.from_bytes(sim.read(syms["bl_out_len"].address, 2), "little")
            results.append(
                SampleRun(
                    sim.read(out_buf.address, min(n, out_buf.size)).decode("ascii", errors="replace"),
                    int.from_bytes(sim.read(syms["bl_exit_code"].address, 2), "little", signed=True),
                    sim.cycles - c0,
                    sim.instructions - i0,
                    lea,
                    inference,
                    outside,
                )
            )
    finally:
        sim.close()
    return results


def function_symbols(elf: Path) -> list[tuple[int, str]]:
    """(start address, name) of every function symbol of an MSP430 image, sorted (for
    :meth:`Msp430Sim.profile`)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    out: list[tuple[int, str]] = []
    with open(elf, "rb") as fh:
        for sec in ELFFile(fh).iter_sections():
            if isinstance(sec, SymbolTableSection):
                out += [(int(s["st_value"]) & ~1, s.name) for s in sec.iter_symbols()
                        if s["st_info"]["type"] == "STT_FUNC" and s.name]  # fmt: skip
    return sorted(set(out))


def profile_image(
    elf: Path, data: bytes, timeout: float = 600.0, mark_addr: int | None = None
) -> dict[str, int]:
    """MCLK cycles by function for one run of ``elf`` on ``data`` (as :func:`run_many`, with the simulator's
    per-address profile on): where an inference's cycles go. Functions the compiler inlined count in their
    caller. ``mark_addr`` (the board's ``[emulator].mark_register``): only the inference window, from the
    model app's first task mark (1) to its end mark (0), as ``run_many``'s ``inference_cycles``: a first run
    finds the marks' instruction counts, a second (the same run: the simulator is deterministic) counts
    only the instructions between them. Without both marks: :class:`EmulationError`."""
    import struct

    from batteryless.firmware.image import INPUT_HEADER, INPUT_MAGIC, symbols

    syms = symbols(elf)
    inp = syms["bl_input"]
    capacity = inp.size - INPUT_HEADER
    if len(data) > capacity:
        raise EmulationError(f"{elf}: input has {len(data)} bytes; bl_input holds {capacity}")
    budget = int(timeout * 5e6)  # cycles: far beyond any model image at the simulator's speed

    def fresh() -> Msp430Sim:
        sim = Msp430Sim(stop_pc=syms["bl_done"].address & ~1, mark_addr=mark_addr)
        sim.load_elf(elf)
        sim.load(inp.address, struct.pack("<II", INPUT_MAGIC, len(data)) + data + bytes(capacity - len(data)))
        sim.power_on()
        return sim

    window = None
    if mark_addr is not None:
        sim = fresh()
        try:
            if sim.run(max_cycles=budget) != STOP_PC:
                raise EmulationError(f"{elf}: simulator stopped before bl_done")
            marks = sim.marks()
        finally:
            sim.close()
        first = next((m for m in marks if m.value == 1), None)
        end = next((m for m in reversed(marks) if m.value == 0), None)
        if first is None or end is None:
            raise EmulationError(f"{elf}: no model app marks 1 and 0 to profile between")
        window = (first.instruction, end.instruction)
    sim = fresh()
    try:
        if window is not None:
            # the window's edges: the instruction counts logged with the marks (within one instruction)
            if sim.run(max_insns=window[0]) != STOP_LIMIT:
                raise EmulationError(f"{elf}: simulator stopped before the first task mark")
            sim.enable_profile()
            if sim.run(max_insns=window[1]) != STOP_LIMIT:
                raise EmulationError(f"{elf}: simulator stopped before the end mark")
        else:
            sim.enable_profile()
            why = sim.run(max_cycles=budget)
            if why != STOP_PC:
                raise EmulationError(f"{elf}: simulator stopped ({STOP_NAMES[why]}) before bl_done")
        return sim.profile(function_symbols(elf))
    finally:
        sim.close()
