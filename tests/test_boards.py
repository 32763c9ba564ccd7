"""Board descriptions: the shipped boards load and agree with the datasheet facts in REFERENCE.md; broken
files fail with errors naming the file and the field; generated build inputs match board.toml."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batteryless.boards import (
    board_header,
    boards_dir,
    list_boards,
    load_board,
    memory_ld,
    write_board_files,
)
from batteryless.boards.board import POWER_FIELDS
from batteryless.errors import BoardError

BOARDS = ["host", "mps2-an386", "msp430fr5969", "msp430fr5994"]


def test_list_boards_has_the_four_boards():
    assert set(BOARDS) <= set(list_boards())


@pytest.mark.parametrize("name", BOARDS)
def test_each_board_loads_with_roles_and_sources(name):
    b = load_board(name)
    assert b.name == name
    for role in ("ram", "code", "nvm"):
        r = b.region(role)
        assert 0 < r.usable <= r.length
    assert b.region("ram").volatile and not b.region("nvm").volatile
    assert b.default_backend in b.backends
    for f in POWER_FIELDS:
        assert b.power.sources[f].strip(), f
    assert b.energy_buffer.v_off < b.energy_buffer.v_on <= b.energy_buffer.v_max


def test_fr5994_memory_map_matches_the_datasheet():
    b = load_board("msp430fr5994")
    ram, lea = b.region("ram"), b.region("lea_ram")
    # SLASE54D: 8 KB SRAM at 0x1C00-0x3BFF, the upper 4 KB shared with LEA; 3,784 B of LEA RAM usable.
    assert ram.origin == 0x1C00 and lea.end == 0x3C00 and ram.length + lea.length == 8 * 1024
    assert lea.usable == 3784
    # Main FRAM below 64 KB is 0x4000-0xFF7F; code and nvm must lie inside it, the signatures outside.
    for role in ("code", "nvm"):
        r = b.region(role)
        assert 0x4000 <= r.origin and r.end <= 0xFF80
    assert b.region("vectors").end == 0x10000
    assert b.accelerator == "lea" and "lea" in b.backends
    assert b.bootloader is not None and b.bootloader["password_address"] == 0xFFE0
    assert b.bootloader["protected_ranges"] == [[0xFF80, 0xFF8F]]


def test_mps2_nvm_is_the_noload_region_and_assumed_power_is_marked():
    b = load_board("mps2-an386")
    assert b.region("nvm").origin == b.emulator["nvm_origin"] == 0x20300000
    assert b.emulator["kind"] == "qemu" and b.emulator["machine"] == "mps2-an386"
    assert all("ASSUMED" in b.power.sources[f] for f in POWER_FIELDS)


def test_fr5994_usable_energy_matches_half_c_v_squared():
    eb = load_board("msp430fr5994").energy_buffer
    assert eb.usable_energy_j == pytest.approx(0.5 * 100e-6 * (3.0**2 - 1.8**2))  # 288 µJ (REFERENCE §5)


def test_region_lookup_error_names_board_and_region():
    with pytest.raises(BoardError, match=r"board\.toml.*no memory region 'lea_ram'"):
        load_board("msp430fr5969").region("lea_ram")


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(BoardError, match="known boards: .*msp430fr5994"):
        load_board("no-such-board")


def test_missing_board_file():
    with pytest.raises(BoardError, match="not found"):
        load_board(Path("/nonexistent/dir/board.toml"))


# --- validation of broken files ------------------------------------------------------------------------


def _copy_board(tmp_path: Path, name: str = "msp430fr5994") -> Path:
    dst = tmp_path / name
    shutil.copytree(boards_dir() / name, dst)
    return dst / "board.toml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ("clock_hz = 16000000", 'clock_hz = "fast"', r"field 'clock_hz' must be an integer"),
        ('cpu = "msp430x"', 'cpu = "z80"', r"field 'cpu' must be one of"),
        ("usable = 3784", "usable = 5000", r"field 'memory\[1\]\.usable' \(5000\) must not exceed length"),
        ("active_current_per_mhz_a = 120e-6", "active_current_per_mhz_a = -1.0", r"power\.active_current"),
        ('default_backend = "ref"', 'default_backend = "cmsis"', r"field 'default_backend'"),
        ("v_on = 3.0", "v_on = 1.0", r"field 'energy_buffer\.v_on' needs v_off < v_on"),
        ('parity = "even"', 'parity = "mark"', r"field 'bootloader\.parity' must be one of"),
        ("bsl_rom = [0x1000, 0x17FF]", "bsl_rom = [0x17FF, 0x1000]", r"field 'bootloader\.bsl_rom'"),
        ('kind = "mspdebug"', 'kind = "jtag"', r"field 'emulator\.kind'"),
        ("origin = 0xE000", "origin = 0xDF00", r"regions 'code' .* and 'nvm' .* overlap"),
        ('name = "nvm"', 'name = "fram"', r"field 'memory' needs a region named 'nvm'"),
        ("clock_hz = 16000000", "clock_hz = = 1", r"not valid TOML"),
    ],
)
def test_bad_field_is_named(tmp_path, old, new, pattern):
    path = _copy_board(tmp_path)
    _edit(path, old, new)
    with pytest.raises(BoardError, match=pattern) as info:
        load_board(path)
    assert str(path) in str(info.value)


def test_missing_power_source_is_refused(tmp_path):
    path = _copy_board(tmp_path)
    text = path.read_text()
    path.write_text(re.sub(r"(?m)^sleep_current_a = \".*\"\n", "", text))
    with pytest.raises(BoardError, match=r"power\.sources\.sleep_current_a' is missing: every power number"):
        load_board(path)


def test_missing_linker_script_is_refused(tmp_path):
    path = _copy_board(tmp_path)
    (path.parent / "linker.ld").unlink()
    with pytest.raises(
        BoardError, match=r"\[toolchain\]\.linker_script names .*linker\.ld, which does not exist"
    ):
        load_board(path)


def _drop_key(data: dict, dotted: tuple[str, ...]) -> dict:
    import copy

    out = copy.deepcopy(data)
    node = out
    for k in dotted[:-1]:
        node = node[k]
    del node[dotted[-1]]
    return out


def _dump_toml(data: dict) -> str:
    """A tiny TOML writer for the board schema (tables, arrays of tables, scalars, arrays)."""

    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines: list[str] = []

    def table(prefix: str, d: dict) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict) and not _is_aot(v)}
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f'"{k}" = {val(v)}' for k, v in scalars.items())
        for k, v in d.items():
            if _is_aot(v):
                for item in v:
                    lines.append(f"[[{prefix + '.' if prefix else ''}{k}]]")
                    lines.extend(f'"{ik}" = {val(iv)}' for ik, iv in item.items())
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    return "\n".join(lines) + "\n"


def _is_aot(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


_FR5994 = tomllib.loads((boards_dir() / "msp430fr5994" / "board.toml").read_text())
_REQUIRED = (
    [
        (k,)
        for k in (
            "name",
            "description",
            "cpu",
            "clock_hz",
            "backends",
            "default_backend",
            "accelerator",
            "memory",
        )
    ]
    + [("power", k) for k in POWER_FIELDS]
    + [("energy_buffer", k) for k in _FR5994["energy_buffer"]]
    + [("bootloader", k) for k in _FR5994["bootloader"]]
    + [("power", "sources", k) for k in POWER_FIELDS]
    + [("emulator", "kind")]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(_REQUIRED))
def test_property_any_missing_required_field_is_named(tmp_path, key):
    path = _copy_board(tmp_path / "_".join(key)) if not (tmp_path / "_".join(key)).exists() else None
    if path is None:
        path = tmp_path / "_".join(key) / "msp430fr5994" / "board.toml"
    path.write_text(_dump_toml(_drop_key(_FR5994, key)))
    with pytest.raises(BoardError) as info:
        load_board(path)
    msg = str(info.value)
    assert str(path) in msg
    assert key[-1] in msg  # the field is named


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from([("clock_hz",), ("power", "sleep_current_a"), ("energy_buffer", "capacitance_f")]),
    bad=st.one_of(
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=5),
        st.booleans(),
        st.lists(st.integers(-(2**62), 2**62), max_size=2),
    ),
)
def test_property_wrong_type_is_named(tmp_path, key, bad):
    import copy

    data = copy.deepcopy(_FR5994)
    node = data
    for k in key[:-1]:
        node = node[k]
    node[key[-1]] = bad
    d = tmp_path / "wt" / "msp430fr5994"
    if not d.exists():
        shutil.copytree(boards_dir() / "msp430fr5994", d)
    path = d / "board.toml"
    path.write_text(_dump_toml(data))
    with pytest.raises(BoardError, match=re.escape(".".join(key))):
        load_board(path)


def test_dump_toml_round_trips_the_real_board(tmp_path):
    # The helper above must reproduce the board exactly, or the property tests would test nothing.
    assert tomllib.loads(_dump_toml(_FR5994)) == _FR5994


# --- generated build inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["msp430fr5994", "mps2-an386"])
def test_generated_header_matches_board_toml(tmp_path, name):
    """Compile the generated header with the host compiler and print its macros; compare with TOML read
    independently by tomllib."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no host C compiler")
    raw = tomllib.loads((boards_dir() / name / "board.toml").read_text())
    files = write_board_files(load_board(name), tmp_path)
    prog = ["#include <stdio.h>", '#include "bl_board.h"', "int main(void) {"]
    for m in raw["memory"]:
        up = m["name"].upper()
        prog.append(
            f'printf("{m["name"]} %lu %lu %lu %d\\n", BL_REGION_{up}_ORIGIN, BL_REGION_{up}_LENGTH, '
            f"BL_REGION_{up}_USABLE, BL_REGION_{up}_VOLATILE);"
        )
    prog += ['printf("clock %lu\\n", BL_BOARD_CLOCK_HZ);', "return 0; }"]
    (tmp_path / "t.c").write_text("\n".join(prog) + "\n")
    exe = tmp_path / "t"
    subprocess.run(
        [cc, "-Wall", "-Werror", "-I", str(tmp_path), str(tmp_path / "t.c"), "-o", str(exe)], check=True
    )
    out = subprocess.run(
        [str(tmp_path / "t")], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    expect = [
        f"{m['name']} {m['origin']} {m['length']} {m['usable']} {int(m['volatile'])}" for m in raw["memory"]
    ]
    assert out == [*expect, f"clock {raw['clock_hz']}"]
    ld = files["memory_ld"].read_text()
    for m in raw["memory"]:
        assert (
            f"{m['name'].upper()} (" in ld and f"ORIGIN = 0x{m['origin']:X}, LENGTH = 0x{m['length']:X}" in ld
        )


def test_generated_files_are_deterministic(tmp_path):
    b = load_board("msp430fr5994")
    assert board_header(b) == board_header(load_board("msp430fr5994"))
    assert memory_ld(b) == memory_ld(load_board("msp430fr5994"))
    a = write_board_files(b, tmp_path / "a")
    c = write_board_files(b, tmp_path / "c")
    for k in a:
        assert a[k].read_bytes() == c[k].read_bytes() or k == "cmake"


@pytest.mark.parametrize("name", ["msp430fr5994", "msp430fr5969", "mps2-an386"])
def test_linker_scripts_carry_no_addresses(name):
    """Addresses live in board.toml; the linker script only names regions (bl_memory.ld is generated)."""
    text = (boards_dir() / name / "linker.ld").read_text()
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    assert "INCLUDE bl_memory.ld" in code
    assert not re.search(r"0x[0-9A-Fa-f]{3,}", code)


def test_uninterpreted_tables_are_kept_in_extra(tmp_path):
    path = _copy_board(tmp_path)
    path.write_text(path.read_text() + '\n[future]\nanswer = 42\nsource = "test"\n')
    b = load_board(path)
    assert b.extra["future"] == {"answer": 42, "source": "test"}
    assert "power" not in b.extra and "memory" not in b.extra
