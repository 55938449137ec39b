"""Every C++ runtime template against Brian2's numpy target, on small models."""

from __future__ import annotations

import numpy as np
import pytest


def copied(values: dict) -> dict:
    """Copies of the results (a dynamic array's view dies with its object)."""
    return {name: np.array(value) for name, value in values.items()}


def lif_network():
    """stateupdate, threshold, reset (with refractoriness), spike/state/rate monitors,
    subgroups, a custom event with its own monitor, run_regularly."""
    from brian2 import (
        EventMonitor,
        NeuronGroup,
        PopulationRateMonitor,
        SpikeMonitor,
        StateMonitor,
        ms,
        run,
    )

    G = NeuronGroup(
        20,
        """dv/dt = (v0 - v)/(10*ms) : volt (unless refractory)
           v0 : volt
           x : 1""",
        threshold="v > 10*mV",
        reset="v = 0*mV; x += 1",
        refractory=2 * ms,
        events={"half": "v > 5*mV and x < 2"},
        method="exact",
    )
    G.v0 = "12*mV + i*0.3*mV"
    G.v = "i*0.5*mV"
    G.run_regularly("v0 += 0.1*mV", dt=1 * ms)
    sub = G[5:15]
    spikes = SpikeMonitor(G, variables=["v0", "x"])
    sub_spikes = SpikeMonitor(sub)
    states = StateMonitor(G, ["v", "x"], record=[0, 7, 19])
    rates = PopulationRateMonitor(G)
    sub_rates = PopulationRateMonitor(sub)
    half = EventMonitor(G, "half")
    run(25 * ms)
    return copied({
        "i": spikes.i[:], "t": spikes.t[:], "v0": spikes.v0[:], "x": spikes.x[:],
        "count": spikes.count[:], "sub_i": sub_spikes.i[:], "sub_t": sub_spikes.t[:],
        "states_v": states.v[:], "states_x": states.x[:], "states_t": states.t[:],
        "rate": rates.rate[:], "rate_t": rates.t[:], "sub_rate": sub_rates.rate[:],
        "half_i": half.i[:], "half_t": half.t[:], "v": G.v[:],
    })


def test_neurons_monitors_run_regularly(compare):
    result = compare(lif_network)
    assert len(result["i"]) > 20 and len(result["sub_i"]) > 0 and len(result["half_i"]) > 0


def synapse_network():
    """synapses (on_pre/on_post, heterogeneous delays, event-driven STDP),
    synapses_push_spikes, synapses_create_generator and _array, summed variables,
    a clock-driven synaptic stateupdate, SpikeGeneratorGroup with a period."""
    from brian2 import (
        NeuronGroup,
        SpikeGeneratorGroup,
        SpikeMonitor,
        StateMonitor,
        Synapses,
        ms,
        run,
    )

    inp = SpikeGeneratorGroup(5, [0, 1, 2, 3, 4, 1, 3], [1, 2, 3, 4, 5, 7, 8] * ms, period=10 * ms)
    G = NeuronGroup(8, """dv/dt = -v/(5*ms) : 1
                          Isyn : 1""", threshold="v > 1", reset="v = 0", method="exact")
    H = NeuronGroup(8, "dg/dt = -g/(3*ms) : 1\nsummed : 1", method="euler")
    S = Synapses(inp, G, """w : 1
                            dApre/dt = -Apre/(10*ms) : 1 (event-driven)
                            dApost/dt = -Apost/(10*ms) : 1 (event-driven)""",
                 on_pre="v_post += w; Apre += 0.1; w = clip(w + Apost, 0, 2)",
                 on_post="Apost -= 0.12; w = clip(w + Apre, 0, 2)")
    S.connect(j="k for k in range(i, N_post, 2)")
    S.w = "0.6 + 0.05*j"
    S.delay = "(i + j)*0.3*ms"
    T = Synapses(G, H, """dy/dt = -y/(4*ms) : 1 (clock-driven)
                          summed_post = y : 1 (summed)""", on_pre="y += 1", method="exact")
    T.connect(i=[0, 1, 2, 3, 7, 7], j=[1, 2, 3, 4, 0, 5])
    U = Synapses(G, G, "c : 1", on_pre="c += 1")
    U.connect(condition="i != j and abs(i - j) <= 2")
    inp_spikes = SpikeMonitor(inp)
    g_spikes = SpikeMonitor(G)
    syn_states = StateMonitor(S, ["w", "Apre"], record=[0, 3])
    run(30 * ms)
    return copied({
        "inp_i": inp_spikes.i[:], "inp_t": inp_spikes.t[:], "g_i": g_spikes.i[:],
        "g_t": g_spikes.t[:], "w": S.w[:], "Apost": S.Apost[:], "S_i": S.i[:],
        "S_j": S.j[:], "syn_w": syn_states.w[:], "syn_Apre": syn_states.Apre[:],
        "summed": H.summed[:], "y": T.y[:], "c": U.c[:], "U_i": U.i[:], "U_j": U.j[:],
        "N_incoming": U.N_incoming[:], "N_outgoing": S.N_outgoing[:],
    })


def test_synapses_delays_stdp_summed_spikegenerator(compare):
    result = compare(synapse_network)
    assert len(result["g_i"]) > 0 and np.any(result["summed"] != 0)


def connect_variants():
    """synapses_create_generator in its deterministic forms: conditions, ranges with
    steps and offsets, n (multisynaptic index), skip_if_invalid, subgroups."""
    from brian2 import NeuronGroup, Synapses

    A = NeuronGroup(12, "")
    B = NeuronGroup(9, "")
    S1 = Synapses(A, B, "")
    S1.connect(condition="(i + j) % 3 == 0 and i > 2")
    S2 = Synapses(A[2:10], B[3:8], "")
    S2.connect(j="i + 1", skip_if_invalid=True)
    S3 = Synapses(A, B, "", multisynaptic_index="syn_number")
    S3.connect(i=[1, 1, 4], j=[2, 2, 3], n=2)
    S3.connect(j="k for k in range(0, N_post, 3) if k != 3", n=2)
    S4 = Synapses(A, A, "")
    S4.connect(j="i - 1 + k for k in range(3)", skip_if_invalid=True)
    return copied({
        "S1_i": S1.i[:], "S1_j": S1.j[:], "S2_i": S2.i[:], "S2_j": S2.j[:],
        "S3_i": S3.i[:], "S3_j": S3.j[:], "S3_k": S3.syn_number[:], "S4_i": S4.i[:], "S4_j": S4.j[:],
        "S3_in": S3.N_incoming[:], "S3_out": S3.N_outgoing[:],
    })


def test_synapse_creation_deterministic(compare):
    result = compare(connect_variants)
    assert len(result["S1_i"]) > 0 and result["S3_k"].max() >= 1


def group_get_set():
    """group_variable_set[_conditional], group_variable_get[_conditional],
    group_get_indices, with string expressions, on neurons and synapses."""
    from brian2 import NeuronGroup, Synapses

    G = NeuronGroup(10, """v : 1
                           w = 2*v + i : 1
                           flag : boolean""")
    G.v = "i*0.1"
    G.v["i > 5"] = "v + 10"
    G.flag = "v > 5"
    G.v[2:4] = "-i"
    S = Synapses(G, G, "q : 1")
    S.connect(condition="j == (i + 3) % 10")
    S.q = "i + 0.5*j"
    S.q["i > 4"] = "q*2"
    return copied({
        "v": G.v[:], "w": G.w[:], "w_cond": G.w["v > 1"], "v_cond": G.v["i % 2 == 0"],
        "flag": G.flag[:], "w_sub": G.w[3:7], "idx": G.indices["v > 0.5"],
        "q": S.q[:], "q_cond": S.q["j > 5"], "sidx": S.indices["q > 5"],
        "v_pre": S.v_pre[:], "w_post_cond": S.w_post["i < 3"],
    })


def test_group_variable_get_set(compare):
    result = compare(group_get_set)
    assert len(result["idx"]) > 0 and len(result["q_cond"]) > 0


@pytest.fixture
def halve():
    """A user function with a C++ implementation."""
    from brian2 import check_units, implementation

    @implementation("cpp", "static inline double halve(double x) { return 0.5*x; }")
    @check_units(x=1, result=1)
    def halve(x):
        return 0.5 * x

    return halve


def test_timed_array_and_functions(compare, halve):
    """TimedArray (namespace arrays), Brian2 functions with C++ implementations, a user
    function with a C++ implementation, integer variables, subexpressions read every ms."""
    from brian2 import Network, NetworkOperation, NeuronGroup, TimedArray, ms

    def model():
        stim = TimedArray(np.array([0.0, 1.0, 3.0, 2.0]), dt=2 * ms)
        stim2d = TimedArray(np.arange(12.0).reshape(4, 3), dt=3 * ms)
        namespace = {"stim": stim, "stim2d": stim2d, "halve": halve}
        G = NeuronGroup(3, """dv/dt = (stim(t) - v)/(2*ms) : 1
                              u = stim2d(t, i) + halve(v) + exprel(v) + clip(v, 0.5, 1.5) : 1
                              n : integer
                              s = sign(v - 1) : 1""", method="euler", namespace=namespace)
        G.run_regularly("n += int(v > 0.5)", dt=1 * ms)
        record = []
        op = NetworkOperation(lambda: record.append(G.u[:].copy()), dt=1 * ms)
        Network(G, op).run(10 * ms)
        return copied({"v": G.v[:], "n": G.n[:], "s": G.s[:], "u": np.array(record)})

    compare(model)


def test_spatial_neuron(run_with):
    """spatialstateupdate (its before_run block and its run block), checked by physics
    (Brian2's numpy target needs scipy for it): a passive tree with a current injected at
    the soma reaches the steady state where the membrane currents balance the injection."""
    from brian2 import (
        Cylinder,
        Soma,
        SpatialNeuron,
        cm,
        ms,
        mV,
        nA,
        ohm,
        run,
        siemens,
        ufarad,
        um,
    )

    def model():
        morpho = Soma(diameter=20 * um)
        morpho.dend = Cylinder(length=100 * um, diameter=2 * um, n=5)
        morpho.dend.a = Cylinder(length=50 * um, diameter=1 * um, n=3)
        morpho.dend.b = Cylinder(length=50 * um, diameter=1 * um, n=3)
        eqs = """Im = gL*(-70*mV - v) : amp/meter**2
                 I : amp (point current)
                 gL : siemens/meter**2"""
        neuron = SpatialNeuron(morpho, eqs, Cm=1 * ufarad / cm**2, Ri=150 * ohm * cm,
                               method="exact")
        neuron.v = -70 * mV
        neuron.gL = 1e-4 * siemens / cm**2
        neuron.I[0] = 0.05 * nA
        run(120 * ms)
        return copied({"v": neuron.v[:], "Im": neuron.Im[:], "area": neuron.area[:],
                       "I": neuron.I[:], "gL": neuron.gL[:]})

    result = run_with("sobuild", model)
    injected = np.sum(result["I"])
    leak = np.sum(result["gL"] * (result["v"] + 70e-3) * result["area"])
    assert result["v"][0] > result["v"][-1] > -70e-3  # depolarised, most at the soma
    np.testing.assert_allclose(leak, injected, rtol=1e-3)
    # Im includes the point current: the membrane's net current vanishes
    assert abs(np.sum(result["Im"] * result["area"])) < 1e-3 * injected
