"""UCI Human Activity Recognition from its standard folder layout (never downloaded).

Reads ``<split>/Inertial Signals/<signal>_<split>.txt`` for the nine raw signals (one window of 128 samples
per line) and ``<split>/y_<split>.txt`` (activity 1..6 per line) for split in train, test. Gives x of shape
(N, 9, 128), channels in :data:`SIGNALS` order, and labels 0..5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batteryless.datasets.base import Dataset, check_split
from batteryless.errors import DatasetError

SIGNALS = (
    "body_acc_x",
    "body_acc_y",
    "body_acc_z",
    "body_gyro_x",
    "body_gyro_y",
    "body_gyro_z",
    "total_acc_x",
    "total_acc_y",
    "total_acc_z",
)
WINDOW = 128
FOLDER_NAME = "UCI HAR Dataset"
DEFAULT_CLASSES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]


def _read_text(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(
            f"{path}: file not found (UCI HAR layout expected; see 'batteryless datasets info har')"
        )
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not a plain-text numbers file (byte {err.start} is not ASCII)") from None
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DatasetError(f"{path}: file is empty")
    return lines


def read_matrix(path: Path, columns: int) -> np.ndarray:
    """Whitespace-separated numbers, ``columns`` per line; errors name the file and line."""
    lines = _read_text(path)
    tokens: list[str] = []
    for no, line in enumerate(lines, 1):
        row = line.split()
        if len(row) != columns:
            raise DatasetError(f"{path}, line {no}: {len(row)} values, expected {columns}")
        tokens.extend(row)
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        for no, line in enumerate(lines, 1):
            for tok in line.split():
                try:
                    float(tok)
                except ValueError:
                    raise DatasetError(f"{path}, line {no}: {tok!r} is not a number") from None
        raise  # pragma: no cover - numpy and float() agree on what a number is
    values = values.reshape(len(lines), columns)
    bad = ~np.isfinite(values)
    if bad.any():
        no = int(np.argwhere(bad)[0][0]) + 1
        raise DatasetError(f"{path}, line {no}: NaN or infinite value")
    return values


def _root(path: Path) -> Path:
    if not path.exists():
        raise DatasetError(
            f"{path}: folder does not exist; give the '{FOLDER_NAME}' folder (with train/ and test/)"
        )
    if not path.is_dir():
        raise DatasetError(f"{path}: is a file; give the '{FOLDER_NAME}' folder (with train/ and test/)")
    if not (path / "train").is_dir() and (path / FOLDER_NAME / "train").is_dir():
        return path / FOLDER_NAME
    for split in ("train", "test"):
        if not (path / split).is_dir():
            raise DatasetError(
                f"{path}: no {split}/ folder; expected the '{FOLDER_NAME}' layout "
                f"({split}/Inertial Signals/*_{split}.txt and {split}/y_{split}.txt)"
            )
    return path


def _class_names(root: Path) -> list[str]:
    path = root / "activity_labels.txt"
    if not path.is_file():
        return list(DEFAULT_CLASSES)
    names: dict[int, str] = {}
    for no, line in enumerate(_read_text(path), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{path}, line {no}: expected '<number> <NAME>', got {line.strip()!r}")
        names[int(parts[0])] = parts[1]
    if sorted(names) != list(range(1, len(names) + 1)):
        raise DatasetError(f"{path}: activity numbers must be 1..{len(names)}, got {sorted(names)}")
    return [names[i] for i in range(1, len(names) + 1)]


def _split(root: Path, split: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
    channels = []
    n: int | None = None
    first: Path | None = None
    for sig in SIGNALS:
        path = root / split / "Inertial Signals" / f"{sig}_{split}.txt"
        m = read_matrix(path, WINDOW)
        if n is not None and len(m) != n:
            raise DatasetError(f"{path}: {len(m)} windows but {first} has {n}; the signal files must match")
        n, first = len(m), first or path
        channels.append(m)
    ypath = root / split / f"y_{split}.txt"
    y = read_matrix(ypath, 1)[:, 0]
    if len(y) != n:
        raise DatasetError(f"{ypath}: {len(y)} labels but {first} has {n} windows")
    bad = (y != np.round(y)) | (y < 1) | (y > classes)
    if bad.any():
        no = int(np.flatnonzero(bad)[0]) + 1
        raise DatasetError(f"{ypath}, line {no}: label {y[no - 1]:g} is not an activity 1..{classes}")
    x = np.stack(channels, axis=1).astype(np.float32)
    return x, y.astype(np.int64) - 1


def load_har(path: str | Path) -> Dataset:
    root = _root(Path(path))
    names = _class_names(root)
    x_train, y_train = _split(root, "train", len(names))
    x_test, y_test = _split(root, "test", len(names))
    check_split(str(root), x_train, y_train, x_test, y_test, len(names))
    return Dataset(
        name="har",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        input_shape=(len(SIGNALS), WINDOW),
        num_classes=len(names),
        class_names=names,
    )
