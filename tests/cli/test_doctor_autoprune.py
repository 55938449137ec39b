"""`sobuild doctor` on a working and on broken set-ups; the automatic background prune after
a build that takes the cache over SOBUILD_MAX_SIZE; the runtime import path stays lean."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import sobuild
from sobuild.store import prune as prune_module
from sobuild.store.index import Index
from sobuild.store.prune import AUTO_TARGET, prune_lock, start_background

from .conftest import corrupt_index, kernel_spec


def test_doctor_on_a_working_machine(filled, sobuild_cli):
    out = sobuild_cli("doctor")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "used: first compiler on the PATH" in out.stdout
    for check in ("ninja", "cache directory", "filesystem", "sqlite index", "Brian2"):
        assert check in out.stdout
    assert f"{filled.path} (writable)" in out.stdout
    assert "journal mode wal" in out.stdout.lower() or "journal mode delete" in out.stdout.lower()


def test_doctor_names_the_chosen_compiler(cache_dir, sobuild_cli):
    out = sobuild_cli("doctor", env={"SOBUILD_CXX": "g++"})
    assert out.exit_code == 0
    assert "SOBUILD_CXX) " in out.stdout and "SOBUILD_CXX is set" in out.stdout
    assert "missing; created on first build" in out.stdout and not cache_dir.exists()


def test_doctor_fails_with_what_to_do(tmp_path, sobuild_cli):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    out = sobuild_cli("doctor", env={"SOBUILD_CXX": str(tmp_path / "no-such-c++"),
                                     "SOBUILD_CACHE_DIR": str(a_file / "cache")})
    assert out.exit_code == 1
    assert "FAIL" in out.stdout and "export SOBUILD_CXX" in out.stdout
    assert "SOBUILD_CACHE_DIR" in out.stdout
    assert out.stderr.startswith("sobuild: error: 2 problem(s): compiler; cache directory")


def test_doctor_calls_a_corrupt_index_broken(filled, sobuild_cli):
    corrupt_index(filled.path)
    out = sobuild_cli("doctor")
    assert out.exit_code == 1 and "sobuild verify --repair" in out.stdout


def test_doctor_bad_setting(cache_dir, sobuild_cli):
    out = sobuild_cli("doctor", env={"SOBUILD_JOBS": "many"})
    assert out.exit_code == 1 and "settings" in out.stdout and "FAIL" in out.stdout


#: Guards against a hang only: the tests wait for the prune process to end, not for a time.
HANG = 600


def test_a_build_over_the_limit_prunes_in_the_background(cache_dir, monkeypatch):
    first = sobuild.Cache(cache_dir)
    first.load(kernel_spec(20))
    first.flush()
    one = Index(first.layout).query("SELECT bytes FROM artifacts")[0]["bytes"]
    # room for two shared objects: the third build goes over and starts the prune
    monkeypatch.setenv("SOBUILD_MAX_SIZE", str(int(2.5 * one)))
    started = []  # the background prunes the flushes start (the real ones, recorded)
    real_start = prune_module.start_background

    def start_background(layout):
        started.append(real_start(layout))
        return started[-1]

    monkeypatch.setattr(prune_module, "start_background", start_background)
    cache = sobuild.Cache(cache_dir)
    time.sleep(0.05)  # later last uses for kernels 21 and 22 than for 20 (LRU order)
    cache.load(kernel_spec(21))
    cache.flush()
    assert started == [], "a prune started while the cache was under its limit"
    time.sleep(0.05)
    cache.load(kernel_spec(22))
    cache.flush()
    assert len(started) == 1 and started[0] is not None, "going over the limit started no prune"
    assert started[0].wait(timeout=HANG) == 0
    assert prune_module.total_bytes(Index(cache.layout)) <= AUTO_TARGET * 2.5 * one
    fresh = sobuild.Cache(cache_dir)
    assert fresh.lookup(kernel_spec(20)) is None  # the least recently used went
    assert fresh.lookup(kernel_spec(21)) is not None and fresh.lookup(kernel_spec(22)) is not None
    assert len(list(cache.layout.iter_artifact_dirs())) == 2


def test_only_one_background_prune_at_a_time(cache_dir):
    cache = sobuild.Cache(cache_dir)
    held = prune_lock(cache.layout)
    assert held.try_acquire()
    try:
        assert start_background(cache.layout) is None  # one is running: none started
    finally:
        held.release()
    proc = start_background(cache.layout)
    assert proc is not None and proc.wait(timeout=HANG) == 0


def test_the_runtime_import_path_loads_no_cli_library(cache_dir):
    code = ("import sys, sobuild\n"
            "c = sobuild.Cache()\n"
            "c.load(sobuild.KernelSpec(source='void run(int32_t n) {}', entry='void run(int32_t n)'))\n"
            "c.flush()\n"
            "print(sorted({'typer', 'rich', 'sqlite_utils', 'click'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_build_progress_is_reported_per_batch(cache_dir):
    """What `sobuild prebuild` draws its bar from: (0, n) when a batch starts, then (i, n)."""
    calls = []
    cache = sobuild.Cache(cache_dir, jobs=2)
    cache.progress = lambda done, total: calls.append((done, total))
    cache.load_many([kernel_spec(i) for i in (30, 31, 32, 33)])
    assert calls[0] == (0, 2) and sorted(calls[1:]) == [(1, 2), (2, 2)]
    calls.clear()
    cache.load_many([kernel_spec(30)])  # a hit: nothing built, nothing reported
    assert calls == []


@pytest.mark.brian
def test_the_brian_adapter_loads_no_cli_library():
    code = ("import sys, sobuild.brian_adapter\n"
            "print(sorted({'typer', 'rich', 'sqlite_utils', 'click'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
