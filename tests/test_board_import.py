"""`batteryless board import` from CMSIS-Pack descriptions (PDSC fixtures written here from the published
PACK.xsd schema: <package><devices><family><processor/><device><memory/>), and `board check`."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batteryless.boards import load_board
from batteryless.boards.packs import check_board, import_pack
from batteryless.errors import BoardError

pytest.importorskip("cmsis_pack_manager")


def pdsc(devices_xml: str, vendor: str = "Acme", pack: str = "Acme_DFP", version: str = "1.2.3") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<package schemaVersion="1.7.7" xmlns:xs="http://www.w3.org/2001/XMLSchema-instance" xs:noNamespaceSchemaLocation="PACK.xsd">
  <vendor>{vendor}</vendor>
  <name>{pack}</name>
  <description>test pack written by the batteryless tests</description>
  <url>http://example.invalid/</url>
  <releases><release version="{version}">test</release></releases>
  <devices>{devices_xml}</devices>
</package>
"""  # noqa: E501 - PDSC fixtures keep each element on one line, as packs write them


M4 = pdsc("""
    <family Dfamily="AcmeM4" Dvendor="Acme:999">
      <processor Dcore="Cortex-M4" Dfpu="SP_FPU" Dmpu="MPU" Ddsp="DSP" Dendian="Little-endian" Dclock="80000000"/>
      <device Dname="ACME4F256">
        <memory name="IROM1" access="rx" start="0x08000000" size="0x40000" startup="1" default="1"/>
        <memory name="IRAM1" access="rw" start="0x20000000" size="0x10000" init="0" default="1"/>
      </device>
      <device Dname="ACME4NORAM">
        <memory name="IROM1" access="rx" start="0x08000000" size="0x40000" startup="1" default="1"/>
      </device>
    </family>
    <family Dfamily="AcmeM0" Dvendor="Acme:999">
      <processor Dcore="Cortex-M0" Dfpu="NO_FPU" Dmpu="NO_MPU" Dendian="Little-endian" Dclock="48000000"/>
      <device Dname="ACME0">
        <memory name="IROM1" access="rx" start="0x0" size="0x8000" startup="1" default="1"/>
        <memory name="IRAM1" access="rw" start="0x20000000" size="0x2000" default="1"/>
      </device>
    </family>""")

# M55 in a sub-family: Dmve / Dclock inherited from the family, the device overrides the clock
M55 = pdsc(
    """
    <family Dfamily="AcmeM55" Dvendor="Acme:999">
      <processor Dcore="Cortex-M55" Dfpu="DP_FPU" Dmpu="MPU" Ddsp="DSP" Dmve="FP_MVE" Dendian="Little-endian" Dclock="100000000"/>
      <subFamily DsubFamily="AcmeM55x">
        <device Dname="ACME55">
          <processor Dclock="160000000"/>
          <memory name="ITCM" access="rx" start="0x00000000" size="0x80000" startup="1" default="1"/>
          <memory name="DTCM" access="rw" start="0x20000000" size="0x80000" default="1"/>
        </device>
      </subFamily>
    </family>""",
    pack="Acme55_DFP",
)


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def test_m4_pdsc_facts_and_sources(tmp_path):
    res = import_pack(write(tmp_path, "a.pdsc", M4), "ACME4F256", out_dir=tmp_path)
    b = load_board(res.board_dir)
    assert b.name == "acme4f256" and b.cpu == "cortex-m4" and b.clock_hz == 80e6
    assert (b.region("code").origin, b.region("code").length) == (0x08000000, 0x40000)
    ram, nvm = b.region("ram"), b.region("nvm")
    assert ram.origin == 0x20000000 and ram.length + nvm.length == 0x10000
    assert nvm.origin == 0x20000000 + ram.length
    assert ram.volatile and not nvm.volatile
    prov = b.extra["provenance"]
    assert "Acme.Acme_DFP.1.2.3" in prov["cpu"] and "Cortex-M4" in prov["cpu"] or "CortexM4" in prov["cpu"]
    assert "80000000" in prov["clock_hz"] and not prov["clock_hz"].startswith("ASSUMED")
    assert "IROM1" in prov["memory.code"] and "IRAM1" in prov["memory.ram"]
    flagged = check_board(res.board_dir)
    keys = {ln.split(":", 1)[0] for ln in flagged}
    assert {"memory.nvm", "emulator", "energy_buffer", "cost.cmsis"} <= keys
    assert any(k.startswith("power.") for k in keys)
    assert not keys & {"cpu", "clock_hz", "memory.code", "memory.ram", "dsp", "fpu"}
    tc = (res.board_dir / "toolchain.cmake").read_text()
    assert "-mcpu=cortex-m4 " in tc and "-mfpu=fpv4-sp-d16" in tc and "-mfloat-abi=hard" in tc


def test_m55_pack_zip_inherits_and_overrides(tmp_path):
    pack = tmp_path / "Acme.Acme55_DFP.1.2.3.pack"
    with zipfile.ZipFile(pack, "w") as z:
        z.writestr("Acme.Acme55_DFP.pdsc", M55)
        z.writestr("Files/readme.txt", "x")
    res = import_pack(pack, "ACME55", out_dir=tmp_path, name="acme55")
    b = load_board(res.board_dir)
    assert b.cpu == "cortex-m55" and b.clock_hz == 160e6  # the device's own Dclock wins
    tc = (res.board_dir / "toolchain.cmake").read_text()
    assert "-mcpu=cortex-m55 " in tc and "-DARM_MATH_MVEI" in tc  # FP_MVE inherited from the family
    assert "FP_MVE" in b.extra["provenance"]["mve"]


@pytest.mark.firmware
def test_imported_board_builds_the_model(artifacts, tmp_path):
    """The written linker script and toolchain link the digits MLP for the imported board (cmsis)."""
    from batteryless.codegen import codegen
    from batteryless.firmware import build

    res = import_pack(write(tmp_path, "a.pdsc", M4), "ACME4F256", out_dir=tmp_path)
    codegen(artifacts["mlp"], res.board_dir / "board.toml", tmp_path / "gen", backend="cmsis")
    img = build(res.board_dir / "board.toml", tmp_path / "gen", "cmsis", out_dir=tmp_path / "b").image
    out = subprocess.run(["arm-none-eabi-nm", str(img)], capture_output=True, text=True, check=True).stdout
    syms = {ln.split()[-1]: int(ln.split()[0], 16) for ln in out.splitlines() if len(ln.split()) == 3}
    assert 0x08000000 <= syms["bl_reset_handler"] < 0x08040000  # code in the pack's flash


@pytest.mark.parametrize(
    "name,text,device,msg",
    [
        ("bad.pdsc", "<package><devices>", "X", "not valid XML"),
        ("a.pdsc", M4, "NOPE", "no device 'NOPE'"),
        ("a.pdsc", M4, "ACME0", "core 'CortexM0'"),
        ("a.pdsc", M4, "ACME4NORAM", "no writable memory"),
        ("a.pdsc", M4.replace('Dclock="80000000"', 'Dclock="fast"'), "ACME4F256", "Dclock='fast'"),
        ("a.txt", M4, "ACME4F256", "not a CMSIS-Pack"),
        ("a.pack", "not a zip", "ACME4F256", "not a valid .pack"),
    ],
)
def test_malformed_packs_one_line_error_nothing_written(tmp_path, name, text, device, msg):
    src = write(tmp_path, name, text)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BoardError) as e:
        import_pack(src, device, out_dir=out)
    assert msg in str(e.value) and "\n" not in str(e.value)
    assert list(out.iterdir()) == []


def test_pack_zip_without_or_with_two_pdsc(tmp_path):
    for i, names in enumerate(([], ["a.pdsc", "b.pdsc"])):
        pack = tmp_path / f"p{i}.pack"
        with zipfile.ZipFile(pack, "w") as z:
            z.writestr("readme.txt", "x")
            for n in names:
                z.writestr(n, M4)
        with pytest.raises(BoardError, match="exactly one .pdsc"):
            import_pack(pack, "ACME4F256", out_dir=tmp_path)
    with pytest.raises(BoardError, match="not found"):
        import_pack(tmp_path / "missing.pdsc", "ACME4F256", out_dir=tmp_path)


def test_existing_board_is_not_replaced_without_force(tmp_path):
    src = write(tmp_path, "a.pdsc", M4)
    res = import_pack(src, "ACME4F256", out_dir=tmp_path)
    before = (res.board_dir / "board.toml").read_bytes()
    (res.board_dir / "board.toml").write_text("edited", encoding="utf-8")
    with pytest.raises(BoardError, match="--force"):
        import_pack(src, "ACME4F256", out_dir=tmp_path)
    assert (res.board_dir / "board.toml").read_text() == "edited"
    import_pack(src, "ACME4F256", out_dir=tmp_path, force=True)
    assert (res.board_dir / "board.toml").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdsc", "acme4f256"]  # no temp folders left


def test_cli_import_and_check(tmp_path, capsys):
    from batteryless.cli import main

    src = write(tmp_path, "a.pdsc", M4)
    assert main(["board", "import", "--pack", str(src), "--device", "ACME4F256", "--out", str(tmp_path)]) == 0
    assert "ASSUMED memory.nvm" in capsys.readouterr().out
    board = str(tmp_path / "acme4f256")
    assert main(["board", "check", board]) == 0
    assert "ASSUMED memory.nvm" in capsys.readouterr().out
    assert main(["board", "check", board, "--strict"]) == 7  # BoardError's exit code
    err = capsys.readouterr().err
    assert "ASSUMED" in err and len(err.strip().splitlines()) == 1
    # a board of this project whose every fact is sourced except its ASSUMED power model
    assert any(ln.startswith("power.") for ln in check_board("mps2-an386"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rom=st.integers(0, 0x0FFF).map(lambda v: v << 16),
    rom_kb=st.integers(16, 4096),
    ram_kb=st.integers(4, 1024),
    clock=st.integers(1_000_000, 500_000_000),
)
def test_memories_and_clock_round_trip(tmp_path, rom, rom_kb, ram_kb, clock):
    text = pdsc(f"""
    <family Dfamily="F" Dvendor="Acme:999">
      <processor Dcore="Cortex-M4" Dfpu="NO_FPU" Dmpu="NO_MPU" Ddsp="DSP" Dendian="Little-endian" Dclock="{clock}"/>
      <device Dname="D1">
        <memory name="IROM1" access="rx" start="0x{rom:08X}" size="0x{rom_kb * 1024:X}" startup="1" default="1"/>
        <memory name="IRAM1" access="rw" start="0x20000000" size="0x{ram_kb * 1024:X}" default="1"/>
      </device>
    </family>""")
    d = tmp_path / f"h{rom}-{rom_kb}-{ram_kb}-{clock}"
    d.mkdir()
    b = load_board(import_pack(write(d, "p.pdsc", text), "D1", out_dir=d).board_dir)
    assert b.clock_hz == clock
    assert (b.region("code").origin, b.region("code").length) == (rom, rom_kb * 1024)
    assert b.region("ram").length + b.region("nvm").length == ram_kb * 1024
    assert "-mcpu=cortex-m4+nofp" in (d / "d1" / "toolchain.cmake").read_text()
