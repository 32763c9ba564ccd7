"""FLEX images: the commit policies, the deliberately broken variants, and :func:`build_flex` (generate
the model with its buffers in NVM, build the flex app); the model input and fault records it reads."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batteryless.boards import Board, load_board
from batteryless.errors import UsageError
from batteryless.firmware import build
from batteryless.progress import ProgressFn

POLICIES = {"flex": 1, "layer": 2, "restart": 3, "jit": 4}
BROKEN = {
    "none": 0,
    "early-advance": 1,  # task t committed as done before it runs (flex app)
    "trust-record": 2,  # recovery trusts whatever record `active` names (runtime)
    "pointer-before-payload": 3,  # commit: `active` stored before the record (runtime)
    "pointer-before-crc": 4,  # commit: record, `active`, then the CRC (runtime)
    "commit-before-output": 5,  # the inference committed as finished before its logits are saved (app)
    "recovery-without-crc": 6,  # recovery checks pointer and bounds, not the CRC (runtime)
}
BOOT_MARK, DONE_MARK = 0xF0, 0xF5  # BL_FLEX_MARK_BOOT / _DONE (checkpointing/flex.h); task t: t % 239 + 1


@dataclass
class FlexImage:
    image: Path
    board: str
    policy: str
    broken: str
    num_tasks: int
    model_dir: Path
    paths: dict[str, str] = field(default_factory=dict)  # layer → "fft" | "direct" (spec.integer_inference)
    continuous: bool = False  # built with BL_FLEX_CONTINUOUS=1 (inference after inference)
    output_len: int | None = None  # logits per inference (BL_MODEL_OUTPUT_LEN)
    log_len: int = 0  # continuous builds: finished inferences kept in NVM (BL_FLEX_LOG_LEN)
    max_lost: int = 1  # tasks one power failure may throw away under the policy (one atomic step)
    faults: bool = False  # built with BL_FLEX_FAULTS=1 (fault-injection records after the input)
    granularity: dict[str, Any] = field(default_factory=dict)  # schedule.json "granularity" (codegen)


def _board(board: str | Path | Board) -> Board:
    return board if isinstance(board, Board) else load_board(board)


def build_flex(
    artifact: str | Path,
    board: str | Path | Board,
    out_dir: str | Path,
    policy: str = "flex",
    broken: str = "none",
    faults: bool = False,
    vlow_period: int = 0,
    progress: ProgressFn | None = None,
    continuous: bool = False,
    log_len: int = 16,
    granularity: str | float | None = "auto",
    backend: str = "ref",
    capacitance_f: float | None = None,
    extra_defines: dict[str, str | int] | None = None,
    eve_policy: str | Path | dict | None = None,
) -> FlexImage:
    """Generate the model (``ref`` kernels, buffers in NVM) into ``out_dir/gen`` and build the flex app with
    ``policy`` into ``out_dir/build``. ``broken`` selects a deliberately wrong runtime (tests only).

    ``continuous``: the continuous-inference mode (inference after inference, inputs and limits from
    :func:`continuous_input`, output read by :func:`parse_continuous`; ``log_len`` finished inferences kept
    in NVM for the final report), used by the firmware-level emulator. ``granularity``: codegen's task
    granularity ("auto" from the board's buffer, "coarse", or the most estimated cycles per task).
    ``backend``: the kernels (default ``ref``; ``lea`` on the MSP430FR5994 runs on the project's LEA
    emulation, board emulator msp430sim). ``capacitance_f``: the energy buffer ``auto`` granularity sizes
    tasks for (default: the board's). ``extra_defines``: more build-time switches (e.g. firmware/eve's
    test supply table). ``eve_policy``: an EVE artifact's rate-rule document (``batteryless policy``), which
    the generated mode table then carries (codegen's ``eve_policy``; tuned for the buffer codegen sees)."""
    from batteryless.codegen import codegen

    if policy not in POLICIES:
        raise UsageError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    if broken not in BROKEN:
        raise UsageError(f"broken must be one of {', '.join(BROKEN)}, not {broken!r}")
    if continuous and (policy == "restart" or faults):
        raise UsageError(
            "the continuous-inference mode needs a policy that commits (flex, layer, jit) and no fault "
            f"injection (policy {policy!r}, faults {faults})"
        )
    if continuous and not 1 <= log_len <= 4096:
        raise UsageError(f"log_len must be in 1..4096, not {log_len}")
    b = _board(board)
    out = Path(out_dir)
    gen = out / "gen"
    res = codegen(
        artifact,
        b,
        gen,
        backend=backend,
        buffers_in="nvm",
        granularity=granularity,
        capacitance_f=capacitance_f,
        eve_policy=eve_policy,
    )
    defines: dict[str, str | int] = {"BL_FLEX_POLICY": POLICIES[policy], "BL_FLEX_BROKEN": BROKEN[broken]}
    if b.emulator.get("kind") == "host":
        defines["BL_FLEX_MARK_WRITES"] = 1  # cut points between the protocol's NVM writes
    if faults:
        defines["BL_FLEX_FAULTS"] = 1
    if vlow_period:
        defines["BL_FLEX_VLOW_PERIOD"] = int(vlow_period)
    if continuous:
        defines["BL_FLEX_CONTINUOUS"] = 1
        defines["BL_FLEX_LOG_LEN"] = f"{int(log_len)}u"
    defines.update(extra_defines or {})
    img = build(b, gen, backend, app="flex", out_dir=out / "build", defines=defines, progress=progress).image
    tasks = res.schedule["modes"][0]["tasks"]
    # the flex app's tasks: the resumable input load (input_tasks chunks), then the model's tasks
    n_in = int(res.schedule.get("granularity", {}).get("input_tasks", 1))
    layers = ["input"] * n_in + [t["layer"] for t in tasks]
    n = len(layers)
    m = re.search(r"#define BL_MODEL_OUTPUT_LEN (\d+)", (gen / "model.h").read_text())
    out_len = int(m.group(1)) if m else None
    return FlexImage(
        img,
        b.name,
        policy,
        broken,
        n,
        gen,
        dict(res.paths),
        continuous,
        out_len,
        log_len if continuous else 0,
        _max_lost(policy, layers),
        faults,
        dict(res.schedule.get("granularity", {})),
    )


def _max_lost(policy: str, task_layers: list[str]) -> int:
    """Tasks one power failure may throw away: the work since the last commit the policy makes, i.e. one
    atomic step (flex: the task in flight; layer, jit: the longest layer, which commits at its end in
    both; restart: everything)."""
    if policy == "flex":
        return 1
    if policy == "restart":
        return len(task_layers)
    longest = run = 0
    for i, layer in enumerate(task_layers):
        run = run + 1 if i and layer == task_layers[i - 1] else 1
        longest = max(longest, run)
    return longest


def model_input(artifact: str | Path, sample: int = 0, dataset_path: str | Path | None = None) -> bytes:
    """Test sample ``sample`` of the artifact's dataset, quantised as the firmware expects (int16 LE)."""
    import numpy as np

    from batteryless.artifact import load_artifact
    from batteryless.datasets import load_dataset
    from batteryless.spec import quantize_input

    art = load_artifact(artifact)
    ds = load_dataset(art.dataset, dataset_path)
    if not 0 <= sample < len(ds.x_test):
        raise UsageError(f"sample {sample} is outside the {art.dataset} test set (0..{len(ds.x_test) - 1})")
    return np.asarray(quantize_input(art, ds.x_test[sample : sample + 1]), dtype="<i2")[0].tobytes()


def fault_bytes(faults: list[tuple[int, int, int, int]]) -> bytes:
    """Fault-injection records for images built with ``faults=True``: (boot, arg, kind, value) each —
    kind 1 xor byte ``arg`` of the FLEX NVM state with ``value``; kind 2 torn write of half a forged newer
    record into slot ``arg``; kind 3 a forged record with a valid CRC and an impossible next task into slot
    ``arg`` (see firmware/apps/flex/main.c)."""
    out = b""
    for boot, arg, kind, value in faults:
        out += boot.to_bytes(2, "little") + arg.to_bytes(2, "little") + bytes([kind, value]) + b"\0\0"
    return out
