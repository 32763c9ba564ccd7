"""Run an exported .tflite in ai-edge-litert and in TFLite Micro, find the TFLM arena, compare.

TFLite Micro runs in a child process: its Python interpreter can crash outright when the arena is too
small, and the arena usage is only printed (by its recording allocator), not returned.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from batteryless.errors import ExportError
from batteryless.progress import ProgressFn, report

ARENA_RE = re.compile(r"Arena allocation total (\d+) bytes")


def io_quantization(data: bytes) -> dict[str, Any]:
    """Input/output shapes, types and (scale, zero point) of a .tflite model, from the flatbuffer."""
    from batteryless.tflite.flatbuffer import read_graph

    g = read_graph(data, "model")
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise ExportError(
            f"expected one input and one output tensor, the model has {len(g.inputs)}/{len(g.outputs)}"
        )

    def one(t):
        scale = float(t.scale[0]) if t.scale is not None else None
        zp = int(t.zero_point[0]) if t.zero_point is not None else 0
        return {"shape": list(t.shape), "type": t.type_name, "scale": scale, "zero_point": zp}

    return {"input": one(g.tensors[g.inputs[0]]), "output": one(g.tensors[g.outputs[0]])}


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, np.float64) / scale) + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float64) - zero_point) * scale


def litert_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"


def run_litert(data: bytes, x: np.ndarray, resolver: str = "BUILTIN_REF") -> np.ndarray:
    """One invoke per sample (the model's batch is 1). ``resolver`` names an ``OpResolverType``: the
    default, ``BUILTIN_REF``, selects TFLite's reference kernels (the ones TFLite Micro's are derived from;
    with ai-edge-litert 1.2.0 they agree with TFLite Micro bit for bit); ``AUTO`` the optimised kernels and
    XNNPACK."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        kind = OpResolverType[resolver]
    except KeyError:
        names = ", ".join(t.name for t in OpResolverType)
        raise ExportError(f"unknown ai-edge-litert op resolver {resolver!r} (one of {names})") from None
    try:
        interp = Interpreter(model_content=bytes(data), experimental_op_resolver_type=kind)
        interp.allocate_tensors()
    except (RuntimeError, ValueError) as err:
        raise ExportError(f"ai-edge-litert refused the model: {str(err).splitlines()[0]}") from None
    i_det = interp.get_input_details()[0]
    o_det = interp.get_output_details()[0]
    outs = []
    for i in range(len(x)):
        interp.set_tensor(i_det["index"], x[i : i + 1].astype(i_det["dtype"]))
        interp.invoke()
        outs.append(np.array(interp.get_tensor(o_det["index"])).reshape(-1))
    return np.stack(outs)


def compare_int8(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Bit-exactness of two int8 output arrays (samples x outputs)."""
    d = np.abs(a.astype(np.int32) - b.astype(np.int32))
    return {
        "bit_exact": bool(not d.any()),
        "mismatches": int(np.count_nonzero(d)),
        "mismatched_samples": int(np.count_nonzero(d.any(axis=1))),
        "max_lsb_diff": int(d.max()) if d.size else 0,
        "top1_agreement": float(np.mean(top1(a) == top1(b))),
    }


def run_tflm(data: bytes, x: np.ndarray, arena_bytes: int) -> tuple[np.ndarray | None, int | None, str]:
    """(outputs or None, arena bytes TFLM's recording allocator reports or None, error text)."""
    with tempfile.TemporaryDirectory(prefix="bl-tflm-") as tmp:
        model = Path(tmp, "model.tflite")
        model.write_bytes(bytes(data))
        np.save(Path(tmp, "x.npy"), np.ascontiguousarray(x))
        out_path = Path(tmp, "y.npy")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "batteryless.tflite._tflm_worker",
                str(model),
                str(Path(tmp, "x.npy")),
                str(int(arena_bytes)),
                str(out_path),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        text = proc.stdout + proc.stderr
        m = ARENA_RE.search(text)
        used = int(m.group(1)) if m else None
        if proc.returncode != 0 or not out_path.exists():
            why = f"exit status {proc.returncode}"
            for line in proc.stdout.splitlines():
                if line.startswith("{"):
                    why = json.loads(line).get("error") or why
            if proc.returncode < 0:
                why = f"crashed with signal {-proc.returncode} (arena of {arena_bytes} bytes too small?)"
            return None, used, why
        return np.load(out_path), used, ""


def tflm_arena(data: bytes, sample: np.ndarray, step: int = 16) -> dict[str, Any]:
    """The smallest arena (to ``step`` bytes) with which TFLite Micro runs the model, found by bisection in
    child processes, and what its recording allocator reports as allocated (that figure leaves out the
    interpreter's own objects, which TFLM also places in the arena: it is at or a little below the
    minimum)."""
    generous = max(64 * 1024, 10 * len(data))
    out, used, err = run_tflm(data, sample[:1], generous)
    if out is None or used is None:
        raise ExportError(f"TFLite Micro could not run the model with a {generous}-byte arena: {err}")
    lo, hi = used - step, None  # lo must be a size that fails: check, and go lower while it runs
    while lo > step and run_tflm(data, sample[:1], lo)[0] is not None:
        hi, lo = lo, lo // 2 // step * step
    for extra in (256, 1024, 4096):
        if hi is not None:
            break
        if run_tflm(data, sample[:1], used + extra)[0] is not None:
            hi = used + extra
        else:
            lo = used + extra
    if hi is None:
        hi = generous
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            break
        if run_tflm(data, sample[:1], mid)[0] is not None:
            hi = mid
        else:
            lo = mid
    return {
        "tflm_arena_bytes": int(hi),
        "tflm_arena_recorded_bytes": int(used),
        "tflm_arena_note": (
            f"smallest arena (to {step} B) that runs, host 64-bit build of TFLM; a 32-bit MCU build needs "
            "a little less (smaller structs)"
        ),
    }


def to_keras_layout_quantized(data: bytes, x: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Normalised float inputs (PyTorch layout) → the int8 inputs the .tflite model takes."""
    from batteryless.tflite.keras_convert import to_keras_layout

    q = io_quantization(data)["input"]
    return quantize(to_keras_layout(x, input_shape), q["scale"], q["zero_point"])


def top1(a: np.ndarray) -> np.ndarray:
    return np.argmax(a, axis=1)


def verify_export(
    exported, art, x_test: np.ndarray, y_test: np.ndarray, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Compare TFLite (litert and TFLM) with each other, with the float models and the integer reference."""
    import torch

    from batteryless import spec
    from batteryless.tflite.keras_convert import to_keras_layout

    steps = 6
    report(progress, "verify", 0, steps)
    shape = tuple(art.input_shape)
    x_norm = art.normalise(x_test).astype(np.float32)
    xk = to_keras_layout(x_norm, shape)
    with torch.no_grad():
        torch_out = art.to_float_module()(torch.as_tensor(x_norm)).numpy()
    keras_out = np.concatenate([np.asarray(exported.conversion.model(xk[i : i + 1])) for i in range(len(xk))])
    report(progress, "verify", 1, steps)
    q = io_quantization(exported.tflite)
    xq = quantize(xk, q["input"]["scale"], q["input"]["zero_point"])
    lite_q = run_litert(exported.tflite, xq)
    report(progress, "verify", 2, steps)
    tflm_q, _, err = run_tflm(exported.tflite, xq, max(256 * 1024, 10 * len(exported.tflite)))
    if tflm_q is None:
        raise ExportError(f"TFLite Micro could not run the exported model: {err}")
    report(progress, "verify", 3, steps)
    arena = tflm_arena(exported.tflite, xq)
    report(progress, "verify", 4, steps)
    ref = spec.predict(art, x_test)
    report(progress, "verify", 5, steps)
    lite_f = dequantize(lite_q, q["output"]["scale"], q["output"]["zero_point"])
    span = float(np.abs(keras_out).max()) or 1.0
    ref_vs_tflm = compare_int8(lite_q, tflm_q)
    opt_vs_tflm = compare_int8(run_litert(exported.tflite, xq, "AUTO"), tflm_q)
    res = {
        "test_samples": int(len(x_test)),
        "io_quantization": q,
        "litert_version": litert_version(),
        "litert_resolver": "BUILTIN_REF",
        "litert_tflm_bit_exact": ref_vs_tflm["bit_exact"],
        "litert_tflm_mismatches": ref_vs_tflm["mismatches"],
        "litert_tflm_mismatched_samples": ref_vs_tflm["mismatched_samples"],
        "litert_tflm_max_lsb_diff": ref_vs_tflm["max_lsb_diff"],
        "top1_agreement_litert_vs_tflm": ref_vs_tflm["top1_agreement"],
        # the optimised kernels (OpResolverType.AUTO: ruy/gemmlowp + XNNPACK) round differently
        "litert_optimised_tflm_bit_exact": opt_vs_tflm["bit_exact"],
        "litert_optimised_tflm_mismatches": opt_vs_tflm["mismatches"],
        "litert_optimised_tflm_max_lsb_diff": opt_vs_tflm["max_lsb_diff"],
        "top1_agreement_litert_optimised_vs_tflm": opt_vs_tflm["top1_agreement"],
        "torch_keras_max_abs_diff": float(np.abs(torch_out - keras_out).max()),
        "keras_tflite_max_abs_diff": float(np.abs(keras_out - lite_f).max()),
        "keras_tflite_max_abs_diff_rel": float(np.abs(keras_out - lite_f).max()) / span,
        # per-sample worst logit error, 99th percentile over the test set: the max above is one sample, often
        # one whose logits leave the range the int8 output was calibrated on (they saturate)
        "keras_tflite_p99_abs_diff_rel": float(np.quantile(np.abs(keras_out - lite_f).max(axis=1), 0.99))
        / span,
        "output_scale": q["output"]["scale"],
        "top1_agreement_tflite_vs_keras": float(np.mean(top1(lite_q) == top1(keras_out))),
        "top1_agreement": float(np.mean(top1(lite_q) == ref)),
        "top1_agreement_tflm": float(np.mean(top1(tflm_q) == ref)),
        "accuracy_tflite": float(np.mean(top1(lite_q) == y_test)),
        "accuracy_reference": float(np.mean(ref == y_test)),
        "accuracy_float": float(np.mean(top1(torch_out) == y_test)),
        **arena,
    }
    report(progress, "verify", 6, steps)
    return res
