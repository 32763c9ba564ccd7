"""A model image run once per sample of a dataset: logits, predictions and counts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batteryless.boards import Board
from batteryless.errors import EmulationError
from batteryless.firmware.runner import run
from batteryless.firmware.tools import _resolve_board
from batteryless.progress import ProgressFn, report

LOGITS_KEY = "logits"


@dataclass
class DatasetRun:
    """Per-sample results of a model image: logits (from the firmware's "logits ..." line), predictions and
    the instruction / cycle count of each run."""

    board: str
    unit: str | None
    logits: list[list[int]]
    predictions: list[int]
    labels: list[int]
    counts: list[int | None]
    # the inference alone: count from the model app's first task mark (1) to its end mark (0) — every task
    # and the task loop, without start-up, reading the input and printing the logits; None where the image
    # or the emulator records no such marks
    inference_counts: list[int | None] | None = None

    @property
    def accuracy(self) -> float:
        if not self.labels:
            return float("nan")
        return sum(int(p == y) for p, y in zip(self.predictions, self.labels, strict=True)) / len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "unit": self.unit,
            "accuracy": self.accuracy,
            "predictions": self.predictions,
            "labels": self.labels,
            "logits": self.logits,
            "counts": self.counts,
            "inference_counts": self.inference_counts,
        }


def run_samples(
    image: str | Path,
    board: str | Path | Board,
    samples: list[bytes],
    labels: list[int] | None = None,
    timeout: float = 120.0,
    progress: ProgressFn | None = None,
) -> DatasetRun:
    """Run a model image once per input sample (raw bytes, e.g. int16 little-endian) and collect the
    ``logits`` line each run prints; the prediction is the index of the largest logit."""
    b = _resolve_board(board)
    logits: list[list[int]] = []
    preds: list[int] = []
    counts: list[int | None] = []
    inference: list[int | None] = []
    unit: str | None = None
    for i, data in enumerate(samples):
        res = run(image, b, inputs=data, timeout=timeout)
        vals = res.values.get(LOGITS_KEY)
        if res.exit_code != 0 or vals is None:
            raise EmulationError(
                f"{image}: sample {i}: firmware exited with {res.exit_code} and printed no '{LOGITS_KEY}' "
                f"line; output: {res.output.strip()[-300:]!r}"
            )
        logits.append(vals)
        preds.append(max(range(len(vals)), key=vals.__getitem__))
        counts.append(res.count)
        at = {m: c for m, c in res.marks if m is not None}
        inference.append(at[0] - at[1] if 0 in at and 1 in at else None)
        unit = res.unit
        report(progress, f"run {Path(image).name} on {b.name}", i + 1, len(samples))
    return DatasetRun(b.name, unit, logits, preds, list(labels or []), counts, inference)


def run_dataset(
    image: str | Path,
    board: str | Path | Board,
    artifact_path: str | Path,
    dataset: str,
    count: int = 10,
    start: int = 0,
    dataset_path: str | Path | None = None,
    timeout: float = 120.0,
    progress: ProgressFn | None = None,
) -> DatasetRun:
    """Quantise ``count`` test samples of ``dataset`` the way the artifact says (``spec.quantize_input``)
    and run the model image on each."""
    import numpy as np

    from batteryless.artifact import load_artifact
    from batteryless.datasets import load_dataset
    from batteryless.spec import quantize_input

    art = load_artifact(artifact_path)
    ds = load_dataset(dataset, dataset_path)
    x = ds.x_test[start : start + count]
    y = ds.y_test[start : start + count]
    if len(x) == 0:
        raise EmulationError(f"dataset {dataset} has no test samples in [{start}, {start + count})")
    xq = np.asarray(quantize_input(art, x), dtype="<i2")
    samples = [xq[i].tobytes() for i in range(len(xq))]
    return run_samples(image, board, samples, [int(v) for v in y], timeout, progress)
