"""The project's exception types.

Library code raises these with messages a user can act on; the CLI prints ``str(err)`` on one line and
exits with ``err.exit_code``. Exit codes are stable so that scripts can rely on them.
"""

from __future__ import annotations


class BatterylessError(Exception):
    """Base of every error the library raises on purpose."""

    exit_code = 1


class UsageError(BatterylessError):
    """A bad argument or combination of arguments."""

    exit_code = 2


class DatasetError(BatterylessError):
    """A dataset is missing, malformed or unknown."""

    exit_code = 3


class ModelError(BatterylessError):
    """A model is unknown or uses an unsupported layer."""

    exit_code = 4


class CompressionError(BatterylessError):
    """Compression settings do not fit the model (e.g. block size)."""

    exit_code = 5


class ArtifactError(BatterylessError):
    """A .bl artifact is missing, corrupt, tampered with or of an unknown version."""

    exit_code = 6


class BoardError(BatterylessError):
    """A board description is missing or invalid."""

    exit_code = 7


class CodegenError(BatterylessError):
    """Code generation failed, e.g. the model does not fit the board's memory."""

    exit_code = 8


class BuildError(BatterylessError):
    """Building or running firmware failed."""

    exit_code = 9


class FlashError(BatterylessError):
    """Talking to the bootloader failed."""

    exit_code = 10


class ImageError(FlashError):
    """A firmware image is unreadable, corrupt, overlapping or writes where it must not."""

    exit_code = 20


class BslNoResponseError(FlashError):
    """The bootloader sent nothing back (wiring, port, power or entry sequence)."""

    exit_code = 21


class BslLockedError(FlashError):
    """The bootloader answers but stays locked (password refused)."""

    exit_code = 22


class VerifyError(FlashError):
    """Device memory differs from the image after writing."""

    exit_code = 23


class TraceError(BatterylessError):
    """An energy trace is missing or malformed."""

    exit_code = 11


class EmulationError(BatterylessError):
    """Emulation could not run or its result disagrees with the reference."""

    exit_code = 12


class ScheduleError(EmulationError):
    """A schedule.json is missing or malformed."""


class ExportError(BatterylessError):
    """Export to or import from another format failed."""

    exit_code = 13
