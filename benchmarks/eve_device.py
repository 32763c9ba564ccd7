#!/usr/bin/env python3
"""EVE on the device: every mode of the digits MLP and CNN executed by the generated firmware (issue 11).

The same EVE models as benchmarks/eve.py (``compress --modes 3`` with that script's per-model settings),
generated for the MSP430FR5994 (``ref`` and ``lea``, msp430sim: MCLK cycles; ``lea`` runs the layers on the
simulator's emulated LEA where its kernels do), the Cortex-M4 mps2-an386 (``ref`` and
``cmsis``, QEMU: instructions) and the Cortex-M55 mps3-an547 (``cmsis``, QEMU: instructions); one image
per mode (``BL_MODEL_START_MODE``). Per mode: the measured count of one inference (mean over the samples),
whether every sample's logits equal
``spec.integer_inference(..., mode=i)``, and codegen's predicted cycles; per model the image's weight bytes
(one store plus a uint16 rank per block) against the single-mode weights; and per target the **dense** model
of benchmarks/eve.py (block 1, 8-bit weights, the trace rows' ``dense`` policy) on the same backend, so the
latency goal (≥ 2.5x below dense) can be read per backend: ``dense_over_mode`` is the dense model's count of
one inference over each mode's. Counts are deterministic (no wall time). Writes
benchmarks/results/eve_device.json. Run:
    nice .venv/bin/python benchmarks/eve_device.py [--quick] [--samples 5]
    .venv/bin/python benchmarks/eve_device.py --tables   # the docs/benchmarks.md table from the JSON
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

from batteryless import __version__
from batteryless.artifact import load_artifact
from batteryless.eve.train import EveConfig
from batteryless.paths import atomic_write
from batteryless.rad.admm import AdmmConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from eve import EVE_SETTINGS, K, _compress, measure_modes  # noqa: E402  (the EVE benchmark's models, settings)

RESULTS = ROOT / "benchmarks" / "results" / "eve_device.json"
TARGETS = (
    ("msp430fr5994", "ref", "msp430sim"),
    ("msp430fr5994", "lea", "msp430sim"),  # where RAD pays on the MSP430 (the latency goal's backend)
    ("mps2-an386", "ref", None),
    ("mps2-an386", "cmsis", None),
    ("mps3-an547", "cmsis", None),  # Cortex-M55: the cmsis kernels' Helium loops
)


def run_model(model: str, work: Path, quick: bool, samples: int) -> dict:
    settings = EVE_SETTINGS.get(model, {})
    eve_cfg = EveConfig(
        keep=settings.get("keep"), width=settings.get("width"), layer_width=settings.get("layer_width", {})
    )
    if quick:
        eve_cfg.epochs = 1
    path = work / f"{model}-eve.bl"
    _compress(model, path, quick, modes=K, eve=eve_cfg, layer_blocks=settings.get("layer_blocks", {}))
    art = load_artifact(path)
    ranks = sum(
        2 * art.tensors[la["block_order"]].size for la in art.weight_layers() if la.get("block_order")
    )
    # the dense model as benchmarks/eve.py builds it (its `dense` policy): 8-bit weights, no ADMM
    dense_path = work / f"{model}-dense.bl"
    _compress(model, dense_path, quick, block_size=1, weight_bits=8, admm=AdmmConfig(rounds=0))
    out: dict = {"model": model, "targets": []}
    for board, backend, emulator in TARGETS:
        m = measure_modes(path, board, backend, work, samples, emulator=emulator)
        rows = m["modes"]
        d = measure_modes(dense_path, board, backend, work, samples, emulator=emulator)["modes"][0]
        out["targets"].append(
            {
                "board": board,
                "backend": backend,
                "unit": m["unit"],
                "paths": m["paths"],
                "modes": rows,
                "largest_over_smallest": rows[0]["count"] / rows[-1]["count"],
                # the inference alone (model app's first task mark to its end mark), where recorded
                "largest_over_smallest_inference": rows[0]["inference"] / rows[-1]["inference"]
                if rows[0].get("inference") and rows[-1].get("inference")
                else None,
                "weight_bytes": m["weight_bytes"],
                "rank_bytes": ranks,
                "dense": d,
                "dense_over_mode": [d["inference"] / r["inference"] for r in rows]
                if d.get("inference") and all(r.get("inference") for r in rows)
                else None,
            }
        )
    return out


LABEL = {
    ("msp430fr5994", "ref"): "FR5994 `ref` (cycles)",
    ("msp430fr5994", "lea"): "FR5994 `lea` (cycles)",
    ("mps2-an386", "ref"): "M4 `ref` (instructions)",
    ("mps2-an386", "cmsis"): "M4 `cmsis` (instructions)",
    ("mps3-an547", "cmsis"): "M55 `cmsis` (instructions)",
}


def tables(doc: dict) -> str:
    """The per-mode table of docs/benchmarks.md from eve_device.json."""
    out = [
        "| model | target | mode 0 | mode 1 | mode 2 | largest ÷ smallest (whole program) | dense model "
        "| dense ÷ mode 0 / 1 / 2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in doc["models"]:
        for t in m["targets"]:
            rows = t["modes"]
            whole = rows[0]["count"] / rows[-1]["count"]
            d = t.get("dense") or {}
            ratios = (
                " / ".join(f"{r:.2f}×" for r in t["dense_over_mode"]) if t.get("dense_over_mode") else "–"
            )
            out.append(
                f"| {m['model']} | {LABEL.get((t['board'], t['backend']), t['board'])} | "
                + " | ".join(f"{r['inference']:,.0f}" for r in rows)
                + f" | {t['largest_over_smallest_inference']:.2f}× ({whole:.2f}×) | "
                + (f"{d['inference']:,.0f}" if d.get("inference") else "–")
                + f" | {ratios} |"
            )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short training (a smoke run, not the numbers)")
    ap.add_argument("--samples", type=int, default=5, help="digits test samples per mode and target")
    ap.add_argument("--tables", action="store_true", help="print the docs table from the JSON and exit")
    ap.add_argument(
        "--models",
        default="mlp,cnn",
        help="comma-separated; a subset replaces those models' rows in the existing JSON, keeping the others",
    )
    args = ap.parse_args()
    if args.tables:
        print(tables(json.loads(RESULTS.read_text())))
        return 0
    names = [m for m in args.models.split(",") if m]
    if not names or set(names) - {"mlp", "cnn"}:
        raise SystemExit(f"--models: mlp and/or cnn, got {args.models!r}")
    with tempfile.TemporaryDirectory(prefix="bl-eve-device-") as tmp:
        models = [run_model(m, Path(tmp), args.quick, args.samples) for m in names]
    command = "nice .venv/bin/python benchmarks/eve_device.py" + (" --quick" if args.quick else "")
    if set(names) != {"mlp", "cnn"} and RESULTS.exists():
        kept = [m for m in json.loads(RESULTS.read_text())["models"] if m["model"] not in names]
        models = sorted(kept + models, key=lambda m: ("mlp", "cnn").index(m["model"]))
        command += f" --models {args.models} (other models' rows from the previous run)"
    out = {
        "benchmark": "eve_device",
        "version": __version__,
        "machine": platform.machine(),
        "quick": args.quick,
        "samples": args.samples,
        "command": command,
        "models": models,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS, json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
