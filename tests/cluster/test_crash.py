"""kill -9 of a builder while it compiles and while it publishes: nothing half-written can be
loaded, its locks are taken over, the next process builds and loads, leftovers are cleaned."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sobuild.store.cleanup import clean_temp, find_leftovers
from sobuild.store.index import Index
from sobuild.store.layout import Layout
from sobuild.store.locks import KeyLock

from .conftest import (
    assert_nothing_half_written,
    expected_values,
    gxx_wrapper,
    run_worker,
    start_worker,
    wait_for,
    worker_env,
)

#: For each compile when $SLOW_COMPILE_MARKER is set: write it, then wait (time to kill).
SLOW_COMPILE = '''if [ -n "$SLOW_COMPILE_MARKER" ]; then : > "$SLOW_COMPILE_MARKER"; sleep 120; fi'''


def kill_session(proc: subprocess.Popen) -> None:
    """kill -9 the worker with its ninja and compiler (as a batch system ends a job)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


@pytest.mark.parametrize("locks", ["auto", "file"], ids=["flock", "lockfiles"])
def test_kill_during_compile(cache_dir, tmp_path, locks):
    wrapper = gxx_wrapper(tmp_path / "slow-g++", SLOW_COMPILE)
    marker = tmp_path / "compiling"
    env = worker_env(SOBUILD_CXX=str(wrapper), SOBUILD_LOCKS=locks)
    proc = start_worker(cache_dir, {**env, "SLOW_COMPILE_MARKER": str(marker)}, kernels=3,
                        tag="kill-compile")
    wait_for(marker, proc)
    layout = Layout(cache_dir)
    holders = [KeyLock(p).holder() for p in layout.locks.glob("??/*.lock")]
    assert len(holders) == 3
    assert all(h["pid"] == proc.pid and h["host"] == socket.gethostname() for h in holders)
    kill_session(proc)

    assert not list(layout.iter_kernel_files()) and not list(layout.iter_artifact_dirs())
    leftovers = [p.name for p, _ in find_leftovers(layout, older_than=0)]
    assert any(name.startswith("build-") for name in leftovers)
    if locks == "file":  # the dead holder's lock files are still there, to be taken over
        assert len(list(layout.locks.glob("??/*.lock"))) == 3

    report = run_worker(cache_dir, env, kernels=3, tag="kill-compile")
    assert report["values"] == expected_values(3) and report["warnings"] == []
    assert Index(layout).counters()["builds"] == 3
    assert_nothing_half_written(layout)

    cleaned = clean_temp(layout, older_than=0)
    assert {p.name for p in cleaned.removed} >= set(leftovers) and cleaned.bytes > 0
    assert not list(layout.tmp.iterdir())


@pytest.mark.parametrize("point", ["staging", "publish", "keys"])
def test_kill_during_publish(cache_dir, tmp_path, point):
    marker = tmp_path / "stopped"
    proc = start_worker(cache_dir, kernels=2, tag="kill-publish", stop_at=point, marker=marker)
    wait_for(marker, proc)
    kill_session(proc)

    layout = Layout(cache_dir)
    assert_nothing_half_written(layout)
    assert not list(layout.iter_kernel_files())
    artifacts = list(layout.iter_artifact_dirs())
    assert len(artifacts) == (1 if point == "keys" else 0)

    report = run_worker(cache_dir, kernels=2, tag="kill-publish")
    assert report["values"] == expected_values(2) and report["warnings"] == []
    assert_nothing_half_written(layout)
    assert "corrupt" not in Index(layout).counters()

    cleaned = clean_temp(layout, older_than=0)
    if point != "keys":
        assert any(p.name.startswith("publish-") for p in cleaned.removed)
    assert not list(layout.tmp.iterdir())


def test_clean_temp_keeps_recent_work(cache_dir):
    layout = Layout(cache_dir)
    busy = layout.tmp / "build-1-abc"
    busy.mkdir(parents=True)
    (busy / "unit0.cpp").write_text("int x;")
    old = layout.tmp / "publish-2-def"
    old.mkdir()
    (old / "lib.so").write_bytes(b"x" * 100)
    past = time.time() - 7200
    for p in (old / "lib.so", old):
        os.utime(p, (past, past))
    dry = clean_temp(layout, older_than=3600, dry_run=True)
    assert dry.removed == [old] and dry.bytes == 100 and old.exists()
    assert clean_temp(layout, older_than=3600).removed == [old]
    assert not old.exists() and busy.exists()


# -- taking over locks ------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from sobuild.store.locks import KeyLock
lock = KeyLock(sys.argv[1], kind=sys.argv[2])
assert lock.try_acquire()
print("held", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("kind", ["flock", "file"])
def test_lock_of_a_killed_process_is_taken_over(tmp_path, kind):
    path = tmp_path / "locks" / "ab" / "key.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), kind],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    lock = KeyLock(path, kind=kind)
    assert not lock.try_acquire()
    assert not lock.acquire(timeout=0.3)
    assert lock.holder()["pid"] == holder.pid
    holder.kill()
    holder.wait()
    # taken over at once (the holder is gone): the bound only guards against a hang
    assert lock.acquire(timeout=300)
    assert lock.holder()["pid"] == os.getpid()
    lock.release()
    if kind == "file":
        assert not path.exists()
    else:  # the flock file stays, emptied: an inode per key, no block
        assert path.stat().st_size == 0


def _foreign_lock(path: Path, age: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": 4242, "host": "node-that-crashed", "time": 0}))
    when = time.time() - age
    os.utime(path, (when, when))


def test_lock_file_of_another_host_waits_for_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("SOBUILD_LOCK_TIMEOUT", "60")
    path = tmp_path / "key.lock"
    _foreign_lock(path, age=5)  # refreshed 5 s ago: its holder on the other node is alive
    assert not KeyLock(path, kind="file").try_acquire()
    _foreign_lock(path, age=61)  # not refreshed for longer than the timeout: dead
    lock = KeyLock(path, kind="file")
    assert lock.try_acquire()
    assert lock.holder()["host"] == socket.gethostname()
    lock.release()
    assert not path.exists() and not list(tmp_path.glob("*.stale-*"))


def test_empty_lock_file_is_taken_over_after_a_grace_period(tmp_path):
    path = tmp_path / "key.lock"
    path.touch()  # a holder killed between creating and writing it
    assert not KeyLock(path, kind="file").try_acquire()
    old = time.time() - 60
    os.utime(path, (old, old))
    lock = KeyLock(path, kind="file")
    assert lock.try_acquire()
    lock.release()


def test_bad_lock_setting_says_what_to_use(monkeypatch, tmp_path):
    monkeypatch.setenv("SOBUILD_LOCKS", "posix")
    with pytest.raises(ValueError, match="'auto', 'flock' or 'file'"):
        KeyLock(tmp_path / "k.lock")


HOLD_READ_ONLY = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)  # as another member of a group cache would
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def test_idle_lock_files_are_removed_held_ones_kept(tmp_path):
    layout = Layout(tmp_path / "cache")
    idle, held, excl = (layout.lock_file(c * 32) for c in "abc")
    lock = KeyLock(idle, kind="flock")
    assert lock.try_acquire()
    lock.release()
    held.parent.mkdir(parents=True)
    held.touch()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_READ_ONLY, str(held)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        file_lock = KeyLock(excl, kind="file")
        assert file_lock.try_acquire()
        result = clean_temp(layout, older_than=0)
        assert result.idle_locks == 1 and result.removed == []
        assert not idle.exists() and held.exists() and excl.exists()
        file_lock.release()
    finally:
        holder.kill()
        holder.wait()
    assert clean_temp(layout, older_than=0).idle_locks == 1 and not held.exists()
