"""Dataset loaders: digits split, IDX/MNIST, UCI HAR layout and npz, each with its corrupt-input errors.

Synthetic MNIST files are written byte by byte from the published IDX layout (not with the code under
test); HAR folders are written as whitespace-separated text in the UCI layout.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batteryless.cli import main
from batteryless.datasets import DATASETS, datasets, list_datasets, load_dataset
from batteryless.datasets.har import SIGNALS
from batteryless.datasets.idx import encode_idx, parse_idx, read_idx, write_idx
from batteryless.errors import DatasetError

# ---------------------------------------------------------------------------------------------- digits


def test_digits_shapes_range_and_partition():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    assert ds.x_train.shape[1:] == (1, 8, 8) and ds.x_test.shape[1:] == (1, 8, 8)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10
    ref = load_digits()
    assert len(ds.y_train) + len(ds.y_test) == len(ref.target) == 1797
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    # every sample of the original set appears exactly once across train + test, with its own label
    ours = np.concatenate([ds.x_train, ds.x_test]).reshape(-1, 64) * 16
    labels = np.concatenate([ds.y_train, ds.y_test])
    key = {(bytes(np.round(r).astype(np.uint8)), int(t)) for r, t in zip(ref.data, ref.target, strict=True)}
    got = [(bytes(np.round(r).astype(np.uint8)), int(t)) for r, t in zip(ours, labels, strict=True)]
    assert set(got) == key
    from collections import Counter

    assert Counter(got) == Counter(
        (bytes(r.astype(np.uint8)), int(t)) for r, t in zip(ref.data, ref.target, strict=True)
    )


def test_digits_split_is_stratified_80_20():
    from sklearn.datasets import load_digits

    counts = np.bincount(load_digits().target)
    ds = load_dataset("digits", seed=3)
    test_counts = np.bincount(ds.y_test, minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * counts) <= 0.5)
    assert np.array_equal(np.bincount(ds.y_train, minlength=10) + test_counts, counts)


def test_digits_seed_determinism():
    a, b, c = load_dataset("digits", seed=1), load_dataset("digits", seed=1), load_dataset("digits", seed=2)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)


def test_unknown_dataset_and_missing_path():
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'.*digits"):
        load_dataset("cifar")
    for name in ("mnist", "har", "npz"):
        with pytest.raises(DatasetError, match="--data"):
            load_dataset(name)
    assert list_datasets() == list(DATASETS) == ["digits", "mnist", "har", "npz"]


# ------------------------------------------------------------------------------------------ IDX / MNIST


def idx_bytes(arr: np.ndarray, code: int) -> bytes:
    """IDX by the published layout: 0x0000, type code, ndim, big-endian u32 dims, big-endian data."""
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return head + arr.astype(big).tobytes()


def write_mnist(folder: Path, n_train=12, n_test=5, rows=28, cols=28, gz=False, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in data.items():
        raw = idx_bytes(arr, 0x08)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loads_plain_and_gz(tmp_path, gz):
    data = write_mnist(tmp_path, gz=gz)
    ds = load_dataset("mnist", tmp_path)
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28)
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    np.testing.assert_array_equal(ds.x_train[:, 0] * 255, data["train-images-idx3-ubyte"].astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, data["t10k-labels-idx1-ubyte"])
    assert ds.y_train.dtype == np.int64 and ds.x_train.dtype == np.float32


def test_mnist_dotted_names_accepted(tmp_path):
    write_mnist(tmp_path)
    for p in list(tmp_path.iterdir()):
        p.rename(p.with_name(p.name.replace("-idx", ".idx")))
    assert load_dataset("mnist", tmp_path).x_train.shape[0] == 12


def _rewrite(path: Path, raw: bytes) -> None:
    path.write_bytes(raw)


@pytest.mark.parametrize(
    "corrupt, file, message",
    [
        ("bad-magic", "train-images-idx3-ubyte", "bad IDX magic number 0x12345678"),
        ("truncated", "train-images-idx3-ubyte", "truncated"),
        ("trailing", "t10k-images-idx3-ubyte", "unexpected bytes"),
        ("short-header", "t10k-labels-idx1-ubyte", "truncated IDX header"),
        ("tiny", "t10k-labels-idx1-ubyte", "too short"),
        ("count", "train-labels-idx1-ubyte", "12 images but .*train-labels-idx1-ubyte has 11 labels"),
        ("label", "t10k-labels-idx1-ubyte", "label 10 at index 2 is not a digit"),
        ("ndim", "train-labels-idx1-ubyte", "has 2 dimensions"),
        ("dtype", "train-images-idx3-ubyte", "element type is int16"),
        ("missing", "t10k-images-idx3-ubyte", "missing MNIST file t10k-images-idx3-ubyte"),
    ],
)
def test_mnist_corruptions_name_file_and_problem(tmp_path, corrupt, file, message):
    data = write_mnist(tmp_path)
    path = tmp_path / file
    raw = path.read_bytes()
    if corrupt == "bad-magic":
        _rewrite(path, b"\x12\x34\x56\x78" + raw[4:])
    elif corrupt == "truncated":
        _rewrite(path, raw[:-1])
    elif corrupt == "trailing":
        _rewrite(path, raw + b"\x00\x00")
    elif corrupt == "short-header":
        _rewrite(path, raw[:6])
    elif corrupt == "tiny":
        _rewrite(path, raw[:3])
    elif corrupt == "count":
        _rewrite(path, idx_bytes(data[file][:11], 0x08))
    elif corrupt == "label":
        labels = data[file].copy()
        labels[2] = 10
        _rewrite(path, idx_bytes(labels, 0x08))
    elif corrupt == "ndim":
        _rewrite(path, idx_bytes(data[file].reshape(3, 4), 0x08))
    elif corrupt == "dtype":
        _rewrite(path, idx_bytes(data[file].astype(np.int16), 0x0B))
    elif corrupt == "missing":
        path.unlink()
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset("mnist", tmp_path)
    assert file in str(err.value)


def test_mnist_bad_gzip_and_bad_folder(tmp_path):
    write_mnist(tmp_path, gz=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz: not a valid gzip"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("mnist", tmp_path / "nope")
    with pytest.raises(DatasetError, match="is a file"):
        load_dataset("mnist", tmp_path / "train-labels-idx1-ubyte.gz")


def test_mnist_train_test_shape_mismatch(tmp_path):
    write_mnist(tmp_path)
    rng = np.random.default_rng(1)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(
        idx_bytes(rng.integers(0, 255, (5, 20, 20), dtype=np.uint8), 0x08)
    )
    with pytest.raises(DatasetError, match=r"train images are \(28, 28\) but test images \(20, 20\)"):
        load_dataset("mnist", tmp_path)


IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.int16,
    0x0C: np.int32,
    0x0D: np.float32,
    0x0E: np.float64,
}


@settings(max_examples=60, deadline=None)
@given(
    code=st.sampled_from(sorted(IDX_DTYPES)),
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_idx_parse_matches_published_layout(code, shape, seed):
    rng = np.random.default_rng(seed)
    arr = (rng.standard_normal(shape) * 100).astype(IDX_DTYPES[code])
    raw = idx_bytes(arr, code)
    got = parse_idx(raw)
    assert got.shape == tuple(shape) and got.dtype == np.dtype(IDX_DTYPES[code])
    np.testing.assert_array_equal(got, arr)
    assert encode_idx(arr) == raw


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_idx_parser_never_crashes_on_garbage(raw):
    try:
        arr = parse_idx(raw, "fuzz")
    except DatasetError as err:
        assert str(err).startswith("fuzz: ")
    else:  # accepted input must be exactly header + data
        assert len(raw) == 4 + 4 * arr.ndim + arr.nbytes


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), gz=st.booleans())
def test_write_idx_read_idx_roundtrip(tmp_path, shape, gz):
    arr = np.arange(np.prod(shape), dtype=np.int32).reshape(shape) - 3
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(arr, path)
    np.testing.assert_array_equal(read_idx(path), arr)
    raw = path.read_bytes()
    assert (gzip.decompress(raw) if gz else raw) == idx_bytes(arr, 0x0C)


# ---------------------------------------------------------------------------------------------- UCI HAR


def write_har(root: Path, n_train=7, n_test=4, seed=0, labels_file=True) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        sig_dir = root / split / "Inertial Signals"
        sig_dir.mkdir(parents=True)
        x = rng.standard_normal((n, 9, 128)).astype(np.float32)
        for ch, sig in enumerate(SIGNALS):
            lines = ["  " + " ".join(f"{v: .7e}" for v in x[i, ch]) for i in range(n)]
            (sig_dir / f"{sig}_{split}.txt").write_text("\n".join(lines) + "\n")
        y = rng.integers(1, 7, n)
        (root / split / f"y_{split}.txt").write_text("".join(f"{v}\n" for v in y))
        out[split] = (x, y)
    if labels_file:
        names = ["WALK", "UP", "DOWN", "SIT", "STAND", "LIE"]
        (root / "activity_labels.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    return out


def test_har_loads_uci_layout(tmp_path):
    root = tmp_path / "UCI HAR Dataset"
    ref = write_har(root)
    ds = load_dataset("har", root)
    assert ds.x_train.shape == (7, 9, 128) and ds.x_test.shape == (4, 9, 128)
    assert ds.input_shape == (9, 128) and ds.num_classes == 6
    np.testing.assert_allclose(ds.x_train, ref["train"][0], rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, ref["test"][1] - 1)
    assert ds.class_names == ["WALK", "UP", "DOWN", "SIT", "STAND", "LIE"]
    # the parent folder works too, and without activity_labels.txt the standard names are used
    (root / "activity_labels.txt").unlink()
    ds2 = load_dataset("har", tmp_path)
    assert ds2.class_names[0] == "WALKING" and len(ds2.class_names) == 6
    np.testing.assert_array_equal(ds2.x_test, ds.x_test)


def _edit_line(path: Path, line_no: int, fn) -> None:
    lines = path.read_text().splitlines()
    lines[line_no - 1] = fn(lines[line_no - 1])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "corrupt, message",
    [
        ("missing-signal", r"body_gyro_y_train.txt: file not found"),
        ("columns", r"total_acc_z_test.txt, line 3: 127 values, expected 128"),
        ("token", r"body_acc_x_train.txt, line 2: 'abc' is not a number"),
        ("nan", r"body_acc_y_train.txt, line 5: NaN or infinite"),
        ("rows", r"body_acc_z_train.txt: 6 windows but .*body_acc_x_train.txt has 7"),
        ("label-count", r"y_test.txt: 3 labels but .* has 4 windows"),
        ("label-range", r"y_train.txt, line 4: label 7 is not an activity 1..6"),
        ("no-test", r"no test/ folder"),
        ("empty", r"y_train.txt: file is empty"),
        ("activity", r"activity_labels.txt, line 2: expected '<number> <NAME>'"),
    ],
)
def test_har_corruptions(tmp_path, corrupt, message):
    write_har(tmp_path)
    tr, te = tmp_path / "train", tmp_path / "test"
    sig = tr / "Inertial Signals"
    if corrupt == "missing-signal":
        (sig / "body_gyro_y_train.txt").unlink()
    elif corrupt == "columns":
        _edit_line(te / "Inertial Signals" / "total_acc_z_test.txt", 3, lambda s: s.rsplit(" ", 1)[0])
    elif corrupt == "token":
        _edit_line(sig / "body_acc_x_train.txt", 2, lambda s: s.replace(s.split()[5], "abc", 1))
    elif corrupt == "nan":
        _edit_line(sig / "body_acc_y_train.txt", 5, lambda s: s.replace(s.split()[0], "nan", 1))
    elif corrupt == "rows":
        p = sig / "body_acc_z_train.txt"
        p.write_text("\n".join(p.read_text().splitlines()[:6]) + "\n")
    elif corrupt == "label-count":
        p = te / "y_test.txt"
        p.write_text("\n".join(p.read_text().splitlines()[:3]) + "\n")
    elif corrupt == "label-range":
        _edit_line(tr / "y_train.txt", 4, lambda s: "7")
    elif corrupt == "no-test":
        import shutil

        shutil.rmtree(te)
    elif corrupt == "empty":
        (tr / "y_train.txt").write_text("\n\n")
    elif corrupt == "activity":
        _edit_line(tmp_path / "activity_labels.txt", 2, lambda s: "two UP")
    with pytest.raises(DatasetError, match=message):
        load_dataset("har", tmp_path)


def test_har_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist.*UCI HAR Dataset"):
        load_dataset("har", tmp_path / "nothing")


# -------------------------------------------------------------------------------------------------- npz


def test_npz_loads_and_reshapes(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "d.npz"
    xtr, xte = rng.standard_normal((10, 3, 16)), rng.standard_normal((4, 3, 16))
    np.savez(p, x_train=xtr, y_train=np.arange(10) % 3, x_test=xte, y_test=np.array([0, 1, 2, 0]))
    ds = load_dataset("npz", p)
    assert ds.input_shape == (3, 16) and ds.num_classes == 3 and ds.name == "npz"
    np.testing.assert_allclose(ds.x_train, xtr.astype(np.float32))
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    # a path ending in .npz works as the name; tabular (N, F) becomes (N, 1, F); class_names fix K
    q = tmp_path / "tab.npz"
    names = np.array(["a", "b", "c", "d"])
    np.savez(
        q,
        x_train=xtr[:, 0],
        y_train=np.arange(10) % 2,
        x_test=xte[:, 0],
        y_test=[1, 0, 1, 0],
        class_names=names,
    )
    ds2 = load_dataset(str(q))
    assert ds2.input_shape == (1, 16) and ds2.num_classes == 4 and ds2.class_names == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"y_train": None}, r"missing array\(s\) y_train"),
        ({"x_test": None, "y_test": None}, r"missing array\(s\) x_test, y_test"),
        ({"y_train": np.zeros(9)}, "x_train has 10 samples but y_train has 9 labels"),
        ({"x_test": np.zeros((4, 3, 15))}, r"train samples have shape \(3, 16\) but test samples \(3, 15\)"),
        ({"x_train": np.full((10, 3, 16), np.nan)}, "x_train contains NaN or infinite values"),
        ({"y_test": np.array([0.5, 1, 2, 0])}, "y_test must hold integer class indices"),
        ({"y_test": np.array([-1, 1, 2, 0])}, "negative labels"),
        ({"y_train": np.zeros((10, 2))}, "one label per sample"),
        ({"x_train": np.array(["a"] * 10)}, "x_train has dtype <U1"),
        ({"x_train": np.zeros(10)}, "must have a sample axis"),
        ({"class_names": np.array(["a", "b"])}, "label 2 is out of range for 2 classes"),
        ({"x_train": np.zeros((0, 3, 16)), "y_train": np.zeros(0)}, "the train split is empty"),
        ({"x_test": np.zeros((0, 3, 16)), "y_test": np.zeros(0)}, "the test split is empty"),
        # a stray label in a 3-class file would silently make it an 8-class problem
        (
            {"y_train": np.array([0, 1, 2, 0, 1, 2, 0, 1, 7, 2])},
            r"label\(s\) 3..6 never occur.*labels above the gap: 7 \(1 train / 0 test sample\(s\)\)",
        ),
        # a test label the training split never shows would add a class
        (
            {"y_train": np.arange(10) % 2, "y_test": np.array([0, 1, 2, 2])},
            r"y_test has label\(s\) that never occur in y_train: 2 \(2 test sample\(s\)\)",
        ),
        (
            {"x_train": np.ones((10, 3, 16)) * 1e30},
            r"480 value\(s\) beyond ±1e\+15 \(first 1e\+30 at sample 0",
        ),
        ({"x_test": np.full((4, 3, 16), -1e300)}, "x_test has 192 value"),  # not even a float32
        ({"y_train": np.array(["0"] * 10)}, "y_train has dtype <U1"),
        ({"x_train": np.zeros((10, 0)), "x_test": np.zeros((4, 0))}, "samples have no features"),
    ],
)
def test_npz_errors(tmp_path, arrays, message):
    rng = np.random.default_rng(0)
    base = {
        "x_train": rng.standard_normal((10, 3, 16)),
        "y_train": np.arange(10) % 3,
        "x_test": rng.standard_normal((4, 3, 16)),
        "y_test": np.array([0, 1, 2, 0]),
    }
    base.update(arrays)
    p = tmp_path / "bad.npz"
    np.savez(p, **{k: v for k, v in base.items() if v is not None})
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset("npz", p)
    assert str(p) in str(err.value)


def test_npz_unreadable(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"this is not a zip")
    with pytest.raises(
        DatasetError, match=r"junk.npz: not a .npz \(zip\) file; save the splits with numpy.savez"
    ):
        load_dataset("npz", p)
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    with pytest.raises(DatasetError, match="one.npz: a single .npy array"):
        load_dataset("npz", tmp_path / "one.npz")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 and then nothing useful")
    with pytest.raises(DatasetError, match="cut.npz: not a readable .npz"):
        load_dataset("npz", tmp_path / "cut.npz")
    q = tmp_path / "obj.npz"
    np.savez(q, x_train=np.array([{}, {}], dtype=object), y_train=[0, 1], x_test=np.zeros((1, 2)), y_test=[0])
    with pytest.raises(DatasetError, match="obj.npz: cannot load without pickle"):
        load_dataset("npz", q)
    with pytest.raises(DatasetError, match="missing.npz: file not found"):
        load_dataset("npz", tmp_path / "missing.npz")
    with pytest.raises(DatasetError, match="is a folder"):
        load_dataset("npz", tmp_path)


# -------------------------------------------------------------------------------------------------- CLI


def test_datasets_verb_lists_and_describes(tmp_path, capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "mnist", "har", "npz"):
        assert name in out
    p = tmp_path / "d.npz"
    np.savez(
        p, x_train=np.zeros((6, 1, 4)), y_train=[0, 1, 1, 2, 2, 2], x_test=np.ones((2, 1, 4)), y_test=[2, 0]
    )
    assert main(["datasets", "info", "npz", "--data", str(p)]) == 0
    out = capsys.readouterr().out
    assert "per class [1, 2, 3]" in out and "per class [1, 0, 1]" in out and "value range  [0, 1]" in out
    assert datasets("npz", p)["train_samples"] == 6


def test_datasets_verb_errors_are_one_line(tmp_path, capsys):
    assert main(["datasets", "info", "mnist", "--data", str(tmp_path / "x")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err
    assert main(["datasets", "info"]) == 2
    assert "needs a dataset name" in capsys.readouterr().err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(
        st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=3, max_size=3),
        min_size=1,
        max_size=6,
    ),
    sep=st.sampled_from([" ", "  ", "\t", " \t "]),
)
def test_har_text_matrix_roundtrip_property(tmp_path, values, sep):
    from batteryless.datasets.har import read_matrix

    p = tmp_path / "m.txt"
    p.write_text("".join(sep + sep.join(repr(v) for v in row) + "\n" for row in values) + "\n\n")
    np.testing.assert_array_equal(read_matrix(p, 3), np.array(values, dtype=np.float64))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet="0123456789.-e naN\t\n+x", max_size=60))
def test_har_text_matrix_garbage_gives_dataset_error(tmp_path, text):
    from batteryless.datasets.har import read_matrix

    p = tmp_path / "g.txt"
    p.write_text(text)
    try:
        m = read_matrix(p, 2)
    except DatasetError as err:
        assert str(err).startswith(str(p))
    else:
        assert m.shape[1] == 2 and np.all(np.isfinite(m))


def test_rare_or_undeclared_classes_warn_with_counts(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 5))
    y = np.r_[np.zeros(100), np.ones(99), [2]].astype(int)  # one stray "2" among 199 zeros and ones
    p = tmp_path / "d.npz"
    np.savez(p, x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    ds = load_dataset(p)
    assert ds.num_classes == 3
    assert any("very few training samples" in w and "label 2: 1 of 200" in w for w in ds.warnings)
    # declared classes (class_names) that never occur are a warning, not an error
    np.savez(p, x_train=x, y_train=y, x_test=x[:10], y_test=y[:10], class_names=np.array(list("abcd")))
    ds = load_dataset(p)
    assert ds.num_classes == 4 and any("label(s) 3 never occur" in w for w in ds.warnings)
    assert ds.summary()["warnings"] == ds.warnings


def test_in_memory_arrays_and_dataset_objects(tmp_path):
    from batteryless.datasets import Dataset, from_arrays

    rng = np.random.default_rng(0)
    xtr, xte = rng.standard_normal((30, 4)), rng.standard_normal((6, 4))
    ytr, yte = np.arange(30) % 3, np.arange(6) % 3
    ds = load_dataset({"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte})
    # the same arrays through a file give the same dataset
    p = tmp_path / "same.npz"
    np.savez(p, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    via_file = load_dataset(p)
    assert ds.input_shape == via_file.input_shape == (1, 4) and ds.num_classes == 3
    np.testing.assert_array_equal(ds.x_train, via_file.x_train)
    with pytest.raises(DatasetError, match="in-memory dataset: missing y_test"):
        load_dataset({"x_train": xtr, "y_train": ytr, "x_test": xte})
    with pytest.raises(DatasetError, match="arrays: x_train contains NaN"):
        from_arrays(np.full((30, 4), np.nan), ytr, xte, yte)
    # a hand-built Dataset is checked like a loaded one
    good = Dataset(
        "mine", xtr[:, None].astype(np.float32), ytr, xte[:, None].astype(np.float32), yte, (1, 4), 3
    )
    assert load_dataset(good) is good
    bad = Dataset("mine", xtr[:, None] * 1e30, ytr, xte[:, None], yte, (1, 4), 3)
    with pytest.raises(DatasetError, match="dataset 'mine': x_train has 120 value"):
        load_dataset(bad)
    wrong_shape = Dataset("mine", xtr[:, None], ytr, xte[:, None], yte, (4,), 3)
    with pytest.raises(DatasetError, match=r"input_shape is \(4,\) but x_train samples are \(1, 4\)"):
        load_dataset(wrong_shape)
    with pytest.raises(DatasetError, match="not int"):
        load_dataset(3)


def test_datasets_info_prints_label_warnings(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 5))
    y = np.r_[np.zeros(100), np.ones(99), [2]].astype(int)
    p = tmp_path / "rare.npz"
    np.savez(p, x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    assert main(["datasets", "info", "npz", "--data", str(p)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "label 2: 1 of 200" in err
