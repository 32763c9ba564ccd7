"""Verbs ``build`` and ``run`` (ACE infrastructure): thin shells over :mod:`batteryless.firmware`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from batteryless.errors import UsageError
from batteryless.progress import console_progress


def _print_regions(result, file=None) -> None:
    file = file if file is not None else sys.stdout
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.image} ({result.board}, backend {result.backend}, app {result.app})")
    for col in ("region", "origin", "text", "data", "bss", "used", "usable", "use %"):
        table.add_column(col, justify="left" if col == "region" else "right")
    for r in result.regions:
        pct = f"{100 * r.used / r.usable:.1f}" if r.usable else "-"
        table.add_row(
            r.name,
            f"0x{r.origin:X}",
            f"{r.text:,}",
            f"{r.data:,}",
            f"{r.bss:,}",
            f"{r.used:,}",
            f"{r.usable:,}",
            pct,
        )
    Console(file=file).print(table)


def cmd_build(args: argparse.Namespace) -> int:
    from batteryless.firmware import build

    defines = {}
    for item in args.define or []:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"--define expects NAME[=VALUE], got {item!r}")
        defines[key] = value or "1"
    with console_progress(not args.quiet) as progress:
        result = build(
            args.board,
            model_dir=args.model_dir,
            backend=args.backend,
            app=args.app,
            out_dir=args.out,
            progress=progress,
            defines=defines or None,
            dsplib_dir=args.dsplib_dir,
        )
    if result.warning:
        print(f"warning: {result.warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_regions(result)
    return 0


def _int16_list(text: str) -> bytes:
    import numpy as np

    try:
        vals = [int(v) for v in text.replace(",", " ").split()]
    except ValueError as exc:
        raise UsageError(f"--int16 expects integers separated by commas, got {text!r}") from exc
    if any(v < -32768 or v > 32767 for v in vals):
        raise UsageError("--int16 values must lie in [-32768, 32767]")
    return np.asarray(vals, dtype="<i2").tobytes()


def cmd_run(args: argparse.Namespace) -> int:
    from batteryless import firmware

    image = Path(args.image)
    if image.is_dir():
        image = image / "firmware.elf"
    if args.dataset:
        if not args.artifact:
            raise UsageError("--dataset needs --artifact (the .bl file the image was generated from)")
        with console_progress(not args.quiet) as progress:
            res = firmware.run_dataset(
                image,
                args.board,
                args.artifact,
                args.dataset,
                count=args.samples,
                start=args.start,
                dataset_path=args.data,
                timeout=args.timeout,
                progress=progress,
            )
        if args.json:
            print(json.dumps(res.to_dict(), indent=2))
            return 0
        for i, (p, y, c) in enumerate(zip(res.predictions, res.labels, res.counts, strict=True)):
            count = f"  {c:,} {res.unit}" if c is not None else ""
            print(f"sample {args.start + i}: predicted {p} label {y}{count}")
        print(f"accuracy {res.accuracy:.4f} on {len(res.labels)} samples")
        return 0
    if args.input and args.int16:
        raise UsageError("give either --input FILE or --int16 VALUES, not both")
    data = None
    if args.input:
        try:
            data = Path(args.input).read_bytes()
        except OSError as exc:
            raise UsageError(f"--input {args.input}: cannot read ({exc.strerror})") from exc
    elif args.int16:
        data = _int16_list(args.int16)
    cuts = list(args.cut or [])
    if args.cuts_file:
        try:
            lines = Path(args.cuts_file).read_text().split()
        except OSError as exc:
            raise UsageError(f"--cuts-file {args.cuts_file}: cannot read ({exc.strerror})") from exc
        try:
            cuts += [int(v) for v in lines]
        except ValueError as exc:
            raise UsageError(f"--cuts-file {args.cuts_file}: want one instruction count per line") from exc
    with console_progress(not args.quiet) as progress:
        res = firmware.run(
            image,
            args.board,
            inputs=data,
            timeout=args.timeout,
            cuts=cuts,
            progress=progress,
            stop_at=args.stop_at,
        )
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
    else:
        sys.stdout.write(res.output)
        if res.count is not None:
            print(
                f"[{res.count:,} {res.unit}, exit code {res.exit_code}, {res.resets} power cuts"
                + (", stopped by --stop-at]" if res.stopped else "]"),
                file=sys.stderr,
            )
        else:
            print(f"[exit code {res.exit_code}]", file=sys.stderr)
    return 0 if res.exit_code == 0 or res.stopped or args.any_exit else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "build",
        help="build firmware for a board with CMake and report memory use per region",
        description="Configure and build firmware (CMakeLists.txt) for --board. With --model-dir (generated "
        "C from 'batteryless codegen') the model app is built, else the selftest app. Reports text/data/bss "
        "per board region against the limits in board.toml.",
    )
    b.add_argument("--board", required=True, help="board name (boards/<name>) or path to a board.toml")
    b.add_argument("--model-dir", help="folder with the generated model C sources")
    b.add_argument("--backend", help="ref, lea or cmsis (default: the board's default_backend)")
    b.add_argument("--app", help="firmware app (firmware/apps/<name> or a folder); default model or selftest")
    b.add_argument(
        "--out",
        help="build folder (default: build/<board>-<backend>-<app> in the repository, not the current one)",
    )
    b.add_argument("-D", "--define", action="append", help="extra C definition NAME[=VALUE] (repeatable)")
    b.add_argument(
        "--dsplib-dir",
        help="TI's DSPLib folder (include/DSPLib.h, source/): build the lea backend of an MSP430 board "
        "against it instead of the project's LEA driver",
    )
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(func=cmd_build)

    r = sub.add_parser(
        "run",
        help="run a built image: host native, QEMU (mps2-an386) or mspdebug's simulator",
        description="Run IMAGE (firmware.elf or its build folder) the way the board's [emulator] table says, "
        "with an input patched into the image. Prints the firmware's output and the instruction (QEMU) or "
        "MCLK cycle (mspdebug) count. With --dataset and --artifact: run test samples and print predictions.",
    )
    r.add_argument("image", help="firmware.elf or the build folder holding it")
    r.add_argument("--board", required=True, help="board name or path to a board.toml")
    r.add_argument("--input", help="raw input bytes for the image's bl_input buffer")
    r.add_argument("--int16", help="input as comma-separated int16 values")
    r.add_argument("--dataset", help="run test samples of this dataset (needs --artifact)")
    r.add_argument("--artifact", help="the .bl artifact the image was generated from (input quantisation)")
    r.add_argument("--data", help="folder or file holding the dataset (mnist, har, npz)")
    r.add_argument("--samples", type=int, default=10, help="number of test samples (default 10)")
    r.add_argument("--start", type=int, default=0, help="first test sample (default 0)")
    r.add_argument(
        "--cut", type=int, action="append", help="cut power at this instruction count (repeatable)"
    )
    r.add_argument("--cuts-file", help="more power cuts: a file with one instruction count per line")
    r.add_argument(
        "--stop-at",
        type=int,
        help="QEMU: end the run once this many instructions have executed (exit code 87, output so far)",
    )
    r.add_argument("--timeout", type=float, default=120.0, help="seconds per run (default 120)")
    r.add_argument("--any-exit", action="store_true", help="exit 0 even if the firmware's exit code is not 0")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=cmd_run)
