"""schedule.json validation (errors name the field) and the emulate / trace verbs end to end."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batteryless.errors import ScheduleError
from batteryless.schedule import example_path, load_schedule, parse_schedule

GOOD = {
    "schema": 1,
    "generator": "test",
    "board": "msp430fr5994",
    "backend": "lea",
    "clock_hz": 16000000,
    "modes": [
        {
            "name": "full",
            "tasks": [
                {"index": 0, "name": "a", "layer": "fc1", "kind": "fft", "cycles": 100, "instructions": None,
                 "energy_j": 1e-6, "nvm_write_bytes": 64, "measured": False},
                {"index": 1, "name": "b", "layer": "fc1", "kind": "fft", "cycles": 100, "instructions": 90,
                 "energy_j": None, "nvm_write_bytes": 64, "measured": True},
                {"index": 2, "name": "c", "layer": "fc2", "kind": "mm", "cycles": 50, "instructions": None,
                 "energy_j": 5e-7, "nvm_write_bytes": 8, "measured": False},
            ],
        }
    ],
    "commit": {"fixed_cycles": 200, "fixed_energy_j": 5e-8},
    "memory_plan": {"regions": {"ram": {"used": 1234, "size": 4096}}},
}  # fmt: skip


def test_good_schedule_parses():
    s = parse_schedule(copy.deepcopy(GOOD))
    m = s.mode()
    assert [t.name for t in m.tasks] == ["a", "b", "c"]
    assert m.layer_ends() == [1, 2]
    assert s.commit_fixed_cycles == 200 and s.clock_hz == 16e6
    assert m.tasks[1].measured and m.tasks[1].instructions == 90


def mutate(path, value):
    doc = copy.deepcopy(GOOD)
    cur = doc
    for key in path[:-1]:
        cur = cur[key]
    if value is KeyError:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("schema",), 2, "schema"),
        (("schema",), KeyError, "schema"),
        (("clock_hz",), 0, "clock_hz"),
        (("clock_hz",), "16MHz", "clock_hz"),
        (("modes",), [], "modes"),
        (("modes", 0, "tasks"), [], "modes[0].tasks"),
        (("modes", 0, "tasks", 1, "index"), 5, "modes[0].tasks[1].index"),
        (("modes", 0, "tasks", 2, "cycles"), -1, "modes[0].tasks[2].cycles"),
        (("modes", 0, "tasks", 2, "cycles"), True, "modes[0].tasks[2].cycles"),
        (("modes", 0, "tasks", 0, "energy_j"), 50.0, "modes[0].tasks[0].energy_j"),
        (("modes", 0, "tasks", 0, "energy_j"), float("nan"), "modes[0].tasks[0].energy_j"),
        (("modes", 0, "tasks", 0, "layer"), KeyError, "modes[0].tasks[0].layer"),
        (("modes", 0, "tasks", 2, "layer"), "fc1x", None),
        (("commit", "fixed_energy_j"), -1.0, "commit.fixed_energy_j"),
        (("modes", 0, "tasks", 0, "nvm_write_bytes"), 1.5, "modes[0].tasks[0].nvm_write_bytes"),
    ],
)
def test_bad_fields_are_named(path, value, field):
    doc = mutate(path, value)
    if field is None:
        parse_schedule(doc)  # a new layer name is fine
        return
    with pytest.raises(ScheduleError) as exc:
        parse_schedule(doc, "s.json")
    assert f"'{field}'" in str(exc.value) and str(exc.value).startswith("s.json")


def test_non_contiguous_layer_refused():
    doc = copy.deepcopy(GOOD)
    doc["modes"][0]["tasks"].append(dict(doc["modes"][0]["tasks"][0], index=3))
    with pytest.raises(ScheduleError, match=r"modes\[0\]\.tasks\[3\]\.layer"):
        parse_schedule(doc)


def test_invalid_json_names_line(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{\n "schema": 1,\n "board": \n}', encoding="utf-8")
    with pytest.raises(ScheduleError, match=r"line 4"):
        load_schedule(p)
    with pytest.raises(ScheduleError, match="no such schedule"):
        load_schedule(tmp_path / "missing.json")


def test_examples_are_labelled():
    for name in ("example", "example-dense", "example-rad"):
        s = load_schedule(name)
        assert s.example and "EXAMPLE" in json.loads(example_path(name).read_text())["description"]


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**9), st.floats(allow_nan=True), st.text(max_size=5)
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_mutation_gives_schedule_error_or_schedule(data):
    doc = copy.deepcopy(GOOD)
    # pick a random container and key and replace the value with junk
    task = data.draw(st.integers(0, 2))
    where = data.draw(st.sampled_from(["top", "task", "commit"]))
    target = {"top": doc, "task": doc["modes"][0]["tasks"][task], "commit": doc["commit"]}[where]
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(scalars)
    try:
        parse_schedule(doc)
    except ScheduleError:
        pass


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "batteryless.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_emulate_verb_end_to_end(tmp_path):
    out = tmp_path / "rep"
    r = cli(
        "emulate", "--schedule", "example", "--schedule", "example-rad", "--trace", "rf-3m",
        "--board", "msp430fr5994", "--policy", "flex", "--policy", "restart", "--out", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "report.json").read_text())
    assert [(x["model"], x["policy"]) for x in doc["runs"]] == [
        ("dense (example)", "flex"),
        ("dense (example)", "restart"),
        ("RAD (example)", "flex"),
        ("RAD (example)", "restart"),
    ]
    for run in doc["runs"]:
        assert (out / run["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert run["conservation_relative_error"] < 1e-3
    assert (out / "summary.png").exists()
    assert doc["firmware"] is None
    assert "RAD (example)" in r.stdout and "EXAMPLE" in r.stdout


def test_emulate_verb_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,power_w\n0,1e-3\n0,1e-3\n", encoding="utf-8")
    r = cli("emulate", "--schedule", "example", "--trace", str(bad), "--board", "msp430fr5994")
    assert r.returncode == 11
    assert r.stderr.strip().count("\n") == 0 and f"{bad}:3" in r.stderr
    r = cli(
        "emulate", "--schedule", str(tmp_path / "none.json"), "--trace", "rf-3m", "--board", "msp430fr5994"
    )
    assert r.returncode == 12 and "schedule file not found" in r.stderr
    r = cli(
        "emulate", "--schedule", "example", "--trace", "rf-3m", "--board", "msp430fr5994", "--v-on", "1.0"
    )
    assert r.returncode == 12 and "v_off < v_on" in r.stderr


def test_trace_verbs(tmp_path):
    p = tmp_path / "w.csv"
    r = cli(
        "trace", "generate", "windowed", "--out", str(p), "--set", "duration_s=100", "--set", "duty=0.5",
        "--set", "period_s=10",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = cli("trace", "info", str(p))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["harvested_j"] == pytest.approx(2e-3 * 0.5 * 100, rel=1e-6)
    r = cli("trace", "generate", "windowed", "--out", str(p), "--set", "bogus=1")
    assert r.returncode == 11 and "no parameter 'bogus'" in r.stderr


def test_codegen_style_extra_fields_are_accepted_and_label_the_run():
    doc = copy.deepcopy(GOOD)
    doc["artifact"] = {"model": "cnn", "file": "cnn-rad.bl", "dataset": "digits", "sha256": "00"}
    doc["cost_model"] = {"joules_per_cycle": 3.6e-10, "source": "ASSUMED"}
    doc["layers"] = [{"name": "fc1", "op": "linear"}]
    s = parse_schedule(doc, "gen/schedule.json")
    assert s.label == "cnn (lea, cnn-rad)"
    assert parse_schedule(copy.deepcopy(GOOD), "gen/schedule.json").label == "gen/schedule"
