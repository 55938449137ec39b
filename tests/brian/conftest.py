"""Fixtures of the Brian2 target tests. Every test here is marked ``brian``: without Brian2
it is skipped, and fails under CI=true (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.brian)


@pytest.fixture(scope="session")
def brian_adapter():
    """The adapter, imported (it registers the 'sobuild' target)."""
    import sobuild.brian_adapter

    return sobuild.brian_adapter


@pytest.fixture(scope="session")
def brian_cache_dir(tmp_path_factory):
    """One sobuild cache for all Brian2 tests of a worker: equal kernels are built once."""
    return tmp_path_factory.mktemp("brian-sobuild-cache")


@pytest.fixture(autouse=True)
def brian_scope(brian_adapter, brian_cache_dir):
    """A fresh Brian2 scope and preferences per test, kernels in the session's cache."""
    from brian2 import prefs, start_scope

    prefs.reset_to_defaults()
    prefs["codegen.runtime.sobuild.cache_dir"] = str(brian_cache_dir)
    prefs["codegen.runtime.sobuild.codegen_cache"] = False
    start_scope()
    yield
    prefs.reset_to_defaults()


@pytest.fixture
def run_with():
    """``run_with(target, model)``: build and run ``model()`` (returning a dict of arrays)
    in a fresh scope with ``target`` for all code, after ``seed(seed_value)``."""
    import numpy as np
    from brian2 import prefs, seed, start_scope

    def run(target: str, model, seed_value: int | None = 4321):
        start_scope()
        prefs.codegen.target = target
        prefs.codegen.string_expression_target = target
        if seed_value is not None:
            seed(seed_value)
        # copies: views of dynamic arrays die with their objects
        return {name: np.array(value) for name, value in model().items()}

    return run


@pytest.fixture
def compare(run_with):
    """``compare(model)``: run under numpy and sobuild, assert equal results, return them."""
    import numpy as np

    def check(model, rtol=1e-9, atol=1e-12):
        expected = run_with("numpy", model)
        got = run_with("sobuild", model)
        assert sorted(got) == sorted(expected)
        for name in expected:
            np.testing.assert_allclose(np.asarray(got[name], dtype=float),
                                       np.asarray(expected[name], dtype=float),
                                       rtol=rtol, atol=atol, err_msg=name)
        return got

    return check
