"""EVE on the device: the generated image executes every mode over the one weight store, bit for bit with
``spec.integer_inference(..., mode=i)``, and FLEX commits the mode with the progress (a resumed inference
finishes in the mode it started in, whatever the stored energy says at the later boots)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from batteryless.artifact import load_artifact, save_artifact
from batteryless.boards import with_emulator
from batteryless.codegen import codegen
from batteryless.eve.modes import set_modes
from batteryless.eve.select import mode_table, select_mode
from batteryless.firmware import build, run_dataset
from batteryless.spec import integer_inference, quantize_input

KEEP = [1.0, 0.5, 0.25]
_TOOLS = {"mps2-an386": "qemu-system-arm", "mps3-an547": "qemu-system-arm", "msp430fr5994": "clang"}


@pytest.fixture(scope="module")
def eve_arts(artifacts, tmp_path_factory):
    """The digits MLP and CNN with three nested modes (every circulant layer shrinks, the classifier too);
    ``cnnw``: the CNN with width, its dense first conv (one input channel) computing 8 / 4 / 2 channels and
    conv2 1 / 0.5 / 0.5 of its block rows (the ReLU and pool after conv1 work on its kept channels, conv2's
    FFT input transforms on the block columns those feed); ``mlpw``: the MLP with fc1 1 / 0.5 / 0.25 and fc2
    1 / 0.5 / 0.5 of their block rows (a linear layer's dropped rows, the next one's unread columns);
    ``mlpl``: the MLP width ladder (every block kept, fc1 and fc2 1 / 0.5 / 0.25 of their block rows): each
    kept block row of fc2 and fc3 uses a prefix of its input blocks, which runs the backend's own kernel over
    that prefix (codegen/modes.py task_case, ``row_fmt``)."""
    d = tmp_path_factory.mktemp("eveexec")
    out = {}
    widths = {
        "cnnw": {"conv1": KEEP, "conv2": [1.0, 0.5, 0.5]},
        "mlpw": {"fc1": KEEP, "fc2": [1.0, 0.5, 0.5]},
        "mlpl": {"fc1": KEEP, "fc2": KEEP},
    }
    for model in ("mlp", "cnn", "cnnw", "mlpw", "mlpl"):
        art = load_artifact(artifacts[model[:3]])
        width = widths.get(model)
        set_modes(art, [1.0] * len(KEEP) if model == "mlpl" else KEEP, layer_width=width)
        out[model] = save_artifact(art, d / f"{model}3.bl")
    assert load_artifact(out["cnnw"]).modes[2]["layers"]["conv1"] == {"out_blocks": 2}
    return out


@pytest.fixture(scope="module")
def cnn4r(tmp_path_factory):
    """The digits CNN with conv2 in blocks of 4 (2 x 4 blocks per layer, q = 2) and modes over *random* block
    orders (seeded; keep 1 / 0.5 / 0.25): a mode's block rows use some of their blocks and not others, and
    the classifier reads them, so a selecting kernel that takes one block too many or too few changes the
    logits (with trained orders a wrong block often lands where nothing downstream reads it)."""
    from batteryless.eve.modes import block_grid
    from batteryless.rad.admm import AdmmConfig
    from batteryless.rad.compress import CompressConfig, compress

    d = tmp_path_factory.mktemp("evecnn4")
    quick = dict(dense_epochs=3, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10))
    cfg = CompressConfig(block_size=8, weight_bits=8, layer_blocks={"conv2": 4}, **quick)
    compress("cnn", "digits", out=d / "cnn4.bl", config=cfg)
    art = load_artifact(d / "cnn4.bl")
    rng = np.random.default_rng(7)
    orders = {
        la["name"]: rng.permutation(int(np.prod(block_grid(la))))
        for la in art.weight_layers()
        if la["block"] > 1
    }
    set_modes(art, KEEP, orders=orders)
    return save_artifact(art, d / "cnn4r.bl")


def _mode_images(art_path, board, backend, d, granularity="auto", path="auto"):
    res = codegen(art_path, board, d / "gen", backend=backend, granularity=granularity, path=path)
    imgs = [
        build(board, d / "gen", backend, out_dir=d / f"b{mi}", defines={"BL_MODEL_START_MODE": mi}).image
        for mi in range(len(KEEP))
    ]
    return res, imgs


@pytest.mark.parametrize("model", ["mlp", "cnn", "cnnw", "mlpl"])
@pytest.mark.parametrize("path", ["fft", "direct"])
def test_host_image_runs_every_mode_bit_exact_on_the_test_set(eve_arts, digits, tmp_path, model, path):
    res, imgs = _mode_images(eve_arts[model], "host", "ref", tmp_path, path=path)
    art = load_artifact(eve_arts[model])
    n = len(digits.x_test) if path == "fft" else 120  # every sample on one path, a subset on the other
    outs = []
    for mi, img in enumerate(imgs):
        run = run_dataset(img, "host", eve_arts[model], "digits", count=n)
        ref = integer_inference(art, digits.x_test[:n], res.paths, mode=mi)
        assert np.array_equal(np.array(run.logits), ref), mi
        outs.append(ref)
    # the modes really differ (a mode that ran mode 0's kernels would pass the check above only by luck)
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[1], outs[2])


@pytest.mark.parametrize("model", ["cnn", "cnnw"])
def test_fine_granularity_steps_run_every_mode_bit_exact(eve_arts, digits, tmp_path, model):
    """bl_mac_step_sel: direct-path layers cut into steps over input channels (partial buffers); cnnw: the
    dense conv1's steps too (a unit the mode drops is skipped, its last step zeroes the output)."""
    res, imgs = _mode_images(eve_arts[model], "host", "ref", tmp_path, granularity=20000, path="direct")
    tasks = res.schedule["modes"][0]["tasks"]
    assert any(t["kind"] == "mac_step" for t in tasks)
    if model == "cnnw":
        assert any(t["kind"] == "mac_step" and t["layer"] == "conv1" for t in tasks)
    art = load_artifact(eve_arts[model])
    for mi, img in enumerate(imgs):
        run = run_dataset(img, "host", eve_arts[model], "digits", count=60)
        assert np.array_equal(
            np.array(run.logits), integer_inference(art, digits.x_test[:60], res.paths, mode=mi)
        )


@pytest.mark.slow
@pytest.mark.parametrize("granularity", ["auto", 200])
def test_selecting_walk_random_orders_every_mode_bit_exact(cnn4r, digits, tmp_path, granularity):
    """bl_mac_step_sel (ref/mac_walk.inc) with random block orders on the direct path: ``auto``, whole-unit
    steps over every input block (a used block next to an unused one in the same step: the walk's per-block
    skip); 200, steps of a few input channels each, most starting and ending inside a block (conv2: k = 4,
    fc1: k = 8): the skip must resume at the right channel, diagonal and rank whatever channel a step
    starts at."""
    res, imgs = _mode_images(cnn4r, "host", "ref", tmp_path, granularity=granularity, path="direct")
    tasks = res.schedule["modes"][0]["tasks"]
    starts = {t["layer"]: set() for t in tasks}
    for t in tasks:
        if t["kind"] == "mac_step":
            starts[t["layer"]].add(int(t["name"].rsplit("c", 1)[1]))
    if granularity == 200:
        assert any(c % 4 for c in starts["conv2"]) and any(c % 8 for c in starts["fc1"]), starts
    art = load_artifact(cnn4r)
    for mi, img in enumerate(imgs):
        run = run_dataset(img, "host", cnn4r, "digits", count=40)
        assert np.array_equal(
            np.array(run.logits), integer_inference(art, digits.x_test[:40], res.paths, mode=mi)
        ), mi


def test_weights_are_stored_once_whatever_the_number_of_modes(eve_arts, artifacts, tmp_path):
    """The image's weight bytes are the largest mode's (plus one uint16 rank per block), not the sum."""
    for model in ("mlp", "cnn"):
        one = codegen(artifacts[model], "msp430fr5994", tmp_path / f"{model}1", backend="ref")
        three = codegen(eve_arts[model], "msp430fr5994", tmp_path / f"{model}3", backend="ref")
        w1 = one.schedule["memory_plan"]["weight_bytes"]
        w3 = three.schedule["memory_plan"]["weight_bytes"]
        art = load_artifact(eve_arts[model])
        ranks = sum(
            2 * art.tensors[la["block_order"]].size for la in art.weight_layers() if la.get("block_order")
        )
        # weights once, plus 2 bytes per block; three separate copies (keep 1, 0.5, 0.25) would be ~1.75x
        assert (
            w3 == w1 + ranks
            and ranks
            <= 2
            * sum(art.tensors[la["block_order"]].size for la in art.weight_layers() if la.get("block_order"))
            and w3 < 1.5 * w1
        ), (model, w1, w3)
        # the weight arrays in model_weights.c are the single-mode model's, byte for byte
        for name in re.findall(
            r"const int(?:8|16)_t (\w+_(?:w|spectra))\[",
            (tmp_path / f"{model}1" / "model_weights.c").read_text(),
        ):
            a = re.search(
                rf"{name}\[\d+\] = \{{[^}}]*\}}", (tmp_path / f"{model}1" / "model_weights.c").read_text()
            )
            b = re.search(
                rf"{name}\[\d+\] = \{{[^}}]*\}}", (tmp_path / f"{model}3" / "model_weights.c").read_text()
            )
            assert a and b and a.group(0) == b.group(0), name


@pytest.mark.firmware
@pytest.mark.slow
@pytest.mark.parametrize(
    "board,backend,count",
    [
        ("mps2-an386", "ref", 40),
        ("mps2-an386", "cmsis", 40),
        ("mps3-an547", "cmsis", 40),
        ("msp430fr5994", "ref", 4),
        ("msp430fr5994", "lea", 3),
    ],
)
def test_cross_images_run_every_mode_bit_exact(eve_arts, cnn4r, digits, tmp_path, board, backend, count):
    """cmsis: a mode's whole-unit direct tasks run the backend's own SMLAD (M4) / Helium (M55) loops over the
    blocks the mode uses (cmsis/eve_sel.c; ``mlpw`` and ``cnn4r`` exercise its dropped rows and its block
    lists); lea: the resident LEA route over the input channels a block row uses (lea/eve_sel.c; ``cnn4r``'s
    conv2 rows use one, both or none of their two blocks, its fc1 rows runs with and without gaps); the
    other targets the portable selecting kernels. On lea every smaller mode's logits must also differ from
    mode 0's (a route that ignored the selection would give mode 0's)."""
    if shutil.which(_TOOLS[board]) is None:
        pytest.skip(f"{_TOOLS[board]} is not installed (scripts/setup.sh)")
    arts = dict(eve_arts, cnn4r=cnn4r)
    # random block orders (cnn4r) and dropped linear rows (mlpw): cmsis's DSP loops, and the ref walk's
    # selection (ref/mac_walk.inc) on the 16-bit target, whose index arithmetic differs from the host's
    extra = backend in ("cmsis", "lea") or (board, backend) == ("msp430fr5994", "ref")
    models = ("mlp", "cnn", "cnnw") + (("mlpw", "cnn4r") if extra else ())
    # the width ladder: its smaller modes' prefix rows on the backend's own kernels (task_case's row_fmt;
    # on the MSP430's ref the FFT rows keep the portable selecting block: the same ladder through it)
    models += ("mlpl",) if backend in ("lea", "cmsis") or board == "msp430fr5994" else ()
    if board == "mps3-an547":  # the M55's Helium loops: the models whose modes reach them differently
        models = ("cnnw", "mlpw", "cnn4r")
    # cmsis on the direct path: its FFT path is within measured LSB bounds of the spec, not bit-exact
    # (CMSIS-DSP's own FFT scaling; docs/kernels.md), and `auto` follows the fitted cost table, which a refit
    # can flip
    path = "direct" if backend == "cmsis" else "auto"
    for model in models:
        res, imgs = _mode_images(arts[model], board, backend, tmp_path / model, path=path)
        art = load_artifact(arts[model])
        # the MSP430 images on the project's simulator (it models the LEA; mspdebug does not)
        emu = with_emulator(board, "msp430sim") if board.startswith("msp430") else board
        outs = []
        for mi, img in enumerate(imgs):
            run = run_dataset(img, emu, arts[model], "digits", count=count, start=200)
            ref = integer_inference(art, digits.x_test[200 : 200 + count], res.paths, mode=mi)
            assert np.array_equal(np.array(run.logits), ref), (model, mi)
            outs.append(np.array(run.logits))
        if backend == "lea" and model.startswith("cnn"):
            assert "bl_mac_step_sel_" in (tmp_path / model / "gen" / "model.c").read_text(), model
            assert all(not np.array_equal(outs[0], o) for o in outs[1:]), model


def test_fft_row_call_per_backend(eve_arts, tmp_path):
    """The width ladder's FFT-path rows (fc2 / fc3 of ``mlpl`` use a prefix of their input blocks in the
    smaller modes): the backend's FFT block over the row alone (the row call, spectra from row i on) on the
    M4's ref and the LEA, where it is the faster code; on the MSP430's ref the portable selecting FFT block,
    which is cheaper there (benchmarks/eve_device.py). Bit-exactness of both: the cross-image test."""
    row_call = re.compile(r"bl_linear_fft_block_(?:relu_)?q15\(bl_xs, \d+u, fc[23]_spectra \+ \d+u")
    sel_call = re.compile(r"bl_conv_fft_block_sel_q15\(bl_xs, &g_fc[23],")
    for board, backend, row in (
        ("msp430fr5994", "ref", False),
        ("msp430fr5994", "lea", True),
        ("mps2-an386", "ref", True),
    ):
        res = codegen(eve_arts["mlpl"], board, tmp_path / f"{board}-{backend}", backend=backend, path="fft")
        assert res.paths["fc2"] == "fft", res.paths
        src = (tmp_path / f"{board}-{backend}" / "model.c").read_text()
        assert bool(row_call.search(src)) is row, (board, backend)
        assert bool(sel_call.search(src)) is not row, (board, backend)


@pytest.mark.firmware
@pytest.mark.slow
def test_cmsis_fine_steps_fall_back_to_the_portable_kernel_bit_exact(eve_arts, digits, tmp_path):
    """cmsis, direct-path layers cut into steps over input channels: a step is not a whole unit, so
    cmsis/eve_sel.c hands it to the portable kernel (compiled there as bl_mac_step_sel_*_portable)."""
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed (scripts/setup.sh)")
    res, imgs = _mode_images(
        eve_arts["cnnw"], "mps2-an386", "cmsis", tmp_path, granularity=20000, path="direct"
    )
    assert any(t["kind"] == "mac_step" and t["layer"] == "conv2" for t in res.schedule["modes"][0]["tasks"])
    art = load_artifact(eve_arts["cnnw"])
    for mi, img in enumerate(imgs):
        run = run_dataset(img, "mps2-an386", eve_arts["cnnw"], "digits", count=10, start=100)
        ref = integer_inference(art, digits.x_test[100:110], res.paths, mode=mi)
        assert np.array_equal(np.array(run.logits), ref), mi


# --- FLEX: the mode is committed with the progress -------------------------------------------------------
def _supply(art_path, board, tmp_path):
    """Buffer voltages (mV) that select modes 0, 2, 1 in turn under the generated table (after mode 0)."""
    res = codegen(art_path, board, tmp_path / "tbl", backend="ref", buffers_in="nvm")
    eve = res.schedule["eve"]
    t = mode_table(
        eve["energy_j"],
        eve["capacitance_f"],
        eve["v_off"],
        margin=eve["margin"],
        hysteresis=eve["hysteresis"],
    )
    mv = [t.enter_mv[0] + 5, max(0, t.stay_mv[-1] - 50), t.enter_mv[1] + 5]
    return mv, t


def test_host_flex_resumed_inference_keeps_its_mode_under_random_cuts(eve_arts, digits, tmp_path):
    """Host, single-inference flex image, the stored energy different at every reading (test supply
    table in NVM): under random cuts every finished inference equals the spec's logits for the mode it
    recorded. Without the committed mode a resumed boot would run its remaining tasks in another mode (the
    image starts every boot in mode 0) and the logits would match no mode."""
    from batteryless.flex import build_flex, model_input, run_schedule

    mv, t = _supply(eve_arts["mlp"], "host", tmp_path)
    img = build_flex(
        eve_arts["mlp"],
        "host",
        tmp_path / "flex",
        extra_defines={"BL_EVE_TEST_SUPPLY": ",".join(f"{v}u" for v in mv)},
    )
    art = load_artifact(eve_arts["mlp"])
    sample = 7
    inputs = model_input(eve_arts["mlp"], sample)
    refs = [
        integer_inference(art, digits.x_test[sample : sample + 1], img.paths, mode=mi)[0].tolist()
        for mi in range(3)
    ]
    assert refs[0] != refs[1] != refs[2]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        cuts = sorted(int(c) for c in rng.integers(1, 40, size=int(rng.integers(1, 6))))
        r = run_schedule(img, "host", inputs, cuts)
        assert r.error is None and r.mode is not None, (cuts, r)
        assert r.logits == refs[r.mode], (cuts, r.mode)
        assert r.mode in {select_mode(t, v, 0) for v in mv}
        seen.add(r.mode)
    assert len(seen) >= 2  # the energy readings changed the mode between schedules


@pytest.mark.firmware
@pytest.mark.slow
def test_qemu_continuous_flex_every_inference_matches_its_recorded_mode(eve_arts, digits, tmp_path):
    """QEMU, continuous inference with random power cuts and the stored energy changing at every reading:
    every finished inference equals the spec's logits for its sample in the mode it recorded, the modes
    switch during the run, and the protocol's checks hold."""
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed (scripts/setup.sh)")
    from batteryless.firmware import run
    from batteryless.flex import build_flex, continuous_input, parse_continuous

    mv, _ = _supply(eve_arts["mlp"], "mps2-an386", tmp_path)
    img = build_flex(
        eve_arts["mlp"],
        "mps2-an386",
        tmp_path / "flex",
        continuous=True,
        extra_defines={"BL_EVE_TEST_SUPPLY": ",".join(f"{v}u" for v in mv)},
    )
    art = load_artifact(eve_arts["mlp"])
    idx = [3, 11, 42, 100, 250]
    xq = np.asarray(quantize_input(art, digits.x_test[idx]), dtype="<i2")
    n = 24
    inp = continuous_input([xq[i].tobytes() for i in range(len(idx))], inferences=n, marks=False)
    cont = run(img.image, "mps2-an386", inputs=inp, timeout=300, mark_ids=[])
    total = int(cont.instructions)
    rng = np.random.default_rng(1)
    cuts = sorted(int(c) for c in rng.choice(np.arange(1, total), size=3 * n, replace=False))
    r = run(img.image, "mps2-an386", inputs=inp, timeout=300, cuts=cuts, mark_ids=[])
    out = parse_continuous(r.output, img.output_len)
    assert r.exit_code == 0 and sorted(out.inferences) == list(range(n)) and not out.conflicts
    refs = [integer_inference(art, digits.x_test[idx], img.paths, mode=mi) for mi in range(3)]
    for i, (_, logits) in out.inferences.items():
        assert logits == refs[out.modes[i]][i % len(idx)].tolist(), (i, out.modes[i])
    assert len(set(out.modes.values())) >= 2
    assert out.checks.get("corrupt") == 0 and out.checks.get("lost_max", 0) <= 1


@pytest.mark.firmware
def test_measured_schedule_has_every_mode_and_a_table_from_the_measured_energies(eve_arts, digits, tmp_path):
    """codegen.measure on QEMU measures each mode's tasks (one image per mode); each mode's total equals the
    count between its first task mark and the end mark of an independent run of that mode's image, and the
    mode table is recomputed from the measured energies."""
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed (scripts/setup.sh)")
    from batteryless.codegen.measure import measure_schedule
    from batteryless.firmware import run

    codegen(eve_arts["mlp"], "mps2-an386", tmp_path / "gen", backend="ref")
    s = measure_schedule(tmp_path / "gen", "mps2-an386", eve_arts["mlp"], digits.x_test[3])
    art = load_artifact(eve_arts["mlp"])
    x = np.asarray(quantize_input(art, digits.x_test[3:4]), dtype="<i2")[0].tobytes()
    totals = []
    for mi, mode in enumerate(s["modes"]):
        assert all(t["measured"] and t["instructions"] > 0 for t in mode["tasks"])
        img = build(
            "mps2-an386",
            tmp_path / "gen",
            "ref",
            out_dir=tmp_path / f"b{mi}",
            defines={"BL_MODEL_START_MODE": mi},
        ).image
        marks = dict(m for m in run(img, "mps2-an386", inputs=x).marks)
        totals.append(sum(t["instructions"] for t in mode["tasks"]))
        assert totals[-1] == marks[0] - marks[1], mi
    assert s["measured"]["per_mode"] == totals
    eve = s["eve"]
    assert eve["predicted"] is False
    energies = [sum(t["energy_j"] + s["commit"]["fixed_energy_j"] for t in m["tasks"]) for m in s["modes"]]
    energies = [min(energies[: i + 1]) for i in range(len(energies))]
    t = mode_table(
        energies, eve["capacitance_f"], eve["v_off"], margin=eve["margin"], hysteresis=eve["hysteresis"]
    )
    assert list(t.stay_mv) == eve["stay_mv"]
    assert (
        f"stay_mv[3] = {{{', '.join(f'{v}u' for v in t.stay_mv)}}}"
        in (tmp_path / "gen" / "eve_table.c").read_text()
    )
