"""Benchmark of FLEX, the intermittent runtime, inside the real firmware.

- overhead under continuous power: QEMU instructions of the flex app (each policy) vs the plain model app
  (same generated model, same NVM buffers, no FLEX);
- power failing every N instructions (N = 1e3 … 1e6): total instructions to finish one inference, reboots,
  re-executed tasks, and whether the logits are bit-exact with the continuous run — for FLEX (commit per
  task), per-layer commits and restart-from-scratch, on QEMU, for the digits MLP and CNN;
- harnesses: host exhaustive sweep and random schedules, QEMU and mspdebug random schedules (counts, time);
- power cycles per second: thousands of cuts in one QEMU process at a fixed spacing (5k, 20k, 100k
  instructions) on FLEX images that cannot finish at that spacing (every cycle boots, recovers and re-runs
  part of a task), with the default reset (image kept) and with QEMU's own reset (image reloaded).

- issue 13: the same rows on the MSP430 simulator (the input load is a resumable task too: the first
  ``input_tasks`` tasks of every image, its chunk size from the granularity); FLEX rows at fine
  granularities (codegen --granularity, bl_mac_step tasks) on both; each row with granularity,
  largest_step (QEMU: from a trace of the commit), re-execution per failure; rows cut only until the
  inference is done (the result is printed in one piece); the mutation table (each broken runtime
  under the host sweep and the QEMU exact commit sweep, with faults).

Writes benchmarks/results/intermittent.json. Run: .venv/bin/python benchmarks/intermittent.py
(``--harness-only``: re-measure only the harness figures and replace them in the existing file;
``--msp430``: re-measure only the MSP430 simulator's fine-granularity rows, step fit and overhead and
replace them in the existing file;
``--tables``: print the docs tables from the results file.)
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from batteryless.boards import load_board, with_emulator  # noqa: E402
from batteryless.codegen import codegen  # noqa: E402
from batteryless.errors import BuildError  # noqa: E402
from batteryless.firmware import build, run  # noqa: E402
from batteryless.flex import (  # noqa: E402
    BROKEN,
    build_flex,
    measure_largest_step,
    model_input,
    run_schedule,
    verify_intermittent,
)
from batteryless.rad.admm import AdmmConfig  # noqa: E402
from batteryless.rad.compress import CompressConfig, compress  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "intermittent.json"
NS = [1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]
POLICIES = ["flex", "layer", "restart"]
MAX_CUTS = 1000  # cuts per periodic-schedule row (the plugin has no limit; rows that never finish stop here)
QEMU = "mps2-an386"
PROBE_CUTS = 150  # for N where no boot can finish an atomic step: show that it does not finish
MSP = "msp430fr5994"
# fine granularities (codegen --granularity, the most ESTIMATED cycles of the board's cost model per task)
FINE = {QEMU: [3000, 800, 200], MSP: []}  # the MSP430's fine rows: _msp430_only (MSP_FINE, range dispatch)
MSP_NS = [1_000, 3_000, 10_000, 30_000, 100_000]  # the simulator runs ~1-3 M instructions/s: fewer rows
MSP_MAX_CUTS = 300
FINE_MAX_CUTS = 3000


def _granularity(img) -> str:
    g = img.granularity or {}
    if g.get("mode") == "fine":
        return f"fine {g['max_step_cycles']} cycles"
    return "coarse"


def _row(harness, policy, n, img, inp, ref, cont_insns, max_cuts, largest_step=None):
    total_budget = 40 * cont_insns
    k = min(max_cuts, max(1, total_budget // n))
    cuts = [n * (i + 1) for i in range(k)]
    t = time.perf_counter()
    r = run_schedule(img, harness, inp, cuts, ref, timeout=1800, until_done=True)
    wall = time.perf_counter() - t
    # the run finished under the periodic schedule only if it did so before the cut list ran out
    finished = r.error is None and r.logits is not None and r.reboots < len(cuts)
    reexec = (r.task_runs - img.num_tasks) if finished and r.task_runs is not None else None
    row = {
        "harness": harness,
        "policy": policy,
        "granularity": _granularity(img),
        "num_tasks": img.num_tasks,
        "largest_step": largest_step,
        "fail_every_n": n,
        "finished": finished,
        "total_instructions": r.instructions if finished else None,
        "reboots": r.reboots if finished else None,
        "correct": bool(finished and r.correct),
        "reexecuted_tasks": reexec,
        "reexecuted_per_failure": round(reexec / r.reboots, 3) if reexec is not None and r.reboots else None,
        "max_tasks_lost_per_failure": r.lost_max if finished else None,
        "overhead_vs_continuous": round(r.instructions / cont_insns, 3)
        if finished and r.instructions
        else None,
        "wall_s": round(wall, 2),
    }
    if not finished:
        row["note"] = f"no completion within {r.reboots} power failures (an atomic step does not fit in N)"
    return row


# (model, cut spacing in instructions, cuts): spacings below each model's largest atomic step (MLP 11,281,
# CNN 149,766 instructions), so the inference never finishes and every cut happens
THROUGHPUT = [("mlp", 1_000, 4000), ("mlp", 5_000, 2000), ("cnn", 20_000, 2000), ("cnn", 100_000, 500)]


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _throughput(model, img, inp, spacing, k, reload_image):
    """Power cycles per second with ``k`` cuts every ``spacing`` instructions in one QEMU process."""
    cuts = [spacing * (i + 1) for i in range(k)]
    c0, t = _child_cpu(), time.perf_counter()
    r = run(img, QEMU, inputs=inp, cuts=cuts, timeout=1800, mark_ids=[], reload_image=reload_image)
    wall, cpu = time.perf_counter() - t, _child_cpu() - c0
    return {
        "model": model,
        "cut_spacing": spacing,
        "image_reloaded_at_reset": reload_image,
        "cuts": k,
        "resets": r.resets,
        "instructions": r.instructions,
        "translations": r.translations,
        "max_cut_lateness": max(a - b for a, b in zip(r.cut_counts, cuts, strict=False)),
        "wall_s": round(wall, 3),
        "qemu_cpu_s": round(cpu, 3),
        "resets_per_s": round(r.resets / wall),
        "resets_per_qemu_cpu_s": round(r.resets / cpu),
        "minsn_per_qemu_cpu_s": round(r.instructions / cpu / 1e6, 1),
    }


def _more_rows(tmp: Path, model: str, art: Path, inp: bytes, out: dict) -> list[dict]:
    """MSP430 simulator rows for the coarse policies, and FLEX rows at fine granularities on QEMU and the
    MSP430 simulator; continuous-power instructions and overhead of each fine image in out["fine"]."""
    rows = []
    # MSP430 simulator: FLEX only (at these N the per-layer and restart policies cannot finish on QEMU
    # either; the simulator is ~100x slower than QEMU)
    img = build_flex(art, MSP, tmp / f"m-{model}-flex")
    cont = run_schedule(img, MSP, inp, [])
    out["fine"][f"{model} {MSP} default"] = {
        "num_tasks": img.num_tasks,
        "continuous_instructions": cont.instructions,
        "granularity": img.granularity,
    }
    for n in MSP_NS:
        row = _row(MSP, "flex", n, img, inp, cont.logits, cont.instructions, MSP_MAX_CUTS)
        rows.append({"model": model, **row})
        print(json.dumps(rows[-1]), flush=True)
    msp_coarse_cont = cont.instructions
    for harness in (QEMU, MSP):
        if harness == QEMU:
            coarse_cont = run_schedule(
                build_flex(art, QEMU, tmp / f"q-{model}-c"), QEMU, inp, []
            ).instructions
        else:
            coarse_cont = msp_coarse_cont  # the MSP430 image at the default granularity
        for g in FINE[harness]:
            try:
                img = build_flex(art, harness, tmp / f"f-{model}-{harness}-{g}", granularity=g)
            except BuildError as exc:  # e.g. hundreds of tasks' code beyond the MSP430's 40 KB code region
                out["fine"][f"{model} {harness} {g}"] = {"build_error": str(exc).splitlines()[-1][:200]}
                print(json.dumps(out["fine"][f"{model} {harness} {g}"]), flush=True)
                continue
            cont = run_schedule(img, harness, inp, [])
            step = measure_largest_step(img, harness, inp) if harness == QEMU else None
            out["fine"][f"{model} {harness} {g}"] = {
                "num_tasks": img.num_tasks,
                "continuous_instructions": cont.instructions,
                "vs_coarse_flex": round(cont.instructions / coarse_cont, 3),
                "largest_step": step,
                "paths": img.paths,
            }
            # thousands of tasks: about one per power-on period at the finest, so that many cuts
            max_cuts = max(FINE_MAX_CUTS, 3 * img.num_tasks)
            for n in NS if harness == QEMU else MSP_NS[:4]:
                if n > 30 * (step or 1000):  # coarse rows cover the long periods
                    continue
                row = _row(harness, "flex", n, img, inp, cont.logits, cont.instructions, max_cuts, step)
                rows.append({"model": model, **row})
                rows[-1]["overhead_vs_coarse_continuous"] = (
                    round(rows[-1]["total_instructions"] / coarse_cont, 3) if rows[-1]["finished"] else None
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _mutants(tmp: Path, art: Path, inp: bytes) -> list[dict]:
    """Each deliberately broken runtime under the host sweep + fault schedules and the QEMU exact
    commit/recovery sweep + fault schedules: which harness caught it, with which checks."""
    res = []
    for name in [b for b in BROKEN if b != "none"]:
        caught, checks = [], {}
        for harness, kw in (("host", dict(sweep=True)), (QEMU, dict(sweep_commit=True))):
            img = build_flex(art, harness, tmp / f"mut-{harness}-{name}", broken=name, faults=True)
            rep = verify_intermittent(None, harness, image=img, inputs=inp, faults=True, **kw)
            if not rep.passed:
                caught.append(harness)
                checks[harness] = sorted(rep.violations)
        res.append({"name": name, "caught_by": caught, "checks": checks, "caught_on_qemu": QEMU in caught})
    return res


def _tables() -> int:
    """Print the docs tables (docs/flex.md, docs/benchmarks.md) from results/intermittent.json."""
    out = json.loads(RESULTS.read_text())
    print(
        "| model | target | granularity | tasks | largest step | N | finished | correct | reboots | "
        "re-executed / failure | overhead vs own continuous | vs coarse continuous |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in out["rows"]:
        if r["policy"] != "flex" or r["fail_every_n"] > 30_000:
            continue
        yes = "yes" if r["finished"] else "no"
        cells = [
            r["model"],
            r["harness"],
            r.get("granularity", "coarse"),
            r.get("num_tasks", ""),
            r.get("largest_step") or "—",
            f"{r['fail_every_n']:,}",
            yes,
            "yes" if r["correct"] else "—",
            r["reboots"] if r["reboots"] is not None else "—",
            r.get("reexecuted_per_failure") or "—",
            r["overhead_vs_continuous"] or "—",
            r.get("overhead_vs_coarse_continuous") or "—",
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print()
    print("| mutant | caught by | checks (QEMU) | caught on QEMU |")
    print("|---|---|---|---|")
    for m in out.get("mutants", []):
        print(
            f"| {m['name']} | {', '.join(m['caught_by'])} | {', '.join(m['checks'].get(QEMU, []))} | "
            f"{m['caught_on_qemu']} |"
        )
    return 0


def main() -> int:
    if "--tables" in sys.argv[1:]:
        return _tables()
    with tempfile.TemporaryDirectory(prefix="bl-bench-flex-") as d:
        if "--harness-only" in sys.argv[1:]:
            return _harness_only(Path(d))
        if "--msp430" in sys.argv[1:]:
            return _msp430_only(Path(d))
        return _main(Path(d))


def _harness(tmp: Path, art: Path, inp: bytes, qimg) -> dict:
    """flex-verify figures: schedules, failures, re-execution and power failures per second of each harness.
    QEMU: one QEMU process per schedule (random 100, sweep of 200 cut points) and, for a continuous-inference
    image, 200 inferences in ONE QEMU process under random cuts (flex-verify --continuous)."""
    keys = ("schedules", "reboots", "reexecuted_tasks", "reexecuted_per_failure", "resets_per_s")
    q = verify_intermittent(None, QEMU, image=qimg, inputs=inp, random=100, seed=7)
    qs = verify_intermittent(None, QEMU, image=qimg, inputs=inp, sweep=True)
    cimg = build_flex(art, QEMU, tmp / "q-flex-continuous", continuous=True)
    qc = verify_intermittent(None, QEMU, image=cimg, inputs=inp, random=200, seed=7)
    himg = build_flex(art, "host", tmp / "h-flex")
    hs = verify_intermittent(None, "host", image=himg, inputs=inp, sweep=True)
    hr = verify_intermittent(None, "host", image=himg, inputs=inp, random=2000, seed=7)
    mimg = build_flex(art, "msp430fr5994", tmp / "m-flex")
    mr = verify_intermittent(None, "msp430fr5994", image=mimg, inputs=inp, random=5, seed=7)
    qe = verify_intermittent(None, QEMU, image=qimg, inputs=inp, sweep_commit=True)
    me = verify_intermittent(None, MSP, image=mimg, inputs=inp, sweep_commit=True, commit_stride=25)

    def summary(rep) -> dict:
        return {k: rep.to_dict()[k] for k in keys} | {
            "mode": rep.mode,
            "passed": rep.passed,
            "seconds": round(rep.seconds, 2),
        }

    return {
        "qemu_random_100": summary(q),
        "qemu_sweep": summary(qs),
        "qemu_continuous_random_200": summary(qc),
        "mspdebug_random_5": {
            "passed": mr.passed,
            "reboots": mr.reboots,
            "continuous_instructions": mr.continuous_count,
            "seconds": round(mr.seconds, 2),
        },
        "qemu_exact_commit_sweep": summary(qe) | {"violations": qe.violations},
        "mspdebug_commit_sweep_stride_25": summary(me) | {"violations": me.violations},
        "host_sweep": {"cut_points": hs.schedules, "passed": hs.passed, "seconds": round(hs.seconds, 2)},
        "host_random_2000": {
            "reboots": hr.reboots,
            "reexecuted_per_failure": round(hr.reexecuted_per_failure, 3),
            "passed": hr.passed,
            "seconds": round(hr.seconds, 2),
        },
        "note": "seconds are wall time of the schedules (the continuous-power reference runs excluded), "
        "2 workers for the per-schedule harnesses, on a 2-core machine shared with other jobs",
    }


def _harness_only(tmp: Path) -> int:
    """Re-measure only the harness figures and replace them in the existing results file."""
    art = tmp / "mlp.bl"
    quick = dict(dense_epochs=3, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10))
    compress("mlp", "digits", out=art, config=CompressConfig(block_size=16, weight_bits=16, **quick))
    inp = model_input(art, 0)
    out = json.loads(RESULTS.read_text())
    out["harness"] = _harness(tmp, art, inp, build_flex(art, QEMU, tmp / "q-flex"))
    out["harness_command"] = ".venv/bin/python benchmarks/intermittent.py --harness-only"
    t = RESULTS.with_suffix(".json.tmp")
    t.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(t, RESULTS)
    print(json.dumps(out["harness"], indent=1))
    return 0


# issue 13, the MSP430 half: fine images (range dispatch) on the simulator. Granularity in the board cost
# model's estimated MCLK cycles per task; the step fit uses both, the rows the finer one. 1,300 since the
# session-8 cost table (the bl_mac_step walk priced at its measured ~44-52 MCLK per MAC, not the circulant
# kernels' ~125), so 1,500 now makes 6-MAC MLP steps that never finish in a 1,000-instruction period; 1,300
# makes 2-MAC steps (tests/test_flex_granularity.py FINE_1000)
MSP_FINE = [1300, 4000]
MSP_FINE_NS = [1_000, 3_000, 10_000]
STEP_KINDS = {"mac_step": None, "relu": "relu", "maxpool": "pool", "avgpool": "pool"}


def _msp_steps(img, art: Path, inp: bytes, g: float) -> tuple[dict, list[dict]]:
    """Continuous run of a fine MSP430 image: totals (instructions, MCLK cycles) and every atomic step
    (from one task mark to the next: the task, the app's loop and the commit; the last task to the done
    mark) with the features of its task (codegen's plan for the same granularity)."""
    from batteryless.artifact import load_artifact
    from batteryless.boards import load_board
    from batteryless.codegen.costs import cost_model
    from batteryless.codegen.plan import build_plan
    from batteryless.flex.image import DONE_MARK

    b = load_board(MSP)
    plan = build_plan(load_artifact(art), b, "ref", "auto", cost_model(b, "ref"), float(g))
    n_in = img.granularity["input_tasks"]
    assert len(plan.tasks) + n_in == img.num_tasks, (len(plan.tasks), n_in, img.num_tasks)
    r = run(img.image, MSP, inputs=inp)
    marks = [(m.value, m.cycle, m.instruction) for m in _sim_marks(img.image, b, inp)]
    marks = [m for m in marks if 1 <= m[0] <= 239 or m[0] == DONE_MARK]
    assert len(marks) == img.num_tasks + 1, (len(marks), img.num_tasks)
    chunk = img.granularity["input_chunk"]
    in_len = len(inp) // 2
    steps = []
    for i, (a, z) in enumerate(zip(marks, marks[1:], strict=False)):
        row = {"cycles": z[1] - a[1], "instructions": z[2] - a[2]}
        if i < n_in:
            row |= {"kind": "input", "elements": min(chunk, in_len - i * chunk)}
        else:
            t = plan.tasks[i - n_in]
            kind = STEP_KINDS.get(t.kind, t.kind)
            if t.kind == "mac_step":
                kind = "linear" if t.op == "linear" else "conv"
            row |= {"kind": kind, "outputs": t.outputs, "macs": t.macs, "elements": t.elements}
        steps.append(row)
    return {"instructions": r.instructions, "mclk_cycles": r.mclk_cycles}, steps


def _sim_marks(elf: Path, board, data: bytes):
    """The simulator's marks of one continuous run with MCLK cycle AND instruction counts (the runner keeps
    only the cycle)."""
    import struct

    from batteryless.firmware.image import INPUT_HEADER, INPUT_MAGIC, symbols
    from batteryless.firmware.msp430sim import STOP_PC, Msp430Sim

    syms = symbols(elf)
    inp = syms["bl_input"]
    pad = bytes(inp.size - INPUT_HEADER - len(data))
    sim = Msp430Sim(stop_pc=syms["bl_done"].address & ~1, mark_addr=int(board.emulator["mark_register"]))
    try:
        sim.load_elf(elf)
        sim.load(inp.address, struct.pack("<II", INPUT_MAGIC, len(data)) + data + pad)
        sim.power_on()
        assert sim.run(max_cycles=2_000_000_000) == STOP_PC
        return sim.marks()
    finally:
        sim.close()


def _msp_boot(img, inp: bytes) -> dict:
    """A resumed boot on msp430sim: power cut half-way through a continuous run, then instructions and MCLK
    cycles from the reset to the first task mark (start-up, recovery with its record check, the app's
    set-up)."""
    import struct

    from batteryless.firmware.image import INPUT_HEADER, INPUT_MAGIC, symbols
    from batteryless.firmware.msp430sim import STOP_PC, Msp430Sim

    b = load_board(MSP)
    syms = symbols(img.image)
    ip = syms["bl_input"]
    data = struct.pack("<II", INPUT_MAGIC, len(inp)) + inp + bytes(ip.size - INPUT_HEADER - len(inp))
    sim = Msp430Sim(stop_pc=syms["bl_done"].address & ~1, mark_addr=int(b.emulator["mark_register"]))
    try:
        sim.load_elf(img.image)
        sim.load(ip.address, data)
        sim.power_on()
        assert sim.run(max_cycles=2_000_000_000) == STOP_PC
        total = sim.instructions
    finally:
        sim.close()
    sim = Msp430Sim(stop_pc=syms["bl_done"].address & ~1, mark_addr=int(b.emulator["mark_register"]))
    try:
        sim.load_elf(img.image)
        sim.load(ip.address, data)
        sim.power_on()
        sim.run(max_insns=total // 2)
        sim.power_cut()
        i0, c0, n0 = sim.instructions, sim.cycles, len(sim.marks())
        sim.run(max_insns=i0 + 20_000)
        first = next(m for m in sim.marks()[n0:] if 1 <= m.value <= 239)
        return {"instructions": first.instruction - i0, "mclk_cycles": first.cycle - c0}
    finally:
        sim.close()


def _fit_steps(steps: list[dict]) -> dict:
    """[cost.ref.step] for the MSP430, as the M4's: per kind, least-squares slopes over the measured steps'
    features, the intercept raised by the largest residual (an upper envelope: every measured step is at
    or below its bound). MCLK cycles."""
    import numpy as np

    feats = {"linear": ("outputs", "macs"), "conv": ("outputs", "macs"), "relu": ("elements",),
             "pool": ("elements",), "input": ("elements",)}  # fmt: skip
    names = {"outputs": "per_output", "macs": "per_mac", "elements": "per_element"}
    table = {}
    for kind, fs in feats.items():
        rows = [s for s in steps if s["kind"] == kind]
        if not rows:
            continue
        y = np.array([s["cycles"] for s in rows], dtype=float)
        x = np.array([[s[f] for f in fs] for s in rows], dtype=float)
        a = np.hstack([np.ones((len(rows), 1)), x])
        coef = np.linalg.lstsq(a, y, rcond=None)[0]
        coef[1:] = np.maximum(coef[1:], 0.0)  # a bound never falls with more work
        call = float(np.max(y - x @ coef[1:]))
        table[f"{kind}_call"] = int(np.ceil(call))
        for f, c in zip(fs, coef[1:], strict=True):
            table[f"{kind}_{names[f]}"] = round(float(c), 2)
        table[f"_{kind}_steps"] = len(rows)
    return table


def _msp430_only(tmp: Path) -> int:
    """The MSP430 simulator's half of issue 13, replacing its keys/rows in the existing results file:
    fine images (range dispatch) at MSP_FINE estimated cycles per task, their atomic steps and the
    [cost.ref.step] fit over them, FLEX rows at MSP_FINE_NS (power failing every N instructions; the
    totals in instructions, MCLK cycles of the continuous runs beside them), and the continuous-power
    overhead at the FR5994's default granularity (flex app vs the plain model app, both units)."""
    quick = dict(dense_epochs=3, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10))
    out = json.loads(RESULTS.read_text())
    rows = [r for r in out["rows"] if not (r["harness"] == MSP and r["granularity"].startswith("fine"))]
    fine = {k: v for k, v in out["fine"].items() if MSP not in k}
    msp: dict = {
        "command": ".venv/bin/python benchmarks/intermittent.py --msp430",
        "unit_rows": "instructions",
    }
    all_steps, boots = [], []
    for model, k, bits in (("mlp", 16, 16), ("cnn", 8, 8)):
        art = tmp / f"{model}.bl"
        compress(model, "digits", out=art, config=CompressConfig(block_size=k, weight_bits=bits, **quick))
        inp = model_input(art, 0)
        # continuous-power overhead at the board's default granularity (its default buffer)
        gen = tmp / f"gen-plain-{model}"
        codegen(art, MSP, gen, backend="ref", buffers_in="nvm")
        base = run(build(MSP, gen, "ref", app="model", out_dir=tmp / f"plain-{model}").image, MSP, inputs=inp)
        dimg = build_flex(art, MSP, tmp / f"m-{model}-default")
        dflex = run(dimg.image, MSP, inputs=inp)
        assert base.values["logits"] == dflex.values["logits"], "model app and flex app disagree (MSP430)"
        msp[f"{model} default"] = {
            "granularity": dimg.granularity,
            "num_tasks": dimg.num_tasks,
            "model_app": {"instructions": base.instructions, "mclk_cycles": base.mclk_cycles},
            "flex": {"instructions": dflex.instructions, "mclk_cycles": dflex.mclk_cycles},
            "overhead_continuous_pct": round(100.0 * (dflex.mclk_cycles / base.mclk_cycles - 1.0), 2),
            "overhead_continuous_pct_instructions": round(
                100.0 * (dflex.instructions / base.instructions - 1.0), 2
            ),
        }
        print(json.dumps(msp[f"{model} default"]), flush=True)
        coarse_cont = dflex.instructions
        for g in MSP_FINE:
            img = build_flex(art, MSP, tmp / f"m-{model}-{g}", granularity=g)
            totals, steps = _msp_steps(img, art, inp, g)
            all_steps += steps
            largest = max(steps, key=lambda s: s["cycles"])
            size = build_size(img.image)
            fine[f"{model} {MSP} {g}"] = {
                "num_tasks": img.num_tasks,
                "continuous_instructions": totals["instructions"],
                "continuous_mclk_cycles": totals["mclk_cycles"],
                "vs_coarse_flex": round(totals["instructions"] / coarse_cont, 3),
                "largest_step": {
                    "cycles": largest["cycles"],
                    "instructions": max(s["instructions"] for s in steps),
                },
                "largest_step_bound": img.granularity.get("largest_step_bound"),
                "text_bytes": size,
                "paths": img.paths,
            }
            fine[f"{model} {MSP} {g}"]["resumed_boot"] = _msp_boot(img, inp)
            boots.append(fine[f"{model} {MSP} {g}"]["resumed_boot"])
            print(json.dumps(fine[f"{model} {MSP} {g}"]), flush=True)
            if g != MSP_FINE[0]:
                continue
            # the rows run on the project's MSP430FR5994 simulator (the board's default emulator is mspdebug's
            # simulator, which has neither the MPY32 nor the CRC32 module the firmware probes for)
            sim_board = with_emulator(load_board(MSP), "msp430sim")
            cont = run_schedule(img, sim_board, inp, [])
            for n in MSP_FINE_NS:
                row = _row(sim_board, "flex", n, img, inp, cont.logits, cont.instructions,
                           3 * img.num_tasks + 100, max(s["instructions"] for s in steps))  # fmt: skip
                row["harness"] = MSP
                row["board"], row["target"] = MSP, "msp430sim (MSP430FR5994 model)"
                row["unit"] = "instructions"
                row["overhead_vs_coarse_continuous"] = (
                    round(row["total_instructions"] / coarse_cont, 3) if row["finished"] else None
                )
                rows.append({"model": model, **row})
                print(json.dumps(rows[-1]), flush=True)
    msp["step_fit"] = _fit_steps(all_steps)
    # [cost.ref.step] boot: the largest resumed boot measured (MCLK cycles), which granularity takes out of
    # every power-on period before sizing tasks
    msp["step_fit"]["boot"] = max(b["mclk_cycles"] for b in boots)
    msp["step_fit"]["source"] = (
        f"FITTED: upper envelope over {len(all_steps)} measured atomic steps (msp430sim MCLK cycles from one "
        f"task mark to the next, continuous power) of the digits MLP and CNN flex images at --granularity "
        f"{', '.join(map(str, MSP_FINE))} (ref kernels, range dispatch)"
    )
    print(json.dumps(msp["step_fit"]), flush=True)
    out["rows"], out["fine"], out["msp430"] = rows, fine, msp
    t = RESULTS.with_suffix(".json.tmp")
    t.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(t, RESULTS)
    return 0


def build_size(elf: Path) -> int:
    """Code + read-only data bytes of an image (llvm-size's text)."""
    import subprocess

    cols = subprocess.run(["llvm-size", str(elf)], capture_output=True, text=True, check=True).stdout.split()
    return int(cols[6])


def _main(tmp: Path) -> int:
    art = tmp / "mlp.bl"
    quick = dict(dense_epochs=3, admm=AdmmConfig(rounds=1, retrain_epochs=1, min_steps_per_round=10))
    compress("mlp", "digits", out=art, config=CompressConfig(block_size=16, weight_bits=16, **quick))
    inp = model_input(art, 0)
    out: dict = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "model": "digits MLP (block 16, int16 weights, QUICK compress as in tests/test_codegen.py), "
        "sample 0; rows with model cnn: digits CNN (block 8, int8 weights)",
        "command": ".venv/bin/python benchmarks/intermittent.py",
    }
    # baseline: the plain model app on the same generated model (buffers in NVM), no FLEX
    gen = tmp / "gen-plain"
    codegen(art, "mps2-an386", gen, backend="ref", buffers_in="nvm")
    plain = build("mps2-an386", gen, "ref", app="model", out_dir=tmp / "plain").image
    base = run(plain, "mps2-an386", inputs=inp)
    imgs = {p: build_flex(art, "mps2-an386", tmp / f"q-{p}", policy=p) for p in POLICIES}
    cont = {p: run_schedule(imgs[p], "mps2-an386", inp, []) for p in POLICIES}
    ref = cont["flex"].logits
    assert base.values["logits"] == ref, "model app and flex app disagree under continuous power"
    out["continuous_instructions"] = {
        "model_app": base.instructions,
        **{p: cont[p].instructions for p in POLICIES},
    }
    out["overhead_continuous_pct"] = round(100.0 * (cont["flex"].instructions / base.instructions - 1.0), 2)
    out["overhead_continuous_pct_by_policy"] = {
        p: round(100.0 * (cont[p].instructions / base.instructions - 1.0), 2) for p in POLICIES
    }
    # the part of the overhead that is commits (the restart policy runs the same app without any)
    out["overhead_commits_pct"] = round(
        100.0 * (cont["flex"].instructions - cont["restart"].instructions) / base.instructions, 2
    )
    out["num_tasks"] = imgs["flex"].num_tasks
    q1 = verify_intermittent(None, QEMU, image=imgs["flex"], inputs=inp, random=1)
    out["largest_step"] = q1.largest_step
    out["boot_instructions"] = q1.boot_instructions
    rows = []
    for p in POLICIES:
        c = cont[p].instructions
        step = measure_largest_step(imgs[p], QEMU, inp)
        for n in NS:
            max_cuts = PROBE_CUTS if (p == "restart" and n < c) else MAX_CUTS
            rows.append({"model": "mlp", **_row(QEMU, p, n, imgs[p], inp, ref, c, max_cuts, step)})
            print(json.dumps(rows[-1]), flush=True)
    # a second model with fewer, larger tasks: the digits CNN (block 8, int8 weights)
    cnn = tmp / "cnn.bl"
    compress("cnn", "digits", out=cnn, config=CompressConfig(block_size=8, weight_bits=8, **quick))
    cinp = model_input(cnn, 0)
    cgen = tmp / "gen-plain-cnn"
    codegen(cnn, "mps2-an386", cgen, backend="ref", buffers_in="nvm")
    cbase = run(
        build("mps2-an386", cgen, "ref", app="model", out_dir=tmp / "plain-cnn").image, QEMU, inputs=cinp
    )
    cimgs = {p: build_flex(cnn, QEMU, tmp / f"qc-{p}", policy=p) for p in POLICIES}
    ccont = {p: run_schedule(cimgs[p], QEMU, cinp, []) for p in POLICIES}
    cref = ccont["flex"].logits
    assert cbase.values["logits"] == cref, "CNN: model app and flex app disagree under continuous power"
    out["cnn"] = {
        "num_tasks": cimgs["flex"].num_tasks,
        "continuous_instructions": {
            "model_app": cbase.instructions,
            **{p: ccont[p].instructions for p in POLICIES},
        },
        "overhead_continuous_pct": round(100.0 * (ccont["flex"].instructions / cbase.instructions - 1.0), 2),
        "largest_step": verify_intermittent(
            None, QEMU, image=cimgs["flex"], inputs=cinp, random=1
        ).largest_step,
    }
    for p in POLICIES:
        c = ccont[p].instructions
        step = measure_largest_step(cimgs[p], QEMU, cinp)
        for n in NS:
            max_cuts = PROBE_CUTS if (p == "restart" and n < c) else MAX_CUTS
            rows.append({"model": "cnn", **_row(QEMU, p, n, cimgs[p], cinp, cref, c, max_cuts, step)})
            print(json.dumps(rows[-1]), flush=True)
    # issue 13: the MSP430 simulator, and fine granularities (bl_mac_step tasks) on both targets
    out["fine"] = {}
    for model, a, i in (("mlp", art, inp), ("cnn", cnn, cinp)):
        rows += _more_rows(tmp, model, a, i, out)
    out["rows"] = rows
    out["mutants"] = _mutants(tmp, art, inp)
    print(json.dumps(out["mutants"]), flush=True)
    # power cycles per second, many cuts in one QEMU process (issue 5: >= 1,000/s)
    thr = []
    for model, spacing, k in THROUGHPUT:
        img, i = (imgs["flex"].image, inp) if model == "mlp" else (cimgs["flex"].image, cinp)
        for reload_image in (False, True):
            thr.append(_throughput(model, img, i, spacing, k, reload_image))
            print(json.dumps(thr[-1]), flush=True)
    out["throughput"] = thr
    # per-failure re-execution and harness throughput
    out["harness"] = _harness(tmp, art, inp, imgs["flex"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    t = RESULTS.with_suffix(".json.tmp")
    t.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(t, RESULTS)
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=1))
    return _msp430_only(tmp)  # the MSP430 simulator's fine rows, step fit and default-granularity overhead


if __name__ == "__main__":
    raise SystemExit(main())
