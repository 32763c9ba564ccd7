"""Boards from CMSIS-Packs: ``import_pack`` reads one device of a Device Family Pack (``.pack`` zip or bare
``.pdsc``) and writes a board folder in this project's format (board.toml, linker.ld, toolchain.cmake);
``check_board`` lists the facts of a board that are ASSUMED rather than sourced.

What the pack says is read through cmsis-pack-manager (PyPI ``cmsis-pack-manager``, offline: its cache
folders are created first, REFERENCE.md §2, and ``Cache.add_pack_from_path`` parses the local .pdsc):
memories (name, start, size, access, startup/default), the core, FPU and MPU. cmsis-pack-manager 0.6 does
not report the processor's ``Ddsp``, ``Dmve`` and ``Dclock`` attributes, so those three are read from the
same ``<processor>`` element of the PDSC (PACK.xsd: ``Ddsp`` DSP | NO_DSP, ``Dmve`` MVE | FP_MVE | NO_MVE,
``Dclock`` Hz), inheriting from family / sub-family / device as the schema does. Every fact written to
board.toml carries its source in ``[provenance]``; what a pack cannot say (power model, energy buffer,
emulator, a non-volatile region for FLEX checkpoints, cycle costs) is written as ``ASSUMED: ...`` and
``check_board`` (``batteryless board check``) flags it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from batteryless.errors import BoardError

# cmsis-pack-manager's core names -> our board.toml cpu (the cores the firmware build knows)
CORES = {"CortexM4": "cortex-m4", "CortexM55": "cortex-m55"}
# fraction of the default RAM carved out as the ASSUMED "nvm" region (the pack knows no FRAM)
NVM_FRACTION = 4


@dataclass
class PackDevice:
    """One device's facts, each with where it came from."""

    name: str
    pack: str  # "Vendor.Pack.version"
    cpu: str
    fpu: str  # "none" | "sp" | "dp"
    dsp: bool
    mve: str  # "none" | "int" | "fp"
    clock_hz: int | None
    # name, start, size, read/write/execute, startup, default
    memories: list[dict] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportResult:
    board_dir: Path
    files: list[Path]
    assumed: list[str]  # fact -> ASSUMED source lines, what `board check` flags


def _pdsc_text(pack: Path, tmp: Path) -> Path:
    """The .pdsc to parse: the file itself, or the one .pdsc at the top of a .pack (zip)."""
    if not pack.exists():
        raise BoardError(f"{pack}: pack file not found")
    if pack.is_dir():
        raise BoardError(f"{pack}: is a folder; pass a .pack or .pdsc file")
    suffix = pack.suffix.lower()
    if suffix == ".pdsc":
        return pack
    if suffix != ".pack":
        raise BoardError(f"{pack}: not a CMSIS-Pack (expected a .pack zip or a .pdsc file)")
    try:
        with zipfile.ZipFile(pack) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".pdsc") and "/" not in n.strip("/")]
            if len(names) != 1:
                found = ", ".join(names) or "none"
                raise BoardError(f"{pack}: a pack holds exactly one .pdsc at its top level; found {found}")
            out = tmp / Path(names[0]).name
            out.write_bytes(z.read(names[0]))
            return out
    except zipfile.BadZipFile as exc:
        raise BoardError(f"{pack}: not a valid .pack (zip) file: {exc}") from exc


def _xml_processor_attrs(pdsc: Path, device: str) -> dict[str, str]:
    """Ddsp / Dmve / Dclock / Dcore for ``device``: the <processor> attributes of the device and the
    family / sub-family around it (inner elements override outer ones, as PACK.xsd's inheritance)."""
    try:
        root = ET.parse(pdsc).getroot()
    except ET.ParseError as exc:
        raise BoardError(f"{pdsc}: not valid XML: {exc}") from exc
    ns = re.match(r"\{.*\}", root.tag)
    p = ns.group(0) if ns else ""
    for fam in root.iter(f"{p}family"):
        chains = [[fam, d] for d in fam.findall(f"{p}device")]
        for sub in fam.findall(f"{p}subFamily"):
            chains += [[fam, sub, d] for d in sub.findall(f"{p}device")]
        for chain in chains:
            if chain[-1].get("Dname") != device:
                continue
            attrs: dict[str, str] = {}
            for el in chain:
                for proc in el.findall(f"{p}processor"):
                    attrs.update({k: v for k, v in proc.attrib.items() if k.startswith("D")})
            return attrs
    return {}


def read_device(pack: str | Path, device: str) -> PackDevice:
    """Parse ``pack`` offline with cmsis-pack-manager and return ``device``'s facts (BoardError if the pack is
    malformed, the device is not in it, or its core is one this project does not build for)."""
    try:
        import cmsis_pack_manager as cpm
    except ImportError as exc:  # declared in pyproject.toml; a broken install is reported, not a traceback
        raise BoardError("cmsis-pack-manager is not installed (pip install cmsis-pack-manager)") from exc
    pack = Path(pack)
    with tempfile.TemporaryDirectory(prefix="bl-pack-") as d:
        tmp = Path(d)
        pdsc = _pdsc_text(pack, tmp)
        attrs = _xml_processor_attrs(pdsc, device)  # also validates the XML first: one clear line
        (tmp / "json").mkdir()
        (tmp / "data").mkdir()
        cache = cpm.Cache(True, False, json_path=str(tmp / "json"), data_path=str(tmp / "data"))
        try:
            cache.add_pack_from_path(str(pdsc))
            index = cache.index
        except Exception as exc:  # noqa: BLE001 — the Rust parser's errors carry no stable type
            raise BoardError(f"{pack}: cmsis-pack-manager cannot read it: {exc}") from exc
    if device not in index:
        known = ", ".join(sorted(index)[:20]) or "none"
        raise BoardError(f"{pack}: no device {device!r} in the pack (devices: {known})")
    dev = index[device]
    origin = dev.get("from_pack") or {}
    pack_id = f"{origin.get('vendor', '?')}.{origin.get('pack', '?')}.{origin.get('version', '?')}"
    src = f"{pack.name} ({pack_id}), device {device}"
    procs = dev.get("processors") or []
    if not procs:
        raise BoardError(f"{pack}: device {device!r} has no <processor> (Dcore) in the pack")
    core = procs[0].get("core")
    if core not in CORES:
        raise BoardError(
            f"{pack}: device {device!r} has core {core!r}; boards can be imported for "
            f"{', '.join(CORES)} (the cores the firmware build has flags and kernels for)"
        )
    fpu = {"SinglePrecision": "sp", "DoublePrecision": "dp"}.get(procs[0].get("fpu"), "none")
    mve = {"MVE": "int", "FP_MVE": "fp"}.get(attrs.get("Dmve", "NO_MVE"), "none")
    dsp = attrs.get("Ddsp", "NO_DSP") == "DSP"
    clock = attrs.get("Dclock")
    try:
        clock_hz = int(clock) if clock is not None else None
    except ValueError as exc:
        raise BoardError(f"{pack}: device {device!r}: Dclock={clock!r} is not an integer (Hz)") from exc
    if clock_hz is not None and clock_hz <= 0:
        raise BoardError(f"{pack}: device {device!r}: Dclock={clock_hz} must be > 0")
    mems = []
    for mname, m in sorted((dev.get("memories") or {}).items(), key=lambda kv: kv[1].get("start", 0)):
        acc = m.get("access") or {}
        mems.append(
            {
                "name": mname,
                "start": int(m["start"]),
                "size": int(m["size"]),
                "read": bool(acc.get("read")),
                "write": bool(acc.get("write")),
                "execute": bool(acc.get("execute")),
                "startup": bool(m.get("startup")),
                "default": bool(m.get("default")),
            }
        )
    via = "cmsis-pack-manager"
    return PackDevice(
        name=device,
        pack=pack_id,
        cpu=CORES[core],
        fpu=fpu,
        dsp=dsp,
        mve=mve,
        clock_hz=clock_hz,
        memories=mems,
        sources={
            "cpu": f"{src}: <processor Dcore> = {core} ({via})",
            "fpu": f"{src}: <processor Dfpu> = {procs[0].get('fpu')} ({via})",
            "dsp": f"{src}: <processor Ddsp> = {attrs.get('Ddsp', 'absent (NO_DSP)')} (PDSC XML: {via} "
            "does not report it)",
            "mve": f"{src}: <processor Dmve> = {attrs.get('Dmve', 'absent (NO_MVE)')} (PDSC XML: {via} "
            "does not report it)",
            "clock_hz": f"{src}: <processor Dclock> = {clock} Hz (PDSC XML: {via} does not report it)"
            if clock_hz is not None
            else "ASSUMED: the pack gives no Dclock; 16 MHz written so that time estimates have a clock",
            "memory": f"{src}: <memory> elements ({via})",
        },
    )


def _pick_memories(dev: PackDevice) -> tuple[dict, dict, dict, dict[str, str]]:
    """code (the startup / executable non-writable region), ram (the default writable non-executable one,
    else any writable one) and the ASSUMED nvm carved from ram's top."""
    roms = [m for m in dev.memories if m["execute"] and not m["write"]]
    code = next((m for m in roms if m["startup"]), None) or next(iter(roms), None)
    rams = [m for m in dev.memories if m["write"] and m["read"]]
    ram = next((m for m in rams if m["default"] and not m["execute"]), None) or next(iter(rams), None)
    if code is None:
        raise BoardError(f"device {dev.name}: the pack lists no executable read-only memory (flash) for code")
    if ram is None:
        raise BoardError(f"device {dev.name}: the pack lists no writable memory (RAM)")
    if ram["size"] < 4096:
        raise BoardError(f"device {dev.name}: RAM {ram['name']} is {ram['size']} bytes; at least 4096 needed")
    nvm_len = (ram["size"] // NVM_FRACTION) & ~0xFF
    ram_out = {"name": "ram", "origin": ram["start"], "length": ram["size"] - nvm_len, "volatile": True}
    nvm_origin = ram["start"] + ram["size"] - nvm_len
    nvm_out = {"name": "nvm", "origin": nvm_origin, "length": nvm_len, "volatile": False}
    code_out = {"name": "code", "origin": code["start"], "length": code["size"], "volatile": False}
    src = {
        "memory.code": f"{dev.sources['memory']}: {code['name']} (executable, "
        f"{'startup' if code['startup'] else 'first executable read-only region'})",
        "memory.ram": f"{dev.sources['memory']}: {ram['name']} less its top {nvm_len} bytes (given to nvm)",
        "memory.nvm": f"ASSUMED: the pack describes no non-volatile RAM (FRAM/MRAM/backup SRAM) for FLEX "
        f"checkpoints; the top 1/{NVM_FRACTION} of {ram['name']} is written as 'nvm' so that builds link. "
        "It is volatile on the real part: replace it with the device's non-volatile region",
    }
    return code_out, ram_out, nvm_out, src


def _toolchain_cmake(dev: PackDevice, board: str) -> str:
    mcpu = dev.cpu
    extra = ""
    if dev.cpu == "cortex-m55":
        mods = []
        if dev.mve == "none":
            mods.append("+nomve")
        elif dev.mve == "int":
            mods.append("+nomve.fp")
        if dev.fpu == "none":
            mods.append("+nofp")
        mcpu += "".join(mods)
        extra = " -DARM_MATH_MVEI" if dev.mve != "none" else ""
    elif dev.fpu == "none":
        mcpu += "+nofp"
    fpu = "-mfloat-abi=hard" if dev.fpu != "none" else "-mfloat-abi=soft"
    if dev.cpu == "cortex-m4" and dev.fpu != "none":
        fpu += " -mfpu=fpv4-sp-d16"
    return f"""# CMake toolchain for {board} ({dev.name}, from {dev.pack}), written by `batteryless board import`:
# arm-none-eabi-gcc + newlib (semihosting). Core {dev.cpu}, FPU {dev.fpu}, DSP {dev.dsp}, MVE {dev.mve}
# (sources in board.toml [provenance]).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(BL_ARCH_FLAGS "-mcpu={mcpu} -mthumb {fpu}")
set(CMAKE_C_FLAGS_INIT "${{BL_ARCH_FLAGS}}{extra} -ffunction-sections -fdata-sections")
set(CMAKE_ASM_FLAGS_INIT "${{BL_ARCH_FLAGS}}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${{BL_ARCH_FLAGS}} -nostartfiles -specs=rdimon.specs -Wl,--gc-sections")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
"""  # noqa: E501 - generated text: its lines are the toolchain file's, not wrapped


_LINKER = """/* {board} ({device}), written by `batteryless board import`. MEMORY (CODE, RAM, NVM) is generated from
   board.toml into bl_memory.ld. The .nvm section is NOLOAD and outside .data/.bss: startup leaves it alone. */
INCLUDE bl_memory.ld
ENTRY(bl_reset_handler)

SECTIONS
{{
  .vectors : ALIGN(128) {{ KEEP(*(.vectors)) }} > CODE
  .text : {{ *(.text .text.*) KEEP(*(.init)) KEEP(*(.fini)) }} > CODE
  .rodata : ALIGN(4) {{ *(.rodata .rodata.*) }} > CODE
  .ARM.extab : {{ *(.ARM.extab* .gnu.linkonce.armextab.*) }} > CODE
  .ARM.exidx : {{ __exidx_start = .; *(.ARM.exidx* .gnu.linkonce.armexidx.*) __exidx_end = .; }} > CODE
  .data : ALIGN(4) {{ __bl_data_start = .; *(.data .data.*) . = ALIGN(4); __bl_data_end = .; }} > RAM AT > CODE
  __bl_data_load = LOADADDR(.data);
  .bss (NOLOAD) : ALIGN(4) {{ __bl_bss_start = .; *(.bss .bss.* COMMON) . = ALIGN(4); __bl_bss_end = .; }} > RAM
  . = ALIGN(8);
  end = .;
  _end = .;
  .nvm (NOLOAD) : ALIGN(8) {{ __bl_nvm_start = .; *(.nvm .nvm.*) __bl_nvm_end = .; }} > NVM
  __bl_stack_top = ORIGIN(RAM) + LENGTH(RAM);
}}
"""  # noqa: E501 - generated text: its lines are the linker script's, not wrapped


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _board_toml(dev: PackDevice, board: str) -> tuple[str, list[str]]:
    code, ram, nvm, msrc = _pick_memories(dev)
    prov = {
        "cpu": dev.sources["cpu"],
        "fpu": dev.sources["fpu"],
        "dsp": dev.sources["dsp"],
        "mve": dev.sources["mve"],
        "clock_hz": dev.sources["clock_hz"],
        **msrc,
        "backends": "ASSUMED: cmsis (CMSIS-DSP builds for every Cortex-M with the project's compiler layer) "
        "and ref (portable C); not run on this device",
        "emulator": "ASSUMED: a pack names no emulator; kind 'none' (build and size only, `run` refuses)",
    }
    clock = dev.clock_hz or 16_000_000
    assumed_power = "ASSUMED: the pack has no power data; same as mps2-an386 so that energies compare"
    lines = [
        f"# {dev.name} from {dev.pack}, written by `batteryless board import`. "
        "Facts from the pack carry their",
        "# source in [provenance]; everything marked ASSUMED is not from the pack "
        "(`batteryless board check`).",
        f"name = {_q(board)}",
        f"description = {_q(f'{dev.name} ({dev.pack}), imported from a CMSIS-Pack')}",
        f"cpu = {_q(dev.cpu)}",
        f"clock_hz = {clock}",
        'backends = ["cmsis", "ref"]',
        'default_backend = "cmsis"',
        'accelerator = "cmsis-dsp"',
        "",
    ]
    for m in (code, ram, nvm):
        lines += [
            "[[memory]]",
            f"name = {_q(m['name'])}",
            f"origin = 0x{m['origin']:08X}",
            f"length = 0x{m['length']:X}",
            f"volatile = {'true' if m['volatile'] else 'false'}",
            f"usable = 0x{m['length']:X}",
            "",
        ]
    lines += [
        "[power]",
        "supply_voltage_v = 3.0",
        "active_current_per_mhz_a = 100e-6",
        "sleep_current_a = 2.0e-6",
        "boot_time_s = 1.0e-3",
        "boot_charge_c = 0.5e-6",
        "nvm_write_energy_per_byte_j = 0.34e-9",
        "",
        "[power.accel_op_energy_j]",
        "",
        "[power.sources]",
    ]
    for k in (
        "supply_voltage_v",
        "active_current_per_mhz_a",
        "sleep_current_a",
        "boot_time_s",
        "boot_charge_c",
        "nvm_write_energy_per_byte_j",
        "accel_op_energy_j",
    ):
        lines.append(f"{k} = {_q(assumed_power)}")
    lines += [
        "",
        "[energy_buffer]",
        "capacitance_f = 100e-6",
        "v_on = 3.0",
        "v_off = 1.8",
        "v_max = 3.6",
        "leakage_resistance_ohm = 978000.0",
        "esr_ohm = 0.05",
        "source = "
        + _q("ASSUMED: the pack has no energy buffer; the same 100 uF buffer as the other boards"),
        "",
        "[emulator]",
        'kind = "none"',
        "",
        "[toolchain]",
        'cmake_toolchain = "toolchain.cmake"',
        'linker_script = "linker.ld"',
        'platform = "cortex-m"',
        "",
    ]
    cost_src = "ASSUMED: not fitted on this device; mps2-an386's fitted numbers (instructions as cycles)"
    for backend, vals in (("ref", (8.46, 90.47, 4.89, 75.52)), ("cmsis", (2.47, 29.3, 0.84, 321.74))):
        lines += [
            f"[cost.{backend}]",
            f"cycles_per_mac = {vals[0]}",
            f"cycles_per_butterfly = {vals[1]}",
            f"cycles_per_element = {vals[2]}",
            f"cycles_per_call = {vals[3]}",
            "commit_cycles = 182",
            f"source = {_q(cost_src)}",
            "",
        ]
    lines.append("[provenance]")
    lines += [f"{_q(k)} = {_q(v)}" for k, v in prov.items()]
    lines.append("")
    assumed = [f"{k}: {v}" for k, v in prov.items() if v.startswith("ASSUMED")]
    return "\n".join(lines), assumed


def _default_name(device: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")
    return name or "imported"


def import_pack(
    pack: str | Path,
    device: str,
    out_dir: str | Path | None = None,
    name: str | None = None,
    force: bool = False,
) -> ImportResult:
    """Write board ``name`` (default: the device name in lower case) for ``device`` of ``pack`` into
    ``out_dir`` (default: the project's boards/ folder). Refuses to replace an existing board folder unless
    ``force``; the files are written to a temporary folder first and moved into place whole, so a failure
    leaves nothing half-written. The written board is loaded back with ``load_board`` before it is moved."""
    from batteryless.boards import boards_dir, load_board

    board = name or _default_name(device)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", board):
        raise BoardError(f"board name {board!r}: use lower-case letters, digits, '.', '_' or '-'")
    dev = read_device(pack, device)
    base = Path(out_dir) if out_dir is not None else boards_dir()
    dest = base / board
    if dest.exists() and not force:
        raise BoardError(f"{dest}: exists; pass --force to replace it (nothing was written)")
    if not base.is_dir():
        raise BoardError(f"{base}: output folder does not exist")
    toml, assumed = _board_toml(dev, board)
    tmp = Path(tempfile.mkdtemp(prefix=f".{board}.", dir=base))
    try:
        (tmp / "board.toml").write_text(toml, encoding="utf-8")
        (tmp / "linker.ld").write_text(_LINKER.format(board=board, device=dev.name), encoding="utf-8")
        (tmp / "toolchain.cmake").write_text(_toolchain_cmake(dev, board), encoding="utf-8")
        staged = tmp / board
        staged.mkdir()
        for f in ("board.toml", "linker.ld", "toolchain.cmake"):
            os.replace(tmp / f, staged / f)
        load_board(staged / "board.toml")  # what we wrote must be a valid board
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staged, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ImportResult(dest, [dest / "board.toml", dest / "linker.ld", dest / "toolchain.cmake"], assumed)


def check_board(name_or_path: str | Path) -> list[str]:
    """The ASSUMED facts of a board: every source string (provenance, power, energy buffer, cost tables)
    that starts with ASSUMED, as 'field: source' lines."""
    from batteryless.boards import load_board

    b = load_board(name_or_path)
    out = [f"{k}: {v}" for k, v in (b.extra.get("provenance") or {}).items() if str(v).startswith("ASSUMED")]
    out += [f"power.{k}: {v}" for k, v in b.power.sources.items() if str(v).startswith("ASSUMED")]
    if b.energy_buffer.source.startswith("ASSUMED"):
        out.append(f"energy_buffer: {b.energy_buffer.source}")
    for backend, table in (b.extra.get("cost") or {}).items():
        if isinstance(table, dict) and str(table.get("source", "")).startswith("ASSUMED"):
            out.append(f"cost.{backend}: {table['source']}")
    return out
