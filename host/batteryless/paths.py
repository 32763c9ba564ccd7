"""Up-front checks of output paths: a long stage (compression, emulation, a build) checks where it will write
before it starts, so a typo in an output path costs a second, not the whole run and its result.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from batteryless.errors import UsageError


def check_output_file(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Raise UsageError (one line) unless a file can be written at ``path``; return it as a Path.

    ``what`` names the file in the message ("the artifact", "the report"). Checked: the path is not a
    folder, its folder exists and is a folder, and a file can really be created there (a probe file is
    created and removed at once: permission bits alone say nothing for root or on a read-only mount). An
    existing file is left untouched; writers replace it atomically.
    """
    p = Path(path)
    if str(path).endswith(("/", os.sep)) or p.is_dir():
        raise UsageError(f"cannot write {what} to {p}: it is a folder; give a file name")
    folder = p.parent
    if not folder.exists():
        raise UsageError(f"cannot write {what} to {p}: folder {folder} does not exist")
    if not folder.is_dir():
        raise UsageError(f"cannot write {what} to {p}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=folder)
    except OSError as err:
        raise UsageError(
            f"cannot write {what} to {p}: folder {folder} is not writable ({err.strerror or err})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    if p.exists() and not os.access(p, os.W_OK):
        raise UsageError(f"cannot write {what} to {p}: the existing file is read-only")
    return p


def check_input_file(
    path: str | os.PathLike[str], what: str = "input file", error: type[Exception] = UsageError
) -> Path:
    """Raise ``error`` (one line naming the path and the problem) unless ``path`` is a readable file.

    Checked before any work starts: missing, a folder, not a regular file, not readable (opened, not just
    judged by its permission bits)."""
    p = Path(path)
    if not p.exists():
        raise error(f"{p}: {what} not found")
    if p.is_dir():
        raise error(f"{p}: {what} is a folder, not a file")
    if not p.is_file():
        raise error(f"{p}: {what} is not a regular file")
    try:
        with p.open("rb"):
            pass
    except OSError as err:
        raise error(f"{p}: {what} is not readable ({err.strerror or err})") from None
    return p


def check_output_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Raise UsageError unless ``path`` is (or can be created as) a writable folder; creates nothing."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"cannot write the {what} {p}: it is a file, not a folder")
    probe_in = p
    while not probe_in.exists():
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise UsageError(f"cannot write the {what} {p}: {probe_in} is a file, not a folder")
    if not os.access(probe_in, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write the {what} {p}: {probe_in} is not writable")
    return p


def replacement_mode(path: str | os.PathLike[str]) -> int:
    """The permission bits a file written at ``path`` by temp-file + rename should get: those of the file it
    replaces, or, for a new file, 0666 minus the umask — what a plain ``open()`` gives. (``mkstemp``'s
    temporary file is 0600 whatever the umask; renamed as it is, every output would be private.)"""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        pass
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` for the caller to write; on success it replaces ``path`` (permissions
    from :func:`replacement_mode`), on any error it is removed and ``path`` is left as it was. Beside, not in
    /tmp, so the final rename stays on one file system and is atomic."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    mode = replacement_mode(p)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix, dir=p.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(path)
