"""Fixtures of the standalone tests: Brian2's cpp_standalone device in this process, its
projects built through sobuild into one cache per module (or by Brian2's make)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def standalone_cache(tmp_path_factory):
    """One sobuild cache for a module's standalone builds: objects are shared between them."""
    return tmp_path_factory.mktemp("standalone-cache")


@pytest.fixture
def standalone(standalone_cache):
    """The cpp_standalone device (``build_on_run=False``) with the module's cache; back to
    the runtime device and default preferences afterwards."""
    import brian2
    from brian2.devices.device import reinit_devices

    import sobuild.brian_adapter  # noqa: F401  (builds standalone projects through sobuild)

    # a clean device: an earlier test of this worker may have left the standalone device
    # holding weak references to objects since collected (a ReferenceError in its build)
    reinit_devices()
    brian2.prefs.reset_to_defaults()
    brian2.prefs["codegen.runtime.sobuild.cache_dir"] = str(standalone_cache)
    brian2.prefs.logging.warn_for_unused_objects = False
    brian2.set_device("cpp_standalone", build_on_run=False)
    brian2.start_scope()
    yield brian2.get_device()
    reinit_devices()
    brian2.set_device("runtime")
    brian2.prefs.reset_to_defaults()
    brian2.defaultclock.dt = 0.1 * brian2.ms
