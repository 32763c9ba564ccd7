"""Helpers shared by the firmware build and the emulator runners: the helper cache, a lock file, tool
lookup and command execution with one-line errors."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from batteryless.boards import Board, load_board
from batteryless.errors import BuildError

ROOT = Path(__file__).resolve().parents[3]


def cache_dir() -> Path:
    """Where built helpers (QEMU plugin, CMSIS-DSP library) are cached: ``$BATTERYLESS_CACHE`` or
    ``build/cache`` in the repository."""
    env = os.environ.get("BATTERYLESS_CACHE")
    return Path(env) if env else ROOT / "build" / "cache"


class _FileLock:
    """An exclusive lock file (fcntl), so parallel test workers build a cached helper only once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> _FileLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "w")  # noqa: SIM115 - closed in __exit__
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _resolve_board(board: str | Path | Board) -> Board:
    return board if isinstance(board, Board) else load_board(board)


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if not path:
        raise BuildError(f"{name} not found on PATH: {hint}")
    return path


def _run_cmd(cmd: list[str], what: str, cwd: Path | None = None, timeout: float = 900) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise BuildError(f"{what}: {cmd[0]} not found (run scripts/setup.sh)") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{what}: timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        errors = [ln for ln in out if "error" in ln.lower() or "fatal" in ln.lower()] or out
        errors = list(dict.fromkeys(ln for ln in errors if not ln.startswith(("gmake", "make"))))
        detail = "\n".join(errors[-12:])
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{detail}")
    return proc.stdout + proc.stderr


def host_shared_library(
    cache_name: str, c_file: Path, key_files: Sequence[Path], what: str
) -> tuple[Path, bool]:
    """Build the host shared library ``lib<c_file stem>.so`` from ``c_file`` once per content of ``key_files``
    (the C file and what it includes), under the cache lock so parallel test workers build it once. Returns
    the library and whether this call built it."""
    key = hashlib.sha256(b"".join(Path(f).read_bytes() for f in key_files)).hexdigest()[:12]
    out = cache_dir() / f"{cache_name}-{key}" / f"lib{c_file.stem}.so"
    with _FileLock(out.parent.with_suffix(".lock")):
        if out.is_file():
            return out, False
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            raise BuildError(f"no host C compiler (cc/gcc/clang) to build {what}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".so.tmp")
        _run_cmd(
            [cc, "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-fvisibility=hidden", "-shared",
             "-o", str(tmp), str(c_file)],
            f"building {what}",
        )  # fmt: skip
        os.replace(tmp, out)
    return out, True
