"""Energy conservation: harvested = converter loss + clipped + leaked + MCU (boot, useful, commit, wasted,
in progress) + Δstored, within 0.1 %, on random traces, buffers and policies."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batteryless.emulate import emulate
from batteryless.emulate.traces import Trace
from batteryless.schedule import load_schedule

V = 3.0


def make_board(c=100e-6, v_on=3.0, v_off=1.8, v_max=3.3, r=None, esr=0.0, i_per_mhz=100e-6, clock=10e6):
    return NS(
        name="fake",
        clock_hz=clock,
        power=NS(
            supply_voltage_v=V,
            active_current_per_mhz_a=i_per_mhz,
            sleep_current_a=1e-6,
            boot_time_s=1.66e-3,
            boot_charge_c=1.1e-6,
            nvm_write_energy_per_byte_j=0.34e-9,
            accel_op_energy_j={},
            sources={},
        ),
        energy_buffer=NS(
            capacitance_f=c,
            v_on=v_on,
            v_off=v_off,
            v_max=v_max,
            leakage_resistance_ohm=r,
            esr_ohm=esr,
            source="test",
        ),
    )


SCHEDULES = [load_schedule("example-dense"), load_schedule("example-rad")]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 400),
    scale_mw=st.floats(0.05, 20.0),
    leak=st.sampled_from([None, 2e5, 1e6]),
    esr=st.sampled_from([0.0, 0.5, 5.0]),
    v_max=st.sampled_from([3.05, 3.6]),
    converter=st.sampled_from(["ideal", "bq25570", "diode"]),
    v_init=st.floats(0.0, 3.5),
)
def test_energy_is_conserved(seed, n, scale_mw, leak, esr, v_max, converter, v_init):
    rng = np.random.default_rng(seed)
    dt = rng.uniform(0.001, 0.5, n)
    t = np.concatenate(([0.0], np.cumsum(dt)[:-1]))
    p = rng.exponential(scale_mw * 1e-3, n) * (rng.random(n) < 0.7)
    tr = Trace(time_s=t, values=p, quantity="power", end_s=float(t[-1] + dt[-1]), source="random")
    board = make_board(r=leak, esr=esr, v_max=v_max, clock=16e6, i_per_mhz=120e-6)
    doc = emulate(SCHEDULES, tr, board, converter=converter, v_initial=min(v_init, v_max))
    assert len(doc["runs"]) == 6
    for r in doc["runs"]:
        e = r["energy_j"]
        harvested = float(np.dot(p, dt))
        assert abs(e["harvested"] - harvested) <= 1e-9 * max(harvested, 1e-12)
        total = (
            e["converter_loss"]
            + e["clipped"]
            + e["leaked"]
            + e["boot"]
            + e["useful"]
            + e["commit"]
            + e["wasted"]
            + e["in_progress"]
            + e["stored_final"]
            - e["stored_initial"]
        )
        scale = max(harvested, e["stored_initial"], 1e-9)
        assert abs(harvested - total) <= 1e-3 * scale, (r["model"], r["policy"], harvested, total)
        for key in (
            "converter_loss",
            "clipped",
            "leaked",
            "boot",
            "useful",
            "commit",
            "wasted",
            "in_progress",
        ):
            assert e[key] >= -1e-15, key
        assert r["time_on_s"] + r["time_off_s"] == pytest.approx(tr.duration_s, rel=1e-9)
        if r["policy"] == "restart":
            assert e["commit"] == 0.0
