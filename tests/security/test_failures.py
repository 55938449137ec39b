"""A kernel that does not compile is compiled once, not by every process (issue 12: 10).

Its failure is kept under its key and toolchain: the next process gets the same BuildError
without running the compiler. A changed source or flag, or SOBUILD_RETRY_FAILED=1, builds
again. Each process is a real one; compiles are counted by a g++ wrapper.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CountingCompiler

#: One process loading one kernel: what it computed, or the BuildError it got.
LOAD = """
import json, sys
import numpy as np
import sobuild
cache_dir, body, flags = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
spec = sobuild.KernelSpec(source="void run(double* v, int32_t n) { " + body + " }",
                          entry="void run(double* v, int32_t n)", flags=tuple(flags))
out = {}
try:
    kernel = sobuild.Cache(cache_dir).load(spec)
    v = np.array([1.0, 2.0])
    kernel(v, v.size)
    out["values"] = v.tolist()
except sobuild.BuildError as exc:
    out["message"] = str(exc)
    out["failures"] = [{"first_lines": f.first_lines, "source": open(f.source_path).read(),
                        "remembered": getattr(f, "remembered", None)} for f in exc.failures]
print(json.dumps(out))
"""

BROKEN = "for (int i = 0; i < n; i++) v[i] = not_declared_anywhere(v[i]);"
ALSO_BROKEN = "for (int i = 0; i < n; i++) v[i] = also_not_declared(v[i]);"
FIXED = "for (int i = 0; i < n; i++) v[i] = v[i] * 10;"


class Runs:
    """Processes loading a kernel with a compiler that counts its compiles."""

    def __init__(self, cache: Path, directory: Path):
        self.cache = cache
        self.compiler = CountingCompiler(directory)

    def load(self, body: str, flags: tuple[str, ...] = (), **env: str) -> tuple[dict, int]:
        """What the process got, and how many compiles it ran."""
        try:
            proc = subprocess.run([sys.executable, "-c", LOAD, str(self.cache), body,
                                   json.dumps(flags)], capture_output=True, text=True,
                                  timeout=300, env={**self.compiler.env, **env})
        except subprocess.TimeoutExpired:
            pytest.fail("the load did not finish within 300 s")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.splitlines()[-1]), self.compiler.take()


@pytest.fixture
def runs(cache_dir, tmp_path) -> Runs:
    return Runs(cache_dir, tmp_path)


def test_a_failed_build_is_remembered(runs):
    first, compiles = runs.load(BROKEN)
    assert compiles == 1
    (failure,) = first["failures"]
    assert any("not_declared_anywhere" in line for line in failure["first_lines"]), failure
    assert BROKEN in failure["source"]
    assert failure["remembered"] is not True

    for _ in range(2):  # every later process: the same error, no compiler
        again, compiles = runs.load(BROKEN)
        assert compiles == 0, "the compiler ran again for a kernel known not to compile"
        (remembered,) = again["failures"]
        assert remembered["first_lines"] == failure["first_lines"]
        assert remembered["source"] == failure["source"]
        assert remembered["remembered"] is True
        assert "failed before" in again["message"] and "SOBUILD_RETRY_FAILED" in again["message"]
        assert again["message"].splitlines()[0] == first["message"].splitlines()[0]


def test_a_changed_source_or_flag_builds_again(runs):
    assert runs.load(BROKEN)[1] == 1
    other, compiles = runs.load(ALSO_BROKEN)  # another kernel: its own build
    assert compiles == 1 and other["failures"][0]["remembered"] is not True
    assert any("also_not_declared" in line for line in other["failures"][0]["first_lines"])
    flagged, compiles = runs.load(BROKEN, ("-O1",))
    assert compiles == 1 and flagged["failures"][0]["remembered"] is not True
    fixed, compiles = runs.load(FIXED)
    assert compiles == 1 and fixed == {"values": [10.0, 20.0]}
    assert runs.load(BROKEN)[1] == 0  # the first one is still remembered


def test_retry_failed_builds_again(runs):
    assert runs.load(BROKEN)[1] == 1
    retried, compiles = runs.load(BROKEN, SOBUILD_RETRY_FAILED="1")
    assert compiles == 1
    (failure,) = retried["failures"]
    assert failure["remembered"] is not True
    assert any("not_declared_anywhere" in line for line in failure["first_lines"])
    again, compiles = runs.load(BROKEN)  # the retry's failure is remembered in turn
    assert compiles == 0 and again["failures"][0]["remembered"] is True
