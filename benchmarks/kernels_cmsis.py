"""The `cmsis` kernel backend (real CMSIS-DSP) against the portable `ref` kernels on QEMU's Cortex-M4.

For the digits MLP (block 16, int16 weights) and CNN (block 8, int8 weights), made with the same quick
compression settings as the tests, generates the model for mps2-an386 on both paths (fft, direct), builds the
ordinary model app with each backend, and counts guest instructions per inference with the project's QEMU TCG
plugin: from the mark before the first task to the mark after the last, so start-up and printing are
excluded; per layer from the task marks. It also measures the cmsis backend's per-layer differences from the
numeric spec on all 359 test samples (``batteryless.firmware.layers``), and ``bl_fft_q15`` alone (the
``fft`` app) against ``spec.fft_q15`` and the exact DFT for k = 2 … 64 (instructions per call, ref vs cmsis),
and writes everything to ``benchmarks/results/kernels_cmsis.json``.

    .venv/bin/python benchmarks/kernels_cmsis.py [--samples 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from batteryless.artifact import load_artifact  # noqa: E402
from batteryless.codegen import codegen  # noqa: E402
from batteryless.datasets import load_dataset  # noqa: E402
from batteryless.firmware import build, run  # noqa: E402
from batteryless.firmware.layers import compare_layers, run_fft, run_layers, write_dump_table  # noqa: E402
from batteryless.paths import atomic_write  # noqa: E402
from batteryless.rad.admm import AdmmConfig  # noqa: E402
from batteryless.rad.compress import CompressConfig, compress  # noqa: E402
from batteryless.spec import fft_q15, integer_inference_q, quantize_input  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "kernels_cmsis.json"
BOARD = "mps2-an386"
QUICK = dict(dense_epochs=3, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10))
MODELS = (("mlp", 16, 16), ("cnn", 8, 8))


def _counts(image: Path, samples: np.ndarray, tasks: list[dict]) -> dict:
    """Instructions per inference (marks 1 → 0) and per layer (task marks), over the given samples."""
    per_inf, per_layer = [], {}
    for x in samples:
        res = run(image, BOARD, inputs=np.asarray(x, dtype="<i2").tobytes())
        if res.exit_code != 0:
            raise SystemExit(f"{image}: exit {res.exit_code}: {res.output[-300:]}")
        marks = [(mid, c) for mid, c in res.marks]
        start = next(c for mid, c in marks if mid == 1)
        end = next(c for mid, c in reversed(marks) if mid == 0)
        per_inf.append(end - start)
        task_counts = [c for _, c in marks[marks.index((1, start)) :]]  # task t starts at index t, end last
        for t, task in enumerate(tasks):
            per_layer.setdefault(task["layer"], []).append(task_counts[t + 1] - task_counts[t])
    layer_mean = {}
    for name, vals in per_layer.items():
        n = len(samples)
        layer_mean[name] = round(sum(vals) / n)  # one value per task and sample, summed per sample
    return {
        "instructions_mean": round(float(np.mean(per_inf)), 1),
        "instructions_min": int(min(per_inf)),
        "instructions_max": int(max(per_inf)),
        "per_layer_mean": layer_mean,
    }


def _fft_section(tmp: Path, vectors: int = 100) -> dict:
    """bl_fft_q15 of both backends on random vectors (half and full scale) vs spec.fft_q15 and the exact
    transform (numpy, DFT/k forward, IDFT inverse)."""
    (tmp / "empty").mkdir(exist_ok=True)
    app = str(ROOT / "firmware" / "apps" / "fft")
    imgs = {
        be: build(BOARD, tmp / "empty", be, app=app, out_dir=tmp / f"fft-{be}").image
        for be in ("ref", "cmsis")
    }
    rows = []
    for k in (2, 4, 8, 16, 32, 64):
        for inverse in (False, True):
            rng = np.random.default_rng(1000 + k + inverse)
            amp = np.where(np.arange(vectors) < vectors // 2, 16384, 32768)[:, None]
            re = np.clip(rng.integers(-amp, amp, size=(vectors, k)), -32768, 32767)
            im = np.clip(rng.integers(-amp, amp, size=(vectors, k)), -32768, 32767)
            sr, si = fft_q15(re, im, inverse)
            z = re + 1j * im
            exact = np.fft.ifft(z, axis=-1) if inverse else np.fft.fft(z, axis=-1) / k
            row: dict = {"k": k, "inverse": inverse, "vectors": vectors}
            for be, img in imgs.items():
                dr, di, counts = run_fft(img, BOARD, re, im, inverse)
                d = np.abs(np.concatenate([dr - sr, di - si]))
                e = np.abs(np.concatenate([dr - exact.real, di - exact.imag]))
                row[be] = {
                    "max_abs_vs_spec": int(d.max()),
                    "mean_abs_vs_spec": round(float(d.mean()), 3),
                    "max_abs_vs_exact": round(float(e.max()), 2),
                    "mean_abs_vs_exact": round(float(e.mean()), 3),
                    "instructions_per_call": round(float(np.mean(counts)), 1),
                }
            print("fft", k, "inv" if inverse else "fwd", row["cmsis"], flush=True)
            rows.append(row)
    return {"vectors": "half at |v| < 16384, half full scale; re and im uniform", "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20, help="test samples per count (default 20)")
    args = ap.parse_args(argv)
    t0 = time.time()
    ds = load_dataset("digits")
    out: dict = {
        "benchmark": "kernels_cmsis",
        "board": BOARD,
        "unit": "guest instructions (QEMU TCG plugin), per inference, start-up and output excluded",
        "samples_counted": args.samples,
        "samples_compared": len(ds.x_test),
        "host": platform.platform(),
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="bl-bench-cmsis-") as tmp_s:
        tmp = Path(tmp_s)
        out["fft"] = _fft_section(tmp)
        for model, k, bits in MODELS:
            art_path = tmp / f"{model}.bl"
            compress(
                model, "digits", out=art_path, config=CompressConfig(block_size=k, weight_bits=bits, **QUICK)
            )
            art = load_artifact(art_path)
            xq = quantize_input(art, ds.x_test)
            entry: dict = {"block": k, "weight_bits": bits, "paths": {}}
            for path in ("fft", "direct"):
                pe: dict = {}
                for backend in ("ref", "cmsis"):
                    gen = tmp / f"{model}-{path}-{backend}"
                    res = codegen(art_path, BOARD, gen, backend=backend, path=path)
                    img = build(BOARD, gen, backend, out_dir=tmp / f"b-{model}-{path}-{backend}").image
                    tasks = res.schedule["modes"][0]["tasks"]
                    pe[backend] = _counts(img, xq[: args.samples], tasks)
                    pe["layer_paths"] = res.paths
                    print(model, path, backend, pe[backend]["instructions_mean"], flush=True)
                pe["speedup_ref_over_cmsis"] = round(
                    pe["ref"]["instructions_mean"] / pe["cmsis"]["instructions_mean"], 3
                )
                # accuracy of the cmsis backend vs the spec on every test sample, per layer
                gen = tmp / f"{model}-{path}-layers"
                res = codegen(art_path, BOARD, gen, backend="cmsis", path=path)
                write_dump_table(gen)
                img = build(BOARD, gen, "cmsis", app="layers", out_dir=tmp / f"bl-{model}-{path}").image
                dev = run_layers(img, BOARD, gen, xq)
                ref = integer_inference_q(art, xq, res.paths)
                pe["cmsis_vs_spec"] = {
                    "layers": compare_layers(art, xq, res.paths, dev),
                    "logits_max_abs": int(np.abs(dev.logits - ref).max()),
                    "logits_mean_abs": round(float(np.abs(dev.logits - ref).mean()), 3),
                    "predictions_equal": int((dev.logits.argmax(1) == ref.argmax(1)).sum()),
                    "accuracy_spec": round(float((ref.argmax(1) == ds.y_test).mean()), 4),
                    "accuracy_cmsis": round(float((dev.logits.argmax(1) == ds.y_test).mean()), 4),
                }
                entry["paths"][path] = pe
            out["models"][model] = entry
    out["seconds"] = round(time.time() - t0, 1)
    atomic_write(RESULTS, json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RESULTS} in {out['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
