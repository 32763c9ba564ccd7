"""Energy traces (DESIGN.md contract 6): readers, validation, writing.

A :class:`Trace` is piecewise constant: sample ``i`` holds from ``time_s[i]`` until ``time_s[i+1]`` (the last
one until ``end_s``). It carries either harvested *power* (W, at the converter input) or *irradiance*
(W/m², turned into power by a panel model).

Formats:

- CSV with a header naming the units: ``time_s,power_w`` (also ``power_mw``/``power_uw``),
  ``time_s,voltage_v,current_a`` (also ``current_ma``/``current_ua``, ``voltage_mv``), or
  ``time_s,irradiance_w_m2`` (also ``irradiance_uw_cm2``); ``time_ms``/``time_us`` are accepted.
  ``#`` starts a comment line.
- EnHANTs-style text: whitespace-separated ``seconds irradiance[µW/cm²] [date …]`` per line.
- Shepherd HDF5 recordings (``.h5``, the layout ``shepherd-data`` writes): power = voltage × current.

CSV and HDF5 are read as a stream of fixed-size chunks (:func:`open_trace`, :class:`TraceStream`; CSV through
pandas' C parser, HDF5 through h5py slices of whole HDF5 chunks), so memory stays bounded whatever the
length; :func:`load_trace` gathers the chunks into one in-memory :class:`Trace`. Times are float offsets from
the first sample (``Trace.start_s`` is the absolute start): times that a float64 cannot resolve to 1 ns
(Unix epoch) are parsed exactly, as integer and nanosecond parts, before the start is subtracted.

Errors name the file and the line (CSV/text) or the sample (HDF5) and say what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from batteryless.errors import TraceError
from batteryless.paths import atomic_path, check_input_file

# unit suffix → factor to SI, per quantity
TIME_UNITS = {"time_s": 1.0, "time_ms": 1e-3, "time_us": 1e-6}
POWER_UNITS = {"power_w": 1.0, "power_mw": 1e-3, "power_uw": 1e-6, "power_nw": 1e-9}
VOLTAGE_UNITS = {"voltage_v": 1.0, "voltage_mv": 1e-3}
CURRENT_UNITS = {"current_a": 1.0, "current_ma": 1e-3, "current_ua": 1e-6, "current_na": 1e-9}
IRRADIANCE_UNITS = {"irradiance_w_m2": 1.0, "irradiance_uw_cm2": 1e-2}
# magnitudes no energy harvester for an MCU produces: refuse them as unit mistakes
ABSURD = {"power": 10.0, "irradiance": 2000.0, "voltage": 1000.0, "current": 100.0}
UNIT_HINT = (
    "expected a header such as 'time_s,power_w', 'time_s,voltage_v,current_a' or 'time_s,irradiance_w_m2' "
    f"(time: {', '.join(TIME_UNITS)}; power: {', '.join(POWER_UNITS)}; voltage: {', '.join(VOLTAGE_UNITS)}; "
    f"current: {', '.join(CURRENT_UNITS)}; irradiance: {', '.join(IRRADIANCE_UNITS)})"
)


@dataclass(frozen=True)
class Trace:
    time_s: np.ndarray
    values: np.ndarray
    quantity: str  # "power" (W) | "irradiance" (W/m²)
    end_s: float
    source: str = ""
    name: str = ""
    start_s: float = 0.0  # absolute time of time_s == 0 in the file's clock (informational)

    def __len__(self) -> int:
        return len(self.time_s)

    @property
    def duration_s(self) -> float:
        return float(self.end_s - self.time_s[0])

    def power_w(self, panel=None) -> np.ndarray:
        """Harvested power per sample (W); irradiance traces need a panel (see ``emulate.power``)."""
        if self.quantity == "power":
            return self.values
        if panel is None:
            raise TraceError(f"{self.source}: an irradiance trace needs a panel model (--panel NAME)")
        return panel.power(self.values)

    def energy_j(self, panel=None) -> float:
        dt = np.diff(np.append(self.time_s, self.end_s))
        return float(np.dot(self.power_w(panel), dt))

    def resample(self, step_s: float) -> Trace:
        """Average over windows of ``step_s`` (energy-preserving for power traces)."""
        if step_s <= 0:
            raise TraceError(f"resample step must be > 0, is {step_s}")
        t0 = float(self.time_s[0])
        n = max(1, int(math.ceil((self.end_s - t0) / step_s - 1e-9)))
        edges = t0 + step_s * np.arange(n + 1)
        edges[-1] = self.end_s
        seg_edges = np.append(self.time_s, self.end_s)
        # integral of the piecewise-constant function at each edge
        cum = np.concatenate(([0.0], np.cumsum(self.values * np.diff(seg_edges))))
        j = np.clip(np.searchsorted(seg_edges, edges, "right") - 1, 0, len(self.values) - 1)
        at = cum[j] + self.values[j] * (edges - seg_edges[j])
        vals = np.diff(at) / np.diff(edges)
        return replace(
            self, time_s=edges[:-1].copy(), values=vals, source=f"{self.source} (resampled {step_s} s)"
        )


def _fail(src: str, line: int | None, msg: str) -> TraceError:
    return TraceError(f"{src}:{line}: {msg}" if line is not None else f"{src}: {msg}")


def _plausible(time_s: np.ndarray, cols: dict[str, np.ndarray]) -> bool:
    """All of :func:`validate`'s conditions from min/max reductions (NaN propagates through them) and one
    comparison of neighbours: two passes per column, no index arrays, for the common case of a good chunk."""
    for name, arr in (("time", time_s), *cols.items()):
        lo, hi = float(np.min(arr)), float(np.max(arr))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return False
        if name != "time" and lo < 0:
            return False
        lim = ABSURD.get(name)
        if lim is not None and hi > lim:
            return False
    return len(time_s) < 2 or bool(np.greater(time_s[1:], time_s[:-1]).all())


def validate(
    time_s: np.ndarray,
    cols: dict[str, np.ndarray],
    src: str,
    lines: np.ndarray | None = None,
    what: str = "line",
    say: Callable[[int, str], TraceError] | None = None,
) -> None:
    """Check finite, non-negative, sane magnitudes and strictly increasing time; errors name the line
    (``lines[idx]``), or what ``say(idx, message)`` makes of the index."""

    if say is None:

        def say(idx: int, msg: str) -> TraceError:
            if lines is None:
                return _fail(src, None, f"{what} {idx}: {msg}")
            return _fail(src, int(lines[idx]), msg)

    if len(time_s) == 0:
        raise _fail(src, None, "no samples (empty trace)")
    if _plausible(time_s, cols):
        return
    # something is wrong: find the first problem, in the order of the messages
    for name, arr in (("time", time_s), *cols.items()):
        bad = np.flatnonzero(~np.isfinite(arr))
        if len(bad):
            raise say(int(bad[0]), f"{name} is {arr[bad[0]]} (not a finite number)")
        neg = np.flatnonzero(arr < 0)
        if len(neg) and name != "time":
            raise say(int(neg[0]), f"{name} is negative ({arr[neg[0]]:g}); harvested quantities must be ≥ 0")
        lim = ABSURD.get(name)
        big = np.flatnonzero(arr > lim) if lim is not None else []
        if len(big):
            unit = {"power": "W", "irradiance": "W/m²", "voltage": "V", "current": "A"}[name]
            raise say(
                int(big[0]),
                f"{name} {arr[big[0]]:g} {unit} is implausibly large (> {lim:g} {unit}); check the units",
            )
    if len(time_s) > 1:
        d = np.diff(time_s)
        nm = np.flatnonzero(d <= 0)
        if len(nm):
            i = int(nm[0]) + 1
            raise say(i, f"time {time_s[i]:g} s does not increase (previous sample {time_s[i - 1]:g} s)")


# --- streaming -------------------------------------------------------------------------------------------
# Samples per chunk: a few arrays of this many float64 (8 MB each) bound the memory of reading and emulating
# a trace of any length.
CHUNK_SAMPLES = 1 << 20
# Times are kept as float64 offsets from the first sample. Refused: absolute times past the year 2286 (no
# recording has them; 1e30 used to hang the emulator) and traces longer than ~3 years (where a float offset
# would no longer resolve a microsecond).
MAX_ABS_TIME_S = 1e10
MAX_DURATION_S = 1e8
# From this magnitude on a float64 time no longer resolves 1 ns: such times (e.g. Unix epoch) are parsed
# exactly from their decimal text (integer and nanosecond parts) before the start is subtracted.
EXACT_FROM_S = 2.0**22


@dataclass(frozen=True)
class TraceChunk:
    """Consecutive samples of a trace: times are offsets from the trace start (s); the last sample holds
    until ``end_s`` (the next chunk's first time, or the trace end)."""

    time_s: np.ndarray
    values: np.ndarray
    end_s: float


@dataclass
class TraceStream:
    """A trace read in fixed-size chunks (:meth:`chunks`); :meth:`read` gathers them into a :class:`Trace`.

    ``samples_hint`` / ``duration_hint_s`` are known before reading (HDF5: exact; CSV: from the file size
    and its last line) for progress bars and plot resolution; ``samples`` and ``end_s`` are exact once the
    chunks have been consumed."""

    source: str
    name: str
    quantity: str
    start_s: float
    samples_hint: int
    duration_hint_s: float | None
    blocks: Any  # () -> iterator of validated (time offsets, values) blocks
    end_given_s: float | None = None
    step_hint_s: float | None = None
    samples: int = 0
    end_s: float | None = None

    @classmethod
    def from_trace(cls, trace: Trace) -> TraceStream:
        """An in-memory trace as a stream of chunks (views, no copies)."""

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for a in range(0, len(trace), CHUNK_SAMPLES):
                yield trace.time_s[a : a + CHUNK_SAMPLES], trace.values[a : a + CHUNK_SAMPLES]

        return cls(
            source=trace.source,
            name=trace.name,
            quantity=trace.quantity,
            start_s=trace.start_s,
            samples_hint=len(trace),
            duration_hint_s=trace.duration_s,
            blocks=blocks,
            end_given_s=float(trace.end_s),
        )

    def chunks(self) -> Iterator[TraceChunk]:
        carry_t, carry_v, last_dt = None, None, None
        self.samples = 0
        for t, v in self.blocks():
            if len(t) == 0:
                continue
            self.samples += len(t)
            # the previous block's last sample ends where this block starts: a one-sample chunk (no copy
            # of the block to put it in front)
            if carry_t is not None:
                last_dt = float(t[0]) - carry_t
                yield TraceChunk(np.array([carry_t]), np.array([carry_v]), float(t[0]))
            if len(t) > 1:
                last_dt = float(t[-1] - t[-2])
                yield TraceChunk(t[:-1], v[:-1], float(t[-1]))
            carry_t, carry_v = float(t[-1]), float(v[-1])
        if carry_t is None:
            raise _fail(self.source, None, "no samples (empty trace)")
        if self.end_given_s is not None:
            if not self.end_given_s > carry_t:
                raise _fail(
                    self.source,
                    None,
                    f"'# end_s={self.end_given_s + self.start_s:g}' must be after the last sample "
                    f"({carry_t + self.start_s:g} s)",
                )
            end = self.end_given_s
        else:
            step = self.step_hint_s if self.step_hint_s is not None else last_dt
            end = carry_t + (step if step is not None else 1.0)
        self.end_s = end
        yield TraceChunk(np.array([carry_t]), np.array([carry_v]), end)

    def read(self) -> Trace:
        ts, vs = [], []
        for c in self.chunks():
            ts.append(c.time_s)
            vs.append(c.values)
        assert self.end_s is not None
        return Trace(
            time_s=np.concatenate(ts),
            values=np.concatenate(vs),
            quantity=self.quantity,
            end_s=self.end_s,
            source=self.source,
            name=self.name,
            start_s=self.start_s,
        )


def _prefetch(blocks: Callable[[], Iterator[Any]], depth: int = 2) -> Iterator[Any]:
    """Run a block reader in a thread, ``depth`` blocks ahead: pandas' C parser releases the GIL while it
    tokenises and converts, so parsing the next chunk overlaps with emulating this one (2 cores). HDF5
    slices are read ahead the same way (decompression and calibration overlap the emulation: the 24 h @ 1 kHz
    day end to end in 5.3 s wall for 7.4 s CPU on an idle 2-core machine, 8.6-10.8 s in one thread at load
    ~2). Errors are re-raised in the consumer; closing the consumer stops the thread."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for b in blocks():
                if not put((None, b)):
                    return
        except BaseException as err:  # handed to the consumer, which raises it
            put((err, None))
            return
        put((None, done))

    th = threading.Thread(target=work, name="trace-reader", daemon=True)
    th.start()
    try:
        while True:
            err, item = q.get()
            if err is not None:
                raise err
            if item is done:
                return
            yield item
    finally:
        stop.set()
        th.join()


def _end(time_s: np.ndarray, step: float | None = None) -> float:
    if step is not None:
        return float(time_s[-1] + step)
    if len(time_s) > 1:
        return float(time_s[-1] + (time_s[-1] - time_s[-2]))
    return float(time_s[-1] + 1.0)


def _check_times(t_rel: np.ndarray, start_s: float, say: Callable[[int, str], TraceError]) -> None:
    """Absurd absolute times and durations, refused before anything downstream sees them. ``t_rel`` has
    passed :func:`validate` (finite, increasing): its ends bound it, and only a failure looks further."""
    if len(t_rel) == 0:
        return
    first, last = float(t_rel[0]) + start_s, float(t_rel[-1]) + start_s
    if max(abs(first), abs(last)) > MAX_ABS_TIME_S:
        t_abs = t_rel + start_s
        j = int(np.flatnonzero(~(np.abs(t_abs) <= MAX_ABS_TIME_S))[0])
        raise say(j, f"time {t_abs[j]:g} s is not a plausible time (|t| > {MAX_ABS_TIME_S:g} s)")
    if float(t_rel[-1]) > MAX_DURATION_S:
        j = int(np.flatnonzero(t_rel > MAX_DURATION_S)[0])
        raise say(
            j, f"time {t_rel[j]:g} s after the first sample: traces over {MAX_DURATION_S:g} s are refused"
        )


def _exact_offsets(text: np.ndarray, t0: Decimal) -> np.ndarray:
    """Offsets from ``t0`` of decimal time strings, exact to 1e-9 of the unit: integer and nanosecond parts
    are parsed separately (vectorised over the bytes), so a Unix timestamp keeps its nanoseconds. Strings
    that are not plain decimals (exponents, more than 18 integer digits) go through float64."""
    a = np.char.strip(np.asarray(text, dtype=np.bytes_))
    n, width = len(a), a.dtype.itemsize
    u = a.view(np.uint8).reshape(n, width).astype(np.int64)
    j = np.arange(width)
    neg = u[:, 0] == ord("-")
    first = (neg | (u[:, 0] == ord("+"))).astype(np.int64)
    length = (u != 0).sum(1)
    is_dot = u == ord(".")
    is_digit = (u >= ord("0")) & (u <= ord("9"))
    dpos = np.where(is_dot.any(1), is_dot.argmax(1), length)
    inside = (j >= first[:, None]) & (j < length[:, None])
    ok = ((is_digit | is_dot) | ~inside).all(1) & (is_dot.sum(1) <= 1) & (dpos - first <= 18)
    ok &= length > first
    d = np.where(is_digit, u - ord("0"), 0)
    iexp = dpos[:, None] - 1 - j
    imask = inside & (j < dpos[:, None])
    ipart = (d * np.where(imask, 10 ** np.clip(iexp, 0, 18), 0)).sum(1)
    fexp = 8 - (j - dpos[:, None] - 1)
    fmask = inside & (j > dpos[:, None]) & (fexp >= 0)
    fpart = (d * np.where(fmask, 10 ** np.clip(fexp, 0, 8), 0)).sum(1)
    sign = np.where(neg, -1, 1)
    i0 = int(t0)  # truncates toward zero, like the split of the text
    f0 = int((t0 - i0) * 1_000_000_000)
    out = ((ipart * sign - i0) * 1_000_000_000 + (fpart * sign - f0)) / 1e9
    if not ok.all():
        for r in np.flatnonzero(~ok):
            try:
                out[r] = float(Decimal(a[r].decode("ascii", "replace")) - t0)
            except (ArithmeticError, ValueError):
                out[r] = np.nan
    return out


def _csv_scan(p: Path, src: str, header: list[str], header_line: int, upto_row: int | None):
    """Walk the data lines (slowly, only to explain an error): the first structural problem (field count,
    a field that is not a number) at or before data row ``upto_row``, else that row's line number."""
    ncol = len(header)
    row = -1
    with p.open(encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            if lineno <= header_line:
                continue
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            row += 1
            fields = line.split(",")
            if len(fields) != ncol:
                raise _fail(
                    src,
                    lineno,
                    f"expected {ncol} comma-separated values ({', '.join(header)}), found {len(fields)}",
                )
            for c, fld in enumerate(fields):
                try:
                    float(fld)
                except ValueError:
                    raise _fail(src, lineno, f"{header[c]} is {fld.strip()!r}, not a number") from None
            if upto_row is not None and row >= upto_row:
                return lineno
    return None


def _csv_preamble(p: Path, src: str):
    """Comments, ``# end_s=``, the header and the first data line, read from the start of the file; the last
    data line and any ``# end_s=`` from its tail; an estimate of the number of samples."""
    end_text = None
    header: list[str] | None = None
    header_line = 0
    first_time: str | None = None
    sample_bytes, sample_lines = 0, 0
    with p.open("rb") as fb:
        head = fb.read(1 << 16)
        size = p.stat().st_size
        fb.seek(max(size - (1 << 14), 0))
        tail = fb.read()
    if head.startswith(b"\xef\xbb\xbf"):  # a byte-order mark (spreadsheet exports): not part of the header
        head = head[3:]
    try:
        head_text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not just a character cut at the end of the block
            raise TraceError(
                f"{src}: not a UTF-8 text file (binary? Shepherd recordings must end in .h5)"
            ) from None
        head_text = head[: err.start].decode("utf-8")
    lines = head_text.split("\n")
    if len(head) == 1 << 16:
        lines = lines[:-1]  # possibly cut
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith("# end_s=") and header is None:
            end_text = (lineno, line[len("# end_s=") :].strip())
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if header is None:
            header = [h.strip().lower() for h in line.split(",")]
            header_line = lineno
            continue
        if first_time is None:
            first_time = line.split(",", 1)[0].strip()
            first_line = lineno
        sample_bytes += len(raw) + 1
        sample_lines += 1
    last_time = None
    for raw in reversed(tail.decode("utf-8", "replace").split("\n")):
        line = raw.strip()
        if line.startswith("# end_s="):
            end_text = (None, line[len("# end_s=") :].strip())
            continue
        line = line.split("#", 1)[0].strip()
        if line and last_time is None:
            last_time = line.split(",", 1)[0].strip()  # the header, if there are no samples: no hint
    if header is None:
        raise _fail(src, None, "empty file: no header and no samples; " + UNIT_HINT)
    hint = int(size / (sample_bytes / sample_lines)) if sample_lines else 0
    return header, header_line, end_text, (first_time, first_line) if first_time else None, last_time, hint


def _csv_stream(p: Path) -> TraceStream:
    src = str(p)
    header, header_line, end_text, first, last_time, hint = _csv_preamble(p, src)
    tcol = [h for h in header if h in TIME_UNITS]
    if not tcol or header[0] not in TIME_UNITS:
        raise _fail(
            src, header_line, f"first column must be time with a unit, got {header[0]!r}; " + UNIT_HINT
        )
    names = header[1:]
    unknown = [
        h for h in names if h not in {**POWER_UNITS, **VOLTAGE_UNITS, **CURRENT_UNITS, **IRRADIANCE_UNITS}
    ]
    if unknown:
        raise _fail(src, header_line, f"unknown column or unit {unknown[0]!r}; " + UNIT_HINT)
    kinds = {
        "power": [h for h in names if h in POWER_UNITS],
        "voltage": [h for h in names if h in VOLTAGE_UNITS],
        "current": [h for h in names if h in CURRENT_UNITS],
        "irradiance": [h for h in names if h in IRRADIANCE_UNITS],
    }
    shape = tuple(len(v) for v in kinds.values())
    if shape not in ((1, 0, 0, 0), (0, 1, 1, 0), (0, 0, 0, 1)):
        raise _fail(src, header_line, f"columns {names} do not form one quantity; " + UNIT_HINT)
    ncol = len(header)
    tunit = TIME_UNITS[header[0]]
    if first is None:
        # nothing in the first block: maybe a malformed line, else truly empty
        _csv_scan(p, src, header, header_line, None)
        raise _fail(src, None, "no samples after the header (empty trace)")
    try:
        t0 = Decimal(first[0])
        if not t0.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        _csv_scan(p, src, header, header_line, 0)
        raise _fail(src, first[1], f"{header[0]} is {first[0]!r}, not a finite number") from None
    if abs(t0) * Decimal(tunit) > Decimal(MAX_ABS_TIME_S):
        raise _fail(
            src,
            first[1],
            f"time {float(t0) * tunit:g} s is not a plausible time (|t| > {MAX_ABS_TIME_S:g} s)",
        )
    exact = abs(float(t0)) * tunit >= EXACT_FROM_S
    start_s = float(t0) * tunit
    end_given = None
    if end_text is not None:
        try:
            end_dec = Decimal(end_text[1])
            if not end_dec.is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            raise _fail(src, end_text[0], "'# end_s=' must be followed by a number of seconds") from None
        end_given = float(end_dec - t0 * Decimal(tunit))
    duration_hint = None
    if last_time is not None:
        try:
            duration_hint = max(float(Decimal(last_time) - t0) * tunit, 0.0)
        except (InvalidOperation, ValueError):
            duration_hint = None
    if end_given is not None:
        duration_hint = end_given

    if shape == (1, 0, 0, 0):
        quantity, factors = "power", {"power": POWER_UNITS[kinds["power"][0]]}
    elif shape == (0, 0, 0, 1):
        quantity, factors = "irradiance", {"irradiance": IRRADIANCE_UNITS[kinds["irradiance"][0]]}
    else:
        quantity = "power"
        factors = {
            "voltage": VOLTAGE_UNITS[kinds["voltage"][0]],
            "current": CURRENT_UNITS[kinds["current"][0]],
        }
    col_of = {q: 1 + names.index(kinds[q][0]) for q in factors}

    def locate(row: int) -> int | None:
        return _csv_scan(p, src, header, header_line, row)

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import pandas as pd

        dtypes = {c: np.float64 for c in range(ncol)}
        if exact:
            dtypes[0] = str
        row0 = 0
        prev_last = None
        try:
            reader = pd.read_csv(
                p,
                comment="#",
                skiprows=header_line,
                header=None,
                dtype=dtypes,
                chunksize=CHUNK_SAMPLES,
                skipinitialspace=True,
                engine="c",
                encoding="utf-8",
                na_filter=not exact,
            )
            for df in reader:
                if df.shape[1] != ncol:
                    _csv_scan(p, src, header, header_line, None)
                    raise _fail(src, None, f"expected {ncol} comma-separated values per line")
                if exact:
                    t_rel = _exact_offsets(df[0].to_numpy(), t0) * tunit
                    t_abs = t_rel + start_s  # for messages only
                else:
                    t_abs = df[0].to_numpy(dtype=np.float64) * tunit
                    t_rel = t_abs - start_s
                cols = {q: df[col_of[q]].to_numpy(dtype=np.float64) * f for q, f in factors.items()}
                del df

                def say(idx: int, msg: str, _row0=row0) -> TraceError:
                    return _fail(src, locate(_row0 + idx), msg)

                if prev_last is not None and len(t_rel) and not t_rel[0] > prev_last:
                    raise say(
                        0,
                        f"time {t_abs[0]:g} s does not increase (previous sample {prev_last + start_s:g} s)",
                    )
                validate(t_rel, cols, src, say=say)
                _check_times(t_rel, start_s, say)
                if quantity == "power" and "voltage" in cols:
                    vals = cols["voltage"] * cols["current"]
                    validate(t_rel, {"power": vals}, src, say=say)
                else:
                    vals = cols[quantity]
                row0 += len(t_rel)
                if len(t_rel):
                    prev_last = float(t_rel[-1])
                yield t_rel, vals
        except TraceError:
            raise
        except UnicodeDecodeError:
            raise TraceError(
                f"{src}: not a UTF-8 text file (binary? Shepherd recordings must end in .h5)"
            ) from None
        except (ValueError, TypeError, pd.errors.ParserError, OverflowError) as err:
            _csv_scan(p, src, header, header_line, None)
            raise _fail(src, None, f"could not parse the samples ({err})") from None

    return TraceStream(
        source=src,
        name=p.stem,
        quantity=quantity,
        start_s=start_s,
        samples_hint=hint,
        duration_hint_s=duration_hint,
        blocks=lambda: _prefetch(blocks),
        end_given_s=end_given,
    )


def read_csv(path: str | Path) -> Trace:
    p = Path(path)
    check_input_file(p, "trace file", TraceError)
    return _csv_stream(p).read()


def read_enhants(path: str | Path) -> Trace:
    """EnHANTs-style text, whitespace-separated: ``seconds irradiance[µW/cm²] [date/time fields …]``."""
    p = Path(path)
    src = str(p)
    check_input_file(p, "trace file", TraceError)
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise TraceError(f"{src}: not a text file") from None
    ts, gs, lines = [], [], []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 2:
            raise _fail(src, lineno, "expected 'seconds irradiance_uW_per_cm2 [date …]'")
        try:
            ts.append(float(fields[0]))
            gs.append(float(fields[1]))
        except ValueError:
            raise _fail(
                src, lineno, f"{fields[0]!r} {fields[1]!r} are not two numbers (seconds, µW/cm²)"
            ) from None
        lines.append(lineno)
    if not ts:
        raise _fail(src, None, "no samples (empty trace)")
    t = np.asarray(ts)
    g = np.asarray(gs) * IRRADIANCE_UNITS["irradiance_uw_cm2"]
    la = np.asarray(lines)
    validate(t, {"irradiance": g}, src, la)
    _check_times(t - t[0], float(t[0]), lambda idx, msg: _fail(src, int(la[idx]), msg))
    return Trace(
        time_s=t - t[0],
        values=g,
        quantity="irradiance",
        end_s=_end(t) - t[0],
        source=src,
        name=p.stem,
        start_s=float(t[0]),
    )


SHEPHERD_DATASETS = ("time", "voltage", "current")
MAX_HDF5_CHUNK_BYTES = 64 << 20  # one HDF5 chunk is decompressed whole: its size bounds the memory too


def _shepherd_stream(p: Path) -> TraceStream:
    """A Shepherd HDF5 recording (IV samples: ``data/time`` in ns, ``data/voltage``, ``data/current`` as
    calibrated integers, value × gain + offset), read with h5py in slices of whole HDF5 chunks.

    Nothing in the file's metadata sizes an allocation before it is checked against the storage the file
    really holds (a 150 KB file claiming 125 M samples is refused, not allocated)."""
    src = str(p)
    try:
        import h5py
    except ImportError:
        raise TraceError(
            "reading Shepherd HDF5 needs h5py: pip install h5py (comes with shepherd-data)"
        ) from None
    size = p.stat().st_size

    def bad(msg: str) -> TraceError:
        return TraceError(f"{src}: not a readable Shepherd HDF5 recording ({msg})")

    try:
        f = h5py.File(p, "r")
    except Exception as e:  # h5py raises OSError and others for non-HDF5 files
        raise bad(f"{type(e).__name__}: {e}") from None
    try:
        grp = f.get("data")
        if not isinstance(grp, h5py.Group) or any(
            not isinstance(grp.get(n), h5py.Dataset) for n in SHEPHERD_DATASETS
        ):
            raise bad("expected datasets data/time, data/voltage and data/current")
        window = grp.attrs.get("window_samples", 0)
        try:
            window = int(window)
        except (TypeError, ValueError):
            raise bad(f"data has window_samples {window!r}") from None
        if window > 0:
            raise bad(
                f"it holds IV curves (datatype {grp.attrs.get('datatype')!r}, {window} samples per curve), "
                "not IV samples over time; record with datatype ivsample"
            )
        ds = {n: grp[n] for n in SHEPHERD_DATASETS}
        cal = {}
        for n, d in ds.items():
            if d.ndim != 1 or d.dtype.kind not in "iuf":
                raise bad(f"data/{n} is {d.shape} {d.dtype}, expected one column of numbers")
            gain, offset = d.attrs.get("gain", 1e-9 if n == "time" else 1.0), d.attrs.get("offset", 0.0)
            try:
                gain, offset = float(gain), float(offset)
            except (TypeError, ValueError):
                raise bad(f"data/{n} has a non-numeric gain/offset") from None
            if not (math.isfinite(gain) and math.isfinite(offset) and gain > 0):
                raise bad(f"data/{n} has gain {gain} / offset {offset}")
            cal[n] = (gain, offset)
        n_samples = len(ds["time"])
        if any(len(d) != n_samples for d in ds.values()):
            raise bad(
                "data/time, data/voltage and data/current differ in length: "
                + ", ".join(f"{n} {len(d)}" for n, d in ds.items())
            )
        if n_samples == 0:
            raise TraceError(f"{src}: the recording holds no samples")
        for n, d in ds.items():
            if d.chunks is not None and d.chunks[0] * d.dtype.itemsize > MAX_HDF5_CHUNK_BYTES:
                raise bad(
                    f"data/{n} is stored in chunks of {d.chunks[0]:,} samples "
                    f"({d.chunks[0] * d.dtype.itemsize:,} bytes; HDF5 decompresses a whole chunk to "
                    f"read any of it): over {MAX_HDF5_CHUNK_BYTES:,} bytes is refused (Shepherd: 10,000)"
                )
            stored = d.id.get_storage_size()
            if d.chunks is not None:
                n_chunks = d.id.get_num_chunks()
                covered = n_chunks * d.chunks[0]
            else:
                covered = stored // d.dtype.itemsize
            if covered < n_samples or stored > size:
                raise TraceError(
                    f"{src}: data/{n} claims {n_samples:,} samples but the file ({size:,} bytes) holds "
                    f"data for only {min(covered, n_samples):,}: truncated or corrupt recording"
                )
        tg, to = cal["time"]
        t0_raw = ds["time"][0]
        t_last_raw = ds["time"][-1]
    except TraceError:
        f.close()
        raise
    except Exception as e:
        f.close()
        raise bad(f"{type(e).__name__}: {e}") from None
    f.close()
    integer_time = np.issubdtype(np.asarray(t0_raw).dtype, np.integer)
    start_s = float(t0_raw) * tg + to
    ns_ticks = integer_time and abs(tg - 1e-9) < 1e-21
    chunk = CHUNK_SAMPLES
    cs = ds["time"].chunks
    if cs:
        chunk = max(cs[0], (CHUNK_SAMPLES // cs[0]) * cs[0])  # whole HDF5 chunks per slice

    def rel_time(raw: np.ndarray) -> np.ndarray:
        if integer_time:
            # exact integer ticks from the start (ns times of any real epoch fit an int64)
            r = raw.view(np.int64) if raw.dtype == np.uint64 else raw.astype(np.int64, copy=False)
            d = np.subtract(r, np.int64(t0_raw))
            return np.divide(d, 1e9, out=d.view(np.float64)) if ns_ticks else d * tg
        return (raw.astype(np.float64) - float(t0_raw)) * tg

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        prev_last = None
        try:
            with h5py.File(p, "r") as fh:
                g = fh["data"]
                for a in range(0, n_samples, chunk):
                    b = min(a + chunk, n_samples)
                    t_rel = rel_time(g["time"][a:b])
                    v = np.multiply(g["voltage"][a:b], cal["voltage"][0], dtype=np.float64)
                    if cal["voltage"][1]:
                        v += cal["voltage"][1]
                    i = np.multiply(g["current"][a:b], cal["current"][0], dtype=np.float64)
                    if cal["current"][1]:
                        i += cal["current"][1]
                    # calibrated currents dip a few nA below 0 A: clip the noise, refuse real negatives
                    if i.min() < 0:
                        i[(i < 0) & (i > -1e-6)] = 0.0
                    if v.min() < 0:
                        v[(v < 0) & (v > -1e-3)] = 0.0

                    def say(idx: int, msg: str, _a=a) -> TraceError:
                        return _fail(src, None, f"sample {_a + idx}: {msg}")

                    if prev_last is not None and not t_rel[0] > prev_last:
                        raise say(
                            0,
                            f"time {t_rel[0] + start_s:g} s does not increase "
                            f"(previous sample {prev_last + start_s:g} s)",
                        )
                    validate(t_rel, {"voltage": v, "current": i}, src, say=say)
                    _check_times(t_rel, start_s, say)
                    v *= i
                    prev_last = float(t_rel[-1])
                    yield t_rel, v
        except TraceError:
            raise
        except Exception as e:  # h5py raises many types for broken files
            raise bad(f"{type(e).__name__}: {e}") from None

    # a sample holds for the recording's sampling step (from its first samples; exact for Shepherd's grid)
    with h5py.File(p, "r") as fh:
        head = rel_time(fh["data"]["time"][: min(n_samples, 1025)])
    step = float(np.median(np.diff(head))) if len(head) > 1 else 1e-5
    return TraceStream(
        source=src,
        name=p.stem,
        quantity="power",
        start_s=start_s,
        samples_hint=n_samples,
        duration_hint_s=float(rel_time(np.asarray([t_last_raw]))[0]) + step,
        blocks=lambda: _prefetch(blocks),
        step_hint_s=step if step > 0 else None,
    )


def read_shepherd(path: str | Path, resample_s: float | None = None) -> Trace:
    """A Shepherd HDF5 recording (harvester or emulator data in IV samples), power = voltage × current."""
    p = Path(path)
    check_input_file(p, "trace file", TraceError)
    tr = _shepherd_stream(p).read()
    return tr.resample(resample_s) if resample_s else tr


BUNDLED_DIR = "traces"


def bundled_traces() -> list[str]:
    d = Path(str(resources.files("batteryless") / "data" / BUNDLED_DIR))
    return sorted(p.stem for p in d.glob("*.csv"))


def trace_path(path_or_name: str | Path) -> Path:
    """A trace file's path, or a bundled trace's by name; checked to exist and be readable."""
    p = Path(path_or_name)
    if not p.exists() and str(path_or_name) in bundled_traces():
        p = Path(str(resources.files("batteryless") / "data" / BUNDLED_DIR / f"{path_or_name}.csv"))
    if not p.exists():
        raise TraceError(f"{p}: trace file not found (bundled traces: {', '.join(bundled_traces())})")
    check_input_file(p, "trace file", TraceError)
    return p


def open_trace(path_or_name: str | Path, fmt: str | None = None) -> TraceStream:
    """Open a trace file, or a bundled trace by name (see :func:`bundled_traces`), for reading in chunks.

    ``fmt``: ``csv`` | ``enhants`` | ``shepherd``; by default from the suffix (.csv, .txt/.dat, .h5). The
    header (CSV) or metadata (HDF5) is checked here; the samples as the chunks are read."""
    p = trace_path(path_or_name)
    fmt = fmt or {
        ".csv": "csv",
        ".txt": "enhants",
        ".dat": "enhants",
        ".h5": "shepherd",
        ".hdf5": "shepherd",
    }.get(p.suffix.lower())
    if fmt == "csv":
        return _csv_stream(p)
    if fmt == "shepherd":
        return _shepherd_stream(p)
    if fmt == "enhants":
        return TraceStream.from_trace(read_enhants(p))
    raise TraceError(
        f"{p}: unknown trace format (use .csv, .txt for EnHANTs text, .h5 for Shepherd, or --format)"
    )


def resampled(stream: TraceStream, step_s: float) -> TraceStream:
    """``stream`` averaged over windows of ``step_s`` from its first sample, chunk by chunk (the windows of
    :meth:`Trace.resample`, energy-preserving: the last window runs to the trace end and absorbs a sliver
    shorter than 1e-9 of a step). Memory: one chunk, whatever the length."""
    if not (math.isfinite(step_s) and step_s > 0):
        raise TraceError(f"resample step must be > 0, is {step_s}")

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        t0: float | None = None
        k = 0  # windows closed so far: the open one starts at edge k
        acc = 0.0  # energy of the open window so far
        held: tuple[float, float] | None = None  # (start, energy) of the last closed window, not yet out
        for c in stream.chunks():
            if t0 is None:
                t0 = float(c.time_s[0])
            seg = np.append(c.time_s, c.end_s)
            cum = np.concatenate(([0.0], np.cumsum(c.values * np.diff(seg))))
            top = int(math.floor((c.end_s - t0) / step_s)) + 1
            ms = np.arange(k + 1, max(top, k + 1) + 1)
            edges = t0 + step_s * ms
            keep = edges <= c.end_s
            ms, edges = ms[keep], edges[keep]
            if not len(edges):
                acc += float(cum[-1])
                continue
            j = np.clip(np.searchsorted(seg, edges, "right") - 1, 0, len(c.values) - 1)
            at = cum[j] + c.values[j] * (edges - seg[j])
            energy = np.diff(at, prepend=0.0)
            energy[0] += acc
            starts = t0 + step_s * (ms - 1)
            if held is not None:
                starts = np.concatenate(((held[0],), starts))
                energy = np.concatenate(((held[1],), energy))
            held = (float(starts[-1]), float(energy[-1]))
            acc = float(cum[-1] - at[-1])
            k = int(ms[-1])
            if len(starts) > 1:
                yield starts[:-1], energy[:-1] / step_s
        end = stream.end_s
        assert t0 is not None and end is not None
        n = max(1, int(math.ceil((end - t0) / step_s - 1e-9)))
        if held is not None and n <= k:  # the last closed window runs to the end
            yield np.array([held[0]]), np.array([(held[1] + acc) / (end - held[0])])
        else:
            if held is not None:
                yield np.array([held[0]]), np.array([held[1] / step_s])
            start = t0 + step_s * k
            yield np.array([start]), np.array([acc / (end - start)])
        out.end_given_s = end

    hint = stream.duration_hint_s
    out = TraceStream(
        source=f"{stream.source} (resampled {step_s} s)",
        name=stream.name,
        quantity=stream.quantity,
        start_s=stream.start_s,
        samples_hint=int(hint / step_s) + 1 if hint else 0,
        duration_hint_s=hint,
        blocks=blocks,
    )
    return out


def load_trace(path_or_name: str | Path, fmt: str | None = None, resample_s: float | None = None) -> Trace:
    """Read a whole trace into memory (see :func:`open_trace`), optionally resampled."""
    st = open_trace(path_or_name, fmt)
    return (resampled(st, resample_s) if resample_s else st).read()


def write_csv(trace: Trace, path: str | Path, comment: str = "") -> Path:
    """Write ``time_s,power_w`` or ``time_s,irradiance_w_m2`` atomically (temp file + rename)."""
    p = Path(path)
    col = "power_w" if trace.quantity == "power" else "irradiance_w_m2"
    head = "".join(f"# {line}\n" for line in comment.splitlines() if line) + f"# end_s={trace.end_s:.9g}\n"
    with atomic_path(p) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(head + f"time_s,{col}\n")
        # str.format over chunks: ~10x faster than np.savetxt, memory bounded by the chunk
        row = "{:.9g},{:.6g}\n".format
        for a in range(0, len(trace), CHUNK_SAMPLES):
            b = a + CHUNK_SAMPLES
            f.write("".join(map(row, trace.time_s[a:b].tolist(), trace.values[a:b].tolist())))
    return p
