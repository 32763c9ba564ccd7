"""Firmware-level emulation: the trace decides where each power-on period ends, and the real image runs with
power cut there (QEMU mps2-an386: instruction counts through the TCG plugin; mspdebug msp430fr5994 ``ref``:
``step N`` + ``reset``; the project's msp430sim for the msp430fr5994, ``ref`` or ``lea``: a cut at an
MCLK cycle).

:func:`emulate_firmware` turns the trace into power-on periods with :func:`power_on_budgets` (an MCU running
flat out at the board's active power, each period with the cycles it can execute after its boot), turns
cycles into instructions (QEMU: ASSUMED 1 instruction per cycle; mspdebug: the image's measured cycles per
instruction from its continuous-power run; msp430sim counts MCLK cycles, so its budgets stay cycles), and
runs the flex app's continuous-inference build (``build_flex(continuous=True)``) ONCE with all the cuts.
The firmware reports what it did: every boot prints the state it recovered, every finished inference its
index, the boot whose commit finished it and its logits (msp430sim: each boot's output buffer is read at
its cut, so every line is seen, as on QEMU). Every finished inference is compared bit for bit with the
continuous-power logits of its sample.

A boot that gets fewer instructions than the firmware's start-up (reset → boot counter) is not counted by
the firmware; such periods are recognised from the executed instruction counts the plugin reports (the
start-up is the same instruction sequence on every boot, so exactly the shortest periods are the uncounted
ones) and reported with no boot of their own.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from batteryless import __version__
from batteryless.boards import Board, load_board, with_emulator
from batteryless.emulate import power_chain, prepare_segments
from batteryless.emulate.firmware_cache import cached_flex_image
from batteryless.emulate.power import (
    Converter,
    Panel,
    load_from_board,
)
from batteryless.emulate.simulate import power_on_budgets
from batteryless.emulate.traces import Trace
from batteryless.errors import EmulationError, UsageError
from batteryless.firmware import run
from batteryless.flex import (
    BOOT_MARK,
    DONE_MARK,
    FlexImage,
    build_flex,
    continuous_input,
    model_input,
    parse_continuous,
)
from batteryless.progress import ProgressFn, report

__all__ = [
    "FIRMWARE_KINDS",
    "MAX_CUTS",
    "SUPPLY_SYMBOL",
    "emulate_firmware",
    "eve_mode_supplies",
    "eve_references",
    "profile_image",
]

FIRMWARE_KINDS = ("qemu", "mspdebug", "msp430sim")
MAX_CUTS = 4096  # older tools/qemu-plugin/bl_insn.c: BL_MAX_CUTS (one cut per power-on period)
INPUT_MARK = 0xF4  # BL_FLEX_MARK_INPUT (checkpointing/flex.h)


def _board(board: str | Path | Board) -> Board:
    return board if isinstance(board, Board) else load_board(board)


def firmware_board(board: str | Path | Board, backend: str = "ref", emulator: str | None = None) -> Board:
    """The board as the emulator that can run ``backend``'s images: ``emulator`` if given (one of the board's
    kind or ``[emulator].alternatives``), else the one ``[emulator].by_backend`` names for the backend, else
    the board's own. A backend the board has not, or an emulator that cannot run the backend (mspdebug has
    no LEA), is a one-line :class:`UsageError`."""
    b = _board(board)
    if backend not in b.backends:
        raise UsageError(f"board {b.name} has no {backend!r} backend (its backends: {', '.join(b.backends)})")
    need = b.emulator.get("by_backend", {}).get(backend)
    if emulator is not None and need is not None and emulator != need:
        raise UsageError(
            f"board {b.name}: {backend} images need the {need} emulator ([emulator].by_backend), "
            f"not {emulator}"
        )
    return with_emulator(b, emulator or need)


def profile_image(
    image: FlexImage,
    board: str | Path | Board,
    samples: list[bytes],
    timeout: float = 300.0,
    supply_mv: int | None = None,
) -> dict[str, Any]:
    """Continuous-power run of a continuous-inference image (marks on): the reference logits of every
    sample and the measured costs in the emulator's count unit (QEMU instructions, mspdebug MCLK cycles):

    ``startup`` reset → first boot mark; ``first_boot`` reset → first task (start-up, recovery, boot line,
    input load and its commit); ``resume_boot`` reset → the interrupted task's restart after a
    power failure (start-up, recovery, boot line); ``tasks`` per task t, from its start to the next task's
    start (task + its commit; the last task up to the finished-inference mark); ``between`` from the
    finished-inference mark to the next inference's first task (print, input load, commit);
    ``per_inference``;
    ``cycles_per_instruction`` (1.0 on QEMU, measured on mspdebug); ``largest_step`` (the most work
    between two commits). ``supply_mv``: an EVE image's stored energy for the whole run (written to
    ``bl_eve_supply_mv`` before it starts; QEMU and msp430sim)."""
    b = _board(board)
    n = max(len(samples), 2)
    wr = {} if supply_mv is None else {"writes": _fixed_supply(image, int(supply_mv))}
    r = run(image.image, b, inputs=continuous_input(samples, inferences=n), timeout=timeout, **wr)
    out = parse_continuous(r.output, image.output_len)
    if r.exit_code != 0 or len(out.inferences) != n:
        raise EmulationError(
            f"{image.image}: continuous-power run of {n} inferences failed (exit {r.exit_code}): "
            f"{r.output.strip()[-300:]!r}"
        )
    refs = [out.inferences[i][1] for i in range(len(samples))]
    marks = [(i, c) for i, c in r.marks if i is not None]
    nt = image.num_tasks
    starts = [c for i, c in marks if 1 <= i <= nt]
    dones = [c for i, c in marks if i == DONE_MARK]
    boot = [c for i, c in marks if i == BOOT_MARK]
    if len(starts) != n * nt or len(dones) != n or not boot:
        raise EmulationError(
            f"{image.image}: the profile run's marks are incomplete ({len(starts)} task starts, "
            f"{len(dones)} finished marks for {n} inferences of {nt} tasks)"
        )
    first = starts[:nt] + [dones[0]]
    tasks = [first[t + 1] - first[t] for t in range(nt)]
    between = starts[nt] - dones[0]
    cpi = 1.0
    if r.unit == "mclk_cycles" and r.instructions:
        cpi = r.count / r.instructions
    # one cut inside a task of the first inference (QEMU: half-way through task 5; mspdebug: the same
    # number as instructions, earlier): the resume boot = start-up (the same every boot) + boot mark → the
    # interrupted task's restart
    cut = int((starts[5 % nt] + tasks[5 % nt] // 2) / cpi)
    rc = run(
        image.image, b, inputs=continuous_input(samples, inferences=1), timeout=timeout, cuts=[cut], **wr
    )
    resume = None
    m2 = [(i, c) for i, c in rc.marks if i is not None]
    boots2 = [k for k, (i, _) in enumerate(m2) if i == BOOT_MARK][1:2]
    if rc.exit_code == 0 and boots2:
        k = boots2[0]
        nxt = [c for i, c in m2[k + 1 :] if 1 <= i <= nt]
        if nxt:
            resume = boot[0] + nxt[0] - m2[k][1]
    return {
        "unit": r.unit,
        "startup": boot[0],
        "first_boot": starts[0],
        "resume_boot": resume,
        "tasks": tasks,
        "between": between,
        "per_inference": sum(tasks) + between,
        "largest_step": max(max(tasks), between),
        "cycles_per_instruction": cpi,
        "total": r.count,
        "instructions": r.instructions,
        "references": refs,
        "modes": sorted(set(out.modes.values())),
    }


SUPPLY_SYMBOL = "bl_eve_supply_mv"  # firmware/eve/bl_eve.c: the EVE supply hook's variable (in NVM)


def _symbol_of(image: FlexImage, name: str) -> bool:
    from batteryless.firmware.image import symbols

    return name in symbols(image.image)


TIME_SYMBOL = "bl_eve_now_ms"  # firmware/eve/bl_eve.c: the rate rule's clock (in NVM)
SUPPLY_SAMPLES = 32  # voltage (and time) writes per power-on period after the one at its boot


def _supply_writes(
    image: FlexImage, kind: str, periods: list[dict[str, Any]], cuts: list[int], to_count, t0: float
):
    """The EVE image's supply along the trace: at every power-on (count 0 for the first boot, each cut for
    the boot after it) the voltage at that boot, then at the ``v_samples`` moments of the period (the
    voltage an inference starting there reads; counts from the seconds after the boot at the board's
    clock, ``to_count``), each with the time since the trace start in ``bl_eve_now_ms`` when the image has
    it (the rate rule's clock). Returns (writes, the boot voltage per period in mV), or None for an image
    without the EVE supply variable or an emulator that cannot write memory (mspdebug)."""
    if kind not in ("qemu", "msp430sim"):
        return None
    if not _symbol_of(image, SUPPLY_SYMBOL) and (kind != "msp430sim" or eve_mode_supplies(image) is None):
        return None  # not an EVE image (msp430sim: an EVE image with the ADC hook has no variable)
    clock = _symbol_of(image, TIME_SYMBOL)

    def mv_of(v, at: float) -> int:
        if v is None or not math.isfinite(v) or not 0 <= v < 65.536:
            raise EmulationError(
                f"the buffer's voltage at {at:.6g} s is {v!r} V: the EVE supply variable takes 0..65.535 V "
                "(millivolts in 16 bits)"
            )
        return int(round(1000.0 * v))

    writes, boot_mv = [], []
    starts = [0, *cuts]
    for k, p in enumerate(periods):
        start, end = starts[k], cuts[k] if k < len(cuts) else None
        points = [(start, p["start_s"], p.get("v_boot"))]
        boot_s = p["start_s"] + float(p.get("boot_s", 0.0))
        for off, v in p.get("v_samples", []):
            c = start + to_count(off)
            if c > points[-1][0] and (end is None or c < end):
                points.append((c, boot_s + off, v))
        boot_mv.append(mv_of(points[0][2], p["start_s"]))
        for c, t, v in points:
            writes.append((c, SUPPLY_SYMBOL, mv_of(v, t)))
            if clock:
                writes.append((c, TIME_SYMBOL, max(0, min(0xFFFFFFFF, int(1000.0 * (t - t0))))))
    # the boot after the trace end gets the last period's last voltage
    if len(starts) > len(periods) and writes:
        last = [w for w in writes if w[0] == writes[-1][0]]
        writes += [(starts[len(periods)], name, val) for _, name, val in last]
    return writes, boot_mv


def _eve_table(image: FlexImage) -> dict[str, Any] | None:
    import json

    sched = Path(image.model_dir) / "schedule.json"
    eve = json.loads(sched.read_text()).get("eve") if sched.is_file() else None
    return eve if eve and eve.get("stay_mv") else None


def _fixed_supply(image: FlexImage, mv: int) -> list[tuple[int, str, int]]:
    """Writes that hold an EVE image at ``mv`` for a whole run: the supply, and for a rate-rule table its
    clock at 0 (no time passes, so the rule never estimates an income: see _rate_supplies)."""
    eve = _eve_table(image)
    clock = [(0, TIME_SYMBOL, 0)] if eve and eve.get("rate") and _symbol_of(image, TIME_SYMBOL) else []
    return [(0, SUPPLY_SYMBOL, mv), *clock]


def _rate_supplies(eve: dict[str, Any]) -> list[int]:
    """A rate-rule table (eve/select.py rate_select): with the clock stopped at 0 the rule never updates its
    income estimate (dt = 0 < min_dt), so its budget is gain·(E(V) − E(ref_mv)) alone; per mode the middle of
    the widest band of voltages at which a fresh record picks that mode after any mode (found with the
    Python rule the C matches bit for bit)."""
    from types import SimpleNamespace

    from batteryless.eve.select import RatePolicy, RateState, rate_select

    r = dict(eve["rate"])
    r["energy_mv2"] = tuple(r["energy_mv2"])
    t = SimpleNamespace(rate=RatePolicy(**r))
    n = len(r["energy_mv2"])
    bands: dict[int, tuple[int, int]] = {}  # mode -> (start, length) of its widest band
    run_mode, run_start = None, 0
    for mv in range(0, 65537):
        picks = {rate_select(t, RateState(), mv, 0, c) for c in range(n)} if mv <= 65535 else set()
        m = picks.pop() if len(picks) == 1 else None
        if m != run_mode:
            if run_mode is not None and mv - run_start > bands.get(run_mode, (0, 0))[1]:
                bands[run_mode] = (run_start, mv - run_start)
            run_mode, run_start = m, mv
    missing = [m for m in range(n) if m not in bands]
    if missing:
        raise EmulationError(
            f"the rate-rule table holds no stored energy at which it picks mode(s) {missing} without an "
            f"income estimate (gain {r['gain_q8']}/256): the emulator cannot run those modes' references"
        )
    return [bands[m][0] + bands[m][1] // 2 for m in range(n)]


def eve_mode_supplies(image: FlexImage) -> list[int] | None:
    """For an EVE image: per mode, a stored energy (mV) at which the generated table selects that mode at
    every inference of a fresh run (the image starts in mode 0: the largest at 65535, mode i half-way
    between ``stay_mv[i]`` and ``stay_mv[i-1]``, clear of an ADC's rounding, the smallest at 0; a rate-rule
    table: :func:`_rate_supplies`, with its clock held at 0); None for an image without modes."""
    eve = _eve_table(image)
    if eve is None:
        return None
    if eve.get("rate"):
        return _rate_supplies(eve)
    stay = [int(v) for v in eve["stay_mv"]]
    mid = [(stay[i] + stay[i - 1]) // 2 for i in range(1, len(stay) - 1)]
    return [0xFFFF, *mid, 0] if len(stay) > 1 else [0xFFFF]


def eve_references(
    image: FlexImage, board: Board, samples: list[bytes], supplies: list[int], timeout: float = 300.0
) -> tuple[list[list[list[int]]], float | None]:
    """Continuous-power logits of every sample in every mode (one run per mode, the supply fixed so that
    the table selects it; each run is checked to have run only that mode). Also returns the fewest counts
    (the emulator's unit) any mode's run spent per inference, start-up included (an upper bound on the
    cheapest inference: it bounds how many inferences a trace could finish)."""
    out = []
    cheapest = None
    for m, mv in enumerate(supplies):
        n = len(samples)
        r = run(
            image.image, board, inputs=continuous_input(samples, inferences=n, marks=False),
            timeout=timeout, writes=_fixed_supply(image, mv), mark_ids=[],
        )  # fmt: skip
        o = parse_continuous(r.output, image.output_len)
        if r.exit_code != 0 or len(o.inferences) != n or set(o.modes.values()) != {m}:
            raise EmulationError(
                f"{image.image}: the reference run of mode {m} (supply {mv} mV) ran modes "
                f"{sorted(set(o.modes.values()))} (exit {r.exit_code}, {len(o.inferences)} of {n} inferences)"
            )
        out.append([o.inferences[i][1] for i in range(n)])
        if r.count:
            cheapest = r.count / n if cheapest is None else min(cheapest, r.count / n)
    return out, cheapest


def _cut_limit() -> int | None:
    """The QEMU plugin of this tree took at most 4,096 cuts (on its command line); the version whose
    ``run`` has ``stop_at`` passes cuts in a file, without a limit."""
    import inspect

    return None if "stop_at" in inspect.signature(run).parameters else MAX_CUTS


def _map_boots(executed: list[int], counted: int) -> list[int | None]:
    """Firmware boot number per period: the ``counted`` periods with the most executed instructions reached
    the boot counter (same start-up sequence every boot), numbered in time order; the others got none."""
    order = sorted(range(len(executed)), key=lambda k: (-executed[k], k))
    keep = set(order[:counted])
    out: list[int | None] = []
    nb = 0
    for k in range(len(executed)):
        if k in keep:
            nb += 1
            out.append(nb)
        else:
            out.append(None)
    return out


def emulate_firmware(
    trace: str | Path | Trace,
    board: str | Path | Board,
    *,
    artifact: str | Path | None = None,
    image: FlexImage | None = None,
    samples: list[bytes] | None = None,
    n_samples: int = 4,
    policy: str = "flex",
    backend: str = "ref",
    emulator: str | None = None,
    converter: str | Path | Converter = "ideal",
    panel: str | Path | Panel | None = "indoor-5cm2",
    capacitance_f: float | None = None,
    v_on: float | None = None,
    v_off: float | None = None,
    v_max: float | None = None,
    leakage_resistance_ohm: float | None = None,
    esr_ohm: float | None = None,
    v_initial: float = 0.0,
    trace_format: str | None = None,
    resample_s: float | None = None,
    max_periods: int | None = None,
    out_dir: str | Path | None = None,
    timeout: float | None = None,
    profile: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    eve_policy: str | Path | dict | None = None,
) -> dict[str, Any]:
    """Run the real firmware through ``trace`` on ``board``; return the report (see the module doc).

    Give ``artifact`` (built into ``out_dir``, by default into the image cache of
    :mod:`batteryless.emulate.firmware_cache`: built once per content) or a prebuilt continuous
    ``image`` with ``samples`` (raw inputs; default: the artifact's first ``n_samples`` test samples).
    ``max_periods`` emulates only the first that many power-on periods (the trace is cut there).
    ``backend`` selects the kernels of the built image and, through :func:`firmware_board`, the emulator
    (``emulator`` overrides: e.g. "msp430sim" for the FR5994's ``ref`` image). ``eve_policy``: an EVE
    artifact's rate-rule document (``batteryless policy``, tuned for this emulation's buffer): the image's
    table carries the rate rule, which reads the trace's time the emulator writes into ``bl_eve_now_ms``.
    The returned dict has the trace/buffer/load blocks of the schedule-level report and ``"firmware"``."""
    t0 = time.perf_counter()
    b = firmware_board(board, backend, emulator)
    kind = b.emulator.get("kind")
    if kind not in FIRMWARE_KINDS:
        raise EmulationError(
            f"board {b.name} has no instruction-counting emulator ([emulator].kind {kind!r}); "
            "firmware-level emulation runs on QEMU (mps2-an386), mspdebug or msp430sim (msp430fr5994)"
        )
    if max_periods is not None and max_periods < 1:
        raise UsageError(f"max_periods must be >= 1, not {max_periods}")
    if eve_policy is not None:
        if image is not None:
            raise UsageError(
                "eve_policy is for an image built here from an artifact; a built image has its table"
            )
        from batteryless.eve.policy import load_policy

        eve_policy = load_policy(eve_policy)
    tr, conv, pan, buf = power_chain(
        b,
        trace,
        converter,
        panel,
        trace_format=trace_format,
        resample_s=resample_s,
        capacitance_f=capacitance_f,
        v_on=v_on,
        v_off=v_off,
        v_max=v_max,
        leakage_resistance_ohm=leakage_resistance_ohm,
        esr_ohm=esr_ohm,
    )
    load = load_from_board(b)

    seg_t, seg_p, t_end, harvested, _ = prepare_segments(
        tr, conv, pan if tr.quantity == "irradiance" else None
    )
    report(progress, "firmware: power-on periods", 0, 1)
    periods = power_on_budgets(seg_t, seg_p, t_end, buf, load, v_initial=v_initial, samples=SUPPLY_SAMPLES)
    for p in periods:  # for the writes along each period (_supply_writes)
        p["boot_s"], p["trace_start_s"] = load.boot_time_s, float(tr.time_s[0])
    report(progress, "firmware: power-on periods", 1, 1)
    end_s = float(t_end)
    if max_periods is not None and len(periods) > max_periods:
        periods = periods[:max_periods]
        end_s = float(periods[-1]["end_s"])
    duration = end_s - float(tr.time_s[0])

    if image is None:
        if artifact is None:
            raise UsageError("give an artifact (.bl) or a built continuous-inference image")
        # MSP430: the last boot's output (1 KiB) must hold the final log: keep 8 entries there
        log_len = 16 if kind == "qemu" else 8
        if out_dir is None:  # no folder asked for: the image cache (built once per content)
            image, _ = cached_flex_image(
                artifact, b, backend=backend, policy=policy, log_len=log_len, progress=progress,
                eve_policy=eve_policy, capacitance_f=buf.capacitance_f if eve_policy is not None else None,
            )  # fmt: skip
        else:
            image = build_flex(
                artifact,
                b,
                Path(out_dir) / "flex",
                policy=policy,
                continuous=True,
                log_len=log_len,
                progress=progress,
                backend=backend,
                eve_policy=eve_policy,
                # the table of a rate-rule image is generated for the buffer emulated here (the policy's)
                capacitance_f=buf.capacitance_f if eve_policy is not None else None,
            )
    elif not image.continuous:
        raise UsageError(f"{image.image}: not a continuous-inference build (build_flex(continuous=True))")
    if samples is None:
        if artifact is None:
            raise UsageError("give samples (raw inputs) or an artifact to take test samples from")
        samples = [model_input(artifact, s) for s in range(n_samples)]
    supplies = eve_mode_supplies(image) if kind in ("qemu", "msp430sim") else None
    if profile is None:
        report(progress, "firmware: continuous-power profile", 0, 1)
        # EVE: the costs of the largest mode (budgets, the largest atomic step), references of every mode
        profile = profile_image(image, b, samples, supply_mv=None if supplies is None else supplies[0])
        if supplies is not None:
            refs, cheapest = eve_references(image, b, samples, supplies)
            profile["references_by_mode"] = refs
            if cheapest is not None:  # the smallest mode finishes more inferences than the profile's
                profile["per_inference_min"] = cheapest
        report(progress, "firmware: continuous-power profile", 1, 1)
    fw = _run_periods(image, b, kind, samples, periods, profile, timeout, progress)
    fw["inferences_per_hour"] = fw["inferences"] / duration * 3600 if duration > 0 else 0.0
    fw["emulated_s"] = duration
    if max_periods is not None:
        fw["max_periods"] = max_periods
    return {
        "generator": f"batteryless {__version__}",
        "level": "firmware",
        "board": b.name,
        "trace": {
            "name": tr.name,
            "source": tr.source,
            "quantity": tr.quantity,
            "samples": len(tr),
            "duration_s": tr.duration_s,
            "harvested_j": harvested,
            "mean_harvested_power_w": harvested / tr.duration_s,
        },
        "converter": {"name": conv.name, "quiescent_power_w": conv.quiescent_power_w, "source": conv.source},
        "panel": None
        if pan is None or tr.quantity != "irradiance"
        else {"name": pan.name, "model": pan.model, **pan.params, "source": pan.source},
        "buffer": asdict(buf),
        "load": asdict(load),
        "runs": [],
        "warnings": fw.pop("warnings"),
        "firmware": fw,
        "elapsed_s": time.perf_counter() - t0,
    }


def _run_periods(image, b, kind, samples, periods, prof, timeout, progress) -> dict[str, Any]:
    cpi = float(prof["cycles_per_instruction"])
    cycles = kind == "msp430sim"  # counts MCLK cycles: budgets, cuts and counts stay cycles
    if cycles:
        unit_note = "MCLK cycles (msp430sim counts cycles: budgets and executed counts are cycles, no CPI)"
    elif kind == "qemu":
        unit_note = (
            "instructions = cycles (ASSUMED 1 instruction per cycle; QEMU counts instructions, not cycles)"
        )
    else:
        unit_note = (
            f"instructions = cycles / {cpi:.3f} (the image's measured MCLK cycles per instruction in its "
            "continuous-power run)"
        )
    to_insn = (lambda c: int(c)) if kind == "qemu" or cycles else (lambda c: int(math.floor(c / cpi)))
    insn_per_unit = 1.0 if prof["unit"] == "instructions" or cycles else 1.0 / cpi
    largest = int(math.ceil(prof["largest_step"] * insn_per_unit))
    boot_need = int(math.ceil(prof["first_boot"] * insn_per_unit))
    per_inf = int(math.ceil(prof["per_inference"] * insn_per_unit))
    base: dict[str, Any] = {
        "image": str(image.image),
        "policy": image.policy,
        "num_tasks": image.num_tasks,
        "emulator": kind,
        "budget_unit": unit_note,
        "samples": len(samples),
        "profile": {k: v for k, v in prof.items() if k not in ("references", "references_by_mode")},
        "warnings": [],
    }
    budgets = [max(1, to_insn(p["cycles"])) for p in periods]
    if not periods:
        base.update(
            periods=[], power_failures=0, resets=0, boots_counted=0, periods_too_short_to_boot=0,
            inferences=0, checked=0, wrong=[], all_correct=True, commits=0, instructions=0,
            cycles_to_instructions=unit_note, largest_step_instructions=largest,
            inference_instructions=per_inf, wall_s=0.0, cpu_s=0.0, power_cycles_per_s=0.0, garbled_lines=0,
        )  # fmt: skip
        base["warnings"].append("the buffer never reached v_on: the firmware never ran")
        return base
    longest = max(budgets)
    if longest < boot_need + largest:
        raise EmulationError(
            f"no power-on period of this trace can finish the firmware's largest atomic step: it needs "
            f"{largest} instructions plus about {boot_need} for booting and recovery, the longest period "
            f"gives {longest} ({unit_note}); use a larger buffer (--capacitance-uf) or a stronger trace"
        )
    if _cut_limit() is not None and len(budgets) > MAX_CUTS:
        raise EmulationError(
            f"the trace gives {len(budgets)} power-on periods; this emulator takes at most {MAX_CUTS} cuts "
            "(one per period, the last at the trace end) in one run: emulate the first ones with "
            "--max-periods"
        )
    cuts, at = [], 0
    for n in budgets:
        at += n
        cuts.append(at)
    total = cuts[-1]
    # The boot after the last cut (the trace end) must stop at once. The firmware counts only boots that
    # get past its start-up (the first `startup` instructions, the same on every boot), so max_boots counts
    # the periods that surely do; if a borderline period is not counted after all, the inference limit
    # (more than the whole trace could finish, with 5 % slack) still ends the run.
    floor_insn = max(int(prof["startup"] * insn_per_unit) - 8, 1)
    max_boots = sum(1 for x in budgets if x >= floor_insn)
    # EVE: the cheapest mode's cost (the profile ran the largest); an upper bound, so the limit is one too
    if "per_inference_min" in prof:
        cheapest = int(prof["per_inference_min"] * insn_per_unit) - boot_need
        limit = int(total / (0.95 * max(1, min(per_inf, cheapest)))) + 2
    else:
        limit = int(total / (0.95 * per_inf)) + 2
    inp = continuous_input(samples, inferences=limit, max_boots=max_boots, marks=False)
    if timeout is None:
        # generous: QEMU runs ~0.1 G instructions/s (≥ 1 M/s even with an old per-instruction cut check),
        # mspdebug ≥ ~0.2 M/s
        timeout = 120.0 + total / {"qemu": 1e6, "msp430sim": 2e6}.get(kind, 2e5) + 0.05 * len(cuts)
    report(progress, f"firmware: {len(cuts)} power-on periods on {b.name}", 0, 1)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    extra: dict[str, Any] = {"cut_unit": "mclk_cycles"} if cycles else {}
    hz = float(b.clock_hz)  # counts per second: QEMU ASSUMED 1 instruction per cycle, msp430sim cycles
    supply_w = _supply_writes(
        image, kind, periods, cuts, lambda sec: to_insn(sec * hz), float(periods[0].get("trace_start_s", 0.0))
    )
    supply = None
    if supply_w is not None:
        extra["writes"], supply = supply_w
        base["supply"] = (
            f"{SUPPLY_SYMBOL} written at every power-on (before the boot's first instruction) with the "
            f"buffer's voltage at that boot and at {SUPPLY_SAMPLES} moments of each period after it (the "
            "voltage along the trace, interpolated on the schedule-level voltage timeline; counts from the "
            f"time at the board's clock), with the time in {TIME_SYMBOL} (the rate rule's clock) when the "
            "image has it; the firmware reads them once per inference, at its start"
            + (
                " (msp430sim: also the ADC12_B model's supply, which images with BL_EVE_SUPPLY_ADC=1 read)"
                if cycles
                else ""
            )
        )
    elif _symbol_of(image, SUPPLY_SYMBOL):
        base["warnings"].append(
            f"{kind} cannot write memory during a run: the EVE image read {SUPPLY_SYMBOL} = 0 at every "
            "inference (the smallest mode)"
        )
    r = run(image.image, b, inputs=inp, timeout=timeout, cuts=cuts, **extra)
    wall = time.perf_counter() - t0
    report(progress, f"firmware: {len(cuts)} power-on periods on {b.name}", 1, 1)
    # msp430sim: every boot's output (read at its cut; a line cut short there ends with the boot), as QEMU's.
    # The cut line gets a marker so it cannot parse: cut inside the last logit ("... 765 820" -> "... 765 8")
    # it would otherwise read as a whole line with other logits (the reprint after the resume then conflicts).
    text = "".join(o if o.endswith("\n") or not o else o + " <cut>\n" for o in r.boot_outputs) + r.output
    out = parse_continuous(text, image.output_len)
    if r.exit_code != 0:
        raise EmulationError(
            f"{image.image}: the firmware exited with {r.exit_code} under the trace: "
            f"{r.output.strip()[-300:]!r}"
        )
    n = len(budgets)
    # executed per period: QEMU reports where each cut really landed (the end of a translation block)
    # (msp430sim: the cycle count after the instruction that crossed the cut)
    landed = list(r.cut_counts) if kind in ("qemu", "msp430sim") and len(r.cut_counts) == n else list(cuts)
    executed = [landed[0]] + [landed[k] - landed[k - 1] for k in range(1, n)]
    by_number = {x["boot"]: x for x in out.boots}
    last = out.boots[-1] if out.boots else None
    reached_end = last is not None and r.resets >= n
    if reached_end:
        counted = last["boot"] - 1  # the boot after the trace end always prints its boot line
    else:  # the firmware stopped before the last cut (cannot happen with the limit above)
        counted = last["boot"] if last is not None else 0
        base["warnings"].append(f"the firmware ended after {r.resets} of {n} power failures")
    boot_of = _map_boots(executed, counted)
    refs = prof["references"]
    s = len(refs)
    # totals from the state the boot after the trace end recovered: inferences 0..i-1 finished, and i too
    # if its next task is past the last
    if reached_end:
        finished = last["inference"] + (1 if last["next"] >= image.num_tasks else 0)
        final_commits: int | None = last["commits"]
    else:
        finished = len(out.inferences)
        final_commits = out.final_commits
    by_mode = prof.get("references_by_mode")

    def ref_of(i: int) -> list[int] | None:
        if by_mode is not None and i in out.modes:
            m = out.modes[i]
            return by_mode[m][i % s] if 0 <= m < len(by_mode) else None
        return refs[i % s]

    wrong = [i for i, (_, lg) in out.inferences.items() if i < finished and lg != ref_of(i)]
    wrong = sorted(set(wrong) | {i for i in out.conflicts if i < finished})
    checked = sum(1 for i in out.inferences if i < finished)
    # mspdebug keeps the last boot's output only: the final NVM log (the last log_len inferences)
    expect_checked = finished if kind != "mspdebug" else min(finished, image.log_len or finished)
    rows = []
    period_of_boot = {bn: k for k, bn in enumerate(boot_of) if bn is not None}
    per_period_inf: dict[int, list[int]] = {}
    for i, (bn, _) in sorted(out.inferences.items()):
        if i < finished and bn in period_of_boot:
            per_period_inf.setdefault(period_of_boot[bn], []).append(i)
    for k, p in enumerate(periods):
        bn = boot_of[k]
        row: dict[str, Any] = {
            "start_s": p["start_s"],
            "end_s": p["end_s"],
            "budget_cycles": p["cycles"],
            "budget_instructions": budgets[k],
            "executed_instructions": executed[k],
            "boot": bn,
            "inferences": per_period_inf.get(k, []),
            "commits": None,
            "resumed_at": None,
        }
        if supply is not None:
            row["supply_mv"] = supply[k]
            row["modes"] = [out.modes[i] for i in per_period_inf.get(k, []) if i in out.modes]
        if bn is not None and bn in by_number:
            st = by_number[bn]
            row["resumed_at"] = {"inference": st["inference"], "next_task": st["next"]}
            nxt = by_number.get(bn + 1)
            if nxt is not None:
                row["commits"] = nxt["commits"] - st["commits"]
        elif bn is None:
            row["commits"] = 0
        rows.append(row)
    if kind == "mspdebug":
        base["warnings"].append(
            "mspdebug keeps only the last boot's output: per-period commits are unknown, and only the last "
            "log entries (BL_FLEX_LOG_LEN) of finished inferences are checked"
        )
    base.update(
        periods=rows,
        power_failures=sum(1 for p in periods if p["end_s"] is not None),
        resets=r.resets,
        boots_counted=counted,
        periods_too_short_to_boot=sum(1 for x in boot_of if x is None),
        inferences=finished,
        checked=checked,
        wrong=wrong[:20],
        all_correct=not wrong and checked == expect_checked,
        commits=final_commits,
        instructions=r.instructions,
        cycles_to_instructions=unit_note,
        largest_step_instructions=largest,
        inference_instructions=per_inf,
        wall_s=wall,
        cpu_s=time.process_time() - cpu0,
        power_cycles_per_s=r.resets / wall if wall > 0 else 0.0,
        garbled_lines=out.garbled,
    )
    if out.modes:  # EVE image: finished inferences per mode (each printed "mode M")
        per_mode: dict[str, int] = {}
        for i, m in sorted(out.modes.items()):
            if i < finished:
                per_mode[str(m)] = per_mode.get(str(m), 0) + 1
        base["modes"] = dict(sorted(per_mode.items(), key=lambda kv: int(kv[0])))
    if checked < expect_checked:
        base["warnings"].append(f"{expect_checked - checked} finished inference(s) printed no complete line")
    return base
