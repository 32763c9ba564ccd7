#!/usr/bin/env python3
"""Codegen's predicted costs against measured counts, on models the cost fit did not see: the EVE ladders
(every mode) and the dense models of benchmarks/eve.py, per fitted target.

What ``batteryless search`` scores a ladder on without ``--measure`` is codegen's schedule: each mode's
predicted cycles (the board's ``[cost.<backend>]`` table, codegen/costs.py; a smaller mode's tasks scaled
by its MAC share, eve/device.py) and energy per inference (its tasks plus one FLEX commit each:
``eve.device.predicted_energy_j``). Here the same schedule is measured task by task
(``codegen.measure.measure_schedule``: the board's default emulator — mspdebug's MSP430 simulator in MCLK
cycles, QEMU in instructions; the ``lea`` backend on msp430sim) and both are written side by side.

Models: ``compress --modes 3`` with benchmarks/eve.py's EVE_SETTINGS and the dense model of its ``dense``
policy (block 1, 8-bit weights), QUICK training (the structure is what costs; accuracy is not measured).
Writes benchmarks/results/cost_check.json. Run:
    nice .venv/bin/python benchmarks/cost_check.py [--targets msp430fr5994/ref,...]
    .venv/bin/python benchmarks/cost_check.py --tables     # docs/benchmarks.md's table from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from batteryless import __version__  # noqa: E402
from batteryless.codegen import codegen  # noqa: E402
from batteryless.codegen.measure import measure_schedule  # noqa: E402
from batteryless.datasets import load_dataset  # noqa: E402
from batteryless.eve.device import predicted_energy_j  # noqa: E402
from batteryless.eve.train import EveConfig  # noqa: E402
from batteryless.paths import atomic_write  # noqa: E402
from batteryless.rad.admm import AdmmConfig  # noqa: E402
from eve import EVE_SETTINGS, K, _compress  # noqa: E402  (the EVE benchmark's models and settings)

RESULTS = ROOT / "benchmarks" / "results" / "cost_check.json"
TARGETS = [("msp430fr5994", "ref"), ("mps2-an386", "ref"), ("mps2-an386", "cmsis"), ("msp430fr5994", "lea")]
SAMPLE = 3  # digits test sample measured (kernel work does not depend on the data)


def models(work: Path) -> dict[str, Path]:
    out = {}
    for model in ("mlp", "cnn"):
        s = EVE_SETTINGS.get(model, {})
        cfg = EveConfig(keep=s.get("keep"), width=s.get("width"), layer_width=s.get("layer_width", {}))
        cfg.epochs = 1
        out[f"{model}-eve"] = work / f"{model}-eve.bl"
        _compress(model, out[f"{model}-eve"], True, modes=K, eve=cfg, layer_blocks=s.get("layer_blocks", {}))
        out[f"{model}-dense"] = work / f"{model}-dense.bl"
        _compress(model, out[f"{model}-dense"], True, block_size=1, weight_bits=8, admm=AdmmConfig(rounds=0))
    return out


def check(art: Path, label: str, board: str, backend: str, work: Path, x) -> list[dict]:
    gen = work / f"{label}-{board}-{backend}"
    res = codegen(art, board, gen, backend=backend)
    pred = res.schedule
    meas = measure_schedule(gen, board, art, x, backend=backend)
    rows = []
    for mi, (pm, mm) in enumerate(zip(pred["modes"], meas["modes"], strict=True)):
        p = sum(t["cycles"] for t in pm["tasks"])
        m = sum(t["cycles"] for t in mm["tasks"])
        rows.append(
            {
                "model": label,
                "target": f"{board}/{backend}",
                "unit": meas["measured"]["unit"],
                "mode": mi,
                "paths": res.paths,
                "granularity": res.schedule.get("granularity", {}).get("mode"),
                "tasks": len(pm["tasks"]),
                "predicted": p,
                "measured": m,
                "predicted_over_measured": round(p / m, 4),
                "predicted_energy_uj": round(1e6 * predicted_energy_j(pred, pm), 3),
                "measured_energy_uj": round(1e6 * predicted_energy_j(meas, mm), 3),
            }
        )
        print(
            f"{label:10s} {board}/{backend:5s} mode {mi}: predicted {p:>10,} measured {m:>10,} "
            f"({p / m:.2f}x)",
            flush=True,
        )
    return rows


def tables(doc: dict) -> str:
    out = [
        "| model | target | mode | predicted | measured | predicted ÷ measured "
        "| energy µJ predicted / measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        out.append(
            f"| {r['model']} | {r['target']} | {r['mode']} | {r['predicted']:,} | {r['measured']:,} | "
            f"{r['predicted_over_measured']:.2f} | {r['predicted_energy_uj']:.1f} / "
            f"{r['measured_energy_uj']:.1f} |"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", help="comma-separated board/backend pairs (default: every fitted target)")
    ap.add_argument("--tables", action="store_true", help="print the docs table from the JSON and exit")
    args = ap.parse_args()
    if args.tables:
        print(tables(json.loads(RESULTS.read_text())))
        return 0
    targets = TARGETS
    if args.targets:
        targets = [tuple(t.split("/")) for t in args.targets.split(",")]
        unknown = set(targets) - set(TARGETS)
        if unknown:
            ap.error(f"unknown targets {sorted(unknown)}; known: {TARGETS}")
    t0 = time.perf_counter()
    x = load_dataset("digits").x_test[SAMPLE]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bl-cost-check-") as tmp:
        arts = models(Path(tmp))
        for board, backend in targets:
            for label, art in arts.items():
                rows += check(art, label, board, backend, Path(tmp), x)
    old = json.loads(RESULTS.read_text()) if args.targets and RESULTS.exists() else {"rows": []}
    done = {f"{b}/{k}" for b, k in targets}
    rows = [r for r in old["rows"] if r["target"] not in done] + rows
    doc = {
        "generator": f"batteryless {__version__}",
        "command": ".venv/bin/python benchmarks/cost_check.py"
        + (
            f" --targets {args.targets} (the other targets' rows from the previous run)"
            if args.targets
            else ""
        ),
        "host": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
        "sample": f"digits test sample {SAMPLE}",
        "compress": "QUICK (eve.py --quick settings; EVE_SETTINGS ladders, 3 modes; dense: block 1, 8-bit)",
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    atomic_write(RESULTS, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
