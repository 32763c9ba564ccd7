"""FFT-path precision of `to_artifact` on random block-circulant models, against the float model.

For random two-layer circulant MLPs (Flatten → circulant → ReLU → circulant) and a circulant conv model, with
block sizes 4/8/16 and output widths that the block size does and does not divide, converts each model with
``rad.quantize.to_artifact`` (calibration = the evaluated inputs, so every error is the format's, not data
outside the calibration range) and records, per path (fft, direct):

- the largest |integer logit − float logit| as a fraction of the float logits' range (the float model is the
  artifact's own de-quantised weights, ``Artifact.to_float_module``: weight rounding is not counted);
- how many requantised spectrum values Z saturated (FFT path; each one is a wrong frequency bin).

Writes ``benchmarks/results/fft_precision.json``. Deterministic (seeded; one torch thread).

    .venv/bin/python benchmarks/fft_precision.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from batteryless import spec  # noqa: E402
from batteryless.paths import atomic_write  # noqa: E402
from batteryless.rad.circulant import BlockCirculantConv, BlockCirculantLinear  # noqa: E402
from batteryless.rad.quantize import to_artifact  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "fft_precision.json"

# (name, hidden, classes, k1, k2): 10 and 6 classes leave cropped rows in the last block row
MLPS = [
    ("64-32-10 k8/4", 32, 10, 8, 4),
    ("64-32-16 k8/4", 32, 16, 8, 4),
    ("64-64-10 k16/16", 64, 10, 16, 16),
    ("64-64-16 k16/16", 64, 16, 16, 16),
    ("64-48-6 k16/8", 48, 6, 16, 8),
]


def _mlp(hidden: int, classes: int, k1: int, k2: int) -> tuple[nn.Sequential, tuple[int, ...]]:
    net = nn.Sequential(
        nn.Flatten(),
        BlockCirculantLinear(64, hidden, k1),
        nn.ReLU(),
        BlockCirculantLinear(hidden, classes, k2),
    )
    return net, (1, 8, 8)


def _cnn() -> tuple[nn.Sequential, tuple[int, ...]]:
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        BlockCirculantConv(2, 8, 12, (3, 3), 8, (2, 2), (1, 1)),  # 12 channels: 4 cropped
        nn.ReLU(),
        nn.Flatten(),
        BlockCirculantLinear(192, 10, 8),
    )
    return net, (1, 8, 8)


def measure(net: nn.Sequential, shape: tuple[int, ...], seed: int, samples: int) -> dict:
    x = np.random.default_rng(seed).normal(size=(samples, *shape)).astype(np.float32)
    classes = net[-1].out_features
    art = to_artifact(
        net.eval(),
        x,
        input_shape=shape,
        num_classes=classes,
        normalisation={"mean": 0.0, "std": 1.0},
    )
    with torch.no_grad():
        ref = art.to_float_module()(torch.as_tensor(art.normalise(x))).double().numpy()
    span = float(ref.max() - ref.min())
    out_frac = art.weight_layers()[-1]["out_frac"]
    row: dict = {}
    saturated = [0]
    finish = spec._inverse_and_finish

    def counting(pr, pi, shift_z, k, layer):  # counts Z values the spec's sat16 clips
        for p in (pr, pi):
            z = spec.shift_round(spec.wrap32(p), shift_z)
            saturated[0] += int(((z > spec.INT16_MAX) | (z < spec.INT16_MIN)).sum())
        return finish(pr, pi, shift_z, k, layer)

    spec._inverse_and_finish = counting
    try:
        for path in ("fft", "direct"):
            paths = {layer["name"]: path for layer in art.weight_layers()}
            got = spec.integer_inference(art, x, paths) / 2.0**out_frac
            row[f"{path}_err_of_range"] = float(np.abs(got - ref).max() / span)
    finally:
        spec._inverse_and_finish = finish
    row["fft_saturated_z"] = saturated[0]
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="random models per configuration (default 20)")
    ap.add_argument("--samples", type=int, default=128, help="inputs per model (default 128)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    configs = [(name, lambda h=h, c=c, a=a, b=b: _mlp(h, c, a, b)) for name, h, c, a, b in MLPS]
    configs.append(("conv 8-12 k8, fc 192-10 k8", _cnn))
    out: dict = {"command": "benchmarks/fft_precision.py", "seeds": args.seeds, "samples": args.samples}
    rows = {}
    for name, build in configs:
        runs = []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            net, shape = build()
            runs.append(measure(net, shape, seed, args.samples))
        fft = np.array([r["fft_err_of_range"] for r in runs])
        direct = np.array([r["direct_err_of_range"] for r in runs])
        rows[name] = {
            "fft_err_of_range_max": float(fft.max()),
            "fft_err_of_range_median": float(np.median(fft)),
            "direct_err_of_range_max": float(direct.max()),
            "models_with_saturated_z": int(sum(r["fft_saturated_z"] > 0 for r in runs)),
            "saturated_z_total": int(sum(r["fft_saturated_z"] for r in runs)),
        }
        print(
            f"{name:28s} fft max {100 * fft.max():6.3f} % median {100 * np.median(fft):6.3f} %  "
            f"direct max {100 * direct.max():6.3f} %  models with saturated Z "
            f"{rows[name]['models_with_saturated_z']}/{args.seeds}",
            flush=True,
        )
    out["rows"] = rows
    atomic_write(RESULTS, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
