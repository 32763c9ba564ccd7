"""User models in every form the loader takes, and the up-front checks compress runs before training.

The reference for a model read from a file is the file's own forward (torch.jit.load / torch.export.load
run by torch), never the rebuilt Sequential: the rebuilt model must compute the same outputs.
"""

from __future__ import annotations

import os
import textwrap

import pytest
import torch
from torch import nn

from batteryless.cli import main
from batteryless.errors import ModelError, UsageError
from batteryless.models.load import load_model
from batteryless.paths import check_output_file
from batteryless.rad.admm import AdmmConfig
from batteryless.rad.compress import CompressConfig, compress

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # users still have such files
SHAPE = (1, 8, 8)
QUICK = CompressConfig(
    block_size=8, dense_epochs=2, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=5)
)


def _image_net() -> nn.Sequential:
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, stride=2),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Sequential(nn.Linear(16, 8), nn.Dropout(0.1)),
        nn.ReLU(),
        nn.Identity(),
        nn.Linear(8, 10),
    ).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that a lost eps/stat shows
        net[1].running_mean.normal_()
        net[1].running_var.uniform_(0.5, 2.0)
    return net


class ChainNet(nn.Module):
    """A custom forward that still computes one chain (what torch.export flattens into ops)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).reshape(x.shape[0], -1))


class SkipNet(ChainNet):
    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc((y + y.mean()).reshape(x.shape[0], -1))


def _x(n: int = 6) -> torch.Tensor:
    return torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(1))


def _same(loaded: nn.Module, reference) -> None:
    x = _x()
    with torch.no_grad():
        want = torch.cat([reference(x[i : i + 1]) for i in range(len(x))])
        got = loaded(x)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    net = _image_net()
    torch.jit.script(net).save(str(d / "scripted.pt"))
    torch.jit.trace(net, _x(2)).save(str(d / "traced.pt"))
    torch.export.save(torch.export.export(net, (_x(1),)), str(d / "seq.pt2"))
    torch.manual_seed(0)
    chain = ChainNet().eval()
    torch.export.save(torch.export.export(chain, (_x(1),)), str(d / "chain.pt2"))
    torch.export.save(torch.export.export(SkipNet().eval(), (_x(1),)), str(d / "skip.pt2"))
    torch.save(net, d / "whole.pt")
    torch.save(net.state_dict(), d / "weights.pt")
    return d, net, chain


@pytest.mark.parametrize(
    "name, source",
    [("scripted.pt", "torchscript"), ("traced.pt", "torchscript"), ("seq.pt2", "torch.export")],
)
def test_model_files_rebuild_to_the_same_function(files, name, source):
    d, net, _ = files
    reference = torch.jit.load(str(d / name)) if source == "torchscript" else torch.export.load(str(d / name))
    lm = load_model(str(d / name), SHAPE, 10)
    assert lm.source == source and lm.trained and lm.name == name.split(".")[0]
    assert [type(m).__name__ for m in lm.module if not isinstance(m, nn.Identity)] == [
        "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"
    ]  # fmt: skip
    _same(lm.module, reference if source == "torchscript" else reference.module())


def test_exported_custom_forward_that_is_a_chain_is_accepted(files):
    d, _, chain = files
    lm = load_model(str(d / "chain.pt2"), SHAPE, 10)
    assert [type(m).__name__ for m in lm.module] == ["Conv2d", "ReLU", "Flatten", "Linear"]
    _same(lm.module, chain)


def test_exported_branch_is_refused_naming_the_op(files):
    d, _, _ = files
    with pytest.raises(ModelError, match=r"skip\.pt2: op .*not one chain of layers .*feeds 2 operations"):
        load_model(str(d / "skip.pt2"), SHAPE, 10)


def test_torch_save_of_a_module_and_import_tflite_dict(files, tmp_path):
    d, net, _ = files
    lm = load_model(str(d / "whole.pt"), SHAPE, 10)
    assert lm.source == "torch.save" and lm.trained
    _same(lm.module, net)
    torch.save({"format": "batteryless-imported-tflite", "model": net}, tmp_path / "imp.pt")
    assert load_model(str(tmp_path / "imp.pt"), SHAPE, 10).module is not None
    with pytest.raises(ModelError, match="state dict .*module.py:factory"):
        load_model(str(d / "weights.pt"), SHAPE, 10)


FACTORY = """
import torch
from torch import nn

def fixed():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

def sized(input_shape, num_classes):
    n = 1
    for d in input_shape:
        n *= d
    return nn.Sequential(nn.Flatten(), nn.Linear(n, 12), nn.ReLU(), nn.Linear(12, num_classes))

def broken():
    raise RuntimeError("no GPU here")

not_callable = 3
"""


@pytest.fixture()
def factory_file(tmp_path):
    p = tmp_path / "usernet.py"
    p.write_text(textwrap.dedent(FACTORY))
    return p


def test_factory_forms_and_seeded_weights(factory_file):
    a = load_model(f"{factory_file}:fixed", SHAPE, 10, seed=4)
    b = load_model(f"{factory_file}:fixed", SHAPE, 10, seed=4)
    assert a.source == "factory" and not a.trained and a.name == "fixed"
    assert torch.equal(a.module[1].weight, b.module[1].weight)  # the seed decides the initial weights
    c = load_model(f"{factory_file}:sized", (3, 5), 4)
    assert c.module[1].in_features == 15 and c.module[3].out_features == 4


def test_factory_with_state_dict_is_trained_and_mismatches_are_named(factory_file, tmp_path):
    ref = load_model(f"{factory_file}:fixed", SHAPE, 10, seed=9).module
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    lm = load_model(f"{factory_file}:fixed", SHAPE, 10, state_dict=tmp_path / "w.pt")
    assert lm.trained and torch.equal(lm.module[3].bias, ref[3].bias)
    other = load_model(f"{factory_file}:sized", (3, 5), 4).module
    torch.save(other.state_dict(), tmp_path / "other.pt")
    with pytest.raises(
        ModelError, match=r"does not fit the model: shape .*1\.weight \(12, 15\) vs \(16, 64\)"
    ):
        load_model(f"{factory_file}:fixed", SHAPE, 10, state_dict=tmp_path / "other.pt")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("resnet50", "unknown model 'resnet50'"),
        ("{tmp}/absent.pt2", "does not exist"),
        ("{tmp}/absent.py:make", "does not exist"),
        ("{factory}:broken", "the factory raised RuntimeError: no GPU here"),
        ("{factory}:nothing", "has no function 'nothing'"),
        ("{factory}:not_callable", "has no function 'not_callable'"),
        ("{tmp}/junk.pt", "not a TorchScript, torch.export"),
        ("{tmp}", "is a folder"),
    ],
)
def test_bad_model_specs_give_one_line(spec, message, factory_file, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"hello")
    spec = spec.replace("{tmp}", str(tmp_path)).replace("{factory}", str(factory_file))
    with pytest.raises(ModelError, match=message) as err:
        load_model(spec, SHAPE, 10)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ compress: trained or not, up front
def _tasks():
    seen: list[str] = []

    def progress(task, done, total):
        seen.append(task)

    return seen, progress


@pytest.mark.parametrize(
    "build, classes_note",
    [
        (
            lambda: nn.Sequential(nn.Linear(64, 10)),
            r"layer 0 \(Linear\) gets a feature map of shape \(1, 8, 8\)",
        ),
        (
            lambda: nn.Sequential(nn.Flatten(), nn.Linear(60, 10)),
            r"layer 1 \(Linear\) expects 60 input features .*\(64,\)",
        ),
        (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 1)), r"gives 1 output .* 10 classes"),
        (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).double(), r"layer 1 \(Linear\) .*float64"),
        (
            lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(144, 10)),
            "3 input channels but gets 1",
        ),
        (
            lambda: nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten(), nn.Linear(24, 10)),
            r"needs \(C, L\) inputs",
        ),
    ],
)
def test_shape_and_dtype_mismatches_are_found_before_training(build, classes_note, tmp_path):
    seen, progress = _tasks()
    cfg = CompressConfig(**{**QUICK.__dict__, "train_dense": True})
    with pytest.raises(ModelError, match=classes_note) as err:
        compress(build(), "digits", out=tmp_path / "m.bl", config=cfg, progress=progress)
    assert "\n" not in str(err.value)
    assert seen == [] and not (tmp_path / "m.bl").exists()  # nothing trained, nothing written


def test_untrained_factory_is_refused_without_training_and_trained_with_it(factory_file, tmp_path):
    spec = f"{factory_file}:fixed"
    cfg = CompressConfig(**{**QUICK.__dict__, "dense_epochs": 0})
    with pytest.raises(
        ModelError, match="no trained weights .*factory without a state dict.* dense_epochs is 0"
    ):
        compress(spec, "digits", out=tmp_path / "m.bl", config=cfg)
    seen, progress = _tasks()
    art, rep = compress(spec, "digits", out=tmp_path / "m.bl", config=QUICK, progress=progress)
    assert "dense training" in seen and art.provenance["dense_training_epochs"] == 2
    assert art.provenance["model_source"] == "factory" and rep["model"] == "fixed"
    # 2 epochs on digits lift a 10-class MLP far above chance (0.1); untrained it would sit near it
    assert rep["accuracy"]["dense_float_accuracy"] > 0.5


def test_trained_file_is_not_retrained_unless_asked(files, tmp_path, factory_file):
    d, _, _ = files
    seen, progress = _tasks()
    ref = load_model(f"{factory_file}:fixed", SHAPE, 10, seed=1).module
    torch.jit.script(ref).save(str(tmp_path / "f.pt"))
    art, _ = compress(
        str(tmp_path / "f.pt"), "digits", out=tmp_path / "m.bl", config=QUICK, progress=progress
    )
    assert "dense training" not in seen and art.provenance["dense_training_epochs"] == 0
    seen, progress = _tasks()  # asked for: trained further, from the file's weights
    cfg = CompressConfig(**{**QUICK.__dict__, "train_dense": True})
    art, _ = compress(str(tmp_path / "f.pt"), "digits", out=tmp_path / "m.bl", config=cfg, progress=progress)
    assert "dense training" in seen and art.provenance["dense_training_epochs"] == 2


# ------------------------------------------------------------------------------------------ --out
def test_check_output_file(tmp_path):
    assert check_output_file(tmp_path / "a.bl") == tmp_path / "a.bl"
    (tmp_path / "f").write_text("x")
    for path, message in (
        (tmp_path, "it is a folder"),
        (tmp_path / "f" / "a.bl", "is a file, not a folder"),
        (tmp_path / "no" / "a.bl", "does not exist"),
        ("/proc/a.bl", "not writable"),
    ):
        with pytest.raises(UsageError, match=message):
            check_output_file(path, "the artifact")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # no probe left behind


@pytest.mark.parametrize(
    "flag, target, message",
    [
        ("--out", "{tmp}", "is a folder"),
        ("--out", "/proc/x.bl", "not writable"),
        ("--json", "{tmp}", "JSON report to .*is a folder"),
    ],
)
def test_cli_out_is_checked_before_compression(flag, target, message, tmp_path, capsys):
    import re

    (tmp_path / "keep.txt").write_text("mine")
    args = ["-q", "compress", "--out", str(tmp_path / "m.bl"), "--epochs", "500"]
    args += [flag, target.replace("{tmp}", str(tmp_path))]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and re.search(message, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_tabular_model_without_flatten_gets_one_for_feature_vectors(tmp_path):
    """Feature vectors load as (1, F) samples; a model written for (F,) inputs starts with Linear(F, ...)."""
    torch.manual_seed(2)
    mlp = nn.Sequential(nn.Linear(30, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    torch.export.save(torch.export.export(mlp, (torch.zeros(1, 30),)), str(tmp_path / "tab.pt2"))
    x = torch.randn(5, 1, 30, generator=torch.Generator().manual_seed(0))
    for spec in (mlp, str(tmp_path / "tab.pt2")):
        lm = load_model(spec, (1, 30), 2)
        assert isinstance(lm.module[0], nn.Flatten)
        with torch.no_grad():
            assert torch.allclose(lm.module(x), mlp(x.reshape(5, 30)), atol=1e-6)
    # on images the same omission is an error, not a silent reshape
    with pytest.raises(ModelError, match="add nn.Flatten"):
        compress(nn.Sequential(nn.Linear(8, 10)), "digits", config=QUICK)


def test_exported_with_a_dynamic_batch(tmp_path):
    """torch.export with a dynamic batch reads the batch size at run time (sym_size): shape arithmetic."""
    torch.manual_seed(5)
    chain = ChainNet().eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(chain, (_x(2),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(tmp_path / "dyn.pt2"))
    lm = load_model(str(tmp_path / "dyn.pt2"), SHAPE, 10)
    assert [type(m).__name__ for m in lm.module] == ["Conv2d", "ReLU", "Flatten", "Linear"]
    _same(lm.module, chain)


def test_torchscript_of_a_custom_forward_points_to_torch_export(tmp_path):
    torch.jit.script(ChainNet()).save(str(tmp_path / "custom.pt"))
    with pytest.raises(ModelError, match=r"\(ChainNet\) is a container with its own forward.*torch\.export"):
        load_model(str(tmp_path / "custom.pt"), SHAPE, 10)


@pytest.mark.parametrize("form", ["script", "trace", "export"])
def test_unsupported_settings_in_files_are_named_not_rebuilt_wrong(form, tmp_path):
    """padding="same" is stored differently by each form; each must reach the supported-layer check."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding="same"), nn.Flatten(), nn.Linear(128, 10)).eval()
    path = tmp_path / ("m.pt2" if form == "export" else "m.pt")
    if form == "script":
        torch.jit.script(net).save(str(path))
    elif form == "trace":
        torch.jit.trace(net, _x(1)).save(str(path))
    else:
        torch.export.save(torch.export.export(net, (_x(1),)), str(path))
    with pytest.raises(ModelError, match=r"0 \(Conv2d\): padding='same'"):
        load_model(str(path), SHAPE, 10)


def test_an_out_folder_that_vanishes_during_the_run_loses_nothing(tmp_path):
    """Checked up front, but a folder can still go away during minutes of compression: the artifact is
    then kept in the temp folder and the one-line error says where."""
    import re
    import shutil

    from batteryless.artifact import load_artifact

    folder = tmp_path / "results"
    folder.mkdir()

    def progress(task, done, total):
        if task == "integer reference" and folder.exists():
            shutil.rmtree(folder)

    with pytest.raises(UsageError, match=r"cannot write the artifact to .*m\.bl .*saved to \S+$") as err:
        compress("mlp", "digits", out=folder / "m.bl", config=QUICK, progress=progress)
    rescued = re.search(r"saved to (\S+)$", str(err.value)).group(1)
    try:
        assert load_artifact(rescued).model == "mlp"
    finally:
        os.unlink(rescued)
