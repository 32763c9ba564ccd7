"""The Python tree stays lint-clean and formatted (ruff, configured in pyproject.toml): the same check a
reviewer would run, so a long line or an unsorted import fails here, not in review."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ["host", "benchmarks", "tests"]


def _ruff() -> list[str]:
    try:
        import ruff  # noqa: F401
    except ImportError:
        exe = shutil.which("ruff")
        if exe is None:
            pytest.skip("ruff is not installed (pip install -e '.[test]')")
        return [exe]
    return [sys.executable, "-m", "ruff"]


def test_ruff_check_is_clean():
    r = subprocess.run([*_ruff(), "check", *TREES], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_ruff_format_is_clean():
    r = subprocess.run([*_ruff(), "format", "--check", *TREES], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
