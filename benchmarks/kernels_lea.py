"""The `lea` backend: MSP430FR5994 image sizes (lea vs ref) and host bit-exactness of the lea kernels.

For the digits MLP (k = 16, 16-bit weights) and CNN (k = 8, 8-bit weights), compressed with the quick test
settings, and each circulant path (fft, direct): generates code for msp430fr5994 with backends `lea` and
`ref`, builds both (clang --target=msp430 + ld.lld) and records the bytes per board region, the bytes of
our LEA driver (every function firmware/kernels/lea/msp430/bl_lea_driver.c defines; not what TI's DSPLib would
cost), and the LEA RAM used. On the host board it runs the lea build over the whole digits test set and
counts the samples whose logits equal the numeric spec's. Writes ``benchmarks/results/kernels_lea.json``.

    .venv/bin/python benchmarks/kernels_lea.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from batteryless import spec  # noqa: E402
from batteryless.artifact import load_artifact  # noqa: E402
from batteryless.codegen import codegen  # noqa: E402
from batteryless.datasets import load_dataset  # noqa: E402
from batteryless.firmware import build, run_dataset  # noqa: E402
from batteryless.firmware.image import symbols  # noqa: E402
from batteryless.rad.admm import AdmmConfig  # noqa: E402
from batteryless.rad.compress import CompressConfig, compress  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "kernels_lea.json"
# The LEA driver's functions (firmware/kernels/lea/msp430/bl_lea_driver.c): the DSPLib entry points, the
# batched complex MAC and the static helpers the compiler kept out of line.
DRIVER = ROOT / "firmware" / "kernels" / "lea" / "msp430" / "bl_lea_driver.c"


def driver_functions() -> set[str]:
    """The functions our LEA driver defines (its DSPLib entry points and helpers, static ones included), by
    name from its source: every one of them is driver code, whatever its prefix."""
    import re

    text = DRIVER.read_text(encoding="utf-8")
    return set(
        re.findall(r"(?m)^(?:static\s+)?(?:inline\s+)?[A-Za-z_][\w \t\*]*?\b(\w+)\s*\([^;]*?\)\s*\{", text)
    )


QUICK = dict(dense_epochs=3, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10))


def section_size(elf: Path, name: str) -> int:
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as fh:
        sec = ELFFile(fh).get_section_by_name(name)
        return int(sec["sh_size"]) if sec is not None else 0


def main() -> None:
    digits = load_dataset("digits")
    driver_names = driver_functions()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for model, k, bits in (("mlp", 16, 16), ("cnn", 8, 8)):
            art = d / f"{model}.bl"
            compress(model, "digits", out=art, config=CompressConfig(block_size=k, weight_bits=bits, **QUICK))
            for path in ("fft", "direct"):
                row: dict = {"model": model, "block": k, "weight_bits": bits, "path": path}
                for backend in ("lea", "ref"):
                    gen = d / f"gen-{model}-{path}-{backend}"
                    # coarse: the backends' own layer kernels (auto may make the ref CNN bl_mac_step units)
                    cg = codegen(art, "msp430fr5994", gen, backend=backend, path=path, granularity="coarse")
                    res = build("msp430fr5994", gen, backend, out_dir=d / f"b-{model}-{path}-{backend}")
                    regions = {r.name: r.used for r in res.regions}
                    row[backend] = {r: regions[r] for r in ("code", "ram", "lea_ram")}
                    if backend == "lea":
                        syms = symbols(res.image)
                        row[backend]["dsplib_driver_bytes"] = sum(
                            s.size for n, s in syms.items() if n in driver_names
                        )
                        # the hot loops' section (BL_LEA_RAMFUNC): where the memory plan put it, its
                        # built size (counted in ram when there, else in code) and the plan's bound
                        plan = cg.schedule["memory_plan"]["ramfunc"]
                        row[backend]["ramfunc"] = {
                            "region": plan["region"],
                            "bytes": section_size(res.image, ".ramfunc"),
                            "plan_bytes": plan["bytes"],
                        }
                gen = d / f"gen-host-{model}-{path}"
                res = codegen(art, "host", gen, backend="lea", path=path)
                img = build("host", gen, "lea", out_dir=d / f"b-host-{model}-{path}").image
                n = len(digits.x_test)
                t = time.perf_counter()
                run = run_dataset(img, "host", art, "digits", count=n)
                wall = time.perf_counter() - t
                ref = spec.integer_inference(load_artifact(art), digits.x_test, res.paths)
                got = np.array(run.logits)
                row["host_lea"] = {
                    "samples": n,
                    "bit_exact_samples": int(np.sum(np.all(got == ref, axis=1))),
                    "wall_s": round(wall, 2),
                }
                rows.append(row)
                print(json.dumps(row))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "command": "benchmarks/kernels_lea.py",
        "note": "msp430fr5994 lea images link our LEA driver for the DSPLib calls (dsplib_driver_bytes: its "
        "code+rodata, the driver's functions); they run on msp430sim in benchmarks/lea.py, not here.",
        "rows": rows,
    }
    tmp_out = RESULTS.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(out, indent=1) + "\n")
    tmp_out.replace(RESULTS)


if __name__ == "__main__":
    main()
