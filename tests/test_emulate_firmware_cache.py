"""emulate --firmware's image cache (batteryless.emulate.firmware_cache): the second call with the same
inputs reuses the built image, a changed artifact or option builds a new one, and a build that did not
finish is never taken for an image."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from batteryless.artifact import save_artifact
from batteryless.boards import load_board
from batteryless.emulate import firmware_cache
from batteryless.emulate.firmware_cache import cached_flex_image, image_key
from test_spec import _small_artifact

pytestmark = pytest.mark.firmware


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache of our own, and a count of the real builds made into it."""
    monkeypatch.setenv("BATTERYLESS_CACHE", str(tmp_path / "cache"))
    builds: list[str] = []
    real = firmware_cache.build_flex

    def counting(*args, **kwargs):
        builds.append(kwargs["policy"])
        return real(*args, **kwargs)

    monkeypatch.setattr(firmware_cache, "build_flex", counting)
    return builds


@pytest.fixture
def artifacts(tmp_path):
    art, _ = _small_artifact("mlp")
    changed = copy.deepcopy(art)
    fc = changed.weight_layers()[0]
    changed.tensors[fc["weight"]] = np.where(changed.tensors[fc["weight"]] == 0, 1, 0).astype(np.int16)
    return save_artifact(art, tmp_path / "a.bl"), save_artifact(changed, tmp_path / "b.bl")


def test_second_call_reuses_the_image_and_a_changed_artifact_rebuilds(cache, artifacts):
    board = load_board("host")
    first, built = cached_flex_image(artifacts[0], board, backend="ref", policy="flex", log_len=8)
    assert built and cache == ["flex"] and first.image.is_file()
    stamp = first.image.stat().st_mtime_ns
    again, built = cached_flex_image(artifacts[0], board, backend="ref", policy="flex", log_len=8)
    assert not built and cache == ["flex"]  # no second build
    assert again == first and again.image.stat().st_mtime_ns == stamp
    other, built = cached_flex_image(artifacts[1], board, backend="ref", policy="flex", log_len=8)
    assert built and other.image != first.image and other.image.read_bytes() != first.image.read_bytes()
    _, built = cached_flex_image(artifacts[0], board, backend="ref", policy="layer", log_len=8)
    assert built and cache == ["flex", "flex", "layer"]


def test_every_input_of_the_image_is_in_the_key(artifacts, tmp_path):
    board = load_board("host")
    base = dict(backend="ref", policy="flex", log_len=8)
    key = image_key(artifacts[0], board, **base)
    assert image_key(artifacts[0], board, **base) == key  # deterministic
    assert image_key(artifacts[1], board, **base) != key
    for change in ({"policy": "layer"}, {"log_len": 16}, {"backend": "lea"}):
        assert image_key(artifacts[0], board, **{**base, **change}) != key
    assert image_key(artifacts[0], load_board("mps2-an386"), **base) != key
    # a source file of the tree the build reads (here a copy of the tree's layout with one file changed)
    root = tmp_path / "tree"
    (root / "firmware").mkdir(parents=True)
    (root / "firmware" / "x.c").write_text("int x;\n")
    k1 = image_key(artifacts[0], board, root=root, **base)
    (root / "firmware" / "x.c").write_text("int x = 1;\n")
    assert image_key(artifacts[0], board, root=root, **base) != k1


def test_an_interrupted_build_is_redone(cache, artifacts, monkeypatch):
    board = load_board("host")
    real = firmware_cache.build_flex

    def dies(*args, **kwargs):
        real(*args, **kwargs)  # the build's files are there ...
        raise KeyboardInterrupt  # ... but the call never returned

    monkeypatch.setattr(firmware_cache, "build_flex", dies)
    with pytest.raises(KeyboardInterrupt):
        cached_flex_image(artifacts[0], board, backend="ref", policy="flex", log_len=8)
    monkeypatch.setattr(firmware_cache, "build_flex", real)
    img, built = cached_flex_image(artifacts[0], board, backend="ref", policy="flex", log_len=8)
    assert built and img.image.is_file()


def test_a_missing_or_malformed_artifact_is_a_one_line_error(cache, tmp_path):
    from batteryless.errors import ArtifactError

    bad = tmp_path / "bad.bl"
    bad.write_bytes(b"not an artifact")
    for path in (tmp_path / "missing.bl", bad):
        with pytest.raises(ArtifactError) as info:
            cached_flex_image(path, load_board("host"), backend="ref", policy="flex", log_len=8)
        assert "\n" not in str(info.value)
    assert cache == [] and not list((tmp_path / "cache").glob("emulate-fw-*"))


def test_old_images_are_evicted_but_not_the_one_in_use(cache, artifacts, monkeypatch):
    import fcntl
    import os

    board = load_board("host")
    monkeypatch.setenv("BATTERYLESS_CACHE_IMAGES", "2")
    first, _ = cached_flex_image(artifacts[0], board, backend="ref", policy="flex", log_len=8)
    second, _ = cached_flex_image(artifacts[1], board, backend="ref", policy="flex", log_len=8)

    def entry(img):  # the cache entry (a folder directly under the cache) that holds the image
        root = firmware_cache.cache_dir().resolve()
        return next(p for p in img.image.resolve().parents if p.parent == root)

    old = entry(first)
    os.utime(old / firmware_cache.MARKER, (1, 1))  # the least recently used of the two
    third, built = cached_flex_image(artifacts[0], board, backend="ref", policy="layer", log_len=8)
    assert built and not old.exists() and second.image.is_file() and third.image.is_file()
    # an entry whose lock another process holds survives eviction
    os.utime(entry(second) / firmware_cache.MARKER, (1, 1))
    with open(entry(second).with_suffix(".lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert firmware_cache.evict(keep=1) == []
    assert second.image.is_file()
    assert firmware_cache.evict(keep=1) == [entry(second)]
    monkeypatch.setenv("BATTERYLESS_CACHE_IMAGES", "zero")
    with pytest.raises(ValueError, match="BATTERYLESS_CACHE_IMAGES"):
        firmware_cache._keep()
