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


def run_child(tmp_path, env_value: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SOBUILD_BRIAN_AUTOLOAD"}
    env["SOBUILD_CACHE_DIR"] = str(tmp_path / "cache")
    if env_value is not None:
        env["SOBUILD_BRIAN_AUTOLOAD"] = env_value
    return subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_adapter_marks_its_child_processes():
    # conftest imported sobuild.brian_adapter in this process
    assert os.environ.get("SOBUILD_BRIAN_AUTOLOAD") == "1"


def test_a_child_process_with_autoload_runs_the_sobuild_target(tmp_path):
    result = run_child(tmp_path, "1")
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
