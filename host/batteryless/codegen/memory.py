"""Memory plan: the generated buffers, the app's and kernels' own static RAM, the stack reserve, the hot code
and the code estimate against the board's regions; a model that does not fit is refused here, before
anything is written.

The code estimate (``code_parts``): where a graph of the firmware's objects is stored for the board, backend
and app (codegen/code_size.py, written by benchmarks/code_size.py), the runtime and kernel code the linker
keeps for the kernels this plan calls plus a bound of the generated code and its weights — within
``CODE_MARGIN_BYTES`` above the linked image (tests/test_memory_plan.py); elsewhere the weights plus a flat
per-CPU allowance (``CODE_ESTIMATE_BYTES``).

One RAM accounting, used by the fit check and by the hot-code decision alike (``ram_parts``): every byte the
linked image keeps in the RAM region (.data/.bss/.noinit, and .ramfunc when it runs from SRAM) is one of the
parts below, each exact or a bound of at most a few bytes — tests/test_memory_plan.py checks the plan against
the linked ELF's sections — and the stack reserve comes on top. The model app's output buffer shrinks (never
below ``OUT_BUFFER_MIN_BYTES``) before an image that would fit with a smaller one is refused, and when that
lets the hot code into SRAM; the hot code goes to SRAM only when the image still fits with it."""

from __future__ import annotations

from typing import Any

from batteryless.boards import Board
from batteryless.codegen import code_size
from batteryless.codegen.plan import Plan
from batteryless.errors import CodegenError

# The estimate from a stored object graph is at or above the linked code region's use and at most this much
# above it (alignment padding counted at its worst, the generated code's fitted envelope; checked by
# tests/test_memory_plan.py on built images)
CODE_MARGIN_BYTES = 1152
STACK_RESERVE_BYTES = {"msp430x": 512, "cortex-m4": 2048, "cortex-m55": 2048, "host": 0}
CODE_ESTIMATE_BYTES = {"msp430x": 12 * 1024, "cortex-m4": 24 * 1024, "cortex-m55": 24 * 1024, "host": 0}
# Hot loops the kernels mark BL_LEA_RAMFUNC (firmware/kernels/lea/bl_ramfunc.h): run from SRAM when the
# image has room, from FRAM otherwise. Bytes: an upper bound of their .bl_ramfunc.* sections as built
# (1,282 B since session 9: block-row finish, bin placement, the complex-MAC loop with its requantisation,
# the FFT command's start and wait;
# benchmarks/kernels_lea.py rows' lea.ramfunc; tests/test_ramfunc_placement.py checks the bound). Only the
# FFT path calls them: a direct-path image links none (the linker drops unreferenced sections).
RAMFUNC_BYTES = {("msp430x", "lea"): 1376}
# The platform's output buffer (bl_out_buf, .noinit: BL_OUT_CAPACITY in firmware/platform/msp430/platform.c,
# whose default this must equal) — the largest part of the app's own RAM on the MSP430. The model app prints
# one logits line (at most 7 + 7 x classes + 1 bytes) or one error line, so when the image would not fit
# with the default, or its hot code would not, codegen builds it with a smaller buffer (model.cmake defines
# BL_OUT_CAPACITY), never below this floor. FLEX images (buffers in NVM: flex/image.py) keep the default
# wherever SRAM has the room. The Cortex-M platforms print through semihosting/UART (no buffer).
OUT_BUFFER_BYTES = {"msp430x": 1024}
OUT_BUFFER_MIN_BYTES = 256
# Static RAM beside the planned buffers, the app's input copy and logits (``io_words`` int16) and the output
# buffer, as linked (clang -O2/-Os, ld.lld; tests/test_memory_plan.py): the MSP430 platform's counters, exit
# code and multiplier flag (8 B); the lea kernels' state: residency pointers, DMA fill word, FFT scale state
# (16 B), with a direct convolution or an EVE selecting step the resident route's prepared MAC (its operand
# bound and parameter-block address, 4 B), and on the FFT path the bit-reversal tables, the per-layer
# caches of the input FFT and the block rows, with the block rows' prepared complex-MAC loop, and the LEA
# driver's two FFT buffers found valid (278 B; 286 with the convolution's FFT-path cache, taken for every
# FFT-path image).
PLATFORM_RAM_BYTES = {"msp430x": 8}
KERNEL_RAM_BYTES = {("msp430x", "lea"): 16}
KERNEL_CONV_RAM_BYTES = {("msp430x", "lea"): 4}
KERNEL_FFT_RAM_BYTES = {("msp430x", "lea"): 286}


HINT = "Use larger blocks, 8-bit weights, pruning, or a bigger board."


def _overflow(board: Board, role: str, need: int, usable: int, what: str, hint: str = HINT) -> CodegenError:
    return CodegenError(
        f"model does not fit board {board.name}: region '{role}' needs {need} bytes ({what}) but has "
        f"{usable} usable — overflow {need - usable} bytes. {hint}"
    )


def code_parts(
    plan: Plan, board: Board, backend: str, app: str, modes: int = 1
) -> tuple[dict[str, int], str]:
    """The code region's use by part and how it was estimated (see the module docstring)."""
    est = code_size.estimate(plan, board.name, backend, app, modes)
    if est is not None:
        return est, (
            f"runtime, app and kernels {est['firmware']} B (what the linker keeps for this plan's kernel "
            f"calls) + generated code and weights {est['generated']} B"
        )
    flat = CODE_ESTIMATE_BYTES.get(board.cpu, 0)
    return {
        "weights": plan.weight_bytes,
        "code": flat,
    }, f"weights {plan.weight_bytes} B + code estimate {flat} B"


def ram_parts(
    plan: Plan, board: Board, backend: str, buffers: dict[str, int], in_nvm: set[str], io_words: int
) -> dict[str, int]:
    """Static RAM of the image by part (bytes), without the output buffer, the hot code and the stack."""
    fft = "fft" in plan.paths.values()
    # the direct-path kernels of a convolution (or EVE's selecting steps, which run them too)
    conv = any(t.kind == "mac" and (t.op.startswith("conv") or t.sel_fmt) for t in plan.tasks)
    key = (board.cpu, backend)
    return {
        "buffers": sum(v for k, v in buffers.items() if k not in in_nvm),
        "app_io": 2 * io_words if OUT_BUFFER_BYTES.get(board.cpu) else 0,
        "platform": PLATFORM_RAM_BYTES.get(board.cpu, 0),
        "kernels": KERNEL_RAM_BYTES.get(key, 0)
        + (KERNEL_FFT_RAM_BYTES.get(key, 0) if fft else 0)
        + (KERNEL_CONV_RAM_BYTES.get(key, 0) if conv else 0),
    }


def memory_plan(
    plan: Plan,
    board: Board,
    backend: str,
    buffers_in: str,
    io_words: int | None = None,
    modes: int = 1,
    code_hint: str = HINT,
) -> dict[str, Any]:
    """The regions' use (a model that does not fit raises CodegenError), the output buffer's size and where
    the hot code runs. ``io_words``: the model's input plus output length (the app's own copies); unknown:
    two activations. ``modes``: the EVE modes the image carries. The app the image is built for follows
    ``buffers_in`` (``nvm``: the FLEX app, else the model app). ``code_hint``: what the refusal of a code
    region overflow suggests."""
    act_bytes = 2 * plan.act_len
    # activations and FFT-path spectra persist across tasks (NVM when checkpointing); scratch stays in RAM
    persistent = {"bl_act0": act_bytes, "bl_act1": act_bytes, "bl_xs": 2 * plan.xs_len}
    if plan.acc_len:  # bl_mac_step partials (fine granularity), double-buffered
        persistent.update(bl_acc0=4 * plan.acc_len, bl_acc1=4 * plan.acc_len)
    buffers = {**persistent, "bl_work": 2 * 4 * plan.max_k}  # emit.py: int16_t bl_work[4 * max_k]
    stack = STACK_RESERVE_BYTES.get(board.cpu, 0)
    nvm_names = set(persistent) if buffers_in == "nvm" else set()
    in_nvm = sum(persistent.values()) if buffers_in == "nvm" else 0
    parts = ram_parts(
        plan, board, backend, buffers, nvm_names, io_words if io_words is not None else act_bytes
    )
    static = sum(parts.values())
    out_default = OUT_BUFFER_BYTES.get(board.cpu, 0)
    hot = RAMFUNC_BYTES.get((board.cpu, backend), 0) if "fft" in plan.paths.values() else 0
    code, code_what = code_parts(plan, board, backend, "flex" if buffers_in == "nvm" else "model", modes)
    code_need = sum(code.values())
    regions: dict[str, Any] = {}
    out_bytes, ramfunc = out_default, {"region": "code", "bytes": 0, "why": "no hot code for this image"}
    if board.has_region("ram"):
        usable = board.region("ram").usable
        room = usable - static - stack  # for the output buffer and the hot code
        out_bytes = out_default
        if room < out_default and out_default:  # a smaller output buffer, never below the floor
            out_bytes = max(OUT_BUFFER_MIN_BYTES, room - room % 2)
        # the hot code's wait states are worth more than output room the model app does not use (it prints
        # one logits line): the buffer also shrinks, not below the floor, when that lets the hot code in
        fits_hot = hot and board.has_region("code") and hot <= room - OUT_BUFFER_MIN_BYTES
        if fits_hot and out_default and room - out_bytes < hot:
            out_bytes = room - hot - (room - hot) % 2
        used = static + out_bytes + stack
        what = (
            f"buffers {parts['buffers']} B + app I/O {parts['app_io']} B + platform {parts['platform']} B + "
            f"kernel state {parts['kernels']} B + output buffer {out_bytes} B + stack reserve {stack} B"
        )
        if used > usable:
            raise _overflow(board, "ram", used, usable, what)
        if hot and board.has_region("code"):
            free = usable - used
            ramfunc = {"region": "code", "bytes": hot, "free_bytes": free}
            if hot <= free:
                ramfunc.update(
                    region="ram", why=f"SRAM has {free} B free after the image's static RAM and stack reserve"
                )
                used += hot
                what += f" + hot code {hot} B"
            else:
                ramfunc["why"] = (
                    f"SRAM has {free} B free after the image's static RAM and stack reserve; the hot code "
                    f"needs {hot} B: it runs from FRAM"
                )
        regions["ram"] = {
            "used": used,
            "size": usable,
            "what": what,
            "parts": {**parts, "out_buffer": out_bytes},
        }
    for role, need, what in (
        ("nvm", in_nvm, f"activation buffers kept in NVM {in_nvm} B"),
        ("code", code_need, code_what),
    ):
        if not board.has_region(role) or (role == "nvm" and not in_nvm):
            continue
        reg = board.region(role)
        regions[role] = {"used": need, "size": reg.usable, "what": what}
        if role == "code":
            regions[role]["parts"] = code
        if need > reg.usable:
            raise _overflow(board, role, need, reg.usable, what, code_hint if role == "code" else HINT)
    return {
        "ramfunc": ramfunc,
        "regions": regions,
        "buffers": buffers,
        "buffers_in": buffers_in,
        "out_buffer_bytes": out_bytes,
        "weight_bytes": plan.weight_bytes,
    }
