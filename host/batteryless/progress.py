"""Progress reporting shared by every long-running library function.

Library functions take ``progress: ProgressFn | None``: a callable ``(task, done, total)`` where ``task`` is a
short description of the current phase. ``None`` means silent. The CLI passes :func:`console_progress`
unless ``--quiet`` was given.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

ProgressFn = Callable[[str, int, int], None]


def report(progress: ProgressFn | None, task: str, done: int, total: int) -> None:
    if progress is not None:
        progress(task, done, total)


@contextlib.contextmanager
def console_progress(enabled: bool = True) -> Iterator[ProgressFn | None]:
    """A rich progress display on stderr; yields ``None`` when disabled or stderr is not usable."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars: dict[str, int] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=not sys.stderr.isatty(),
        disable=False,
    ) as prog:

        def update(task: str, done: int, total: int) -> None:
            if task not in bars:
                bars[task] = prog.add_task(task, total=total)
            prog.update(bars[task], completed=done, total=total)

        yield update
