"""Command-line interface: one verb per library function, a thin shell over the Python API.

Each package that owns a verb exposes ``add_parser(subparsers)``, which registers the verb and sets
``func`` on its parser; ``func(args)`` returns an exit code. Errors from the library are the project's own
types; they become one line on stderr and ``err.exit_code`` (tracebacks only with ``--verbose``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from batteryless import __version__
from batteryless.errors import BatterylessError

# Modules that register verbs, in --help order. Each has add_parser(subparsers).
VERB_MODULES: list[str] = [
    "batteryless.commands.compress",
    "batteryless.commands.codegen",
    "batteryless.commands.data",
    "batteryless.commands.emulate",
    "batteryless.commands.firmware",
    "batteryless.commands.flex",
    "batteryless.commands.flash",
    "batteryless.commands.tflite",
]

log = logging.getLogger("batteryless")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batteryless",
        description="From PyTorch to a batteryless, energy-harvesting microcontroller.",
    )
    parser.add_argument("--version", action="version", version=f"batteryless {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more output; tracebacks on error")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars, only results and errors"
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except BatterylessError as err:
        if args.verbose:
            log.exception("failed")
        print(f"batteryless {args.verb}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"batteryless {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
