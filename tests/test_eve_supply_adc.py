"""The MSP430 EVE supply hook (firmware/platform/msp430/eve_supply_adc.c): ADC12_B reads AVCC/2 against
REF_A's 2.0 V on the project's MSP430FR5994 simulator, whose ADC model converts a supply voltage the host
sets. At each voltage the image's reading equals the hand-derived 12-bit conversion and its picks equal
batteryless.eve.select's at that voltage."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from batteryless.boards import board_header, load_board
from batteryless.errors import BoardError, EmulationError
from batteryless.eve.select import emit_c_table, mode_table, select_mode
from batteryless.firmware import build
from batteryless.firmware.msp430sim import Msp430Sim, run_image

ROOT = Path(__file__).resolve().parents[1]
BOARD = "msp430fr5994"
TABLE = mode_table([300e-6, 120e-6, 60e-6], 100e-6, 1.8, hysteresis=0.1)


def _thresholds() -> list[int]:
    return sorted({int(v) for v in (*TABLE.stay_mv, *TABLE.enter_mv)})


def _voltages() -> list[int]:
    """Midpoints between neighbouring thresholds, and one below the lowest / above the highest (all within
    the buffer's 1.8-3.6 V), so that no case is within the ADC's ~1 mV step of a threshold."""
    th = [t for t in _thresholds() if 1850 < t < 3550]
    mids = [(a + b) // 2 for a, b in zip(th, th[1:], strict=False) if b - a > 20]
    return [th[0] - 40, *mids, min(th[-1] + 40, 3600)]


def _adc_mv(v: int) -> int:
    """Hand derivation: AVCC/2 (exact half, whole mV) to a 12-bit code against 2000 mV, floor; back to AVCC
    as code * 2 * 2000 / 4096, floor."""
    code = min(4095, (v // 2) * 4096 // 2000)
    return code * 4000 // 4096


@pytest.mark.firmware
def test_supply_hook_reading_and_picks_match_python(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "bl_eve.h").write_text((ROOT / "firmware" / "eve" / "bl_eve.h").read_text())
    (app / "eve_table.c").write_text(emit_c_table(TABLE, "/* test */\n"))
    (app / "main.c").write_text(
        '#include "bl_eve.h"\n#include "bl_platform.h"\n\nextern const bl_eve_table bl_eve_modes;\n\n'
        "int bl_app_main(void)\n{\n  uint16_t mv = bl_eve_read_mv();\n"
        '  bl_puts("mv ");\n  bl_put_i32((int32_t)mv);\n  bl_puts(" picks ");\n'
        "  bl_put_i32((int32_t)bl_eve_select(&bl_eve_modes, mv, 0u));\n  bl_putc(' ');\n"
        "  bl_put_i32((int32_t)bl_eve_select(&bl_eve_modes, mv, (uint8_t)(bl_eve_modes.n_modes - 1u)));\n"
        "  bl_putc('\\n');\n  return 0;\n}\n"
    )
    img = build(
        BOARD,
        backend="ref",
        app=str(app),
        out_dir=tmp_path / "build",
        defines={"BL_EVE_SUPPLY_ADC": 1},
        extra_sources=[ROOT / "firmware" / "eve" / "bl_eve.c", app / "eve_table.c"],
    ).image
    board = load_board(BOARD)
    picks = set()
    for v in _voltages():
        r = run_image(img, board, timeout=60, cuts=[], supply_mv=v)
        assert r.exit_code == 0, r.output
        m = re.search(r"mv (\d+) picks (\d+) (\d+)", r.output)
        assert m, r.output
        mv, p0, plast = (int(g) for g in m.groups())
        assert mv == _adc_mv(v), (v, r.output)
        last = len(TABLE.stay_mv) - 1
        assert (p0, plast) == (select_mode(TABLE, v, 0), select_mode(TABLE, v, last)), (v, r.output)
        picks |= {p0, plast}
    assert picks == set(range(len(TABLE.stay_mv)))  # the voltages reach every mode


def test_supply_bad_values_are_refused():
    with Msp430Sim() as sim:
        for bad in (-1, 70000, 2.5, True):
            with pytest.raises(EmulationError, match="supply"):
                sim.set_supply_mv(bad)


def test_board_supply_adc_table_missing_a_key_is_a_board_error():
    good = load_board(BOARD)
    adc = {k: v for k, v in good.extra["supply_adc"].items() if k != "ref_mv"}
    board = dataclasses.replace(good, extra={**good.extra, "supply_adc": adc})
    with pytest.raises(BoardError, match=r"\[supply_adc\] needs integer ref_mv"):
        board_header(board)
