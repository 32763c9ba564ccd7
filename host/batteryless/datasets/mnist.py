"""MNIST from the four standard IDX files in a folder (plain or .gz; never downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batteryless.datasets.base import Dataset, check_split
from batteryless.datasets.idx import read_idx
from batteryless.errors import DatasetError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _candidates(stem: str) -> list[str]:
    dotted = stem.replace("-idx", ".idx")  # some mirrors name them train-images.idx3-ubyte
    return [stem, stem + ".gz", dotted, dotted + ".gz"]


def find_file(folder: Path, stem: str) -> Path:
    for name in _candidates(stem):
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(
        f"{folder}: missing MNIST file {stem} (or {stem}.gz); the folder must hold "
        + ", ".join(FILES.values())
    )


def load_mnist(folder: str | Path) -> Dataset:
    folder = Path(folder)
    if not folder.exists():
        raise DatasetError(
            f"{folder}: MNIST folder does not exist; expected a folder with "
            + ", ".join(f"{s}[.gz]" for s in FILES.values())
        )
    if not folder.is_dir():
        raise DatasetError(f"{folder}: is a file; give the folder that holds the four MNIST IDX files")
    paths = {key: find_file(folder, stem) for key, stem in FILES.items()}
    arrays: dict[str, np.ndarray] = {}
    for key, path in paths.items():
        arr = read_idx(path)
        want = 3 if key.endswith("images") else 1
        if arr.ndim != want:
            raise DatasetError(
                f"{path}: has {arr.ndim} dimensions {list(arr.shape)}, expected {want} "
                f"({'count, rows, cols' if want == 3 else 'count'})"
            )
        if arr.dtype != np.uint8:
            raise DatasetError(
                f"{path}: element type is {arr.dtype}, MNIST stores unsigned bytes (type 0x08)"
            )
        arrays[key] = arr
    for part in ("train", "test"):
        ni, nl = len(arrays[f"{part}_images"]), len(arrays[f"{part}_labels"])
        if ni != nl:
            raise DatasetError(
                f"{paths[f'{part}_images']}: {ni} images but {paths[f'{part}_labels']} has {nl} labels"
            )
        bad = arrays[f"{part}_labels"] > 9
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DatasetError(
                f"{paths[f'{part}_labels']}: label {int(arrays[f'{part}_labels'][i])} at index {i} "
                "is not a digit 0-9"
            )
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DatasetError(
            f"{folder}: train images are {arrays['train_images'].shape[1:]} but test images "
            f"{arrays['test_images'].shape[1:]}"
        )
    x_train = (arrays["train_images"].astype(np.float32) / 255.0)[:, None]
    x_test = (arrays["test_images"].astype(np.float32) / 255.0)[:, None]
    y_train = arrays["train_labels"].astype(np.int64)
    y_test = arrays["test_labels"].astype(np.int64)
    check_split(str(folder), x_train, y_train, x_test, y_test, 10)
    return Dataset(
        name="mnist",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        input_shape=tuple(int(d) for d in x_train.shape[1:]),
        num_classes=10,
        class_names=[str(i) for i in range(10)],
    )
