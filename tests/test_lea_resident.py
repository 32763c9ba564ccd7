"""The lea backend's resident FFT-path route (firmware/kernels/lea/linear.c, block_row_resident; issue 12).

1. The exactness test it uses for the LEA inverse FFT (the "pair bound", docs/kernels.md): the driver's
   inverse is swap(FFT(swap(x))), which multiplies by exactly 1 at the t = k/4 butterflies where the spec
   uses 32767/32768; with n(z) = max(|re|, |im|) + min(|re|, |im|) / 2 >= |z|, inputs f and f + k/2 meet in
   the first stage, so n(x[f]) + n(x[f + k/2]) <= 2 * (16383 - 4 * (log2 k - 1)) for every f keeps every
   later value inside +-16383 and the two transforms equal. Checked here on the numeric spec itself
   (batteryless.spec.fft_q15, an independent numpy implementation), on inputs built to sit at the bound, and
   shown to be a real condition: without it most random inputs differ.
2. FLEX power cuts while a layer's weights are resident in LEA RAM: LEA RAM and the residency tags are lost
   together, the resumed block rows stage them again, and the result is the continuous run's."""

from __future__ import annotations

import numpy as np
import pytest

from batteryless import spec
from batteryless.boards import with_emulator


def _swap_route(re, im):
    r2, i2 = spec.fft_q15(im, re, inverse=False)  # LEA's forward FFT on the swapped input, swapped back
    return i2, r2


def _bound(re, im):
    a, b = np.abs(re), np.abs(im)
    return np.maximum(a, b) + np.minimum(a, b) // 2


def _pairs_ok(re, im, k):
    lim = 2 * (16383 - 4 * (int(np.log2(k)) - 1))
    n = _bound(re, im)
    return (n[:, : k // 2] + n[:, k // 2 :] <= lim).all(axis=1), lim


@pytest.mark.parametrize("k", [16, 32, 64])
def test_pair_bound_keeps_the_swap_route_inverse_equal_to_the_spec(k):
    rng = np.random.default_rng(12)
    n = 6000
    re = rng.integers(-32768, 32768, size=(n, k))
    im = rng.integers(-32768, 32768, size=(n, k))
    # one large value per pair, the other small (what a ReLU layer's spectrum looks like: a large DC bin)
    re[n // 2 :, k // 2 :] //= rng.integers(1, 300, size=(n - n // 2, 1))
    im[n // 2 :, k // 2 :] //= rng.integers(1, 300, size=(n - n // 2, 1))
    _, lim = _pairs_ok(re, im, k)
    nb = _bound(re, im)
    s = nb[:, : k // 2] + nb[:, k // 2 :]
    # scale each pair down to the bound or just below it (truncation keeps it at or under)
    scale = np.minimum(1.0, lim / np.maximum(s, 1) * rng.uniform(0.98, 1.0, size=s.shape))
    scale = np.concatenate([scale, scale], axis=1)
    re, im = np.trunc(re * scale).astype(np.int64), np.trunc(im * scale).astype(np.int64)
    ok, _ = _pairs_ok(re, im, k)
    assert ok.mean() > 0.99
    re, im = re[ok], im[ok]
    near = _bound(re, im)
    assert (near[:, : k // 2] + near[:, k // 2 :]).max() >= lim - 4  # the bound is really reached
    want = spec.fft_q15(re, im, inverse=True)
    got = _swap_route(re, im)
    assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])


def test_the_pair_bound_is_a_real_condition():
    """Unbounded inputs: the swap route differs from the spec on most of them (the test above can fail)."""
    rng = np.random.default_rng(3)
    re = rng.integers(-32768, 32768, size=(2000, 16))
    im = rng.integers(-32768, 32768, size=(2000, 16))
    want = spec.fft_q15(re, im, inverse=True)
    got = _swap_route(re, im)
    differ = (want[0] != got[0]).any(axis=1) | (want[1] != got[1]).any(axis=1)
    assert differ.mean() > 0.5


@pytest.mark.slow
@pytest.mark.firmware
def test_flex_cuts_while_weights_are_resident_restage_them(artifacts, tmp_path):
    """Cuts at LEA commands of a FFT-path layer's later block rows (its weights were staged by block row 0
    and are resident): every resumed run gives the continuous run's logits, with one reboot."""
    import json

    from batteryless.firmware import patch_input
    from batteryless.firmware.image import symbols
    from batteryless.firmware.msp430sim import Msp430Sim
    from batteryless.flex import build_flex, model_input, run_schedule, verify_intermittent

    board = with_emulator("msp430fr5994", "msp430sim")
    img = build_flex(artifacts["mlp"], board, tmp_path / "flex", backend="lea")
    sched = json.loads((tmp_path / "flex" / "gen" / "schedule.json").read_text())
    # fc1's block rows run the FFT path (the resident route); since the range calls they are one task, so a
    # cut in a later row re-runs the layer's rows from row 0 after the reboot, restaging the weights
    tasks = sched["modes"][0]["tasks"]
    assert any(t["kind"] == "fft_block" and t["name"].startswith("fc1.block") for t in tasks)
    x = model_input(artifacts["mlp"], 0)
    rep = verify_intermittent(None, board, image=img, inputs=x, random=1, seed=0, workers=1)
    assert rep.passed
    p = patch_input(img.image, x, tmp_path / "p.elf")
    s = Msp430Sim(stop_pc=symbols(p)["bl_done"].address)
    s.load_elf(p)
    s.power_on()
    s.run(max_cycles=10**9)
    starts = s.lea_starts()
    # fc1: 4 input FFTs, then per block row 7 complex MACs + 1 FFT; block rows 1 .. 3 are commands 12 .. 35
    for c in (starts[13], starts[22], starts[30]):
        r = run_schedule(img, board, x, [c + 2], rep.reference, 120)
        assert r.correct and r.reboots == 1, r


@pytest.mark.slow
@pytest.mark.firmware
def test_resident_finish_with_biases_beyond_2_30(artifacts, tmp_path):
    """The resident route's finish loop takes any int32 bias: where o * 2^n + bias overflows 32 bits it
    saturates by the true sum's sign (docs/kernels.md). Every FFT layer's bias_out set to values at and
    beyond +-2^30 up to the int32 bounds (o * 2^n + bias overflows on many outputs; the test fails without
    the overflow branch), the FR5994 lea image equals the numeric spec
    (which adds in 64 bits)."""
    from batteryless.artifact import clone, load_artifact, save_artifact
    from batteryless.codegen import codegen
    from batteryless.datasets import load_dataset
    from batteryless.firmware import build, parse_output
    from batteryless.firmware.msp430sim import run_many

    art = clone(load_artifact(artifacts["mlp"]))
    rng = np.random.default_rng(7)
    extremes = np.array(
        [2**31 - 1, -(2**31), 2**30, -(2**30), 2**31 - 5, -(2**31) + 5, 2**30 + 12345], np.int64
    )
    for layer in art.layers:
        if layer["op"] == "linear" and layer.get("bias_out"):
            t = art.tensors[layer["bias_out"]]
            v = rng.choice(extremes, size=t.shape)
            small = rng.random(t.shape) < 0.3  # some ordinary biases between them
            art.tensors[layer["bias_out"]] = np.where(small, t, v).astype(t.dtype)
    path_art = save_artifact(art, tmp_path / "bias.bl")
    x = load_dataset("digits").x_test[:4]
    xq = np.asarray(spec.quantize_input(art, x), dtype="<i2").reshape(len(x), -1)
    res = codegen(path_art, "msp430fr5994", tmp_path / "gen", backend="lea", path="fft")
    img = build("msp430fr5994", tmp_path / "gen", "lea", out_dir=tmp_path / "b").image
    runs = run_many(img, [xq[i].tobytes() for i in range(len(xq))])
    want = spec.integer_inference(art, x, res.paths)
    got = [parse_output(r.output).get("logits") for r in runs]
    assert [list(g) for g in got] == want.tolist()
