"""How the LEA results move if the real LEA's command timings differ from the simulator's ASSUMED ones.

No TI figure for LEA command cycle counts could be retrieved (docs/msp430sim.md "LEA": SLAA698B's tables are
not in any stored copy), so msp430sim's FFT / MAC / complex-MAC / bit-reversal durations are ASSUMED. This
script reruns benchmarks/lea.py's LEA rows — the digits MLP and CNN, dense (direct path) and RAD (both
paths; the ratio takes RAD's cheaper one at each factor, as lea.py's headline does: since session 11 the
CNN's is the direct path), the same short-schedule artifacts and images — with every LEA command's duration
multiplied by a factor (``Msp430Sim(lea_timing_scale=)``: from 4x faster to 4x slower than assumed), and
reports per factor each row's inference MCLK cycles and energy and the dense / RAD energy ratio. The LEA's
own energy per command stays the datasheet-scaled figure (a slower LEA is not assumed to draw less per
operation); the CPU is counted active while it polls a running command, as in lea.py. Every run is checked
bit-exact against the numeric spec (the timing must not change a result).

    nice .venv/bin/python benchmarks/lea_sensitivity.py [--samples 20] [--scales 0.25,0.5,1,2,4]

Writes benchmarks/results/lea_sensitivity.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import lea  # noqa: E402  (its models, measure() and energy model)
from batteryless.artifact import load_artifact  # noqa: E402
from batteryless.boards import load_board  # noqa: E402
from batteryless.datasets import load_dataset  # noqa: E402
from batteryless.rad.admm import AdmmConfig  # noqa: E402
from batteryless.rad.compress import CompressConfig, compress  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "lea_sensitivity.json"
PATHS = {"dense": ("direct",), "rad": ("fft", "direct")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--scales", default="0.25,0.5,1,2,4")
    args = ap.parse_args()
    scales = [float(v) for v in args.scales.split(",")]
    if 1.0 not in scales:
        raise SystemExit("--scales must include 1 (the timings as assumed, lea.py's rows)")
    board = load_board(lea.BOARD)
    e_cycle = board.power.active_current_per_mhz_a * board.power.supply_voltage_v / 1e6
    out_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ctx = {
            "board": board,
            "digits": load_dataset("digits"),
            "e_cycle": e_cycle,
            "mark_addr": int(board.emulator["mark_register"]),
            "dir": d,
            "sim_cycles": 0,
            "sim_wall": 0.0,
        }
        for family, variant, block, bits, pad in lea.MODELS:
            art = d / f"{family}-{variant}.bl"
            admm = AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10)
            cfg = CompressConfig(block_size=block, weight_bits=bits, pad=pad, dense_epochs=3, admm=admm)
            compress(family, "digits", out=art, config=cfg)
            artifact = load_artifact(art)
            for path, scale in ((p, sc) for p in PATHS[variant] for sc in scales):
                ctx["lea_timing_scale"] = scale
                row = lea.measure(
                    ctx, art, artifact, family, variant, path, "lea", args.samples, tag=f"-x{scale}"
                )
                keep = ("model", "variant", "path", "backend", "inference_mclk_cycles", "inference_energy_uj",
                        "lea_busy_cycles", "lea_energy_uj", "samples", "bit_exact_samples")  # fmt: skip
                out_rows.append({"lea_timing_scale": scale, **{k: row[k] for k in keep}})
                print(json.dumps(out_rows[-1]), flush=True)
                if row["bit_exact_samples"] != row["samples"]:
                    raise SystemExit(f"{family} {variant} at LEA timing x{scale}: not bit-exact")

    def energy(family: str, variant: str, scale: float) -> float:  # the variant's cheaper path
        return min(
            r["inference_energy_uj"]
            for r in out_rows
            if (r["model"], r["variant"], r["lea_timing_scale"]) == (family, variant, scale)
        )

    out = {
        "command": f"benchmarks/lea_sensitivity.py --samples {args.samples} --scales {args.scales}",
        "note": "LEA command durations = msp430sim's ASSUMED formulas x lea_timing_scale; LEA energy per "
        "command unchanged; inference window as benchmarks/lea.py",
        "rows": out_rows,
        "dense_over_rad_energy_lea": {
            f: {str(sc): round(energy(f, "dense", sc) / energy(f, "rad", sc), 3) for sc in scales}
            for f in ("mlp", "cnn")
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = RESULTS.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(out, indent=1) + "\n")
    tmp_out.replace(RESULTS)
    print(json.dumps(out["dense_over_rad_energy_lea"], indent=1))


if __name__ == "__main__":
    main()
