"""Verbs ``compress`` and ``evaluate`` (RAD)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from batteryless.errors import UsageError
from batteryless.progress import console_progress


def _layer_blocks(text: str | None) -> dict[str, int]:
    """'fc1=16,fc2=8' → {'fc1': 16, 'fc2': 8}."""
    out: dict[str, int] = {}
    for item in filter(None, (text or "").split(",")):
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise UsageError(f"--layer-block expects NAME=SIZE[,NAME=SIZE…], got {item!r}")
        out[name.strip()] = int(value)
    return out


def _normalisation(value: str):
    """--normalise: a kind, or an .npz/.json file holding the model's own ``mean`` and ``std``."""
    from batteryless.normalisation import KINDS

    if value in KINDS:
        return value
    path = Path(value)
    if not path.is_file():
        raise UsageError(
            f"--normalise expects one of {', '.join(KINDS)} or an .npz/.json file with mean and std, "
            f"got {value!r}"
        )
    try:
        if path.suffix == ".json":
            stats = json.loads(path.read_text())
        else:
            import numpy as np

            with np.load(path, allow_pickle=False) as f:
                stats = {k: f[k] for k in f.files}
    except (OSError, ValueError) as err:
        raise UsageError(f"--normalise {path}: cannot read mean and std ({err})") from None
    if not isinstance(stats, dict) or "mean" not in stats or "std" not in stats:
        raise UsageError(f"--normalise {path}: needs arrays (or JSON keys) 'mean' and 'std'")
    return {"mean": stats["mean"], "std": stats["std"]}


def _keep(text: str | None, flag: str = "--mode-keep") -> list[float] | None:
    """'1,0.5,0.25' → [1.0, 0.5, 0.25]."""
    if not text:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} expects fractions like 1,0.5,0.25, got {text!r}") from None


def _layer_width(items: list[str] | None) -> dict[str, list[float]]:
    """['conv1=1,0.75,0.25', …] → {'conv1': [1.0, 0.75, 0.25], …}."""
    out: dict[str, list[float]] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--mode-layer-width expects NAME=F,F,… (e.g. conv1=1,0.75,0.25), got {item!r}")
        out[name.strip()] = _keep(value, f"--mode-layer-width {name.strip()}") or []
    return out


def print_mode_table(eve: dict, console) -> None:
    from rich.table import Table

    table = Table(title="EVE modes over one weight store (mode 0 is the largest)")
    for col in ("mode", "keep", "width", "MACs", "weight B touched", "circulant acc", "integer acc"):
        table.add_column(col, justify="right")
    for r in eve["modes"]:
        acc = [r.get("circulant_float_accuracy"), r.get("reference_accuracy")]
        width = ", ".join(f"{k} {v}" for k, v in (r.get("out_blocks") or {}).items()) or "full"
        table.add_row(
            f"{r['mode']} ({r['name']})",
            f"{r['keep']:g}",
            width,
            f"{r['macs']:,}",
            f"{r['weight_bytes']:,}",
            *("-" if a is None else f"{100 * a:.2f}%" for a in acc),
        )
    console.print(table)
    console.print(
        f"store {eve['store_bytes']:,} B (weights, biases, block orders) vs {eve['separate_bytes']:,} B "
        f"for {len(eve['modes'])} separately stored modes; "
        f"the largest mode alone {eve['largest_mode_bytes']:,} B"
    )


def print_report(rep: dict, file=None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{rep['model']} on {rep['dataset']} ({rep.get('weight_bits')}-bit weights)")
    for col in ("layer", "block", "path", "params", "weight B", "dense int16 B", "MACs", "dense MACs"):
        table.add_column(col, justify="right" if col not in ("layer", "path") else "left")
    for r in rep["layers"]:
        table.add_row(
            r["name"],
            str(r["block"]),
            r["path"],
            f"{r['params']:,}",
            f"{r['weight_bytes']:,}",
            f"{r['dense_int16_weight_bytes']:,}",
            f"{r['macs']:,}",
            f"{r['dense_macs']:,}",
        )
    t = rep["total"]
    table.add_row(
        "total",
        "",
        "",
        f"{t['params']:,}",
        f"{t['weight_bytes']:,}",
        f"{t['dense_int16_weight_bytes']:,}",
        f"{t['macs']:,}",
        f"{t['dense_macs']:,}",
        style="bold",
    )
    # sys.stdout looked up now, not at import: a default bound at import keeps a stream that may be
    # closed since (pytest's capture of the test that first imported this module)
    console = Console(file=file or sys.stdout)
    console.print(table)
    console.print(
        f"weights {t['compression_vs_int16']:.1f}× smaller than dense int16 "
        f"({t['compression_vs_float32']:.1f}× vs float32)"
    )
    for key, value in rep["accuracy"].items():
        if value is not None:
            console.print(f"{key.replace('_', ' ')}: {100 * value:.2f}%")
    if rep.get("eve"):
        print_mode_table(rep["eve"], console)


def _write_json(rep: dict, path: str | None) -> None:
    if path:
        tmp = Path(path).with_suffix(Path(path).suffix + ".tmp")
        tmp.write_text(json.dumps(rep, indent=1, sort_keys=True))
        tmp.replace(path)


def cmd_compress(args: argparse.Namespace) -> int:
    from batteryless.eve.train import EveConfig
    from batteryless.rad.admm import AdmmConfig
    from batteryless.rad.compress import CompressConfig, compress

    cfg = CompressConfig(
        block_size=args.block,
        layer_blocks=_layer_blocks(args.layer_block),
        pad=args.pad,
        weight_bits=args.bits,
        prune_ratio=args.prune,
        dense_epochs=args.epochs,
        seed=args.seed,
        path=args.path,
        train_dense=True if args.train else False if args.pretrained else None,
        normalisation=_normalisation(args.normalise),
        expected_accuracy=args.expect_accuracy,
        admm=AdmmConfig(rounds=args.admm_rounds, retrain_epochs=args.retrain_epochs),
        modes=args.modes,
        eve=EveConfig(
            keep=_keep(args.mode_keep),
            width=_keep(args.mode_width, "--mode-width"),
            layer_width=_layer_width(args.mode_layer_width),
            **{  # unset: EveConfig's defaults (not repeated here: the parser must not import torch)
                k: v
                for k, v in (
                    ("epochs", args.mode_epochs),
                    ("lr", args.mode_lr),
                    ("mode_bias", args.mode_bias),
                    ("bias_epochs", args.mode_bias_epochs),
                    ("mode0_weight", args.mode0_weight),
                    ("mode0_epochs", args.mode0_epochs),
                )
                if v is not None
            },
        ),
    )
    from batteryless.paths import check_output_file

    if args.json and args.json != "-":
        check_output_file(args.json, "the JSON report")  # before minutes of compression, like --out
    with console_progress(not args.quiet) as progress:
        art, rep = compress(
            args.model, args.dataset, args.data, args.out, cfg, progress, state_dict=args.state_dict
        )
    for w in rep.get("warnings", []):  # loud, and on stderr so that --json - stays machine-readable
        print(f"warning: {w}", file=sys.stderr)
    if args.json == "-":
        print(json.dumps(rep, indent=1, sort_keys=True))
    else:
        _write_json(rep, args.json)
        print_report(rep)
        epochs = art.provenance.get("dense_training_epochs", 0)
        how = f"trained here for {epochs} epochs" if epochs else "taken as trained (not trained here)"
        print(f"model {art.model} ({art.provenance.get('model_source', '?')}): {how}")
        for note in art.provenance.get("model_notes", []):
            print(f"  note: {note}")
        print(f"wrote {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from batteryless.rad.compress import evaluate

    paths = {name: args.path for name in args.layers.split(",")} if args.path and args.layers else None
    with console_progress(not args.quiet) as progress:
        rep = evaluate(args.artifact, args.dataset, args.data, paths=paths, progress=progress)
    if args.json == "-":
        print(json.dumps(rep, indent=1, sort_keys=True))
    else:
        _write_json(rep, args.json)
        print_report(rep)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compress",
        help="train and compress a model (block-circulant ADMM + fixed point) into a .bl artifact",
        description="Dense training → ADMM toward block-circulant fixed-point weights → QAT retraining → "
        "integer artifact. Prints per-layer parameters, bytes, MACs and accuracies.",
    )
    p.add_argument(
        "--model",
        default="mlp",
        help="a zoo model name (default: mlp), a model file (TorchScript .pt, torch.export .pt2, .tflite, "
        "import-tflite's .pt) or module.py:factory; see docs/byo-model.md",
    )
    p.add_argument(
        "--state-dict",
        help="weights for --model (a torch.save'd state dict); the model then counts as trained",
    )
    trained = p.add_mutually_exclusive_group()
    trained.add_argument(
        "--train",
        action="store_true",
        help="train the model for --epochs before compression even if it has weights (default: only "
        "models without weights, i.e. zoo names and factories without --state-dict, are trained)",
    )
    trained.add_argument(
        "--pretrained",
        action="store_true",
        help="the model's weights are trained (e.g. a factory that loads its own): never train it",
    )
    p.add_argument("--dataset", default="digits", help="digits | mnist | har | npz (default: digits)")
    p.add_argument(
        "--normalise",
        default="scalar",
        metavar="KIND|FILE",
        help="the input normalisation the model expects: none, scalar (default), per-channel, per-feature "
        "(fitted on the training split), or an .npz/.json with the model's own mean and std",
    )
    p.add_argument(
        "--expect-accuracy",
        type=float,
        metavar="ACC",
        help="the dense accuracy you expect (0-1): warn when compress measures far less (docs/datasets.md)",
    )
    p.add_argument("--data", help="folder or file holding the dataset (mnist, har, npz)")
    p.add_argument("--out", required=True, help="artifact to write (.bl)")
    p.add_argument("--block", type=int, default=16, help="block size, a power of two (default 16)")
    p.add_argument(
        "--layer-block", help="per-layer block sizes, e.g. fc1=16,fc3=8 (must divide unless --pad)"
    )
    p.add_argument(
        "--pad", action="store_true", help="allow per-layer block sizes that do not divide the layer"
    )
    p.add_argument("--bits", type=int, choices=(8, 16), default=16, help="weight bits (default 16)")
    p.add_argument(
        "--prune", type=float, default=0.0, help="fraction of circulant blocks to prune (default 0)"
    )
    p.add_argument(
        "--path", choices=("fft", "direct"), default="fft", help="default path of circulant layers"
    )
    p.add_argument(
        "--epochs", type=int, default=40, help="dense training epochs of an untrained model (default 40)"
    )
    p.add_argument("--admm-rounds", type=int, default=12)
    p.add_argument("--retrain-epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--modes",
        type=int,
        default=1,
        help="EVE: train this many nested modes (2-8) over one weight store; 1 (default) = one model",
    )
    p.add_argument(
        "--mode-keep",
        help="EVE: block fraction per mode, largest first, e.g. 1,0.5,0.25 (default: 1 down to 0.25)",
    )
    p.add_argument(
        "--mode-width",
        help="EVE: fraction of output block rows per mode in circulant layers that feed another circulant "
        "layer, largest first, e.g. 1,0.5,0.25 (default: 1 down to 0.25; 1,1,1: blocks only)",
    )
    p.add_argument(
        "--mode-layer-width",
        action="append",
        metavar="NAME=F,F,…",
        help="EVE: one weight layer's own width fractions per mode (repeatable), e.g. conv1=1,0.75,0.25 "
        "(dense layers too: their output rows)",
    )
    p.add_argument(
        "--mode-bias",
        nargs="?",
        const="all",
        choices=("none", "all", "last"),
        help="EVE: every smaller mode trains its own biases of every circulant layer (all, the default "
        "when given) or of the classifier only (last); 4 bytes per row and mode in the store",
    )
    p.add_argument(
        "--mode-bias-epochs",
        type=int,
        help="EVE: epochs at the end training only the smaller modes' own biases (needs --mode-bias)",
    )
    p.add_argument("--mode-epochs", type=int, help="EVE: sandwich-rule epochs (default 80)")
    p.add_argument("--mode-lr", type=float, help="EVE: sandwich-rule learning rate (default 0.005)")
    p.add_argument(
        "--mode0-weight",
        type=float,
        help="EVE: weight of the largest mode's loss in each sandwich step (> 0; default 2)",
    )
    p.add_argument(
        "--mode0-epochs",
        type=int,
        help="EVE: epochs training the largest mode alone after the sandwich, at a tenth of the learning "
        "rate (default: a quarter of --mode-epochs)",
    )
    p.add_argument("--json", help="also write the report as JSON to this file ('-' prints only JSON)")
    p.set_defaults(func=cmd_compress)

    e = sub.add_parser(
        "evaluate",
        help="run the integer reference (numeric spec) of an artifact on a dataset",
        description="Integer inference exactly as the firmware computes it, on the dataset's test split.",
    )
    e.add_argument("artifact", help=".bl artifact")
    e.add_argument("--dataset", help="dataset name (default: the artifact's)")
    e.add_argument("--data", help="folder or file holding the dataset")
    e.add_argument("--path", choices=("fft", "direct"), help="force this path on --layers")
    e.add_argument("--layers", help="comma-separated layer names for --path")
    e.add_argument("--json", help="write the report as JSON to this file ('-' prints only JSON)")
    e.set_defaults(func=cmd_evaluate)
