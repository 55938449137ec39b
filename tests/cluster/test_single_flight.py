"""Many processes ask for the same missing kernels at once: each kernel is compiled once."""

from __future__ import annotations

import os
import signal
import time

import pytest

import sobuild
from sobuild.store.index import Index
from sobuild.store.layout import Layout

from .conftest import expected_values, finish, start_worker, worker_env

#: A stampede fails as hung when no worker reached the barrier for this long: the guard
#: follows progress, not a time for all of them, so a loaded machine only makes it slower.
STALL = 300
#: The same guard for each worker after the release.
HANG = 600
#: Twelve or more processes on 2 cores: the one holding the index lock may wait far longer than
#: a run's default second for a CPU (then a run rightly skips its record). The counters below
#: need every record, so the stampedes wait as long as it takes.
PATIENT_INDEX = {"SOBUILD_SQLITE_TIMEOUT": str(HANG)}


def _stampede(cache_dir, tmp_path, processes: int, kernels: int, **env) -> list[dict]:
    """Start ``processes`` workers held at a barrier, release them together, collect reports."""
    assert sobuild.Cache(cache_dir).toolchain  # the compiler probe is cached once, not 32 times
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [start_worker(cache_dir, worker_env(**env), kernels=kernels, tag="stampede",
                          barrier=barrier) for _ in range(processes)]
    try:
        ready, progress = 0, time.monotonic()
        while ready < processes:
            for proc in procs:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    pytest.fail(f"a worker ended before the barrier ({proc.returncode}):\n{out}\n{err}")
            now = len(list(barrier.glob("ready-*")))
            if now > ready:
                ready, progress = now, time.monotonic()
            elif time.monotonic() - progress > STALL:
                pytest.fail(f"{ready} of {processes} workers reached the barrier, then none for "
                            f"{STALL} s")
            time.sleep(0.05)
        (barrier / "go").touch()
        return [finish(p, timeout=HANG) for p in procs]
    finally:
        for proc in procs:  # those still held at the barrier when the test failed
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()


@pytest.mark.parametrize("locks, processes, kernels", [("auto", 32, 10), ("file", 12, 6)],
                         ids=["flock-32x10", "lockfiles-12x6"])
def test_each_missing_kernel_is_built_once(cache_dir, tmp_path, locks, processes, kernels):
    reports = _stampede(cache_dir, tmp_path, processes, kernels, SOBUILD_LOCKS=locks,
                        **PATIENT_INDEX)
    for report in reports:
        assert "error" not in report, report
        assert report["values"] == expected_values(kernels)
        assert report["warnings"] == [], report["warnings"]
        assert "Traceback" not in report["stderr"]
    counters = Index(Layout(cache_dir)).counters()
    assert counters["builds"] == kernels
    # a process that waited for another's build counts a hit: only the builders missed
    assert counters["misses"] == kernels
    assert counters["hits"] == (processes - 1) * kernels
    assert len(list(Layout(cache_dir).iter_kernel_files())) == kernels
    assert not list(Layout(cache_dir).tmp.iterdir()), "a builder left its temp dir behind"
