"""flex-verify with a continuous-inference image on QEMU: N inferences in one QEMU process under random
power cuts, each compared bit for bit with the same inference under continuous power — and with the spec
(numpy integer inference), independently of the firmware's own continuous run."""

from __future__ import annotations

import shutil

import pytest

from batteryless.artifact import load_artifact
from batteryless.datasets import load_dataset
from batteryless.errors import UsageError
from batteryless.flex import build_flex, model_input, verify_intermittent
from batteryless.spec import integer_inference

pytestmark = pytest.mark.firmware

QEMU = "mps2-an386"


@pytest.fixture(scope="module")
def mlp(artifacts):
    if not shutil.which("qemu-system-arm"):
        pytest.skip("qemu-system-arm not installed (scripts/setup.sh)")
    return artifacts["mlp"]


@pytest.fixture(scope="module")
def cimg(mlp, tmp_path_factory):
    return build_flex(mlp, QEMU, tmp_path_factory.mktemp("qcont"), continuous=True)


def test_many_inferences_in_one_run_are_bit_exact(mlp, cimg):
    rep = verify_intermittent(None, QEMU, image=cimg, inputs=model_input(mlp, 4), random=150, seed=5)
    x = load_dataset("digits").x_test[4:5]
    assert rep.reference == integer_inference(load_artifact(mlp), x, cimg.paths)[0].tolist()
    assert rep.schedules == 150 and rep.reboots >= 150  # 1..8 cuts drawn per inference
    assert rep.reexecuted_tasks > 0
    assert rep.passed, [(f.logits, f.error) for f in rep.failures[:5]]


def test_broken_early_advance_is_caught_in_continuous_mode(mlp, tmp_path):
    img = build_flex(mlp, QEMU, tmp_path, broken="early-advance", continuous=True)
    rep = verify_intermittent(None, QEMU, image=img, inputs=model_input(mlp, 0), random=50, seed=1)
    assert not rep.passed and len(rep.failures) >= 3


def test_continuous_mode_refuses_sweep_and_non_qemu_boards(mlp, cimg):
    with pytest.raises(UsageError, match="sweep needs erased NVM"):
        verify_intermittent(None, QEMU, image=cimg, inputs=model_input(mlp, 0), sweep=True)
    with pytest.raises(UsageError, match="QEMU only"):
        verify_intermittent(mlp, "host", continuous=True, random=5)
    with pytest.raises(UsageError, match="continuous=True needs an image"):
        single = type(cimg)(**{**cimg.__dict__, "continuous": False})
        verify_intermittent(None, QEMU, image=single, inputs=model_input(mlp, 0), random=5, continuous=True)
