"""EVE modes in the artifact and the numeric spec: per-mode inference, nesting, validation, old files."""

import copy
import json
import zipfile

import numpy as np
import pytest

from batteryless import spec
from batteryless.artifact import VERSION, load_artifact, save_artifact
from batteryless.errors import ArtifactError
from batteryless.eve.modes import mode_stats, set_modes
from test_artifact import _rewrite
from test_spec import _small_artifact

KEEP = [1.0, 0.5, 0.25]


def _with_modes(kind):
    art, x = _small_artifact(kind)
    set_modes(art, KEEP)
    return art, x


def _masked_by_hand(art, mode):
    """An independent single-mode artifact for ``mode``: the blocks it drops zeroed in weights and spectra,
    computed here from the manifest's prefix lengths (not through eve.modes)."""
    ref = copy.deepcopy(art)
    for layer in ref.layers:
        ml = art.modes[mode].get("layers", {}).get(layer["name"], {})
        if layer.get("block", 1) == 1 or "blocks" not in ml:
            continue
        w = ref.tensors[layer["weight"]]
        p, q = w.shape[:2]
        order = list(art.tensors[layer["block_order"]])
        for idx in order[ml["blocks"] :]:
            i, j = divmod(int(idx), q)
            ref.tensors[layer["weight"]] = w = w.copy()
            w[i, j] = 0
            s = ref.tensors[layer["spectra"]] = ref.tensors[layer["spectra"]].copy()
            s[i, j] = 0
    ref.modes = [{"name": "full"}]
    return ref


@pytest.mark.parametrize("kind", ["mlp", "cnn2d", "cnn1d"])
@pytest.mark.parametrize("path", ["fft", "direct"])
def test_each_mode_is_the_full_model_with_its_dropped_blocks_zeroed(kind, path):
    art, x = _with_modes(kind)
    paths = {layer["name"]: path for layer in art.weight_layers()}
    xq = spec.quantize_input(art, x)
    for mode in range(len(KEEP)):
        got = spec.integer_inference_q(art, xq, paths, mode=mode)
        want = spec.integer_inference_q(_masked_by_hand(art, mode), xq, paths)
        assert np.array_equal(got, want)
    # mode 0 keeps every block: identical to the artifact before modes were added
    plain, _ = _small_artifact(kind)
    assert np.array_equal(
        spec.integer_inference_q(art, xq, paths, mode=0), spec.integer_inference_q(plain, xq, paths)
    )


def test_direct_path_mode_matches_a_block_skipping_scalar_linear():
    """fc layer of the MLP in mode 2, computed block by block over the active blocks only (as a device that
    skips blocks would), against the spec's collected layer output."""
    art, x = _with_modes("mlp")
    layer = art.layer("fc1")
    layer["path"] = "direct"
    xq = spec.quantize_input(art, x[:4])
    collected: list = []
    spec.integer_inference_q(art, xq, collect=collected, mode=2)
    inp = xq.reshape(len(xq), -1)
    w = art.tensors[layer["weight"]].astype(np.int64)
    p, q, k = w.shape
    n = art.modes[2]["layers"]["fc1"]["blocks"]
    active = {divmod(int(i), q) for i in art.tensors[layer["block_order"]][:n]}
    bias = art.tensors[layer["bias"]].astype(np.int64)
    shift = layer["in_frac"] + layer["weight_frac"] - layer["out_frac"]
    want = np.zeros((len(xq), layer["out_features"]), dtype=np.int64)
    for s in range(len(xq)):
        for r in range(layer["out_features"]):
            acc = 0
            bi, rr = divmod(r, k)
            for bj in range(q):
                if (bi, bj) not in active:
                    continue
                for c in range(k):
                    acc += int(w[bi, bj, (rr - c) % k]) * int(inp[s, bj * k + c])
            acc += int(bias[r])
            v = (acc + (1 << (shift - 1))) >> shift if shift > 0 else acc << -shift
            want[s, r] = min(max(v, -32768), 32767)
    got = collected[[i for i, lay in enumerate(art.layers) if lay["name"] == "fc1"][0]]
    assert np.array_equal(got, want)


def test_width_drops_output_rows_to_zero():
    art, x = _with_modes("mlp")
    art.modes[1]["layers"]["fc1"] = {**art.modes[1]["layers"].get("fc1", {}), "out_blocks": 2}
    art.modes[2]["layers"]["fc1"] = {**art.modes[2]["layers"].get("fc1", {}), "out_blocks": 1}
    collected: list = []
    spec.integer_inference_q(art, spec.quantize_input(art, x), collect=collected, mode=2)
    fc1 = collected[1]
    assert (fc1[:, 8:] == 0).all()
    assert mode_stats(art, 2)["total"]["macs"] < mode_stats(art, 1)["total"]["macs"]


@pytest.mark.parametrize("path", ["fft", "direct"])
def test_dense_width_is_the_model_with_the_dropped_rows_removed(path):
    """A dense layer's out_blocks (rows): the spec in that mode equals, bit for bit, the single-mode model
    with the dropped rows' weights and biases zeroed by hand (their outputs requantise to 0; ReLU and
    pooling keep 0) — here the small CNN's dense conv1 keeping 3 of 8 channels, conv2 reading only the
    block column they feed; and the mode's MACs count only the rows it computes."""
    art, x = _small_artifact("cnn2d")
    conv1 = art.weight_layers()[0]
    assert conv1["block"] == 1
    set_modes(art, KEEP, layer_width={"conv1": [1.0, 0.5, 3 / 8]})
    assert art.modes[2]["layers"]["conv1"] == {"out_blocks": 3}
    ref = _masked_by_hand(art, 2)
    w = ref.tensors[conv1["weight"]] = ref.tensors[conv1["weight"]].copy()
    w[3:] = 0
    b = ref.tensors[conv1["bias"]] = ref.tensors[conv1["bias"]].copy()
    b[3:] = 0
    paths = {lay["name"]: path for lay in art.weight_layers() if lay["block"] > 1}
    got = spec.integer_inference(art, x, paths, mode=2)
    assert np.array_equal(got, spec.integer_inference(ref, x, paths))
    assert not np.array_equal(got, spec.integer_inference(art, x, paths, mode=0))
    rows = [r for r in mode_stats(art, 2)["layers"] if r["name"] == "conv1"][0]
    full = [r for r in mode_stats(art, 0)["layers"] if r["name"] == "conv1"][0]
    assert rows["macs"] * 8 == full["macs"] * 3


def test_smaller_modes_touch_fewer_bytes_and_the_store_holds_the_largest_once(tmp_path):
    art, x = _with_modes("mlp")
    stats = [mode_stats(art, m)["total"] for m in range(3)]
    assert stats[0]["weight_bytes"] > stats[1]["weight_bytes"] > stats[2]["weight_bytes"]
    assert stats[0]["macs"] > stats[1]["macs"] > stats[2]["macs"]
    plain, _ = _small_artifact("mlp")
    # the weight tensors are the single-mode artifact's, untouched: only the small block_order lists are new
    for name, t in plain.tensors.items():
        assert np.array_equal(art.tensors[name], t)
    extra = set(art.tensors) - set(plain.tensors)
    assert extra == {f"{lay['name']}.block_order" for lay in art.weight_layers() if lay["block"] > 1}


def test_round_trip_keeps_modes_and_writes_the_current_version(tmp_path):
    art, x = _with_modes("cnn2d")
    p = save_artifact(art, tmp_path / "m.bl")
    back = load_artifact(p)
    assert [m["name"] for m in back.modes] == ["m0", "m1", "m2"]
    with zipfile.ZipFile(p) as zf:
        assert json.loads(zf.read("manifest.json"))["version"] == VERSION >= 3
    for mode in range(3):
        assert np.array_equal(
            spec.integer_inference(back, x, mode=mode), spec.integer_inference(art, x, mode=mode)
        )
    assert np.array_equal(spec.integer_inference(back, x, mode="m1"), spec.integer_inference(art, x, mode=1))


def test_version_1_artifact_loads_as_one_full_mode(tmp_path):
    art, x = _small_artifact("mlp")
    p = save_artifact(art, tmp_path / "new.bl")
    old = tmp_path / "old.bl"

    def to_v1(m):  # what version 1 wrote: no modes beyond "full", scalar normalisation without a kind
        m.update(version=1, modes=[{"name": "full", "description": "all blocks"}])
        m["normalisation"] = {"mean": m["normalisation"]["mean"], "std": m["normalisation"]["std"]}

    _rewrite(p, old, edit_manifest=to_v1)
    back = load_artifact(old)
    assert len(back.modes) == 1
    assert np.array_equal(spec.integer_inference(back, x, mode=0), spec.integer_inference(art, x))
    with pytest.raises(ArtifactError, match="has 1 mode"):
        spec.integer_inference(back, x, mode=1)


def _drop_order(m):
    for layer in m["layers"]:
        layer.pop("block_order", None)


def _bad_perm(t):
    t["fc1.block_order"] = np.zeros_like(t["fc1.block_order"])


@pytest.mark.parametrize(
    "edit,edit_t,message",
    [
        (lambda m: m["modes"][2]["layers"]["fc1"].update(blocks=999), None, "layers.fc1: field 'blocks'"),
        (lambda m: m["modes"][2]["layers"]["fc1"].update(blocks=0), None, "layers.fc1: field 'blocks'"),
        (
            lambda m: m["modes"][1]["layers"].update(nosuch={"blocks": 1}),
            None,
            "no weight layer named 'nosuch'",
        ),
        (lambda m: m["modes"][1]["layers"]["fc1"].update(colour=1), None, "unknown field"),
        (lambda m: m["modes"][1].update(name="m0"), None, "duplicate mode name"),
        (lambda m: m["modes"][1]["layers"]["fc1"].update(blocks=1), None, "must be nested"),
        (lambda m: m["modes"].extend([{"name": f"x{i}"} for i in range(7)]), None, "at most 8"),
        (_drop_order, None, "field 'block_order' is missing"),
        (None, _bad_perm, "must be a permutation"),
        (
            lambda m: m["modes"][1]["layers"]["fc1"].update(bias="nope"),
            None,
            "field 'bias' names tensor 'nope'",
        ),
        (lambda m: m["modes"][1]["layers"]["fc1"].update(out_frac=99), None, "field 'out_frac'"),
        (lambda m: m["modes"][1]["layers"]["fc1"].update(out_frac=3), None, "fc2.in_frac"),
        (lambda m: m["modes"][1]["layers"]["fc3"].update(out_blocks=1), None, "cannot narrow the last layer"),
        (lambda m: m["modes"][1]["layers"].update(fc2={"blocks": 1}), None, "needs a circulant layer"),
        # a dense layer narrows by rows: out_blocks counts rows, in range and nested like a circulant one's
        (lambda m: m["modes"][1]["layers"].update(fc2={"out_blocks": 999}), None, "fc2: field 'out_blocks'"),
        (
            lambda m: (
                m["modes"][1]["layers"].update(fc2={"out_blocks": 4}),
                m["modes"][2]["layers"].update(fc2={"out_blocks": 5}),
            ),
            None,
            "fc2.out_blocks = 5 exceeds",
        ),
    ],
)
def test_invalid_modes_name_the_field(tmp_path, edit, edit_t, message):
    art, _ = _with_modes("mlp")
    art.modes[1]["layers"].setdefault("fc3", {})
    good = save_artifact(art, tmp_path / "a.bl")
    bad = tmp_path / "bad.bl"
    _rewrite(good, bad, edit_manifest=edit, edit_tensors=edit_t)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(bad)


def test_unknown_mode_and_bad_keep_fractions_are_refused():
    art, x = _with_modes("mlp")
    with pytest.raises(ArtifactError, match="no mode named 'huge'"):
        spec.integer_inference(art, x, mode="huge")
    with pytest.raises(ArtifactError, match="non-increasing"):
        set_modes(art, [0.5, 1.0])
    with pytest.raises(ArtifactError, match="1 … 8 modes"):
        set_modes(art, [1.0] * 9)


def test_feed_matrix_hand_derived():
    from batteryless.eve.modes import feed_matrix

    # linear 128 → linear, both block 16: output row block i is input column block i
    assert np.array_equal(feed_matrix(128, 16, 128, 16), np.eye(8, dtype=bool))
    # conv of 16 channels (block 8) → Flatten of 4×4 → linear block 16: channel c is features 16c … 16c+15
    f = feed_matrix(16, 8, 256, 16, spatial=16)
    assert f.shape == (2, 16) and f[0, :8].all() and f[1, 8:].all() and f.sum() == 16
    # blocks that do not line up: 10 channels in blocks of 4 (rows 0-3, 4-7, 8-9) → columns of 8
    assert f"{feed_matrix(10, 4, 10, 8).astype(int).tolist()}" == "[[1, 0], [1, 0], [0, 1]]"


def test_row_order_and_nested_orders_narrow_modes_read_only_rows_computed():
    from batteryless.eve.modes import nested_orders, row_order

    # two 2×2-block layers linked row i → column i; block norms chosen by hand
    w0 = np.array([[3.0, 2.0], [1.0, 0.5]])[:, :, None]  # row 0 is the heavier
    w1 = np.array([[0.1, 4.0], [0.2, 0.3]])[:, :, None]  # ... but layer 1 reads row 1 through column 1 most
    feeds = [None, np.eye(2, dtype=bool)]
    # row scores of layer 0 (squared norms): own share (13/14.25, 1.25/14.25) + the share of layer 1's
    # column it feeds (0.05/16.14, 16.09/16.14): row 1 wins (1.085 vs 0.915)
    assert [r.tolist() for r in row_order([w0, w1], [None, None], feeds)] == [[1, 0], [0, 1]]
    # a narrow mode (width 0.5) computes the first row of layer 0 and layer 1 reads only the column it feeds
    orders, counts, rows = nested_orders([w0, w1], [None, None], feeds, [[1, 1]] * 2, [[1, 0.5], [1, 1]])
    assert counts == [[4, 2], [4, 2]] and rows == [[2, 1], [2, 2]]  # the last layer keeps its rows
    assert orders[0].tolist() == [0, 1, 2, 3]  # row 0's blocks, largest first, then row 1's
    assert orders[1].tolist()[:2] == [2, 0]  # layer 1 reads column 0 only: blocks (1, 0), (0, 0)
    assert sorted(orders[1].tolist()) == [0, 1, 2, 3]
