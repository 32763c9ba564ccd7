"""The .bl artifact: round trip, atomic writes, and refusal of truncated, tampered and wrong-version files."""

import io
import json
import zipfile

import numpy as np
import pytest

from batteryless import spec
from batteryless.artifact import VERSION, _sha, load_artifact, save_artifact
from batteryless.errors import ArtifactError
from test_spec import _small_artifact


@pytest.fixture(scope="module")
def art_and_x():
    return _small_artifact("cnn2d")


def _rewrite(src, dst, edit_manifest=None, edit_tensors=None, fix_integrity=True):
    with zipfile.ZipFile(src) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    if edit_manifest:
        m = json.loads(files["manifest.json"])
        edit_manifest(m)
        files["manifest.json"] = json.dumps(m).encode()
    if edit_tensors:
        with np.load(io.BytesIO(files["tensors.npz"])) as npz:
            t = {k: npz[k] for k in npz.files}
        edit_tensors(t)
        buf = io.BytesIO()
        np.savez(buf, **t)
        files["tensors.npz"] = buf.getvalue()
    if fix_integrity:
        files["integrity.json"] = json.dumps(
            {"manifest.json": _sha(files["manifest.json"]), "tensors.npz": _sha(files["tensors.npz"])}
        ).encode()
    with zipfile.ZipFile(dst, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data)


def test_round_trip_is_exact_and_deterministic(tmp_path, art_and_x):
    art, x = art_and_x
    p1, p2 = tmp_path / "a.bl", tmp_path / "b.bl"
    save_artifact(art, p1)
    save_artifact(art, p2)
    assert p1.read_bytes() == p2.read_bytes()
    back = load_artifact(p1)
    assert back.layers == art.layers and back.input_shape == art.input_shape
    assert set(back.tensors) == set(art.tensors)
    for k in art.tensors:
        assert np.array_equal(back.tensors[k], art.tensors[k])
        assert back.tensors[k].dtype == art.tensors[k].dtype
    assert np.array_equal(spec.integer_inference(back, x), spec.integer_inference(art, x))
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_file_is_refused(tmp_path, art_and_x):
    good = save_artifact(art_and_x[0], tmp_path / "a.bl")
    data = good.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        bad = tmp_path / f"cut{cut}.bl"
        bad.write_bytes(data[:cut])
        with pytest.raises(ArtifactError, match="corrupt|truncated|not a batteryless"):
            load_artifact(bad)


def test_tampered_content_is_refused(tmp_path, art_and_x):
    good = save_artifact(art_and_x[0], tmp_path / "a.bl")
    bad = tmp_path / "t.bl"
    _rewrite(good, bad, edit_manifest=lambda m: m["layers"][0].update(out_frac=3), fix_integrity=False)
    with pytest.raises(ArtifactError, match="manifest.json does not match its recorded SHA-256"):
        load_artifact(bad)

    def flip(t):
        t["fc1.weight"] = t["fc1.weight"].copy()
        t["fc1.weight"].flat[0] ^= 1

    _rewrite(good, bad, edit_tensors=flip, fix_integrity=False)
    with pytest.raises(ArtifactError, match="tensors.npz does not match"):
        load_artifact(bad)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda m: m.update(version=VERSION + 1), "newer than this tool reads"),
        (lambda m: m.update(version=0), "not supported"),
        (lambda m: m.update(format="something-else"), "'format'"),
        (lambda m: m["layers"][0].update(op="softmax"), "unknown op 'softmax'"),
        (lambda m: m["layers"][0].pop("weight"), "missing field 'weight'"),
        (lambda m: m["layers"][0].update(block=3), "not a power of two"),
        (lambda m: m["layers"][0].update(weight_bits=12), "'weight_bits' must be 8 or 16"),
        (lambda m: m["layers"][0].update(out_frac=99), "'out_frac' = 99 is outside"),
        (lambda m: m.update(num_classes=7), "num_classes is 7"),
        (lambda m: m["layers"][2].update(kernel_size=[5, 5]), "expects 64 features, gets shape \\(16,\\)"),
        (lambda m: m["normalisation"].update(std=0), "normalisation.std"),
    ],
)
def test_invalid_manifests_name_the_field(tmp_path, art_and_x, edit, message):
    good = save_artifact(art_and_x[0], tmp_path / "a.bl")
    bad = tmp_path / "bad.bl"
    _rewrite(good, bad, edit_manifest=edit)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(bad)


def test_wrong_tensor_shape_and_range(tmp_path, art_and_x):
    good = save_artifact(art_and_x[0], tmp_path / "a.bl")
    bad = tmp_path / "bad.bl"
    _rewrite(good, bad, edit_tensors=lambda t: t.update({"fc1.weight": t["fc1.weight"][:1]}))
    with pytest.raises(ArtifactError, match="tensor 'fc1.weight' has shape"):
        load_artifact(bad)
    _rewrite(good, bad, edit_tensors=lambda t: t.update({"fc1.spectra": t["fc1.spectra"].astype(np.float32)}))
    with pytest.raises(ArtifactError, match="must be integer"):
        load_artifact(bad)


def test_failed_write_leaves_existing_file_untouched(tmp_path, art_and_x, monkeypatch):
    art = art_and_x[0]
    target = save_artifact(art, tmp_path / "a.bl")
    before = target.read_bytes()
    import batteryless.artifact as mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(mod.os, "replace", boom)
    with pytest.raises(OSError):
        save_artifact(art, target)
    assert target.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_invalid_artifact_is_not_written(tmp_path, art_and_x):
    import copy

    art = copy.deepcopy(art_and_x[0])
    art.num_classes = 3
    with pytest.raises(ArtifactError):
        save_artifact(art, tmp_path / "x.bl")
    assert not (tmp_path / "x.bl").exists()


def test_missing_file_and_not_a_zip(tmp_path):
    with pytest.raises(ArtifactError, match="no such artifact"):
        load_artifact(tmp_path / "nope.bl")
    (tmp_path / "text.bl").write_text("hello")
    with pytest.raises(ArtifactError, match="not a readable zip"):
        load_artifact(tmp_path / "text.bl")
