"""Verbs ``emulate`` (schedule-level energy-harvesting emulation) and ``trace`` (generate, inspect)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from batteryless.errors import UsageError
from batteryless.progress import console_progress


def _num(text: str) -> float | int | str:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _params(items: list[str] | None) -> dict[str, float | int | str]:
    out: dict[str, float | int | str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects NAME=VALUE, got {item!r}")
        out[key.strip()] = _num(value.strip())
    return out


def _fmt(x, scale: float = 1.0, digits: int = 3) -> str:
    return "—" if x is None else f"{x * scale:.{digits}g}"


def print_report(doc: dict, file=None) -> None:
    file = file if file is not None else sys.stdout
    from rich.console import Console
    from rich.table import Table

    tr = doc["trace"]
    mean_uw = tr["mean_harvested_power_w"] * 1e6
    name = tr["name"] or tr["source"]
    title = f"{name} ({tr['duration_s'] / 3600:.3g} h, mean {mean_uw:.3g} µW) on {doc['board']}"
    table = Table(title=title)
    cols = (
        "model",
        "policy",
        "inferences",
        "per hour",
        "median latency s",
        "failures",
        "µJ/inference",
        "useful mJ",
        "commit mJ",
        "boot mJ",
        "wasted mJ",
        "leaked mJ",
        "off %",
    )
    for c in cols:
        table.add_column(c, justify="left" if c in ("model", "policy") else "right")
    for r in doc["runs"]:
        e = r["energy_j"]
        lat = r["latency"]["median_s"] if r["latency"] else None
        off = 100 * r["time_off_s"] / max(r["time_off_s"] + r["time_on_s"], 1e-12)
        table.add_row(
            r["model"],
            r["policy"],
            str(r["inferences"]),
            _fmt(r["inferences_per_hour"]),
            _fmt(lat),
            str(r["power_failures"]),
            _fmt(r["mcu_energy_per_inference_j"], 1e6),
            _fmt(e["useful"], 1e3),
            _fmt(e["commit"], 1e3),
            _fmt(e["boot"], 1e3),
            _fmt(e["wasted"], 1e3),
            _fmt(e["leaked"], 1e3),
            f"{off:.1f}",
        )
    console = Console(file=file, width=200)
    console.print(table)
    for w in doc.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {w}")
    if any(r.get("schedule_is_example") for r in doc["runs"]):
        console.print(
            "note: EXAMPLE schedule(s) with made-up costs; use codegen's schedule.json for real numbers"
        )


def print_firmware(fw: dict, file=None) -> None:
    file = file if file is not None else sys.stdout
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"firmware level: {fw['image']} ({fw['emulator']}, policy {fw['policy']})")
    for c in ("quantity", "value"):
        table.add_column(c, justify="left" if c == "quantity" else "right")
    rows = [
        ("inferences completed", str(fw["inferences"])),
        ("inferences per hour", _fmt(fw.get("inferences_per_hour"))),
        (
            "bit-exact vs continuous power",
            f"{'yes' if fw['all_correct'] else 'NO'} ({fw['checked']} checked)",
        ),
        ("power failures", str(fw["power_failures"])),
        ("power-on periods", str(len(fw["periods"]))),
        ("periods too short to boot", str(fw.get("periods_too_short_to_boot", 0))),
        ("commits", "—" if fw.get("commits") is None else str(fw["commits"])),
        ("instructions executed", "—" if fw.get("instructions") is None else str(fw["instructions"])),
        ("largest atomic step (instr.)", str(fw.get("largest_step_instructions", "—"))),
        ("emulator wall s", _fmt(fw["wall_s"])),
        ("power cycles per s", _fmt(fw["power_cycles_per_s"])),
    ]
    if fw.get("modes"):  # EVE image: finished inferences per mode (the supply fed from the trace)
        rows.insert(1, ("inferences per mode", ", ".join(f"{m}: {n}" for m, n in fw["modes"].items())))
    for k, v in rows:
        table.add_row(k, v)
    console = Console(file=file, width=200)
    console.print(table)
    console.print(f"budgets: {fw['budget_unit']}")
    if fw["wrong"]:
        console.print(f"[red]wrong logits[/red] in inferences {fw['wrong']}")


# numeric options: (attribute, flag, lowest allowed, lowest is allowed?)
POSITIVE = (
    ("capacitance_uf", "--capacitance-uf", 0.0, False),
    ("v_on", "--v-on", 0.0, False),
    ("v_off", "--v-off", 0.0, False),
    ("v_max", "--v-max", 0.0, False),
    ("leakage_ohm", "--leakage-ohm", 0.0, False),
    ("esr_ohm", "--esr-ohm", 0.0, True),
    ("resample_s", "--resample-s", 0.0, False),
    ("samples", "--samples", 1, True),
    ("max_periods", "--max-periods", 1, True),
)


def check_emulate_args(args: argparse.Namespace) -> None:
    """Every path and number checked before anything is read, built or written (one line each)."""
    import math

    from batteryless.emulate.traces import bundled_traces
    from batteryless.errors import ArtifactError, ScheduleError, TraceError
    from batteryless.paths import check_input_file, check_output_dir
    from batteryless.schedule import EXAMPLES

    for attr, flag, low, inclusive in POSITIVE:
        v = getattr(args, attr, None)
        if v is None:
            continue
        if not math.isfinite(v) or v < low or (v == low and not inclusive):
            rel = "≥" if inclusive else ">"
            raise UsageError(f"{flag} must be a finite number {rel} {low:g}, not {v:g}")
    if not (args.trace in bundled_traces() and not Path(args.trace).exists()):
        check_input_file(args.trace, "trace file", TraceError)
    for s in args.schedule or []:
        if s not in ("example", *EXAMPLES) or Path(s).exists():
            check_input_file(s, "schedule file", ScheduleError)
    if args.artifact:
        check_input_file(args.artifact, "artifact", ArtifactError)
    if args.out:
        check_output_dir(args.out, "report folder")


def cmd_emulate(args: argparse.Namespace) -> int:
    from batteryless.emulate import emulate
    from batteryless.emulate.report import write_json

    check_emulate_args(args)

    if not args.schedule and not args.firmware:
        raise UsageError("give --schedule (schedule level) and/or --firmware --artifact MODEL.bl")
    if args.firmware and not args.artifact:
        raise UsageError("--firmware needs --artifact MODEL.bl (the model whose flex image is emulated)")
    if args.artifact and not args.firmware:
        raise UsageError("--artifact is for --firmware; the schedule level reads --schedule")
    if not args.firmware and (args.emulator or args.backend != "ref"):
        raise UsageError("--backend and --emulator are for --firmware")
    if args.eve_policy and not args.firmware:
        raise UsageError("--eve-policy is for --firmware (the schedule level reads the table of --schedule)")
    out = Path(args.out) if args.out else None
    buffer_args = dict(
        capacitance_f=args.capacitance_uf * 1e-6 if args.capacitance_uf is not None else None,
        v_on=args.v_on,
        v_off=args.v_off,
        v_max=args.v_max,
        leakage_resistance_ohm=args.leakage_ohm,
        esr_ohm=args.esr_ohm,
    )
    fw_doc = None
    with console_progress(not args.quiet and not args.json) as progress:
        if args.firmware:
            from batteryless.emulate.firmware import emulate_firmware

            pols = args.policy or ["flex"]
            if len(pols) != 1 or pols[0] == "restart":
                raise UsageError(
                    "--firmware runs one committing policy: --policy flex (default) or --policy per-layer"
                )
            fw_doc = emulate_firmware(
                args.trace,
                args.board,
                artifact=args.artifact,
                n_samples=args.samples,
                policy="layer" if pols[0] == "per-layer" else "flex",
                backend=args.backend,
                emulator=args.emulator,
                converter=args.converter,
                panel=args.panel,
                trace_format=args.format,
                resample_s=args.resample_s,
                max_periods=args.max_periods,
                progress=progress,
                eve_policy=args.eve_policy,
                **buffer_args,
            )
        doc = fw_doc
        if args.schedule:
            doc = emulate(
                list(args.schedule),
                args.trace,
                args.board,
                policies=tuple(args.policy or ("flex", "per-layer", "restart")),
                mode=args.mode,
                converter=args.converter,
                panel=args.panel,
                out_dir=out,
                plots=not args.no_plots,
                trace_format=args.format,
                resample_s=args.resample_s,
                progress=progress,
                **buffer_args,
            )
    if fw_doc is not None and args.schedule:
        doc["firmware"] = fw_doc["firmware"]
        doc["level"] = "schedule+firmware"
        doc.pop("firmware_note", None)
        doc["warnings"] = doc.get("warnings", []) + fw_doc["warnings"]
    if fw_doc is not None and out is not None:
        write_json(doc, out / "report.json")
    return _print(args, doc, out)


def _print(args: argparse.Namespace, doc: dict, out: Path | None) -> int:
    if args.json:
        from batteryless.emulate.report import to_jsonable

        json.dump(to_jsonable(doc), sys.stdout, indent=2, allow_nan=False)
        print()
        return 0
    if doc["runs"]:
        print_report(doc)
    elif doc.get("warnings"):
        for w in doc["warnings"]:
            print(f"warning: {w}")
    if doc.get("firmware"):
        print_firmware(doc["firmware"])
    if out is not None:
        print(f"report: {out / 'report.json'}")
    return 0


def cmd_trace_generate(args: argparse.Namespace) -> int:
    from batteryless.emulate.generators import generate
    from batteryless.emulate.traces import write_csv
    from batteryless.paths import check_output_file

    check_output_file(args.out, "the trace")
    params = _params(args.set)
    tr = generate(args.kind, **params)
    desc = f"generated by batteryless trace generate {args.kind} " + " ".join(
        f"{k}={v}" for k, v in params.items()
    )
    path = write_csv(tr, args.out, comment=desc)
    if not args.quiet:
        print(f"{path}: {len(tr)} samples, {tr.duration_s:g} s, {tr.quantity}")
    return 0


def cmd_trace_info(args: argparse.Namespace) -> int:
    import numpy as np

    from batteryless.emulate.power import load_panel
    from batteryless.emulate.traces import open_trace

    st = open_trace(args.trace, args.format)  # read in chunks: any length in bounded memory
    panel = load_panel(args.panel) if st.quantity == "irradiance" else None
    energy, first = 0.0, None
    for c in st.chunks():
        first = float(c.time_s[0]) if first is None else first
        p = c.values if panel is None else panel.power(c.values)
        energy += float(np.dot(p, np.diff(np.append(c.time_s, c.end_s))))
    duration = float(st.end_s - first)
    info = {
        "trace": st.source,
        "quantity": st.quantity,
        "samples": st.samples,
        "start_s": st.start_s,
        "duration_s": duration,
        "harvested_j": energy,
        "mean_power_w": energy / duration,
        "panel": panel.name if panel else None,
    }
    print(json.dumps(info, indent=2))
    return 0


def cmd_trace_list(args: argparse.Namespace) -> int:
    from batteryless.emulate.generators import GENERATORS
    from batteryless.emulate.traces import bundled_traces

    print("bundled traces: " + ", ".join(bundled_traces()))
    print("generators: " + ", ".join(GENERATORS))
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "emulate",
        help="replay an energy trace against schedules (schedule level) or the real firmware (--firmware)",
        description="Energy-harvesting emulation: trace → panel → converter → capacitor → MCU running the "
        "schedule's tasks under FLEX (commit per task), per-layer commits, or restart; with --firmware the "
        "real flex image runs under QEMU / mspdebug / msp430sim with power cut at each power-on period's "
        "end.",
    )
    p.add_argument(
        "--schedule",
        action="append",
        help="schedule.json (repeat to compare models, e.g. dense vs RAD); 'example', 'example-dense' and "
        "'example-rad' are bundled EXAMPLES with made-up costs",
    )
    p.add_argument(
        "--trace", required=True, help="trace file (.csv, EnHANTs .txt, Shepherd .h5) or bundled name"
    )
    p.add_argument("--board", required=True, help="board name or board.toml (power model, energy buffer)")
    p.add_argument(
        "--policy", action="append", choices=("flex", "per-layer", "restart"), help="default: all three"
    )
    p.add_argument("--mode", help="schedule mode (default: the first)")
    p.add_argument(
        "--converter", default="ideal", help="converter table name or .toml (ideal, bq25570, diode)"
    )
    p.add_argument(
        "--panel", default="indoor-5cm2", help="panel for irradiance traces (indoor-5cm2, kxob22-like)"
    )
    p.add_argument("--capacitance-uf", type=float, help="override the board's buffer capacitance (µF)")
    p.add_argument("--v-on", type=float, help="override the power-on threshold (V)")
    p.add_argument("--v-off", type=float, help="override the brown-out threshold (V)")
    p.add_argument("--v-max", type=float, help="override the maximum buffer voltage (V)")
    p.add_argument("--leakage-ohm", type=float, help="override the buffer's leakage resistance (Ω)")
    p.add_argument("--esr-ohm", type=float, help="override the buffer's ESR (Ω)")
    p.add_argument(
        "--format", choices=("csv", "enhants", "shepherd"), help="trace format (default: from suffix)"
    )
    p.add_argument(
        "--resample-s", type=float, help="average the trace over windows of this many seconds first"
    )
    p.add_argument("--out", help="folder for report.json and PNG plots")
    p.add_argument("--no-plots", action="store_true", help="write report.json only")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument(
        "--firmware",
        action="store_true",
        help="firmware level: build the artifact's flex image and run it under the board's emulator (QEMU, "
        "mspdebug, msp430sim) with power cut where the trace says; with --schedule too, both levels in one "
        "report",
    )
    p.add_argument("--artifact", help="model artifact (.bl) for --firmware")
    p.add_argument(
        "--backend",
        default="ref",
        help="--firmware: kernel backend of the flex image (default ref; lea on the msp430fr5994 runs on "
        "msp430sim, the board's [emulator].by_backend)",
    )
    p.add_argument(
        "--emulator",
        help="--firmware: run on this emulator of the board's [emulator].alternatives (e.g. msp430sim)",
    )
    p.add_argument(
        "--samples", type=int, default=4, help="--firmware: test samples cycled through (default 4)"
    )
    p.add_argument(
        "--max-periods", type=int, help="--firmware: emulate only the first N power-on periods of the trace"
    )
    p.add_argument(
        "--eve-policy",
        metavar="POLICY.json",
        help="--firmware, an EVE artifact: the rate-rule document of `batteryless policy` (tuned for this "
        "buffer); the image's mode table carries it",
    )
    p.set_defaults(func=cmd_emulate)

    t = subparsers.add_parser("trace", help="generate, list and inspect energy traces")
    tsub = t.add_subparsers(dest="trace_cmd", metavar="CMD")
    g = tsub.add_parser("generate", help="write a deterministic synthetic trace as CSV")
    g.add_argument("kind", help="constant, markov, windowed, solar, rf, kinetic")
    g.add_argument("--out", required=True, help="CSV file to write (atomically)")
    g.add_argument("--set", action="append", metavar="NAME=VALUE", help="generator parameter (repeatable)")
    g.set_defaults(func=cmd_trace_generate)
    i = tsub.add_parser("info", help="validate a trace and print its duration and energy")
    i.add_argument("trace")
    i.add_argument("--format", choices=("csv", "enhants", "shepherd"))
    i.add_argument("--panel", default="indoor-5cm2")
    i.set_defaults(func=cmd_trace_info)
    ls = tsub.add_parser("list", help="bundled traces and generators")
    ls.set_defaults(func=cmd_trace_list)

    def _need_cmd(args: argparse.Namespace) -> int:
        t.print_help(sys.stderr)
        return 2

    t.set_defaults(func=_need_cmd)
