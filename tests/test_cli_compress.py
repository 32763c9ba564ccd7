"""CLI: compress/evaluate end to end (tiny settings) and the one-line errors users see."""

import json
import subprocess
import sys

import pytest

from batteryless import __version__
from batteryless.cli import main

QUICK = ["--epochs", "2", "--admm-rounds", "1", "--retrain-epochs", "1"]


def run_cli(*args):
    """Run the real console entry point in a subprocess: exit code, stdout, stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "batteryless.cli", *args], capture_output=True, text=True, timeout=600
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_version_and_help():
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"batteryless {__version__}"
    code, out, _ = run_cli("--help")
    assert code == 0 and "compress" in out and "evaluate" in out


@pytest.fixture(scope="module")
def small_artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "m.bl"
    code = main(
        [
            "-q",
            "compress",
            "--model",
            "mlp",
            "--dataset",
            "digits",
            "--out",
            str(out),
            *QUICK,
            "--json",
            str(out.with_suffix(".json")),
        ]
    )
    assert code == 0
    return out


def test_compress_writes_artifact_and_report(small_artifact):
    rep = json.loads(small_artifact.with_suffix(".json").read_text())
    assert rep["model"] == "mlp" and rep["dataset"] == "digits"
    names = [r["name"] for r in rep["layers"]]
    assert names == ["fc1", "fc2", "fc3"]
    t = rep["total"]
    assert t["weight_bytes"] == sum(r["weight_bytes"] for r in rep["layers"])
    assert t["dense_int16_weight_bytes"] == 2 * (64 * 128 + 128 * 64 + 64 * 10)
    for key in ("dense_float_accuracy", "circulant_float_accuracy", "reference_accuracy"):
        assert 0.0 <= rep["accuracy"][key] <= 1.0


def test_evaluate_json_matches_compress_metrics(small_artifact, capsys):
    assert main(["-q", "evaluate", str(small_artifact), "--json", "-"]) == 0
    rep = json.loads(capsys.readouterr().out)
    stored = json.loads(small_artifact.with_suffix(".json").read_text())
    assert rep["accuracy"]["reference_accuracy"] == stored["accuracy"]["reference_accuracy"]
    assert rep["evaluated_on"]["dataset"] == "digits" and 300 < rep["evaluated_on"]["samples"] < 400


def test_evaluate_direct_path_override(small_artifact, capsys):
    assert (
        main(
            ["-q", "evaluate", str(small_artifact), "--path", "direct", "--layers", "fc1,fc2", "--json", "-"]
        )
        == 0
    )
    direct = json.loads(capsys.readouterr().out)["accuracy"]
    # both paths approximate the same float model: their accuracies agree closely
    assert abs(direct["reference_accuracy"] - direct["dequantized_float_accuracy"]) <= 0.03


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["compress", "--model", "resnet50", "--out", "{tmp}/x.bl"], 4, "resnet50"),
        (["compress", "--dataset", "imagenet", "--out", "{tmp}/x.bl"], 3, "unknown dataset 'imagenet'"),
        (["compress", "--dataset", "mnist", "--data", "{tmp}/nowhere", "--out", "{tmp}/x.bl"], 3, "nowhere"),
        (["compress", "--block", "6", "--out", "{tmp}/x.bl"], 5, "block size 6 .*not a power of two"),
        (["compress", "--layer-block", "fc3=16", "--out", "{tmp}/x.bl"], 5, "does not divide layer fc3"),
        (["compress", "--layer-block", "fc9=8", "--out", "{tmp}/x.bl"], 5, "no weight layer named fc9"),
        (["compress", "--layer-block", "fc1", "--out", "{tmp}/x.bl"], 2, "NAME=SIZE"),
        (["compress", "--out", "{tmp}/missing/dir/x.bl"], 2, "does not exist"),
        (["evaluate", "{tmp}/absent.bl"], 6, "no such artifact"),
    ],
)
def test_cli_errors_are_one_line_with_exit_codes(tmp_path, args, code, message):
    import re

    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    got, out, err = run_cli(*args)
    assert got == code, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in err
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "x.bl").exists()


def test_corrupt_artifact_is_a_clear_error(tmp_path, small_artifact):
    bad = tmp_path / "bad.bl"
    bad.write_bytes(small_artifact.read_bytes()[:300])
    got, _, err = run_cli("evaluate", str(bad))
    assert got == 6 and "corrupt or truncated" in err


def test_user_module_through_the_api(tmp_path):
    import torch
    from torch import nn

    from batteryless.errors import ModelError
    from batteryless.rad.admm import AdmmConfig
    from batteryless.rad.compress import CompressConfig, compress

    quick = CompressConfig(block_size=8, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=5))
    bad = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 10))
    with pytest.raises(ModelError, match="Sigmoid"):
        compress(bad, "digits", out=tmp_path / "bad.bl", config=quick)
    assert not (tmp_path / "bad.bl").exists()
    # a user module with BatchNorm: folded, taken as trained, compressed and written
    torch.manual_seed(0)
    good = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10)
    ).eval()
    art, rep = compress(good, "digits", out=tmp_path / "good.bl", config=quick)
    assert [layer["op"] for layer in art.layers] == ["flatten", "linear", "relu", "linear"]
    assert rep["model"] == "Sequential" and (tmp_path / "good.bl").is_file()
