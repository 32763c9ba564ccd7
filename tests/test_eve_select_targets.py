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
