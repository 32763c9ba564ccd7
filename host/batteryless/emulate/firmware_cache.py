"""The firmware-level emulator's flex images, built once per content: ``emulate --firmware`` used to generate
and compile the artifact's continuous-inference image on every call (seconds to a minute) although the
image only changes when something that determines it changes.

The key hashes everything that goes into the image: the artifact's bytes; the board's folder (board.toml,
linker script, toolchain file); backend, policy, log length and granularity; the versions of the tools on
PATH that build it (cmake, clang, ld.lld, arm-none-eabi-gcc, the host cc); and the source tree the build reads
(firmware/, checkpointing/, tools/msp430/, CMakeLists.txt, the batteryless package that generates the C, and
the CMSIS-DSP release). An entry lives in the helper cache (``build/cache`` or ``$BATTERYLESS_CACHE``), is
built under a lock (parallel callers build it once) and counts only once its ``image.json`` is written,
atomically, after the build succeeded: an interrupted build is thrown away and redone. The cache keeps the
``$BATTERYLESS_CACHE_IMAGES`` (default 16) most recently used images and removes older ones after each build;
an entry another process holds (its lock is taken) is never removed."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from batteryless.artifact import load_artifact
from batteryless.boards import Board
from batteryless.firmware.tools import ROOT, _FileLock, cache_dir
from batteryless.flex import FlexImage, build_flex
from batteryless.paths import atomic_write
from batteryless.progress import ProgressFn, report

FORMAT = 1  # bump when the entry layout or the key's recipe changes
MARKER = "image.json"
GRANULARITY = "auto"  # what build_flex uses by default, and so what the emulator's image has
_TOOLS = ("cmake", "clang", "ld.lld-14", "ld.lld", "arm-none-eabi-gcc", "cc")
_SOURCE_DIRS = ("firmware", "checkpointing", "tools/msp430", "host/batteryless")
_SOURCE_FILES = ("CMakeLists.txt", "third_party/cmsisdsp/PKG-INFO")
PREFIX = "emulate-fw-"
KEEP_DEFAULT = 16  # images of 1-3 MB each: tens of MB at most, enough for one benchmark's boards and backends


@functools.cache
def _tool_versions() -> str:
    """First line of ``--version`` of every build tool on PATH (once per process: tools do not change)."""
    lines = []
    for tool in _TOOLS:
        path = shutil.which(tool)
        if path is None:
            lines.append(f"{tool}: absent")
            continue
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        lines.append(f"{tool}: {out.strip().splitlines()[0] if out.strip() else 'unknown'}")
    return "\n".join(lines)


def _tree_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for rel in _SOURCE_DIRS:
        files += [
            p
            for p in (root / rel).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    files += [root / rel for rel in _SOURCE_FILES if (root / rel).is_file()]
    return sorted(files)


def image_key(
    artifact: str | Path,
    board: Board,
    *,
    backend: str,
    policy: str,
    log_len: int,
    root: Path = ROOT,
    eve_policy: dict | None = None,
    capacitance_f: float | None = None,
) -> str:
    """The cache key of the continuous flex image of ``artifact`` on ``board`` (see the module doc)."""
    h = hashlib.sha256()

    def part(label: str, data: bytes) -> None:  # length-prefixed, so no two inputs run together
        h.update(f"{label}:{len(data)}:".encode())
        h.update(data)

    part("format", str(FORMAT).encode())
    part("artifact", Path(artifact).read_bytes())
    part("options", json.dumps([backend, policy, log_len, GRANULARITY]).encode())
    if eve_policy is not None:  # a rate-rule image: the tuned table and the buffer it is generated for
        part("eve_policy", json.dumps([eve_policy, capacitance_f], sort_keys=True).encode())
    for p in sorted(q for q in board.dir.rglob("*") if q.is_file()):
        part(f"board/{p.relative_to(board.dir)}", p.read_bytes())
    part("tools", _tool_versions().encode())
    for p in _tree_files(root):
        part(str(p.relative_to(root)), p.read_bytes())
    return h.hexdigest()[:16]


def _to_json(img: FlexImage, entry: Path) -> str:
    d = dataclasses.asdict(img)
    d["image"] = str(Path(img.image).relative_to(entry))
    d["model_dir"] = str(Path(img.model_dir).relative_to(entry))
    return json.dumps(d, indent=1, sort_keys=True) + "\n"


def _from_json(text: str, entry: Path) -> FlexImage:
    d = json.loads(text)
    d["image"] = entry / d["image"]
    d["model_dir"] = entry / d["model_dir"]
    return FlexImage(**d)


def cached_flex_image(
    artifact: str | Path,
    board: Board,
    *,
    backend: str,
    policy: str,
    log_len: int,
    progress: ProgressFn | None = None,
    eve_policy: dict | None = None,
    capacitance_f: float | None = None,
) -> tuple[FlexImage, bool]:
    """The continuous flex image for the firmware-level emulator, from the cache or built into it. Returns
    the image and whether this call built it. ``eve_policy`` (a loaded rate-rule document) with the
    ``capacitance_f`` it was tuned for: an EVE image whose table carries the rate rule."""
    load_artifact(artifact)  # a missing or malformed artifact: its one-line ArtifactError, before any hashing
    key = image_key(
        artifact,
        board,
        backend=backend,
        policy=policy,
        log_len=log_len,
        eve_policy=eve_policy,
        capacitance_f=capacitance_f,
    )
    entry = (cache_dir() / f"{PREFIX}{board.name}-{backend}-{key}").resolve()
    with _FileLock(entry.with_suffix(".lock")):
        marker = entry / MARKER
        if marker.is_file():
            report(progress, "firmware: image (cached)", 1, 1)
            marker.touch()  # most recently used: the last to be evicted
            return _from_json(marker.read_text(), entry), False
        if entry.exists():  # a build that did not finish: nothing in it can be trusted
            shutil.rmtree(entry)
        img = build_flex(
            artifact,
            board,
            entry,
            policy=policy,
            continuous=True,
            log_len=log_len,
            granularity=GRANULARITY,
            progress=progress,
            backend=backend,
            eve_policy=eve_policy,
            capacitance_f=capacitance_f,
        )
        atomic_write(marker, _to_json(img, entry))
    evict(keep=_keep(), spare=entry)
    return img, True


def _keep() -> int:
    raw = os.environ.get("BATTERYLESS_CACHE_IMAGES", str(KEEP_DEFAULT))
    try:
        keep = int(raw)
    except ValueError:
        keep = -1
    if keep < 1:
        raise ValueError(f"BATTERYLESS_CACHE_IMAGES must be a positive integer, got {raw!r}")
    return keep


def evict(*, keep: int, spare: Path | None = None) -> list[Path]:
    """Remove the least recently used finished images beyond the newest ``keep`` (never ``spare``, never one
    whose lock another process holds) and unfinished builds nobody is running. Returns the removed entries."""
    import fcntl

    root = cache_dir()
    entries = [p for p in root.glob(PREFIX + "*") if p.is_dir()] if root.is_dir() else []

    def used(p: Path) -> float:
        marker = p / MARKER
        return marker.stat().st_mtime if marker.is_file() else -1.0  # unfinished: first to go

    removed = []
    for p in sorted(entries, key=used, reverse=True)[keep:]:
        if spare is not None and p.resolve() == spare.resolve():
            continue
        with open(p.with_suffix(".lock"), "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being built or read right now
            try:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    return removed
