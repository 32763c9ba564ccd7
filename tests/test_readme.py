"""The README's "Using it" walk-through runs exactly as written, in a fresh folder, with the BSL emulator
standing in for the board (tests/readme_runner.py extracts and runs it). If this fails, the README (or the
tool) is wrong for a new user: fix whichever is, never the test's copy of the lines (there is none)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readme_runner import (
    ROOT,
    Block,
    Command,
    fenced_blocks,
    prepare_folder,
    run_python,
    run_shell,
    section,
    shell_commands,
)

README = ROOT / "README.md"
TOOLS = ("cmake", "clang", "ld.lld-14", "arm-none-eabi-gcc", "qemu-system-arm", "mspdebug")


def _using_it() -> tuple[list[Block], list[Block]]:
    text, first = section(README.read_text(), "## Using it")
    blocks = fenced_blocks(text, first)
    return [b for b in blocks if b.lang in ("sh", "bash", "shell")], [b for b in blocks if b.lang == "python"]


# --- the extractor itself, on hand-written pages ------------------------------------------------------------
def test_extractor_joins_continuations_keeps_comments_and_line_numbers():
    page = (
        "# T\n\n## Using it\n\ntext\n\n```sh\n# only a comment\n"
        "a --x 1 \\\n   --y 2   # why\n\nb &  # bg\n```\n"
    )
    text, first = section(page, "## Using it")
    (block,) = fenced_blocks(text, first)
    assert block.lang == "sh" and block.line == 8
    cmds = shell_commands(block)
    assert cmds == [Command(9, "a --x 1 \\\n   --y 2   # why"), Command(12, "b &  # bg")]
    assert [c.background for c in cmds] == [False, True]
    assert not Command(1, "a && b").background and Command(1, "a '#x' &").background


def test_extractor_refuses_prompts_and_open_continuations():
    with pytest.raises(AssertionError, match="line 3: drop the '\\$ ' prompt"):
        shell_commands(Block("sh", 3, "$ batteryless --help"))
    with pytest.raises(AssertionError, match="ends inside a"):
        shell_commands(Block("sh", 1, "a \\"))


def test_runner_names_the_failing_line_with_its_output(tmp_path):
    block = Block("sh", 20, "x=hello\necho $x > f.txt\ncat f.txt missing.txt  # fails\necho never > g.txt")
    with pytest.raises(AssertionError) as info:
        run_shell(shell_commands(block), tmp_path, "PAGE.md")
    msg = str(info.value)
    assert msg.startswith("PAGE.md:22: exit code 1:") and "cat f.txt missing.txt" in msg
    assert "hello" in msg and "missing.txt" in msg.split("--- output ---")[1]
    assert (tmp_path / "f.txt").read_text() == "hello\n" and not (tmp_path / "g.txt").exists()


def test_runner_background_jobs_and_kill(tmp_path):
    block = Block("sh", 1, "sleep 30 &\necho started\nkill %1\nsleep 60 &   # left running: ended at exit")
    outs = run_shell(shell_commands(block), tmp_path, "PAGE.md", timeout=20)
    assert outs[1] == "started\n"


def test_runner_times_out_naming_the_line(tmp_path):
    with pytest.raises(AssertionError, match=r"PAGE.md:2: still running after 1 s:\nsleep 30"):
        run_shell(shell_commands(Block("sh", 1, "true\nsleep 30")), tmp_path, "PAGE.md", timeout=1)


# --- the README ------------------------------------------------------------------------------------------
def test_readme_using_it_is_shaped_as_the_test_expects():
    shells, pythons = _using_it()
    assert len(shells) == 1 and len(pythons) == 1
    cmds = shell_commands(shells[0])
    assert cmds[0].text.startswith(". .venv/bin/activate")
    # the MSP430 image the walk-through flashes is built by the walk-through, from the board's default
    flash = next(c for c in cmds if c.text.startswith("batteryless flash"))
    image = flash.text.split()[2]
    folder = str(Path(image).parent)
    assert any(c.text.startswith("batteryless build") and f"--out {folder}" in c.text for c in cmds), image
    # the port is one a user can copy: made by an earlier line, not a /dev/pts/N to fill in
    assert not re.search(r"/dev/pts/[A-Z]\b", shells[0].text)


@pytest.mark.slow
@pytest.mark.firmware
def test_readme_using_it_runs_as_written(tmp_path):
    """Every line of the block, in one shell, in a fresh folder (the venv linked in as .venv), then the
    Python snippet; fails naming the README line that failed and its output."""
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        pytest.skip(f"tools missing (scripts/setup.sh installs them): {', '.join(missing)}")
    shells, pythons = _using_it()
    prepare_folder(tmp_path)
    cmds = shell_commands(shells[0])
    outs = run_shell(cmds, tmp_path, "README.md", timeout=900)
    # what the lines claim, checked from their outputs and files (not only their exit codes)
    ran = list(zip(cmds, outs, strict=True))

    def output(prefix: str, board: str = "") -> str:
        return next(o for c, o in ran if c.text.startswith(prefix) and board in c.text)

    # both firmware runs print what the integer reference (the numeric spec) predicts for those samples
    import numpy as np

    from batteryless.artifact import load_artifact
    from batteryless.datasets import load_dataset
    from batteryless.spec import integer_inference

    x = load_dataset("digits").x_test
    spec = integer_inference(load_artifact(tmp_path / "model.bl"), x[:20]).argmax(axis=1)
    for board in ("mps2-an386", "msp430fr5994"):
        printed = [
            int(v)
            for v in re.findall(r"^sample \d+: predicted (\d+)", output("batteryless run", board), re.M)
        ]
        assert printed and np.array_equal(printed, spec[: len(printed)]), (board, printed, spec)
    flashed = output("batteryless flash")
    assert re.search(r"flashed \d+ bytes .* verified: yes", flashed), flashed
    assert "stand-in" not in flashed and "warning: backend" not in output("batteryless codegen", "msp430")
    out = run_python(pythons[0], tmp_path, "README.md", timeout=600)
    assert (tmp_path / "cnn.bl").is_file() and re.fullmatch(r"\[(\d ?)+\]\n", out), out


# --- property: what the extractor gives back is what was written --------------------------------------------

_word = st.text(alphabet="abcxyz019-_./=,:", min_size=1, max_size=8)
_quoted = _word.map(lambda w: f"'{w} #not a comment'")
_command = st.tuples(
    st.lists(st.one_of(_word, _quoted), min_size=1, max_size=6),  # words
    st.lists(st.integers(1, 5), max_size=2),  # where to break the line with a '\' continuation
    st.one_of(st.none(), _word),  # trailing comment
    st.booleans(),  # background job
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_command, min_size=1, max_size=6), st.lists(st.sampled_from(["", "# note", "   "]), max_size=3)
)
def test_extractor_gives_back_each_command_as_written(commands, fillers):
    lines: list[str] = []
    expected: list[tuple[int, str, bool]] = []
    for k, (words, breaks, comment, background) in enumerate(commands):
        if k < len(fillers):
            lines.append(fillers[k])  # blank and comment-only lines between commands are skipped
        pieces, prev = [], 0
        for b in sorted({min(b, len(words) - 1) for b in breaks if 0 < b < len(words)}):
            pieces.append(" ".join(words[prev:b]) + " \\")
            prev = b
        last = " ".join(words[prev:]) + (" &" if background else "") + (f"  # {comment}" if comment else "")
        pieces.append(("    " if pieces else "") + last)
        expected.append((len(lines) + 1, "\n".join(pieces), background))
        lines += pieces
    got = shell_commands(Block("sh", 1, "\n".join(lines)))
    assert [(c.line, c.text, c.background) for c in got] == expected
