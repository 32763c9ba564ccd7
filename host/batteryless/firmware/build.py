"""Build firmware with CMake: :func:`build` wraps the top-level ``CMakeLists.txt`` and reports
text/data/bss per board region against the board's limits; :func:`build_cmsis_library` builds CMSIS-DSP
once per toolchain."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batteryless.boards import Board
from batteryless.errors import BuildError
from batteryless.firmware.image import (
    RegionUsage,
    region_usage,
)
from batteryless.firmware.tools import ROOT, _FileLock, _resolve_board, _run_cmd, _tool, cache_dir
from batteryless.progress import ProgressFn, report
from batteryless.stand_in import image_stand_ins, image_warning


@dataclass
class BuildResult:
    image: Path
    board: str
    backend: str
    app: str
    build_dir: Path
    regions: list[RegionUsage]
    # Reasons of the stand-in marks the linked image carries (batteryless.stand_in): it will not compute on
    # the real part. Empty for an image that does.
    stand_ins: list[str] = field(default_factory=list)

    @property
    def warning(self) -> str | None:
        """One line when the image links a stand-in, else None."""
        return image_warning(str(self.image), self.stand_ins)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": str(self.image),
            "board": self.board,
            "backend": self.backend,
            "app": self.app,
            "build_dir": str(self.build_dir),
            "regions": [r.to_dict() for r in self.regions],
            "stand_ins": list(self.stand_ins),
        }


def build_cmsis_library(board: str | Path | Board, progress: ProgressFn | None = None) -> Path:
    """Build (once, cached per toolchain and source) the CMSIS-DSP static library for ``board``."""
    b = _resolve_board(board)
    toolchain = b.toolchain_file("cmake_toolchain")
    src = ROOT / "third_party" / "cmsisdsp"
    if not (src / "Include" / "arm_math.h").is_file():
        raise BuildError(f"CMSIS-DSP sources missing in {src}: run scripts/setup.sh (fetches them from PyPI)")
    key = hashlib.sha256()
    for p in (
        toolchain,
        ROOT / "firmware" / "cmsis" / "CMakeLists.txt",
        ROOT / "firmware/cmsis/cmsis_compiler.h",
    ):
        key.update(p.read_bytes())
    key.update((src / "PKG-INFO").read_bytes() if (src / "PKG-INFO").exists() else b"")
    out = cache_dir() / f"cmsisdsp-{b.cpu}-{key.hexdigest()[:12]}"
    lib = out / "libcmsisdsp.a"
    with _FileLock(out.with_suffix(".lock")):
        if lib.is_file():
            return lib
        report(progress, "CMSIS-DSP library", 0, 1)
        cmake = _tool("cmake", "install the Debian package cmake (scripts/setup.sh)")
        _run_cmd(
            [
                cmake,
                "-S",
                str(ROOT / "firmware" / "cmsis"),
                "-B",
                str(out),
                f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
            ],
            "configuring CMSIS-DSP",
        )
        _run_cmd([cmake, "--build", str(out), "-j", str(os.cpu_count() or 2)], "building CMSIS-DSP")
        report(progress, "CMSIS-DSP library", 1, 1)
    return lib


def build(
    board: str | Path | Board,
    model_dir: str | Path | None = None,
    backend: str | None = None,
    app: str | None = None,
    out_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
    defines: dict[str, str | int] | None = None,
    extra_sources: list[str | Path] | None = None,
    dsplib_dir: str | Path | None = None,
) -> BuildResult:
    """Configure and build firmware for ``board`` with CMake; return the image and its region usage.

    ``model_dir`` holds generated C (``batteryless codegen``); without it the ``selftest`` app is built.
    ``dsplib_dir``: TI's DSPLib folder (``include/DSPLib.h``, ``source/``) to build the ``lea`` backend of an
    MSP430 board against instead of the project's LEA driver (docs/kernels.md; not shipped, not tested here).
    Raises :class:`BuildError` with the compiler's error lines, or naming the region that overflows."""
    b = _resolve_board(board)
    backend = backend or b.default_backend
    if backend not in b.backends:
        raise BuildError(
            f"board {b.name} has no backend {backend!r} (board.toml backends: {', '.join(b.backends)})"
        )
    if dsplib_dir is not None:
        dsplib_dir = _check_dsplib_dir(Path(dsplib_dir), b, backend)
    app = app or ("model" if model_dir else "selftest")
    out = Path(out_dir) if out_dir else ROOT / "build" / f"{b.name}-{backend}-{app}"
    cmake = _tool("cmake", "install the Debian package cmake (scripts/setup.sh)")
    args = [
        cmake,
        "-S",
        str(ROOT),
        "-B",
        str(out),
        f"-DBOARD={b.path}",
        f"-DBACKEND={backend}",
        f"-DAPP={app}",
    ]
    if model_dir:
        md = Path(model_dir)
        if not md.is_dir():
            raise BuildError(f"model folder {md} does not exist (run `batteryless codegen` first)")
        args.append(f"-DMODEL_DIR={md.resolve()}")
    if backend == "cmsis":
        args.append(f"-DBL_CMSIS_LIB={build_cmsis_library(b, progress)}")
    args.append(f"-DDSPLIB_DIR={dsplib_dir or ''}")  # empty: our LEA driver (also clears a cached value)
    if defines:
        args.append("-DEXTRA_DEFINES=" + ";".join(f"{k}={v}" for k, v in sorted(defines.items())))
    if extra_sources:
        args.append("-DEXTRA_SOURCES=" + ";".join(str(Path(s).resolve()) for s in extra_sources))
    cache = out / "CMakeCache.txt"
    if cache.is_file():
        m = re.search(r"^BOARD:\w+=(.*)$", cache.read_text(errors="replace"), re.M)
        if m and m.group(1).strip() != str(b.path):
            args.append("--fresh")  # another board (toolchain) was configured in this folder before
    report(progress, f"build {b.name}/{backend}/{app}", 0, 2)
    _run_cmd(args, f"configuring firmware for {b.name}")
    report(progress, f"build {b.name}/{backend}/{app}", 1, 2)
    try:
        jobs = str(os.cpu_count() or 2)
        _run_cmd([cmake, "--build", str(out), "-j", jobs], f"building firmware for {b.name}")
    except BuildError as err:
        raise BuildError(str(err) + _overflow_hint(str(err), model_dir)) from None
    report(progress, f"build {b.name}/{backend}/{app}", 2, 2)
    image = out / "firmware.elf"
    regions = region_usage(image, b)
    over = [r for r in regions if r.overflow]
    if over:
        r = over[0]
        raise BuildError(
            f"{image}: region {r.name!r} of board {b.name} needs {r.used} bytes but {r.usable} are usable "
            f"(overflow {r.overflow} bytes; sections {', '.join(r.sections)})"
        )
    result = BuildResult(image, b.name, backend, app, out, regions, image_stand_ins(image))
    tmp = out / "build.json.tmp"
    tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    os.replace(tmp, out / "build.json")
    return result


def _check_dsplib_dir(d: Path, b, backend: str) -> Path:
    """TI's DSPLib folder for the lea backend on an MSP430 board, or a one-line BuildError."""
    if backend != "lea" or b.toolchain.get("platform") != "msp430":
        raise BuildError(
            f"--dsplib-dir is for the lea backend on an MSP430 board, not backend {backend!r} on {b.name}"
        )
    if not (d / "include" / "DSPLib.h").is_file() or not (d / "source").is_dir():
        raise BuildError(
            f"--dsplib-dir {d}: not TI's DSPLib (expected include/DSPLib.h and a source/ folder, as in "
            "MSP430Ware's DSPLib)"
        )
    return d.resolve()


def _overflow_hint(message: str, model_dir: str | Path | None) -> str:
    """What to do when the linker finds the image larger than a board region that codegen's memory plan said
    it fits (codegen/code_size.py estimates the code region from fitted data; a model unlike the fitted ones
    can exceed it): the plan's figure and the ways to a smaller image. Empty for other build errors."""
    if "will not fit in region" not in message or model_dir is None:
        return ""
    try:
        sched = json.loads((Path(model_dir) / "schedule.json").read_text())
        plan = sched["memory_plan"]["regions"]["code"]
        said = (
            f"codegen's memory plan estimated {plan['used']:,} of {plan['size']:,} bytes for the code region"
        )
    except (OSError, ValueError, KeyError, TypeError):
        said = "codegen's memory plan said the image fits"
    return (
        f"\n{said}, but the linked image is larger (the estimate is fitted on other models; "
        "docs/status.md). Generate a smaller image: `batteryless codegen ... --path direct` (no FFT "
        "kernels), or without fine tasks (`--granularity coarse`), or with fewer modes."
    )
