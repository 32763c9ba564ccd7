"""scikit-learn's bundled 8x8 digits with a fixed, seeded, stratified 80/20 split."""

from __future__ import annotations

import numpy as np

from batteryless.datasets.base import Dataset

TEST_FRACTION = 0.2


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): each class contributes round(count * test_fraction) test samples, chosen by a
    seeded permutation. Both index arrays are sorted, so the order does not depend on the class layout."""
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n_test = int(round(len(idx) * test_fraction))
        test.append(rng.permutation(idx)[:n_test])
    test_idx = np.sort(np.concatenate(test))
    mask = np.ones(len(y), dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask), test_idx


def load_digits(seed: int = 0) -> Dataset:
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = (np.asarray(bunch.data, dtype=np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    train, test = stratified_split(y, TEST_FRACTION, seed)
    return Dataset(
        name="digits",
        x_train=np.ascontiguousarray(x[train]),
        y_train=y[train],
        x_test=np.ascontiguousarray(x[test]),
        y_test=y[test],
        input_shape=(1, 8, 8),
        num_classes=10,
        class_names=[str(i) for i in range(10)],
    )
