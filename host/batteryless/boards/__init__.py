"""Board descriptions (DESIGN.md contract 4): ``boards/<name>/board.toml`` read, validated and typed.

Board facts live only in those files; code reads them through :func:`load_board`. Every validation error
names the board file and the field, so a user can fix the file. :func:`write_board_files` turns a board into
the generated ``bl_board.h`` (C), ``bl_memory.ld`` (the linker MEMORY block) and ``board.cmake`` that the
firmware build includes, so no address is typed twice.
"""

from batteryless.boards.board import Board, EnergyBuffer, MemoryRegion, PowerModel
from batteryless.boards.build_files import (
    board_cmake,
    board_header,
    memory_ld,
    write_board_files,
    write_board_header,
)
from batteryless.boards.load import boards_dir, list_boards, load_board, with_emulator

__all__ = [
    "Board",
    "EnergyBuffer",
    "MemoryRegion",
    "PowerModel",
    "board_cmake",
    "board_header",
    "boards_dir",
    "list_boards",
    "load_board",
    "memory_ld",
    "with_emulator",
    "write_board_files",
    "write_board_header",
]
