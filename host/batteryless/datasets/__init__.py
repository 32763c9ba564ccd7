"""Datasets: one loader per source, all returning the same :class:`Dataset`.

``load_dataset(name, path, seed)`` is the single entry point. Images are float32 (N, C, H, W) in [0, 1];
time series float32 (N, C, L); labels int64. Loaders never download anything: MNIST and UCI HAR are read
from a folder the user names, ``digits`` ships with scikit-learn.
"""

from __future__ import annotations

from pathlib import Path

from batteryless.datasets.base import Dataset, DatasetInfo, from_arrays, validate_dataset
from batteryless.errors import DatasetError

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "dataset_info",
    "datasets",
    "from_arrays",
    "list_datasets",
    "load_dataset",
]

DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        name="digits",
        description="scikit-learn's bundled 8x8 digits (1797 images), seeded stratified 80/20 split",
        input_shape=(1, 8, 8),
        num_classes=10,
        needs_path=False,
        expected="nothing (bundled with scikit-learn)",
    ),
    "mnist": DatasetInfo(
        name="mnist",
        description="MNIST from the standard IDX files (plain or .gz) in a folder you name",
        input_shape=(1, 28, 28),
        num_classes=10,
        needs_path=True,
        expected="train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte (each optionally .gz)",
    ),
    "har": DatasetInfo(
        name="har",
        description="UCI Human Activity Recognition (smartphone inertial signals), 9 channels x 128 samples",
        input_shape=(9, 128),
        num_classes=6,
        needs_path=True,
        expected="the 'UCI HAR Dataset' folder: train/Inertial Signals/*_train.txt, train/y_train.txt, "
        "test/Inertial Signals/*_test.txt, test/y_test.txt",
    ),
    "npz": DatasetInfo(
        name="npz",
        description="any .npz file with arrays x_train, y_train, x_test, y_test (optional class_names)",
        input_shape=None,
        num_classes=None,
        needs_path=True,
        expected="a .npz file with x_train, y_train, x_test, y_test",
    ),
}


def list_datasets() -> list[str]:
    return list(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)} "
            "(or give the path of a .npz file)"
        ) from None


def load_dataset(name, path: str | Path | None = None, seed: int = 0) -> Dataset:
    """Load dataset ``name`` ("digits", "mnist", "har", "npz"); ``path`` is its folder or file.

    A name ending in ``.npz`` is taken as the path of an npz dataset. ``seed`` fixes the split where the
    source has none (digits); the same seed always gives the same arrays. In-memory data is accepted too:
    a :class:`Dataset` (validated as the loaders validate theirs) or a mapping with ``x_train, y_train,
    x_test, y_test`` (optional ``class_names``), see :func:`from_arrays`.
    """
    if isinstance(name, Dataset):
        return validate_dataset(name)
    if isinstance(name, dict):
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in name]
        if missing:
            raise DatasetError(f"in-memory dataset: missing {', '.join(missing)}")
        return from_arrays(
            name["x_train"], name["y_train"], name["x_test"], name["y_test"], name.get("class_names")
        )
    if not isinstance(name, str | Path):
        raise DatasetError(
            f"dataset must be a name, an .npz path, a Dataset or a dict of arrays, not {type(name).__name__}"
        )
    name = str(name)
    if path is None and str(name).endswith(".npz"):
        name, path = "npz", name
    info = dataset_info(name)
    if info.needs_path and path is None:
        raise DatasetError(
            f"dataset {name!r} is not bundled: give the folder or file that holds it (CLI --data, Python "
            "data_path=/path=); "
            f"expected {info.expected}"
        )
    if name == "digits":
        from batteryless.datasets.digits import load_digits

        return load_digits(seed=seed)
    if name == "mnist":
        from batteryless.datasets.mnist import load_mnist

        return load_mnist(Path(path))  # type: ignore[arg-type]
    if name == "har":
        from batteryless.datasets.har import load_har

        return load_har(Path(path))  # type: ignore[arg-type]
    from batteryless.datasets.npz import load_npz

    return load_npz(Path(path))  # type: ignore[arg-type]


def datasets(name: str | None = None, path: str | Path | None = None, seed: int = 0) -> dict:
    """What the ``datasets`` verb shows: without ``name`` the known datasets; with it, that dataset loaded
    (from ``path`` where needed) and summarised: shapes, split sizes, per-class counts, value range."""
    if name is None:
        return {
            "datasets": [
                {
                    "name": i.name,
                    "description": i.description,
                    "input_shape": list(i.input_shape) if i.input_shape else None,
                    "num_classes": i.num_classes,
                    "needs_path": i.needs_path,
                    "expected": i.expected,
                }
                for i in DATASETS.values()
            ]
        }
    return load_dataset(name, path, seed).summary()
