"""Chunked emulation equals the in-memory run: the simulator's state carries across chunk boundaries exactly
(boundaries at random times, inside power-on periods and during boot), and the streaming trace readers give
the samples the whole file holds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batteryless.emulate.power import buffer_from_board, load_from_board
from batteryless.emulate.simulate import Simulator, build_program, simulate
from test_emulate_closed_form import make_board, uniform_schedule

COUNTS = ("inferences", "power_failures", "boots", "commits", "tasks_completed")


def split_feed(seg_t, seg_p, t_end, cuts, buf, prog, v_initial=0.0):
    """Feed the trace cut at the times ``cuts`` (anywhere, also inside a segment) chunk by chunk."""
    sim = Simulator(buf, prog, t_start=float(seg_t[0]), v_initial=v_initial)
    bounds = sorted({float(c) for c in cuts if seg_t[0] < c < t_end}) + [t_end]
    a = float(seg_t[0])
    for b in bounds:
        # the segments covering [a, b): the one holding a (restarted at a), then those starting before b
        i0 = int(np.searchsorted(seg_t, a, "right")) - 1
        i1 = int(np.searchsorted(seg_t, b, "left"))
        t = np.array(seg_t[i0:i1], dtype=float)
        t[0] = a
        sim.feed(t, np.array(seg_p[i0:i1], dtype=float), b)
        a = b
    return sim.finish(t_end)


def assert_same(chunked, whole, harvested):
    for name in COUNTS:
        assert getattr(chunked, name) == getattr(whole, name), name
    scale = max(harvested, 1e-30)
    for name, v in whole.energy.items():
        assert chunked.energy[name] == pytest.approx(v, rel=1e-9, abs=1e-9 * scale), name
    assert chunked.time_on_s == pytest.approx(whole.time_on_s, rel=1e-9, abs=1e-9 * whole.duration_s)
    assert chunked.time_off_s == pytest.approx(whole.time_off_s, rel=1e-9, abs=1e-9 * whole.duration_s)
    np.testing.assert_allclose(chunked.latencies_s, whole.latencies_s, rtol=1e-9, atol=1e-9)
    assert chunked.duration_s == pytest.approx(whole.duration_s, rel=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    policy=st.sampled_from(["flex", "per-layer", "restart"]),
    leak=st.sampled_from([None, 3e5]),
    n_cuts=st.integers(1, 12),
    start=st.sampled_from([0.0, 37.25]),
)
def test_chunked_equals_in_memory(n, seed, policy, leak, n_cuts, start):
    rng = np.random.default_rng(seed)
    board = make_board(r=leak)
    sched = uniform_schedule(n_tasks=8, cycles=int(rng.integers(2_000, 60_000)))
    buf = buffer_from_board(board)
    prog = build_program(sched, sched.mode(), load_from_board(board, sched.clock_hz), policy)
    seg_t = start + np.concatenate(([0.0], np.cumsum(rng.uniform(0.05, 3.0, n - 1))))
    seg_p = rng.choice([0.0, 1e-4, 4e-4, 2e-3, 8e-3], n) * rng.uniform(0.5, 1.5, n)
    t_end = float(seg_t[-1] + rng.uniform(0.05, 3.0))
    whole = simulate(seg_t, seg_p, t_end, buf, prog, record=True)
    # cuts at random times, inside each kind of on period (mid-boot, mid-run) and on segment starts
    cuts = list(rng.uniform(seg_t[0], t_end, n_cuts))
    boot = prog.boot_duration_s
    for a, b in whole.timeline.on_periods[:6]:
        cuts += [a + boot * rng.uniform(0.05, 0.95), a + (b - a) * rng.uniform(0.1, 0.9)]
    cuts += list(seg_t[1 : 1 + n_cuts])
    harvested = float(np.dot(seg_p, np.diff(np.append(seg_t, t_end))))
    assert_same(split_feed(seg_t, seg_p, t_end, cuts, buf, prog), whole, harvested)


def test_cut_during_boot_and_mid_task_by_hand():
    """A constant harvest: one cut during the first boot, one inside the first task; counts unchanged."""
    board = make_board()
    sched = uniform_schedule(n_tasks=4, cycles=50_000)
    buf = buffer_from_board(board)
    prog = build_program(sched, sched.mode(), load_from_board(board, sched.clock_hz), "flex")
    seg_t, seg_p, t_end = np.array([0.0]), np.array([1.5e-3]), 30.0
    whole = simulate(seg_t, seg_p, t_end, buf, prog, record=True)
    first_on = whole.timeline.on_periods[0][0]
    cuts = [first_on + 0.3e-3, first_on + 1e-3 + 2e-3, first_on + 1e-3 + 2e-3 + 1e-9]
    assert whole.inferences > 0 and whole.power_failures > 0
    assert_same(split_feed(seg_t, seg_p, t_end, cuts, buf, prog), whole, 1.5e-3 * 30)


# --- the streaming readers -------------------------------------------------------------------------------
from batteryless.emulate import emulate  # noqa: E402
from batteryless.emulate import traces as T  # noqa: E402
from batteryless.errors import TraceError  # noqa: E402


def _ns_trace(n=4000, seed=3):
    """Integer-nanosecond sample times (irregular, 1–20 ms apart) and a bursty power."""
    rng = np.random.default_rng(seed)
    t_ns = np.concatenate(
        ([0], np.cumsum(rng.integers(1, 21, n - 1) * 1_000_000 + rng.integers(0, 999, n - 1)))
    )
    p = np.where(rng.random(n) < 0.3, rng.uniform(0.5e-3, 6e-3, n), rng.uniform(0, 2e-4, n))
    return t_ns, p


def _write_ns_csv(path, t_ns, p, offset_s=0, end_ns=None):
    rows = [
        f"{offset_s + int(t) // 10**9}.{int(t) % 10**9:09d},{v:.9g}" for t, v in zip(t_ns, p, strict=True)
    ]
    head = "" if end_ns is None else f"# end_s={offset_s + end_ns // 10**9}.{end_ns % 10**9:09d}\n"
    path.write_text(head + "time_s,power_w\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _same_report(a, b):
    assert a["trace"]["samples"] == b["trace"]["samples"]
    assert a["trace"]["duration_s"] == pytest.approx(b["trace"]["duration_s"], rel=1e-12)
    assert a["trace"]["harvested_j"] == pytest.approx(b["trace"]["harvested_j"], rel=1e-9)
    for ra, rb in zip(a["runs"], b["runs"], strict=True):
        for name in COUNTS:
            assert ra[name] == rb[name], (ra["policy"], name)
        for term, v in rb["energy_j"].items():
            assert ra["energy_j"][term] == pytest.approx(v, rel=1e-9, abs=1e-9 * b["trace"]["harvested_j"]), (
                term
            )


def test_csv_in_small_chunks_equals_in_memory(tmp_path, monkeypatch):
    t_ns, p = _ns_trace()
    path = _write_ns_csv(tmp_path / "t.csv", t_ns, p)
    whole = emulate("example", T.load_trace(path), "msp430fr5994")
    monkeypatch.setattr(T, "CHUNK_SAMPLES", 97)  # 42 chunks
    chunked = emulate("example", path, "msp430fr5994")
    assert chunked["runs"][0]["power_failures"] > 3 and chunked["runs"][0]["inferences"] > 0
    _same_report(chunked, whole)


def test_unix_epoch_times_give_the_result_of_times_from_zero(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "CHUNK_SAMPLES", 1000)
    t_ns, p = _ns_trace()
    end = int(t_ns[-1]) + 7_000_000
    zero = emulate("example", _write_ns_csv(tmp_path / "z.csv", t_ns, p, 0, end), "msp430fr5994")
    unix = emulate("example", _write_ns_csv(tmp_path / "u.csv", t_ns, p, 1_700_000_000, end), "msp430fr5994")
    assert unix["trace"]["start_s"] == pytest.approx(1.7e9)
    _same_report(unix, zero)
    # the offsets are the exact nanoseconds, not float64 Unix times (whose step is 238 ns)
    tr = T.load_trace(tmp_path / "u.csv")
    np.testing.assert_array_equal(tr.time_s, t_ns / 1e9)


def test_end_s_zero_is_honoured(tmp_path):
    p = tmp_path / "neg.csv"
    p.write_text("# end_s=0\ntime_s,power_w\n-5,1e-3\n-2,2e-3\n", encoding="utf-8")
    tr = T.load_trace(p)
    assert tr.duration_s == 5.0
    assert tr.energy_j() == pytest.approx(3 * 1e-3 + 2 * 2e-3, rel=1e-12)


@pytest.mark.parametrize(
    "rows, pattern",
    [
        ("0,1e-3\n1e30,1e-3\n", r":3: time 1e\+30 s is not a plausible time"),
        ("0,1e-3\n1e17,1e-3\n", r":3: time 1e\+17 s is not a plausible time"),
        ("0,1e-3\n1,1e-3\n2e8,1e-3\n", r":4: time 2e\+08 s after the first sample"),
        ("10000000000000.0,1e-3\n10000000000000.5,1e-3\n", r":2: time 1e\+13 s is not a plausible time"),
        ("1e30,1e-3\n", r":2: time 1e\+30 s is not a plausible time"),
    ],
)
def test_absurd_times_are_refused_with_the_line(tmp_path, rows, pattern, monkeypatch):
    monkeypatch.setattr(T, "CHUNK_SAMPLES", 2)
    p = tmp_path / "a.csv"
    p.write_text("time_s,power_w\n" + rows, encoding="utf-8")
    with pytest.raises(TraceError, match=pattern):
        T.load_trace(p)


def test_errors_in_a_later_chunk_name_their_line(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "CHUNK_SAMPLES", 3)
    p = tmp_path / "late.csv"
    p.write_text("time_s,power_w\n0,1\n# c\n1,1\n\n2,1\n3,1\n4,1\n4,1\n", encoding="utf-8")
    with pytest.raises(TraceError, match=r"late.csv:9: time 4 s does not increase"):
        T.load_trace(p)
    p.write_text("time_s,power_w\n0,1\n1,1\n2,1\n3,1\n4,x\n", encoding="utf-8")
    with pytest.raises(TraceError, match=r":6: power_w is 'x', not a number"):
        T.load_trace(p)


def test_a_folder_or_missing_trace_is_one_line(tmp_path):
    with pytest.raises(TraceError, match=r"trace file is a folder"):
        T.load_trace(tmp_path)
    with pytest.raises(TraceError, match=r"trace file not found"):
        T.load_trace(tmp_path / "nope.h5")


def _shepherd(path, n, chunk_rows=10_000, claim=None, t0_ns=0):
    h5py = pytest.importorskip("h5py")
    t = t0_ns + np.arange(n, dtype=np.uint64) * 10_000  # 100 kHz
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        g = f.create_group("data")
        for name, data, gain in (
            ("time", t, 1e-9),
            ("voltage", rng.integers(0, 10**9, n).astype(np.uint32), 3e-9),
            ("current", rng.integers(0, 4 * 10**6, n).astype(np.uint32), 2.5e-10),
        ):
            d = g.create_dataset(name, shape=(n,), maxshape=(None,), chunks=(chunk_rows,), dtype=data.dtype)
            d[:] = data
            d.attrs["gain"], d.attrs["offset"] = gain, 0.0
            if claim is not None:
                d.resize((claim,))
    return path


def test_hdf5_in_chunks_equals_in_memory_and_keeps_nanoseconds(tmp_path, monkeypatch):
    a = _shepherd(tmp_path / "a.h5", 25_000, chunk_rows=1000)
    b = _shepherd(tmp_path / "b.h5", 25_000, chunk_rows=1000, t0_ns=1_700_000_000 * 10**9 + 123)
    whole = emulate("example", T.load_trace(a), "msp430fr5994")
    monkeypatch.setattr(T, "CHUNK_SAMPLES", 3000)  # 3 HDF5 chunks per slice, 9 slices
    chunked = emulate("example", b, "msp430fr5994")
    assert chunked["trace"]["samples"] == 25_000
    _same_report(chunked, whole)
    np.testing.assert_array_equal(T.load_trace(b).time_s, np.arange(25_000) * 10_000 / 1e9)


def test_hdf5_metadata_is_checked_against_the_file_size(tmp_path):
    p = _shepherd(tmp_path / "liar.h5", 10_000, claim=125_000_000)
    assert p.stat().st_size < 1_000_000
    with pytest.raises(TraceError, match=r"claims 125,000,000 samples .* holds data for only 10,000"):
        T.open_trace(p)


# --- the CLI: every path and number checked up front, one line, stable exit codes ----------------------
from batteryless.cli import main  # noqa: E402


def _cli(capsys, *argv):
    code = main(["emulate", *argv])
    err = capsys.readouterr().err.strip()
    return code, err


BASE = ("--board", "msp430fr5994", "--schedule", "example", "-q", "--json")


@pytest.mark.parametrize(
    "extra, code, pattern",
    [
        (("--capacitance-uf", "-5"), 2, r"--capacitance-uf must be a finite number > 0, not -5"),
        (("--v-on", "nan"), 2, r"--v-on must be a finite number"),
        (("--esr-ohm", "-1"), 2, r"--esr-ohm must be a finite number ≥ 0"),
        (("--resample-s", "0"), 2, r"--resample-s must be a finite number > 0, not 0"),
        (("--max-periods", "0"), 2, r"--max-periods must be a finite number ≥ 1"),
    ],
)
def test_cli_numbers_are_range_checked(capsys, extra, code, pattern):
    got, err = _cli(capsys, *BASE, "--trace", "solar-office", *extra)
    assert got == code
    assert len(err.splitlines()) == 1 and re_search(pattern, err)


def re_search(pattern, text):
    import re

    return re.search(pattern, text) is not None


def test_cli_paths_are_checked_up_front(capsys, tmp_path):
    (tmp_path / "f.txt").write_text("a file")
    cases = [
        (("--trace", str(tmp_path)), 11, rf"{tmp_path}: trace file is a folder"),
        (("--trace", str(tmp_path / "no.csv")), 11, r"no.csv: trace file not found"),
        (("--trace", "solar-office", "--schedule", str(tmp_path)), 12, r"schedule file is a folder"),
        (("--trace", "solar-office", "--out", str(tmp_path / "f.txt")), 2, r"it is a file, not a folder"),
        (
            ("--trace", "solar-office", "--firmware", "--artifact", str(tmp_path / "m.bl")),
            6,
            r"artifact not found",
        ),
    ]
    for extra, code, pattern in cases:
        got, err = _cli(capsys, *BASE, *extra)
        assert got == code, (extra, err)
        assert len(err.splitlines()) == 1 and re_search(pattern, err), err


def _periodic_csv(path, n):
    """A weak harvest (0.1 mW) with ripple, 10 ms samples: a power cycle every few seconds, every sample
    distinct."""
    t = np.arange(n) * 0.01
    p = 1e-4 * (1 + 0.01 * np.sin(np.arange(n)))
    with open(path, "w", encoding="utf-8") as f:
        f.write("time_s,power_w\n")
        f.write("".join(f"{a:.2f},{b:.6g}\n" for a, b in zip(t.tolist(), p.tolist(), strict=True)))
    return path


def test_memory_does_not_grow_with_the_trace_and_progress_counts_samples(tmp_path, monkeypatch):
    import tracemalloc

    monkeypatch.setattr(T, "CHUNK_SAMPLES", 4096)
    peaks, seen = {}, []
    for n in (20_000, 160_000):
        path = _periodic_csv(tmp_path / f"p{n}.csv", n)
        seen.clear()
        tracemalloc.start()
        doc = emulate("example", path, "msp430fr5994", policies=("flex",), progress=lambda *a: seen.append(a))
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert doc["trace"]["samples"] == n and doc["runs"][0]["power_failures"] > 10
        done = [d for task, d, total in seen]
        assert done == sorted(done) and done[-1] == n and seen[-1][2] == n
    # 8x the samples: the peak stays that of a chunk. Reading the trace into memory would add at least
    # 3 float64 arrays (times, values, segments) per extra sample: 24 B; allowed: 2 B (latency lists)
    assert peaks[160_000] - peaks[20_000] < 2 * 140_000, peaks


@settings(max_examples=40, deadline=None)
@given(
    dts=st.lists(st.floats(0.001, 5.0), min_size=1, max_size=60),
    step=st.floats(0.01, 20.0),
    chunk=st.integers(1, 9),
    seed=st.integers(0, 1000),
)
def test_streamed_resampling_equals_in_memory(dts, step, chunk, seed):
    """Windows closed across chunk boundaries (and the last window absorbing a sliver) as Trace.resample."""
    rng = np.random.default_rng(seed)
    t = np.concatenate(([0.0], np.cumsum(dts[:-1])))
    tr = T.Trace(
        time_s=t, values=rng.uniform(0, 1e-3, len(t)), quantity="power", end_s=float(t[-1] + dts[-1])
    )
    ref = tr.resample(step)
    old = T.CHUNK_SAMPLES
    T.CHUNK_SAMPLES = chunk
    try:
        got = T.resampled(T.TraceStream.from_trace(tr), step).read()
    finally:
        T.CHUNK_SAMPLES = old
    assert len(got) == len(ref)
    np.testing.assert_allclose(got.time_s, ref.time_s, rtol=0, atol=1e-12 * tr.end_s)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-9, atol=1e-15)
    assert got.end_s == ref.end_s
    assert got.energy_j() == pytest.approx(tr.energy_j(), rel=1e-9, abs=1e-18)


@pytest.mark.parametrize("end", [3.0, 3.0 + 1e-12, 3.5, 0.4])
def test_streamed_resampling_last_window(end):
    """An end on a window edge, a sliver past it (absorbed), a half window, less than one window."""
    t = np.array([0.0, 0.25, 1.1, 2.9])[: 1 if end < 1 else 4]
    tr = T.Trace(time_s=t, values=np.linspace(1e-4, 4e-4, len(t)), quantity="power", end_s=end)
    ref = tr.resample(1.0)
    old = T.CHUNK_SAMPLES
    T.CHUNK_SAMPLES = 1
    try:
        got = T.resampled(T.TraceStream.from_trace(tr), 1.0).read()
    finally:
        T.CHUNK_SAMPLES = old
    np.testing.assert_allclose(got.time_s, ref.time_s)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-12)
    assert len(got) == {3.0: 3, 3.0 + 1e-12: 3, 3.5: 4, 0.4: 1}[end]


def test_hdf5_iv_curves_are_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    p = _shepherd(tmp_path / "curves.h5", 1000)
    with h5py.File(p, "a") as f:
        f["data"].attrs["window_samples"] = 100
        f["data"].attrs["datatype"] = "ivcurve"
    with pytest.raises(TraceError, match=r"holds IV curves .* not IV samples"):
        T.open_trace(p)


def test_trace_generate_checks_its_output_path(tmp_path, capsys):
    for out, pattern in ((tmp_path, "it is a folder"), (tmp_path / "no" / "x.csv", "does not exist")):
        assert main(["trace", "generate", "constant", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and pattern in err, err


def test_csv_with_bom_and_crlf(tmp_path):
    p = tmp_path / "excel.csv"
    p.write_bytes(b"\xef\xbb\xbftime_s,power_w\r\n0,1e-3\r\n1,2e-3\r\n# end_s=3\r\n")
    tr = T.load_trace(p)
    np.testing.assert_array_equal(tr.time_s, [0.0, 1.0])
    assert tr.end_s == 3.0 and tr.energy_j() == pytest.approx(1e-3 + 2 * 2e-3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 10**6), st.floats(0, 5.0, allow_nan=False), st.sampled_from(["", "#c", "b"])
        ),
        min_size=1,
        max_size=40,
    ),
    chunk=st.integers(1, 7),
    bad_at=st.one_of(st.none(), st.integers(0, 39)),
    unix=st.booleans(),
)
def test_chunked_csv_reader_against_a_line_by_line_reference(tmp_path_factory, rows, chunk, bad_at, unix):
    """Random valid CSVs (integer-µs times, comments and blank lines between rows, Unix or zero start),
    read in random chunk sizes, give the values a line-by-line float() parse gives; one corrupted row is
    reported at its own line number whichever chunk holds it."""
    base = 1_700_000_000 if unix else 0
    lines, want_t, want_p, line_of_row = ["time_s,power_w"], [], [], []
    t_us = 0
    for dt_us, p, extra in rows:
        t_us += dt_us
        if extra == "#c":
            lines.append("# a comment")
        elif extra == "b":
            lines.append("")
        lines.append(f"{base + t_us // 10**6}.{t_us % 10**6:06d},{p!r}")
        line_of_row.append(len(lines))
        want_t.append(t_us / 1e6)
        want_p.append(p)
    if bad_at is not None and bad_at < len(rows):
        lines[line_of_row[bad_at] - 1] = lines[line_of_row[bad_at] - 1].split(",")[0] + ",x"
    path = tmp_path_factory.mktemp("csv") / "r.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    old = T.CHUNK_SAMPLES
    T.CHUNK_SAMPLES = chunk
    try:
        if bad_at is not None and bad_at < len(rows):
            with pytest.raises(
                TraceError, match=rf"r.csv:{line_of_row[bad_at]}: power_w is 'x', not a number"
            ):
                T.load_trace(path)
            return
        tr = T.load_trace(path)
    finally:
        T.CHUNK_SAMPLES = old
    # offsets from the first sample: exact to the float64 rounding of the µs values, Unix or not
    np.testing.assert_allclose(tr.time_s, np.asarray(want_t) - want_t[0], rtol=0, atol=1e-12 * max(want_t))
    np.testing.assert_array_equal(tr.values, want_p)
    assert tr.start_s == pytest.approx(base + want_t[0], abs=1e-6)


def test_hdf5_huge_chunks_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "MAX_HDF5_CHUNK_BYTES", 64_000)  # the real bound is 64 MiB: same check, small file
    p = _shepherd(tmp_path / "big_chunks.h5", 20_000, chunk_rows=10_000)  # 80 KB chunks of uint64 times
    with pytest.raises(TraceError, match=r"data/time is stored in chunks of 10,000 samples \(80,000 bytes"):
        T.open_trace(p)
