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
    "batteryless.commands.search",
    "batteryless.commands.policy",
    "batteryless.commands.codegen",
    "batteryless.commands.data",
    "batteryless.commands.emulate",
    "batteryless.commands.firmware",
    "batteryless.commands.flex",
    "batteryless.commands.flash",
    "batteryless.commands.tflite",
    "batteryless.commands.boards",
]

log = logging.getLogger("batteryless")


def _add_global_flags(parser: argparse.ArgumentParser, after_verb: bool) -> None:
    """The global flags. Before the verb they set ``verbose``/``quiet``; after it (``batteryless compress
    ... -q``, as most CLIs allow) they land in separate ``*_after_verb`` fields with no default, because
    argparse copies a sub-parser's values over the main parser's: ``main`` adds the two up."""
    suffix = "_after_verb" if after_verb else ""
    parser.add_argument("--version", action="version", version=f"batteryless {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        dest="verbose" + suffix,
        default=argparse.SUPPRESS if after_verb else 0,
        help="more output; tracebacks on error (before or after the verb)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        dest="quiet" + suffix,
        default=argparse.SUPPRESS if after_verb else False,
        help="no progress bars, only results and errors (before or after the verb)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batteryless",
        description="From PyTorch to a batteryless, energy-harvesting microcontroller.",
    )
    _add_global_flags(parser, after_verb=False)
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        importlib.import_module(name).add_parser(sub)
    _add_after_verb(sub)
    return parser


def _add_after_verb(sub: argparse._SubParsersAction) -> None:
    """Every verb's parser (and a verb's own sub-verbs, e.g. ``trace gen``) also takes the global flags, so
    they may follow the verb."""
    for verb_parser in dict.fromkeys(sub.choices.values()):
        _add_global_flags(verb_parser, after_verb=True)
        for action in verb_parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_after_verb(action)


def parse_args(
    argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None
) -> argparse.Namespace:
    """Parse a command line; global flags given before and after the verb count together."""
    args = (parser or build_parser()).parse_args(argv)
    args.verbose += getattr(args, "verbose_after_verb", 0)
    args.quiet = args.quiet or getattr(args, "quiet_after_verb", False)
    for extra in ("verbose_after_verb", "quiet_after_verb"):
        if hasattr(args, extra):
            delattr(args, extra)
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(argv, parser)
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
