"""Nothing hangs forever on a compiler (issue 12: 8).

A compiler that hangs is stopped after SOBUILD_BUILD_TIMEOUT, with the processes that waited
for it; such a failure is not remembered, so the next build runs. A builder killed with
``kill -9`` takes its ninja and compilers along (Linux: ninja gets SIGTERM when its parent
dies). Real processes, a real g++ behind a wrapper that hangs while a marker file exists.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import gxx_wrapper, process_running, wait_for

LOAD = """
import json, sys
import numpy as np
import sobuild
spec = sobuild.KernelSpec(source="void run(double* v, int32_t n) { v[0] += 1; }",
                          entry="void run(double* v, int32_t n)")
out = {}
try:
    v = np.array([1.0])
    sobuild.Cache(sys.argv[1]).load(spec)(v, 1)
    out["values"] = v.tolist()
except sobuild.BuildError as exc:
    out["message"] = str(exc)
print(json.dumps(out))
"""


def _wait_gone(pids: list[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(process_running(pid) for pid in pids):
        assert time.monotonic() < deadline, f"compilers {pids} still run"
        time.sleep(0.02)


@pytest.fixture
def hanging(tmp_path):
    """(environment with a g++ that hangs while ``hang`` exists, the ``hang`` marker, the
    file its compiles' pids are written to)."""
    hang, pids = tmp_path / "hang", tmp_path / "pids"
    hang.touch()
    wrapper = gxx_wrapper(tmp_path / "g++-hangs", f"""
        if [ -e '{hang}' ]; then echo $$ >> '{pids}'; exec sleep 100000; fi""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOBUILD_")}
    env.update(SOBUILD_CXX=str(wrapper), SOBUILD_JOBS="1")
    return env, hang, pids


def _start(cache: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LOAD, str(cache)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _report(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.needs_proc
def test_a_hanging_compiler_stops_the_builder_and_its_waiters(tmp_path, hanging):
    env, hang, pids = hanging
    env["SOBUILD_BUILD_TIMEOUT"] = "3"
    cache = tmp_path / "cache"
    builder = _start(cache, env)
    wait_for(pids, builder)
    waiter = _start(cache, env)  # waits for the builder's lock, then builds (and hangs) too
    for report in (_report(builder), _report(waiter)):
        assert "SOBUILD_BUILD_TIMEOUT" in report["message"], report
    _wait_gone([int(pid) for pid in pids.read_text().split()])
    hang.unlink()  # the compiler works again: a timeout is not remembered as a failure
    assert _report(_start(cache, env)) == {"values": [2.0]}


@pytest.mark.needs_proc
def test_a_builder_killed_with_kill_9_leaves_no_compiler_running(tmp_path, hanging):
    env, _, pids = hanging
    builder = _start(tmp_path / "cache", env)
    wait_for(pids, builder)
    os.kill(builder.pid, signal.SIGKILL)  # the Python process alone, not its session
    builder.communicate()
    _wait_gone([int(pid) for pid in pids.read_text().split()])
