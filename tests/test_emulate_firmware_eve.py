"""Firmware-level emulation of an EVE image (issue 11, "the firmware level feeds the stored energy to the
image"): at every power-on and at moments along each power-on period the emulator writes the energy
buffer's voltage into the image (QEMU and msp430sim: ``bl_eve_supply_mv`` through ``run(writes=...)``;
msp430sim also its ADC12_B model), so the image picks its mode from the trace, also within one period;
every finished inference equals the numeric spec in the mode it recorded. A non-EVE artifact runs as
before (nothing written)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from batteryless.artifact import load_artifact, save_artifact
from batteryless.emulate import firmware as fwmod
from batteryless.emulate.firmware import (
    emulate_firmware,
    eve_mode_supplies,
    eve_references,
    firmware_board,
    profile_image,
)
from batteryless.errors import UsageError
from batteryless.eve.modes import set_modes
from batteryless.firmware import run
from batteryless.flex import build_flex, continuous_input, model_input
from batteryless.spec import integer_inference

pytestmark = pytest.mark.firmware

KEEP = [1.0, 0.5, 0.25]
N_SAMPLES = 3
# The generated table (100 uF, v_off 1.8 V) wants >= 1.96 V for the largest mode and >= 1.88 V for the
# smallest: the buffer starts charged (the first boot runs the largest mode) and drains through the
# thresholds within the first period; every later boot happens at v_on = 1.87 V (the smallest). 1 mF keeps
# several inferences in every power-on period.
RUN = dict(capacitance_f=1e-3, v_on=1.87, max_periods=4)
CASES = {
    "qemu": ("mps2-an386", None, "qemu-system-arm", {}, 3.6),
    # the ADC hook: the image reads the supply through the ADC12_B model (set_supply_mv), not the variable.
    # The MSP430's boot output holds about 1 KiB (five inference lines): its table is generated for the
    # emulated 1 mF and the buffer starts with about one inference of each mode above v_off
    "msp430sim": ("msp430fr5994", "msp430sim", "clang", {"BL_EVE_SUPPLY_ADC": 1}, None),
}


@pytest.fixture(scope="module")
def eve_mlp(artifacts, tmp_path_factory):
    art = load_artifact(artifacts["mlp"])
    set_modes(art, KEEP)
    return save_artifact(art, tmp_path_factory.mktemp("evefw") / "mlp3.bl")


def _image(art_path, case, d):
    board, emu, tool, defines, _ = CASES[case]
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/setup.sh)")
    b = firmware_board(board, "ref", emu)
    log_len = 16 if case == "qemu" else 8
    img = build_flex(
        art_path, b, d / "flex", continuous=True, log_len=log_len, extra_defines=defines,
        capacitance_f=RUN["capacitance_f"] if case == "msp430sim" else None,
    )  # fmt: skip
    return b, img


@pytest.mark.parametrize("case", sorted(CASES))
def test_eve_image_follows_the_stored_energy_bit_exact_per_mode(eve_mlp, digits, tmp_path, case):
    b, img = _image(eve_mlp, case, tmp_path)
    samples = [model_input(eve_mlp, s) for s in range(N_SAMPLES)]
    supplies = eve_mode_supplies(img)
    assert supplies is not None and len(supplies) == len(KEEP)
    # the emulator's references per mode are the numeric spec's (so "all_correct" below is against it)
    prof = profile_image(img, b, samples, supply_mv=supplies[0])
    prof["references_by_mode"], prof["per_inference_min"] = eve_references(img, b, samples, supplies)
    art = load_artifact(eve_mlp)
    spec = [
        integer_inference(art, digits.x_test[:N_SAMPLES], img.paths, mode=m).tolist()
        for m in range(len(KEEP))
    ]
    assert prof["references_by_mode"] == spec
    assert spec[0] != spec[-1]

    v0 = CASES[case][4]
    if v0 is None:  # one inference of each mode above v_off: C/2·(v0² − v_off²) = E_0 + E_1 + E_2
        stay = json.loads((Path(img.model_dir) / "schedule.json").read_text())["eve"]["stay_mv"]
        v0 = round(math.sqrt(sum((mv / 1000) ** 2 - 1.8**2 for mv in stay) + 1.8**2) + 0.02, 3)
    rep = emulate_firmware("rf-3m", b, image=img, samples=samples, profile=prof, v_initial=v0, **RUN)
    fw = rep["firmware"]
    last = len(KEEP) - 1
    assert fw["all_correct"] and not fw["wrong"] and fw["checked"] == fw["inferences"] > 0, rep["warnings"]
    assert rep["warnings"] == [] and fw["resets"] == len(rows := fw["periods"])  # ran to the trace end
    assert sum(fw["modes"].values()) == fw["inferences"]
    assert rows[0]["supply_mv"] == round(1000 * v0) and all(r["supply_mv"] == 1870 for r in rows[1:])
    # within the first period the buffer drains through the thresholds and the voltage written along it
    # follows: the image starts in the largest mode and steps down, inference by inference, in one period
    first = rows[0]["modes"]
    assert len(first) == len(rows[0]["inferences"]) and first[0] == 0, first
    assert first == sorted(first), first
    if case == "qemu":  # (msp430sim: its short first period finishes only two inferences, both in mode 0)
        assert len(set(first)) >= 2, first
    # later periods boot at v_on and drain: the smallest mode (but for one inference in flight at the end
    # of the first period, resumed in the mode it started in)
    later = [m for r in rows[1:] for m in r["modes"]]
    if case == "qemu":  # (the msp430sim table is for 1 mF: v_on = 1.87 V may fit a larger mode there)
        assert later and sum(1 for m in later if m != last) <= 1, later
    assert "supply" in fw


def test_non_eve_artifact_is_unaffected(artifacts, tmp_path, monkeypatch):
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed (scripts/setup.sh)")
    calls = []
    real = fwmod.run

    def spy(*a, **k):
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(fwmod, "run", spy)
    rep = emulate_firmware(
        "rf-3m", "mps2-an386", artifact=artifacts["mlp"], out_dir=tmp_path, n_samples=2, max_periods=2
    )
    fw = rep["firmware"]
    assert fw["all_correct"] and fw["inferences"] > 0
    assert rep["warnings"] == [] and "modes" not in fw and "supply" not in fw
    assert all("supply_mv" not in r for r in fw["periods"])
    assert calls and all("writes" not in k for k in calls)


def test_bad_writes_are_one_line_usage_errors(eve_mlp, tmp_path):
    b, img = _image(eve_mlp, "qemu", tmp_path)
    inp = continuous_input([model_input(eve_mlp, 0)], inferences=1)
    for writes, match in (
        ([(0, "bl_eve_supply_mv", 70000)], "does not fit"),
        ([(0, "bl_eve_supply_mv", -1)], "does not fit"),
        ([(0, "no_such_symbol", 1)], "no symbol"),
        ([(5, "bl_eve_supply_mv", 1), (4, "bl_eve_supply_mv", 1)], "ascending"),
    ):
        with pytest.raises(UsageError, match=match) as ei:
            run(img.image, b, inputs=inp, writes=writes)
        assert "\n" not in str(ei.value)
    with pytest.raises(UsageError, match="QEMU or msp430sim"):
        run(img.image, "host", inputs=inp, writes=[(0, "bl_eve_supply_mv", 1)])
    # a value written before the first instruction is what the image reads: the largest mode at 3.6 V
    r = run(img.image, b, inputs=continuous_input([model_input(eve_mlp, 0)], inferences=2),
            writes=[(0, "bl_eve_supply_mv", 3600)], mark_ids=[])  # fmt: skip
    assert r.exit_code == 0 and " mode 0 " in r.output, r.output[-300:]


def _rate_doc(art_path, tmp_path, capacitance_f: float) -> dict:
    """A rate-rule document as `batteryless policy` writes one, its parameters set by hand (tuning is the
    policy verb's test): the codegen-predicted energies, gain 1 above V_off, the newest income only."""
    from batteryless.codegen import codegen

    res = codegen(art_path, "mps2-an386", tmp_path / "energies", backend="ref", buffers_in="nvm")
    return {
        "kind": "batteryless-eve-policy",
        "capacitance_f": capacitance_f,
        "period_s": 10.0,
        "params": {"ref_mv": 1800, "gain": 1.0, "ewma": 1.0, "full_mv": 65535, "top": 0, "income": 1.0},
        "effective_energy_j": list(res.schedule["eve"]["energy_j"]),
    }


def test_rate_rule_image_runs_end_to_end_bit_exact_per_mode(eve_mlp, digits, tmp_path):
    """build_flex / emulate_firmware with an EVE policy: the image's table carries the rate rule (it reads
    the trace's time the emulator writes into bl_eve_now_ms), the reference run of every mode is held there
    with the clock stopped (no income estimate: the voltage alone picks), and every inference of the trace
    run equals the numeric spec in the mode it recorded."""
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed (scripts/setup.sh)")
    doc = _rate_doc(eve_mlp, tmp_path, RUN["capacitance_f"])
    b = firmware_board("mps2-an386", "ref", None)
    img = build_flex(
        eve_mlp, b, tmp_path / "flex", continuous=True, log_len=16, eve_policy=doc,
        capacitance_f=RUN["capacitance_f"],
    )  # fmt: skip
    sched = json.loads((Path(img.model_dir) / "schedule.json").read_text())
    assert (
        sched["eve"]["rate"]["gain_q8"] == 256
        and "recip[128]" in (Path(img.model_dir) / "eve_table.c").read_text()
    )
    samples = [model_input(eve_mlp, s) for s in range(N_SAMPLES)]
    supplies = eve_mode_supplies(img)
    assert supplies is not None and len(supplies) == len(KEEP) and supplies == sorted(supplies, reverse=True)
    prof = profile_image(img, b, samples, supply_mv=supplies[0])
    prof["references_by_mode"], prof["per_inference_min"] = eve_references(img, b, samples, supplies)
    art = load_artifact(eve_mlp)
    spec = [
        integer_inference(art, digits.x_test[:N_SAMPLES], img.paths, mode=m).tolist()
        for m in range(len(KEEP))
    ]
    assert prof["references_by_mode"] == spec
    rep = emulate_firmware("rf-3m", b, image=img, samples=samples, profile=prof, v_initial=3.6, **RUN)
    fw = rep["firmware"]
    assert fw["all_correct"] and not fw["wrong"] and fw["checked"] == fw["inferences"] > 0, rep["warnings"]
    assert sum(fw["modes"].values()) == fw["inferences"]
    # the first inference reads 3.6 V at t = 0 with the record "empty at time 0": no interval yet, so the
    # budget is the stored energy above V_off, which holds every mode: the largest
    assert fw["periods"][0]["modes"][0] == 0
    # a built image carries its table: a policy on top is refused (one line)
    with pytest.raises(UsageError, match="built image has its table"):
        emulate_firmware("rf-3m", b, image=img, samples=samples, eve_policy=doc, max_periods=1)


def test_cli_eve_policy_needs_firmware(tmp_path, capsys):
    from batteryless.cli import main

    code = main(
        ["emulate", "--trace", "rf-3m", "--board", "mps2-an386", "--schedule", "example",
         "--eve-policy", "p.json"]
    )  # fmt: skip
    assert code != 0 and "--eve-policy is for --firmware" in capsys.readouterr().err
