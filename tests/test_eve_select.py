"""EVE mode selector: hand-derived thresholds, the documented picks at given voltages, hysteresis, and the C
selector (firmware/eve/bl_eve.c, built with the host gcc) against the Python reference on a grid."""

import shutil
import subprocess
from pathlib import Path

import pytest

from batteryless.errors import UsageError
from batteryless.eve.select import emit_c_table, mode_table, select_mode

ROOT = Path(__file__).resolve().parents[1]
# docs/eve.md's example: 100 uF, brown-out at 1.8 V, modes of 200, 100 and 50 uJ, hysteresis 10 %
DOC = dict(energy_j=[200e-6, 100e-6, 50e-6], capacitance_f=100e-6, v_off=1.8, hysteresis=0.1)


def test_thresholds_by_hand():
    t = mode_table(**DOC)
    # stay: ceil(1000·sqrt(1.8² + 2E/C)): sqrt(7.24) = 2.6907, sqrt(5.24) = 2.2891, sqrt(4.24) = 2.0591
    assert t.stay_mv == (2691, 2290, 2060)
    # enter: the same with 1.1·E: sqrt(7.64) = 2.7641, sqrt(5.44) = 2.3324, sqrt(4.34) = 2.0833
    assert t.enter_mv == (2765, 2333, 2084)


@pytest.mark.parametrize(
    "mv,current,expected",
    [
        (2800, 2, 0),  # enough for the largest even when coming up from the smallest
        (2700, 2, 1),  # above stay[0] but below enter[0]: hysteresis holds the climb at mode 1
        (2700, 0, 0),  # already in mode 0: staying needs only stay[0] = 2691
        (2690, 0, 1),  # 1 mV below stay[0]: down one mode
        (2100, 2, 2),  # enter[1] = 2333 not reached: stay in the smallest
        (2000, 0, 2),  # nothing fits: the smallest mode runs (FLEX finishes it)
        (2333, 2, 1),  # exactly enter[1]
    ],
)
def test_selector_picks_the_documented_mode(mv, current, expected):
    assert select_mode(mode_table(**DOC), mv, current) == expected


def test_bad_tables_are_refused():
    with pytest.raises(UsageError, match="must not increase"):
        mode_table([1e-6, 2e-6], 1e-4, 1.8)
    with pytest.raises(UsageError, match="positive"):
        mode_table([0.0], 1e-4, 1.8)
    with pytest.raises(UsageError, match="1 … 8 modes"):
        mode_table([1e-6] * 9, 1e-4, 1.8)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc is not installed")
def test_c_selector_matches_python(tmp_path):
    t = mode_table([300e-6, 120e-6, 60e-6, 20e-6], 47e-6, 2.0, hysteresis=0.2)
    (tmp_path / "eve_table.c").write_text(emit_c_table(t, "/* test */\n"))
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "bl_eve.h"\nextern const bl_eve_table bl_eve_modes;\n'
        "int main(void) {\n  unsigned mv, cur;\n"
        "  for (mv = 1500u; mv <= 4500u; mv += 7u)\n    for (cur = 0u; cur < 4u; cur++)\n"
        '      printf("%u %u %u\\n", mv, cur,\n'
        "             (unsigned)bl_eve_select(&bl_eve_modes, (uint16_t)mv, (uint8_t)cur));\n"
        "  return 0;\n}\n"
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
            f"-I{ROOT / 'firmware' / 'platform'}",  # bl_eve.c places the supply reading in BL_NVM
            "-o",
            str(exe),
            str(ROOT / "firmware" / "eve" / "bl_eve.c"),
            str(tmp_path / "eve_table.c"),
            str(tmp_path / "main.c"),
        ],
        check=True,
    )
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    rows = [tuple(map(int, ln.split())) for ln in lines if ln]
    assert len(rows) == 4 * len(range(1500, 4501, 7))
    assert {r[2] for r in rows} == {0, 1, 2, 3}  # the grid reaches every mode
    for mv, cur, got in rows:
        assert got == select_mode(t, mv, cur), (mv, cur)


def test_per_mode_margins_by_hand():
    # margin 0.5 on the 200 uJ mode: it needs what 100 uJ needs, sqrt(1.8² + 2) = 2.2891 → 2290 mV
    t = mode_table(**{**DOC, "hysteresis": 0.0}, margin=[0.5, 1.0, 1.0])
    assert t.stay_mv == (2290, 2290, 2060) and t.enter_mv == t.stay_mv
    with pytest.raises(UsageError, match="2 margins"):
        mode_table(**DOC, margin=[1.0, 1.0])


def test_surplus_floor_raises_every_mode_but_the_smallest_to_its_share_above_v_on():
    from batteryless.eve.select import with_surplus_floor

    t = mode_table([200e-6, 100e-6, 50e-6], 100e-6, 1.8, hysteresis=0.1)  # 2691/2290/2060, 2765/2333/2084
    f = with_surplus_floor(t, 3.0, 3.6, [0.5, 0.25])  # floors 3.0 + 0.3 V and 3.0 + 0.15 V
    assert f.stay_mv == (3300, 3150, 2060) and f.enter_mv == (3300, 3150, 2084)
    assert select_mode(f, 3299, 0) == 1 and select_mode(f, 3300, 2) == 0 and select_mode(f, 3149, 1) == 2
    low = with_surplus_floor(t, 2.0, 2.4, [0.0, 0.0])  # floors below the energy thresholds change nothing
    assert low.stay_mv == t.stay_mv and low.enter_mv == t.enter_mv
    with pytest.raises(UsageError, match="surplus floor"):
        with_surplus_floor(t, 3.0, 3.6, [0.5])
