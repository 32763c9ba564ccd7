"""Flash firmware over the MSP430 FRAM UART bootloader (BSL), and a BSL device emulator on a pty.

- :mod:`.protocol`: packets, CRC-16-CCITT, command builders, the incremental packet parser.
- :mod:`.images`: ELF, Intel HEX and TI-TXT readers; segment coalescing.
- :mod:`.entry`: DTR/RTS entry and reset sequences (presets and custom strings).
- :mod:`.flasher`: :func:`flash` and :func:`probe`, the library behind ``batteryless flash``.
- :mod:`.emulator`: :class:`BslDevice` and :class:`BslEmulator`, behind ``batteryless bsl-emulator``.
"""

from batteryless.flash.emulator import BslDevice, BslEmulator, Faults, bsl_emulator
from batteryless.flash.flasher import FlashReport, ProbeResult, flash, probe
from batteryless.flash.images import Image, Segment, read_image

__all__ = [
    "BslDevice",
    "BslEmulator",
    "Faults",
    "FlashReport",
    "Image",
    "ProbeResult",
    "Segment",
    "bsl_emulator",
    "flash",
    "probe",
    "read_image",
]
