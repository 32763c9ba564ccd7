"""Firmware-level emulation on the project's MSP430FR5994 simulator (msp430sim): the flex continuous image
with the ``ref`` and the ``lea`` kernels, budgets and cuts in MCLK cycles, every finished inference checked
bit for bit against the numeric spec (msp430sim keeps every boot's output, unlike mspdebug), and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from batteryless.artifact import load_artifact
from batteryless.datasets import load_dataset
from batteryless.emulate.firmware import emulate_firmware, firmware_board, profile_image
from batteryless.emulate.generators import generate
from batteryless.emulate.traces import write_csv
from batteryless.errors import UsageError
from batteryless.flex import build_flex, model_input
from batteryless.spec import integer_inference

pytestmark = pytest.mark.firmware

SAMPLES = (0, 7)
BOARD = "msp430fr5994"
CAP_F = 22e-6  # small buffer: power-on periods of ~376 k MCLK cycles, a fraction of an inference
# the lea image's inference is ~66-70 k cycles (session 10's range calls; ~86 k in session 9, ~106-140 k in
# session 6): a smaller buffer keeps its periods (~57 k at 3 µF; 4 µF gave ~76 k, longer than an inference)
# shorter
CAP_F_BY_BACKEND = {"ref": CAP_F, "lea": 3e-6}


def short_trace():
    """3 s of on/off harvesting at 3 mW (the load is 7.5 mW): ~40 power failures with a 22 µF buffer."""
    return generate(
        "markov", power_w=3e-3, mean_on_s=0.4, mean_off_s=0.3, duration_s=3.0, step_s=0.01, seed=4
    )


@pytest.fixture(scope="module")
def mlp(artifacts):
    return artifacts["mlp"]  # digits MLP, k = 16, 16-bit weights (tests/conftest.py)


def spec_logits(artifact, paths) -> list[list[int]]:
    """The numeric spec's integer logits per sample (independent of the firmware and the simulator)."""
    x = load_dataset("digits").x_test[list(SAMPLES)]
    return integer_inference(load_artifact(artifact), x, paths).tolist()


@pytest.mark.parametrize("backend", ["ref", "lea"])
def test_firmware_level_on_msp430sim_every_inference_bit_exact(mlp, tmp_path, backend):
    board = firmware_board(BOARD, backend, "msp430sim")
    assert board.emulator["kind"] == "msp430sim"
    img = build_flex(mlp, board, tmp_path, continuous=True, log_len=8, backend=backend)
    samples = [model_input(mlp, s) for s in SAMPLES]
    prof = profile_image(img, board, samples)
    assert prof["unit"] == "mclk_cycles"
    assert prof["references"] == spec_logits(mlp, img.paths)
    doc = emulate_firmware(
        short_trace(),
        board,
        image=img,
        samples=samples,
        profile=prof,
        backend=backend,
        capacitance_f=CAP_F_BY_BACKEND[backend],
    )
    fw = doc["firmware"]
    assert fw["emulator"] == "msp430sim" and "MCLK cycles" in fw["budget_unit"]
    assert fw["power_failures"] >= 10
    # every period is shorter than an inference, so inferences finish only across power failures
    assert max(p["budget_cycles"] for p in fw["periods"]) < prof["per_inference"]
    # every finished inference printed its line in the boot that finished it and was checked, not only the
    # final NVM log (mspdebug's limit)
    assert fw["inferences"] > img.log_len == 8
    assert fw["all_correct"] and fw["wrong"] == [] and fw["checked"] == fw["inferences"] >= 3
    # budgets are cycles, cut after the instruction that crosses them: executed cycles follow the budgets
    # within one instruction's cycles (at most 6 on the MSP430X, plus a FRAM stall)
    for p in fw["periods"]:
        assert abs(p["executed_instructions"] - p["budget_instructions"]) <= 16
        assert p["budget_instructions"] == max(1, int(p["budget_cycles"]))  # a period runs >= 1 (firmware.py)
    assert sum(len(p["inferences"]) for p in fw["periods"]) == fw["inferences"]
    assert sum(p["commits"] for p in fw["periods"]) == fw["commits"]
    # the work the periods gave, in inferences, bounds what finished (the first boot's start-up aside)
    total = sum(p["executed_instructions"] for p in fw["periods"])
    assert fw["inferences"] <= total // prof["per_inference"]
    assert not doc["warnings"]


def test_broken_runtime_is_caught_on_msp430sim(mlp, tmp_path):
    """The check can fail: a runtime that advances before its commit (``early-advance``) finishes wrong
    inferences under the same power failures."""
    board = firmware_board(BOARD, "ref", "msp430sim")
    img = build_flex(mlp, board, tmp_path, continuous=True, log_len=8, broken="early-advance")
    samples = [model_input(mlp, s) for s in SAMPLES]
    good = build_flex(mlp, board, tmp_path / "good", continuous=True, log_len=8)
    prof = profile_image(good, board, samples)  # the correct image's references
    fw = emulate_firmware(
        short_trace(), board, image=img, samples=samples, profile=prof, capacitance_f=CAP_F
    )["firmware"]
    assert not fw["all_correct"] and fw["wrong"]


def test_backend_and_emulator_choice():
    assert firmware_board(BOARD, "lea").emulator["kind"] == "msp430sim"  # [emulator].by_backend
    assert firmware_board(BOARD, "ref").emulator["kind"] == "mspdebug"  # the board's own
    with pytest.raises(UsageError, match="need the msp430sim emulator"):
        firmware_board(BOARD, "lea", "mspdebug")
    with pytest.raises(UsageError, match="no 'lea' backend"):
        firmware_board("mps2-an386", "lea")


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "batteryless.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_cli_firmware_lea_on_msp430sim(mlp, tmp_path):
    trace = write_csv(short_trace(), tmp_path / "t.csv")
    out = tmp_path / "fw"
    common = ["--board", BOARD, "--trace", str(trace), "--capacitance-uf", "22", "--samples", "2"]
    r = cli(
        "-q", "emulate", "--firmware", "--artifact", str(mlp), "--backend", "lea", *common, "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    fw = json.loads((out / "report.json").read_text())["firmware"]
    assert fw["emulator"] == "msp430sim" and fw["all_correct"] and fw["checked"] == fw["inferences"] >= 3
    assert "inferences completed" in r.stdout
    # an emulator that cannot run the backend, a backend the board lacks: one line each, nothing written
    for extra, code, words in (
        (["--backend", "lea", "--emulator", "mspdebug"], 2, "need the msp430sim emulator"),
        (["--emulator", "qemu"], 7, "no emulator 'qemu'"),
        (["--backend", "cmsis"], 2, "no 'cmsis' backend"),
    ):
        bad = tmp_path / ("bad" + str(code) + extra[-1])
        r = cli("emulate", "--firmware", "--artifact", str(mlp), *common, *extra, "--out", str(bad))
        assert r.returncode == code and words in r.stderr, r.stderr
        assert r.stderr.strip().count("\n") == 0 and not (bad / "report.json").exists()
    r = cli("emulate", "--schedule", "example", "--board", BOARD, "--trace", str(trace), "--backend", "lea")
    assert r.returncode == 2 and "--backend and --emulator are for --firmware" in r.stderr
