"""rand(), randn(), poisson(), binomial(): numpy's global generator, seed() and the
random-state calls of Brian2's RuntimeDevice."""

from __future__ import annotations

import numpy as np
import pytest


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


# -- the same numbers as the cython target, whatever numpy drew before -------------------------
# numpy's legacy randn() makes normals in pairs and keeps the second one for the next call
# (get_state()[3:]: has_gauss, gauss). The cython target refills Brian2's randn buffer with
# numpy.random.randn(20000), which starts with that kept value and keeps the spare of its
# last pair: after an odd number of the script's own normals, every normal shifts by one.

def _numpy_state() -> dict:
    from brian2 import get_device

    name, key, pos, has_gauss, gauss = np.random.get_state()
    device = get_device().get_random_state()
    return {"numpy_key": np.array(key), "numpy_pos": np.array(pos),
            "numpy_has_gauss": np.array(has_gauss), "numpy_gauss": np.array(gauss),
            **{name: np.array(device[name]) for name in
               ("rand_buffer_index", "rand_buffer", "randn_buffer_index", "randn_buffer")}}


def _same_as_cython(run_with, model, seed_value):
    """Run ``model`` on cython, then on sobuild from the same seed (or, with None, from the
    same saved random state): every array and the random state after it, bit for bit."""
    from brian2 import get_device

    if seed_value is None:
        state = get_device().get_random_state()
    expected = {**run_with("cython", model, seed_value=seed_value), **_numpy_state()}
    if seed_value is None:
        get_device().set_random_state(state)
    got = {**run_with("sobuild", model, seed_value=seed_value), **_numpy_state()}
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    return got


def _mixed_draws(earlier: int):
    """The script draws normals and uniforms with numpy before, between and after Brian2's
    rand() and randn() (25000 values: the randn buffer is refilled in the middle of one)."""
    def model():
        from brian2 import NeuronGroup

        np.random.randn(earlier)
        np.random.rand(3)
        G = NeuronGroup(25000, "u : 1\nz : 1\nw : 1")
        G.z = "randn()"
        G.u = "rand()"
        between = np.random.randn(1)
        G.w = "randn() + 0.5*rand()"
        after = np.random.randn(3)
        return {"u": np.array(G.u[:]), "z": np.array(G.z[:]), "w": np.array(G.w[:]),
                "between": between, "after": after}

    return model


@pytest.mark.parametrize("earlier", [0, 1, 2])
def test_randn_after_the_scripts_own_numpy_draws_is_cythons(run_with, earlier):
    _same_as_cython(run_with, _mixed_draws(earlier), seed_value=31)


@pytest.mark.parametrize("earlier", [1, 2])
def test_randn_after_set_random_state_is_cythons(run_with, earlier):
    """From a state saved with a kept Gaussian (and half-used buffers), not from a seed."""
    from brian2 import seed

    seed(5)
    run_with("numpy", _mixed_draws(earlier), seed_value=None)  # buffers part-used
    if not np.random.get_state()[3]:
        np.random.randn(1)  # numpy keeps the other normal of the pair
    _same_as_cython(run_with, _mixed_draws(earlier), seed_value=None)


def test_a_script_drawing_its_normals_first_spikes_as_on_cython(run_with):
    """Brian2's example Diesmann et al. 1999 (synfire chain): np.random.randn(85) input
    times, then noise (xi) in every step; 1000 neurons, so the randn buffer is refilled
    every 20 steps while numpy keeps the 85th normal's partner."""
    def model():
        from brian2 import Equations, NeuronGroup, SpikeGeneratorGroup, SpikeMonitor, Synapses, ms, mV, run

        params = {"Vr": -70 * mV, "Vt": -55 * mV, "taum": 10 * ms, "taupsp": 0.325 * ms,
                  "weight": 4.86 * mV}
        eqs = Equations("""dV/dt = (-(V-Vr)+x)*(1./taum) : volt
                           dx/dt = (-x+y)*(1./taupsp) : volt
                           dy/dt = -y*(1./taupsp)+25.27*mV/ms+
                                   (39.24*mV/ms**0.5)*xi : volt""")
        group_size = 100
        P = NeuronGroup(10 * group_size, eqs, threshold="V>Vt", reset="V=Vr",
                        refractory=1 * ms, method="euler", namespace=params)
        Pinput = SpikeGeneratorGroup(85, np.arange(85), np.random.randn(85) * 1 * ms + 50 * ms)
        S = Synapses(P, P, on_pre="y+=weight", namespace=params)
        S.connect(j="k for k in range((int(i/group_size)+1)*group_size, "
                    "(int(i/group_size)+2)*group_size) if i<N_pre-group_size")
        Sinput = Synapses(Pinput, P[:group_size], on_pre="y+=weight", namespace=params)
        Sinput.connect()
        M = SpikeMonitor(P)
        P.V = "Vr + rand() * (Vt - Vr)"
        run(100 * ms)
        # the spikes, not the traces (the last bit of V differs: other compilers)
        return {"i": np.array(M.i[:]), "t": np.array(M.t[:])}

    got = _same_as_cython(run_with, model, seed_value=1999)
    assert len(got["i"]) > 500
