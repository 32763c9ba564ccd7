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
