"""Build firmware with CMake and run it: host-native, QEMU (mps2-an386, semihosting) or mspdebug's simulator.

:func:`build` wraps the top-level ``CMakeLists.txt`` and reports text/data/bss per board region against the
board's limits; :func:`run` executes an image with an input vector patched into its ``bl_input`` buffer and
returns the firmware's text output, exit code, and the instruction (QEMU plugin) or MCLK-cycle (mspdebug
tracer) count. Everything board-specific comes from ``board.toml`` (emulator table, memory map).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batteryless.boards import Board, load_board
from batteryless.errors import BuildError, EmulationError, UsageError
from batteryless.firmware.image import (
    RegionUsage,
    input_capacity,
    patch_input,
    region_usage,
    symbol,
    symbols,
)
from batteryless.progress import ProgressFn, report
from batteryless.stand_in import image_stand_ins, image_warning

ROOT = Path(__file__).resolve().parents[3]
PLUGIN_DIR = ROOT / "tools" / "qemu-plugin"
PLUGIN_SOURCES = ("bl_insn.c", "bl_qemu_plugin_api.h")
QEMU_RESET_SYMBOL = "qemu_system_reset_request"

__all__ = [
    "BuildResult",
    "QEMU_STOP_EXIT",
    "RunResult",
    "build",
    "build_cmsis_library",
    "cache_dir",
    "check_qemu_reset_symbol",
    "input_capacity",
    "parse_output",
    "patch_input",
    "qemu_plugin",
    "region_usage",
    "run",
    "run_dataset",
    "run_samples",
    "DatasetRun",
]


def cache_dir() -> Path:
    """Where built helpers (QEMU plugin, CMSIS-DSP library) are cached: ``$BATTERYLESS_CACHE`` or
    ``build/cache`` in the repository."""
    env = os.environ.get("BATTERYLESS_CACHE")
    return Path(env) if env else ROOT / "build" / "cache"


class _FileLock:
    """An exclusive lock file (fcntl), so parallel test workers build a cached helper only once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> _FileLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "w")  # noqa: SIM115 - closed in __exit__
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _resolve_board(board: str | Path | Board) -> Board:
    return board if isinstance(board, Board) else load_board(board)


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if not path:
        raise BuildError(f"{name} not found on PATH: {hint}")
    return path


def _run_cmd(cmd: list[str], what: str, cwd: Path | None = None, timeout: float = 900) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise BuildError(f"{what}: {cmd[0]} not found (run scripts/setup.sh)") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{what}: timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        errors = [ln for ln in out if "error" in ln.lower() or "fatal" in ln.lower()] or out
        errors = list(dict.fromkeys(ln for ln in errors if not ln.startswith(("gmake", "make"))))
        detail = "\n".join(errors[-12:])
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{detail}")
    return proc.stdout + proc.stderr


# --- build ----------------------------------------------------------------------------------------------


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
) -> BuildResult:
    """Configure and build firmware for ``board`` with CMake; return the image and its region usage.

    ``model_dir`` holds generated C (``batteryless codegen``); without it the ``selftest`` app is built.
    Raises :class:`BuildError` with the compiler's error lines, or naming the region that overflows."""
    b = _resolve_board(board)
    backend = backend or b.default_backend
    if backend not in b.backends:
        raise BuildError(
            f"board {b.name} has no backend {backend!r} (board.toml backends: {', '.join(b.backends)})"
        )
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
    _run_cmd([cmake, "--build", str(out), "-j", str(os.cpu_count() or 2)], f"building firmware for {b.name}")
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


# --- run ------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    output: str
    exit_code: int
    unit: str | None  # "instructions" | "mclk_cycles" | None (host)
    count: int | None
    instructions: int | None = None
    mclk_cycles: int | None = None
    marks: list[tuple[int | None, int]] = field(default_factory=list)  # (mark id or None, count at mark)
    resets: int = 0
    cut_counts: list[int] = field(default_factory=list)  # QEMU: the count when each power cut took effect
    stopped: bool = False  # ended by ``stop_at`` (exit_code is then QEMU_STOP_EXIT)
    mark_hits: dict[int | None, int] = field(default_factory=dict)  # hits per mark id (all ids)
    translations: int | None = None  # QEMU: translation blocks translated (a profiling figure)
    trace: list[int] = field(default_factory=list)  # QEMU ``trace``: count before each traced instruction

    @property
    def values(self) -> dict[str, list[int]]:
        return parse_output(self.output)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "exit_code": self.exit_code,
            "unit": self.unit,
            "count": self.count,
            "instructions": self.instructions,
            "mclk_cycles": self.mclk_cycles,
            "marks": [list(m) for m in self.marks],
            "resets": self.resets,
            "cut_counts": self.cut_counts,
            "stopped": self.stopped,
            "mark_hits": {str(k): v for k, v in self.mark_hits.items()},
            "translations": self.translations,
        }


_INT_RE = re.compile(r"^-?\d+$")


def parse_output(text: str) -> dict[str, list[int]]:
    """Lines "key v0 v1 ..." with integer values → {key: [v0, v1, ...]} (other lines are skipped)."""
    out: dict[str, list[int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and all(_INT_RE.match(p) for p in parts[1:]):
            out[parts[0]] = [int(p) for p in parts[1:]]
    return out


def run(
    image: str | Path,
    board: str | Path | Board,
    inputs: bytes | None = None,
    timeout: float = 120.0,
    cuts: list[int] | None = None,
    progress: ProgressFn | None = None,
    *,
    stop_at: int | None = None,
    mark_ids: Iterable[int | None] | None = None,
    reload_image: bool = False,
    exact: bool = False,
    trace: tuple[int, int] | None = None,
    call_cuts: list[tuple[int, int]] | None = None,
    cuts_end_mark: int | None = None,
) -> RunResult:
    """Run ``image`` the way ``board``'s [emulator] table says, with ``inputs`` in its bl_input buffer.

    ``cuts`` (ascending instruction counts) cut power at those points: a QEMU system reset through the
    plugin, or an mspdebug ``reset`` after stepping that many instructions; NVM survives, RAM is
    re-initialised by startup. On the host, which has no instruction counter, each cut ``k`` ends one boot
    at its k-th ``bl_mark()`` call, with NVM (the ``bl_nvm`` section) kept in a file between boots.

    QEMU: the count is exact; a cut at N takes effect at the end of the translation block in which the
    count reaches N (at most one block late, the same place on every run); ``cut_counts`` holds the count
    at which each cut took effect. Any number of cuts may be given (they go to the plugin in a file).
    ``stop_at`` (QEMU only) ends the run cleanly at the first block boundary where the count is >= N —
    the end of a trace whose last power-on period has no end: the output so far is returned with
    ``stopped=True`` and ``exit_code == QEMU_STOP_EXIT`` (87), not an error.
    ``mark_ids``: record the individual hits (``marks``) only of these mark ids (``None`` for the single
    ``bl_mark`` address; an empty collection records none) — a long run has many marks; ``mark_hits``
    always counts the hits of every id. Default: every hit is recorded.
    ``reload_image`` (QEMU): let every power cut rewrite the loaded ELF sections (QEMU's own reset; it
    throws away all translated code, ~10x slower per cut). By default only the first boot loads them: the
    image is flash and keeps its contents, RAM is re-initialised by startup, NVM survives either way.
    ``exact`` (QEMU): one instruction per translation block (``-singlestep``, several times slower), so
    every cut at N lands exactly after N instructions. ``trace=(lo, hi)`` (QEMU): ``trace`` lists the
    count before each executed instruction whose address is in [lo, hi) (e.g. one function's code).
    ``call_cuts`` (QEMU, with ``trace`` = one function starting at lo; ``cuts`` may be given too): pairs
    (s, k), cut i after the k-th instruction of the s-th call of that function since the previous such cut
    (use with ``exact``): one run sweeps many offsets of a function that is called again and again.
    ``cuts_end_mark`` (QEMU): when ``bl_mark`` of this id first runs, the remaining cuts are dropped.

    Raises :class:`EmulationError` if the emulator is missing or the firmware does not finish in
    ``timeout`` seconds or ``cuts`` are not positive and strictly ascending, :class:`UsageError` for a
    bad ``stop_at``."""
    b = _resolve_board(board)
    img = Path(image)
    if not img.is_file():
        raise EmulationError(f"{img}: firmware image not found (run `batteryless build` first)")
    kind = b.emulator.get("kind")
    if stop_at is not None:
        if isinstance(stop_at, bool) or not isinstance(stop_at, int) or stop_at < 1:
            raise UsageError(f"stop_at must be a positive instruction count, got {stop_at!r}")
        if kind != "qemu":
            raise UsageError(f"stop_at needs an instruction-counting emulator (QEMU); {b.name} is {kind!r}")
    ids = None if mark_ids is None else frozenset(mark_ids)
    report(progress, f"run {img.name} on {b.name}", 0, 1)
    with tempfile.TemporaryDirectory(prefix="bl-run-") as tmp:
        target = Path(tmp) / "firmware.elf"
        if inputs is not None:
            patch_input(img, bytes(inputs), target)
        else:
            shutil.copyfile(img, target)
            target.chmod(0o755)
        if kind == "host":
            res = _run_host(target, timeout, cuts or [], Path(tmp) / "nvm.bin")
        elif kind == "qemu":
            # symbols from the caller's image (the same addresses; its parse is cached across runs)
            res = _run_qemu(
                target, b, timeout, cuts or [], Path(tmp), stop_at, ids, img, reload_image, exact, trace,
                call_cuts, cuts_end_mark,
            )  # fmt: skip
        elif kind == "mspdebug":
            res = _run_mspdebug(target, b, timeout, cuts or [])
        elif kind == "msp430sim":
            from batteryless.firmware import msp430sim

            res = msp430sim.run_image(target, b, timeout, cuts or [])
        else:
            raise EmulationError(f"{b.path}: [emulator].kind {kind!r} cannot run firmware")
    if kind != "qemu":
        res.mark_hits = dict(collections.Counter(m[0] for m in res.marks))
        if ids is not None:
            res.marks = [m for m in res.marks if m[0] in ids]
    report(progress, f"run {img.name} on {b.name}", 1, 1)
    return res


HOST_POWER_CUT_EXIT = 86  # BL_HOST_POWER_CUT_EXIT in firmware/platform/bl_platform.h


def _run_host(exe: Path, timeout: float, cuts: list[int], nvm_file: Path) -> RunResult:
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


# --- QEMU -----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _dynamic_symbols(binary: Path) -> frozenset[str]:
    """Names the executable defines in .dynsym (read raw: iterating QEMU's ~19,000 symbols through
    pyelftools took seconds, once per process)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open(binary, "rb") as fh:
        elf = ELFFile(fh)
        sec = elf.get_section_by_name(".dynsym")
        if not isinstance(sec, SymbolTableSection):
            return frozenset()
        if elf.elfclass != 64 or not elf.little_endian:
            return frozenset(s.name for s in sec.iter_symbols() if s.name and s["st_shndx"] != "SHN_UNDEF")
        data, strs = sec.data(), elf.get_section(sec["sh_link"]).data()
    names = set()
    # Elf64_Sym: st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64, st_size u64
    for st_name, _info, _other, shndx, _value, _size in struct.iter_unpack("<IBBHQQ", data):
        if st_name and shndx != 0:  # 0 = SHN_UNDEF
            names.add(strs[st_name : strs.index(b"\0", st_name)].decode("utf-8", "replace"))
    return frozenset(names)


def check_qemu_reset_symbol(qemu: str | Path = "qemu-system-arm") -> Path:
    """Check that the QEMU binary exports ``qemu_system_reset_request`` (used by the plugin for power cuts).

    It is a QEMU-internal function that Debian's 7.2 build happens to export; raise a clear
    :class:`EmulationError` if this binary does not."""
    path = Path(shutil.which(str(qemu)) or qemu)
    if not path.is_file():
        raise EmulationError(
            f"{qemu} not found: install the Debian package qemu-system-arm (scripts/setup.sh)"
        )
    if QEMU_RESET_SYMBOL not in _dynamic_symbols(path.resolve()):
        raise EmulationError(
            f"{path} does not export {QEMU_RESET_SYMBOL}: power-cut injection needs Debian's QEMU 7.2 "
            "build (qemu-system-arm 1:7.2+dfsg); instruction counting still works"
        )
    return path


def qemu_plugin(progress: ProgressFn | None = None) -> Path:
    """Build (cached by source hash) and return the path of the instruction-count plugin."""
    key = hashlib.sha256(b"".join((PLUGIN_DIR / n).read_bytes() for n in PLUGIN_SOURCES)).hexdigest()[:12]
    out = cache_dir() / f"qemu-plugin-{key}" / "libbl_insn.so"
    with _FileLock(out.parent.with_suffix(".lock")):
        if out.is_file():
            return out
        report(progress, "QEMU plugin", 0, 1)
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            raise BuildError("no host C compiler (cc/gcc/clang) to build the QEMU plugin")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".so.tmp")
        _run_cmd(
            [cc, "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-fvisibility=hidden", "-shared",
             "-o", str(tmp), str(PLUGIN_DIR / "bl_insn.c")],
            "building the QEMU plugin",
        )  # fmt: skip
        os.replace(tmp, out)
        report(progress, "QEMU plugin", 1, 1)
    return out


QEMU_STOP_EXIT = 87  # BL_STOP_EXIT in tools/qemu-plugin/bl_insn.c: the run was ended by stop_at


def _mark_args(elf: Path) -> list[str]:
    """The plugin's mark arguments for ``elf`` (cached per file version: parsing the symbols of an image
    costs more than a short QEMU run)."""
    st = elf.stat()
    return list(_mark_args_cached(str(elf.resolve()), st.st_mtime_ns, st.st_size, st.st_ino))


@functools.lru_cache(maxsize=64)
def _mark_args_cached(path: str, mtime_ns: int, size: int, ino: int) -> tuple[str, ...]:
    syms = symbols(path)
    if "bl_mark_table" in syms:
        table = syms["bl_mark_table"]
        return (f"marktable=0x{table.address & ~1:x}:{max(1, table.size // 2)}:2",)
    if "bl_mark" in syms:
        return (f"mark=0x{syms['bl_mark'].address & ~1:x}",)
    return ()


def _check_cuts(cuts: list[int]) -> None:
    bad = next(
        (
            i
            for i, c in enumerate(cuts)
            if isinstance(c, bool) or not isinstance(c, int) or c <= 0 or (i and c <= cuts[i - 1])
        ),
        None,
    )
    if bad is not None:
        raise EmulationError(
            f"power cuts must be positive, strictly ascending instruction counts: cut {bad} is "
            f"{cuts[bad]!r}" + (f" after {cuts[bad - 1]!r}" if bad else "")
        )


def _run_qemu(
    elf: Path,
    b: Board,
    timeout: float,
    cuts: list[int],
    tmp: Path,
    stop_at: int | None = None,
    mark_ids: frozenset[int | None] | None = None,
    symbols_from: Path | None = None,
    reload_image: bool = False,
    exact: bool = False,
    trace: tuple[int, int] | None = None,
    call_cuts: list[tuple[int, int]] | None = None,
    cuts_end_mark: int | None = None,
) -> RunResult:
    qemu = str(b.emulator.get("binary", "qemu-system-arm"))
    qpath = shutil.which(qemu)
    if not qpath:
        raise EmulationError(
            f"{qemu} not found: install the Debian package qemu-system-arm (scripts/setup.sh)"
        )
    if cuts:
        _check_cuts(cuts)
        check_qemu_reset_symbol(qpath)
    plugin_args = [f"out={tmp / 'plugin.txt'}", *_mark_args(symbols_from or elf)]
    if mark_ids is not None:
        wanted = sorted(-1 if i is None else int(i) for i in mark_ids)
        plugin_args.append("markids=" + (":".join(map(str, wanted)) or "none"))
    if cuts:
        cutsfile = tmp / "cuts.txt"
        cutsfile.write_text("".join(f"{c}\n" for c in cuts))
        # romreload=off: a power cut does not rewrite the loaded image (flash keeps its contents), so QEMU
        # keeps its translated code across resets instead of retranslating every boot
        plugin_args += [f"cutsfile={cutsfile}", f"romreload={'on' if reload_image else 'off'}"]
    if stop_at is not None:
        plugin_args.append(f"stop={stop_at}")
    if trace is not None:
        plugin_args.append(f"trace=0x{trace[0]:x}:0x{trace[1]:x}")
    if cuts_end_mark is not None:
        plugin_args.append(f"cutsend={int(cuts_end_mark)}")
    if call_cuts:
        if trace is None or any(int(a) < 1 or int(k) < 1 for a, k in call_cuts):
            raise UsageError("call_cuts needs trace=(lo, hi) and pairs (calls, insn) >= 1")
        check_qemu_reset_symbol(qpath)
        plugin_args += ["callcuts=" + ":".join(f"{int(a)}/{int(k)}" for a, k in call_cuts), "romreload=off"]
    cmd = [
        qpath, "-M", str(b.emulator["machine"]), "-display", "none", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
        "-plugin", ",".join([str(qemu_plugin()), *plugin_args]),
    ] + (["-singlestep"] if exact else [])  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise EmulationError(
            f"{elf}: QEMU {b.emulator['machine']} run did not finish within {timeout:.0f} s "
            "(the firmware never called bl_exit?)"
        ) from exc
    rep = tmp / "plugin.txt"
    if not rep.is_file():
        raise EmulationError(
            f"QEMU ended (exit {proc.returncode}) without a plugin report: {proc.stderr.strip()}"
        )
    res = RunResult(proc.stdout, proc.returncode, "instructions", 0, 0, None)
    for line in rep.read_text().splitlines():
        parts = line.split()
        key = parts[0]
        if key == "mark":
            res.marks.append((int(parts[3]) if int(parts[3]) >= 0 else None, int(parts[2])))
        elif key == "cut":
            res.cut_counts.append(int(parts[2]))
        elif key == "marks":
            res.mark_hits[int(parts[1]) if int(parts[1]) >= 0 else None] = int(parts[2])
        elif key == "insns":
            res.count = res.instructions = int(parts[1])
        elif key == "resets":
            res.resets = int(parts[1])
        elif key == "stopped":
            res.stopped = True
        elif key == "translations":
            res.translations = int(parts[1])
        elif key == "trace":
            res.trace.append(int(parts[1]))
        elif key == "error":
            raise EmulationError(f"QEMU plugin: {line}")
    if res.stopped and proc.returncode != QEMU_STOP_EXIT:
        raise EmulationError(f"QEMU stopped at stop_at={stop_at} but exited {proc.returncode}")
    return res


# --- mspdebug -------------------------------------------------------------------------------------------

_MD_RE = re.compile(r"^\s*([0-9a-fA-F]+):((?:\s[0-9a-fA-F]{2})+)")


def _md_bytes(text: str, address: int, length: int) -> bytes:
    mem: dict[int, int] = {}
    for line in text.splitlines():
        m = _MD_RE.match(line)
        if not m:
            continue
        base = int(m.group(1), 16)
        for i, h in enumerate(m.group(2).split()):
            mem[base + i] = int(h, 16)
    try:
        return bytes(mem[address + i] for i in range(length))
    except KeyError as exc:
        raise EmulationError(f"mspdebug did not dump 0x{address:X}+{length}") from exc


def _run_mspdebug(elf: Path, b: Board, timeout: float, cuts: list[int]) -> RunResult:
    mspdebug = shutil.which(str(b.emulator.get("binary", "mspdebug")))
    if not mspdebug:
        raise EmulationError("mspdebug not found: install the Debian package mspdebug (scripts/setup.sh)")
    syms = symbols(elf)
    for need in ("bl_done", "bl_out_buf", "bl_out_len", "bl_exit_code"):
        if need not in syms:
            raise EmulationError(f"{elf}: symbol {need} missing; not an MSP430 batteryless image")
    out_buf = syms["bl_out_buf"]
    driver = str(b.emulator.get("driver", "sim"))
    # The tracer in verbose mode prints every IO write with its MCLK timestamp as it happens (its
    # "simio info" history keeps only the last 16), which is how marks are timed.
    cmds = ["simio add tracer bl_trace", "simio config bl_trace verbose"]
    if "mpy16_base" in b.emulator:
        # The simulator's classic 16x16 multiplier (at its fixed address; the firmware probes for it).
        cmds.append("simio add hwmult bl_mpy")
    cmds.append(f"prog {elf}")
    done_steps = 0
    for c in cuts:
        if c <= done_steps:
            raise EmulationError(
                f"power cuts must be positive, strictly ascending instruction counts: {cuts}"
            )
        cmds += [f"step {c - done_steps}", "reset"]
        done_steps = c
    cmds += [
        "setbreak bl_done",
        "run",
        "simio info bl_trace",
        f"md 0x{syms['bl_exit_code'].address:x} 2",
        f"md 0x{syms['bl_out_len'].address:x} 2",
        f"md 0x{out_buf.address:x} {out_buf.size}",
    ]
    try:
        proc = subprocess.run(
            [mspdebug, "-n", driver, *cmds], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise EmulationError(
            f"{elf}: mspdebug {driver} run did not reach bl_done within {timeout:.0f} s (firmware hung?)"
        ) from exc
    text = proc.stdout + proc.stderr
    if proc.returncode != 0 or "Instruction count:" not in text:
        raise EmulationError(f"mspdebug {driver} failed (exit {proc.returncode}): {text.strip()[-800:]}")
    insns = int(re.search(r"Instruction count:\s*(\d+)", text).group(1))  # type: ignore[union-attr]
    mclk = int(re.search(r"MCLK:\s*(\d+)", text).group(1))  # type: ignore[union-attr]
    code = int.from_bytes(_md_bytes(text, syms["bl_exit_code"].address, 2), "little", signed=True)
    n = int.from_bytes(_md_bytes(text, syms["bl_out_len"].address, 2), "little")
    output = _md_bytes(text, out_buf.address, min(n, out_buf.size)).decode("ascii", errors="replace")
    marks = []
    mark_reg = b.emulator.get("mark_register")
    live = text[: text.index("Instruction count:")]  # the verbose stream, not the history dump after it
    for m in re.finditer(r"^\s*(\d+): write\.w => 0x([0-9a-f]+) 0x([0-9a-f]+)", live, re.M):
        if int(m.group(2), 16) == mark_reg:
            marks.append((int(m.group(3), 16), int(m.group(1))))
    return RunResult(output, code, "mclk_cycles", mclk, insns, mclk, marks, len(cuts), list(cuts))


def image_symbol(image: str | Path, name: str) -> int:
    """Address of ``name`` in ``image`` (convenience for tests and tools)."""
    return symbol(image, name).address


# --- model firmware over a dataset ----------------------------------------------------------------------

LOGITS_KEY = "logits"


@dataclass
class DatasetRun:
    """Per-sample results of a model image: logits (from the firmware's "logits ..." line), predictions and
    the instruction / cycle count of each run."""

    board: str
    unit: str | None
    logits: list[list[int]]
    predictions: list[int]
    labels: list[int]
    counts: list[int | None]

    @property
    def accuracy(self) -> float:
        if not self.labels:
            return float("nan")
        return sum(int(p == y) for p, y in zip(self.predictions, self.labels, strict=True)) / len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "unit": self.unit,
            "accuracy": self.accuracy,
            "predictions": self.predictions,
            "labels": self.labels,
            "logits": self.logits,
            "counts": self.counts,
        }


def run_samples(
    image: str | Path,
    board: str | Path | Board,
    samples: list[bytes],
    labels: list[int] | None = None,
    timeout: float = 120.0,
    progress: ProgressFn | None = None,
) -> DatasetRun:
    """Run a model image once per input sample (raw bytes, e.g. int16 little-endian) and collect the
    ``logits`` line each run prints; the prediction is the index of the largest logit."""
    b = _resolve_board(board)
    logits: list[list[int]] = []
    preds: list[int] = []
    counts: list[int | None] = []
    unit: str | None = None
    for i, data in enumerate(samples):
        res = run(image, b, inputs=data, timeout=timeout)
        vals = res.values.get(LOGITS_KEY)
        if res.exit_code != 0 or vals is None:
            raise EmulationError(
                f"{image}: sample {i}: firmware exited with {res.exit_code} and printed no '{LOGITS_KEY}' "
                f"line; output: {res.output.strip()[-300:]!r}"
            )
        logits.append(vals)
        preds.append(max(range(len(vals)), key=vals.__getitem__))
        counts.append(res.count)
        unit = res.unit
        report(progress, f"run {Path(image).name} on {b.name}", i + 1, len(samples))
    return DatasetRun(b.name, unit, logits, preds, list(labels or []), counts)


def run_dataset(
    image: str | Path,
    board: str | Path | Board,
    artifact_path: str | Path,
    dataset: str,
    count: int = 10,
    start: int = 0,
    dataset_path: str | Path | None = None,
    timeout: float = 120.0,
    progress: ProgressFn | None = None,
) -> DatasetRun:
    """Quantise ``count`` test samples of ``dataset`` the way the artifact says (``spec.quantize_input``)
    and run the model image on each."""
    import numpy as np

    from batteryless.artifact import load_artifact
    from batteryless.datasets import load_dataset
    from batteryless.spec import quantize_input

    art = load_artifact(artifact_path)
    ds = load_dataset(dataset, dataset_path)
    x = ds.x_test[start : start + count]
    y = ds.y_test[start : start + count]
    if len(x) == 0:
        raise EmulationError(f"dataset {dataset} has no test samples in [{start}, {start + count})")
    xq = np.asarray(quantize_input(art, x), dtype="<i2")
    samples = [xq[i].tobytes() for i in range(len(xq))]
    return run_samples(image, board, samples, [int(v) for v in y], timeout, progress)
