"""Stand-ins: firmware that links and can be measured but does not compute on the real part.

Two facts say where a stand-in is, so that whoever replaces one (e.g. the real LEA driver for the ``lea``
backend on the MSP430FR5994) flips them without touching code:

- the board: ``[stand_in]`` in ``board.toml`` maps a backend to the reason its images for this board will
  not compute on hardware (``Board.stand_in``). ``codegen`` warns from it before anything is built, and the
  board loader refuses a ``default_backend`` listed there.
- the image: a stand-in source says ``BL_STAND_IN(id, "reason")`` (``firmware/include/bl_stand_in.h``),
  which puts ``BL-STAND-IN: reason`` into the image's loaded bytes. It survives conversion to Intel HEX or
  TI-TXT, so ``build`` warns and ``flash`` refuses whatever file it is given, quoting the reason.

``tests/test_stand_in.py`` checks that the two agree for every board, backend and platform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: What ``BL_STAND_IN`` puts in front of the reason (firmware/include/bl_stand_in.h says the same).
MARKER = b"BL-STAND-IN: "
_MAX_REASON = 400


def _scan(data: bytes) -> list[str]:
    found: list[str] = []
    at = data.find(MARKER)
    while at >= 0:
        start = at + len(MARKER)
        end = data.find(b"\0", start, start + _MAX_REASON)
        text = data[start : end if end >= 0 else start + _MAX_REASON].decode("utf-8", "replace").strip()
        found.append(text or "(the mark gives no reason)")  # a mark is a stand-in, reason or not
        at = data.find(MARKER, start)
    return found


def image_stand_ins(image: Any) -> list[str]:
    """The reasons of every stand-in mark in ``image``, in address order; empty if it links none.

    ``image``: a flash ``Image`` (its loaded bytes are searched, whatever file it came from), or a path to a
    linked ELF of any target (its file bytes are searched: the mark is in a loaded section).
    """
    from batteryless.flash.images import Image

    if isinstance(image, Image):
        found = [r for seg in image.segments for r in _scan(seg.data)]
    else:
        found = _scan(Path(image).read_bytes())
    return list(dict.fromkeys(found))


def board_stand_in(board: Any, backend: str) -> str | None:
    """The board's reason why ``backend`` images will not compute on hardware, or None if they do."""
    return board.stand_in.get(backend)


def codegen_warning(board: Any, backend: str) -> str | None:
    """One line for ``codegen`` when the board says ``backend`` links a stand-in there."""
    reason = board_stand_in(board, backend)
    if reason is None:
        return None
    real = [b for b in board.backends if b not in board.stand_in]
    alt = f"; for the real part use --backend {real[0]}" if real else ""
    return f"backend {backend} on {board.name} will not compute on hardware: {reason}{alt}"


def image_warning(source: str, reasons: list[str]) -> str | None:
    """One line for an image that carries stand-in markers (``build``, ``flash``), or None."""
    if not reasons:
        return None
    return f"{source} links a stand-in that will not compute on hardware: {'; '.join(reasons)}"
