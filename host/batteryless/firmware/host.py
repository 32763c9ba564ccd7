"""Runner: the host board's native executable (no instruction counter; power cuts at bl_mark calls)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from batteryless.errors import EmulationError
from batteryless.firmware.runner import RunResult

HOST_POWER_CUT_EXIT = 86  # BL_HOST_POWER_CUT_EXIT in firmware/platform/bl_platform.h


def run_image(exe: Path, timeout: float, cuts: list[int], nvm_file: Path) -> RunResult:
    """Run natively. The host has no instruction counter: a cut ``k`` ends the boot at its k-th
    ``bl_mark()`` call (NVM kept in ``nvm_file``), then the program boots again."""
    if any(c <= 0 for c in cuts):
        raise EmulationError(f"host power cuts are mark numbers >= 1 (the k-th bl_mark of a boot): {cuts}")
    output = ""
    env = {**os.environ, "BL_NVM_FILE": str(nvm_file)}
    for boot, cut in enumerate([*cuts, 0]):
        env["BL_CUT_AT_MARK"] = str(cut)
        try:
            proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired as exc:
            raise EmulationError(f"{exe}: host firmware did not finish within {timeout:.0f} s") from exc
        except OSError as exc:
            raise EmulationError(
                f"{exe}: cannot execute ({exc.strerror}); was it built for the host board?"
            ) from exc
        output += proc.stdout
        if cut and proc.returncode != HOST_POWER_CUT_EXIT:
            raise EmulationError(
                f"{exe}: boot {boot + 1} ended (exit {proc.returncode}) before its bl_mark number {cut}, "
                "where the power cut was asked for"
            )
    return RunResult(output, proc.returncode, None, None, resets=len(cuts), cut_counts=list(cuts))
