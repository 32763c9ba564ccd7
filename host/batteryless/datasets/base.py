"""The :class:`Dataset` every loader returns, and shared validation."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    warnings: list[str] = field(default_factory=list)  # label oddities found on loading (see check_split)

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
            "warnings": list(self.warnings),
        }


# Features beyond this magnitude overflow float32 statistics and training (x² alone passes 1e38 near 1.8e19;
# a sum of squares over thousands of samples earlier): refused up front rather than after minutes of training.
MAX_ABS_FEATURE = 1e15
# A class with fewer training samples than this share of the mean class count is called out as suspicious.
RARE_CLASS_SHARE = 0.05


def _check_x(where: str, part: str, x: np.ndarray) -> None:
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: x_{part} has dtype {x.dtype}; it must be numeric (int or float)")
    if x.dtype.kind == "f":
        finite = np.isfinite(x)
        if not np.all(finite):
            bad = int(np.argwhere(~finite.reshape(len(x), -1))[0][0])
            raise DatasetError(f"{where}: x_{part} contains NaN or infinite values (first at sample {bad})")
    big = np.abs(x.astype(np.float64)) > MAX_ABS_FEATURE
    if np.any(big):
        flat = big.reshape(len(x), -1)
        bad, feat = (int(v) for v in np.argwhere(flat)[0])
        value = float(x.reshape(len(x), -1)[bad, feat])
        raise DatasetError(
            f"{where}: x_{part} has {int(big.sum())} value(s) beyond ±{MAX_ABS_FEATURE:.0e} "
            f"(first {value:.3g} at sample {bad}, feature {feat}); such values overflow float32 training: "
            "rescale the data"
        )


def check_split(
    where: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int | None = None,
    warnings: list[str] | None = None,
) -> int:
    """Validate dtypes, shapes, values and labels of a split; return the number of classes.

    ``where`` names the file or folder in every message. ``num_classes`` None means "infer from the labels":
    then the labels must be exactly 0..K-1 with every class present in training, and every test label must
    occur in training, else the stray labels are named with their counts. With a declared ``num_classes``
    (class_names, a fixed format) such gaps are appended to ``warnings`` instead; so are rare classes.
    """
    for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x, y = np.asarray(x), np.asarray(y)
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
        if x[0].size == 0:
            raise DatasetError(f"{where}: x_{part} samples have no features (shape {x.shape[1:]})")
        _check_x(where, part, x)
        if y.dtype.kind not in "biuf":
            raise DatasetError(f"{where}: y_{part} has dtype {y.dtype}; labels must be integer class indices")
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DatasetError(f"{where}: y_{part} must hold integer class indices")
        if np.any(y < 0):
            raise DatasetError(f"{where}: y_{part} has negative labels; classes must be 0..N-1")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"{where}: train samples have shape {x_train.shape[1:]} but test samples {x_test.shape[1:]}"
        )
    y_train = np.asarray(y_train).astype(np.int64)
    y_test = np.asarray(y_test).astype(np.int64)
    top = int(max(y_train.max(), y_test.max())) + 1
    if num_classes is not None and top > num_classes:
        raise DatasetError(f"{where}: label {top - 1} is out of range for {num_classes} classes")
    k = num_classes or top
    train_counts = np.bincount(y_train, minlength=k)
    test_counts = np.bincount(y_test, minlength=k)
    problems: list[str] = []
    unseen = [c for c in range(k) if train_counts[c] == 0 and test_counts[c] > 0]
    if unseen:
        problems.append(
            "y_test has label(s) that never occur in y_train: "
            + ", ".join(f"{c} ({test_counts[c]} test sample(s))" for c in unseen)
        )
    missing = [c for c in range(k) if train_counts[c] == 0 and test_counts[c] == 0]
    if missing:
        present = [c for c in range(k) if train_counts[c] or test_counts[c]]
        above = [c for c in present if c > min(missing)]
        stray = ", ".join(f"{c} ({train_counts[c]} train / {test_counts[c]} test sample(s))" for c in above)
        problems.append(
            f"label(s) {_ranges(missing)} never occur, so the {k} classes are not 0..{k - 1}"
            + (f"; the labels above the gap: {stray}" if stray else "")
        )
    if problems and num_classes is None:
        raise DatasetError(
            f"{where}: " + "; ".join(problems) + ". Labels must be class indices 0..K-1, every class present "
            "in the training split (fix the labels, or store class_names to declare K classes)"
        )
    if warnings is not None:
        warnings.extend(f"{where}: {p}" for p in problems)
        mean = len(y_train) / max(int((train_counts > 0).sum()), 1)
        rare = [c for c in range(k) if 0 < train_counts[c] < RARE_CLASS_SHARE * mean]
        if rare:
            warnings.append(
                f"{where}: class(es) with very few training samples (a stray label?): "
                + ", ".join(f"label {c}: {train_counts[c]} of {len(y_train)}" for c in rare)
            )
    return k


def _ranges(values: list[int]) -> str:
    out, start = [], values[0]
    for a, b in zip(values, [*values[1:], None], strict=True):
        if b != a + 1:
            out.append(str(start) if start == a else f"{start}..{a}")
            start = b
    return ", ".join(out)


def from_arrays(
    x_train,
    y_train,
    x_test,
    y_test,
    class_names: list[str] | None = None,
    name: str = "arrays",
    where: str | None = None,
) -> Dataset:
    """A validated :class:`Dataset` from in-memory arrays (what the npz loader does after reading its file).

    x becomes float32 (N, C, ...); a 2-D x (N, F) becomes (N, 1, F). Labels must be integer class indices
    0..K-1; ``class_names``, if given, fixes K. Errors (DatasetError) name ``where`` (default: ``name``).
    """
    where = where or name
    arrays = {}
    for key, a in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test), ("y_test", y_test)):
        try:
            arrays[key] = np.asarray(a)
        except (ValueError, TypeError) as err:
            raise DatasetError(f"{where}: {key} is not an array ({err})") from None
    for key, a in arrays.items():  # dtype first: a string array would fail every later check obscurely
        if a.dtype.kind not in "biuf":
            raise DatasetError(f"{where}: {key} has dtype {a.dtype}; it must be numeric (int or float)")
    if class_names is not None:
        class_names = [str(n) for n in class_names]
    warns: list[str] = []
    num_classes = check_split(
        where,
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        len(class_names) if class_names else None,
        warns,
    )
    xtr = arrays["x_train"].astype(np.float32)
    xte = arrays["x_test"].astype(np.float32)
    if xtr.ndim == 2:
        xtr, xte = xtr[:, None, :], xte[:, None, :]
    return Dataset(
        name=name,
        x_train=np.ascontiguousarray(xtr),
        y_train=arrays["y_train"].astype(np.int64),
        x_test=np.ascontiguousarray(xte),
        y_test=arrays["y_test"].astype(np.int64),
        input_shape=tuple(int(d) for d in xtr.shape[1:]),
        num_classes=num_classes,
        class_names=class_names,
        warnings=warns,
    )


def validate_dataset(ds: Dataset) -> Dataset:
    """Check a :class:`Dataset` built by hand (the API accepts one) as the loaders check theirs."""
    if not isinstance(ds, Dataset):
        raise DatasetError(f"expected a batteryless Dataset, got {type(ds).__name__}")
    where = f"dataset {ds.name!r}"
    warns: list[str] = []
    k = check_split(where, ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.num_classes, warns)
    if tuple(ds.x_train.shape[1:]) != tuple(ds.input_shape):
        raise DatasetError(
            f"{where}: input_shape is {tuple(ds.input_shape)} but x_train samples are "
            f"{tuple(ds.x_train.shape[1:])}"
        )
    if ds.class_names is not None and len(ds.class_names) != k:
        raise DatasetError(f"{where}: {len(ds.class_names)} class_names for {k} classes")
    for w in warns:
        if w not in ds.warnings:
            ds.warnings.append(w)
    return ds
