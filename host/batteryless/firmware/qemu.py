"""Runner: QEMU (Cortex-M boards) with the project's TCG plugin — exact instruction counts, marks, power cuts
through ``qemu_system_reset_request``."""

from __future__ import annotations

import functools
import shutil
import struct
import subprocess
from pathlib import Path

from batteryless.boards import Board
from batteryless.errors import EmulationError, UsageError
from batteryless.firmware.image import (
    symbols,
)
from batteryless.firmware.runner import RunResult, _check_cuts
from batteryless.firmware.tools import ROOT, host_shared_library
from batteryless.progress import ProgressFn, report

PLUGIN_DIR = ROOT / "tools" / "qemu-plugin"
PLUGIN_SOURCES = ("bl_insn.c", "bl_qemu_plugin_api.h")
QEMU_RESET_SYMBOL = "qemu_system_reset_request"


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
    report(progress, "QEMU plugin", 0, 1)
    path, _ = host_shared_library(
        "qemu-plugin", PLUGIN_DIR / "bl_insn.c", [PLUGIN_DIR / n for n in PLUGIN_SOURCES], "the QEMU plugin"
    )
    report(progress, "QEMU plugin", 1, 1)
    return path


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


def run_image(
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
    writes: list[tuple[int, str, int, int, int]] | None = None,
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
    if writes:
        wfile = tmp / "writes.txt"
        wfile.write_text("".join(f"{c} {a:x} {n} {v}\n" for c, _, a, n, v in writes))
        plugin_args.append(f"writesfile={wfile}")
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
