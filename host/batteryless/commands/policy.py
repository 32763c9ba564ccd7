"""Verb ``policy`` (EVE): tune the on-device rate rule of an EVE artifact for a board buffer, a demand
period and a set of harvesting traces; ``codegen --eve-policy`` emits it."""

from __future__ import annotations

import argparse
import json

from batteryless.progress import console_progress


def cmd_policy(args: argparse.Namespace) -> int:
    from batteryless.eve.policy import policy

    with console_progress(not args.quiet) as progress:
        doc = policy(
            args.artifact,
            args.board,
            args.trace or ["solar-office", "rf-3m", "kinetic-walk", "markov-2mw"],
            period_s=args.period,
            capacitance_f=args.capacitance_uf * 1e-6 if args.capacitance_uf else None,
            backend=args.backend,
            out=args.out,
            draws=args.draws,
            progress=progress,
        )
    if args.json:
        print(json.dumps(doc, indent=1, sort_keys=True))
        return 0
    print(f"rate rule: {doc['params']} ({doc['settings']} settings tried)")
    for t, r in doc["ratio"].items():
        held = doc["holdout_ratio"].get(t)
        extra = f", tuned without it {held:.3f}" if held is not None else ""
        print(f"  {t}: correct/h {r:.3f}× the best fixed mode{extra}")
    for t, r in (doc.get("site_ratio") or {}).items():
        print(f"  {t} (not tuned on): correct/h {r:.3f}× the best fixed mode")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds are integers separated by commas") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: one or more distinct seeds")
    return seeds


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "policy",
        help="tune the EVE rate rule (harvest-rate-aware mode selection) for a board buffer and traces",
        description="Runs the artifact's modes fixed and a grid of rate-rule settings on the schedule-level "
        "emulator (FLEX, one input every --period s) and keeps the setting whose worst trace, in correct "
        "inferences per hour over that trace's best fixed mode, is highest. Write it with --out and give it "
        "to codegen --eve-policy.",
    )
    p.add_argument("artifact", help=".bl artifact with EVE modes (compress --modes K)")
    p.add_argument("--board", required=True, help="board name or board.toml")
    p.add_argument("--backend", help="kernel backend the image will use (default: the board's)")
    p.add_argument(
        "--trace", action="append", help="bundled trace name or CSV (repeatable; default: the four)"
    )
    p.add_argument(
        "--draws",
        type=_seeds,
        metavar="SEEDS",
        help="tune on these draws (seeds, e.g. 2,3,4) of each generated trace instead of the traces "
        "themselves, and report the rule on the traces (a site calibration)",
    )
    p.add_argument("--period", type=float, default=10.0, help="seconds between inputs (default 10)")
    p.add_argument("--capacitance-uf", type=float, help="buffer capacitance (default: the board's)")
    p.add_argument("--out", help="policy JSON to write (atomically)")
    p.add_argument("--json", action="store_true", help="print the policy document as JSON")
    p.set_defaults(func=cmd_policy)
