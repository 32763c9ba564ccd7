"""``codegen``: artifact + board → the generated sources and schedule.json (checks its arguments first)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from batteryless.artifact import load_artifact
from batteryless.boards import Board, load_board
from batteryless.codegen import granularity as granularity_mod
from batteryless.codegen.c_source import banner
from batteryless.codegen.costs import cost_model
from batteryless.codegen.emit import emit_sources
from batteryless.codegen.memory import HINT, OUT_BUFFER_BYTES, memory_plan
from batteryless.codegen.plan import MERGE_PERIOD_FRACTION, build_plan, merge_tasks, task_cycles
from batteryless.codegen.schedule import schedule_document
from batteryless.errors import CodegenError, UsageError
from batteryless.eve.modes import has_modes
from batteryless.paths import atomic_write
from batteryless.stand_in import codegen_warning


@dataclass
class CodegenResult:
    out_dir: Path
    files: list[Path]
    schedule: dict[str, Any]
    paths: dict[str, str]  # layer → "fft" | "direct", as generated (pass to spec.integer_inference)
    # One line when the board says this backend's images will not compute on the part (board.toml
    # [stand_in]; batteryless.stand_in), else None. The CLI prints it; the C is generated either way
    # (the image still links, and its size and host runs are still useful).
    warning: str | None = None


def codegen(
    artifact: str | Path,
    board: str | Path | Board,
    out_dir: str | Path,
    backend: str | None = None,
    path: str = "auto",
    buffers_in: str = "ram",
    granularity: str | float | None = "auto",
    capacitance_f: float | None = None,
    eve_policy: str | Path | dict | None = None,
) -> CodegenResult:
    """Generate the model's C sources and schedule.json for ``board`` into ``out_dir``.

    ``path``: "auto" (cheaper of FFT / direct per circulant layer under the board's cost model), "fft",
    "direct", or "artifact" (the artifact's own per-layer choice). ``buffers_in``: "ram", or "nvm" to keep
    the activation buffers in the board's non-volatile section (what an intermittent runtime needs).
    ``granularity``: "auto" (from the board's energy buffer and power model: the default tasks if the
    largest fits half a power-on period, else tasks cut to that), "coarse" (the default tasks), or the most
    estimated cycles one task may take (codegen/granularity.py); schedule.json records the choice.
    ``capacitance_f``: the energy buffer ``auto`` sizes tasks for (default: the board's ``[energy_buffer]``),
    e.g. the buffer an emulation will use. ``eve_policy``: for an EVE artifact, a rate-rule document
    (``batteryless policy``) whose parameters the mode table carries (eve/policy.py).
    """
    if path not in ("auto", "fft", "direct", "artifact"):
        raise UsageError(f"path must be auto, fft, direct or artifact, not {path!r}")
    art_path = Path(artifact)
    art = load_artifact(art_path)
    b = board if isinstance(board, Board) else load_board(board)
    if capacitance_f is not None:
        b = granularity_mod.with_capacitance(b, capacitance_f)
    backend = backend or b.default_backend
    if backend not in b.backends:
        raise UsageError(
            f"backend {backend!r} is not available on board {b.name} (it has: {', '.join(b.backends)})"
        )
    if backend not in ("ref", "cmsis", "lea"):
        raise CodegenError(
            f"backend {backend!r}: only the ref, cmsis and lea kernels exist; generate with --backend ref"
        )
    if eve_policy is not None:  # checked before anything is written
        from batteryless.eve.policy import load_policy, table_from_policy

        if not has_modes(art):
            raise UsageError(f"{art_path}: an EVE policy is for an artifact with modes (compress --modes K)")
        eve_policy = load_policy(eve_policy)
        table_from_policy(eve_policy, b.energy_buffer, [m["name"] for m in art.modes])
    costs = cost_model(b, backend)
    if buffers_in not in ("ram", "nvm"):
        raise UsageError(f"buffers_in must be ram or nvm, not {buffers_in!r}")
    want = granularity_mod.parse_granularity(granularity)
    modes = len(art.modes) if has_modes(art) else 1
    io_words = math.prod(art.input_shape) + art.num_classes
    plan, gran, memory = fitting_plan(art, b, backend, path, costs, want, buffers_in, io_words, modes)
    art_sha = hashlib.sha256(art_path.read_bytes()).hexdigest()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    out_default = OUT_BUFFER_BYTES.get(b.cpu, 0)
    out_capacity = memory["out_buffer_bytes"] if memory["out_buffer_bytes"] != out_default else None
    files = emit_sources(art, art_path.name, art_sha, b, backend, plan, out, buffers_in, out_capacity)
    schedule = schedule_document(art, art_path.name, art_sha, b, backend, plan, memory, costs)
    in_len = math.prod(art.input_shape)
    chunk = plan.input_chunk or in_len
    schedule["granularity"] = {
        **gran.describe(),
        "largest_task_cycles": max(t["cycles"] for t in schedule["modes"][0]["tasks"]),
        # the intermittent runtime loads the input into NVM in resumable tasks of this many elements
        # (firmware/apps/flex: tasks 0 .. input_tasks-1, before the model's tasks)
        "input_chunk": chunk,
        "input_tasks": -(-in_len // chunk),
    }
    schedule["granularity"].update(
        granularity_mod.largest_step_bound(
            granularity_mod.step_model(b, backend), schedule["modes"][0]["tasks"], chunk
        )
    )
    if has_modes(art):  # EVE: every mode in the schedule, and the mode table (eve/device.py)
        from batteryless.eve.device import add_modes

        c_banner = banner(art_path.name, art_sha, b, backend, ("/*", "*/"))
        cmake_banner = banner(art_path.name, art_sha, b, backend, ("#", "")).replace(" \n", "\n")
        files += add_modes(
            art, schedule, b, out, c_banner, cmake_banner, policy=eve_policy, plan=plan, costs=costs
        )
    sched_path = out / "schedule.json"
    atomic_write(sched_path, json.dumps(schedule, indent=1, sort_keys=True) + "\n")
    return CodegenResult(
        out, [*files, sched_path], schedule, dict(plan.paths), warning=codegen_warning(b, backend)
    )


def fitting_plan(
    art, b: Board, backend: str, path: str, costs, want, buffers_in: str, io_words: int, modes: int
):
    """The plan, granularity and memory plan codegen generates. What ``auto`` chose and the code region
    cannot hold (the memory plan's code estimate) falls back, in this order, to the default tasks (a fine
    image links the step kernels beside the layer kernels) and then to the direct path for every circulant
    layer (no FFT kernels); schedule.json says so (``granularity.reason``, ``memory_plan.fallback``). What
    was asked for explicitly is never changed: it fits or is refused."""
    attempts = [(path, want)]
    if want == "auto":
        attempts.append((path, "coarse"))
    if path == "auto":
        attempts += [("direct", want)] + ([("direct", "coarse")] if want == "auto" else [])
    first: tuple[Any, CodegenError] | None = None
    tried = set()
    for p_try, w_try in attempts:
        plan, gran = plan_for(art, b, backend, p_try, costs, w_try)
        key = (tuple(sorted(plan.paths.items())), gran.mode, gran.max_step_cycles, len(plan.tasks))
        if key in tried:
            continue
        tried.add(key)
        hint = HINT
        if gran.mode == "fine" and want != "auto":
            hint = "Fine-grained tasks link the step kernels too: try --granularity coarse. " + HINT
        try:
            memory = memory_plan(plan, b, backend, buffers_in, io_words, modes, code_hint=hint)
        except CodegenError as err:
            if "region 'code'" not in str(err):
                raise
            first = first or ((plan, gran), err)
            continue
        if first is not None:  # a fallback: say what did not fit and what is generated instead
            (plan0, gran0), err = first
            need = str(err).split(" needs ", 1)[1].split(" bytes", 1)[0]
            asked = f"{gran0.mode} tasks, paths {plan0.paths}"
            memory["fallback"] = (
                f"{asked} need {need} B of code, {b.region('code').usable} B usable: generated "
                f"{gran.mode} tasks, paths {plan.paths}"
            )
            if w_try == "coarse" and want == "auto":  # auto's granularity given up for the default tasks
                what = "fine tasks" if gran0.mode == "fine" else "its merged tasks (plan.merge_tasks)"
                gran = replace(
                    gran,
                    power_on_cycles=gran0.power_on_cycles,
                    boot_cycles=gran0.boot_cycles,
                    reason=f"{gran0.reason}, but {what} do not fit the code region ({need} B "
                    f"estimated, {b.region('code').usable} B usable): the default tasks",
                )
        return plan, gran, memory
    raise first[1]


def plan_for(art, b: Board, backend: str, path: str, costs, want: str | float):
    """The plan codegen generates for granularity ``want`` (``granularity.parse_granularity``) and the
    granularity chosen: default tasks, cut into steps when the choice is fine."""
    plan = build_plan(art, b, backend, path, costs)
    gran = granularity_mod.choose(b, costs, want, max(task_cycles(t, costs) for t in plan.tasks))
    if gran.mode == "fine":
        plan = build_plan(art, b, backend, path, costs, gran.max_step_cycles)
        plan.input_chunk = granularity_mod.input_chunk(
            math.prod(art.input_shape), costs, gran.max_step_cycles
        )
    elif gran.power_on_cycles is not None:
        # auto chose the default tasks: small tasks of one layer become larger ones of at most a sixteenth
        # of a power-on period (a range call where the kernel takes one, fewer FLEX commits;
        # plan.merge_tasks). Where an EVE image's merged tasks do not fit the code region, fitting_plan's
        # fallback to "coarse" generates them unmerged
        merge_tasks(plan, costs, MERGE_PERIOD_FRACTION * (gran.power_on_cycles - gran.boot_cycles))
    elif not plan.eve:
        # coarse, or a task budget, asked for: a layer's units as one range call each within that budget
        # (coarse: unbounded), so the kernels pay their per-call work once per layer
        merge_tasks(plan, costs, want if isinstance(want, float) else math.inf)
    return plan, gran
