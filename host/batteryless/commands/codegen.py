"""Verb ``codegen`` (ACE): artifact + board → generated C and schedule.json."""

from __future__ import annotations

import argparse
import sys


def cmd_codegen(args: argparse.Namespace) -> int:
    from batteryless.codegen import codegen

    res = codegen(
        args.artifact,
        args.board,
        args.out,
        backend=args.backend,
        path=args.path,
        buffers_in=args.buffers,
        granularity=args.granularity,
        capacitance_f=None if args.capacitance_uf is None else args.capacitance_uf * 1e-6,
        eve_policy=args.eve_policy,
    )
    if args.measure:
        from batteryless.artifact import load_artifact
        from batteryless.codegen.measure import measure_schedule
        from batteryless.datasets import load_dataset
        from batteryless.progress import console_progress

        art = load_artifact(args.artifact)
        ds = load_dataset(art.dataset, args.data)
        with console_progress(not args.quiet) as progress:
            res.schedule = measure_schedule(
                args.out, args.board, args.artifact, ds.x_test[args.sample], args.backend, progress
            )
    if res.warning:
        print(f"warning: {res.warning}", file=sys.stderr)
    tasks = res.schedule["modes"][0]["tasks"]
    if not args.quiet:
        for role, reg in res.schedule["memory_plan"]["regions"].items():
            print(f"{role:5s} {reg['used']:8,d} / {reg['size']:,d} B  ({reg['what']})")
        hot = res.schedule["memory_plan"].get("ramfunc") or {}
        if hot.get("bytes"):  # the lea kernels' hot loops: SRAM when there is room (codegen/memory.py)
            where = "SRAM" if hot["region"] == "ram" else "FRAM"
            print(f"hot code {hot['bytes']:,d} B in {where} ({hot['why']})")
        print("paths: " + ", ".join(f"{k}={v}" for k, v in res.paths.items()))
        gran = res.schedule.get("granularity", {})
        if gran.get("mode"):
            print(f"granularity {gran['mode']} ({gran.get('reason', '')})")
        if res.schedule["memory_plan"].get("fallback"):  # auto choices the code region could not hold
            print(f"fallback: {res.schedule['memory_plan']['fallback']}")
        cycles = sum(t["cycles"] for t in tasks)
        energy = sum(t["energy_j"] for t in tasks)
        how = (
            f"measured ({res.schedule['measured']['unit']})" if res.schedule.get("measured") else "estimated"
        )
        print(f"{len(tasks)} tasks, {how} {cycles:,d} cycles, {energy * 1e6:.1f} µJ per inference")
    print(f"wrote {', '.join(p.name for p in res.files)} to {res.out_dir}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "codegen",
        help="generate C and schedule.json for a board from a .bl artifact",
        description="Deterministic C (weights in non-volatile memory, the task schedule, kernel calls) and "
        "schedule.json (tasks with cost estimates, NVM bytes per commit, memory plan). Fails with the region "
        "and the overflow in bytes if the model does not fit.",
    )
    p.add_argument("artifact", help=".bl artifact")
    p.add_argument(
        "--eve-policy",
        metavar="POLICY.json",
        help="EVE artifact: the rate rule tuned by `batteryless policy` (default: stored-energy thresholds)",
    )
    p.add_argument("--board", required=True, help="board name (boards/<name>) or path to a board.toml")
    p.add_argument("--backend", help="kernel backend (default: the board's default)")
    p.add_argument(
        "--path",
        choices=("auto", "fft", "direct", "artifact"),
        default="auto",
        help="circulant layers: cheaper path per the board's cost model (auto), or force one",
    )
    p.add_argument(
        "--buffers",
        choices=("ram", "nvm"),
        default="ram",
        help="where activation buffers live: ram, or nvm for intermittent (checkpointed) execution",
    )
    p.add_argument(
        "--granularity",
        default="auto",
        help="task size: auto (from the board's energy buffer and power model), coarse (the default "
        "tasks), or the most estimated cycles one task may take (finer tasks for small buffers)",
    )
    p.add_argument(
        "--capacitance-uf",
        type=float,
        help="energy buffer (µF) that --granularity auto sizes tasks for, e.g. the one you will emulate "
        "(default: the board's [energy_buffer])",
    )
    p.add_argument("--out", required=True, help="folder for the generated sources")
    p.add_argument(
        "--measure",
        action="store_true",
        help="build and run on the board's emulator (QEMU / mspdebug) and replace the schedule's estimated "
        "task costs with measured counts",
    )
    p.add_argument("--sample", type=int, default=0, help="test sample to measure with (default 0)")
    p.add_argument("--data", help="dataset folder or file, if the artifact's dataset is not bundled")
    p.set_defaults(func=cmd_codegen)
