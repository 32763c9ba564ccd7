"""Any .npz file with x_train, y_train, x_test, y_test (and optionally class_names)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from batteryless.datasets.base import Dataset, from_arrays
from batteryless.errors import DatasetError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path: str | Path) -> Dataset:
    """x arrays become float32 shaped (N, C, ...); a 2-D x (N, F) becomes (N, 1, F). Labels must be integer
    class indices 0..K-1. ``class_names`` (strings), if present, fixes K."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: file not found; expected a .npz with arrays {', '.join(KEYS)}")
    if path.is_dir():
        raise DatasetError(f"{path}: is a folder; give a .npz file with arrays {', '.join(KEYS)}")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror})") from None
    if magic[:2] != b"PK":
        what = "a single .npy array" if magic == b"\x93NUM" else "not a .npz (zip) file"
        raise DatasetError(
            f"{path}: {what}; save the splits with numpy.savez(path, x_train=..., y_train=..., "
            "x_test=..., y_test=...)"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise DatasetError(
                    f"{path}: missing array(s) {', '.join(missing)}; the file has "
                    f"{', '.join(f.files) or 'no arrays'} (need {', '.join(KEYS)})"
                )
            arrays = {k: f[k] for k in KEYS}
            names = f["class_names"] if "class_names" in f.files else None
    except DatasetError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DatasetError(f"{path}: not a readable .npz file ({err})") from None
    except ValueError as err:
        raise DatasetError(
            f"{path}: cannot load without pickle ({err}); store plain numeric arrays (no object dtype)"
        ) from None
    if names is not None and (names.ndim != 1 or names.dtype.kind not in "US"):
        raise DatasetError(
            f"{path}: class_names must be a 1-D array of strings, got {names.dtype} {names.shape}"
        )
    return from_arrays(
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        class_names=None if names is None else [str(n) for n in names.tolist()],
        name="npz",
        where=str(path),
    )
