"""Import: .tflite files produced by TensorFlow from known Keras models → torch, outputs compared with Keras.

Also the flatbuffer reader against an independent decoder (the flatc-generated Python schema that
ai-edge-litert ships), refusal of unsupported operators by name, and corrupt files (fuzzed).

Stated bounds: a float .tflite imports to the same function (max |diff| <= 1e-5 of the output range);
an int8 .tflite imports with de-quantised weights, whose float outputs stay within 10 % of the output range of
the Keras model's (activation quantisation is what is lost) and agree on the top-1 class for >= 90 % of
random inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batteryless.cli import main
from batteryless.errors import ExportError
from batteryless.tflite._tf import tf
from batteryless.tflite.export import convert
from batteryless.tflite.flatbuffer import read_graph
from batteryless.tflite.import_ import import_tflite, load_tflite

SHAPE = (12, 12, 3)


def _seeded(model, seed: int):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(scale=0.4, size=w.shape).astype(np.float32) for w in ws])
    return model


def known_keras_model():
    """Every supported operator: CONV_2D (SAME, fused ReLU), DEPTHWISE_CONV_2D (multiplier 2, ReLU6),
    MAX_POOL_2D, CONV_2D 1x1 + RELU, AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX."""
    k = tf().keras
    L = k.layers
    inp = k.Input(SHAPE, batch_size=1)
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, padding="valid", depth_multiplier=2, activation="relu6")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(6, 1)(x)
    x = L.ReLU()(x)
    x = L.AveragePooling2D(2, strides=1)(x)
    x = L.Flatten()(x)
    x = L.Dense(16, activation="relu")(x)
    x = L.Dense(5)(x)
    out = L.Softmax()(x)
    return _seeded(k.Model(inp, out), 7)


def _torch_softmax(imported, x_nhwc):
    with torch.no_grad():
        return torch.softmax(imported.model(torch.as_tensor(x_nhwc.transpose(0, 3, 1, 2))), 1).numpy()


@pytest.fixture(scope="module")
def keras_model():
    return known_keras_model()


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(0).normal(size=(64, *SHAPE)).astype(np.float32)


@pytest.fixture(scope="module")
def float_tflite(keras_model):
    return convert(keras_model, SHAPE)


@pytest.fixture(scope="module")
def int8_tflite(keras_model, inputs):
    return convert(keras_model, SHAPE, inputs[:48])


def test_float_import_gives_the_same_outputs(keras_model, float_tflite, inputs):
    imp = load_tflite(float_tflite, "float model")
    assert imp.input_shape == (3, 12, 12) and not imp.quantized
    ref = np.asarray(keras_model(inputs))
    got = _torch_softmax(imp, inputs)
    assert np.abs(got - ref).max() <= 1e-5
    assert any("SOFTMAX" in n for n in imp.notes)
    assert any("depthwise" in n for n in imp.notes)


def test_float_import_logits_match_keras_pre_softmax(keras_model, float_tflite, inputs):
    k = tf().keras
    logits_model = k.Model(keras_model.input, keras_model.layers[-2].output)
    ref = np.asarray(logits_model(inputs))
    with torch.no_grad():
        got = load_tflite(float_tflite).model(torch.as_tensor(inputs.transpose(0, 3, 1, 2))).numpy()
    assert np.abs(got - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())


def test_int8_import_dequantises_weights(keras_model, int8_tflite, inputs):
    imp = load_tflite(int8_tflite, "int8 model")
    assert imp.quantized and imp.input_quantization is not None
    ref = np.asarray(keras_model(inputs))
    got = _torch_softmax(imp, inputs)
    assert np.abs(got - ref).max() <= 0.10
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.9


def test_relu6_model_is_imported_but_flagged_for_the_compressor(float_tflite):
    imp = load_tflite(float_tflite)
    assert any(isinstance(m, torch.nn.ReLU6) for m in imp.model)
    assert imp.compressor_problems is not None and "ReLU6" in imp.compressor_problems


def test_export_then_import_round_trip_of_a_zoo_model():
    from batteryless.models import build_model
    from batteryless.tflite.export import export_module

    model = build_model("cnn", (1, 8, 8), 10, seed=1).eval()
    x = np.random.default_rng(3).random(size=(80, 1, 8, 8)).astype(np.float32)
    exp = export_module(model, (1, 8, 8), x[:48])
    imp = load_tflite(exp.tflite)
    assert imp.compressor_problems is None  # what compress accepts
    assert [type(m).__name__ for m in imp.model] == [type(m).__name__ for m in model]
    with torch.no_grad():
        ref = model(torch.as_tensor(x[48:])).numpy()
        got = imp.model(torch.as_tensor(x[48:])).numpy()
    assert np.abs(got - ref).max() <= 0.05 * np.abs(ref).max()  # int8 weight rounding only
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.9


def _convert_float(build):
    k = tf().keras
    inp = k.Input(SHAPE, batch_size=1)
    return convert(_seeded(k.Model(inp, build(k.layers, inp)), 1), SHAPE)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda L, x: L.Dense(4)(L.Flatten()(L.Conv2D(4, 3, activation="tanh")(x))), "TANH"),
        (lambda L, x: L.Dense(3)(L.Flatten()(L.Add()([L.Conv2D(3, 1)(x), x]))), "ADD"),
        (lambda L, x: L.Dense(3)(L.Flatten()(L.Conv2D(3, 1, activation="sigmoid")(x))), "LOGISTIC"),
    ],
)
def test_unsupported_operators_are_refused_by_name(build, message):
    data = _convert_float(build)
    with pytest.raises(ExportError, match=message) as err:
        load_tflite(data, "m.tflite")
    assert "m.tflite" in str(err.value) and "FULLY_CONNECTED" in str(err.value)


def test_asymmetric_same_padding_is_refused():
    data = _convert_float(lambda L, x: L.Dense(2)(L.Flatten()(L.Conv2D(2, 3, strides=2, padding="same")(x))))
    with pytest.raises(ExportError, match="asymmetric"):
        load_tflite(data)


def test_reader_agrees_with_the_flatc_generated_schema(int8_tflite):
    from ai_edge_litert import schema_py_generated as schema

    ref = schema.ModelT.InitFromObj(schema.Model.GetRootAs(int8_tflite, 0))
    g = read_graph(int8_tflite)
    sg = ref.subgraphs[0]
    codes = [max(c.deprecatedBuiltinCode, c.builtinCode) for c in ref.operatorCodes]
    assert [op.code for op in g.operators] == [codes[o.opcodeIndex] for o in sg.operators]
    assert [op.inputs for op in g.operators] == [tuple(int(v) for v in o.inputs) for o in sg.operators]
    assert g.inputs == tuple(int(v) for v in sg.inputs) and g.outputs == tuple(int(v) for v in sg.outputs)
    for mine, theirs in zip(g.tensors, sg.tensors, strict=True):
        assert mine.shape == tuple(int(v) for v in theirs.shape)
        assert mine.type == theirs.type and mine.buffer == theirs.buffer
        if theirs.quantization is not None and theirs.quantization.scale is not None:
            assert np.array_equal(mine.scale, np.asarray(theirs.quantization.scale, np.float32))
            assert mine.quantized_dimension == theirs.quantization.quantizedDimension
    for mine, theirs in zip(g.buffers, ref.buffers, strict=True):
        assert mine == (bytes(np.asarray(theirs.data, np.uint8)) if theirs.data is not None else b"")
    conv = next(o for o in sg.operators if codes[o.opcodeIndex] == schema.BuiltinOperator.CONV_2D)
    mine = next(op for op in g.operators if op.name == "CONV_2D")
    assert mine.options["stride_w"] == conv.builtinOptions.strideW
    assert mine.options["padding"] == (
        "SAME" if conv.builtinOptions.padding == schema.Padding.SAME else "VALID"
    )


@pytest.mark.parametrize("cut", [0, 3, 7, 8, 64, 500, -400, -50, -1])
def test_truncated_files_are_refused(int8_tflite, cut):
    with pytest.raises(ExportError, match="TFLite|truncated|short"):
        load_tflite(int8_tflite[:cut], "cut.tflite")


def test_not_a_tflite_file(tmp_path):
    p = tmp_path / "x.tflite"
    p.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ExportError, match="not a TFLite model"):
        import_tflite(p)
    with pytest.raises(ExportError, match="cannot read"):
        import_tflite(tmp_path / "missing.tflite")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_bytes_give_export_error_or_a_valid_model(int8_tflite, data):
    """Flip bytes anywhere: the reader must either decode something or raise ExportError — never crash,
    hang, or raise another exception type."""
    raw = bytearray(int8_tflite)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        load_tflite(bytes(raw), "fuzz.tflite")
    except ExportError:
        pass


@pytest.mark.parametrize(
    "kind, change, message",
    [
        ("first", {"outputs": ()}, "outputs \\[\\]; it needs one"),
        ("first", {"outputs": (-1,)}, "it needs one"),
        ("FULLY_CONNECTED", {"inputs": None}, "it needs 2"),
    ],
)
def test_operators_without_their_tensors_are_refused(int8_tflite, kind, change, message):
    """What a corrupted byte did once (found by the fuzz test below): an operator list with no output
    tensor, or a weighted operator with only its data input, must give ExportError, not IndexError."""
    from dataclasses import replace

    from batteryless.tflite.import_ import build_sequential

    g = read_graph(int8_tflite)
    target = g.operators[0] if kind == "first" else next(o for o in g.operators if o.name == kind)
    if change.get("inputs", 0) is None:
        change = {"inputs": target.inputs[:1]}
    ops = [replace(o, **change) if o is target else o for o in g.operators]
    with pytest.raises(ExportError, match=message):
        build_sequential(replace(g, operators=ops))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_are_refused(blob):
    with pytest.raises(ExportError):
        read_graph(b"\x10\x00\x00\x00TFL3" + blob, "random.tflite")


def test_cli_import_writes_a_loadable_model(float_tflite, inputs, tmp_path, capsys):
    src = tmp_path / "m.tflite"
    src.write_bytes(float_tflite)
    out = tmp_path / "m.pt"
    assert main(["-q", "import-tflite", str(src), "--out", str(out)]) == 0
    assert "DEPTHWISE_CONV_2D" in capsys.readouterr().out
    saved = torch.load(out, weights_only=False)
    with torch.no_grad():
        a = saved["model"](torch.as_tensor(inputs[:4].transpose(0, 3, 1, 2)))
        b = load_tflite(float_tflite).model(torch.as_tensor(inputs[:4].transpose(0, 3, 1, 2)))
    assert torch.equal(a, b)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(float_tflite[:100])
    assert main(["-q", "import-tflite", str(bad), "--out", str(tmp_path / "bad.pt")]) == 13
    err = capsys.readouterr().err.strip()
    assert err.startswith("batteryless import-tflite: error:") and "\n" not in err
    assert not (tmp_path / "bad.pt").exists()
    assert main(["-q", "import-tflite", str(src), "--out", str(tmp_path)]) == 2  # a folder: one line
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_imported_model_goes_through_compress(tmp_path):
    """The point of import: a .tflite classifier becomes a compressed, intermittence-ready artifact."""
    from batteryless.artifact import load_artifact
    from batteryless.models import build_model
    from batteryless.rad.admm import AdmmConfig
    from batteryless.rad.compress import CompressConfig, compress
    from batteryless.tflite.export import export_module

    model = build_model("mlp", (1, 8, 8), 10, seed=2).eval()
    x = np.random.default_rng(5).random(size=(32, 1, 8, 8)).astype(np.float32)
    src = tmp_path / "mlp.tflite"
    src.write_bytes(export_module(model, (1, 8, 8), x).tflite)
    imp = import_tflite(src)
    cfg = CompressConfig(dense_epochs=2, admm=AdmmConfig(rounds=1, retrain_epochs=1))
    art, rep = compress(imp.model, "digits", out=tmp_path / "m.bl", config=cfg)
    assert load_artifact(tmp_path / "m.bl").input_shape == (1, 8, 8)
    assert [layer["name"] for layer in art.weight_layers()] == ["fc1", "fc2", "fc3"]
    assert rep["total"]["weight_bytes"] < rep["total"]["dense_int16_weight_bytes"]


# ------------------------------------------- Keras models with an unknown batch size (the default)
UNBATCHED = (8, 8, 1)


def _convert_unbatched(model, representative=None) -> bytes:
    """What a user does with the installed converter: no batch size anywhere (Keras 3: SavedModel route)."""
    import tempfile

    tf_ = tf()
    with tempfile.TemporaryDirectory() as d:
        model.export(f"{d}/sm", format="tf_saved_model", verbose=False)
        conv = tf_.lite.TFLiteConverter.from_saved_model(f"{d}/sm")
        if representative is not None:
            conv.optimizations = [tf_.lite.Optimize.DEFAULT]
            conv.representative_dataset = lambda: (
                [representative[i : i + 1]] for i in range(len(representative))
            )
            conv.target_spec.supported_ops = [tf_.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf_.int8
            conv.inference_output_type = tf_.int8
        return bytes(conv.convert())


@pytest.fixture(scope="module")
def unbatched_models():
    """Sequential and Functional Conv2D → MaxPool → Flatten → Dense, float and int8, batch left unknown."""
    k = tf().keras
    L = k.layers
    seq = k.Sequential(
        [k.Input(UNBATCHED), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(), L.Dense(6)]
    )
    inp = k.Input(UNBATCHED)
    x = L.MaxPooling2D(2)(L.Conv2D(4, 3, padding="same", activation="relu")(inp))
    x = L.Dense(5)(L.Dense(12, activation="relu")(L.Flatten()(x)))
    fun = k.Model(inp, L.Softmax()(x))
    rep = np.random.default_rng(2).normal(size=(32, *UNBATCHED)).astype(np.float32)
    out = {}
    for name, model in (("sequential", _seeded(seq, 3)), ("functional", _seeded(fun, 4))):
        logits = model if name == "sequential" else k.Model(inp, x)
        out[name, "float"] = (logits, _convert_unbatched(model))
        out[name, "int8"] = (logits, _convert_unbatched(model, rep))
    return out


@pytest.mark.parametrize("kind", ["sequential", "functional"])
@pytest.mark.parametrize("precision", ["float", "int8"])
def test_flatten_with_unknown_batch_is_folded(unbatched_models, kind, precision):
    logits_model, data = unbatched_models[kind, precision]
    g = read_graph(data)
    assert {"SHAPE", "STRIDED_SLICE", "PACK"} <= set(g.op_names())  # what the users met
    imp = load_tflite(data, f"{kind}.tflite")
    assert imp.compressor_problems is None and imp.input_shape == (1, 8, 8)
    assert any("folded static shape operators SHAPE, STRIDED_SLICE, PACK" in n for n in imp.notes)
    x = np.random.default_rng(9).normal(size=(64, *UNBATCHED)).astype(np.float32)
    ref = np.asarray(logits_model(x))
    with torch.no_grad():
        got = imp.model(torch.as_tensor(x.transpose(0, 3, 1, 2))).numpy()
    span = ref.max() - ref.min()
    if precision == "float":
        assert np.abs(got - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())
    else:  # de-quantised int8 weights, float activations: the stated int8 bound of this module
        assert np.abs(got - ref).max() <= 0.10 * span


def test_unbatched_tflite_goes_through_the_model_loader(unbatched_models, tmp_path):
    from batteryless.models.load import load_model

    path = tmp_path / "user.tflite"
    path.write_bytes(unbatched_models["sequential", "int8"][1])
    lm = load_model(str(path), (1, 8, 8), 6)
    assert lm.source == "tflite" and lm.trained and lm.name == "user"


@settings(max_examples=60, deadline=None)
@given(
    vec=st.lists(st.integers(1, 64), min_size=1, max_size=5),
    begin=st.integers(-5, 5),
    end=st.integers(-5, 6),
    stride=st.sampled_from([1, 2, -1]),
    masks=st.integers(0, 7),
)
def test_folded_strided_slice_agrees_with_tensorflow(vec, begin, end, stride, masks):
    from batteryless.tflite.import_ import _strided_slice

    o = {"begin_mask": masks & 1, "end_mask": (masks >> 1) & 1, "shrink_axis_mask": (masks >> 2) & 1}
    x = np.asarray(vec, np.int32)
    if o["shrink_axis_mask"] and o["begin_mask"]:  # TensorFlow and TFLite's kernel disagree: not folded
        assert _strided_slice(x, np.array([begin]), np.array([end]), np.array([1]), o) is None
        return
    if o["shrink_axis_mask"]:
        stride = 1  # TensorFlow requires stride 1 with shrink_axis
        end = begin + 1
        if not -len(vec) <= begin < len(vec):
            return  # TensorFlow refuses it too (out of range)
    x = np.asarray(vec, np.int32)
    want = tf().strided_slice(
        x, [begin], [end], [stride], begin_mask=o["begin_mask"], end_mask=o["end_mask"],
        shrink_axis_mask=o["shrink_axis_mask"],
    ).numpy()  # fmt: skip
    got = _strided_slice(x, np.array([begin]), np.array([end]), np.array([stride]), o)
    assert got is not None and np.array_equal(got, want)


@pytest.mark.slow
def test_cli_compress_takes_a_keras_tflite_with_unknown_batch(unbatched_models, tmp_path, capsys):
    """The issue's user: a Keras Sequential converted with the default batch goes straight to compress."""
    from batteryless.artifact import load_artifact

    path = tmp_path / "keras.tflite"
    path.write_bytes(unbatched_models["sequential", "int8"][1])
    rng = np.random.default_rng(0)
    x = rng.random((240, 1, 8, 8), dtype=np.float32)  # channels-first, as the imported model takes it
    y = np.arange(240) % 6  # the model has 6 outputs: 6 classes
    np.savez(tmp_path / "d.npz", x_train=x[:180], y_train=y[:180], x_test=x[180:], y_test=y[180:])
    quick = ["--admm-rounds", "1", "--retrain-epochs", "1", "--block", "4"]
    args = ["-q", "compress", "--model", str(path), "--dataset", "npz", "--data", str(tmp_path / "d.npz")]
    assert main([*args, "--out", str(tmp_path / "m.bl"), *quick]) == 0
    out = capsys.readouterr().out
    assert "model keras (tflite): taken as trained" in out
    assert "note: keras.tflite: folded static shape operators SHAPE, STRIDED_SLICE, PACK" in out
    art = load_artifact(tmp_path / "m.bl")
    assert [layer["name"] for layer in art.weight_layers()] == ["conv1", "fc1"]
    # the same file on 10-class data: refused before training, naming the last layer and both counts
    assert main(["-q", "compress", "--model", str(path), "--out", str(tmp_path / "n.bl"), *quick]) == 4
    err = capsys.readouterr().err
    assert "gives 6 outputs per sample (last layer 4) but the dataset has 10 classes" in err
    assert not (tmp_path / "n.bl").exists()
