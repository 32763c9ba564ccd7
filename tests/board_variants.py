"""Board variants for tests: a real board's files with one fact changed, written to a test's folder."""

from __future__ import annotations

import re
from pathlib import Path

FR5994 = Path(__file__).resolve().parents[1] / "boards" / "msp430fr5994"


def _fr5994_with_region(
    tmp_path: Path, region: str, origin: int, full: int, length: int, what: str, lea_costs: dict | None = None
) -> Path:
    """The FR5994's board.toml with memory region ``region`` (at ``origin``, ``full`` bytes as shipped)
    shortened to ``length`` bytes and the ``[cost.lea]`` coefficients in ``lea_costs`` replaced, the
    toolchain files by absolute path, in a folder of its own under ``tmp_path``; returns that board.toml."""
    text = (FR5994 / "board.toml").read_text(encoding="utf-8")
    head, sep, rest = text.partition("\n[cost.lea]\n")
    assert sep, "the FR5994 has no [cost.lea] table"
    table, nxt, tail = rest.partition("\n[")
    for key, value in (lea_costs or {}).items():
        table, n = re.subn(rf"(?m)^{key} = [^#\n]*", f"{key} = {value} ", table)
        assert n == 1, f"[cost.lea] has no {key}"
    text = head + sep + table + nxt + tail
    text, n = re.subn(
        rf'(name = "{region}"[^\n]*\norigin = 0x{origin:X}\nlength = )0x{full:X}(\nvolatile = '
        rf"(?:true|false)\nusable = )0x{full:X}",
        rf"\g<1>0x{length:X}\g<2>0x{length:X}",
        text,
    )
    assert n == 1, f"the FR5994's {what} region is no longer written as this helper expects"
    text = text.replace(
        'cmake_toolchain = "toolchain.cmake"', f'cmake_toolchain = "{FR5994 / "toolchain.cmake"}"'
    )
    text = text.replace('linker_script = "linker.ld"', f'linker_script = "{FR5994 / "linker.ld"}"')
    d = tmp_path / (f"board-{region}-{length}" + ("-costs" if lea_costs else ""))
    d.mkdir()
    (d / "board.toml").write_text(text, encoding="utf-8")
    return d / "board.toml"


def fr5994_with_ram(tmp_path: Path, ram_length: int) -> Path:
    """The FR5994 with its SRAM region shortened to ``ram_length`` bytes; returns the variant's board.toml."""
    return _fr5994_with_region(tmp_path, "ram", 0x1C00, 0x1000, ram_length, "SRAM")


def fr5994_with_code(tmp_path: Path, code_length: int, lea_costs: dict | None = None) -> Path:
    """The FR5994 with its code region (FRAM from 0x4000) shortened to ``code_length`` bytes (0xA000: as
    shipped) and the ``[cost.lea]`` coefficients in ``lea_costs`` replaced; returns the variant's
    board.toml."""
    assert code_length <= 0xA000, "the code region ends where the NVM region starts"
    return _fr5994_with_region(tmp_path, "code", 0x4000, 0xA000, code_length, "code", lea_costs)
