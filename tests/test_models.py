"""Model zoo, supported-layer check, BatchNorm folding, float training and evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from batteryless.cli import main
from batteryless.datasets import Dataset, load_dataset
from batteryless.errors import ModelError, UsageError
from batteryless.models import (
    SUPPORTED_LAYERS,
    ZOO,
    build_model,
    check_supported,
    evaluate_float,
    fold_batchnorm,
    models,
    train_float,
)

SHAPES = {"digits": ((1, 8, 8), 10), "mnist": ((1, 28, 28), 10), "har": ((9, 128), 6)}


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_models_build_check_and_run(name):
    shape, classes = SHAPES[ZOO[name].dataset]
    net = build_model(name, shape, classes, seed=0)
    assert isinstance(net, nn.Sequential)
    check_supported(net, shape)
    assert all(type(m) in SUPPORTED_LAYERS for m in net)
    out = net(torch.randn(3, *shape))
    assert out.shape == (3, classes)
    if name in ("mlp", "lenet300"):
        assert isinstance(net[0], nn.Flatten)
    # same seed, same weights; other seed, other weights; the global RNG is not consumed
    torch.manual_seed(123)
    expected_next = torch.rand(4)
    torch.manual_seed(123)
    again = build_model(name, shape, classes, seed=0)
    assert torch.equal(torch.rand(4), expected_next)
    other = build_model(name, shape, classes, seed=1)
    for a, b, c in zip(net.parameters(), again.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_zoo_widths_suit_power_of_two_blocks():
    for name in ("mlp", "cnn", "lenet5", "har-cnn1d"):
        shape, classes = SHAPES[ZOO[name].dataset]
        for m in build_model(name, shape, classes):
            if isinstance(m, nn.Linear) and m.out_features != classes:
                assert m.out_features % 8 == 0, (name, m)
            if isinstance(m, nn.Conv1d | nn.Conv2d):
                assert m.out_channels % 8 == 0, (name, m)
    lenet300 = build_model("lenet300", (1, 28, 28), 10)
    assert [m.out_features for m in lenet300 if isinstance(m, nn.Linear)] == [300, 100, 10]


def test_build_model_errors():
    with pytest.raises(ModelError, match="unknown model 'resnet'.*mlp, cnn"):
        build_model("resnet", (1, 8, 8), 10)
    with pytest.raises(ModelError, match=r"'har-cnn1d' takes \(C, L\) inputs.*\(1, 8, 8\)"):
        build_model("har-cnn1d", (1, 8, 8), 10)
    with pytest.raises(ModelError, match=r"'cnn' takes \(C, H, W\)"):
        build_model("cnn", (9, 128), 6)
    with pytest.raises(ModelError, match=r"'lenet5' does not fit input shape \(1, 8, 8\)"):
        build_model("lenet5", (1, 8, 8), 10)
    with pytest.raises(ModelError, match="at least 2 classes"):
        build_model("mlp", (1, 8, 8), 1)
    # the MLPs take any shape
    assert build_model("mlp", (9, 128), 6)(torch.zeros(1, 9, 128)).shape == (1, 6)


# ------------------------------------------------------------------------------------ check_supported


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) + x


@pytest.mark.parametrize(
    "model, message",
    [
        (
            nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Sigmoid()),
            r"2 \(Sigmoid\): unsupported layer type",
        ),
        (
            nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.Tanh()), nn.Linear(4, 2)),
            r"0\.1 \(Tanh\): unsupported",
        ),
        (nn.Sequential(Custom(), nn.Linear(4, 2)), r"0 \(Custom\): a container with its own forward"),
        (Custom(), r"<model> \(Custom\)"),
        (nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), r"0 \(Conv2d\): groups=2"),
        (nn.Sequential(nn.Conv2d(1, 4, 3, dilation=2)), r"0 \(Conv2d\): dilation"),
        (nn.Sequential(nn.Conv2d(1, 4, 3, padding="same")), r"padding='same'"),
        (nn.Sequential(nn.Conv1d(1, 4, 3, padding=1, padding_mode="circular")), r"padding_mode='circular'"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2, padding=1)), r"1 \(MaxPool2d\): padding"),
        (nn.Sequential(nn.Conv1d(1, 4, 3), nn.AvgPool1d(2, ceil_mode=True)), r"1 \(AvgPool1d\)"),
        (nn.Sequential(nn.Flatten(0), nn.Linear(4, 2)), r"0 \(Flatten\): Flatten\(start_dim=0"),
        (nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False)), "track_running_stats"),
        (nn.Sequential(nn.Flatten(), nn.ReLU()), "no Linear or Conv layer"),
        (nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4)), r"1 \(LSTM\)"),
    ],
)
def test_check_supported_refuses_with_path_and_type(model, message):
    with pytest.raises(ModelError, match=message):
        check_supported(model)


def test_check_supported_lists_every_problem_and_accepts_no_ops():
    bad = nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 4), nn.Softmax(dim=1))
    with pytest.raises(ModelError) as err:
        check_supported(bad)
    assert "1 (GELU)" in str(err.value) and "3 (Softmax)" in str(err.value) and "Supported:" in str(err.value)
    check_supported(nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4, 2), nn.Identity()))
    with pytest.raises(ModelError, match="expected a torch nn.Module"):
        check_supported("mlp")  # type: ignore[arg-type]


def test_check_supported_with_input_shape_names_failing_layer():
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(32, 10))
    with pytest.raises(ModelError, match=r"layer 3 \(Linear\) expects 32 input features .* shape \(16,\)"):
        check_supported(net, (1, 8, 8))
    with pytest.raises(ModelError, match="must end in a Linear"):
        check_supported(nn.Sequential(nn.Conv2d(1, 4, 3)), (1, 8, 8))
    net.train()
    with pytest.raises(ModelError):
        check_supported(net, (1, 8, 8))
    assert net.training  # the check restores the training flag


# ------------------------------------------------------------------------------------- fold_batchnorm


def _randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen))
            m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.1)
            if m.affine:
                m.weight.data.copy_(torch.randn(n, generator=gen))
                m.bias.data.copy_(torch.randn(n, generator=gen))


@pytest.mark.parametrize(
    "make, shape",
    [
        (
            lambda: nn.Sequential(
                nn.Conv2d(2, 8, 3, padding=1),
                nn.BatchNorm2d(8),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(8 * 36, 16),
                nn.BatchNorm1d(16),
                nn.ReLU(),
                nn.Linear(16, 3),
            ),
            (2, 6, 6),
        ),
        (
            lambda: nn.Sequential(
                nn.Conv1d(3, 8, 5, bias=False),
                nn.BatchNorm1d(8, affine=False),
                nn.ReLU(),
                nn.MaxPool1d(2),
                nn.Flatten(),
                nn.Linear(8 * 6, 4),
            ),
            (3, 16),
        ),
        (
            lambda: nn.Sequential(
                nn.Sequential(nn.Flatten(), nn.Linear(10, 8, bias=False), nn.BatchNorm1d(8)),
                nn.Dropout(0.5),
                nn.ReLU(),
                nn.Sequential(nn.Linear(8, 2)),
            ),
            (10,),
        ),
    ],
)
def test_fold_batchnorm_matches_eval_forward(make, shape):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = make().double()
    _randomise_bn(model, gen)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    assert not any(
        isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.Dropout | nn.Sequential) for m in folded
    )
    assert all(type(m) in SUPPORTED_LAYERS for m in folded)
    x = torch.randn(5, *shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-10, atol=1e-10)
    for k, v in model.state_dict().items():  # the input model is untouched
        assert torch.equal(v, before[k])


@settings(max_examples=25, deadline=None)
@given(
    cin=st.integers(1, 4),
    cout=st.integers(1, 6),
    eps=st.sampled_from([1e-5, 1e-3, 0.1]),
    seed=st.integers(0, 2**31 - 1),
)
def test_fold_batchnorm_property_conv2d(cin, cout, eps, seed):
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(cin, cout, 3), nn.BatchNorm2d(cout, eps=eps), nn.Flatten(), nn.Linear(cout * 4, 2)
    ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    _randomise_bn(model, gen)
    model.eval()
    x = torch.randn(3, cin, 4, 4, generator=gen, dtype=torch.float64)
    # independent reference: BatchNorm written out from its definition
    bn = model[1]
    conv = model[0](x)
    ref_bn = (conv - bn.running_mean[None, :, None, None]) / torch.sqrt(
        bn.running_var[None, :, None, None] + eps
    )
    ref_bn = ref_bn * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    ref = model[3](ref_bn.flatten(1))
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(model)(x), ref, rtol=1e-9, atol=1e-9)


def test_fold_batchnorm_refuses_unfoldable():
    with pytest.raises(ModelError, match=r"2 \(BatchNorm1d\) follows 1 \(ReLU\)"):
        fold_batchnorm(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4)))
    with pytest.raises(ModelError, match=r"0 \(BatchNorm2d\) follows the model input"):
        fold_batchnorm(nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 2, 3)))
    with pytest.raises(ModelError, match=r"BatchNorm2d\) follows 0 \(Conv1d\)"):
        fold_batchnorm(nn.Sequential(nn.Conv1d(1, 2, 3), nn.BatchNorm2d(2)))
    with pytest.raises(ModelError, match="has 3 features but 0 produces 4"):
        fold_batchnorm(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(3)))
    with pytest.raises(ModelError, match="Sigmoid"):
        fold_batchnorm(nn.Sequential(nn.Linear(4, 4), nn.Sigmoid()))


# ------------------------------------------------------------------------------- training / evaluation


def test_evaluate_float_against_hand_computed_accuracy():
    lin = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(3))
    x = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 3], [5, 1, 0], [0, 0, -1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0, 2])  # argmax: 0, 1, 2, 0, 0 → 3 of 5 right
    net = nn.Sequential(lin).train()
    assert evaluate_float(net, x, y) == pytest.approx(0.6)
    assert net.training
    assert evaluate_float(net, x, y, batch_size=2) == pytest.approx(0.6)
    with pytest.raises(UsageError, match="5 inputs but 4 labels"):
        evaluate_float(net, x, y[:4])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_digits_models_reach_95_percent(name):
    ds = load_dataset("digits", seed=0)
    net = build_model(name, ds.input_shape, ds.num_classes, seed=0)
    net, acc = train_float(net, ds, epochs=30, lr=3e-3, seed=0)
    assert acc >= 0.95
    assert evaluate_float(net, ds.x_test, ds.y_test) == acc


def test_train_float_is_deterministic_and_reports_progress():
    ds = load_dataset("digits", seed=0)
    seen = []
    runs = []
    for _ in range(2):
        net = build_model("mlp", ds.input_shape, ds.num_classes, seed=4)
        net, acc = train_float(net, ds, epochs=2, seed=7, progress=lambda t, d, n: seen.append((t, d, n)))
        runs.append((net, acc))
    for a, b in zip(runs[0][0].parameters(), runs[1][0].parameters(), strict=True):
        assert torch.equal(a, b)
    assert runs[0][1] == runs[1][1]
    assert seen[:2] == [("float training", 1, 2), ("float training", 2, 2)]
    net = build_model("mlp", ds.input_shape, ds.num_classes, seed=4)
    other, _ = train_float(net, ds, epochs=2, seed=8)
    assert any(
        not torch.equal(a, b) for a, b in zip(runs[0][0].parameters(), other.parameters(), strict=True)
    )
    with pytest.raises(UsageError, match="learning rate"):
        train_float(net, ds, lr=0)


def _synthetic(shape, classes, n, seed) -> tuple[np.ndarray, np.ndarray]:
    """Inputs whose class is written as a bright band at a class-dependent position (learnable)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.random((n, *shape)).astype(np.float32) * 0.2
    flat = x.reshape(n, shape[0], -1)
    width = flat.shape[2] // classes
    for i, c in enumerate(y):
        flat[i, :, c * width : (c + 1) * width] += 1.0
    return x, y.astype(np.int64)


@pytest.mark.parametrize("name", ["lenet5", "lenet300", "har-cnn1d"])
def test_mnist_and_har_models_learn_tiny_synthetic_data(name):
    shape, classes = SHAPES[ZOO[name].dataset]
    xtr, ytr = _synthetic(shape, classes, 96, 0)
    xte, yte = _synthetic(shape, classes, 48, 1)
    ds = Dataset("synthetic", xtr, ytr, xte, yte, shape, classes)
    net = build_model(name, shape, classes, seed=0)
    before = evaluate_float(net, xte, yte)
    net, acc = train_float(net, ds, epochs=8, lr=3e-3, seed=0, batch_size=16)
    assert acc >= 0.9 and acc > before


def test_models_verb(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ZOO:
        assert name in out
    rep = models()
    counts = {m["name"]: m["params"] for m in rep["models"]}
    # parameter counts by hand: mlp 64·128+128 + 128·64+64 + 64·10+10
    assert counts["mlp"] == 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert counts["lenet300"] == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    assert counts["cnn"] == (1 * 9 * 8 + 8) + (8 * 9 * 16 + 16) + (16 * 4 * 4 * 10 + 10)
    digits = {m["name"]: m for m in models("digits")["models"]}
    assert digits["lenet5"]["params"] is None and "does not fit" in digits["lenet5"]["note"]


S, F, L = nn.Sequential, nn.Flatten, nn.Linear


@pytest.mark.parametrize(
    "net, shape, classes, message",
    [
        # the cases
        (S(L(64, 10)), (1, 8, 8), 10, r"layer 0 \(Linear\) gets a feature map of shape \(1, 8, 8\)"),
        (S(F(), L(30, 2)), (1, 8, 8), 2, r"expects 30 input features .* \(64,\)"),
        (S(F(), L(30, 1)), (1, 30), 2, r"gives 1 output .* 2 classes.*two outputs"),
        (S(F(), L(30, 2)).double(), (1, 30), 2, r"weight of dtype float64"),
        # more of the same family
        (S(F(), L(30, 10)), (1, 30), 2, r"gives 10 outputs .* 2 classes"),
        (S(nn.Conv2d(3, 4, 3), F(), L(144, 2)), (1, 8, 8), 2, r"3 input channels"),
        (S(nn.Conv2d(1, 4, 3), F(), L(4, 2)), (1, 30), 2, r"needs \(C, H, W\)"),
        (S(nn.Conv1d(1, 4, 3), F(), L(4, 2)), (1, 8, 8), 2, r"needs \(C, L\)"),
        (S(nn.MaxPool2d(2), F(), L(4, 2)), (1, 30), 2, r"0 \(MaxPool2d\) needs \(C, H, W\)"),
        (S(F(), L(30, 8), nn.BatchNorm1d(6), L(8, 2)), (1, 30), 2, r"2 \(BatchNorm1d\) normalises 6"),
        (
            S(nn.Conv2d(1, 2, 9), F(), L(2, 2)),
            (1, 8, 8),
            2,
            r"0 \(Conv2d\) cannot take input of shape \(1, 8, 8",
        ),
    ],
)
def test_shape_class_and_dtype_mismatches_are_one_line_naming_the_layer(net, shape, classes, message):
    with pytest.raises(ModelError, match=message) as err:
        check_supported(net, shape, classes)
    assert "\n" not in str(err.value)
