#!/usr/bin/env python3
"""Flashing benchmark: payload throughput over the MSP430 FRAM UART BSL against the device emulator on a
pty, with real 8E1 pacing (time_scale = 1: every byte takes 11 bit times at the current baud).

Rows: 9600 baud (no switch) and 115200 baud (switched after unlocking), each with RX Data Block (a reply
per block) and RX Data Block Fast (no reply message), always verified by CRC Check; one 115200 row with the
CLI defaults (a skip-unchanged CRC Check before each unit too); one 115200 row on a noisy line (random byte
faults) to show what retries cost. ``seconds`` is the write + verify phase;
``seconds_total`` adds probe, unlock and baud switch. ``wire_efficiency`` = payload bytes per second /
(baud / 11).

Writes benchmarks/results/flash.json and prints a table. Run:
    .venv/bin/python benchmarks/flash.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

from batteryless import __version__
from batteryless.boards import load_board
from batteryless.flash.emulator import BslConfig, BslDevice, BslEmulator, Faults
from batteryless.flash.flasher import flash
from batteryless.flash.images import from_segments
from batteryless.paths import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "flash.json"


def run(
    baud: int, payload: int, fast_write: bool, fault_rate: float = 0.0, skip: bool = False, seed: int = 0
) -> dict:
    board = load_board("msp430fr5994")
    rng = random.Random(seed)
    image = from_segments([(0x4400, rng.randbytes(payload))], f"random {payload} B")
    dev = BslDevice(BslConfig.from_board(board))
    faults = Faults(rate=fault_rate, seed=seed)
    with BslEmulator(dev, time_scale=1.0, faults=faults) as emu:
        rep = flash(
            image, emu.path, board, entry="manual", baud=baud, password="erased", fast_write=fast_write,
            skip_unchanged=skip, verify=True, run="none",
        )  # fmt: skip
        ok = dev.read(0x4400, payload) == image.segments[0].data
        wire = (emu.rx_bytes, emu.tx_bytes)
    return {
        "baud": rep.baud,
        "payload_bytes": payload,
        "write_command": "RX Data Block Fast (0x1B)" if fast_write else "RX Data Block (0x10)",
        "seconds": round(rep.seconds_transfer, 4),
        "seconds_total": round(rep.seconds_total, 4),
        "throughput_bytes_per_s": round(rep.throughput_bps, 1),
        "wire_limit_bytes_per_s": round(rep.baud / 11, 1),
        "wire_efficiency": round(rep.wire_efficiency, 4),
        "verified": rep.verified and ok,
        "read_back_equal": ok,
        "retries": rep.retries,
        "resyncs": rep.recoveries,
        "fault_rate": fault_rate,
        "skip_unchanged_check": skip,
        "bytes_host_to_device": wire[0],
        "bytes_device_to_host": wire[1],
        "time_scale": 1.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller payloads (4 KB / 1 KB)")
    args = ap.parse_args()
    big, small = (4096, 1024) if args.quick else (16384, 2048)
    cases = [
        (9600, small, False, 0.0, False),
        (9600, small, True, 0.0, False),
        (115200, big, False, 0.0, False),
        (115200, big, True, 0.0, False),
        (115200, big, False, 0.0, True),  # the CLI defaults: a CRC Check before each unit too
        (115200, big, False, 0.0002, False),
    ]
    rows = []
    for baud, payload, fast, rate, skip in cases:
        row = run(baud, payload, fast, rate, skip)
        rows.append(row)
        print(
            f"{row['baud']:>6} baud {payload:>6} B  {row['write_command']:<26} {row['seconds']:7.3f} s  "
            f"{row['throughput_bytes_per_s']:8.1f} B/s  {100 * row['wire_efficiency']:5.1f}% of baud/11  "
            f"verified={row['verified']} retries={row['retries']} faults={rate} skip-check={skip}",
            flush=True,
        )
    meta = {
        "tool": f"batteryless {__version__}",
        "command": "python benchmarks/flash.py" + (" --quick" if args.quick else ""),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for row in rows:
        row["run"] = meta
    atomic_write(RESULTS, json.dumps(rows, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
