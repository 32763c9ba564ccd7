"""Verbs ``datasets`` (list / describe datasets) and ``models`` (list the model zoo)."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_datasets(args: argparse.Namespace) -> int:
    from batteryless.datasets import datasets

    name = args.name if args.action == "info" else None
    rep = datasets(name, args.data, args.seed)
    if args.json:
        print(json.dumps(rep, indent=1))
        return 0
    if name is None:
        for d in rep["datasets"]:
            shape = "x".join(map(str, d["input_shape"])) if d["input_shape"] else "from file"
            classes = d["num_classes"] if d["num_classes"] is not None else "from file"
            where = "--data " + d["expected"] if d["needs_path"] else "bundled"
            print(f"{d['name']:8} {shape:>9}  classes {classes!s:9}  {d['description']}")
            print(f"{'':8} {'':>9}  needs: {where}")
        return 0
    print(f"dataset      {rep['name']}")
    print(f"input shape  {tuple(rep['input_shape'])}")
    print(
        f"classes      {rep['num_classes']}"
        + (f" ({', '.join(rep['class_names'])})" if rep["class_names"] else "")
    )
    print(f"train        {rep['train_samples']} samples, per class {rep['train_class_counts']}")
    print(f"test         {rep['test_samples']} samples, per class {rep['test_class_counts']}")
    print(f"value range  [{rep['x_min']:g}, {rep['x_max']:g}]")
    for w in rep.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from batteryless.models import models

    rep = models(args.dataset, args.data, args.seed)
    if args.json:
        print(json.dumps(rep, indent=1))
        return 0
    for m in rep["models"]:
        if m["params"] is None:
            print(f"{m['name']:10} (designed for {m['dataset']}) does not fit: {m['note']}")
        else:
            print(f"{m['name']:10} for {m['dataset']:7} {m['params']:>9,} params  {m['description']}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "datasets",
        help="list the datasets, or describe one ('datasets info NAME')",
        description="Without arguments: list the datasets. 'info NAME [--data PATH]': load NAME and show "
        "its shapes, split sizes, class counts and value range.",
    )
    p.add_argument("action", nargs="?", choices=("list", "info"), default="list")
    p.add_argument("name", nargs="?", help="dataset name for 'info' (digits, mnist, har, npz)")
    p.add_argument("--data", help="folder or file holding the dataset (mnist, har, npz)")
    p.add_argument("--seed", type=int, default=0, help="split seed (digits; default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_checked_datasets)

    m = subparsers.add_parser(
        "models",
        help="list the model zoo",
        description="List the zoo models with their parameter counts for each model's own dataset, or for "
        "--dataset (loaded, so --data may be needed).",
    )
    m.add_argument("--dataset", help="count parameters for this dataset's input shape and classes")
    m.add_argument("--data", help="folder or file holding the dataset (mnist, har, npz)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--json", action="store_true", help="print JSON")
    m.set_defaults(func=cmd_models)


def _checked_datasets(args: argparse.Namespace) -> int:
    from batteryless.errors import UsageError

    if args.action == "info" and not args.name:
        raise UsageError("'datasets info' needs a dataset name, e.g. 'batteryless datasets info digits'")
    if args.action == "list" and args.name:
        raise UsageError(f"unexpected {args.name!r}; did you mean 'batteryless datasets info {args.name}'?")
    return cmd_datasets(args)
