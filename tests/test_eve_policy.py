"""The EVE rate rule end to end on the host: the schedule-level emulator applies it at every inference start,
``batteryless policy`` tunes it, and codegen emits it as data (``--eve-policy``), refusing a policy for
another buffer before writing anything."""

import json

import pytest

from batteryless.artifact import load_artifact, save_artifact
from batteryless.boards import load_board
from batteryless.cli import main
from batteryless.codegen import codegen
from batteryless.emulate import power_chain
from batteryless.emulate.adaptive import run_adaptive
from batteryless.emulate.power import load_from_board
from batteryless.errors import UsageError
from batteryless.eve.modes import set_modes
from batteryless.eve.policy import policy_table
from batteryless.eve.select import RateState, rate_select
from batteryless.schedule import load_schedule


@pytest.fixture(scope="module")
def eve_art(artifacts, tmp_path_factory):
    d = tmp_path_factory.mktemp("evepol")
    art = load_artifact(artifacts["mlp"])
    set_modes(art, [1.0, 0.5, 0.25])
    # per-mode accuracies as compress --modes records them (any decreasing values serve the tuner)
    art.metrics["modes"] = [{"mode": m, "reference_accuracy": a} for m, a in enumerate((0.95, 0.9, 0.85))]
    p = save_artifact(art, d / "mlp3.bl")
    res = codegen(p, "msp430fr5994", d / "gen", backend="ref", buffers_in="nvm")
    return p, res, d


def test_emulator_applies_the_rate_rule_at_every_inference_start(eve_art):
    _, res, d = eve_art
    sched = load_schedule(d / "gen" / "schedule.json")
    b = load_board("msp430fr5994")
    tr, conv, pan, buf = power_chain(b, "markov-2mw", capacitance_f=100e-6)
    params = {"ref_mv": 3300, "gain": 0.25, "ewma": 0.5, "full_mv": 3500, "top": 0}
    table = policy_table(res.schedule["eve"]["energy_j"], buf, 10.0, params)
    r = run_adaptive(
        sched, table, tr, conv, pan, buf, load_from_board(b, b.clock_hz), record=True, period_s=10.0
    )
    assert r.inferences > 0 and len({m for *_, m in r.timeline}) > 1  # the rule switches modes here
    # replay the readings (time since the trace's start, voltage) through a fresh record: the same picks
    s, cur, t0 = RateState(), len(table.stay_mv) - 1, float(tr.time_s[0])
    for t, v, m in r.timeline:
        cur = rate_select(table, s, int(1000.0 * v), int(1000.0 * (t - t0)), cur)
        assert m == cur


def test_policy_verb_tunes_and_codegen_emits_it(eve_art, tmp_path, capsys):
    art_path, _, _ = eve_art
    out = tmp_path / "pol.json"
    rc = main(
        [
            "policy",
            str(art_path),
            "--board",
            "msp430fr5994",
            "--backend",
            "ref",
            "--trace",
            "rf-3m",
            "--trace",
            "markov-2mw",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["capacitance_f"] == pytest.approx(100e-6) and set(doc["ratio"]) == {"rf-3m", "markov-2mw"}
    # the effective energies (what a finished inference cost in the fixed-mode runs) cover the predicted ones
    assert all(
        e >= p * (1 - 1e-12)
        for e, p in zip(doc["effective_energy_j"], doc["predicted_energy_j"], strict=True)
    )
    res = codegen(art_path, "msp430fr5994", tmp_path / "g", backend="ref", buffers_in="nvm", eve_policy=out)
    rate = res.schedule["eve"]["rate"]
    assert rate["ref_mv"] == doc["params"]["ref_mv"] and rate["period_ms"] == 10_000
    # energies in C/2·mV² units: 2·E/C·10⁶
    assert rate["energy_mv2"] == [round(2e6 * e / 100e-6) for e in doc["effective_energy_j"]]
    c = (tmp_path / "g" / "eve_table.c").read_text()
    assert "static const bl_eve_rate rate" in c and "&rate}" in c
    # without a policy the table has no rate rule
    plain = codegen(art_path, "msp430fr5994", tmp_path / "p", backend="ref")
    assert plain.schedule["eve"]["rate"] is None
    assert "NULL}" in (tmp_path / "p" / "eve_table.c").read_text()


def test_codegen_refuses_a_policy_for_another_buffer_before_writing(eve_art, tmp_path):
    art_path, _, _ = eve_art
    doc = {
        "kind": "batteryless-eve-policy",
        "capacitance_f": 1e-3,
        "period_s": 10.0,
        "params": {"ref_mv": 3000, "gain": 1.0, "ewma": 0.5, "full_mv": 3500, "top": 0},
        "effective_energy_j": [4e-4, 2e-4, 1e-4],
    }
    with pytest.raises(UsageError, match="tuned for a 1000 µF buffer"):
        codegen(art_path, "msp430fr5994", tmp_path / "g", backend="ref", eve_policy=doc)
    assert not (tmp_path / "g").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(UsageError, match="not a policy document"):
        codegen(art_path, "msp430fr5994", tmp_path / "g", backend="ref", eve_policy=bad)
    assert not (tmp_path / "g").exists()
    # the same policy on a 1 mF buffer is accepted
    res = codegen(art_path, "msp430fr5994", tmp_path / "g", backend="ref", eve_policy=doc, capacitance_f=1e-3)
    assert res.schedule["eve"]["rate"]["energy_mv2"] == [800_000, 400_000, 200_000]  # 2·E/C in mV²


def test_policy_refuses_an_artifact_without_modes_or_accuracies(artifacts, eve_art, tmp_path):
    from batteryless.eve.policy import policy

    with pytest.raises(UsageError, match="has no EVE modes"):
        policy(artifacts["mlp"], "msp430fr5994", ["rf-3m"], out=tmp_path / "p.json")
    art = load_artifact(eve_art[0])
    art.metrics.pop("modes", None)
    bare = save_artifact(art, tmp_path / "bare.bl")
    with pytest.raises(UsageError, match="reference_accuracy"):
        policy(bare, "msp430fr5994", ["rf-3m"], out=tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()


def test_a_rule_with_top_equal_to_bottom_is_that_fixed_mode(eve_art):
    """The tuner's fixed candidates (top = bottom = m) run on the rate-rule path; the fixed_mode runs on
    the emulator's own path: the same inferences, mode for mode, power failures and energy."""
    _, res, d = eve_art
    sched = load_schedule(d / "gen" / "schedule.json")
    b = load_board("msp430fr5994")
    chain = power_chain(b, "markov-2mw", capacitance_f=100e-6)
    load = load_from_board(b, b.clock_hz)
    energies = res.schedule["eve"]["energy_j"]
    for m in range(len(energies)):
        params = {"ref_mv": 3300, "gain": 1.0, "ewma": 0.5, "full_mv": 3500, "top": m, "bottom": m}
        ruled = run_adaptive(
            sched, policy_table(energies, chain[3], 10.0, params), *chain, load, period_s=10.0
        )
        fixed = run_adaptive(sched, None, *chain, load, fixed_mode=m, period_s=10.0)
        assert ruled.per_mode == fixed.per_mode and ruled.per_mode[m] > 0
        assert ruled.power_failures == fixed.power_failures
        assert ruled.task_energy_j == pytest.approx(fixed.task_energy_j)


def test_tuned_rule_is_never_below_the_best_single_mode_on_its_traces(eve_art):
    from batteryless.eve.policy import tune_policy

    _, res, d = eve_art
    sched = load_schedule(d / "gen" / "schedule.json")
    b = load_board("msp430fr5994")
    chains = {t: power_chain(b, t, capacitance_f=100e-6) for t in ("kinetic-walk", "markov-2mw")}
    load = load_from_board(b, b.clock_hz)
    acc = [0.95, 0.9, 0.85]
    tp = tune_policy(sched, res.schedule["eve"]["energy_j"], acc, chains, load, 10.0)
    # the worst trace of any one mode run alone, computed here on the emulator's fixed-mode path
    per_mode = {
        t: [
            sum(n * a for n, a in zip(r.per_mode, acc, strict=True))
            for r in (run_adaptive(sched, None, *ch, load, fixed_mode=m, period_s=10.0) for m in range(3))
        ]
        for t, ch in chains.items()
    }
    best_single = max(min(per_mode[t][m] / max(per_mode[t]) for t in chains) for m in range(3))
    assert min(tp["ratio"].values()) >= best_single - 1e-12


def test_policy_draws_tune_on_other_draws_and_report_the_traces(eve_art, tmp_path, capsys):
    art_path, _, _ = eve_art
    out = tmp_path / "site.json"
    args = ["policy", str(art_path), "--board", "msp430fr5994", "--backend", "ref"]
    rc = main([*args, "--trace", "rf-3m", "--draws", "2,3", "--out", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["draws"] == [2, 3] and doc["tuned_on"] == ["rf-3m-seed2", "rf-3m-seed3"]
    assert set(doc["ratio"]) == set(doc["tuned_on"]) and set(doc["site_ratio"]) == {"rf-3m"}
    assert doc["site_ratio"]["rf-3m"] > 0
    assert "rf-3m (not tuned on)" in capsys.readouterr().out
    # a recorded trace has no other draws: refused before anything is written
    rec = tmp_path / "site.csv"
    rec.write_text("time_s,power_w\n0,0.001\n600,0.001\n")
    bad = tmp_path / "bad.json"
    assert main([*args, "--trace", str(rec), "--draws", "2", "--out", str(bad)]) != 0
    assert "not a generated trace" in capsys.readouterr().err and not bad.exists()
    with pytest.raises(SystemExit):
        main([*args, "--trace", "rf-3m", "--draws", "2,x"])


def test_a_fixed_mode_wins_a_tie_with_an_adaptive_setting():
    from batteryless.eve.policy import _pick

    adaptive = {"ref_mv": 1800, "gain": 0.0, "ewma": 1.0, "full_mv": 3500, "top": 0, "income": 1.0}
    fixed = {**adaptive, "bottom": 0}
    tie = [{"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0}]
    assert _pick(tie, ["a", "b"], [adaptive, fixed]) == 1
    assert _pick(tie, ["a", "b"], [fixed, adaptive]) == 0
    # better on the worst trace, or equal there and better on the mean: the adaptive setting
    assert _pick([{"a": 1.01, "b": 1.0}, {"a": 1.0, "b": 1.0}], ["a", "b"], [adaptive, fixed]) == 0
    assert _pick([{"a": 1.0, "b": 0.99}, {"a": 1.0, "b": 1.0}], ["a", "b"], [adaptive, fixed]) == 1
