"""Verbs ``flash`` (write an image over the MSP430 BSL) and ``bsl-emulator`` (serve a BSL model on a pty).

Exit codes: 0 ok, 2 usage, 10 BSL protocol failure, 20 bad image, 21 no reply, 22 locked / password
refused, 23 verify mismatch (see ``batteryless.errors``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from batteryless.errors import UsageError


def _password_arg(value: str | None, board: str) -> str | bytes:
    if value is None or value in ("auto", "image", "erased"):
        return value or "auto"
    raw = b""
    if not Path(value).exists():
        try:
            raw = bytes.fromhex(value.replace(" ", ""))
        except ValueError:
            raw = b""
        if len(raw) == 32:
            return raw
        hexlike = all(c in "0123456789abcdefABCDEF " for c in value)
        if hexlike:
            raise UsageError(
                f"--password {value!r}: {len(value.replace(' ', ''))} hex digits; a password is 64 hex digits"
                " (or auto, image, erased, or a file)"
            )
        raise UsageError(
            f"--password {value}: password file not found (or give auto, image, erased, or 64 hex digits)"
        )
    from batteryless.boards import load_board
    from batteryless.flash.flasher import BslParams, read_password_file

    return read_password_file(value, BslParams.from_board(load_board(board)))


def check_flash_args(args: argparse.Namespace) -> None:
    """Every number and path checked before a port is opened or a byte sent (one line, exit 2 / 20)."""
    import math

    from batteryless.errors import ImageError
    from batteryless.flash.flasher import check_options
    from batteryless.paths import check_input_file

    check_options(None, baud=args.baud, retries=args.retries, reply_timeout=args.timeout, run=args.run)
    if not (math.isfinite(args.wait) and args.wait >= 0):
        raise UsageError(f"--wait {args.wait:g}: give seconds >= 0")
    check_input_file(args.image, "image", ImageError)
    if args.port and not args.dry_run and Path(args.port).is_dir():
        raise UsageError(f"--port {args.port}: is a folder, not a serial port")


def _wait_for_port(port: str, seconds: float) -> None:
    """Wait until ``port`` exists (an adapter being plugged in, ``bsl-emulator --link`` starting). If it
    never appears, opening it fails with the usual "cannot open" error (exit 21)."""
    deadline = time.monotonic() + seconds
    while not Path(port).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def cmd_flash(args: argparse.Namespace) -> int:
    from batteryless.flash import flash
    from batteryless.progress import console_progress

    def trace(direction: str, data: bytes) -> None:
        print(f"{direction} {data.hex(' ').upper()}", file=sys.stderr)

    def warn(msg: str) -> None:
        print(f"warning: {msg}", file=sys.stderr)

    if not args.dry_run and not args.port:
        raise UsageError("--port is required (e.g. --port /dev/ttyUSB0), unless --dry-run")
    check_flash_args(args)
    password = _password_arg(args.password, args.board)
    if args.port and not args.dry_run and args.wait:
        _wait_for_port(args.port, args.wait)
    with console_progress(not args.quiet and not args.trace and not args.json and not args.dry_run) as prog:
        rep = flash(
            args.image,
            args.port,
            args.board,
            entry=args.entry,
            baud=args.baud,
            password=password,
            erase=args.erase,
            force=args.force,
            verify=not args.no_verify,
            skip_unchanged=not args.no_skip,
            fast_write=args.fast_write,
            run=args.run,
            dry_run=args.dry_run,
            retries=args.retries,
            reply_timeout=args.timeout,
            progress=prog,
            trace=trace if args.trace else None,
            warn=warn,
            allow_stand_in=args.allow_stand_in,
        )
    if args.json:
        print(json.dumps(rep.as_dict(), indent=1))
        return 0
    if rep.dry_run:
        print(f"image        {rep.image}")
        for s in rep.segments:
            end = s["address"] + s["length"] - 1
            print(
                f"  segment    0x{s['address']:05X}..0x{end:05X}  {s['length']:7d} bytes  "
                f"crc 0x{s['crc']:04X}"
            )
        print(f"total        {rep.payload_bytes} bytes in {len(rep.segments)} segments")
        rv = "not in image (read from the part)" if rep.reset_vector is None else f"0x{rep.reset_vector:04X}"
        print(f"reset vector {rv}")
        print(f"password     {rep.password_source} (a wrong password makes the part mass-erase main FRAM)")
        print(f"baud         {rep.baud} after unlocking")
        for w in rep.warnings:
            print(f"note         {w}")
        print("dry run: nothing was sent")
        return 0
    print(
        f"flashed {rep.written_bytes} bytes ({rep.skipped_bytes} unchanged, skipped) at {rep.baud} baud in "
        f"{rep.seconds_transfer:.2f} s: {rep.throughput_bps:.0f} B/s = {100 * rep.wire_efficiency:.1f}% of "
        f"the 8E1 wire limit; verified: {'yes' if rep.verified else 'no'}; retries {rep.retries}, "
        f"re-syncs {rep.recoveries}"
        + (f"; started at 0x{rep.started_at:04X}" if rep.started_at is not None else "")
    )
    return 0


def cmd_bsl_emulator(args: argparse.Namespace) -> int:
    import math

    from batteryless.errors import ImageError
    from batteryless.flash.emulator import Faults, bsl_emulator
    from batteryless.paths import check_input_file

    for flag, v, ok in (
        ("--time-scale", args.time_scale, "a factor >= 0"),
        ("--reenter", args.reenter, "seconds >= 0"),
    ):
        if not (math.isfinite(v) and v >= 0):
            raise UsageError(f"{flag} {v:g}: give {ok}")
    if not 0 <= args.fault_rate <= 1:
        raise UsageError(f"--fault-rate {args.fault_rate:g}: give a probability between 0 and 1")
    if args.image:
        check_input_file(args.image, "image", ImageError)
    faults = Faults(rate=args.fault_rate, seed=args.seed)
    pw = None if args.password is None else _password_arg(args.password, args.board)
    emu = bsl_emulator(
        args.board,
        time_scale=args.time_scale,
        password=pw if isinstance(pw, bytes) else None,
        image=args.image,
        faults=faults,
        reenter_after_s=args.reenter,
    )
    link = Path(args.link) if args.link else None
    try:
        if link is not None:
            _make_link(link, emu.path)
        # SIGTERM (`kill %1` after `bsl-emulator &`) ends it like Ctrl-C: summary, link removed.
        signal.signal(signal.SIGTERM, _interrupt)
        print(emu.path, flush=True)
        print(
            f"BSL emulator for {args.board} on {emu.path}"
            + (f" (linked as {link})" if link is not None else "")
            + f" (time scale {args.time_scale:g}); use --entry manual with it; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        d = emu.device
        print(
            f"stopped: {emu.packets} packets, {emu.framing_errors} framing errors, {d.erase_count} mass "
            f"erases, locked={d.locked}, started at "
            + ("-" if d.running_at is None else f"0x{d.running_at:04X}"),
            file=sys.stderr,
        )
        return 0
    finally:
        if link is not None and link.is_symlink() and os.readlink(link) == emu.path:
            link.unlink()
        emu.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _make_link(link: Path, target: str) -> None:
    """Point ``link`` at the pty. A stale link (an emulator that was killed) is replaced; anything else at
    that path is left alone."""
    if link.exists() or link.is_symlink():
        if not link.is_symlink():
            raise UsageError(f"--link {link}: exists and is not a symbolic link; choose another path")
        link.unlink()
    try:
        link.symlink_to(target)
    except OSError as exc:
        raise UsageError(f"--link {link}: cannot create ({exc.strerror})") from exc


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "flash",
        help="write an image (ELF, Intel HEX, TI-TXT) to an MSP430 FRAM part over its UART bootloader",
        description="Flash over the MSP430 FRAM UART BSL: entry sequence, probe, unlock, optional fast baud, "
        "write, verify by CRC, start. Exit codes: 10 protocol, 20 image, 21 no reply, 22 locked, 23 verify.",
    )
    p.add_argument("image", help="firmware image: .elf, Intel HEX or TI-TXT")
    p.add_argument("--port", help="serial port of the BSL UART (e.g. /dev/ttyUSB0, or the emulator's pty)")
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for --port to appear (an adapter being plugged in, an emulator starting)",
    )
    p.add_argument("--board", default="msp430fr5994", help="board name or board.toml path")
    p.add_argument(
        "--entry",
        help="entry preset (bsl-scripter, bsl-scripter-inverted, swapped, swapped-inverted, manual) or a "
        "custom sequence like 'D1|R1|W0.002|R0|...' (D=DTR, R=RTS, 1=asserted, W=wait s); default from board",
    )
    p.add_argument(
        "--baud", type=int, help="baud after unlocking (default: board fast_baud; 9600 = no switch)"
    )
    p.add_argument(
        "--password",
        help="auto (image, else erased; default), image, erased, a file (image or 32 raw bytes), "
        "or 64 hex digits",
    )
    p.add_argument("--erase", action="store_true", help="mass-erase main FRAM first (then unlock as erased)")
    p.add_argument("--force", action="store_true", help="allow writing 0xFF80-0xFF8F (signatures: can lock)")
    p.add_argument(
        "--allow-stand-in",
        action="store_true",
        help="flash an image that links a stand-in (it will not compute on the part; refused otherwise)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip the CRC verify after writing")
    p.add_argument("--no-skip", action="store_true", help="write segments even if their CRC already matches")
    p.add_argument("--fast-write", action="store_true", help="use RX Data Block Fast (no per-block reply)")
    p.add_argument("--run", choices=("load-pc", "reset", "none"), default="load-pc", help="how to start it")
    p.add_argument(
        "--dry-run", action="store_true", help="show segments, reset vector, password; send nothing"
    )
    p.add_argument("--retries", type=int, default=4, help="retries per packet (exponential back-off)")
    p.add_argument("--timeout", type=float, default=0.3, help="reply timeout in s beyond the wire time")
    p.add_argument("--trace", action="store_true", help="hex dump of every packet on stderr")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_flash)

    e = subparsers.add_parser(
        "bsl-emulator",
        help="serve a model of the MSP430FR5994 bootloader on a pseudo-terminal (try flash without a board)",
        description="Prints the pty path on stdout and serves until Ctrl-C. Bytes take their 8E1 wire time "
        "at the current baud, times --time-scale (0 = no pacing).",
    )
    e.add_argument("--board", default="msp430fr5994", help="board name or board.toml path")
    e.add_argument(
        "--link",
        metavar="PATH",
        help="also make PATH a symbolic link to the pty (a fixed name for --port; removed on exit)",
    )
    e.add_argument("--image", help="preload this image (its 0xFFE0..0xFFFF becomes the password)")
    e.add_argument("--password", help="the part's password (file or 64 hex digits); default 32 x 0xFF")
    e.add_argument("--time-scale", type=float, default=1.0, help="wire-time factor (1 = real, 0 = none)")
    e.add_argument("--fault-rate", type=float, default=0.0, help="probability of a random byte fault")
    e.add_argument("--seed", type=int, default=0, help="seed for random faults")
    e.add_argument(
        "--reenter",
        type=float,
        default=1.0,
        help="after Load PC, return to BSL mode once the line is idle this many seconds (stands in for "
        "the entry sequence, which a pty cannot carry)",
    )
    e.set_defaults(func=cmd_bsl_emulator)
