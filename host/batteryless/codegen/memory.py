"""Memory plan: the generated buffers, stack reserve and code estimate against the board's regions; a model
that does not fit is refused here, before anything is written."""

from __future__ import annotations

from typing import Any

from batteryless.boards import Board
from batteryless.codegen.plan import Plan
from batteryless.errors import CodegenError

STACK_RESERVE_BYTES = {"msp430x": 512, "cortex-m4": 2048, "cortex-m55": 2048, "host": 0}
CODE_ESTIMATE_BYTES = {"msp430x": 12 * 1024, "cortex-m4": 24 * 1024, "cortex-m55": 24 * 1024, "host": 0}
# Hot loops the kernels mark BL_LEA_RAMFUNC (firmware/kernels/lea/bl_lea_internal.h): run from SRAM when the
# image has room, from FRAM otherwise. Bytes: an upper bound of their .bl_ramfunc.* sections as built
# (benchmarks/kernels_lea.py rows' lea.ramfunc; tests/test_ramfunc_placement.py checks the bound).
RAMFUNC_BYTES = {("msp430x", "lea"): 1024}
# What else the model app keeps in SRAM beside the planned buffers, for the hot-code decision only (the fit
# check keeps its own, older accounting): the platform's output buffer (.noinit, BL_OUT_CAPACITY in
# firmware/platform/msp430/platform.c) and the kernels' own state (LEA bit-reversal tables, per-layer caches,
# ~330 B as built), plus the app's input copy and logits (``io_words`` int16). An upper bound of the linked
# .bss + .noinit beyond the buffers: tests/test_ramfunc_placement.py.
RUNTIME_RAM_BYTES = {"msp430x": 1024 + 384}


def memory_plan(
    plan: Plan, board: Board, backend: str, buffers_in: str, io_words: int | None = None
) -> dict[str, Any]:
    """The regions' use (a model that does not fit raises CodegenError) and where the hot code runs.
    ``io_words``: the model's input plus output length (the app's own copies); unknown: two activations."""
    act_bytes = 2 * plan.act_len
    # activations and FFT-path spectra persist across tasks (NVM when checkpointing); scratch stays in RAM
    persistent = {"bl_act0": act_bytes, "bl_act1": act_bytes, "bl_xs": 2 * plan.xs_len}
    if plan.acc_len:  # bl_mac_step partials (fine granularity), double-buffered
        persistent.update(bl_acc0=4 * plan.acc_len, bl_acc1=4 * plan.acc_len)
    buffers = {**persistent, "bl_work": 2 * 2 * plan.max_k}
    stack = STACK_RESERVE_BYTES.get(board.cpu, 0)
    in_nvm = sum(persistent.values()) if buffers_in == "nvm" else 0
    ram_buf = sum(buffers.values()) - in_nvm
    ram_need = ram_buf + stack
    code_need = plan.weight_bytes + CODE_ESTIMATE_BYTES.get(board.cpu, 0)
    regions: dict[str, Any] = {}
    for role, need, what in (
        ("ram", ram_need, f"buffers {ram_buf} B + stack reserve {stack} B"),
        ("nvm", in_nvm, f"activation buffers kept in NVM {in_nvm} B"),
        (
            "code",
            code_need,
            f"weights {plan.weight_bytes} B + code estimate {CODE_ESTIMATE_BYTES.get(board.cpu, 0)} B",
        ),
    ):
        if not board.has_region(role) or (role == "nvm" and not in_nvm):
            continue
        reg = board.region(role)
        regions[role] = {"used": need, "size": reg.usable, "what": what}
        if need > reg.usable:
            raise CodegenError(
                f"model does not fit board {board.name}: region '{role}' needs {need} bytes ({what}) but has "
                f"{reg.usable} usable — overflow {need - reg.usable} bytes. Use larger blocks, "
                f"8-bit weights, "
                "pruning, or a bigger board."
            )
    app_ram = RUNTIME_RAM_BYTES.get(board.cpu, 0) + (2 * io_words if io_words is not None else 2 * act_bytes)
    ramfunc = ramfunc_plan(board, backend, regions, app_ram)
    return {
        "ramfunc": ramfunc,
        "regions": regions,
        "buffers": buffers,
        "buffers_in": buffers_in,
        "weight_bytes": plan.weight_bytes,
    }


def ramfunc_plan(board: Board, backend: str, regions: dict[str, Any], runtime_ram: int) -> dict[str, Any]:
    """Where the hot code (the linker script's .ramfunc) runs: SRAM when the RAM region still has room for it
    after the buffers, the stack reserve and the app's own RAM (``runtime_ram``) — an SRAM fetch has no FRAM
    wait states; the C start-up copies it at every boot — FRAM otherwise (in place: the image always links).
    The RAM region's ``used`` grows by it when it is SRAM."""
    size = RAMFUNC_BYTES.get((board.cpu, backend), 0)
    if not size or "ram" not in regions or not board.has_region("code"):
        return {"region": "code", "bytes": 0, "why": "no hot code for this backend and CPU"}
    ram = regions["ram"]
    free = ram["size"] - ram["used"] - runtime_ram
    if size <= free:
        ram["used"] += size
        ram["what"] += f" + hot code {size} B"
        return {
            "region": "ram",
            "bytes": size,
            "app_ram_bytes": runtime_ram,
            "why": f"SRAM has {free} B free after buffers, stack reserve and the app's {runtime_ram} B",
        }
    return {
        "region": "code",
        "bytes": size,
        "app_ram_bytes": runtime_ram,
        "why": f"SRAM has {free} B free after buffers, stack reserve and the app's {runtime_ram} B; "
        f"the hot code needs {size} B: it runs from FRAM",
    }
