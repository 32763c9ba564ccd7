"""Verb ``search`` (EVE): mode ladders for a trained artifact under the board's constraints."""

from __future__ import annotations

import argparse
import json

from batteryless.errors import UsageError
from batteryless.progress import console_progress


def _block_sizes(items: list[str] | None) -> dict[str, list[int]] | None:
    """['fc1=8,16', 'fc2=4,8'] → {'fc1': [8, 16], 'fc2': [4, 8]}."""
    if not items:
        return None
    out = {}
    for item in items:
        name, _, sizes = item.partition("=")
        try:
            out[name.strip()] = [int(v) for v in sizes.split(",")]
        except ValueError:
            raise UsageError(f"--block-sizes expects LAYER=K1,K2 (e.g. fc1=8,16), got {item!r}") from None
        if not name.strip():
            raise UsageError(f"--block-sizes expects LAYER=K1,K2 (e.g. fc1=8,16), got {item!r}")
    return out


def cmd_search(args: argparse.Namespace) -> int:
    from batteryless.eve.search import search

    with console_progress(not args.quiet) as progress:
        rep = search(
            args.artifact,
            args.board,
            modes=args.modes,
            trials=args.trials,
            traces=args.trace or ["markov-2mw"],
            capacitance_f=args.capacitance_uf * 1e-6 if args.capacitance_uf else None,
            period_s=args.period if args.period > 0 else None,
            storage=args.storage,
            study_name=args.study,
            out=args.out,
            seed=args.seed,
            progress=progress,
            ray=args.ray,
            block_sizes=_block_sizes(args.block_sizes),
            dataset=args.dataset,
            data_path=args.data,
            measure=args.measure,
        )
    if args.json:
        print(json.dumps(rep, indent=1, sort_keys=True))
        return 0
    print(f"{rep['trials']} trials ({rep['infeasible']} violated a constraint), {rep['search_seconds']} s")
    for p in rep["pareto"]:
        acc = ", ".join(f"{100 * a:.1f}%" for a in p["accuracy"])
        uj = ", ".join(f"{1e6 * e:.0f}" for e in p["energy_j"])
        print(
            f"trial {p['trial']}: {p['correct_per_hour']:.1f} correct/h, "
            f"{p['energy_per_inference_uj']:.0f} uJ per inference; modes: accuracy {acc}; uJ {uj}"
        )
    if args.out and rep["pareto"]:
        print(f"wrote {args.out} (the first Pareto point)")
    elif not rep["pareto"]:
        print("no candidate met every constraint")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="EVE: search nested mode ladders of an artifact under NVM/RAM/power-on-period constraints",
        description="Optuna multi-objective search (correct inferences per hour on traces vs energy per "
        "inference) over per-layer, per-mode block and width fractions of the artifact's one weight store "
        "(and per-layer block sizes with --block-sizes). "
        "Candidates that violate a constraint are never returned. Resumable with --storage.",
    )
    p.add_argument("artifact", help="trained .bl artifact (its weights are the store)")
    p.add_argument("--board", default="msp430fr5994", help="board (default msp430fr5994)")
    p.add_argument("--modes", type=int, default=3, help="modes per ladder, 2-8 (default 3)")
    p.add_argument("--trials", type=int, default=20, help="trials in the study in total (default 20)")
    p.add_argument("--trace", action="append", help="trace to score on (repeat; default markov-2mw)")
    p.add_argument("--capacitance-uf", type=float, help="energy buffer (default: the board's)")
    p.add_argument("--period", type=float, default=10.0, help="seconds between events; 0: back to back")
    p.add_argument("--storage", help="Optuna storage URL, e.g. sqlite:///search.db (resumable)")
    p.add_argument("--study", default="eve", help="study name in --storage (default eve)")
    p.add_argument("--out", help="write the best candidate's artifact here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the trials on a Ray cluster (ray tune + Optuna searcher): an address, 'auto' for a running "
        "cluster, or 'local' to start one here; needs ray[tune]; --storage does not apply",
    )
    p.add_argument(
        "--block-sizes",
        action="append",
        metavar="LAYER=K1,K2",
        help="also search this layer's block size among these (repeat per layer); each trial then "
        "recompresses the artifact's float model (ADMM, QAT, mode training: a compression per trial)",
    )
    p.add_argument(
        "--measure",
        action="store_true",
        help="score candidates on counts measured on the board's emulator (every mode; slower) instead of "
        "the board's cost model",
    )
    p.add_argument("--dataset", help="dataset to score (and retrain) on (default: the artifact's)")
    p.add_argument("--data", help="folder or file holding the dataset")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_search)
