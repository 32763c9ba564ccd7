"""Each docs page's main example runs exactly as written where that is cheap (tests/readme_runner.py, the
same extractor as the README's walk-through). Every page with a shell or Python block is either run here or
listed in NOT_RUN with the reason, so a new page gets a decision."""

from __future__ import annotations

import re
import shutil

import pytest

from readme_runner import (
    ROOT,
    Block,
    fenced_blocks,
    prepare_folder,
    run_python,
    run_shell,
    shell_commands,
)

DOCS = ROOT / "docs"

# page -> files the page says must be in the folder (made by the README's walk-through)
RUN: dict[str, tuple[str, ...]] = {
    "boards.md": (),
    "build.md": ("model.bl",),
    "eve.md": (),  # compress --modes 3 + evaluate: ~15 s
}
NOT_RUN: dict[str, str] = {
    "byo-model.md": "run by tests/test_docs_byo_model.py",
    "flash.md": "needs a board on /dev/ttyUSB0 and two terminals; the emulator path runs in the README test",
    "emulation.md": "its block has placeholders (build/schedule.json, my.csv); the README test runs emulate",
    "flex.md": "minutes of QEMU/mspdebug sweeps; flex-verify is tested in tests/test_flex_*.py",
    "datasets.md": "needs MNIST and UCI HAR files, which are not on this machine",
    "status.md": "runs the whole test suite",
    "msp430sim.md": "an API sketch with placeholders (x, img, stop_pc=...), not a runnable example",
}
RUNNABLE = ("sh", "bash", "shell", "console", "python")


def _main_example(page: str) -> Block:
    blocks = [b for b in fenced_blocks((DOCS / page).read_text()) if b.lang in RUNNABLE]
    assert blocks, f"docs/{page} has no shell or Python block"
    return blocks[0]


def test_every_page_with_an_example_has_a_decision():
    pages = {
        p.name for p in DOCS.glob("*.md") if any(b.lang in RUNNABLE for b in fenced_blocks(p.read_text()))
    }
    undecided = sorted(pages - set(RUN) - set(NOT_RUN))
    assert not undecided, f"docs {undecided}: add each to RUN, or to NOT_RUN with the reason, in {__file__}"
    assert set(RUN) & set(NOT_RUN) == set()
    assert set(RUN) | set(NOT_RUN) <= {p.name for p in DOCS.glob("*.md")}, "a listed page no longer exists"


@pytest.fixture(scope="module")
def walkthrough_model(tmp_path_factory):
    """A model.bl like the README's (digits MLP), compressed on a short schedule; pages use it as a file."""
    from batteryless.rad.compress import CompressConfig, compress
    from conftest import QUICK

    p = tmp_path_factory.mktemp("model") / "model.bl"
    compress("mlp", "digits", out=p, config=CompressConfig(**QUICK))
    return p


@pytest.mark.firmware
@pytest.mark.parametrize("page", sorted(RUN))
def test_docs_main_example_runs_as_written(page, tmp_path, request):
    if shutil.which("cmake") is None or shutil.which("mspdebug") is None:
        pytest.skip("cmake and mspdebug are needed (scripts/setup.sh)")
    prepare_folder(tmp_path)
    for name in RUN[page]:
        assert name == "model.bl", name
        shutil.copy(request.getfixturevalue("walkthrough_model"), tmp_path / name)
    block = _main_example(page)
    if block.lang == "python":
        run_python(block, tmp_path, f"docs/{page}", timeout=300)
        return
    # the page assumes the README's `. .venv/bin/activate`: run it first, then the block as written
    activate = shell_commands(Block("sh", 0, ". .venv/bin/activate"))
    outs = run_shell(activate + shell_commands(block), tmp_path, f"docs/{page}", timeout=900)
    if page == "build.md":
        assert re.search(r"accuracy \d\.\d+ on 5 samples", outs[-1]), outs[-1]
        assert not any("warning" in o for o in outs)
