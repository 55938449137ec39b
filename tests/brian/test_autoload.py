"""Child processes know the 'sobuild' target: the start-up hook installed with sobuild."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

CHILD = """
import sys
from brian2 import NeuronGroup, prefs, run, ms
prefs.codegen.target = "sobuild"   # no import of sobuild in this script
group = NeuronGroup(3, "dv/dt = -v / (10*ms) : 1")
group.v = [1, 2, 3]
run(1 * ms)
print(repr(list(group.v[:])), "sobuild.brian_adapter" in sys.modules)
"""


INHERIT = object()  #: run_child's ``env_value`` for the environment of this process as it is


def run_child(tmp_path, env_value) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if env_value is not INHERIT:
        env.pop("SOBUILD_BRIAN_AUTOLOAD", None)
        if env_value is not None:
            env["SOBUILD_BRIAN_AUTOLOAD"] = env_value
    env["SOBUILD_CACHE_DIR"] = str(tmp_path / "cache")
    return subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env, capture_output=True, text=True, timeout=300,
    )


def test_a_child_of_a_process_that_imported_the_adapter_runs_the_sobuild_target(tmp_path):
    """conftest imported sobuild.brian_adapter in this process and sets no variable: the
    child inherits what the adapter set, and the start-up hook imports the adapter."""
    result = run_child(tmp_path, INHERIT)
    assert result.returncode == 0, result.stderr
    values, adapter_loaded = result.stdout.rsplit(" ", 1)
    assert adapter_loaded.strip() == "True"
    expected = np.array([1.0, 2.0, 3.0]) * np.exp(-0.1)
    np.testing.assert_allclose(eval(values), expected, rtol=1e-6)
    assert list((tmp_path / "cache").glob("**/lib.so")), "no kernel was built in the cache"


def test_without_autoload_brian2_does_not_know_the_target(tmp_path):
    for value in (None, "0"):
        result = run_child(tmp_path, value)
        assert result.returncode != 0
        assert "Unknown code generation target: sobuild" in result.stderr
