"""Verb ``flex-verify`` (FLEX): cut power inside the real firmware and compare with continuous power."""

from __future__ import annotations

import argparse
import json

from batteryless.flex import BROKEN


def cmd_flex_verify(args: argparse.Namespace) -> int:
    from batteryless.flex import verify_intermittent
    from batteryless.progress import console_progress

    with console_progress(not args.quiet and not args.json) as progress:
        rep = verify_intermittent(
            args.artifact,
            args.board,
            policy=args.policy,
            sweep=args.sweep,
            every=args.every,
            random=args.random,
            max_cuts=args.max_cuts,
            seed=args.seed,
            sample=args.sample,
            out_dir=args.out,
            broken=args.broken,
            workers=args.workers,
            progress=progress,
            continuous=args.continuous,
            sweep_commit=args.sweep_commit,
            faults=args.faults,
            backend=args.backend,
        )
    if args.json:
        print(json.dumps(rep.to_dict(), indent=1))
    else:
        unit = "marks" if rep.board == "host" else "instructions"
        print(
            f"{rep.board} policy {rep.policy}{'' if rep.broken == 'none' else ' BROKEN ' + rep.broken}: "
            f"{rep.mode}; continuous run {rep.continuous_count:,d} {unit}, {rep.num_tasks} tasks"
        )
        print(
            f"{rep.schedules} schedules, {rep.reboots} power failures ({rep.resets_per_s:.0f}/s), "
            f"{rep.reexecuted_tasks} re-executed tasks ({rep.reexecuted_per_failure:.2f} per failure)"
            + (f", {rep.instructions:,d} instructions" if rep.instructions else "")
        )
        if rep.largest_step:
            print(
                f"largest atomic step {rep.largest_step:,d} instructions (task + commit), "
                f"boot to runtime {rep.boot_instructions or 0:,d}"
            )
        print(
            f"protocol: {rep.first_commit_cuts} cuts inside the first commit (allowed), at most "
            f"{rep.max_lost_tasks} task(s) lost per power failure"
        )
        for f in rep.failures[:5]:
            print(
                f"VIOLATED {', '.join(f.violated) or 'logits'}: cuts {f.cuts[:8]}"
                + (f" faults {f.faults}" if f.faults else "")
                + f": logits {'ok' if f.correct else f.logits}, corrupt {f.corrupt}, lost_max {f.lost_max}"
                + (f" ({f.error})" if f.error else "")
            )
        print(
            "PASS: every schedule bit-exact with continuous power, no corrupt state, at most one atomic "
            "step re-executed per power failure"
            if rep.passed
            else f"FAIL: {len(rep.failures)} of {rep.schedules} schedules violate "
            + ", ".join(f"{k} ({v})" for k, v in sorted(rep.violations.items()))
        )
    return 0 if rep.passed else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "flex-verify",
        help="cut power inside the firmware (host / QEMU / mspdebug) and compare with continuous power",
        description="Build the model on the FLEX runtime (activation buffers in NVM) and run it under "
        "power-failure schedules: host cuts at bl_mark points, QEMU at instruction counts (TCG plugin "
        "resets), mspdebug at instruction counts. Each schedule's final logits must equal the continuous "
        "run's bit for bit; exit code 1 if any differs.",
    )
    p.add_argument("--artifact", required=True, help=".bl artifact")
    p.add_argument("--board", required=True, help="host, mps2-an386 or msp430fr5994 (or a board.toml)")
    p.add_argument("--policy", choices=("flex", "layer", "restart", "jit"), default="flex")
    p.add_argument("--sweep", action="store_true", help="one cut at every cut point (host: every mark)")
    p.add_argument("--every", type=int, help="QEMU/mspdebug sweep step in instructions (default total/200)")
    p.add_argument("--random", type=int, default=0, metavar="N", help="N seeded random multi-cut schedules")
    p.add_argument("--max-cuts", type=int, default=8, help="cuts per random schedule, at most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample", type=int, default=0, help="test sample of the artifact's dataset to run")
    p.add_argument("--out", help="build folder (default: a temporary one)")
    p.add_argument(
        "--broken",
        choices=tuple(BROKEN),
        default="none",
        help="build a deliberately broken runtime to see the harness fail",
    )
    p.add_argument(
        "--continuous",
        action="store_true",
        help="QEMU, with --random N: build the continuous-inference app and check N inferences in one "
        "QEMU run under random cuts, each bit-exact with continuous power (one QEMU start, not N)",
    )
    p.add_argument(
        "--sweep-commit",
        action="store_true",
        help="QEMU: exact cuts (one instruction per block) after every instruction of the commit and of "
        "the recovery code, so records are torn at every store",
    )
    p.add_argument(
        "--faults",
        action="store_true",
        help="also flip a bit of the committed record at the boot after a cut; each must be detected",
    )
    p.add_argument(
        "--backend",
        default="ref",
        help="kernels of the image: ref (default), cmsis (Cortex-M boards: DSP extension / Helium), lea "
        "(msp430fr5994)",
    )
    p.add_argument("--workers", type=int, default=2, help="parallel runs")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_flex_verify)
