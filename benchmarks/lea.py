"""LEA vs ref on the MSP430FR5994, measured by running the images on the project's simulator (msp430sim).

For the digits MLP and CNN, dense (block 1) and RAD (MLP block 16, CNN block 8), compressed with a short
training schedule (only the structure matters for cost), and each path (dense: direct; RAD: fft and
direct): generates code for msp430fr5994 with backends `lea` and `ref`, builds each image (clang + ld.lld)
and runs it once per digits test sample on the simulator (MSP430X cycle tables, MPY32, FRAM wait states,
the emulated LEA; docs/msp430sim.md). Each row: mean MCLK cycles per inference, energy per inference, and
how many samples gave logits equal to the numeric spec's. RAD `lea` rows run every test sample (360); the
other rows the first --samples (default 40) — their cycles hardly depend on the data.

What an inference counts (as benchmarks/eve.py): the model's run, from the model app's first task
mark (``bl_mark(1)`` before task 0) to its end mark (``bl_mark(0)`` after the last task), timed by the
simulator at the board's [emulator].mark_register: ``inference_mclk_cycles`` / ``inference_energy_uj``. The
whole image run (C start-up, reading the input, the model, printing the logits) stays beside it as
``mclk_cycles`` / ``energy_uj``. Every LEA command of a run starts inside the inference window
(``lea_commands_outside_inference`` counts those that do not: 0 in every row), so the LEA's energy belongs to
the inference. The headline ``dense_over_rad_energy_lea`` is the inference ratio,
``dense_over_rad_energy_lea_program`` the whole-program one.

Energy per inference = cycles x the board's active energy per cycle (active_current_per_mhz x f x V / f)
+ the LEA's own energy per command, scaled from the datasheet's whole-operation figures
([power.accel_op_energy_j] in board.toml: 128-point complex FFT 350 nJ, taken per butterfly; add of 32 Q31
elements 6.6 nJ, taken per element for MAC and bit reversal, x4 per complex MAC element — ASSUMED
scalings). The CPU is counted active while it polls LEA (our driver does; TI's DSPLib sleeps in LPM0).

Writes benchmarks/results/lea.json.

    nice .venv/bin/python benchmarks/lea.py [--samples N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from batteryless import spec  # noqa: E402
from batteryless.artifact import load_artifact  # noqa: E402
from batteryless.boards import load_board  # noqa: E402
from batteryless.codegen import codegen  # noqa: E402
from batteryless.datasets import load_dataset  # noqa: E402
from batteryless.firmware import build, parse_output  # noqa: E402
from batteryless.firmware.msp430sim import profile_image, run_many  # noqa: E402
from batteryless.rad.admm import AdmmConfig  # noqa: E402
from batteryless.rad.compress import CompressConfig, compress  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "lea.json"
BOARD = "msp430fr5994"
# (family, variant, block, weight bits, pad) as benchmarks/emulator.py: the dense MLP has int8 weights
# (int16 does not fit the code region).
MODELS = [
    ("mlp", "dense", 1, 8, False),
    ("mlp", "rad", 16, 16, False),
    ("cnn", "dense", 1, 16, False),
    ("cnn", "rad", 8, 16, True),
]
CMD_FFT, CMD_MAC, CMD_CMAC, CMD_BREV_EVEN, CMD_BREV_ODD = 4, 21, 26, 33, 34
# Phases of an inference, by function (the profile counts a function the compiler inlined in its caller):
# the LEA driver's CPU side (parameter blocks, command start, polling while LEA runs), staging operands into
# LEA RAM, reading back MAC results (saturation test, accumulation), the kernels' own CPU work
# (requantisation, Hermitian completion, final rescale + bias; the direct path's weight staging is inlined
# there too), FFTs on the CPU (inverse transforms the LEA route cannot do exactly, blocks below 16 points),
# compiler helpers (multiply/divide), the other layers, and the runtime (start-up, model glue, printing).
PHASES = {
    "lea_driver": ("bl_lea_cmac_many", "cmac_prep", "bl_lea_cmac_rq_run", "bl_lea_cmac_rq_prepare",
                   "bl_lea_fft_nobrev_begin", "bl_lea_done", "mac_any", "lea_fft", "lea_go", "lea_init",
                   "msp_mac_q15", "bl_lea_mac_", "msp_cmplx_mac_q15", "msp_cmplx_fft_fixed_q15",
                   "msp_cmplx_ifft_fixed_q15", "bl_lea_fft_run", "bl_lea_fft_nobrev", "lea_wait",
                   "lea_start"),
    "staging": ("bl_lea_bins_push", "bl_linear_fft_input_q15", "bl_conv_fft_input_q15", "stage_row",
                "bl_lea_dma_copy16", "bl_lea_dma_fill16", "stage_w8", "fft_input_lea", "brev_for"),
    "mac_results": ("bl_lea_bins_flush", "bl_lea_dot_flush", "bl_lea_bins_init", "block_row_strided",
                    "bl_lea_dot_begin", "bl_lea_dot_end", "real_bin_sum", "bin_requant_slow"),
    # the resident route (rows_resident, inlined into its two entries; block_row_resident before session
    # 10) does the Hermitian completion and placement (place_bins) and final rescale (finish_block): counted
    # here (the two loops were counted as runtime from session 7's hot code to session 8). Session 9: its
    # requantisation of the complex-MAC results runs inside the driver's command loop while LEA works
    # (bl_lea_cmac_rq_run: lea_driver)
    "kernel_cpu": ("bl_linear_fft_block_q15", "bl_conv_fft_block_q15", "linear_direct", "conv_direct",
                   "strided_inverse_finish", "linear_direct_rows", "conv_direct_rows", "rows_resident",
                   "bl_linear_fft_block_relu_q15", "finish_rows", "finish_block", "bl_lea_requant",
                   "bl_lea_finish", "place_bins"),
    "cpu_fft": ("bl_lea_ref_fft_q15", "bl_fft_q15", "lea_cpu_fft", "cpu_fft_q15"),
    "helpers": ("__mspabi_", "mul32", "__mulsi3", "__divsi3"),
    "other_layers": ("bl_relu_q15", "pool", "bl_maxpool", "bl_avgpool", "mac_step", "bl_mac_step"),
}  # fmt: skip


def phase_of(fn: str) -> str:
    if fn.startswith("bl_ref_") or fn in ("mac_step",):  # the ref backend's kernel bodies (ref rows)
        return "kernel_cpu"
    for phase, names in PHASES.items():
        if any(fn == n or (n.endswith("_") and fn.startswith(n)) or fn.startswith(n + ".") for n in names):
            return phase
    if fn.startswith(("bl_linear_", "bl_conv_", "bl_requant", "bl_wrap", "bl_sat")):  # ref kernel entries
        return "kernel_cpu"
    return "runtime"


def profile_row(img: Path, data: bytes, mark_addr: int) -> dict:
    """Where one inference's MCLK cycles go (sample 0, the inference window: first task mark to end mark, as
    ``inference_mclk_cycles``): by phase and the 12 costliest functions."""
    by_fn = profile_image(img, data, mark_addr=mark_addr)
    phases: dict[str, int] = {}
    for fn, c in by_fn.items():
        phases[phase_of(fn)] = phases.get(phase_of(fn), 0) + c
    top = sorted(by_fn.items(), key=lambda t: -t[1])[:12]
    return {"phases": dict(sorted(phases.items(), key=lambda t: -t[1])), "top_functions": dict(top)}


def lea_energy_j(lea: dict, board) -> float:
    """The LEA's own energy for one run's commands (see the module doc for the scalings)."""
    ops = board.power.accel_op_energy_j
    per_butterfly = ops["fft_cmplx_q15_128"] / (64 * 7)
    per_element = ops["add_q31_32"] / 32
    e = 0.0
    for cmd, n in lea["commands"].items():
        elems = lea["elements"][cmd]
        if cmd == CMD_FFT:
            # elements = summed points; butterflies = N/2 log2 N per transform (same N in one run's sum
            # is not guaranteed: use the mean N)
            mean_n = elems / n
            e += n * (mean_n / 2) * np.log2(mean_n) * per_butterfly
        elif cmd == CMD_CMAC:
            e += 4 * elems * per_element
        else:
            e += elems * per_element
    return float(e)


def measure(
    ctx: dict, art: Path, artifact, family: str, variant: str, path: str, backend: str, n: int, tag: str = ""
) -> dict:
    """One row: codegen + build the image, run it on the first ``n`` digits test samples on msp430sim, check
    every sample's logits against the numeric spec, and profile sample 0. ``ctx``: the run's board, digits,
    energy per cycle, mark register, work folder and simulator totals (updated)."""
    board, digits, e_cycle = ctx["board"], ctx["digits"], ctx["e_cycle"]
    mark_addr, d = ctx["mark_addr"], ctx["dir"]
    xq = np.asarray(spec.quantize_input(artifact, digits.x_test), dtype="<i2")
    gen = d / f"gen-{family}-{variant}{tag}-{path}-{backend}"
    # coarse: every row measures the backend's own layer kernels; "auto" would turn an image whose largest
    # task exceeds half a 100 uF period (the CNN on ref) into bl_mac_step units, the ref walk on any backend
    res = codegen(art, BOARD, gen, backend=backend, path=path, granularity="coarse")
    img = build(BOARD, gen, backend, out_dir=d / f"b-{family}-{variant}{tag}-{path}-{backend}").image
    t0 = time.perf_counter()
    scale = ctx.get("lea_timing_scale", 1.0)  # benchmarks/lea_sensitivity.py
    runs = run_many(img, [xq[i].tobytes() for i in range(n)], mark_addr=mark_addr, lea_timing_scale=scale)
    wall = time.perf_counter() - t0
    logits = [parse_output(r.output).get("logits") for r in runs]
    want = spec.integer_inference(artifact, digits.x_test[:n], res.paths)
    exact = sum(
        int(lg is not None and r.exit_code == 0 and list(lg) == [int(v) for v in want[i]])
        for i, (lg, r) in enumerate(zip(logits, runs, strict=True))
    )
    cycles = float(np.mean([r.mclk_cycles for r in runs]))
    if any(r.inference_cycles is None for r in runs):
        raise SystemExit(f"{gen}: a run without the model app's marks 1 and 0")
    inf_cycles = float(np.mean([r.inference_cycles for r in runs]))
    if any(r.lea_commands_outside_inference for r in runs):
        raise SystemExit(f"{gen}: LEA commands outside the inference window")
    lea_e = float(np.mean([lea_energy_j(r.lea, board) for r in runs]))
    busy = float(np.mean([r.lea["busy_cycles"] for r in runs]))
    row = {
        "model": family,
        "variant": variant,
        "path": path,
        "backend": backend,
        "mclk_cycles": round(cycles),
        "energy_uj": round(1e6 * (cycles * e_cycle + lea_e), 3),
        "inference_mclk_cycles": round(inf_cycles),
        "inference_energy_uj": round(1e6 * (inf_cycles * e_cycle + lea_e), 3),
        "lea_commands_outside_inference": sum(r.lea_commands_outside_inference for r in runs),
        "samples": n,
        "bit_exact_samples": exact,
        "lea_busy_cycles": round(busy),
        "lea_energy_uj": round(1e6 * lea_e, 4),
        "lea_commands_per_inference": {
            str(c): v / n for c, v in _sum_dicts([r.lea["commands"] for r in runs]).items()
        },
        "wall_s_per_inference": round(wall / n, 4),
    }
    if scale == 1.0:  # the profile runs the simulator's timings as assumed
        row["profile_sample0"] = profile_row(img, xq[0].tobytes(), mark_addr)
    ctx["sim_wall"] += wall
    ctx["sim_cycles"] += sum(r.mclk_cycles for r in runs)
    # the numeric spec's top-1 accuracy on these samples (meaningful for fully trained artifacts only)
    ctx["last_integer_accuracy"] = float(
        np.mean(np.argmax(np.asarray(want), axis=1) == np.asarray(digits.y_test[:n]))
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--quick", action="store_true", help="10 samples everywhere (a smoke run, labelled)")
    args = ap.parse_args()
    board = load_board(BOARD)
    e_cycle = board.power.active_current_per_mhz_a * (board.clock_hz / 1e6) * board.power.supply_voltage_v
    e_cycle /= board.clock_hz
    mark_addr = int(board.emulator["mark_register"])
    digits = load_dataset("digits")
    n_all = len(digits.x_test)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ctx = {"board": board, "digits": digits, "e_cycle": e_cycle, "mark_addr": mark_addr, "dir": d,
               "sim_cycles": 0, "sim_wall": 0.0}  # fmt: skip
        for family, variant, block, bits, pad in MODELS:
            art = d / f"{family}-{variant}.bl"
            admm = AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10)
            cfg = CompressConfig(block_size=block, weight_bits=bits, pad=pad, dense_epochs=3, admm=admm)
            compress(family, "digits", out=art, config=cfg)
            artifact = load_artifact(art)
            for path in ("direct",) if variant == "dense" else ("fft", "direct"):
                for backend in ("lea", "ref"):
                    n = (
                        10
                        if args.quick
                        else (n_all if (variant == "rad" and backend == "lea") else args.samples)
                    )
                    row = measure(ctx, art, artifact, family, variant, path, backend, n)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    sim_cycles, sim_wall = ctx["sim_cycles"], ctx["sim_wall"]

    def energy(family: str, variant: str, path: str, backend: str, key: str = "inference_energy_uj") -> float:
        """One row's ``key`` (default: the inference energy)."""
        return next(
            r[key]
            for r in rows
            if (r["model"], r["variant"], r["path"], r["backend"]) == (family, variant, path, backend)
        )

    out = {
        "command": "benchmarks/lea.py" + (" --quick" if args.quick else f" --samples {args.samples}"),
        "emulator": {
            "name": "msp430sim (tools/msp430sim/bl_msp430sim.c: MSP430X + MPY32 + FRAM wait states + LEA)",
            "cycles_per_s": round(sim_cycles / sim_wall),
            "cycles_per_s_note": "over every benchmark run, including Python's per-sample reload and "
            "output parsing; benchmarks/results/msp430sim.json has the simulator's own speed",
        },
        "energy_model": {
            "cpu_energy_per_cycle_j": e_cycle,
            "source": "board.toml [power] active_current_per_mhz_a x supply_voltage_v (SLASE54D); LEA "
            "command energy scaled from [power.accel_op_energy_j] (ASSUMED scalings, see the script)",
        },
        "rows": rows,
        "dense_over_rad_energy_lea": {
            f: energy(f, "dense", "direct", "lea")
            / min(energy(f, "rad", p, "lea") for p in ("fft", "direct"))
            for f in ("mlp", "cnn")
        },
        "dense_over_rad_energy_lea_fft_path": {
            f: energy(f, "dense", "direct", "lea") / energy(f, "rad", "fft", "lea") for f in ("mlp", "cnn")
        },
        "dense_over_rad_energy_lea_program": {
            f: energy(f, "dense", "direct", "lea", "energy_uj")
            / min(energy(f, "rad", p, "lea", "energy_uj") for p in ("fft", "direct"))
            for f in ("mlp", "cnn")
        },
        "energy_definition": "dense_over_rad_energy_* : inference energy (first task mark to end mark: the "
        "model's run, inference_energy_uj); *_program: the whole image run (energy_uj), start-up, input read "
        "and printing the logits included",
        "dense_over_rad_energy_ref": {
            f: energy(f, "dense", "direct", "ref")
            / min(energy(f, "rad", p, "ref") for p in ("fft", "direct"))
            for f in ("mlp", "cnn")
        },
        # block sizes per layer over training seeds (full compress runs): benchmarks/block_sweep.py
        "block_sizes": "benchmarks/results/block_sweep.json",
        # the goal (LEA FFT-path RAD >= 4x fewer cycles than ref): whole program, and the inference
        "ref_over_lea_cycles_rad_fft": {
            f: energy(f, "rad", "fft", "ref", "mclk_cycles") / energy(f, "rad", "fft", "lea", "mclk_cycles")
            for f in ("mlp", "cnn")
        },
        "ref_over_lea_cycles_rad_fft_inference": {
            f: energy(f, "rad", "fft", "ref", "inference_mclk_cycles")
            / energy(f, "rad", "fft", "lea", "inference_mclk_cycles")
            for f in ("mlp", "cnn")
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = RESULTS.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(out, indent=1) + "\n")
    tmp_out.replace(RESULTS)
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=1))


def _sum_dicts(ds: list[dict]) -> dict:
    out: dict = {}
    for dd in ds:
        for k, v in dd.items():
            out[k] = out.get(k, 0) + v
    return out


if __name__ == "__main__":
    main()
