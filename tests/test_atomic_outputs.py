"""Every writer of a user-visible output goes through paths.atomic_path: the file gets the permissions a
plain open() would give (0666 minus the umask, or those of the file it replaces) — mkstemp's 0600 must not
leak out — and a writer that fails leaves the old file and no temporary behind."""

import os
import stat

import pytest

from batteryless.emulate.generators import constant
from batteryless.emulate.report import write_json
from batteryless.emulate.traces import write_csv
from batteryless.flash.images import from_segments, write_image
from batteryless.paths import atomic_path, atomic_write


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


WRITERS = {
    "atomic_write": lambda p: atomic_write(p, b"data"),
    "trace csv": lambda p: write_csv(constant(1e-3, duration_s=2.0, step_s=1.0), p),
    "report json": lambda p: write_json({"a": 1}, p),
    "ti-txt image": lambda p: write_image(from_segments([(0x4400, b"\x01\x02")]), p, "ti-txt"),
    "intel hex image": lambda p: write_image(from_segments([(0x4400, b"\x01\x02")]), p, "ihex"),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_new_output_follows_the_umask(name, tmp_path, umask_027):
    p = tmp_path / "out.file"
    WRITERS[name](p)
    assert stat.S_IMODE(p.stat().st_mode) == 0o640  # 0666 & ~0027, not mkstemp's 0600
    assert sorted(os.listdir(tmp_path)) == ["out.file"]


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_overwritten_output_keeps_its_mode(name, tmp_path, umask_027):
    p = tmp_path / "out.file"
    p.write_text("old")
    os.chmod(p, 0o604)
    WRITERS[name](p)
    assert stat.S_IMODE(p.stat().st_mode) == 0o604
    assert p.read_bytes() != b"old"


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "keep.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.txt"]
