#!/usr/bin/env python3
"""Which TFLite interpreter agrees with TFLite Micro bit for bit on our exported int8 models?

Two stages, so the second can run in throwaway virtual environments with other interpreter wheels:

    # 1. in the project venv: compress mlp and cnn on digits, export int8 .tflite, quantise the test split,
    #    run TFLite Micro (tflite-micro wheel), save everything in DIR
    .venv/bin/python benchmarks/tflite_interpreters.py prepare DIR
    # 2. in any Python with numpy and one or more of ai_edge_litert / tflite_runtime / tensorflow:
    #    run every interpreter found with every op resolver, compare with the saved TFLM outputs
    PY benchmarks/tflite_interpreters.py run DIR [--json OUT]

Stage 2 imports nothing from batteryless. Each row: interpreter, version, resolver, model, outputs compared,
mismatching int8 outputs, max |difference| in LSB, samples whose top-1 differs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

MODELS = ["mlp", "cnn"]


def prepare(out: Path) -> None:
    import tempfile

    from batteryless.datasets import load_dataset
    from batteryless.rad.compress import CompressConfig, compress
    from batteryless.tflite import export_tflite
    from batteryless.tflite.verify import io_quantization, quantize, run_tflm

    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("digits")
    with tempfile.TemporaryDirectory(prefix="bl-tfl-interp-") as tmp:
        for model in MODELS:
            art = Path(tmp, f"{model}.bl")
            compress(model, "digits", out=art, config=CompressConfig())
            rep = export_tflite(art, Path(tmp, model), "digits", verify=False)
            data = Path(rep["tflite"]).read_bytes()
            q = io_quantization(data)["input"]
            norm = rep["normalisation"]
            x = ((ds.x_test - norm["mean"]) / norm["std"]).transpose(0, 2, 3, 1)  # NCHW → NHWC
            xq = quantize(x, q["scale"], q["zero_point"])
            tflm, _, err = run_tflm(data, xq, 256 * 1024)
            if tflm is None:
                raise SystemExit(f"{model}: TFLite Micro failed: {err}")
            (out / f"{model}.tflite").write_bytes(data)
            np.save(out / f"{model}_x.npy", xq)
            np.save(out / f"{model}_tflm.npy", tflm)
            print(f"{model}: {len(data)} B, {len(xq)} samples", file=sys.stderr)
    from importlib.metadata import version

    meta = {"tflite_micro": version("tflite-micro"), "tensorflow_converter": version("tensorflow")}
    (out / "meta.json").write_text(json.dumps(meta) + "\n")


def _interpreters():
    """(name, version, Interpreter class, OpResolverType enum or None) for each importable interpreter."""
    found = []
    try:
        import ai_edge_litert
        from ai_edge_litert import interpreter as li

        ver = getattr(ai_edge_litert, "__version__", None)
        if ver is None:
            from importlib.metadata import version

            ver = version("ai-edge-litert")
        found.append(("ai-edge-litert", ver, li.Interpreter, getattr(li, "OpResolverType", None)))
    except ImportError:
        pass
    try:
        from importlib.metadata import version

        from tflite_runtime import interpreter as tr

        found.append(("tflite-runtime", version("tflite-runtime"), tr.Interpreter, tr.OpResolverType))
    except ImportError:
        pass
    if os.environ.get("BL_SKIP_TF") != "1":
        try:
            import tensorflow as tf

            found.append(
                (
                    "tensorflow tf.lite",
                    tf.__version__,
                    tf.lite.Interpreter,
                    tf.lite.experimental.OpResolverType,
                )
            )
        except ImportError:
            pass
    return found


def _invoke_all(cls, resolver, data: bytes, x: np.ndarray) -> np.ndarray:
    kw = {} if resolver is None else {"experimental_op_resolver_type": resolver}
    interp = cls(model_content=data, **kw)
    interp.allocate_tensors()
    i_det, o_det = interp.get_input_details()[0], interp.get_output_details()[0]
    outs = []
    for i in range(len(x)):
        interp.set_tensor(i_det["index"], x[i : i + 1])
        interp.invoke()
        outs.append(np.array(interp.get_tensor(o_det["index"])).reshape(-1))
    return np.stack(outs)


def run(src: Path) -> list[dict]:
    meta_path = src / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    rows = []
    for name, ver, cls, enum in _interpreters():
        resolvers = [None] if enum is None else list(enum)
        for res in resolvers:
            for model in MODELS:
                data = (src / f"{model}.tflite").read_bytes()
                x = np.load(src / f"{model}_x.npy")
                ref = np.load(src / f"{model}_tflm.npy").astype(np.int32)
                got = _invoke_all(cls, res, data, x).astype(np.int32)
                diff = np.abs(got - ref)
                rows.append(
                    {
                        "interpreter": name,
                        "version": ver,
                        "resolver": "default" if res is None else res.name,
                        "model": model,
                        "outputs": int(ref.size),
                        "mismatches": int(np.count_nonzero(diff)),
                        "max_lsb": int(diff.max()),
                        "top1_differs": int(np.count_nonzero(got.argmax(1) != ref.argmax(1))),
                        "against": f"tflite-micro {meta.get('tflite_micro', '?')}",
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _key(row: dict) -> tuple:
    return row["interpreter"], row["version"], row["resolver"], row["model"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["prepare", "run"])
    ap.add_argument("dir")
    ap.add_argument("--json", help="merge the rows of `run` into this JSON list file (same key: replaced)")
    args = ap.parse_args()
    if args.stage == "prepare":
        prepare(Path(args.dir))
        return 0
    rows = run(Path(args.dir))
    if args.json:
        path = Path(args.json)
        old = json.loads(path.read_text()) if path.exists() else []
        new = {_key(r) for r in rows}
        path.write_text(json.dumps([r for r in old if _key(r) not in new] + rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
