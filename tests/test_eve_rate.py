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
    # energies in C/2·mV² units: E = 2·E_J/C·10⁶, so the modes are 8e6, 4e6, 2e6 and the buffer at V mV holds
    # V². The income per period, income·period/dt, is computed without a division (eve/select.py module
    # docstring): period 10 000 ms, min_dt 156 ms, so the reciprocals are recip[m] = floor(10000·2⁸/m)
    # (the largest shift with 10000·2^r/64 <= 65535 is 8); dt = m·2^s keeps its top 7 bits, the income its
    # top 16 (income >> t), and income·period/dt = (income >> t)·recip[m] >> (8 + s − t).
    # First reading 3000 mV at 1 s; the record starts as "empty at time 0": income 9e6 in 1000 ms.
    # dt = 125·2³, recip[125] = 20480; 9e6 has 24 bits, t = 8: 35156·20480 >> 3 = 89 999 360 (9e7 less the
    # income's dropped low bits); budget >= 8e6: mode 0
    assert t.rate.energy_mv2 == (8_000_000, 4_000_000, 2_000_000)
    assert rate_select(t, s, 3000, 1000, 2) == 0
    assert (s.p_mv2, s.spent_mv2, s.mv, s.ms) == (89_999_360, 8_000_000, 3000, 1000)
    # 10 s later at 2000 mV: income = 4e6 + 8e6 spent − 9e6 = 3e6 in 10 000 ms = 78·2⁷ (+16: dropped),
    # recip[78] = 32820, t = 6: 46875·32820 >> 9 = 3 004 760 (3e6 and the 0.16 % of dt's dropped bits);
    # budget below 4e6: only mode 2
    assert rate_select(t, s, 2000, 11_000, 0) == 2
    assert s.p_mv2 == 3_004_760
    # full buffer (3600 mV): income = 12.96e6 + 2e6 − 4e6 = 10.96e6, t = 8: 42812·32820 >> 7 = 10 977 264
    # >= 8e6: mode 0
    assert rate_select(t, s, 3600, 21_000, 2) == 0
    assert s.p_mv2 == 10_977_264


def test_gain_reserve_probe_top_and_short_intervals():
    # stored energy below the reserve counts against the budget: 2000 mV vs ref 3000 mV, gain 1: income
    # 4e6 in 1 s = 4e7 per period >= 8e6 + (9e6 − 4e6): mode 0
    s = RateState()
    assert rate_select(table(gain=1.0), s, 2000, 1000, 2) == 0
    assert s.p_mv2 == 40_000_000
    # a reading 100 ms after the previous (< min_dt = 10 s / 64 = 156 ms) keeps the estimate and adds the
    # new pick's energy to what was spent since the previous one
    assert rate_select(table(gain=1.0), s, 1900, 1100, 0) == 0
    assert (s.p_mv2, s.spent_mv2, s.ms) == (40_000_000, 16_000_000, 1000)
    # no income (same voltage, nothing spent) and a full buffer: the estimate is 0 but the buffer clips,
    # so it probes one mode up from the current (mode 2 → 1), not two
    assert rate_select(table(), RateState(mv=3600), 3600, 10_000, 2) == 1
    # top = 1: mode 0 is never picked, whatever the budget
    assert rate_select(table(top=1), RateState(), 3000, 1000, 0) == 1
    # bottom = 1: with nothing fitting (no income, below the reserve) mode 1 runs, not the smallest; with
    # top = bottom one mode runs whatever the budget (a fixed mode, what a site calibration may return)
    assert rate_select(table(gain=1.0, bottom=1), RateState(mv=2000), 2000, 10_000, 1) == 1
    assert rate_select(table(gain=1.0), RateState(mv=2000), 2000, 10_000, 1) == 2
    assert rate_select(table(top=1, bottom=1), RateState(), 3600, 1000, 2) == 1
    assert rate_select(table(top=2, bottom=2), RateState(), 3600, 1000, 0) == 2
    # hysteresis 0.25: no income, nothing fits: the smallest
    assert rate_select(table(hysteresis=0.25), RateState(mv=3000), 3000, 10_000, 0) == 2
    # 2000 → 2300 mV with 7.71e6 spent: income 5.29e6 + 7.71e6 − 4e6 = 9e6 in 10 000 ms, per period
    # 35156·32820 >> 7 = 9 014 218 (dt's dropped bits, as above). Staying in mode 0 needs 8e6; moving up to it
    # from mode 1 needs 8e6 · 1.25 = 10e6: mode 1 stays
    s0, s1 = RateState(mv=2000, spent_mv2=7_710_000), RateState(mv=2000, spent_mv2=7_710_000)
    assert rate_select(table(hysteresis=0.25), s0, 2300, 10_000, 0) == 0
    assert rate_select(table(hysteresis=0.25), s1, 2300, 10_000, 1) == 1
    assert s0.p_mv2 == s1.p_mv2 == 9_014_218


def test_saturation_matches_the_32_bit_device():
    # huge income (a 65.5 V reading after 1 ms; min_dt 1 ms, so recip[1] = 10000·2² and the income's top 16
    # bits times it is shifted 14 left): the estimate saturates at 2³⁰ − 1, never wraps
    s = RateState()
    rate_select(table(min_dt_s=0.001), s, 65535, 1, 2)
    assert s.p_mv2 == (1 << 30) - 1


def test_bad_rate_policies_are_refused():
    with pytest.raises(UsageError, match="top mode 3"):
        rate_policy(E, 100e-6, 10.0, ref_mv=3000, gain=1.0, top=3)
    with pytest.raises(UsageError, match="bottom mode 0 is not one of the 3 modes from the top mode 1"):
        rate_policy(E, 100e-6, 10.0, ref_mv=3000, gain=1.0, top=1, bottom=0)
    with pytest.raises(UsageError, match="bottom mode 3"):
        rate_policy(E, 100e-6, 10.0, ref_mv=3000, gain=1.0, bottom=3)
    with pytest.raises(UsageError, match="period_s"):
        rate_policy(E, 100e-6, 0.0, ref_mv=3000, gain=1.0)
    with pytest.raises(UsageError, match="must not increase"):
        rate_policy([1e-4, 2e-4], 100e-6, 10.0, ref_mv=3000, gain=1.0)
    with pytest.raises(UsageError, match="reciprocal table"):  # 3 h between inputs, readings 1 ms apart
        rate_policy(E, 100e-6, 10_800.0, ref_mv=3000, gain=1.0, min_dt_s=0.001)
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
        "void run_cases(void)\n{\n  bl_eve_rate_state s = {0u, 0u, 0u, 0u, BL_EVE_RATE_MAGIC};\n"
        "  uint8_t cur = 2u;\n"
        f"  uint16_t i;\n  for (i = 0u; i < {len(rows)}u; i++) {{\n"
        "    cur = bl_eve_select_rate(&bl_eve_modes, &s, cases[i].mv, cases[i].ms, cur);\n"
        "    put_row(cur, s.p_mv2, s.spent_mv2);\n  }\n}\n"
    )


def python_rows(t: ModeTable, rows: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    s, cur, out = RateState(), 2, []
    for mv, ms in rows:
        cur = rate_select(t, s, mv, ms, cur)
        out.append((cur, s.p_mv2, s.spent_mv2))
    return out


RATE_TABLE = table(gain=0.25, ewma=0.5, hysteresis=0.1, full_mv=3550, income=1.5)
# weights that are not powers of two (the C's 16-bit-halves multiply) and readings 50 ms apart (dt below
# 128 ms: the reciprocal table's exact entries)
ODD_TABLE = table(gain=0.7, ewma=0.3, hysteresis=0.15, full_mv=3550, income=0.3, min_dt_s=0.05)
# a floor: the rule never goes below mode 1 (the C's loop bound and its default pick)
FLOOR_TABLE = table(gain=0.25, ewma=0.5, hysteresis=0.1, full_mv=3550, income=1.5, bottom=1)


@pytest.mark.parametrize(
    "rate_table", [RATE_TABLE, ODD_TABLE, FLOOR_TABLE], ids=["tuned-grid", "odd-weights", "floor"]
)
def test_c_rate_selector_matches_python(tmp_path, rate_table):
    from batteryless.eve.select import emit_c_table

    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    rows = readings(1, 400)
    (tmp_path / "eve_table.c").write_text(emit_c_table(rate_table, "/* test */\n"))
    printer = (
        "#include <stdio.h>\n"
        "static void put_row(uint8_t m, uint32_t p, uint32_t s)\n"
        '{\n  printf("%u %lu %lu\\n", (unsigned)m, (unsigned long)p, (unsigned long)s);\n}\n'
    )
    (tmp_path / "cases.c").write_text(c_program(rate_table, rows, printer))
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
    want = python_rows(rate_table, rows)
    assert got == want
    # the readings reach every mode the rule may pick
    assert {w[0] for w in want} == set(range(rate_table.rate.top, rate_table.rate.last() + 1))


def test_income_rate_without_division_is_within_two_percent():
    """income·period/dt from the generated reciprocals (eve/select.py income_per_period) against the exact
    quotient over incomes and intervals of every size the device sees (dt's dropped bits raise it by < 1/64,
    the income's lower it by < 2⁻¹⁵)."""
    from batteryless.eve.select import P_MAX, income_per_period, rate_constants

    rng = random.Random(3)
    c = rate_constants(table().rate)  # period 10 s, min_dt 156 ms
    for _ in range(3000):
        income, dt = rng.randrange(1, 1 << 32), rng.randrange(156, 1 << 25)
        exact = min(P_MAX, income * 10_000 // dt)
        got = income_per_period(c, income, dt)
        assert abs(got - exact) <= exact / 60 + 1, (income, dt, got, exact)
