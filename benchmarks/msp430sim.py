"""The project's MSP430FR5994 simulator (tools/msp430sim): speed and cycle counts against mspdebug.

Runs the ref selftest image (fixed input) on the simulator with the MSP430X cycle tables and FRAM wait
states (the default), without the wait states, with the original MSP430 CPU's tables, and on mspdebug's
simulator; records the MCLK cycles between the selftest's two marks and the constant-generator source
operands executed there (mspdebug 0.22 charges them like memory operands). Speed: emulated MCLK cycles per
host second over a long run (the selftest looped in one simulator, no Python in the loop) and per image
run through ``batteryless.firmware.run`` (ELF patching and loading included). Writes
``benchmarks/results/msp430sim.json``.

    nice .venv/bin/python benchmarks/msp430sim.py
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from batteryless.boards import with_emulator  # noqa: E402
from batteryless.firmware import build, patch_input, run  # noqa: E402
from batteryless.firmware.image import symbols  # noqa: E402
from batteryless.firmware.msp430sim import Msp430Sim  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "msp430sim.json"


def _between_marks(img: Path, **kw) -> dict:
    sym = symbols(img)
    s = Msp430Sim(stop_pc=sym["bl_done"].address, mark_addr=0x152, **kw)
    s.load_elf(img)
    s.power_on()
    s.run(max_cycles=10**10)
    m = s.marks()
    t = Msp430Sim(mark_addr=0x152, **kw)
    t.load_elf(img)
    t.power_on()
    t.run(max_insns=m[0].instruction)
    c0, g0 = t.cycles, t.constant_sources()
    t.run(max_insns=m[1].instruction)
    g = [b - a for a, b in zip(g0, t.constant_sources(), strict=True)]
    return {
        "cycles": t.cycles - c0,
        "instructions": m[1].instruction - m[0].instruction,
        "constant_sources_by_as": g,
        "fram": s.fram_stats(),
    }


def main() -> None:
    out: dict = {"command": "benchmarks/msp430sim.py"}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        img0 = build("msp430fr5994", backend="ref", out_dir=d / "st").image
        x = (np.arange(-4, 4, dtype=np.int16) * 1234).tobytes()
        img = patch_input(img0, x, d / "p.elf")
        rows = {
            "msp430x_fram": _between_marks(img),
            "msp430x_no_fram": _between_marks(img, fram_timing=False),
            "msp430_no_fram": _between_marks(img, fram_timing=False, cpu_timing="msp430"),
        }
        if shutil.which("mspdebug"):
            t = time.perf_counter()
            md = run(img, "msp430fr5994")
            rows["mspdebug_0.22"] = {
                "cycles": md.marks[1][1] - md.marks[0][1],
                "wall_s_per_run": round(time.perf_counter() - t, 3),
                "cycles_total": md.mclk_cycles,
            }
            g = rows["msp430_no_fram"]["constant_sources_by_as"]
            rows["msp430_no_fram"]["plus_mspdebug_constant_generator_charge"] = (
                rows["msp430_no_fram"]["cycles"] + 2 * g[1] + g[2] + g[3]
            )
            for k in ("msp430x_fram", "msp430x_no_fram", "msp430_no_fram"):
                rows[k]["over_mspdebug"] = round(rows[k]["cycles"] / rows["mspdebug_0.22"]["cycles"], 4)
        out["selftest_between_marks"] = rows
        # speed: the whole selftest image booted again and again in one simulator (power cut = reboot)
        sym = symbols(img)
        s = Msp430Sim(stop_pc=sym["bl_done"].address)
        s.load_elf(img)
        s.power_on()
        t = time.perf_counter()
        runs = 0
        while time.perf_counter() - t < 3.0:
            s.run(max_cycles=s.cycles + 10**9)
            s.power_cut()
            runs += 1
        wall = time.perf_counter() - t
        out["speed"] = {
            "cycles_per_s": round(s.cycles / wall),
            "instructions_per_s": round(s.instructions / wall),
            "selftest_runs": runs,
        }
        board = with_emulator("msp430fr5994", "msp430sim")
        t = time.perf_counter()
        r = run(img, board)
        out["speed"]["wall_s_per_run_via_firmware_run"] = round(time.perf_counter() - t, 3)
        out["speed"]["selftest_cycles"] = r.mclk_cycles
    print(json.dumps(out, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = RESULTS.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(out, indent=1) + "\n")
    tmp_out.replace(RESULTS)


if __name__ == "__main__":
    main()
