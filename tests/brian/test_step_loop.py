"""The time-step loop in C (``prefs.codegen.runtime.sobuild.step_loop = 'c'``) gives exactly
what Brian2's own loop gives (``'python'``) over the same kernels: spikes, states, monitors,
``Network.t``, the clocks' steps, the calls of network operations and reports, errors.

Every model runs twice in one process, once per loop, with the same seed; the kernels are
the same (one build), so every value must be equal, bit for bit.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOOPS = ("c", "python")


def states(*objects) -> dict[str, np.ndarray]:
    """Every state variable of ``objects`` (groups, synapses, monitors), by the object's class
    and place (names differ between two runs in one process) and the variable's name."""
    out = {}
    for place, obj in enumerate(objects):
        for name, value in obj.get_states(units=False).items():
            out[f"{type(obj).__name__}{place}.{name}"] = np.array(value)
    return out


def run_both(model, seed_value: int = 4321) -> dict[str, dict[str, np.ndarray]]:
    """``model()`` (building, running and returning a dict of arrays) under each loop, in a
    fresh scope with the sobuild target and the same seed."""
    from brian2 import prefs, seed, start_scope

    results = {}
    for loop in LOOPS:
        start_scope()
        prefs.codegen.target = "sobuild"
        prefs.codegen.string_expression_target = "sobuild"
        prefs.codegen.runtime.sobuild.step_loop = loop
        seed(seed_value)
        results[loop] = {name: np.array(value) for name, value in model().items()}
    return results


def assert_same(results: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    c, python = results["c"], results["python"]
    assert sorted(c) == sorted(python)
    for name in python:
        np.testing.assert_array_equal(c[name], python[name], err_msg=name)
    return c


def _example(name: str):
    sys.path.insert(0, str(EXAMPLES))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))


EXAMPLE_RUNS = [  # (model, duration in ms, fixed): as tests/brian_examples runs them
    ("cuba", 200, False), ("cobahh", 50, False), ("stdp", 2000, False),
    ("stdp", 2000, True),  # a SpikeGeneratorGroup as input
    ("one_neuron", 100, False),
]


@pytest.mark.parametrize(("name", "duration_ms", "fixed"), EXAMPLE_RUNS,
                         ids=[f"{n}-{'fixed' if f else 'random'}" for n, _, f in EXAMPLE_RUNS])
def test_example_models_step_alike(name, duration_ms, fixed):
    from brian2 import Network, ms

    def model():
        args = argparse.Namespace(fixed=fixed, seed=4321, duration=duration_ms * 1e-3)
        built = _example(name).build(args)
        net = Network(*built["objects"])
        net.run(duration_ms * ms, namespace=built["namespace"])
        return {**states(*built["objects"]), "net.t": net.t_}

    got = assert_same(run_both(model))
    spikes = [v for k, v in got.items() if k.startswith("SpikeMonitor") and k.endswith(".i")]
    assert spikes and len(spikes[0]) > 0, "the model should spike: nothing was compared"


def counting_network(*objects):
    """A Network counting the steps Brian2's loop runs in Python: it sets ``t_`` at the top
    of each (and a few times more: at its start and end)."""
    from brian2 import Network

    class CountingNetwork(Network):
        python_steps = 0

        @property
        def t_(self):
            return self._t

        @t_.setter
        def t_(self, value):
            self.python_steps += 1
            self._t = value

    return CountingNetwork(*objects)


def _several_clocks():
    """Three clocks (0.1, 0.3 and 0.7 ms, the last a run_regularly's), synapses from one to
    another, monitors on two, and two runs in a row; a network operation every 1.1 ms
    changes a variable mid-run and stops the network after 8 ms."""
    from brian2 import Clock, NeuronGroup, SpikeMonitor, StateMonitor, Synapses, ms, network_operation

    slow = Clock(dt=0.3 * ms, name="slow")
    G = NeuronGroup(5, "dv/dt = (1.5 - v)/(10*ms) + 0.1*i/ms : 1", threshold="v>1",
                    reset="v=0", method="euler")
    H = NeuronGroup(3, "dw/dt = -w/(5*ms) : 1", clock=slow, method="exact")
    S = Synapses(G, H, on_pre="w += 0.5")
    S.connect(p=1.0)
    G.run_regularly("v += 0.01", dt=0.7 * ms)
    spikes, trace = SpikeMonitor(G), StateMonitor(H, "w", record=True)
    calls = []
    net = counting_network(G, H, S, spikes, trace, G.contained_objects)

    @network_operation(dt=1.1 * ms)
    def poke():
        G.v[0] = 0.5
        calls.append(net.t_)
        if net.t > 8 * ms:
            net.stop()

    net.add(poke)
    net.run(5 * ms)
    first_t = net.t_
    net.run(10 * ms)
    return {**states(G, H, S, spikes, trace), "calls": calls, "first_t": first_t,
            "net.t": net.t_, "slow": [slow.timestep[:], slow.t_[:]],
            "default": [G.clock.timestep[:], G.clock.t_[:]], "python_steps": net.python_steps}


def test_several_clocks_network_operation_and_stop_step_alike():
    results = run_both(_several_clocks)
    steps = {loop: int(results[loop].pop("python_steps")) for loop in LOOPS}
    got = assert_same(results)
    assert len(got["calls"]) == 9 and got["net.t"] == pytest.approx(8.9e-3)  # stopped
    assert got["first_t"] == pytest.approx(5e-3)
    # the C loop returns to Python for the network operation, not for every step
    assert steps["python"] > 89 and steps["c"] < 40, steps


def _sequence_of_runs():
    """store()/restore(), a SpikeGeneratorGroup, summed variables, event-driven synapses,
    run_regularly, and a network operation changing a parameter at a given time."""
    from brian2 import (
        Network,
        NeuronGroup,
        SpikeGeneratorGroup,
        SpikeMonitor,
        StateMonitor,
        Synapses,
        ms,
        network_operation,
    )

    inputs = SpikeGeneratorGroup(4, [0, 1, 2, 3, 1, 0], [1, 2, 3, 4, 7.5, 9] * ms)
    G = NeuronGroup(3, """dv/dt = (I_syn - v)/(5*ms) : 1
                          I_syn : 1""", threshold="v > 0.3", reset="v = 0",
                    method="exact")
    S = Synapses(inputs, G, """w : 1
                               I_syn_post = w * x : 1 (summed)
                               dx/dt = -x/(2*ms) : 1 (clock-driven)
                               dA/dt = -A/(3*ms) : 1 (event-driven)""",
                 on_pre="x += 1; A += 0.1; w = clip(w + A, 0, 2)", method="exact")
    S.connect(p=1.0)
    S.w = "0.5 + 0.1*i - 0.05*j"
    G.run_regularly("v *= 0.99", dt=0.5 * ms)
    spikes, trace = SpikeMonitor(G), StateMonitor(G, ["v", "I_syn"], record=True)

    @network_operation(dt=1 * ms, when="start")
    def change():
        if G.t > 6 * ms:
            S.w[0] = 1.5

    net = Network(inputs, G, S, spikes, trace, change, G.contained_objects)
    net.run(4 * ms)
    net.store()
    net.run(6 * ms)
    after_first = states(G, S, spikes, trace)
    net.restore()
    net.run(8 * ms)
    return {**{f"first.{k}": v for k, v in after_first.items()},
            **states(inputs, G, S, spikes, trace), "net.t": net.t_}


def test_store_restore_and_synapse_features_step_alike():
    got = assert_same(run_both(_sequence_of_runs))
    assert got["net.t"] == pytest.approx(12e-3)
    assert len(got["first.SpikeMonitor2.i"]) > 0, "the neurons should spike"


def _spatial():
    """A soma and a ten-compartment axon, a current into the soma."""
    from brian2 import Cylinder, Soma, SpatialNeuron, StateMonitor, cm, ms, mV, nA, ohm, run, siemens, uF, um

    morpho = Soma(30 * um)
    morpho.axon = Cylinder(diameter=1 * um, length=300 * um, n=10)
    eqs = """Im = gL * (EL - v) : amp/meter**2
             I : amp (point current)
             gL : siemens/meter**2"""
    neuron = SpatialNeuron(morphology=morpho, model=eqs, Cm=1 * uF / cm**2, Ri=100 * ohm * cm,
                           namespace={"EL": -70 * mV}, method="exponential_euler")
    neuron.v = -70 * mV
    neuron.gL = 1e-4 * siemens / cm**2
    neuron.I[0] = 0.2 * nA
    trace = StateMonitor(neuron, "v", record=True)
    run(3 * ms)
    return states(neuron, trace)


def test_spatial_neuron_steps_alike():
    got = assert_same(run_both(_spatial))
    assert np.ptp(got["StateMonitor1.v"]) > 0, "the current should move v: nothing compared"


def _report(period_ms: float):
    from brian2 import NeuronGroup, ms, run, second

    reports = []
    G = NeuronGroup(2, "dv/dt = -v/(10*ms) : 1")  # noqa: F841
    run(2 * ms, report=lambda elapsed, completed, start, duration: reports.append(
        (completed, float(start), float(duration))), report_period=period_ms * 1e-3 * second)
    return {"reports": reports}


def test_reports_come_as_from_brian2s_loop():
    # a period of 0: Brian2 reports at every step, so the C loop must give every step back
    got = assert_same(run_both(lambda: _report(0)))
    assert len(got["reports"]) == 2 + 20
    # a long period: the first and the last report only
    got = assert_same(run_both(lambda: _report(60e3)))
    assert [r[0] for r in got["reports"]] == [0.0, 1.0]


def test_text_report_is_printed(capsys):
    from brian2 import NeuronGroup, ms, prefs, run

    prefs.codegen.target = "sobuild"
    G = NeuronGroup(2, "dv/dt = -v/(10*ms) : 1")  # noqa: F841
    run(1 * ms, report="text")
    out = capsys.readouterr().out
    assert "Starting simulation" in out and "100%" in out


def test_a_standalone_device_gets_the_report_as_given():
    """The report the C loop watches is the runtime device's: cpp_standalone writes a
    text report into its C++ code and refuses anything but a string (Brian2's
    test_multiple_runs_report_standalone failed with the adapter imported)."""
    from brian2 import NeuronGroup, device, ms, run, set_device
    from brian2.devices.device import reset_device

    set_device("cpp_standalone", build_on_run=False)
    try:
        G = NeuronGroup(1, "dv/dt = 1*Hz : 1")  # noqa: F841
        run(1 * ms, report="text")
        assert any("report_progress" in line for line in device.report_func.splitlines())
    finally:
        device.reinit()  # the standalone device: forget the network
        reset_device()


def _failing():
    """A user function in C++ that throws once v passes 2 (at 2 ms): the run stops there."""
    from brian2 import NeuronGroup, check_units, implementation, ms, run
    from brian2.core.base import BrianObjectException

    @implementation("cpp", """
        #include <stdexcept>
        static inline double checked(double x) {
            if (x > 2) throw std::runtime_error("v went past 2");
            return x;
        }""")
    @check_units(x=1, result=1)
    def checked(x):
        return x

    G = NeuronGroup(1, "dv/dt = 1/ms : 1", namespace={"checked": checked}, name="ramp")
    G.run_regularly("v = checked(v)")
    with pytest.raises(BrianObjectException) as error:
        run(5 * ms)
    from brian2 import magic_network

    # the first loop's code object may still exist (in a reference cycle): the second's
    # name is then numbered
    message = re.sub(r"codeobject_\d+'", "codeobject'", str(error.value))
    return {"message": message, "cause": repr(error.value.__cause__),
            "net.t": magic_network.t_, "v": G.v[:], "timestep": G.clock.timestep[:].copy()}


def test_an_error_in_a_kernel_stops_the_run_as_in_brian2s_loop():
    got = assert_same(run_both(_failing))
    message = str(got["message"])
    assert ("An exception occurred during the execution of the 'run' block of code object "
            "'ramp_run_regularly_codeobject'") in message
    assert "v went past 2" in str(got["cause"])
    assert 2e-3 <= float(got["net.t"]) < 2.2e-3


def test_profile_keeps_brian2s_loop_and_its_figures():
    from brian2 import NeuronGroup, ms, profiling_summary, run

    def model():
        G = NeuronGroup(2, "dv/dt = -v/(10*ms) : 1", threshold="v > 1", reset="v = 0",
                        name="profiled")
        G.v = 2
        run(1 * ms, profile=True)
        summary = profiling_summary()
        assert "profiled_stateupdater" in {name.strip() for name in summary.names}
        return states(G)

    assert_same(run_both(model))


def test_bad_step_loop_values_are_refused(monkeypatch):
    from brian2 import prefs

    from sobuild.brian_adapter import prefs as sobuild_prefs
    from sobuild.errors import ConfigError

    with pytest.raises(Exception, match="step_loop"):
        prefs.codegen.runtime.sobuild.step_loop = "fortran"
    monkeypatch.setenv("SOBUILD_STEP_LOOP", "fast")
    with pytest.raises(ConfigError, match="SOBUILD_STEP_LOOP='fast'"):
        sobuild_prefs._step_loop_default()
    monkeypatch.setenv("SOBUILD_STEP_LOOP", "Python")
    assert sobuild_prefs._step_loop_default() == "python"
