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
- Shepherd HDF5 recordings (``.h5``), read through the ``shepherd-data`` package: power = voltage × current.

Errors name the file and the line (CSV/text) or the sample (HDF5) and say what is wrong.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from batteryless.errors import TraceError

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


def _umask_chmod(path: str) -> None:
    """mkstemp creates 0600 files; give the final file the permissions a plain open() would."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _fail(src: str, line: int | None, msg: str) -> TraceError:
    return TraceError(f"{src}:{line}: {msg}" if line is not None else f"{src}: {msg}")


def validate(
    time_s: np.ndarray,
    cols: dict[str, np.ndarray],
    src: str,
    lines: np.ndarray | None = None,
    what: str = "line",
) -> None:
    """Check finite, non-negative, sane magnitudes and strictly increasing time; errors name the line."""

    def where(idx: int) -> int | None:
        return int(lines[idx]) if lines is not None else None

    def say(idx: int, msg: str) -> TraceError:
        if lines is None:
            return _fail(src, None, f"{what} {idx}: {msg}")
        return _fail(src, where(idx), msg)

    if len(time_s) == 0:
        raise _fail(src, None, "no samples (empty trace)")
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


def _end(time_s: np.ndarray, step: float | None = None) -> float:
    if step is not None:
        return float(time_s[-1] + step)
    if len(time_s) > 1:
        return float(time_s[-1] + (time_s[-1] - time_s[-2]))
    return float(time_s[-1] + 1.0)


def _parse_rows(rows: list[str], ncol: int) -> np.ndarray | None:
    """All data lines at once (numpy converts the strings); None if any line is malformed."""
    commas = ncol - 1
    if not all(r.count(",") == commas for r in rows):
        return None
    flat = ",".join(rows).split(",")
    try:
        return np.asarray(flat, dtype=np.float64).reshape(len(rows), ncol)
    except ValueError:
        return None


def read_csv(path: str | Path) -> Trace:
    p = Path(path)
    src = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(f"{src}: no such trace file") from None
    except UnicodeDecodeError:
        raise TraceError(
            f"{src}: not a UTF-8 text file (binary? Shepherd recordings must end in .h5)"
        ) from None
    header: list[str] | None = None
    header_line = 0
    rows: list[str] = []
    line_nos: list[int] = []
    end_s: float | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("# end_s="):
            try:
                end_s = float(line[len("# end_s=") :])
            except ValueError:
                raise _fail(src, lineno, "'# end_s=' must be followed by a number of seconds") from None
        if not line or line.startswith("#"):
            continue
        if header is None:
            header = [h.strip().lower() for h in line.split(",")]
            header_line = lineno
            continue
        rows.append(line)
        line_nos.append(lineno)
    if header is None:
        raise _fail(src, None, "empty file: no header and no samples; " + UNIT_HINT)
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
    if not rows:
        raise _fail(src, None, "no samples after the header (empty trace)")
    ncol = len(header)
    arr = _parse_rows(rows, ncol)
    if arr is None:  # something is malformed: find the first bad line, for the message
        for fields_text, lineno in zip(rows, line_nos, strict=True):
            fields = fields_text.split(",")
            if len(fields) != ncol:
                raise _fail(
                    src,
                    lineno,
                    f"expected {ncol} comma-separated values ({', '.join(header)}), found {len(fields)}",
                )
            for c, f in enumerate(fields):
                try:
                    float(f)
                except ValueError:
                    raise _fail(src, lineno, f"{header[c]} is {f.strip()!r}, not a number") from None
        raise _fail(src, None, "could not parse the samples")  # pragma: no cover - the loop finds it
    lines = np.asarray(line_nos)
    t = arr[:, 0] * TIME_UNITS[header[0]]
    col = {h: arr[:, i + 1] for i, h in enumerate(names)}
    if shape == (1, 0, 0, 0):
        h = kinds["power"][0]
        vals = col[h] * POWER_UNITS[h]
        validate(t, {"power": vals}, src, lines)
        quantity = "power"
    elif shape == (0, 0, 0, 1):
        h = kinds["irradiance"][0]
        vals = col[h] * IRRADIANCE_UNITS[h]
        validate(t, {"irradiance": vals}, src, lines)
        quantity = "irradiance"
    else:
        hv, hc = kinds["voltage"][0], kinds["current"][0]
        v, i = col[hv] * VOLTAGE_UNITS[hv], col[hc] * CURRENT_UNITS[hc]
        validate(t, {"voltage": v, "current": i}, src, lines)
        vals = v * i
        validate(t, {"power": vals}, src, lines)
        quantity = "power"
    if end_s is not None and not end_s > t[-1]:
        raise _fail(src, None, f"'# end_s={end_s:g}' must be after the last sample ({t[-1]:g} s)")
    return Trace(time_s=t, values=vals, quantity=quantity, end_s=end_s or _end(t), source=src, name=p.stem)


def read_enhants(path: str | Path) -> Trace:
    """EnHANTs-style text, whitespace-separated: ``seconds irradiance[µW/cm²] [date/time fields …]``."""
    p = Path(path)
    src = str(p)
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise TraceError(f"{src}: no such trace file") from None
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
    validate(t, {"irradiance": g}, src, np.asarray(lines))
    return Trace(time_s=t, values=g, quantity="irradiance", end_s=_end(t), source=src, name=p.stem)


def read_shepherd(path: str | Path, resample_s: float | None = None) -> Trace:
    """A Shepherd HDF5 recording (harvester or emulator data in IV samples) through ``shepherd-data``."""
    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise TraceError(f"{src}: no such trace file")
    try:
        import logging

        from shepherd_data import Reader
    except ImportError:
        raise TraceError(
            "reading Shepherd HDF5 needs the 'shepherd-data' package: pip install shepherd-data"
        ) from None
    logging.getLogger("SHPCore").setLevel(logging.ERROR)
    try:
        with Reader(p, verbose=False) as r:
            parts = list(r.read())
    except TraceError:
        raise
    except Exception as e:  # the reader raises many types for broken files
        raise TraceError(f"{src}: not a readable Shepherd HDF5 recording ({type(e).__name__}: {e})") from None
    if not parts:
        raise TraceError(f"{src}: the recording holds no samples")
    t = np.concatenate([c[0] for c in parts])
    v = np.concatenate([c[1] for c in parts])
    i = np.concatenate([c[2] for c in parts])
    # Shepherd's calibrated currents can dip a few nA below zero around 0 A: clip noise, refuse real negatives
    i = np.where((i < 0) & (i > -1e-6), 0.0, i)
    v = np.where((v < 0) & (v > -1e-3), 0.0, v)
    validate(t, {"voltage": v, "current": i}, src, what="sample")
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1e-5
    tr = Trace(time_s=t, values=v * i, quantity="power", end_s=_end(t, step), source=src, name=p.stem)
    return tr.resample(resample_s) if resample_s else tr


BUNDLED_DIR = "traces"


def bundled_traces() -> list[str]:
    d = Path(str(resources.files("batteryless") / "data" / BUNDLED_DIR))
    return sorted(p.stem for p in d.glob("*.csv"))


def load_trace(path_or_name: str | Path, fmt: str | None = None, resample_s: float | None = None) -> Trace:
    """Read a trace file, or a bundled trace by name (see :func:`bundled_traces`).

    ``fmt``: ``csv`` | ``enhants`` | ``shepherd``; by default from the suffix (.csv, .txt/.dat, .h5)."""
    p = Path(path_or_name)
    if not p.exists() and str(path_or_name) in bundled_traces():
        p = Path(str(resources.files("batteryless") / "data" / BUNDLED_DIR / f"{path_or_name}.csv"))
    if not p.exists():
        raise TraceError(f"{p}: no such trace file (bundled traces: {', '.join(bundled_traces())})")
    fmt = fmt or {
        ".csv": "csv",
        ".txt": "enhants",
        ".dat": "enhants",
        ".h5": "shepherd",
        ".hdf5": "shepherd",
    }.get(p.suffix.lower())
    if fmt == "csv":
        tr = read_csv(p)
    elif fmt == "enhants":
        tr = read_enhants(p)
    elif fmt == "shepherd":
        return read_shepherd(p, resample_s)
    else:
        raise TraceError(
            f"{p}: unknown trace format (use .csv, .txt for EnHANTs text, .h5 for Shepherd, or --format)"
        )
    return tr.resample(resample_s) if resample_s else tr


def write_csv(trace: Trace, path: str | Path, comment: str = "") -> Path:
    """Write ``time_s,power_w`` or ``time_s,irradiance_w_m2`` atomically (temp file + rename)."""
    p = Path(path)
    col = "power_w" if trace.quantity == "power" else "irradiance_w_m2"
    head = "".join(f"# {line}\n" for line in comment.splitlines() if line) + f"# end_s={trace.end_s:.9g}\n"
    body = np.column_stack((trace.time_s, trace.values))
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(head + f"time_s,{col}\n")
            np.savetxt(f, body, fmt=["%.9g", "%.6g"], delimiter=",")
        _umask_chmod(tmp)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
