"""Board variants for tests: a real board's files with one fact changed, written to a test's folder."""

from __future__ import annotations

import re
from pathlib import Path

FR5994 = Path(__file__).resolve().parents[1] / "boards" / "msp430fr5994"


def fr5994_with_ram(tmp_path: Path, ram_length: int) -> Path:
    """The FR5994 with its SRAM region shortened to ``ram_length`` bytes (toolchain files by absolute
    path); returns the variant's board.toml."""
    text = (FR5994 / "board.toml").read_text(encoding="utf-8")
    text, n = re.subn(
        r'(name = "ram"[^\n]*\norigin = 0x1C00\nlength = )0x1000(\nvolatile = true\nusable = )0x1000',
        rf"\g<1>0x{ram_length:X}\g<2>0x{ram_length:X}",
        text,
    )
    assert n == 1, "the FR5994's SRAM region is no longer written as this helper expects"
    text = text.replace(
        'cmake_toolchain = "toolchain.cmake"', f'cmake_toolchain = "{FR5994 / "toolchain.cmake"}"'
    )
    text = text.replace('linker_script = "linker.ld"', f'linker_script = "{FR5994 / "linker.ld"}"')
    d = tmp_path / f"board-ram-{ram_length}"
    d.mkdir()
    (d / "board.toml").write_text(text, encoding="utf-8")
    return d / "board.toml"


def fr5994_with_code(tmp_path: Path, code_length: int) -> Path:
    """The FR5994 with its code region (FRAM from 0x4000) shortened to ``code_length`` bytes; returns the
    variant's board.toml."""
    assert code_length <= 0xA000, "the code region ends where the NVM region starts"
    text = (FR5994 / "board.toml").read_text(encoding="utf-8")
    text, n = re.subn(
        r'(name = "code"[^\n]*\norigin = 0x4000\nlength = )0xA000(\nvolatile = false\nusable = )0xA000',
        rf"\g<1>0x{code_length:X}\g<2>0x{code_length:X}",
        text,
    )
    assert n == 1, "the FR5994's code region is no longer written as this helper expects"
    text = text.replace(
        'cmake_toolchain = "toolchain.cmake"', f'cmake_toolchain = "{FR5994 / "toolchain.cmake"}"'
    )
    text = text.replace('linker_script = "linker.ld"', f'linker_script = "{FR5994 / "linker.ld"}"')
    d = tmp_path / f"board-code-{code_length}"
    d.mkdir()
    (d / "board.toml").write_text(text, encoding="utf-8")
    return d / "board.toml"
