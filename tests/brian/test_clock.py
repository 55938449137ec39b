"""The clock steps in C for sobuild networks: same times as Brian2's, bit for bit."""

from __future__ import annotations

import numpy as np


def _model():
    from brian2 import Clock, Network, NeuronGroup, StateMonitor, defaultclock, ms

    slow = Clock(dt=0.3 * ms, name="slow_clock")
    fast = NeuronGroup(2, "dv/dt = -v / (7*ms) : 1")
    fast.v = 1
    other = NeuronGroup(1, "dw/dt = 1/ms : 1", clock=slow)
    mon = StateMonitor(fast, "v", record=True)
    mon_slow = StateMonitor(other, "w", record=True, clock=slow)
    net = Network(fast, other, mon, mon_slow)
    net.run(1.7 * ms)
    net.run(0.55 * ms)  # a second run continues from where the first stopped
    return {"t": mon.t_[:], "v": mon.v[:], "t_slow": mon_slow.t_[:], "w": mon_slow.w[:],
            "net_t": np.array([float(net.t)]), "timestep": defaultclock.timestep[:].copy(),
            "slow_timestep": slow.timestep[:].copy()}


def test_times_match_numpy_exactly(run_with):
    expected = run_with("numpy", _model)
    got = run_with("sobuild", _model)
    for name in ("t", "t_slow", "net_t", "timestep", "slow_timestep"):
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    np.testing.assert_allclose(got["v"], expected["v"], rtol=1e-12)
    np.testing.assert_allclose(got["w"], expected["w"], rtol=1e-12)


def test_a_clock_shared_with_a_later_numpy_network_steps_as_brian2(run_with):
    from brian2 import Network, NeuronGroup, ms, prefs

    clocks = []

    def model():
        group = NeuronGroup(1, "dv/dt = 1/ms : 1")
        Network(group).run(2 * ms)
        clocks.append(group.clock)
        return {"v": group.v[:]}

    run_with("sobuild", model)
    assert "advance" in vars(clocks[0]), "the sobuild network's clock steps in C"
    prefs.codegen.target = "numpy"
    group = NeuronGroup(1, "dv/dt = 1/ms : 1")
    net = Network(group)
    net.run(3 * ms)  # with a stale end of interval the run would stop early
    assert group.clock is clocks[0]
    assert "advance" not in vars(group.clock)
    assert float(net.t / ms) == 3.0
    np.testing.assert_allclose(group.v[:], [3.0])
