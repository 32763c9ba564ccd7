"""Cortex-M inference speed and size: our kernels on QEMU's Cortex-M4 (mps2-an386) and, when the board is
there, Cortex-M55 (mps3-an547), against the figures of TFLite Micro + CMSIS-NN on the same emulated M4.

For the digits MLP (block 16, int16 weights) and CNN (block 8, int8 weights), compressed with the tests'
quick settings, generates the model on each path (``direct``, ``fft`` and ``auto`` = codegen's default
choice), builds the ordinary model app, and counts guest instructions per inference with the project's QEMU
TCG plugin, from the mark before the first task to the mark after the last (start-up and printing excluded),
and per layer from the task marks. Rows: ``cmsis`` backend (``isa`` ``dsp`` on the M4: the DSP-extension
inner loops of firmware/kernels/cmsis; ``mve`` on the M55) and the portable ``ref`` backend (``isa``
``scalar``: plain C, no intrinsics). Every row's image also runs the ``layers`` app on all 359 test samples:
``predictions_equal`` counts samples whose argmax equals the numeric spec's (batteryless.spec), and
``max_lsb_diff`` is the largest |logit - spec logit| (0 = bit-exact). Sizes come from the linked ELF
(``arm-none-eabi-size``: text = .text + .rodata in flash incl. the model data, ram = .data + .bss) and the
codegen memory plan (``weight_bytes``: weights / spectra the model stores). ``mve_instructions`` counts
Helium instructions in the image's disassembly. ``estimated_cycles``: M55 only, from a beat model of its
vector pipelines taken from LLVM's Cortex-M55 scheduling model (see ``m55_cycles``; the TRM was not
available to confirm it); the M4 rows leave it null (QEMU counts instructions, not cycles).

    .venv/bin/python benchmarks/cortexm.py [--samples 20] [--boards mps2-an386,mps3-an547]

Writes benchmarks/results/cortexm.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from batteryless.artifact import load_artifact  # noqa: E402
from batteryless.boards import load_board  # noqa: E402
from batteryless.codegen import codegen  # noqa: E402
from batteryless.datasets import load_dataset  # noqa: E402
from batteryless.firmware import build, run  # noqa: E402
from batteryless.firmware.layers import run_layers, write_dump_table  # noqa: E402
from batteryless.paths import atomic_write  # noqa: E402
from batteryless.rad.admm import AdmmConfig  # noqa: E402
from batteryless.rad.compress import CompressConfig, compress  # noqa: E402
from batteryless.spec import integer_inference_q, quantize_input  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cortexm.json"
QUICK = dict(dense_epochs=3, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10))
MODELS = (("mlp", 16, 16), ("cnn", 8, 8))
BOARD_ISA = {"mps2-an386": "dsp", "mps3-an547": "mve"}

# The reference point, measured on the same QEMU mps2-an386 with the same plugin (issue 14's table):
# TensorFlow Lite Micro commit 90b983c (August 2026) with CMSIS-NN v7.0.0-33 kernels, int8, running the
# .tflite our export-tflite writes for the same network, arm-none-eabi-gcc 12.2, 20 digits test samples.
REFERENCE = {
    "what": "TFLite Micro 90b983c (Aug 2026) + CMSIS-NN v7.0.0-33, int8, QEMU mps2-an386, same TCG plugin, "
    "arm-none-eabi-gcc 12.2, 20 digits test samples (issue 14)",
    "mlp": {"instructions": 45142, "tflm_reference_kernels": 115604, "model_data_bytes": 25136,
            "static_ram_bytes": 3256, "code_bytes": 58973},
    "cnn": {"instructions": 131938, "tflm_reference_kernels": 451976},
    "goal": "M4: >= 1.5x fewer instructions than TFLM + CMSIS-NN (MLP <= 30,095, CNN <= 87,959) with model "
    "data >= 6x smaller; M55: >= 2x fewer instructions than our M4 build",
}  # fmt: skip


def elf_sizes(elf: Path) -> tuple[int, int]:
    """(flash bytes: text + rodata as `size` reports text, static RAM: data + bss)."""
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return text + data, data + bss


def counts(image: Path, board: str, samples: np.ndarray, tasks: list[dict]) -> dict:
    per_inf, per_layer = [], {}
    for x in samples:
        res = run(image, board, inputs=np.asarray(x, dtype="<i2").tobytes())
        if res.exit_code != 0:
            raise SystemExit(f"{image}: exit {res.exit_code}: {res.output[-300:]}")
        marks = list(res.marks)
        start_i = next(i for i, (mid, _) in enumerate(marks) if mid == 1)
        end = next(c for mid, c in reversed(marks) if mid == 0)
        per_inf.append(end - marks[start_i][1])
        task_counts = [c for _, c in marks[start_i:]]
        for t, task in enumerate(tasks):
            per_layer.setdefault(task["layer"], 0)
            per_layer[task["layer"]] += task_counts[t + 1] - task_counts[t]
    n = len(samples)
    return {
        "instructions": round(float(np.mean(per_inf)), 1),
        "instructions_min": int(min(per_inf)),
        "instructions_max": int(max(per_inf)),
        "per_layer": {k: round(v / n) for k, v in per_layer.items()},
    }


# Cortex-M55 cycle estimate (a model, not a measurement: QEMU has no timing). Source: LLVM's Cortex-M55
# scheduling model, llvm/llvm-project llvm/lib/Target/ARM/ARMScheduleM55.td (its header comment and InstRW
# tables): the M55's vector unit has four pipelines (control, load/store, integer, float/mul); every MVE
# instruction takes two beats (each 64 bits of the 128-bit vector), and the first beat of an instruction
# overlaps the second beat of the one before when the two use different pipelines (VLDR; VADD; VMUL; VSTR
# takes 5 cycles, two VLDRs back to back 4). Pipelines as in its tables: VLDR/VSTR/VLD2x/VST2x load/store;
# VMLA, VMUL, VMLADAV/VMLAV (the MAC reductions), VADDV, VCMP/VPT float/mul; VCTP, VPST control; the other
# integer vector instructions (VADD, VSHL, VSHR, VMAX, VMIN, VAND, VDUP, VREV, ...) integer. The Cortex-M55
# Technical Reference Manual (Arm 101051) itself was not found in the searchable sources, so the beat
# figures rest on that compiler model. Scalar instructions: 1 cycle each (the M55's limited dual issue of
# 16-bit instructions is not modelled: an upper bound there). Model: an MVE instruction costs 2 cycles, 1
# when the instruction before it was an MVE instruction of another pipeline. Dynamic counts come from
# QEMU's own execution log (-d in_asm,exec,nochain: every translated block's instruction addresses and
# every block execution, in order), classified with llvm-objdump's disassembly of the image; only the
# blocks run between the inference marks (start 1 -> end 0) are charged.
MVE_LS = re.compile(r"^\s*(vldr|vstr|vld[24]|vst[24])")
MVE_MUL = re.compile(r"^\s*(vml[as]|vmul|vqd?r?dmul|vrml|vaddl?v|vcmp|vpt|vcvt|vfm)")
MVE_SYS = re.compile(r"^\s*(vctp|vpst|vpnot)")
MVE_LOB = re.compile(r"^\s*(letp|dlstp|wlstp|lctp)")  # tail-predicated loop control: scalar timing
MVE_ANY = re.compile(r"^\s*(v\S+\s.*\bq\d)")


def mve_pipe(text: str) -> str:
    """The ARMScheduleM55.td pipeline of one disassembled instruction: "ls", "mul", "sys", "int", "lob"
    (tail-predicated loop control) or "scalar"."""
    for kind, rx in (("ls", MVE_LS), ("sys", MVE_SYS), ("lob", MVE_LOB)):
        if rx.match(text):
            return kind
    if MVE_ANY.match(text):
        return "mul" if MVE_MUL.match(text) else "int"
    return "scalar"


def llvm_objdump() -> str:
    for name in ("llvm-objdump", "llvm-objdump-14"):
        if shutil.which(name):
            return name
    raise SystemExit("llvm-objdump not found (Debian llvm-14, installed with clang by scripts/setup.sh)")


def classify(elf: Path, mve: bool = True) -> dict[int, str]:
    """Address -> mve_pipe kind ("scalar" for non-MVE), from llvm-objdump (decoding MVE only
    for an Armv8.1-M image: with +mve an Armv7E-M image's FPU instructions could be misread as vector
    ones)."""
    m55 = ["--triple=thumbv8.1m.main-none-eabi", "--mattr=+mve.fp"]
    arch = m55 if mve else ["--triple=thumbv7em-none-eabi"]
    out = subprocess.run(
        [llvm_objdump(), "-d", *arch, str(elf)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    kinds = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(.*)$", line)
        if not m:
            continue
        text = m.group(2).strip()
        kinds[int(m.group(1), 16)] = mve_pipe(text)
    return kinds


def count_mve(elf: Path, board: str) -> int:
    """MVE instructions in the image (static count); 0 by construction for an Armv7E-M (Cortex-M4) board."""
    if load_board(board).cpu != "cortex-m55":
        return 0
    return sum(1 for k in classify(elf).values() if k != "scalar")


def m55_cycles(image: Path, board: str, x: np.ndarray) -> dict:
    """Run one inference with QEMU's execution log and apply the beat model (see above)."""
    import batteryless.firmware as fw

    real_run = subprocess.run
    with tempfile.TemporaryDirectory(prefix="bl-beat-") as d:
        log = Path(d) / "qemu.log"

        def run_logged(cmd, *a, **kw):
            if cmd and str(cmd[0]).endswith("qemu-system-arm"):
                cmd = [*cmd, "-d", "in_asm,exec,nochain", "-D", str(log)]
            return real_run(cmd, *a, **kw)

        subprocess.run = run_logged
        try:
            res = fw.run(image, board, inputs=np.asarray(x, dtype="<i2").tobytes(), timeout=600)
        finally:
            subprocess.run = real_run
        text = log.read_text(errors="replace")
    marks = list(res.marks)
    start = next(c for mid, c in marks if mid == 1)
    end = next(c for mid, c in reversed(marks) if mid == 0)
    kinds = classify(image)
    blocks: dict[int, list[int]] = {}  # translated block start -> its instruction addresses
    execs: list[int] = []  # executed block starts, in order
    cur: list[int] | None = None
    for line in text.splitlines():
        if line.startswith("IN:"):
            cur = []
            continue
        if cur is not None:
            m = re.match(r"^0x([0-9a-f]{8}):", line)
            if m:
                cur.append(int(m.group(1), 16))
                continue
            if cur:
                blocks[cur[0]] = cur
            cur = None
        if line.startswith("Trace "):
            m = re.search(r"\[[0-9a-f]+/([0-9a-f]+)/", line)
            if m:
                execs.append(int(m.group(1), 16))
    count, cyc, n_mve, n_insn = 0, 0, 0, 0
    for pc in execs:
        insns = blocks.get(pc, [])
        if start <= count < end:
            prev = "scalar"
            for a in insns:
                k = kinds.get(a, "scalar")
                if k in ("scalar", "lob"):
                    cyc += 1
                else:
                    n_mve += 1
                    # two beats; the first overlaps the previous MVE instruction's second beat when the
                    # two use different pipelines
                    cyc += 1 if prev not in ("scalar", "lob", k) else 2
                prev = k
            n_insn += len(insns)
        count += len(insns)
    return {
        "estimated_cycles": cyc,
        "instructions_in_window": n_insn,
        "mve_instructions_executed": n_mve,
        "plugin_instructions": end - start,
    }


def tables(doc: dict) -> str:
    """docs/benchmarks.md's Cortex-M tables from results/cortexm.json."""
    ref = doc["reference_tflm_cmsis_nn"]
    out = [
        "| board | model | backend (isa) | path | instructions | vs TFLM + CMSIS-NN | est. cycles (M55) "
        "| weight bytes | flash (text) | static RAM | predictions = spec | max LSB | MVE insns |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        peer = ref[r["model"]]["instructions"]
        cyc = "" if r["estimated_cycles"] is None else f"{r['estimated_cycles']:,}"
        out.append(
            f"| {r['board']} | {r['model']} | {r['backend']} ({r['isa']}) | {r['path']} | "
            f"{r['instructions']:,.0f} | {peer / r['instructions']:.2f}x | {cyc} | {r['weight_bytes']:,} | "
            f"{r['text_bytes']:,} | {r['ram_bytes']:,} | {r['predictions_equal']}/{r['samples']} | "
            f"{r['max_lsb_diff']} | {r['mve_instructions']} |"
        )
    out += ["", "| board | model | path | per layer (instructions) |", "|---|---|---|---|"]
    for r in doc["rows"]:
        if r["backend"] == "cmsis":
            layers = ", ".join(f"{k} {v:,}" for k, v in r["per_layer"].items())
            out.append(f"| {r['board']} | {r['model']} | {r['path']} | {layers} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20, help="test samples per instruction count (default 20)")
    ap.add_argument("--boards", default=",".join(BOARD_ISA), help="comma-separated boards")
    ap.add_argument(
        "--tables", action="store_true", help="print the docs tables from the JSON (no measuring)"
    )
    args = ap.parse_args(argv)
    if args.tables:
        print(tables(json.loads(RESULTS.read_text())))
        return 0
    boards = [b for b in args.boards.split(",") if b]
    t0 = time.time()
    ds = load_dataset("digits")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bl-bench-cortexm-") as tmp_s:
        tmp = Path(tmp_s)
        for model, k, bits in MODELS:
            art_path = tmp / f"{model}.bl"
            cfg = CompressConfig(block_size=k, weight_bits=bits, **QUICK)
            compress(model, "digits", out=art_path, config=cfg)
            art = load_artifact(art_path)
            xq = quantize_input(art, ds.x_test)
            for board in boards:
                try:
                    load_board(board)
                except Exception as e:  # noqa: BLE001 — a board not in this tree is reported and skipped
                    print(f"skip {board}: {e}", flush=True)
                    continue
                combos = [("cmsis", BOARD_ISA[board], p) for p in ("auto", "direct", "fft")]
                combos.append(("ref", "scalar", "auto"))
                for backend, isa, path in combos:
                    tag = f"{board}-{model}-{backend}-{path}"
                    gen = tmp / f"g-{tag}"
                    res = codegen(art_path, board, gen, backend=backend, path=path)
                    img = build(board, gen, backend, out_dir=tmp / f"b-{tag}").image
                    c = counts(img, board, xq[: args.samples], res.schedule["modes"][0]["tasks"])
                    text_b, ram_b = elf_sizes(img)
                    lgen = tmp / f"l-{tag}"
                    codegen(art_path, board, lgen, backend=backend, path=path)
                    write_dump_table(lgen)
                    limg = build(board, lgen, backend, app="layers", out_dir=tmp / f"bl-{tag}").image
                    dev = run_layers(limg, board, lgen, xq)
                    ref = integer_inference_q(art, xq, res.paths)
                    row = {
                        "board": board,
                        "model": model,
                        "block": k,
                        "weight_bits": bits,
                        "path": path,
                        "layer_paths": res.paths,
                        "backend": backend,
                        "isa": isa,
                        "instructions": c["instructions"],
                        "instructions_min": c["instructions_min"],
                        "instructions_max": c["instructions_max"],
                        "per_layer": c["per_layer"],
                        "estimated_cycles": None,
                        "weight_bytes": res.schedule["memory_plan"]["weight_bytes"],
                        "text_bytes": text_b,
                        "ram_bytes": ram_b,
                        "samples": len(xq),
                        "samples_counted": min(args.samples, len(xq)),
                        "predictions_equal": int((dev.logits.argmax(1) == ref.argmax(1)).sum()),
                        "max_lsb_diff": int(np.abs(dev.logits - ref).max()),
                        "mve_instructions": count_mve(img, board),
                    }
                    if board == "mps3-an547":
                        beat = m55_cycles(img, board, xq[0])
                        row["estimated_cycles"] = beat["estimated_cycles"]
                        row["beat_model"] = beat
                    rows.append(row)
                    print(
                        f"{board} {model} {backend:5s} {isa:6s} {path:6s} {row['instructions']:>10,.0f} "
                        f"pred {row['predictions_equal']}/{row['samples']} lsb {row['max_lsb_diff']} "
                        f"text {text_b:,} ram {ram_b:,} mve {row['mve_instructions']} {c['per_layer']}",
                        flush=True,
                    )
    out = {
        "benchmark": "cortexm",
        "command": ".venv/bin/python benchmarks/cortexm.py",
        "unit": "guest instructions per inference (QEMU TCG plugin), start-up and printing excluded",
        "host": platform.platform(),
        "reference_tflm_cmsis_nn": REFERENCE,
        "m55_cycle_model": "estimated_cycles: scalar 1 cycle; MVE 2 beats (2 cycles), 1 when the previous "
        "instruction was MVE in another pipeline (load/store, integer, float/mul, control); source: LLVM "
        "llvm/lib/Target/ARM/ARMScheduleM55.td (header comment and InstRW tables); the Cortex-M55 TRM "
        "(Arm 101051) was not available to confirm it; dual issue of 16-bit instructions not modelled",
        "rows": rows,
        "seconds": round(time.time() - t0, 1),
    }
    atomic_write(RESULTS, json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RESULTS} in {out['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
