"""Artifact (or float PyTorch model) → int8 .tflite + C array + header + report (``export-tflite``)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from batteryless import __version__
from batteryless.errors import ExportError, UsageError
from batteryless.paths import atomic_write
from batteryless.progress import ProgressFn, report
from batteryless.tflite._tf import _quiet_stderr, tf
from batteryless.tflite.keras_convert import KerasConversion, to_keras, to_keras_layout


def convert(
    model: Any, keras_input_shape: tuple[int, ...], representative: np.ndarray | None = None
) -> bytes:
    """Keras model → .tflite bytes via a SavedModel (Keras 3's ``from_keras_model`` is unreliable).

    With ``representative`` (a batch in the *Keras* layout) the model is fully integer: int8 weights and
    activations, int8 input and output, int32 biases. Without it the model stays float32.
    """
    tf_ = tf()
    keras_input_shape = tuple(int(d) for d in keras_input_shape)
    spec = tf_.TensorSpec((1, *keras_input_shape), tf_.float32, name="input")
    with tempfile.TemporaryDirectory(prefix="bl-savedmodel-") as tmp:
        saved = os.path.join(tmp, "saved_model")
        try:
            model.export(saved, format="tf_saved_model", verbose=False, input_signature=[spec])
            converter = tf_.lite.TFLiteConverter.from_saved_model(saved)
            if representative is not None:
                rep = np.asarray(representative, dtype=np.float32)
                if rep.ndim != len(keras_input_shape) + 1 or rep.shape[1:] != keras_input_shape:
                    raise ExportError(
                        f"representative data has sample shape {rep.shape[1:]}, the Keras model takes "
                        f"{keras_input_shape}"
                    )
                if len(rep) == 0:
                    raise ExportError("the representative dataset is empty; int8 calibration needs samples")

                def samples():
                    for i in range(len(rep)):
                        yield [rep[i : i + 1]]

                converter.optimizations = [tf_.lite.Optimize.DEFAULT]
                converter.representative_dataset = samples
                converter.target_spec.supported_ops = [tf_.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf_.int8
                converter.inference_output_type = tf_.int8
            with _quiet_stderr():
                return bytes(converter.convert())
        except ExportError:
            raise
        except Exception as err:  # TensorFlow raises many types; name the step and keep the first line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ExportError(f"TensorFlow could not convert the model to TFLite: {first}") from err


@dataclass
class Exported:
    tflite: bytes
    conversion: KerasConversion
    ops: list[str]


def export_module(
    module: nn.Module,
    input_shape: tuple[int, ...],
    calib_x: np.ndarray,
    progress: ProgressFn | None = None,
) -> Exported:
    """Float model + *normalised* calibration inputs (PyTorch layout) → int8 .tflite bytes."""
    from batteryless.tflite.flatbuffer import read_graph

    report(progress, "keras model", 0, 3)
    conv = to_keras(module, tuple(input_shape))
    report(progress, "keras model", 1, 3)
    data = convert(conv.model, conv.keras_input_shape, to_keras_layout(calib_x, tuple(input_shape)))
    report(progress, "keras model", 2, 3)
    graph = read_graph(data, "converted model")
    report(progress, "keras model", 3, 3)
    return Exported(data, conv, graph.op_names())


def _c_name(text: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in text).strip("_").lower() or "model"
    return out if not out[0].isdigit() else f"m_{out}"


def export_tflite(
    artifact_path: str | Path,
    out_dir: str | Path,
    dataset: str | None = None,
    *,
    data_path: str | Path | None = None,
    name: str | None = None,
    calibration_samples: int = 256,
    test_samples: int | None = None,
    verify: bool = True,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Export an artifact as a full-integer .tflite, an aligned C array with header and op resolver, and a
    report; verify it in ai-edge-litert and TFLite Micro (bit for bit) and against the integer reference.

    ``dataset`` defaults to the one recorded in the artifact; its training split calibrates the int8
    ranges and its test split is used for verification. Returns the report (also written as JSON).
    """
    from batteryless.artifact import load_artifact
    from batteryless.datasets import load_dataset
    from batteryless.tflite.c_array import write_c_sources
    from batteryless.tflite.verify import verify_export

    if calibration_samples < 1:
        raise UsageError(
            f"calibration_samples / --calibration-samples must be at least 1, got {calibration_samples}"
        )
    if test_samples is not None and test_samples < 1:
        raise UsageError(f"test_samples / --test-samples must be at least 1, got {test_samples}")
    art = load_artifact(artifact_path)
    ds_name = dataset or art.dataset
    if not ds_name or ds_name == "unknown":
        raise UsageError(f"{artifact_path}: the artifact names no dataset; pass dataset= / --dataset")
    ds = load_dataset(ds_name, data_path, seed=seed)
    if tuple(ds.input_shape) != tuple(art.input_shape):
        raise UsageError(
            f"dataset {ds_name!r} has samples shaped {tuple(ds.input_shape)} but the artifact expects "
            f"{tuple(art.input_shape)}; pass the dataset it was compressed on"
        )
    out = Path(out_dir)
    stem = _c_name(name or Path(artifact_path).stem)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(ds.x_train))[: min(calibration_samples, len(ds.x_train))]
    calib = art.normalise(ds.x_train[np.sort(pick)])
    exported = export_module(art.to_float_module(), tuple(art.input_shape), calib, progress)
    tflite_path = out / f"{stem}.tflite"
    atomic_write(tflite_path, exported.tflite)
    rep: dict[str, Any] = {
        "tool": f"batteryless {__version__}",
        "artifact": str(artifact_path),
        "model": art.model,
        "dataset": ds_name,
        "tflite": str(tflite_path),
        "tflite_bytes": len(exported.tflite),
        "ops": exported.ops,
        "keras_layers": exported.conversion.layers,
        "input_layout": {3: "NHWC", 2: "N1LC"}.get(len(art.input_shape), "NC"),
        "keras_input_shape": list(exported.conversion.keras_input_shape),
        "normalisation": dict(art.normalisation),
        "calibration_samples": int(len(calib)),
    }
    if verify:
        x_test = ds.x_test if test_samples is None else ds.x_test[:test_samples]
        rep.update(verify_export(exported, art, x_test, ds.y_test[: len(x_test)], progress=progress))
    files = write_c_sources(
        exported.tflite,
        out,
        stem,
        ops=exported.ops,
        arena_bytes=rep.get("tflm_arena_bytes"),
        banner=f"batteryless {__version__} export-tflite from {Path(artifact_path).name}",
        details=rep,
    )
    report_path = out / f"{stem}_report.json"
    rep["files"] = [str(p) for p in (tflite_path, *files, report_path)]
    atomic_write(report_path, (json.dumps(rep, indent=2, sort_keys=True) + "\n").encode())
    return rep
