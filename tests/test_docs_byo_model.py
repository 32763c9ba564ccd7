"""docs/byo-model.md: both examples run exactly as written, in a fresh folder (tests/readme_runner.py).

A Python block whose first line is ``# file: NAME`` is the page showing a file the user writes: it is saved
as NAME, not run. If this fails, the page (or the tool) is wrong for a user: fix whichever is.
"""

from __future__ import annotations

import json
import re

import pytest

from readme_runner import ROOT, fenced_blocks, prepare_folder, run_python, run_shell, section, shell_commands

PAGE = ROOT / "docs" / "byo-model.md"


def _run_section(heading: str, folder) -> list[str]:
    """Run the section's blocks in page order; return the outputs of its shell commands and Python runs."""
    text, first = section(PAGE.read_text(), heading)
    outputs: list[str] = []
    for block in fenced_blocks(text, first):
        head = block.text.splitlines()[0] if block.text else ""
        if block.lang == "python" and head.startswith("# file: "):
            (folder / head.removeprefix("# file: ").strip()).write_text(block.text + "\n")
        elif block.lang == "python":
            outputs.append(run_python(block, folder, "docs/byo-model.md", timeout=600))
        elif block.lang in ("sh", "bash", "shell"):
            outputs += run_shell(shell_commands(block), folder, "docs/byo-model.md", timeout=900)
    return outputs


@pytest.mark.slow
def test_tabular_example_reproduces_the_users_own_accuracy(tmp_path):
    prepare_folder(tmp_path)
    outputs = _run_section("## Example: a tabular model trained by you", tmp_path)
    mine = float(re.search(r"my own test accuracy: (\d\.\d+)", outputs[0]).group(1))
    report = json.loads((tmp_path / "cancer.json").read_text())
    test_samples = 114  # 20 % of 569, as the page splits it
    # the tool's dense float accuracy is the user's model on the tool's inputs: the page's claim is that it is
    # the accuracy the user measured (one sample of slack for float rounding at a near-tie, and the 3 digits)
    assert abs(report["accuracy"]["dense_float_accuracy"] - mine) <= 1 / test_samples + 5e-4
    assert report["model"] == "cancer_mlp"
    assert re.search(r"reference accuracy: \d+\.\d+%", outputs[-1])  # evaluate ran on the npz


@pytest.mark.slow
def test_image_example_trains_the_factory_model(tmp_path):
    from batteryless.artifact import load_artifact

    prepare_folder(tmp_path)
    outputs = _run_section("## Example: an image model built by your code", tmp_path)
    assert "model make (factory): trained here for 15 epochs" in outputs[-1]
    art = load_artifact(tmp_path / "digits_cnn.bl")
    assert art.provenance["model_source"] == "factory" and art.provenance["dense_training_epochs"] == 15
    names = [layer["name"] for layer in art.weight_layers()]
    assert art.input_shape == (1, 8, 8) and names == ["conv1", "fc1", "fc2"]  # BatchNorm folded into conv1


def test_page_is_linked_from_the_readme():
    assert "docs/byo-model.md" in (ROOT / "README.md").read_text()
