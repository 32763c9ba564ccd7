"""The EVE rate rule (eve.select.rate_select, bl_eve_select_rate): hand-derived picks and income estimates,
and the C selector against the Python reference on a table of (voltage, time) readings — host gcc here,
the MSP430 (16-bit int, mspdebug) and Cortex-M4 (QEMU) in tests/test_eve_select_targets.py."""

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from batteryless.errors import UsageError
from batteryless.eve.select import ModeTable, RateState, mode_table, rate_policy, rate_select

ROOT = Path(__file__).resolve().parents[1]
E = [400e-6, 200e-6, 100e-6]  # 400, 200, 100 uJ; 100 uF buffer, one input every 10 s


def table(**kw) -> ModeTable:
    base = mode_table(E, 100e-6, 1.8)
    args = dict(ref_mv=3000, gain=0.0, ewma=1.0, full_mv=3500)
    return ModeTable(**{**base.__dict__, "rate": rate_policy(E, 100e-6, 10.0, **{**args, **kw})})


def test_income_estimate_and_picks_by_hand():
    t, s = table(), RateState()
    # E(V) = C/2·V² in nJ: 100,000 nF · mV² / 2e6. First reading 3000 mV at 1 s; the record starts as
    # "empty at time 0", so income = E(3000) = 450,000 nJ in 1000 ms = 450,000 nW; the budget is what
    # arrives in a period: 450,000 nW · 10 s = 4.5 mJ >= 400 uJ: mode 0
    assert rate_select(t, s, 3000, 1000, 2) == 0
    assert (s.p_nw, s.spent_nj, s.mv, s.ms) == (450_000, 400_000, 3000, 1000)
    # 10 s later at 2000 mV (E = 200,000 nJ): income = 200,000 + 400,000 spent − 450,000 = 150,000 nJ in
    # 10 s = 15,000 nW, budget 150,000 nJ: only mode 2 (100 uJ) fits
    assert rate_select(t, s, 2000, 11_000, 0) == 2
    assert s.p_nw == 15_000
    # full buffer (3600 mV >= full_mv): income = 648,000 + 100,000 − 200,000 = 548,000 nJ / 10 s =
    # 54,800 nW, budget 548,000 nJ >= 400,000: mode 0
    assert rate_select(t, s, 3600, 21_000, 2) == 0


def test_gain_reserve_probe_top_and_short_intervals():
    # stored energy below the reserve counts against the budget: 2000 mV vs ref 3000 mV, gain 1:
    # income 200,000 nJ in 1 s → 2 mJ budget − (450,000 − 200,000) = 1.75 mJ: still mode 0
    s = RateState()
    assert rate_select(table(gain=1.0), s, 2000, 1000, 2) == 0
    # a reading 100 ms after the previous (< min_dt = 10 s / 64 = 156 ms) keeps the estimate and adds
    # the new pick's energy to what was spent since the previous one
    p = s.p_nw
    assert rate_select(table(gain=1.0), s, 1900, 1100, 0) == 0
    assert s.p_nw == p and s.spent_nj == 800_000 and s.ms == 1000
    # no income (same voltage, nothing spent) and a full buffer: the estimate is 0 but the buffer clips,
    # so it probes one mode up from the current (mode 2 → 1), not two
    s = RateState(mv=3600, ms=0)
    assert rate_select(table(), s, 3600, 10_000, 2) == 1
    # top = 1: mode 0 is never picked, whatever the budget
    assert rate_select(table(top=1), RateState(), 3000, 1000, 0) == 1
    # hysteresis: moving up to mode 0 from 1 needs 400,000 · 1.25 = 500,000 nJ; a budget of 450,000 nJ
    # (45,000 nW over 10 s) keeps mode 1, staying in mode 0 is allowed
    assert rate_select(table(hysteresis=0.25), RateState(mv=3000), 3000, 10_000, 0) == 2  # no income
    # from 2000 mV (200,000 nJ) to 2300 mV (264,500 nJ) with 385,500 nJ spent: 450,000 nJ in 10 s
    s0 = RateState(mv=2000, spent_nj=385_500)
    s1 = RateState(mv=2000, spent_nj=385_500)
    assert rate_select(table(hysteresis=0.25), s0, 2300, 10_000, 0) == 0
    assert rate_select(table(hysteresis=0.25), s1, 2300, 10_000, 1) == 1


def test_bad_rate_policies_are_refused():
    with pytest.raises(UsageError, match="top mode 3"):
        rate_policy(E, 100e-6, 10.0, ref_mv=3000, gain=1.0, top=3)
    with pytest.raises(UsageError, match="period_s"):
        rate_policy(E, 100e-6, 0.0, ref_mv=3000, gain=1.0)
    with pytest.raises(UsageError, match="must not increase"):
        rate_policy([1e-4, 2e-4], 100e-6, 10.0, ref_mv=3000, gain=1.0)
    with pytest.raises(UsageError, match="no rate policy"):
        rate_select(mode_table(E, 100e-6, 1.8), RateState(), 3000, 0, 0)


def readings(seed: int, n: int) -> list[tuple[int, int]]:
    """(mV, ms) readings: random steps of 0.05–30 s (some below min_dt), voltages 1.7–3.65 V, one clock
    reset."""
    rng = random.Random(seed)
    out, ms = [], 0
    for i in range(n):
        ms = 500 if i == n // 2 else ms + rng.choice([50, 150, 2_000, 10_000, 10_000, 30_000])
        out.append((rng.randint(1700, 3650), ms))
    return out


def c_program(t: ModeTable, rows: list[tuple[int, int]], printer: str) -> str:
    cases = ", ".join(f"{{{mv}u, {ms}ul}}" for mv, ms in rows)
    return (
        '#include <stdint.h>\n#include "bl_eve.h"\n'
        f"static const struct {{ uint16_t mv; uint32_t ms; }} cases[{len(rows)}] = {{{cases}}};\n"
        f"{printer}\n"
        "void run_cases(void)\n{\n  bl_eve_rate_state s = {0u, 0u, 0u, 0u, 0u};\n  uint8_t cur = 2u;\n"
        f"  uint16_t i;\n  for (i = 0u; i < {len(rows)}u; i++) {{\n"
        "    cur = bl_eve_select_rate(&bl_eve_modes, &s, cases[i].mv, cases[i].ms, cur);\n"
        "    put_row(cur, s.p_nw, s.spent_nj);\n  }\n}\n"
    )


def python_rows(t: ModeTable, rows: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    s, cur, out = RateState(), 2, []
    for mv, ms in rows:
        cur = rate_select(t, s, mv, ms, cur)
        out.append((cur, s.p_nw, s.spent_nj))
    return out


RATE_TABLE = table(gain=0.25, ewma=0.5, hysteresis=0.1, full_mv=3550, income=1.5)


def test_c_rate_selector_matches_python(tmp_path):
    from batteryless.eve.select import emit_c_table

    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    rows = readings(1, 400)
    (tmp_path / "eve_table.c").write_text(emit_c_table(RATE_TABLE, "/* test */\n"))
    printer = (
        "#include <stdio.h>\n"
        "static void put_row(uint8_t m, uint32_t p, uint32_t s)\n"
        '{\n  printf("%u %lu %lu\\n", (unsigned)m, (unsigned long)p, (unsigned long)s);\n}\n'
    )
    (tmp_path / "cases.c").write_text(c_program(RATE_TABLE, rows, printer))
    (tmp_path / "main.c").write_text(
        "void run_cases(void);\nint main(void)\n{\n  run_cases();\n  return 0;\n}\n"
    )
    exe = tmp_path / "sel"
    subprocess.run(
        [
            "gcc",
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            f"-I{ROOT / 'firmware' / 'eve'}",
            f"-I{ROOT / 'firmware' / 'platform'}",
            "-o",
            str(exe),
            str(ROOT / "firmware" / "eve" / "bl_eve.c"),
            str(tmp_path / "eve_table.c"),
            str(tmp_path / "cases.c"),
            str(tmp_path / "main.c"),
        ],
        check=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    got = [tuple(map(int, ln.split())) for ln in out if ln]
    want = python_rows(RATE_TABLE, rows)
    assert got == want
    assert {w[0] for w in want} == {0, 1, 2}  # the readings reach every mode
