"""Input normalisation (none / scalar / per-channel / per-feature / given) in the artifact and the spec;
artifact format migration and file modes."""

import copy
import json
import math
import os
import stat
import zipfile

import numpy as np
import pytest

from batteryless import spec
from batteryless.artifact import VERSION, load_artifact, save_artifact
from batteryless.errors import ArtifactError, UsageError
from batteryless.normalisation import fit_normalisation, given_normalisation
from test_artifact import _rewrite
from test_spec import _small_artifact


@pytest.fixture(scope="module")
def cnn1d():
    return _small_artifact("cnn1d")  # input (4, 32): 4 channels


def _quantize_by_hand(x, mean_of, std_of, frac):
    """The numeric-spec sentence, one element at a time: sat16(floor((x − mean)/std · 2^frac + 0.5))."""
    out = np.empty(x.shape, dtype=np.int64)
    for idx in np.ndindex(x.shape):
        v = (float(x[idx]) - mean_of(idx)) / std_of(idx)
        out[idx] = min(32767, max(-32768, math.floor(v * 2.0**frac + 0.5)))
    return out


@pytest.mark.parametrize("kind", ["none", "scalar", "per-channel", "per-feature"])
def test_quantize_input_applies_each_kind_as_the_spec_text_says(cnn1d, kind):
    art, x = cnn1d
    art = copy.deepcopy(art)
    rng = np.random.default_rng(1)
    # channels on very different scales, so the kinds give different inputs
    train = rng.normal(size=(50, 4, 32)) * np.array([1, 10, 100, 0.1])[None, :, None] + 3
    art.normalisation = fit_normalisation(kind, train)
    xs = x[:3] * 5
    n = art.normalisation
    if kind in ("none", "scalar"):

        def mean_of(i):
            return n["mean"]

        def std_of(i):
            return n["std"]
    elif kind == "per-channel":

        def mean_of(i):
            return n["mean"][i[1]]

        def std_of(i):
            return n["std"][i[1]]
    else:

        def mean_of(i):
            return n["mean"][i[1] * 32 + i[2]]

        def std_of(i):
            return n["std"][i[1] * 32 + i[2]]

    want = _quantize_by_hand(xs, mean_of, std_of, art.input_frac)
    assert np.array_equal(spec.quantize_input(art, xs), want)
    # the statistics are those of the training split (independently: numpy on the other axes)
    if kind == "per-channel":
        assert np.allclose(n["mean"], train.transpose(1, 0, 2).reshape(4, -1).mean(1))
    if kind == "per-feature":
        assert np.allclose(n["std"], train.reshape(50, -1).std(0))


def test_kinds_round_trip_through_the_file(tmp_path, cnn1d):
    art, x = cnn1d
    train = np.random.default_rng(2).normal(size=(20, 4, 32)) * 7 + 1
    for kind in ("none", "scalar", "per-channel", "per-feature"):
        a = copy.deepcopy(art)
        a.normalisation = fit_normalisation(kind, train)
        back = load_artifact(save_artifact(a, tmp_path / f"{kind}.bl"))
        assert back.normalisation == a.normalisation
        assert np.array_equal(spec.integer_inference(back, x), spec.integer_inference(a, x))


def test_constant_feature_gets_std_one():
    train = np.zeros((10, 1, 3))
    train[:, 0, 1] = np.arange(10)
    n = fit_normalisation("per-feature", train)
    assert n["std"][0] == 1.0 and n["std"][2] == 1.0 and n["std"][1] > 0


def test_given_arrays_take_one_of_three_layouts():
    shape = (3, 4, 4)
    assert given_normalisation(0.5, 2.0, shape)["kind"] == "scalar"
    assert given_normalisation([1, 2, 3], [1, 1, 1], shape)["kind"] == "per-channel"
    per_ch = given_normalisation([1, 2, 3], 2.0, shape)  # one std for every channel
    assert per_ch["std"] == [2.0, 2.0, 2.0] and per_ch["source"] == "given"
    assert given_normalisation(np.zeros(shape), np.ones(shape), shape)["kind"] == "per-feature"
    with pytest.raises(UsageError, match="has 5 values; give 1, 3 .* or 48"):
        given_normalisation(np.zeros(5), 1.0, shape)
    with pytest.raises(UsageError, match="std > 0"):
        given_normalisation(0.0, [1, 0, 1], shape)
    with pytest.raises(UsageError, match="unknown normalisation 'zscore'"):
        fit_normalisation("zscore", np.zeros((2, 3, 4, 4)))


@pytest.mark.parametrize(
    "norm,message",
    [
        ({"kind": "per-channel", "mean": [0, 0], "std": [1, 1]}, "list of 4 finite numbers"),
        ({"kind": "per-feature", "mean": [0.0] * 128, "std": [1.0] * 127 + [0.0]}, "normalisation.std"),
        ({"kind": "scalar", "mean": [0.0], "std": 1.0}, "normalisation.mean"),
        ({"kind": "none", "mean": 2.0, "std": 1.0}, "must be 0 for kind 'none'"),
        ({"kind": "robust", "mean": 0.0, "std": 1.0}, "normalisation.kind"),
        ({"kind": "scalar", "source": "guess", "mean": 0.0, "std": 1.0}, "normalisation.source"),
    ],
)
def test_malformed_normalisation_is_refused_naming_the_field(tmp_path, cnn1d, norm, message):
    good = save_artifact(cnn1d[0], tmp_path / "a.bl")
    bad = tmp_path / "bad.bl"
    _rewrite(good, bad, edit_manifest=lambda m: m.update(normalisation=norm))
    with pytest.raises(ArtifactError, match=message):
        load_artifact(bad)


def test_version_1_artifact_loads_as_scalar_and_resaves_as_current(tmp_path, cnn1d):
    art, x = cnn1d
    a = copy.deepcopy(art)
    a.normalisation = {"mean": 0.25, "std": 2.0}
    good = save_artifact(a, tmp_path / "a.bl")
    old = tmp_path / "v1.bl"

    def to_v1(m):  # what the version-1 writer produced
        m["version"] = 1
        m["normalisation"] = {"mean": 0.25, "std": 2.0}

    _rewrite(good, old, edit_manifest=to_v1)
    back = load_artifact(old)
    assert back.normalisation == {"kind": "scalar", "source": "train", "mean": 0.25, "std": 2.0}
    assert np.array_equal(spec.integer_inference(back, x), spec.integer_inference(a, x))
    again = load_artifact(save_artifact(back, tmp_path / "again.bl"))
    with zipfile.ZipFile(tmp_path / "again.bl") as zf:
        assert json.loads(zf.read("manifest.json"))["version"] == VERSION >= 2
    assert again.normalisation == back.normalisation


def test_integer_inference_takes_a_plain_feature_table():
    import torch
    from torch import nn

    from batteryless.rad.quantize import to_artifact

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    x = np.random.default_rng(0).normal(size=(10, 1, 6)).astype(np.float32)
    art = to_artifact(
        net, x, weight_bits=16, input_shape=(1, 6), num_classes=2, normalisation={"mean": 0.0, "std": 1.0}
    )
    assert np.array_equal(spec.integer_inference(art, x[:, 0, :]), spec.integer_inference(art, x))
    with pytest.raises(ArtifactError, match=r"not a batch of the artifact's input shape \(1, 6\).*\(N, 6\)"):
        spec.integer_inference(art, x[:, 0, :5])


# --- file modes and reproducible bytes ----------------------------------------------------------------------
def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_new_artifact_honours_the_umask_and_overwrite_keeps_the_mode(tmp_path, cnn1d):
    art = cnn1d[0]
    old = os.umask(0o022)
    try:
        assert _mode(save_artifact(art, tmp_path / "a.bl")) == 0o644
        os.umask(0o077)
        assert _mode(save_artifact(art, tmp_path / "b.bl")) == 0o600
        os.umask(0o002)
        target = tmp_path / "c.bl"
        save_artifact(art, target)
        os.chmod(target, 0o640)
        save_artifact(art, target)  # overwrite: the file keeps the mode its owner gave it
        assert _mode(target) == 0o640
    finally:
        os.umask(old)
    assert not list(tmp_path.glob("*.tmp"))


def test_write_idx_honours_the_umask(tmp_path):
    from batteryless.datasets.idx import write_idx

    old = os.umask(0o022)
    try:
        write_idx(np.zeros((2, 3), np.uint8), tmp_path / "a.idx")
        assert _mode(tmp_path / "a.idx") == 0o644
    finally:
        os.umask(old)
