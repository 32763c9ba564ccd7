"""The continuous-inference app's input (:func:`continuous_input`) and output (:func:`parse_continuous`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from batteryless.errors import UsageError


def continuous_input(
    samples: list[bytes], inferences: int = 0, max_boots: int = 0, marks: bool = True
) -> bytes:
    """Input of a continuous-inference image: header {u32 inferences (0 = no limit), u32 max_boots (0 = no
    limit), u32 flags (bit 0: no marks)} then the samples (inference i uses sample i mod len(samples))."""
    if not samples or len({len(x) for x in samples}) != 1 or not samples[0]:
        raise UsageError("continuous_input needs one or more samples of the same, non-zero length")
    if inferences < 0 or max_boots < 0:
        raise UsageError(f"inferences and max_boots must be >= 0 (0 = no limit): {inferences}, {max_boots}")
    head = inferences.to_bytes(4, "little") + max_boots.to_bytes(4, "little")
    return head + (0 if marks else 1).to_bytes(4, "little") + b"".join(samples)


@dataclass
class ContinuousOutput:
    """What a continuous-inference run printed: one entry per boot {boot, commits, inference, next} (the
    state it recovered), the logits and finishing boot of each inference (first complete line per index),
    the final commit count if the run reached its end, and lines that did not parse (cut-off ones)."""

    boots: list[dict[str, int]]
    inferences: dict[int, tuple[int, list[int]]]  # index → (boot whose commit finished it, logits)
    final_commits: int | None
    task_runs: int | None
    marks: int | None  # host: marks of the last boot
    garbled: int
    conflicts: list[int] = field(default_factory=list)  # indices printed again with other logits or boot
    checks: dict[str, int] = field(default_factory=dict)  # final "corrupt", "unborn", "lost_max" lines
    modes: dict[int, int] = field(default_factory=dict)  # index → EVE mode it ran in (images with modes)


_BOOT_RE = re.compile(r"^boot (\d+) commits (\d+) inference (\d+) next (\d+)$")
_INF_RE = re.compile(r"^inference (\d+) boot (\d+)(?: mode (\d+))? logits((?: -?\d+)+)$")


def parse_continuous(text: str, output_len: int | None = None) -> ContinuousOutput:
    """Parse a continuous-inference run's output. A line cut by a power failure is either missing (QEMU
    writes whole lines) or incomplete; an inference line with the wrong number of logits is not used, and
    a repeated one (power failed after printing, before the NVM flag) keeps its first occurrence; a repeat
    with other logits or another boot is listed in ``conflicts``."""
    boots: list[dict[str, int]] = []
    infs: dict[int, tuple[int, list[int]]] = {}
    final = task_runs = marks = None
    garbled = 0
    checks: dict[str, int] = {}
    conflicts: list[int] = []
    modes: dict[int, int] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if m := _BOOT_RE.match(line):
            b, c, i, n = (int(g) for g in m.groups())
            boots.append({"boot": b, "commits": c, "inference": i, "next": n})
        elif m := _INF_RE.match(line):
            logits = [int(v) for v in m.group(4).split()]
            if output_len is not None and len(logits) != output_len:
                garbled += 1
                continue
            entry = (int(m.group(2)), logits)
            if m.group(3) is not None:
                modes.setdefault(int(m.group(1)), int(m.group(3)))
            prev = infs.setdefault(int(m.group(1)), entry)
            if prev != entry and int(m.group(1)) not in conflicts:
                conflicts.append(int(m.group(1)))
        elif line.startswith("commits ") and line[8:].isdigit():
            final = int(line[8:])
        elif line.startswith("task_runs ") and line[10:].isdigit():
            task_runs = int(line[10:])
        elif line.startswith("marks ") and line[6:].isdigit():
            marks = int(line[6:])
        elif (kv := line.split(" "))[0] in ("corrupt", "unborn", "lost_max") and kv[-1].isdigit():
            checks[kv[0]] = int(kv[-1])
        elif not line.startswith("boots "):
            garbled += 1
    return ContinuousOutput(boots, infs, final, task_runs, marks, garbled, conflicts, checks, modes)
