"""The EVE mode selector (firmware/eve/bl_eve.c) built by the project's CMake and run on the MSP430FR5994
simulator (mspdebug, 16-bit int) and QEMU Cortex-M4: its picks equal batteryless.eve.select's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from batteryless.eve.select import emit_c_table, mode_table, select_mode
from batteryless.firmware import build, run

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.firmware, pytest.mark.slow]
_TOOLS = {"mps2-an386": "qemu-system-arm", "msp430fr5994": "mspdebug"}
TABLE = mode_table([300e-6, 120e-6, 60e-6, 20e-6], 47e-6, 2.0, hysteresis=0.2, margin=[0.8, 1.0, 1.2, 1.0])
CASES = [(mv, cur) for mv in range(1900, 4600, 90) for cur in (0, 3)]


@pytest.mark.parametrize("board", ["msp430fr5994", "mps2-an386"])
def test_selector_on_target_matches_python(board, tmp_path):
    if shutil.which(_TOOLS[board]) is None:
        pytest.skip(f"{_TOOLS[board]} is not installed (scripts/setup.sh)")
    app = tmp_path / "app"
    app.mkdir()
    (app / "bl_eve.h").write_text((ROOT / "firmware" / "eve" / "bl_eve.h").read_text())
    (app / "eve_table.c").write_text(emit_c_table(TABLE, "/* test */\n"))
    pairs = ", ".join(f"{{{mv}u, {cur}u}}" for mv, cur in CASES)
    (app / "main.c").write_text(
        '#include "bl_eve.h"\n#include "bl_platform.h"\n\nextern const bl_eve_table bl_eve_modes;\n'
        f"static const uint16_t cases[{len(CASES)}][2] = {{{pairs}}};\n\n"
        'int bl_app_main(void)\n{\n  uint16_t i;\n  bl_puts("picks");\n'
        f"  for (i = 0u; i < {len(CASES)}u; i++) {{\n"
        "    bl_eve_supply_mv = cases[i][0];\n    bl_putc(' ');\n"
        "    bl_put_i32((int32_t)bl_eve_select(&bl_eve_modes, bl_eve_read_mv(), (uint8_t)cases[i][1]));\n"
        "  }\n  bl_putc('\\n');\n  return 0;\n}\n"
    )
    res = build(
        board,
        backend="ref",
        app=str(app),
        out_dir=tmp_path / "build",
        extra_sources=[ROOT / "firmware" / "eve" / "bl_eve.c", app / "eve_table.c"],
    )
    r = run(res.image, board, timeout=300)
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("picks"))
    got = [int(v) for v in line.split()[1:]]
    want = [select_mode(TABLE, mv, cur) for mv, cur in CASES]
    assert got == want
    assert set(want) == {0, 1, 2, 3}  # the cases reach every mode


@pytest.mark.parametrize("weights", ["tuned-grid", "odd-weights", "floor"])
@pytest.mark.parametrize("board", ["msp430fr5994", "mps2-an386"])
def test_rate_selector_on_target_matches_python(board, weights, tmp_path):
    """The rate rule's division-free 32-bit arithmetic on a 16-bit target (bit-by-bit shifts, the 16x16
    multiply helper) and on the Cortex-M4 (CLZ and barrel shifts): picks, income estimates and spent energy
    of every reading equal the Python reference's, with the tuner's power-of-two weights and with others."""
    from test_eve_rate import FLOOR_TABLE, ODD_TABLE, RATE_TABLE, c_program, python_rows, readings

    RATE_TABLE = {"tuned-grid": RATE_TABLE, "odd-weights": ODD_TABLE, "floor": FLOOR_TABLE}[weights]  # noqa: N806

    if shutil.which(_TOOLS[board]) is None:
        pytest.skip(f"{_TOOLS[board]} is not installed (scripts/setup.sh)")
    rows = readings(3, 40)  # mspdebug's captured output holds about 1 kB
    app = tmp_path / "app"
    app.mkdir()
    (app / "bl_eve.h").write_text((ROOT / "firmware" / "eve" / "bl_eve.h").read_text())
    (app / "eve_table.c").write_text(emit_c_table(RATE_TABLE, "/* test */\n"))
    printer = (
        '#include "bl_platform.h"\n'
        "static void put_row(uint8_t m, uint32_t p, uint32_t s)\n{\n  bl_putc(' ');\n"
        "  bl_put_i32((int32_t)m);\n  bl_putc(' ');\n  bl_put_i32((int32_t)p);\n  bl_putc(' ');\n"
        "  bl_put_i32((int32_t)s);\n}\n"
    )
    (app / "cases.c").write_text(c_program(RATE_TABLE, rows, printer))
    (app / "main.c").write_text(
        '#include "bl_platform.h"\nvoid run_cases(void);\n'
        "int bl_app_main(void)\n{\n  bl_puts(\"rate\");\n  run_cases();\n  bl_putc('\\n');\n  return 0;\n}\n"
    )
    res = build(
        board,
        backend="ref",
        app=str(app),
        out_dir=tmp_path / "build",
        extra_sources=[ROOT / "firmware" / "eve" / "bl_eve.c", app / "eve_table.c", app / "cases.c"],
    )
    r = run(res.image, board, timeout=300)
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("rate"))
    vals = [int(v) for v in line.split()[1:]]
    got = [tuple(vals[i : i + 3]) for i in range(0, len(vals), 3)]
    want = python_rows(RATE_TABLE, rows)
    assert got == want
    if weights == "tuned-grid":  # these 40 readings reach every mode of that table
        assert {w[0] for w in want} == {0, 1, 2}
