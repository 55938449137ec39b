"""Many processes on empty local caches, one warm remote: none of them compiles."""

from __future__ import annotations

import json
import time

from .conftest import expected_values, remote_count

PROCESSES = 32


def test_32_processes_on_empty_caches_and_a_warm_remote_compile_nothing(
        machines, remote_server, tmp_path):
    machines("filler").run("--kernels", "4", "--tag", "many")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    # 32 processes on 2 cores wait for a CPU far longer than the default timeouts allow (which
    # would rightly give up and build, or skip an index record): here the point is that a
    # served remote is used
    patient = f"{remote_server.url}|connect-timeout=60000|operation-timeout=60000"
    workers = [machines(f"node-{i}", remote=patient, SOBUILD_REMOTE_BUDGET="600",
                        SOBUILD_SQLITE_TIMEOUT="600").start(
                   "--kernels", "4", "--tag", "many", "--barrier", str(barrier))
               for i in range(PROCESSES)]
    deadline = time.monotonic() + 600  # guards against a hang only
    while len(list(barrier.glob("ready-*"))) < PROCESSES:
        assert all(w.poll() is None for w in workers), "a worker died before the barrier"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    (barrier / "go").touch()  # all look up at once
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["values"] == expected_values(4) for r in reports)
    assert sum(r["counters"].get("builds", 0) for r in reports) == 0, \
        [r["warnings"] for r in reports if r["counters"].get("builds")]
    assert all(remote_count(r, "hits") == 4 for r in reports)
    assert all(r["warnings"] == [] for r in reports)
