"""FLEX with the cmsis kernels (DSP extension on the Cortex-M4 mps2-an386, Helium on the Cortex-M55
mps3-an547) under random power cuts: every schedule's logits equal the continuous-power run of the same
image bit for bit, the protocol checks of the harness hold (no corrupt state, at most one atomic step lost
per failure), and the continuous run itself equals the numeric spec (direct paths: bit-exact). The ref
kernels' FLEX runs are in test_flex_targets.py / test_cortexm55.py."""

from __future__ import annotations

import shutil

import pytest

from batteryless.artifact import load_artifact
from batteryless.datasets import load_dataset
from batteryless.errors import UsageError
from batteryless.flex import build_flex, model_input, verify_intermittent
from batteryless.spec import integer_inference

pytestmark = pytest.mark.firmware


@pytest.fixture(scope="module", autouse=True)
def _qemu():
    if not shutil.which("qemu-system-arm"):
        pytest.skip("qemu-system-arm not installed (scripts/setup.sh)")


@pytest.mark.slow
@pytest.mark.parametrize(
    "board,model,granularity",
    [
        ("mps2-an386", "mlp", "auto"),  # circulant linear, one task per layer (one-pass SMLAD kernel)
        ("mps2-an386", "cnn", "auto"),  # dense + circulant conv, pool, relu (DSP)
        ("mps3-an547", "mlp", "auto"),  # the same under Helium
        ("mps3-an547", "cnn", "auto"),
        ("mps3-an547", "mlp", 3000.0),  # fine: block-row tasks and resumable bl_mac_step steps
    ],
)
def test_cmsis_flex_random_power_cuts_bit_exact(artifacts, tmp_path, board, model, granularity):
    art = artifacts[model]
    sample = 6
    img = build_flex(art, board, tmp_path / "flex", backend="cmsis", granularity=granularity)
    assert set(img.paths.values()) == {"direct"}  # so the spec comparison below is exact
    if granularity != "auto":
        assert img.granularity["mode"] == "fine"
    rep = verify_intermittent(None, board, image=img, inputs=model_input(art, sample), random=24, seed=11)
    x = load_dataset("digits").x_test[sample : sample + 1]
    assert rep.reference == integer_inference(load_artifact(art), x, img.paths)[0].tolist()
    assert rep.schedules == 24 and rep.reboots >= 24
    assert rep.passed, [(f.cuts, f.logits, f.violated, f.error) for f in rep.failures[:5]]


def test_flex_backend_not_on_board_is_refused(artifacts, tmp_path):
    with pytest.raises(UsageError, match="backend 'lea' is not available on board mps2-an386"):
        verify_intermittent(artifacts["mlp"], "mps2-an386", random=1, backend="lea", out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()  # refused before anything is generated
