"""FLEX power-failure harnesses: cut power inside the real compiled firmware, compare with continuous power.

:func:`build_flex` generates a model with its activation buffers in NVM and builds the ``flex`` firmware
app (``firmware/apps/flex`` + ``checkpointing/``) with a commit policy. :func:`verify_intermittent` runs
that image once under continuous power and then under power-failure schedules, and compares the final
``logits`` of every schedule with the continuous run bit for bit:

- host: a cut is a mark number (the boot ends at its k-th ``bl_mark()``, NVM kept in a file); host builds
  mark every NVM word the commit protocol writes, so the exhaustive single-cut sweep (``sweep=True``) covers
  every protocol write and every task boundary; ``random=N`` runs N seeded multi-cut schedules;
- QEMU (mps2-an386): a cut is an instruction count (the TCG plugin resets the machine, the NOLOAD NVM
  survives); ``sweep=True`` cuts once at every ``every``-th instruction, ``random=N`` runs N schedules of
  several cuts in one QEMU process each;
- mspdebug (msp430fr5994, ``ref``): ``step N`` + ``reset`` at instruction counts; a few random schedules.
"""

from __future__ import annotations

# The package is split by what each module holds; this file only re-exports (the public names below).
from batteryless.flex.continuous import ContinuousOutput, continuous_input, parse_continuous
from batteryless.flex.harness import CHECKS, ScheduleResult, check_schedule, run_schedule
from batteryless.flex.image import (
    BOOT_MARK,
    BROKEN,
    DONE_MARK,
    POLICIES,
    FlexImage,
    build_flex,
    fault_bytes,
    model_input,
)
from batteryless.flex.sweeps import measure_largest_step
from batteryless.flex.verify import VerifyReport, verify_intermittent

__all__ = [
    "BOOT_MARK",
    "BROKEN",
    "DONE_MARK",
    "CHECKS",
    "POLICIES",
    "ContinuousOutput",
    "FlexImage",
    "ScheduleResult",
    "VerifyReport",
    "build_flex",
    "check_schedule",
    "continuous_input",
    "fault_bytes",
    "measure_largest_step",
    "model_input",
    "parse_continuous",
    "run_schedule",
    "verify_intermittent",
]
