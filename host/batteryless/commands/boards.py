"""Verb ``board``: ``board import --pack FILE --device NAME`` (a board folder from a CMSIS-Pack) and
``board check NAME`` (list the board's ASSUMED facts)."""

from __future__ import annotations

import argparse
import json


def cmd_board(args: argparse.Namespace) -> int:
    from batteryless.boards.packs import check_board, import_pack
    from batteryless.errors import BoardError

    if args.action == "import":
        res = import_pack(args.pack, args.device, out_dir=args.out, name=args.name, force=args.force)
        if args.json:
            print(json.dumps({"board": str(res.board_dir), "files": [str(f) for f in res.files],
                              "assumed": res.assumed}, indent=1))  # fmt: skip
        elif not args.quiet:
            print(f"wrote {res.board_dir} (board.toml, linker.ld, toolchain.cmake)")
            for line in res.assumed:
                print(f"ASSUMED {line.split(':', 1)[0]} (see 'batteryless board check')")
        return 0
    flagged = check_board(args.board)
    if args.json:
        print(json.dumps({"board": args.board, "assumed": flagged}, indent=1))
    else:
        for line in flagged:
            print(f"ASSUMED {line}")
        print(f"{args.board}: {len(flagged)} ASSUMED fact(s)")
    if args.strict and flagged:
        raise BoardError(f"{args.board}: {len(flagged)} fact(s) are ASSUMED, not sourced (--strict)")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "board",
        help="import a board from a CMSIS-Pack, or list a board's ASSUMED facts",
        description="'import --pack FILE(.pack|.pdsc) --device NAME': read the device's memories, core, "
        "FPU/DSP/MVE and clock (cmsis-pack-manager, offline) and write boards/<name>/ (board.toml with each "
        "fact's source, linker.ld, toolchain.cmake); what a pack cannot say is written ASSUMED. "
        "'check NAME': list a board's ASSUMED facts (--strict: exit with an error if there are any).",
    )
    sub = p.add_subparsers(dest="action", required=True)
    imp = sub.add_parser("import", help="write a board folder for one device of a CMSIS-Pack")
    imp.add_argument("--pack", required=True, help=".pack (zip) or .pdsc file")
    imp.add_argument("--device", required=True, help="device name (Dname) in the pack")
    imp.add_argument("--name", help="board name (default: the device name in lower case)")
    imp.add_argument("--out", help="folder to write the board folder into (default: the project's boards/)")
    imp.add_argument("--force", action="store_true", help="replace an existing board folder")
    imp.add_argument("--json", action="store_true", help="print JSON")
    imp.set_defaults(func=cmd_board)
    chk = sub.add_parser("check", help="list a board's ASSUMED facts")
    chk.add_argument("board", help="board name or path to a board.toml")
    chk.add_argument("--strict", action="store_true", help="exit with an error when any fact is ASSUMED")
    chk.add_argument("--json", action="store_true", help="print JSON")
    chk.set_defaults(func=cmd_board)
