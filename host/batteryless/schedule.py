"""The schedule (DESIGN.md contract 5): the ordered atomic tasks of one inference per mode, with costs.

``schedule.json`` is written by codegen and read here, validated field by field; every error names the file
and the field (``modes[0].tasks[3].cycles``) so the user can fix it. The fast emulator and the EVE search
consume :class:`Schedule`.

``load_schedule("example")`` (or ``"example-dense"`` / ``"example-rad"``) returns a bundled, hand-written
EXAMPLE schedule with made-up but plausible costs, so that the emulator can be tried before codegen exists.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from batteryless.errors import ScheduleError

SCHEMA = 1
EXAMPLES = ("example-dense", "example-rad")


@dataclass(frozen=True)
class Task:
    index: int
    name: str
    layer: str
    kind: str
    cycles: int
    instructions: int | None
    energy_j: float | None
    nvm_write_bytes: int
    measured: bool
    # codegen's upper bound of this task's atomic step (task + runtime loop + commit), where the board has a
    # fitted one ([cost.<backend>.step]); the emulator charges at least this much for the task and its commit
    step_bound_cycles: int | None = None


@dataclass(frozen=True)
class Mode:
    name: str
    tasks: tuple[Task, ...]

    def layer_ends(self) -> list[int]:
        """Indices of the last task of each layer (where a per-layer policy commits)."""
        return [
            i
            for i, t in enumerate(self.tasks)
            if i == len(self.tasks) - 1 or self.tasks[i + 1].layer != t.layer
        ]


@dataclass(frozen=True)
class Schedule:
    board: str
    backend: str
    clock_hz: float
    modes: tuple[Mode, ...]
    commit_fixed_cycles: int
    commit_fixed_energy_j: float
    generator: str = ""
    memory_plan: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    example: bool = False
    label: str = ""

    def mode(self, name: str | None = None) -> Mode:
        if name is None:
            return self.modes[0]
        for m in self.modes:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.modes)
        raise ScheduleError(f"{self.source}: no mode named {name!r} (modes: {known})")


def _err(src: str, where: str, msg: str) -> ScheduleError:
    return ScheduleError(f"{src}: field {where!r} {msg}")


def _get(d: dict, key: str, types: tuple, src: str, where: str, *, optional: bool = False, default=None):
    path = f"{where}.{key}" if where else key
    if key not in d or d[key] is None:
        if optional:
            return default
        raise _err(src, path, "is missing")
    v = d[key]
    if isinstance(v, bool) and bool not in types:
        raise _err(src, path, f"must be {'/'.join(t.__name__ for t in types)}, is a boolean")
    if not isinstance(v, types):
        raise _err(src, path, f"must be {'/'.join(t.__name__ for t in types)}, is {type(v).__name__}")
    if isinstance(v, float) and not math.isfinite(v):
        raise _err(src, path, "must be finite")
    return v


def _nonneg(v, src: str, path: str):
    if v < 0:
        raise _err(src, path, f"must be ≥ 0, is {v}")
    return v


def parse_schedule(data: Any, source: str = "schedule.json") -> Schedule:
    """Validate a decoded schedule.json document; errors name ``source`` and the field."""
    src = source
    if not isinstance(data, dict):
        raise ScheduleError(f"{src}: top level must be a JSON object")
    schema = _get(data, "schema", (int,), src, "")
    if schema != SCHEMA:
        raise _err(
            src, "schema", f"is {schema}; this batteryless reads schema {SCHEMA} (regenerate with codegen)"
        )
    board = _get(data, "board", (str,), src, "")
    backend = _get(data, "backend", (str,), src, "")
    clock = float(_get(data, "clock_hz", (int, float), src, ""))
    if clock <= 0:
        raise _err(src, "clock_hz", f"must be > 0, is {clock}")
    modes_raw = _get(data, "modes", (list,), src, "")
    if not modes_raw:
        raise _err(src, "modes", "is empty; a schedule needs at least one mode")
    modes = []
    seen_modes: set[str] = set()
    for mi, m in enumerate(modes_raw):
        mw = f"modes[{mi}]"
        if not isinstance(m, dict):
            raise _err(src, mw, "must be an object")
        name = _get(m, "name", (str,), src, mw)
        if name in seen_modes:
            raise _err(src, f"{mw}.name", f"duplicates mode {name!r}")
        seen_modes.add(name)
        tasks_raw = _get(m, "tasks", (list,), src, mw)
        if not tasks_raw:
            raise _err(src, f"{mw}.tasks", "is empty; a mode needs at least one task")
        tasks = []
        seen_layers: list[str] = []
        for ti, t in enumerate(tasks_raw):
            tw = f"{mw}.tasks[{ti}]"
            if not isinstance(t, dict):
                raise _err(src, tw, "must be an object")
            index = _get(t, "index", (int,), src, tw)
            if index != ti:
                raise _err(src, f"{tw}.index", f"is {index}, expected {ti} (tasks must be listed in order)")
            layer = _get(t, "layer", (str,), src, tw)
            if seen_layers and layer != seen_layers[-1] and layer in seen_layers:
                raise _err(
                    src,
                    f"{tw}.layer",
                    f"{layer!r} appears again after another layer; layers must be contiguous",
                )
            if not seen_layers or seen_layers[-1] != layer:
                seen_layers.append(layer)
            cycles = _nonneg(_get(t, "cycles", (int,), src, tw), src, f"{tw}.cycles")
            instr = _get(t, "instructions", (int,), src, tw, optional=True)
            if instr is not None:
                _nonneg(instr, src, f"{tw}.instructions")
            energy = _get(t, "energy_j", (int, float), src, tw, optional=True)
            if energy is not None:
                energy = float(_nonneg(energy, src, f"{tw}.energy_j"))
                if energy > 10.0:
                    raise _err(
                        src, f"{tw}.energy_j", f"is {energy} J for one task; expected joules (e.g. 1.2e-6)"
                    )
            nvm = _nonneg(
                _get(t, "nvm_write_bytes", (int,), src, tw, optional=True, default=0),
                src,
                f"{tw}.nvm_write_bytes",
            )
            bound = _get(t, "step_bound_cycles", (int,), src, tw, optional=True)
            if bound is not None:
                _nonneg(bound, src, f"{tw}.step_bound_cycles")
            tasks.append(
                Task(
                    index=index,
                    name=_get(t, "name", (str,), src, tw, optional=True, default=f"task{ti}"),
                    layer=layer,
                    kind=_get(t, "kind", (str,), src, tw, optional=True, default="op"),
                    cycles=cycles,
                    instructions=instr,
                    energy_j=energy,
                    nvm_write_bytes=nvm,
                    measured=bool(_get(t, "measured", (bool,), src, tw, optional=True, default=False)),
                    step_bound_cycles=bound,
                )
            )
        modes.append(Mode(name=name, tasks=tuple(tasks)))
    commit = _get(data, "commit", (dict,), src, "", optional=True, default={})
    fixed_cycles = _nonneg(
        _get(commit, "fixed_cycles", (int,), src, "commit", optional=True, default=0),
        src,
        "commit.fixed_cycles",
    )
    fixed_energy = float(
        _nonneg(
            _get(commit, "fixed_energy_j", (int, float), src, "commit", optional=True, default=0.0),
            src,
            "commit.fixed_energy_j",
        )
    )
    memory_plan = _get(data, "memory_plan", (dict,), src, "", optional=True, default={})
    return Schedule(
        board=board,
        backend=backend,
        clock_hz=clock,
        modes=tuple(modes),
        commit_fixed_cycles=fixed_cycles,
        commit_fixed_energy_j=fixed_energy,
        generator=str(data.get("generator", "")),
        memory_plan=memory_plan,
        source=src,
        example=bool(data.get("example", False)),
        label=str(data.get("label", "")) or _default_label(data, src),
    )


def _default_label(data: dict, src: str) -> str:
    """'<model> (<backend>)' from codegen's artifact record, else the file name (and its folder)."""
    art = data.get("artifact")
    if isinstance(art, dict) and isinstance(art.get("model"), str):
        stem = Path(str(art.get("file", ""))).stem or "artifact"
        return f"{art['model']} ({data.get('backend', '?')}, {stem})"
    p = Path(src)
    return f"{p.parent.name}/{p.stem}" if p.parent.name else p.stem


def example_path(name: str) -> Path:
    """Path of a bundled example schedule (``example`` is an alias of ``example-dense``)."""
    if name == "example":
        name = "example-dense"
    with resources.as_file(resources.files("batteryless") / "data" / "schedules" / f"{name}.json") as p:
        return Path(p)


def load_schedule(path: str | Path) -> Schedule:
    """Read and validate ``schedule.json``; ``"example"``, ``"example-dense"``, ``"example-rad"`` name the
    bundled EXAMPLE schedules (made-up costs, for trying the emulator before codegen exists)."""
    p = Path(path)
    if str(path) in ("example", *EXAMPLES) and not p.exists():
        p = example_path(str(path))
    if not p.is_file():
        raise ScheduleError(
            f"{p}: no such schedule file (write one with `batteryless codegen`, or use 'example', "
            f"{', '.join(repr(e) for e in EXAMPLES)})"
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ScheduleError(f"{p}: not a UTF-8 text file ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise ScheduleError(f"{p}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    return parse_schedule(data, str(p))
