"""``python -m batteryless.boards BOARD OUT_DIR [MODEL_DIR]``: write bl_board.h, bl_memory.ld, board.cmake."""

import sys

from batteryless.boards.build_files import main_for_cmake

sys.exit(main_for_cmake())
