"""Entry (invoke the BSL) and reset sequences driven through the serial port's DTR and RTS lines.

A sequence is a string of steps separated by ``|``: ``D1``/``D0`` assert/deassert DTR, ``R1``/``R0``
assert/deassert RTS, ``W<seconds>`` waits (e.g. ``W0.05``). Presets cover the common wirings; any other
wiring is a custom string (the same idea as mspdebug's and esptool's custom sequences).

BSL entry on FRAM parts (SLAU550; REFERENCE.md §3): with RST held low, TEST shows two rising edges, is high
when RST is released, then goes low; the BSL is ready after a pause (~500 ms is safe; ≥ ~50 ms reported).
On a USB-serial adapter an asserted modem line usually drives its pin low; adapters or boards with an
inverter need the ``-inverted`` preset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batteryless.errors import FlashError, UsageError


@dataclass(frozen=True)
class Step:
    kind: str  # "D" (DTR), "R" (RTS) or "W" (wait)
    value: float  # 0/1 for lines, seconds for waits

    def __str__(self) -> str:
        return f"W{self.value:g}" if self.kind == "W" else f"{self.kind}{int(self.value)}"


def parse_sequence(text: str) -> tuple[Step, ...]:
    """Parse ``"D1|R1|W0.01|R0"``; raises :class:`UsageError` naming the bad step."""
    steps = []
    for i, tok in enumerate(t.strip() for t in text.split("|")):
        if not tok:
            continue
        head, rest = tok[0].upper(), tok[1:]
        if head in "DR" and rest in ("0", "1"):
            steps.append(Step(head, float(rest)))
        elif head == "W":
            try:
                secs = float(rest)
            except ValueError:
                secs = -1.0
            if not 0 <= secs <= 10:
                raise UsageError(f"sequence step {i + 1} {tok!r}: a wait is W<seconds> between 0 and 10")
            steps.append(Step("W", secs))
        else:
            raise UsageError(
                f"sequence step {i + 1} {tok!r}: use D0/D1 (DTR), R0/R1 (RTS) or W<seconds>, separated by '|'"
            )
    return tuple(steps)


def format_sequence(steps: tuple[Step, ...]) -> str:
    return "|".join(str(s) for s in steps)


@dataclass(frozen=True)
class Wiring:
    """Which modem line drives RST and TEST, and whether an asserted line pulls its pin low."""

    rst: str  # "D" or "R"
    test: str
    asserted_low: bool = True

    def line(self, pin: str, level: int) -> str:
        line = self.rst if pin == "RST" else self.test
        asserted = (level == 0) if self.asserted_low else (level == 1)
        return f"{line}{int(asserted)}"


PIN_PULSE_S = 0.002
BSL_READY_S = 0.5


def entry_for(wiring: Wiring, ready_s: float = BSL_READY_S) -> str:
    """The entry sequence of SLAU550 expressed on the modem lines of ``wiring``."""
    w = wiring.line
    p = f"W{PIN_PULSE_S:g}"
    return "|".join(
        [
            w("RST", 0), w("TEST", 0), p,
            w("TEST", 1), p, w("TEST", 0), p, w("TEST", 1), p,
            w("RST", 1), p, w("TEST", 0), f"W{ready_s:g}",
        ]
    )  # fmt: skip


def reset_for(wiring: Wiring) -> str:
    """Reset into the application: TEST low, RST pulsed low then released."""
    w = wiring.line
    return "|".join([w("TEST", 0), w("RST", 0), "W0.05", w("RST", 1), "W0.05"])


WIRINGS: dict[str, Wiring] = {
    "bsl-scripter": Wiring("D", "R", True),
    "bsl-scripter-inverted": Wiring("D", "R", False),
    "swapped": Wiring("R", "D", True),
    "swapped-inverted": Wiring("R", "D", False),
}

PRESET_HELP: dict[str, str] = {
    "bsl-scripter": "DTR->RST, RTS->TEST, asserted line = pin low (TI BSL-Scripter / MSP-BSL wiring)",
    "bsl-scripter-inverted": "DTR->RST, RTS->TEST through inverters (asserted line = pin high)",
    "swapped": "RTS->RST, DTR->TEST, asserted line = pin low",
    "swapped-inverted": "RTS->RST, DTR->TEST, asserted line = pin high",
    "manual": "touch no lines: the part is already in BSL mode (you did it, or the emulator)",
}


def presets() -> dict[str, str]:
    """Preset name -> entry sequence string (``manual`` is empty)."""
    out = {name: entry_for(w) for name, w in WIRINGS.items()}
    out["manual"] = ""
    return out


def resolve(entry: str) -> tuple[str, tuple[Step, ...], tuple[Step, ...]]:
    """A preset name or custom string -> (name, entry steps, reset steps). Custom strings have no reset."""
    if entry in WIRINGS:
        w = WIRINGS[entry]
        return entry, parse_sequence(entry_for(w)), parse_sequence(reset_for(w))
    if entry in ("manual", "none"):
        return "manual", (), ()
    if any(c in entry for c in "|") or entry[:1].upper() in ("D", "R", "W"):
        return "custom", parse_sequence(entry), ()
    raise UsageError(
        f"unknown entry preset {entry!r}; use one of {', '.join([*WIRINGS, 'manual'])} "
        "or a custom sequence such as 'D1|R1|W0.002|R0|...'"
    )


def run_sequence(port: Any, steps: tuple[Step, ...], sleep: Callable[[float], None] = time.sleep) -> None:
    """Apply ``steps`` to ``port`` (anything with writable ``dtr`` and ``rts``, e.g. a pyserial Serial)."""
    for step in steps:
        if step.kind == "W":
            sleep(step.value)
            continue
        attr = "dtr" if step.kind == "D" else "rts"
        try:
            setattr(port, attr, bool(step.value))
        except (OSError, ValueError) as err:
            name = getattr(port, "port", None) or getattr(port, "name", "the port")
            raise FlashError(
                f"cannot drive {attr.upper()} on {name} ({err}); this port has no modem lines (a pty or a "
                "3-wire adapter): put the part in BSL mode by hand and use --entry manual"
            ) from None
        except Exception as err:  # pyserial raises SerialException (an OSError subclass in 3.5, not always)
            if type(err).__name__ != "SerialException":
                raise
            raise FlashError(
                f"cannot drive {attr.upper()} ({err}); use --entry manual and put the part in BSL mode "
                "by hand"
            ) from None
