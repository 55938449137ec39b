"""rand(), randn(), poisson(), binomial(): numpy's global generator, seed() and the
random-state calls of Brian2's RuntimeDevice."""

from __future__ import annotations

import numpy as np


def draws():
    from brian2 import NeuronGroup

    G = NeuronGroup(50, "u : 1\nz : 1\nk : integer")
    G.u = "rand()"
    G.z = "randn()"
    return {"u": np.array(G.u[:]), "z": np.array(G.z[:])}


def test_rand_randn_are_numpys_streams(run_with):
    """The kernels refill Brian2's buffers exactly as numpy.random.rand/randn(20000) would,
    from the generator seed() sets: the cython target draws the same numbers."""
    from brian2.devices.device import RANDOM_BUFFER_SIZE

    got = run_with("sobuild", draws, seed_value=2024)
    stream = np.random.RandomState(2024)
    np.testing.assert_array_equal(got["u"], stream.rand(RANDOM_BUFFER_SIZE)[:50])
    np.testing.assert_allclose(got["z"], stream.randn(RANDOM_BUFFER_SIZE)[:50], rtol=1e-12)


def test_the_fixed_seed_numbers_of_brian2s_table_for_cython(run_with):
    """Brian2's test_random_values_fixed_seed_numbers skips targets missing from its table;
    sobuild must draw what the table lists for cython (same buffers, same refills)."""
    from brian2.tests.test_neurongroup import _random_values

    def model():
        from brian2 import NeuronGroup

        G = NeuronGroup(100, "v1 : 1\nv2 : 1")
        G.v1 = "rand()"
        G.v2 = "randn()"
        return {"v1": G.v1[::20], "v2": G.v2[::20]}

    got = run_with("sobuild", model, seed_value=9876)
    rand_values, randn_values = _random_values["RuntimeDevice", "cython", None]
    np.testing.assert_allclose(got["v1"], rand_values)
    np.testing.assert_allclose(got["v2"], randn_values)


def test_seeded_runs_reproduce_and_random_state_restores(run_with):
    """Noise (xi), poisson(), binomial, PoissonGroup, p- and sample-connections."""
    from brian2 import BinomialFunction, get_device, seed

    binomial_f = BinomialFunction(10, 0.2, name="binomial_f")

    def model():
        return _run_noisy(binomial_f)

    first = run_with("sobuild", model, seed_value=7)
    second = run_with("sobuild", model, seed_value=7)
    other = run_with("sobuild", model, seed_value=8)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert not np.array_equal(first["v"], other["v"])
    assert len(first["S_j"]) > 0 and len(first["T_j"]) == 30 * 4
    assert first["k"].min() > 0

    seed(11)
    device = get_device()
    state = device.get_random_state()
    a = run_with("sobuild", draws, seed_value=None)
    device.set_random_state(state)
    b = run_with("sobuild", draws, seed_value=None)
    np.testing.assert_array_equal(a["u"], b["u"])
    np.testing.assert_array_equal(a["z"], b["z"])


def _run_noisy(binomial_f):
    from brian2 import NeuronGroup, PoissonGroup, SpikeMonitor, Synapses, ms, run

    G = NeuronGroup(40, """dv/dt = -v/(10*ms) + 0.3*xi/sqrt(ms) : 1
                           k : integer""", threshold="v > 0.5", reset="v = 0",
                    method="euler")
    G.run_regularly("k += poisson(2.5) + binomial_f()", dt=1 * ms)
    P = PoissonGroup(30, rates="50*Hz + i*Hz")
    S = Synapses(P, G, on_pre="v += 0.05")
    S.connect(p=0.3)
    T = Synapses(P, G)
    T.connect(j="k for k in sample(N_post, size=4)")
    spikes = SpikeMonitor(G)
    run(20 * ms, namespace={"binomial_f": binomial_f})
    return {"i": np.array(spikes.i[:]), "t": np.array(spikes.t[:]), "k": np.array(G.k[:]),
            "S_j": np.array(S.j[:]), "T_j": np.array(T.j[:]), "v": np.array(G.v[:])}


def test_connection_probability_statistics(run_with):
    """p=0.1 over 200 x 200 pairs: about 4000 synapses (the count's sd is 60)."""
    from brian2 import NeuronGroup, Synapses

    def model():
        G = NeuronGroup(200, "")
        S = Synapses(G, G)
        S.connect(p=0.1)
        dense = Synapses(G, G)
        dense.connect(p=0.6)  # the other algorithm (no jumps)
        return {"n": np.array([len(S), len(dense)])}

    n_sparse, n_dense = run_with("sobuild", model, seed_value=3)["n"]
    assert abs(n_sparse - 4000) < 5 * 60
    assert abs(n_dense - 24000) < 5 * 98
