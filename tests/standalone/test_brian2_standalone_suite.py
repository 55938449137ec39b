"""Brian2's own standalone tests with the projects built through sobuild.

``brian2.test([], test_codegen_independent=False, test_standalone='cpp_standalone')`` in a
fresh process that imported the adapter, on an empty cache: the whole suite is ``slow``
(hours on 2 cores), four of its tests run in CI: three of ``test_cpp_standalone.py``
(several connect() calls, run_args given as a dict, ``device.delete()`` leaving no file
behind) and a wrong report given to cpp_standalone (the step loop's wrapper once changed
what it got). Tests run one after the other (no xdist), each in its fresh temporary project
directory, as Brian2 runs them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.brian

SCRIPT = """
import sys
import sobuild.brian_adapter  # noqa: F401  (standalone projects build through sobuild)
import brian2
args = ["-p", "no:cacheprovider", "-rfE"] + sys.argv[1:]
ok = brian2.test([], test_codegen_independent=False, test_standalone="cpp_standalone",
                 test_in_parallel=[], additional_args=args)
sys.exit(0 if ok else 1)
"""

#: Tests of Brian2's test_cpp_standalone.py that CI runs.
SUBSET = ("test_multiple_connects", "test_change_parameter_without_recompile_dict_syntax",
          "test_delete_directory", "test_multiple_runs_report_standalone_incorrect")


def run_suite(tmp_path, *args: str) -> tuple[str, dict[str, int]]:
    """Brian2's standalone tests in a fresh process: its output and the outcome counts."""
    cache = tmp_path / "cache"
    env = dict(os.environ, SOBUILD_CACHE_DIR=str(cache), SOBUILD_STANDALONE="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True,
                          text=True, env=env, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    counts: dict[str, int] = {}
    for number, outcome in re.findall(r"(\d+) (passed|failed|error|errors|skipped)", output):
        counts[outcome] = counts.get(outcome, 0) + int(number)
    assert proc.returncode == 0, output[-8000:]
    objects = list((cache / "data").rglob("*")) if (cache / "data").exists() else []
    assert any(p.is_file() for p in objects), "no object file went into sobuild's cache"
    return output, counts


def test_a_subset_of_brian2s_standalone_tests(tmp_path):
    _, counts = run_suite(tmp_path, "-k", " or ".join(SUBSET))
    assert counts.get("passed", 0) >= len(SUBSET) and not counts.get("failed")


@pytest.mark.slow
def test_brian2s_standalone_tests(tmp_path):
    output, counts = run_suite(tmp_path)
    assert counts.get("passed", 0) > 100 and not counts.get("failed"), output[-8000:]
