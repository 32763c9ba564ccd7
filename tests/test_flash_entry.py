"""Entry and reset sequences on a fake port that records line changes, checked against the BSL entry rule
of REFERENCE.md §3 (with RST low, TEST rises twice, is high when RST rises, then goes low)."""

from __future__ import annotations

import os

import pytest
import serial

from batteryless.errors import FlashError, UsageError
from batteryless.flash import entry as E


class LinePort:
    def __init__(self) -> None:
        self.events: list[tuple[str, bool]] = []
        self._dtr = self._rts = False

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, v: bool) -> None:
        self._dtr = v
        self.events.append(("DTR", v))

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, v: bool) -> None:
        self._rts = v
        self.events.append(("RTS", v))


def pin_trace(events: list[tuple[str, bool]], rst_line: str, inverted: bool) -> list[tuple[int, int]]:
    """(RST, TEST) pin levels after each line change. Non-inverted: asserted line -> pin low."""
    rst = test = 1
    out = []
    for line, asserted in events:
        level = int(asserted) if inverted else int(not asserted)
        if line == rst_line:
            rst = level
        else:
            test = level
        out.append((rst, test))
    return out


def follows_entry_rule(levels: list[tuple[int, int]]) -> bool:
    # find the RST-low window
    try:
        start = next(i for i, (r, _) in enumerate(levels) if r == 0)
        end = next(i for i in range(start, len(levels)) if levels[i][0] == 1)
    except StopIteration:
        return False
    window = [t for _, t in levels[start:end]]
    rises = sum(1 for a, b in zip(window, window[1:], strict=False) if a == 0 and b == 1)
    if rises != 2 or levels[end][1] != 1:
        return False
    return any(t == 0 for _, t in levels[end + 1 :]) and levels[-1][1] == 0


@pytest.mark.parametrize(
    "preset,rst_line,inverted",
    [
        ("bsl-scripter", "DTR", False),
        ("bsl-scripter-inverted", "DTR", True),
        ("swapped", "RTS", False),
        ("swapped-inverted", "RTS", True),
    ],
)
def test_presets_follow_the_entry_rule(preset: str, rst_line: str, inverted: bool) -> None:
    name, steps, reset = E.resolve(preset)
    port = LinePort()
    waits: list[float] = []
    E.run_sequence(port, steps, sleep=waits.append)
    assert follows_entry_rule(pin_trace(port.events, rst_line, inverted))
    assert waits[-1] >= 0.05  # time for the BSL to start before the first byte
    # The wrong wiring interpretation must not pass: the checker is able to fail.
    assert not follows_entry_rule(pin_trace(port.events, "RTS" if rst_line == "DTR" else "DTR", inverted))
    # reset: RST pulses low then high, TEST low throughout
    port2 = LinePort()
    E.run_sequence(port2, reset, sleep=lambda s: None)
    levels = pin_trace(port2.events, rst_line, inverted)
    assert any(r == 0 for r, _ in levels) and levels[-1][0] == 1
    assert all(t == 0 for _, t in levels)


def test_bsl_scripter_exact_lines() -> None:
    # DTR->RST, RTS->TEST, asserted = low: RST low/TEST low, TEST high, low, high, RST high, TEST low
    _, steps, _ = E.resolve("bsl-scripter")
    port = LinePort()
    E.run_sequence(port, steps, sleep=lambda s: None)
    assert port.events == [
        ("DTR", True), ("RTS", True), ("RTS", False), ("RTS", True), ("RTS", False), ("DTR", False),
        ("RTS", True),
    ]  # fmt: skip


def test_custom_sequence_and_errors() -> None:
    name, steps, reset = E.resolve("D1|W0.1|d0|R1")
    assert name == "custom" and reset == ()
    assert E.format_sequence(steps) == "D1|W0.1|D0|R1"
    port = LinePort()
    waits: list[float] = []
    E.run_sequence(port, steps, sleep=waits.append)
    assert port.events == [("DTR", True), ("DTR", False), ("RTS", True)] and waits == [0.1]
    for bad in ("D2", "X1", "W-1", "Wabc", "W99"):
        with pytest.raises(UsageError, match="step 1"):
            E.parse_sequence(bad)
    with pytest.raises(UsageError, match="unknown entry preset"):
        E.resolve("esp32")
    assert E.resolve("manual") == ("manual", (), ())


def test_pty_lines_fail_with_advice() -> None:
    master, slave = os.openpty()
    try:
        port = serial.Serial(os.ttyname(slave), 9600)
        with pytest.raises(FlashError, match="--entry manual"):
            E.run_sequence(port, E.resolve("bsl-scripter")[1], sleep=lambda s: None)
        port.close()
    finally:
        os.close(master)
        os.close(slave)
