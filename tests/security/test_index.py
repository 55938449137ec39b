"""The index obeys the trust rules and never stalls or lies: a planted link, a FIFO, another
user's file, a lock held by another process, entries that never reached the index.

Each attack runs against real sqlite files and real processes: a second Python holding
``BEGIN EXCLUSIVE``, the CLI as a subprocess (killed if it hangs), real builds.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sobuild.store.index import Index, IndexBatch
from sobuild.store.layout import Layout

from .conftest import MALLORY, run_worker, worker_env

#: A hung command is killed (a hung wait fails) after this long: a guard, not a measure.
HANG = 60
CLI = "import sys; from sobuild.cli import main; sys.argv[0] = 'sobuild'; main()"
HOLD_EXCLUSIVE = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print(os.getpid(), flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""
WRITE_ONCE = """
import sys, warnings
from sobuild.store.index import Index, IndexBatch
from sobuild.store.layout import Layout
batch = IndexBatch()
batch.count("hits")
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    written = Index(Layout(sys.argv[1]), timeout=1.0).write(batch)
print(written, [str(w.message) for w in seen])
"""


def sobuild(cache_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``sobuild ARGS --cache-dir DIR`` in a process of its own (killed after HANG s)."""
    return subprocess.run([sys.executable, "-c", CLI, *args, "--cache-dir", str(cache_dir)],
                          capture_output=True, text=True, timeout=HANG,
                          env=worker_env(**env))


def a_batch() -> IndexBatch:
    batch = IndexBatch()
    batch.count("hits", 2)
    return batch


def users_own_database(path: Path) -> bytes:
    """Another sqlite database of the user (rollback journal), and its bytes."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()
    return path.read_bytes()


def tables_and_journal(path: Path) -> tuple[list[str], str]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]
        return tables, conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def test_a_planted_index_link_never_reaches_the_users_other_database(cache_dir, tmp_path):
    other = tmp_path / "notes.sqlite"
    before = users_own_database(other)
    run_worker(cache_dir, kernels=1, tag="index-link")
    layout = Layout(cache_dir)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{layout.index}{suffix}").unlink(missing_ok=True)
    os.symlink(other, layout.index)

    with pytest.warns(RuntimeWarning, match="symbolic link"):
        assert Index(layout, timeout=1.0).write(a_batch()) is False
    report = run_worker(cache_dir, kernels=2, tag="index-link")  # a hit and a build, flushed
    assert any("symbolic link" in w for w in report["warnings"]), report["warnings"]
    stats = sobuild(cache_dir, "stats", "--json")
    assert stats.returncode == 0 and json.loads(stats.stdout)["shared_objects"] == 2
    assert "symbolic link" in stats.stderr
    assert other.read_bytes() == before
    assert tables_and_journal(other) == (["notes"], "delete")

    repaired = sobuild(cache_dir, "verify", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert stat.S_ISREG(os.lstat(layout.index).st_mode)
    assert other.read_bytes() == before
    assert Index(layout).query("SELECT COUNT(*) FROM keys")[0][0] == 2


def test_a_locked_index_costs_a_run_one_second_and_is_called_locked(cache_dir, monkeypatch):
    monkeypatch.setenv("SOBUILD_SQLITE_WAL", "0")  # a rollback journal: readers wait too
    cache_dir.mkdir()
    layout = Layout(cache_dir)
    assert Index(layout).write(a_batch())
    inode = os.stat(layout.index).st_ino
    # a run gives up after its own second, whatever the commands' setting: were that one
    # used, the write below would wait an hour (until the holder lets go in `finally`)
    monkeypatch.setenv("SOBUILD_SQLITE_TIMEOUT", "3600")
    run_index = Index(layout, timeout=1.0)
    written = []
    writer = threading.Thread(target=lambda: written.append(run_index.write(a_batch())))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_EXCLUSIVE, str(layout.index)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(holder.stdout.readline())
        with pytest.warns(RuntimeWarning, match=f"locked by process {pid}"):
            writer.start()
            writer.join(HANG)  # a guard against a hang, not a measure of the second
        assert not writer.is_alive(), f"the run's write still waited after {HANG} s"
        assert written == [False]

        quick = {"SOBUILD_SQLITE_WAL": "0", "SOBUILD_SQLITE_TIMEOUT": "1"}
        stats = sobuild(cache_dir, "stats", "--json", **quick)
        assert stats.returncode == 0 and f"locked by process {pid}" in stats.stderr
        assert "corrupt" not in stats.stderr and "verify --repair" not in stats.stderr
        pruned = sobuild(cache_dir, "prune", "--max-size", "1", **quick)
        assert pruned.returncode == 1 and f"locked by process {pid}" in pruned.stderr
        verified = sobuild(cache_dir, "verify", **quick)
        out = verified.stdout + verified.stderr
        assert f"locked by process {pid}" in out and "corrupt" not in out, out
        doctored = sobuild(cache_dir, "doctor", **quick)
        assert f"locked by process {pid}" in doctored.stdout
        assert "verify --repair" not in doctored.stdout, doctored.stdout
        repaired = sobuild(cache_dir, "verify", "--repair", **quick)
        assert repaired.returncode == 1 and f"locked by process {pid}" in repaired.stderr
        assert os.stat(layout.index).st_ino == inode  # not replaced
    finally:
        holder.communicate("\n", timeout=HANG)
        if writer.is_alive():
            writer.join()
    assert run_index.write(a_batch())
    assert Index(layout).counters() == {"hits": 4.0, "index_skipped": 1.0}


def test_a_fifo_at_the_index_or_an_entry_hangs_nothing(cache_dir):
    cache_dir.mkdir()
    layout = Layout(cache_dir)
    os.mkfifo(layout.index)
    data = layout.data_file("ab" * 16)  # read when the index is rebuilt or cannot be read
    data.parent.mkdir(parents=True)
    os.mkfifo(data)

    runtime = subprocess.run([sys.executable, "-c", WRITE_ONCE, str(cache_dir)],
                             capture_output=True, text=True, timeout=HANG)
    assert runtime.stdout.startswith("False") and "not a regular file" in runtime.stdout
    stats = sobuild(cache_dir, "stats")
    assert stats.returncode == 0 and "not a regular file" in stats.stderr
    verified = sobuild(cache_dir, "verify")
    assert "not a regular file" in verified.stdout + verified.stderr
    assert stat.S_ISFIFO(os.lstat(layout.index).st_mode)  # nothing replaced it unasked
    repaired = sobuild(cache_dir, "verify", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert stat.S_ISREG(os.lstat(layout.index).st_mode)


@pytest.mark.needs_root
def test_an_index_of_another_user_is_not_used(cache_dir):
    cache_dir.mkdir()
    layout = Layout(cache_dir)
    assert Index(layout).write(a_batch())
    os.chown(layout.index, MALLORY, MALLORY)

    with pytest.warns(RuntimeWarning, match="belongs to another user"):
        assert Index(layout, timeout=1.0).write(a_batch()) is False
    assert "belongs to another user" in sobuild(cache_dir, "stats").stderr
    assert sobuild(cache_dir, "verify", "--repair").returncode == 0
    assert os.stat(layout.index).st_uid == os.geteuid()


def test_the_index_file_gets_its_exact_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        private, group = Layout(tmp_path / "private"), Layout(tmp_path / "group")
        private.root.mkdir()
        group.root.mkdir()
        Index(private).write(a_batch())
        os.umask(0o077)
        Index(group, trusted_gid=os.getegid(), file_mode=0o664).write(a_batch())
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(private.index).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(group.index).st_mode) == 0o664


def test_entries_that_never_reached_the_index_are_counted_and_pruned(cache_dir):
    env = worker_env(SOBUILD_JOBS="1")  # one batch, one artifact
    run_worker(cache_dir, env, kernels=2, tag="unindexed-a")
    run_worker(cache_dir, env, kernels=1, tag="unindexed-b")
    layout = Layout(cache_dir)
    artifacts = sorted(p.name for p in layout.iter_artifact_dirs())
    assert len(artifacts) == 2
    conn = sqlite3.connect(layout.index, isolation_level=None)
    conn.execute("DELETE FROM artifacts")  # as if killed between publish and index write
    conn.execute("DELETE FROM keys")
    conn.execute("INSERT INTO artifacts (id, kind, bytes, created, last_use) "
                 "VALUES (?, 'shared_object', 999999, 0, 0)", ("f" * 32,))  # gone from disk
    conn.close()

    stats = json.loads(sobuild(cache_dir, "stats", "--json").stdout)
    on_disk = sum(f.stat().st_size for f in cache_dir.glob("artifacts/*/*/*"))
    assert (stats["shared_objects"], stats["kernels"], stats["bytes"]) == (2, 3, on_disk)
    assert {r["id"] for r in Index(layout).query("SELECT id FROM artifacts")} == set(artifacts)

    conn = sqlite3.connect(layout.index, isolation_level=None)
    conn.execute("DELETE FROM artifacts")
    conn.close()
    pruned = sobuild(cache_dir, "prune", "--max-size", "1", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert sorted(v["id"] for v in json.loads(pruned.stdout)["removed"]) == artifacts
    assert not list(layout.iter_artifact_dirs()) and not list(layout.iter_kernel_files())
