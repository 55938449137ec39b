"""Brian2's cpp_standalone device with its projects built through sobuild: the results of
Brian2's own build (make), objects found again by every later project of the same model,
a changed parameter recompiling only what depends on it, run_args, several builds and
``device.reinit()`` in one process, OpenMP, compile errors that name Brian2's files.

Each test builds real projects with the real compiler, in this process (as Brian2's own
tests do): one module-wide cache, so later builds find what earlier ones compiled. The
models name their objects: Brian2 names them ``neurongroup_1`` and so on while an earlier
model's objects are alive, and names are part of the sources.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

pytestmark = pytest.mark.brian


def network(tau_ms: float = 10.0):
    """A small network drawing random numbers in C++ (initial values, connections, noise)
    with synapses, delays and three monitors, run for 20 ms: what gives its recorded arrays
    once built."""
    from brian2 import NeuronGroup, PopulationRateMonitor, SpikeMonitor, StateMonitor, Synapses, ms, run, seed

    seed(2024)
    group = NeuronGroup(60, "dv/dt = (1.2 - v) / tau + 0.2 * xi / sqrt(ms) : 1",
                        threshold="v > 1", reset="v = 0", method="euler",
                        namespace={"tau": tau_ms * ms}, name="neurons")
    group.v = "rand()"
    synapses = Synapses(group, group, "w : 1", on_pre="v_post += w", delay=1 * ms,
                        name="synapses")
    synapses.connect(p=0.2)
    synapses.w = "0.2 * rand()"
    spikes = SpikeMonitor(group, name="spikes")
    state = StateMonitor(group, "v", record=[0, 7], name="state")
    rate = PopulationRateMonitor(group, name="rate")
    run(20 * ms)
    return lambda: {"spike_i": spikes.i, "spike_t": spikes.t_, "v": state.v,
                    "rate": rate.rate_, "w": synapses.w, "j": synapses.j}


def build(directory, model=network, *, make: bool = False, **parameters) -> dict:
    """A fresh project of ``model`` in ``directory``, built (by sobuild or make) and run:
    its recorded arrays, copied."""
    from brian2 import device, prefs, set_device, start_scope

    device.reinit()
    gc.collect()  # the last model's objects: alive, they would make Brian2 number the names
    set_device("cpp_standalone", build_on_run=False)
    prefs["codegen.runtime.sobuild.standalone"] = not make
    start_scope()
    recorded = model(**parameters)
    device.build(directory=str(directory), run=True)
    return {name: np.array(value) for name, value in recorded().items()}


def last_build():
    from sobuild.brian_adapter import standalone

    return standalone.last_build


def assert_same(ours: dict, reference: dict) -> None:
    assert ours["spike_i"].size > 20, "the network should spike: nothing was compared"
    for name in reference:
        np.testing.assert_array_equal(ours[name], reference[name], err_msg=name)


def test_results_equal_make_and_a_second_project_compiles_nothing(standalone, tmp_path,
                                                                  standalone_cache):
    reference = build(tmp_path / "make", make=True)
    assert not (tmp_path / "make" / "sobuild_build.log").exists()

    first = build(tmp_path / "first")
    report = last_build()
    assert report.directory == (tmp_path / "first").resolve() and report.built
    assert (tmp_path / "first" / "main").exists() and (tmp_path / "first" / "sobuild_build.log").exists()
    assert_same(first, reference)
    units = [o for o in report.objects if o.unit]
    assert units and sum(o.name.count("code_objects/") for o in units) >= 6

    second = build(tmp_path / "second")
    assert last_build().built == []
    assert_same(second, reference)
    from sobuild.brian_adapter.prefs import get_cache

    if get_cache().toolchain.precompiled_headers:  # GCC: the C++ library headers, once
        assert len(list((standalone_cache / "pch").iterdir())) == 1


def test_a_changed_parameter_recompiles_only_the_unit_that_uses_it(standalone, tmp_path):
    build(tmp_path / "before")
    before = {o.name: o.key for o in last_build().objects}
    changed = build(tmp_path / "after", tau_ms=12.0)
    after = last_build()

    assert len(after.built) == 1, after.describe()
    (rebuilt,) = after.built
    assert "neurons_stateupdater_codeobject.cpp" in rebuilt
    assert {o.name: o.key for o in after.objects if o.hit}.items() <= before.items()
    assert changed["spike_i"].size > 0


def decay_objects():
    """Three neurons decaying exactly from v = 1 (which run_args can set), and the monitor
    recording them for 5 ms."""
    from brian2 import NeuronGroup, StateMonitor, ms, run

    group = NeuronGroup(3, "dv/dt = -v / (10*ms) : 1", method="exact", name="decaying")
    group.v = 1.0
    monitor = StateMonitor(group, "v", record=True, name="decay_monitor")
    run(5 * ms)
    return group, monitor


def decay():
    _, monitor = decay_objects()
    return lambda: {"v": monitor.v, "t": monitor.t_}


def test_run_args_and_several_builds_in_one_process(standalone, tmp_path):
    from brian2 import device

    group, monitor = decay_objects()
    device.build(directory=str(tmp_path / "decay"), run=False)
    assert last_build().directory.name == "decay"
    expected = None
    # the binary sobuild linked, run with Brian2's values, then with others
    for v0, initial in ((None, [1.0] * 3), ([2.0, 3.0, 4.0], [2.0, 3.0, 4.0]), (5.0, [5.0] * 3)):
        device.run(run_args=None if v0 is None else {group.v: v0})
        if expected is None:
            expected = np.exp(-np.array(monitor.t_) / 0.01)
        np.testing.assert_allclose(np.array(monitor.v), np.outer(initial, expected), rtol=1e-12)

    # after device.reinit(), another model in another directory of the same process
    other = build(tmp_path / "network", network)
    assert other["spike_i"].size > 0 and last_build().directory.name == "network"


def test_openmp_builds_its_own_objects(standalone, tmp_path):
    from brian2 import prefs

    build(tmp_path / "serial", decay)
    serial = {o.key for o in last_build().objects}
    prefs.devices.cpp_standalone.openmp_threads = 2
    threaded = build(tmp_path / "openmp", decay)
    report = last_build()

    assert "-fopenmp" in (tmp_path / "openmp" / "makefile").read_text()
    assert not serial & {o.key for o in report.objects if not o.hit}
    assert {o.key for o in report.objects} != serial
    np.testing.assert_allclose(threaded["v"], np.tile(np.exp(-threaded["t"] / 0.01), (3, 1)),
                               rtol=1e-12)


def broken_model():
    from brian2 import NeuronGroup, check_units, implementation, ms, run

    @implementation("cpp", "double broken(double x) { return x + ; }")
    @check_units(x=1, result=1)
    def broken(x):
        return x

    group = NeuronGroup(2, "v : 1", name="victim", namespace={"broken": broken})
    group.run_regularly("v = broken(v)")
    run(1 * ms)
    return lambda: {"v": group.v}  # holds the group (and its namespace) until the build


def test_a_compile_error_names_brian2s_file_and_line(standalone, tmp_path):
    from sobuild.standalone.build import ProjectBuildError

    with pytest.raises(ProjectBuildError) as caught:
        build(tmp_path / "broken", broken_model)
    message = str(caught.value)
    source = "code_objects/victim_run_regularly_codeobject.cpp"
    line = next(n for n, text in enumerate(
        (tmp_path / "broken" / source).read_text().split("\n"), 1) if "return x + ;" in text)
    assert f"{source}:{line}:" in message and "error" in message
    assert isinstance(caught.value, RuntimeError)  # what Brian2's make raises
    assert (tmp_path / "broken" / "sobuild_build.log").exists()
