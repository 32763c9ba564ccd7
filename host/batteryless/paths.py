"""Up-front checks of output paths: a long stage (compression, emulation, a build) checks where it will write
before it starts, so a typo in an output path costs a second, not the whole run and its result.
"""

from __future__ import annotations

import os
import tempfile
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
