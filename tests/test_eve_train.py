"""EVE joint training (compress --modes K): the trained modes are the artifact's modes, each mode's integer
inference tracks its float model, the store holds the weights once, and bad settings are refused up front."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.utils.parametrize as parametrize

from batteryless import spec
from batteryless.artifact import load_artifact
from batteryless.cli import main
from batteryless.errors import UsageError
from batteryless.eve.modes import (
    active_blocks,
    add_mode_biases,
    artifact_feeds,
    mode_layer,
    mode_stats,
    set_modes,
    store_summary,
)
from batteryless.eve.train import EveConfig, attach_modes, check_modes, module_feeds, train_modes
from batteryless.rad.compress import CompressConfig, compress
from batteryless.rad.quantize import to_artifact
from test_cli_compress import QUICK as CLI_QUICK
from test_spec import _small_artifact


@pytest.mark.parametrize(
    "width,mode_bias",
    [(None, False), ([1.0, 0.5, 0.5], False), ([1.0, 0.5, 0.5], True), ([1.0, 0.5, 0.5], "last")],
)
@pytest.mark.parametrize("kind", ["mlp", "cnn2d", "cnn1d"])
def test_torch_modes_and_artifact_modes_are_the_same_sub_networks(kind, width, mode_bias):
    """Masks attached for training and the artifact's prefix modes select the same blocks, and the integer
    spec in mode m tracks the float model in mode m (the single-mode spec test's 2 %-of-range bound)."""
    _, x = _small_artifact(kind)
    torch.manual_seed(1)
    from test_spec import nn  # the same torch.nn the small models are made of

    net = _net(kind, nn)
    keep = [1.0, 0.5, 0.25]
    ms = attach_modes(net, keep, width=width, example=torch.as_tensor(x[:1]), mode_bias=mode_bias)
    if mode_bias:  # each smaller mode's own bias offsets (training would learn them; any values will do)
        with torch.no_grad():
            for layer in ms.layers:
                if parametrize.is_parametrized(layer, "bias"):
                    delta = layer.parametrizations["bias"][0].delta
                    delta[1:] = 0.1 * torch.randn_like(delta[1:])
    art = to_artifact(
        net.eval(),
        x,
        weight_bits=16,
        input_shape=x.shape[1:],
        num_classes=10 if kind != "cnn1d" else 6,
        normalisation={"mean": 0.0, "std": 1.0},
    )
    circ = [lay for lay in art.weight_layers() if lay["block"] > 1]
    wl = art.weight_layers()  # the mode set spans every weight layer: dense ones narrow too (width)
    # the links between weight layers (which output rows feed which input columns) are the same on the
    # torch model and on the artifact (through Flatten, pooling and ReLU)
    feeds_t = module_feeds(net, torch.as_tensor(x[:1]))
    for ft, fa in zip(feeds_t, artifact_feeds(art), strict=True):
        assert (ft is None and fa is None) or np.array_equal(ft, fa)
    set_modes(
        art,
        keep,
        orders={lay["name"]: o for lay, o in zip(wl, ms.orders, strict=True)},
        layer_keep={lay["name"]: lk for lay, lk in zip(wl, ms.layer_keep, strict=True)},
        layer_rows={lay["name"]: r for lay, r in zip(wl, ms.layer_rows, strict=True)},
    )
    if kind == "cnn2d" and width:  # the dense first conv narrows with the width ladder (its first 4 rows)
        assert wl[0]["block"] == 1 and mode_layer(art, 1, wl[0]["name"]) == {"out_blocks": 4}
    if mode_bias:
        names = [lay["name"] for lay in wl]
        add_mode_biases(art, {mi: dict(zip(names, ms.mode_biases(mi), strict=True)) for mi in (1, 2)})
        with_bias = {n for n, sel in art.modes[2]["layers"].items() if "bias" in sel}
        if mode_bias == "last":  # the classifier's own bias per mode (if circulant), no other layer's
            assert with_bias == ({wl[-1]["name"]} if wl[-1]["block"] > 1 else set())
        else:
            assert with_bias
    for mi in range(len(keep)):
        for lay, mask in zip(wl, ms.masks[mi], strict=True):
            act = active_blocks(art, lay, mi)  # None: a dense layer the mode runs whole
            assert np.array_equal(np.ones(mask.shape, bool) if act is None else act, mask.numpy() != 0)
        ms.set(mi)
        with torch.no_grad():
            ref = net(torch.as_tensor(x)).numpy()
        # direct path: the FFT path's own precision is test_spec's subject, and each FFT-path mode is checked
        # bit for bit against the full model with its dropped blocks zeroed in test_eve_modes
        direct = {lay["name"]: "direct" for lay in circ}
        got = spec.integer_inference(art, x, direct, mode=mi) / 2.0 ** art.weight_layers()[-1]["out_frac"]
        assert np.abs(got - ref).max() <= 0.02 * np.abs(ref).max()


def _net(kind, nn):
    from batteryless.rad.circulant import BlockCirculantConv, BlockCirculantLinear

    if kind == "mlp":
        return nn.Sequential(
            nn.Flatten(), BlockCirculantLinear(64, 32, 8), nn.ReLU(), BlockCirculantLinear(32, 10, 4)
        )
    if kind == "cnn2d":
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            BlockCirculantConv(2, 8, 16, (3, 3), 4, (2, 2), (1, 1)),
            nn.ReLU(),
            nn.Flatten(),
            BlockCirculantLinear(256, 10, 8),
        )
    return nn.Sequential(
        BlockCirculantConv(1, 4, 8, (5,), 4, (2,), (2,)), nn.ReLU(), nn.Flatten(), nn.Linear(128, 6)
    )


def test_sandwich_training_moves_every_mode_and_leaves_mode_0():
    from test_spec import nn

    torch.manual_seed(0)
    net = _net("mlp", nn)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    before = [p.detach().clone() for p in net.parameters()]
    ms = train_modes(net, x, y, 3, EveConfig(epochs=1, keep=[1.0, 0.5, 0.25]))
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, net.parameters(), strict=True))
    assert all(
        torch.equal(layer.parametrizations["weight"][-1].mask, ms.masks[0][i])
        for i, layer in enumerate(ms.layers)
    )


def _trained(cfg: EveConfig):
    from test_spec import nn as tnn

    torch.manual_seed(0)
    net = _net("mlp", tnn)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    return net, train_modes(net, x, y, 3, cfg)


def test_mode0_weight_changes_the_sandwich_and_the_mode0_phase_defaults_to_a_quarter_of_it():
    cfg = dict(epochs=1, keep=[1.0, 0.5, 0.25])
    one, _ = _trained(EveConfig(**cfg, mode0_weight=1.0))
    again, _ = _trained(EveConfig(**cfg, mode0_weight=1.0))
    three, _ = _trained(EveConfig(**cfg, mode0_weight=3.0))
    pairs = list(zip(one.parameters(), again.parameters(), three.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b, _ in pairs)
    assert any(not torch.equal(a, c) for a, _, c in pairs)
    assert [EveConfig(epochs=e).mode0_phase() for e in (0, 3, 4, 40)] == [0, 0, 1, 10]
    assert EveConfig(epochs=40, mode0_epochs=0).mode0_phase() == 0


def test_mode0_epochs_train_mode_0_alone():
    """With no sandwich epochs, the mode-0 phase moves the shared weights but never a smaller mode's own bias
    offsets (only mode 0's loss is back-propagated), and leaves the model in mode 0, eval mode."""
    cfg = dict(epochs=0, keep=[1.0, 0.5, 0.25], mode_bias=True)
    idle, _ = _trained(EveConfig(**cfg))
    net, ms = _trained(EveConfig(**cfg, mode0_epochs=1))
    biased = [layer for layer in ms.layers if parametrize.is_parametrized(layer, "bias")]
    assert biased and all(
        torch.count_nonzero(layer.parametrizations["bias"][0].delta) == 0 for layer in biased
    )
    assert any(not torch.equal(a, b) for a, b in zip(idle.parameters(), net.parameters(), strict=True))
    assert not net.training and ms.current[0] == 0


def test_bias_epochs_train_only_the_smaller_modes_biases():
    """The per-mode bias phase moves the smaller modes' own bias offsets and nothing shared: every other
    parameter (and so mode 0's function) is what it was without the phase."""
    cfg = dict(epochs=1, mode0_epochs=1, keep=[1.0, 0.5, 0.25], mode_bias=True)
    plain, _ = _trained(EveConfig(**cfg))
    tuned, ms = _trained(EveConfig(**cfg, bias_epochs=1))
    deltas = {
        id(layer.parametrizations["bias"][0].delta)
        for layer in ms.layers
        if parametrize.is_parametrized(layer, "bias")
    }
    moved = 0
    for (name, a), b in zip(plain.named_parameters(), tuned.parameters(), strict=True):
        if id(b) in deltas:
            assert torch.count_nonzero(b[0]) == 0  # mode 0 has no offset
            moved += int(not torch.equal(a[1:], b[1:]))
        else:
            assert torch.equal(a, b), name
    assert moved and all(p.requires_grad for p in tuned.parameters())
    assert not tuned.training and ms.current[0] == 0


def test_mode_bias_last_gives_the_classifier_alone_its_own_biases():
    _, ms = _trained(EveConfig(epochs=0, mode0_epochs=0, keep=[1.0, 0.5, 0.25], mode_bias="last"))
    assert [parametrize.is_parametrized(layer, "bias") for layer in ms.layers] == [False, True]


@pytest.fixture(scope="module")
def eve_artifact(tmp_path_factory):
    from conftest import QUICK

    out = tmp_path_factory.mktemp("eve") / "mlp3.bl"
    art, rep = compress(
        "mlp", "digits", out=out, config=CompressConfig(modes=3, eve=EveConfig(epochs=1), **QUICK)
    )
    return out, rep


def test_compress_modes_writes_nested_modes_over_one_store(eve_artifact, digits):
    path, rep = eve_artifact
    art = load_artifact(path)
    assert len(art.modes) == 3
    stats = [mode_stats(art, m)["total"] for m in range(3)]
    assert stats[0]["macs"] > stats[1]["macs"] > stats[2]["macs"]
    assert stats[0]["weight_bytes"] > stats[1]["weight_bytes"] > stats[2]["weight_bytes"]
    for lay in art.weight_layers():
        if lay["block"] > 1:  # nested: every block of a smaller mode is used by the larger one
            for mi in (1, 2):
                assert not (active_blocks(art, lay, mi) & ~active_blocks(art, lay, mi - 1)).any()
    fc1, fc2, fc3 = art.weight_layers()  # 64→128→64→10, block 16: fc1 rows i feed fc2 columns i, etc.
    for mi, (rows1, rows2) in enumerate([(8, 4), (4, 2), (2, 1)]):  # default width 1, 0.5, 0.25
        a1, a2, a3 = (active_blocks(art, lay, mi) for lay in (fc1, fc2, fc3))
        # width: a mode computes ceil(width·p) output block rows of a layer feeding another circulant layer
        assert a1.any(axis=1).sum() == rows1 and a2.any(axis=1).sum() == rows2
        # ... the first ones (training sorted the rows), named as the mode's width (rows after it are 0) ...
        assert [mode_layer(art, mi, n).get("out_blocks", p) for n, p in (("fc1", 8), ("fc2", 4))] == [
            rows1,
            rows2,
        ]
        assert a1[rows1:].sum() == 0 and a2[rows2:].sum() == 0
        # ... and the next layer reads only the rows computed, so it skips those input blocks
        assert not (a2.any(axis=0) & ~a1.any(axis=1)).any()
        assert not (a3.any(axis=0) & ~a2.any(axis=1)).any()
        # EveConfig.full_last (the default): the classifier uses every block of the columns it reads
        assert np.array_equal(a3, np.broadcast_to(a2.any(axis=1)[None, :], a3.shape))
    s = store_summary(art)
    assert s["store_weight_bytes"] == stats[0]["weight_bytes"]  # the largest mode's weights, stored once
    assert s["store_bytes"] <= 1.15 * s["largest_mode_bytes"]
    assert s["separate_bytes"] > s["store_bytes"]
    # the report names each mode's width (block rows of the layers it narrows)
    assert [r["out_blocks"] for r in rep["eve"]["modes"]] == [{}, {"fc1": 4, "fc2": 2}, {"fc1": 2, "fc2": 1}]
    # the per-mode integer accuracies in the report are the spec's on the test split
    for row in rep["eve"]["modes"]:
        acc = float((spec.predict(art, digits.x_test, mode=row["mode"]) == digits.y_test).mean())
        assert row["reference_accuracy"] == pytest.approx(acc)
        # fake-quantised float model and 16-bit integer spec agree closely (not a trained-model near-tie:
        # the same network evaluated two ways)
        assert abs(row["circulant_float_accuracy"] - acc) <= 0.05


def test_cli_compress_modes_and_evaluate(tmp_path, capsys):
    out = tmp_path / "m.bl"
    code = main(
        [
            "-q",
            "compress",
            "--out",
            str(out),
            *CLI_QUICK,
            "--modes",
            "2",
            "--mode-epochs",
            "1",
            "--mode-keep",
            "1,0.5",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert [r["keep"] for r in rep["eve"]["modes"]] == [1.0, 0.5]
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json", "-"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert len(ev["eve"]["modes"]) == 2 and all(0 <= r["reference_accuracy"] <= 1 for r in ev["eve"]["modes"])


@pytest.mark.parametrize(
    "modes,keep,message",
    [
        (9, None, "--modes must be 2"),
        (3, [1.0, 0.5], "need 3 keep fractions"),
        (2, [0.5, 1.0], "must start at 1"),
        (2, [1.0, 0.0], "must start at 1"),
        (3, {"width": [1.0, 0.5]}, "need 3 width fractions"),
        (2, {"width": [1.0, 1.5]}, "--mode-width must start at 1"),
        (2, {"mode0_weight": 0.0}, "--mode0-weight must be > 0"),
        (2, {"mode0_epochs": -1}, "--mode0-epochs must be >= 0"),
        (2, {"mode0_lr": -0.1}, "mode0_lr must be > 0"),
        (2, {"mode_bias": "some"}, "--mode-bias must be none, all or last"),
        (2, {"bias_epochs": -1}, "--mode-bias-epochs must be >= 0"),
        (2, {"bias_epochs": 3}, "--mode-bias-epochs trains the modes' own biases: it needs --mode-bias"),
        (2, {"lr": 0.0}, "--mode-lr must be > 0"),
    ],
)
def test_bad_mode_settings_are_refused_before_training(modes, keep, message):
    eve = EveConfig(**keep) if isinstance(keep, dict) else EveConfig(keep=keep)
    with pytest.raises(UsageError, match=message):
        check_modes(modes, eve)
    with pytest.raises(UsageError, match=message):  # compress refuses before loading data or training
        compress("mlp", "digits", config=CompressConfig(modes=modes, eve=eve, dense_epochs=10**6))


@pytest.mark.parametrize("flag", ["--mode-keep", "--mode-width"])
def test_cli_bad_mode_keep_is_a_usage_error(tmp_path, capsys, flag):
    code = main(["compress", "--out", str(tmp_path / "x.bl"), "--modes", "2", flag, "1,x"])
    assert code != 0
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "x.bl").exists()


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--mode0-weight", "0", "--mode0-weight must be > 0"),
        ("--mode0-epochs", "-2", "--mode0-epochs must be >= 0"),
        ("--mode-bias-epochs", "3", "it needs --mode-bias"),
        ("--mode-lr", "-1", "--mode-lr must be > 0"),
    ],
)
def test_cli_bad_mode0_setting_is_a_usage_error_before_training(tmp_path, capsys, flag, value, message):
    out = tmp_path / "x.bl"
    code = main(["compress", "--out", str(out), "--modes", "2", "--epochs", "1000", flag, value])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "value,message",
    [
        ("conv1", "expects NAME=F"),
        ("conv1=1,x", "--mode-layer-width conv1 expects fractions"),
        ("conv1=1,2", "must start at 1 and not increase"),
        ("conv9=1,0.5", "no weight layer named conv9"),
    ],
)
def test_cli_bad_mode_layer_width_is_a_usage_error_before_training(tmp_path, capsys, value, message):
    """Wrong names and fractions of --mode-layer-width are refused up front (the model is loaded, not
    trained: --epochs 1000 would take minutes if training started)."""
    out = tmp_path / "x.bl"
    args = ["compress", "--model", "cnn", "--out", str(out), "--modes", "2", "--epochs", "1000"]
    code = main([*args, "--mode-layer-width", value])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("layer_blocks", [{}, {"fc1": 8}])
def test_compress_modes_on_a_users_own_module(layer_blocks, digits):
    """A user's module (BatchNorm folded, a hidden width of 48 = 3 block rows) gets nested, narrowing modes;
    with fc1 in blocks of 8 feeding fc2's blocks of 16, rows cannot move as whole blocks (two rows feed one
    column), so they keep their order and a narrow mode still reads only the columns its rows feed."""
    from torch import nn

    from conftest import QUICK

    torch.manual_seed(0)
    user = nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 48),
        nn.BatchNorm1d(48),
        nn.ReLU(),
        nn.Linear(48, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )
    art, rep = compress(
        user,
        "digits",
        config=CompressConfig(
            modes=3, eve=EveConfig(epochs=1), train_dense=True, layer_blocks=layer_blocks, **QUICK
        ),
    )
    fc1, fc2, fc3 = art.weight_layers()
    assert (fc1["block"], fc2["block"]) == (layer_blocks.get("fc1", 16), 16)
    p1 = 48 // fc1["block"]
    for mi, w in enumerate([1.0, 0.5, 0.25]):
        a1, a2 = active_blocks(art, fc1, mi), active_blocks(art, fc2, mi)
        rows = math.ceil(w * p1)
        assert mode_layer(art, mi, "fc1").get("out_blocks", p1) == rows
        assert not a1[rows:].any()
        # fc2 reads a column only if one of fc1's computed rows feeds it (feature f is row f // k1)
        fed = np.zeros(a2.shape[1], bool)
        for r in range(rows):
            fed[(r * fc1["block"]) // 16 : ((r + 1) * fc1["block"] - 1) // 16 + 1] = True
        assert not (a2.any(axis=0) & ~fed).any()
    macs = [r["macs"] for r in rep["eve"]["modes"]]
    assert macs[0] > macs[1] > macs[2]
    for mi in range(3):  # every mode runs in the integer spec
        assert spec.predict(art, digits.x_test[:8], mode=mi).shape == (8,)


def test_layer_width_narrows_the_named_layer_only_and_refuses_unknown_names():
    """EveConfig.layer_width: one layer's own width ladder (the dense conv1 here), the others by ``width``;
    a name that is not a weight layer is a usage error before any training."""
    from test_spec import nn

    _, x = _small_artifact("cnn2d")
    torch.manual_seed(1)
    net = _net("cnn2d", nn)
    ms = attach_modes(
        net, [1.0, 0.5, 0.25], example=torch.as_tensor(x[:1]), layer_width={"conv1": [1.0, 0.75, 0.25]}
    )
    assert ms.layer_rows[0] == [8, 6, 2]  # conv1: rows of 8 output channels
    assert ms.layer_rows[1] == [4, 4, 4]  # conv2: no width of its own (4 block rows of 4)
    with pytest.raises(UsageError, match="no weight layer named conv9"):
        attach_modes(
            _net("cnn2d", nn), [1.0, 0.5], example=torch.as_tensor(x[:1]), layer_width={"conv9": [1, 1]}
        )


@pytest.mark.parametrize(
    "which,board,backend,path,count",
    [
        ("last", "host", "ref", "fft", 60),
        ("all", "host", "ref", "direct", 60),
        ("all", "mps2-an386", "cmsis", "auto", 8),
    ],
)
def test_mode_biases_run_bit_exact_on_the_device(
    artifacts, digits, tmp_path, which, board, backend, path, count
):
    """A mode's own biases (``--mode-bias all|last``: the ``bias`` / ``bias_out`` overrides) are what the
    generated image adds in that mode, bit for bit with the spec, on both paths and on a DSP backend."""
    import shutil

    from batteryless.artifact import save_artifact
    from batteryless.codegen import codegen
    from batteryless.firmware import build, run_dataset

    if board != "host" and shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed (scripts/setup.sh)")
    art = load_artifact(artifacts["mlp"])
    keep = [1.0, 0.5, 0.25]
    set_modes(art, keep, layer_width={"fc1": keep, "fc2": keep})
    wl = art.weight_layers()
    rng = np.random.default_rng(7)
    chosen = wl[-1:] if which == "last" else wl
    biases = {mi: {lay["name"]: rng.normal(0, 0.5, lay["out_features"]) for lay in chosen} for mi in (1, 2)}
    add_mode_biases(art, biases)
    assert {n for n, sel in art.modes[2]["layers"].items() if "bias" in sel} == {
        lay["name"] for lay in chosen
    }
    p = save_artifact(art, tmp_path / "mb.bl")
    res = codegen(p, board, tmp_path / "gen", backend=backend, path=path)
    plain = spec.integer_inference(load_artifact(artifacts["mlp"]), digits.x_test[:count], res.paths)
    for mi in range(3):
        img = build(
            board, tmp_path / "gen", backend, out_dir=tmp_path / f"b{mi}", defines={"BL_MODEL_START_MODE": mi}
        ).image
        run = run_dataset(img, board, p, "digits", count=count)
        want = spec.integer_inference(art, digits.x_test[:count], res.paths, mode=mi)
        assert np.array_equal(np.array(run.logits), want), mi
        if mi == 0:
            assert np.array_equal(want, plain)  # mode 0 has no override
