"""The 'sobuild' target's contracts: one batch per network, keys independent of parameter
values, errors that say what to do, brian2.clear_cache('sobuild')."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def sobuild_target():
    from brian2 import prefs

    prefs.codegen.target = "sobuild"
    prefs.codegen.string_expression_target = "sobuild"


@pytest.fixture
def load_many_calls(monkeypatch):
    """The batches handed to the process-wide cache (the real load_many does the work)."""
    from sobuild.brian_adapter.prefs import get_cache

    cache = get_cache()
    calls = []
    real = cache.load_many

    def load_many(specs):
        calls.append(len(specs))
        return real(specs)

    monkeypatch.setattr(cache, "load_many", load_many)
    return calls


def artifact_dirs(root):
    return sorted(p.name for p in (root / "artifacts").glob("??/*"))


def _small_network():
    """Five neurons, three above threshold, coupled all to all: spikes that propagate."""
    from brian2 import Network, NeuronGroup, SpikeMonitor, StateMonitor, Synapses

    G = NeuronGroup(5, "dv/dt = -v/(10*ms) : 1", threshold="v > 1", reset="v = 0",
                    method="exact")
    G.v = "0.3*i"
    S = Synapses(G, G, "w : 1", on_pre="v += w")
    S.connect(condition="i != j")
    S.w = "0.2 + 0.05*j"
    spikes, states = SpikeMonitor(G), StateMonitor(G, "v", record=True)
    return Network(G, S, spikes, states), G, spikes, states


def test_network_kernels_are_one_batch_built_by_the_end_of_before_run(sobuild_target,
                                                                      load_many_calls,
                                                                      run_with):
    from brian2 import ms

    from sobuild.brian_adapter import clock

    net, G, spikes, states = _small_network()
    # the clocks' kernels (advance, step loop) join the batch of the process's first network
    clock_kernel = len(clock.KERNEL.specs) if clock.KERNEL.func is None else 0
    load_many_calls.clear()
    net.run(0 * ms)  # before_run and no step: what a build-only run (`sobuild prebuild`) does
    codeobjs = [c for obj in net.objects for o in [obj, *obj.contained_objects]
                for c in o.code_objects]
    assert len(codeobjs) >= 6
    assert all(c._funcs is not None for c in codeobjs)  # built and bound
    assert load_many_calls == [sum(len(c.specs) for c in codeobjs) + clock_kernel]  # ONE batch
    net.run(3 * ms)
    got = {"v": np.array(G.v[:]), "trace": np.array(states.v[:]),
           "i": np.array(spikes.i[:]), "t": np.array(spikes.t_[:])}

    def reference():
        net, G, spikes, states = _small_network()
        net.run(0 * ms)
        net.run(3 * ms)
        return {"v": G.v[:], "trace": states.v[:], "i": spikes.i[:], "t": spikes.t_[:]}

    expected = run_with("numpy", reference)
    assert len(expected["i"]) > 3, "the model should spike and propagate: nothing compared"
    np.testing.assert_array_equal(got["i"], expected["i"])
    np.testing.assert_array_equal(got["t"], expected["t"])
    np.testing.assert_allclose(got["trace"], expected["trace"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["v"], expected["v"], rtol=1e-9, atol=1e-12)


def test_kernels_do_not_depend_on_parameter_values(sobuild_target, brian_cache_dir):
    """Constants reach kernels through the argument block: a new value builds nothing."""
    from brian2 import NeuronGroup, StateMonitor, ms, run, start_scope

    results = []
    for value in (5, 7, 11):
        start_scope()
        G = NeuronGroup(3, "dv/dt = (v0 - v)/tau : 1\nv0 : 1", method="exact",
                        namespace={"tau": value * ms}, name="G")
        G.v0 = 1
        mon = StateMonitor(G, "v", record=0, name="mon")
        run(2 * ms, namespace={})
        results.append(np.array(mon.v[0]))
        del G, mon
        if value == 5:
            built = artifact_dirs(brian_cache_dir)
    assert artifact_dirs(brian_cache_dir) == built
    # the last value is recorded at 1.9 ms
    np.testing.assert_allclose(results[1][-1], 1 - np.exp(-1.9 / 7), rtol=1e-9)
    assert results[0][-1] > results[1][-1] > results[2][-1]


def test_invalid_synapse_index_raises_index_error(sobuild_target):
    from brian2 import NeuronGroup, Synapses
    from brian2.core.base import BrianObjectException

    G = NeuronGroup(4, "")
    S = Synapses(G, G)
    with pytest.raises(BrianObjectException) as error:
        S.connect(j="i + 2")
    assert isinstance(error.value.__cause__, IndexError)
    assert "j=4 outside allowed range from 0 to 3" in str(error.value.__cause__)
    S.connect(j="i + 2", skip_if_invalid=True)
    assert list(S.j[:]) == [2, 3]


def test_python_only_function_is_refused_with_the_target_to_use(sobuild_target):
    from brian2 import Function, NeuronGroup, ms, run
    from brian2.core.base import BrianObjectException

    python_only = Function(lambda x: x, arg_units=[1], return_unit=1)
    G = NeuronGroup(2, "dv/dt = python_only(v)/ms : 1",  # noqa: F841
                    namespace={"python_only": python_only})
    with pytest.raises(BrianObjectException) as error:
        run(0.1 * ms)
    cause = error.value.__cause__
    assert isinstance(cause, NotImplementedError)
    assert "sobuild" in str(cause)


def test_broken_user_code_raises_build_error_with_compiler_message(sobuild_target):
    from brian2 import NeuronGroup, check_units, implementation

    import sobuild

    @implementation("cpp", "static inline double broken(double x) { return x +; }")
    @check_units(x=1, result=1)
    def broken(x):
        return x

    G = NeuronGroup(2, "v : 1", namespace={"broken": broken})
    with pytest.raises(sobuild.BuildError) as error:
        G.v = "broken(i)"
    assert "expected primary-expression" in str(error.value)


def test_clear_cache_removes_brian_kernels_only(sobuild_target, brian_cache_dir):
    import brian2
    from brian2 import NeuronGroup

    import sobuild
    from sobuild.brian_adapter.prefs import get_cache

    G = NeuronGroup(2, "v : 1")
    G.v = "i + 1"  # one Brian2 kernel
    other = get_cache().load(sobuild.KernelSpec("int one() { return 1; }", entry="int one()"))
    assert other() == 1
    assert brian2._cache_dirs_and_extensions["sobuild"][0] == str(brian_cache_dir)
    foreign = brian_cache_dir / "some_file.py"
    foreign.write_text("")
    with pytest.raises(OSError, match="some_file.py"):
        brian2.clear_cache("sobuild")
    foreign.unlink()
    brian2.clear_cache("sobuild")
    remaining = artifact_dirs(brian_cache_dir)
    assert len(remaining) == 1  # the kernel of namespace 'default'
    assert get_cache().lookup(sobuild.KernelSpec("int one() { return 1; }",
                                                 entry="int one()")) is not None
    G.v = "i + 1"  # rebuilt on demand
    assert list(G.v[:]) == [1, 2]


def test_gsl_integration_names_the_target_to_use(sobuild_target):
    from brian2 import NeuronGroup, ms, run
    from brian2.core.base import BrianObjectException

    G = NeuronGroup(1, "dv/dt = -v/(10*ms) : 1", method="gsl")  # noqa: F841
    with pytest.raises(BrianObjectException) as error:
        run(0.1 * ms)
    cause = error.value.__cause__
    assert isinstance(cause, NotImplementedError)
    assert "'cython'" in str(cause) and "sobuild" in str(cause)


def test_kernels_do_not_depend_on_object_names(sobuild_target, brian_cache_dir):
    """The same model under other names (a sweep making new groups) builds nothing new."""
    from brian2 import NeuronGroup, SpikeMonitor, Synapses, ms, run, start_scope

    counts = []
    for suffix in ("a", "b"):
        start_scope()
        G = NeuronGroup(4, "dv/dt = (2 - v)/(5*ms) : 1", threshold="v > 1", reset="v = 0",
                        method="exact", name=f"group_{suffix}")
        S = Synapses(G, G, "w : 1", on_pre="v += w", name=f"syn_{suffix}")
        S.connect(j="(i + 1) % 4")
        S.w = "0.1*i"
        mon = SpikeMonitor(G, name=f"mon_{suffix}")
        run(5 * ms)
        counts.append(np.array(mon.count[:]))
        del G, S, mon
        if suffix == "a":
            built = artifact_dirs(brian_cache_dir)
    assert artifact_dirs(brian_cache_dir) == built
    np.testing.assert_array_equal(counts[0], counts[1])
    assert counts[0].sum() > 0


def test_kernels_do_not_depend_on_the_names_of_timed_arrays(sobuild_target, brian_cache_dir):
    """A sweep making a new TimedArray while the last one lives (_timedarray, _timedarray_1)
    builds nothing new; two TimedArrays in one kernel stay apart."""
    from brian2 import NeuronGroup, TimedArray, ms, run, start_scope

    results, keep = [], []
    for scale in (1.0, 2.0, 3.0):
        start_scope()
        stim = TimedArray(scale * np.array([1.0, 2.0, 3.0]), dt=1 * ms)
        offset = TimedArray(np.array([0.0, 10.0, 20.0]), dt=1 * ms)
        keep += [stim, offset]  # alive: each iteration's get new numbered names
        G = NeuronGroup(1, "v : 1\nw : 1")
        G.run_regularly("v = stim(t)\nw = offset(t) + stim(t)", dt=1 * ms)
        run(3 * ms)
        results.append((float(G.v[0]), float(G.w[0])))
        if scale == 1.0:
            built = artifact_dirs(brian_cache_dir)
    assert len({ta.name for ta in keep}) == len(keep), "the names were numbered"
    assert artifact_dirs(brian_cache_dir) == built
    # at t = 2 ms (the last step's start) stim = 3*scale, offset = 20
    assert results == [(3.0 * s, 20.0 + 3.0 * s) for s in (1.0, 2.0, 3.0)]


def test_strict_ieee_flags_of_the_readme_reach_the_kernels(sobuild_target):
    """README: ``extra_compile_args = ["-O3", "-ffp-contract=off"]`` replaces Brian2's
    -ffast-math: the kernels are built with those flags, under other keys."""
    from brian2 import NeuronGroup, ms, prefs, run, start_scope

    from sobuild.brian_adapter.prefs import get_cache

    def kernels():
        start_scope()
        G = NeuronGroup(2, "dv/dt = (1 - v)/(10*ms) : 1", method="euler", name="G")
        run(0.1 * ms)
        return [spec for obj in (G, *G.contained_objects) for codeobj in obj.code_objects
                for spec in codeobj.specs.values()]

    default = kernels()
    prefs.codegen.runtime.sobuild.extra_compile_args = ["-O3", "-ffp-contract=off"]
    strict = kernels()
    assert default and len(strict) == len(default)
    assert {spec.flags for spec in default} == {("-O3", "-ffast-math", "-fno-finite-math-only")}
    assert {spec.flags for spec in strict} == {("-O3", "-ffp-contract=off")}
    cache = get_cache()
    assert not {cache.key(s) for s in default} & {cache.key(s) for s in strict}
