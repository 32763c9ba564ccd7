"""The :class:`Dataset` every loader returns, and shared validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from batteryless.errors import DatasetError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    input_shape: tuple[int, ...] | None  # None: depends on the file
    num_classes: int | None
    needs_path: bool
    expected: str


@dataclass
class Dataset:
    """A train/test split. x: float32 (N, C, H, W) or (N, C, L); y: int64 class indices in [0, classes)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: list[str] | None = None

    def summary(self) -> dict:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "train_samples": int(len(self.y_train)),
            "test_samples": int(len(self.y_test)),
            "class_names": self.class_names,
            "train_class_counts": np.bincount(self.y_train, minlength=self.num_classes).tolist(),
            "test_class_counts": np.bincount(self.y_test, minlength=self.num_classes).tolist(),
            "x_min": float(min(self.x_train.min(initial=np.inf), self.x_test.min(initial=np.inf))),
            "x_max": float(max(self.x_train.max(initial=-np.inf), self.x_test.max(initial=-np.inf))),
        }


def check_split(
    where: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int | None = None,
) -> int:
    """Validate shapes, finiteness and labels of a split; return the number of classes.

    ``where`` names the file or folder in every message.
    """
    for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim < 2:
            raise DatasetError(
                f"{where}: x_{part} must have a sample axis and at least one feature axis, "
                f"got shape {x.shape}"
            )
        if y.ndim != 1:
            raise DatasetError(f"{where}: y_{part} must be one label per sample (1-D), got shape {y.shape}")
        if len(x) != len(y):
            raise DatasetError(f"{where}: x_{part} has {len(x)} samples but y_{part} has {len(y)} labels")
        if len(x) == 0:
            raise DatasetError(f"{where}: the {part} split is empty")
        if not np.all(np.isfinite(x)):
            bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
            raise DatasetError(f"{where}: x_{part} contains NaN or infinite values (first at sample {bad})")
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DatasetError(f"{where}: y_{part} must hold integer class indices")
        if np.any(y < 0):
            raise DatasetError(f"{where}: y_{part} has negative labels; classes must be 0..N-1")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"{where}: train samples have shape {x_train.shape[1:]} but test samples {x_test.shape[1:]}"
        )
    top = int(max(y_train.max(), y_test.max())) + 1
    if num_classes is None:
        return top
    if top > num_classes:
        raise DatasetError(f"{where}: label {top - 1} is out of range for {num_classes} classes")
    return num_classes
