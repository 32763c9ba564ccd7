"""run_samples: one run per input sample, the firmware's "logits" line parsed, predictions = argmax.
Uses a stand-in model app (logits = a fixed integer map of the input) so the host reference is exact."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from batteryless.errors import EmulationError
from batteryless.firmware import build, run_samples

pytestmark = pytest.mark.firmware

APP = r"""
#include "bl_platform.h"
/* Stand-in model: 4 inputs -> 3 logits: (x0 + x1, x1 * x2, x3 - x0), as int32. */
int bl_app_main(void)
{
  int16_t x[4];
  int32_t logits[3];
  if (bl_input_read(x, 0u, sizeof x) != sizeof x) {
    return 5;
  }
  logits[0] = (int32_t)x[0] + x[1];
  logits[1] = (int32_t)x[1] * x[2];
  logits[2] = (int32_t)x[3] - x[0];
  bl_mark(1u);
  bl_put_line_i32("logits", logits, 3u);
  return 0;
}
"""


def _reference(x: np.ndarray) -> list[list[int]]:
    x = x.astype(np.int64)
    return [[int(r[0] + r[1]), int(r[1] * r[2]), int(r[3] - r[0])] for r in x]


@pytest.mark.parametrize(
    ("board", "tool"), [("host", None), ("mps2-an386", "qemu-system-arm"), ("msp430fr5969", "mspdebug")]
)
def test_run_samples_predictions(tmp_path, board, tool):
    if tool and not shutil.which(tool):
        pytest.skip(f"{tool} not installed")
    app = tmp_path / "fake_model"
    app.mkdir()
    (app / "main.c").write_text(APP)
    img = build(board, backend="ref", app=str(app), out_dir=tmp_path / "b").image
    x = np.random.default_rng(7).integers(-300, 300, (6, 4)).astype("<i2")
    labels = [0, 1, 2, 0, 1, 2]
    res = run_samples(img, board, [row.tobytes() for row in x], labels)
    ref = _reference(x)
    assert res.logits == ref
    assert res.predictions == [int(np.argmax(r)) for r in ref]
    assert res.accuracy == pytest.approx(np.mean(np.array(res.predictions) == np.array(labels)))
    if tool:
        assert all(c and c > 0 for c in res.counts)


def test_run_samples_without_logits_line_names_the_sample(tmp_path):
    app = tmp_path / "fake_model"
    app.mkdir()
    (app / "main.c").write_text(APP)
    img = build("host", backend="ref", app=str(app), out_dir=tmp_path / "b").image
    with pytest.raises(EmulationError, match=r"sample 1: firmware exited with 5"):
        run_samples(img, "host", [np.zeros(4, "<i2").tobytes(), b"\x00\x00"])
