"""A flipped byte is caught before dlopen; a corrupt or locked index never stops a lookup."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from sobuild.store.index import Index
from sobuild.store.layout import Layout

from .conftest import expected_values, run_worker, worker_env

ONE_UNIT = worker_env(SOBUILD_JOBS="1")  # a batch's kernels share one artifact


def test_flipped_byte_is_caught_before_dlopen_and_rebuilt(cache_dir):
    run_worker(cache_dir, kernels=2, tag="flip", env=ONE_UNIT)
    layout = Layout(cache_dir)
    (artifact,) = layout.iter_artifact_dirs()
    library = artifact / "lib.so"
    data = bytearray(library.read_bytes())
    data[len(data) // 2] ^= 0xFF
    library.chmod(0o644)
    library.write_bytes(bytes(data))

    report = run_worker(cache_dir, kernels=2, tag="flip", env=ONE_UNIT)
    assert report["values"] == expected_values(2)
    assert any("corrupt" in w for w in report["warnings"]), report["warnings"]
    counters = Index(layout).counters()
    assert counters["corrupt"] == 1 and counters["builds"] == 4
    (rebuilt,) = layout.iter_artifact_dirs()
    assert (rebuilt / "lib.so").read_bytes() != bytes(data)
    assert not list(layout.tmp.iterdir())  # the corrupt entry was set aside and deleted

    again = run_worker(cache_dir, kernels=2, tag="flip", env=ONE_UNIT)
    assert again["warnings"] == [] and Index(layout).counters()["corrupt"] == 1


def test_garbage_index_never_stops_a_lookup_and_is_rebuilt(cache_dir):
    run_worker(cache_dir, kernels=3, tag="garbage", env=ONE_UNIT)
    layout = Layout(cache_dir)
    layout.index.write_bytes(b"this is not an sqlite database\n" * 100)

    report = run_worker(cache_dir, kernels=4, tag="garbage", env=ONE_UNIT)  # 3 hits and a build
    assert report["values"] == expected_values(4)
    assert any("could not be updated" in w and "verify --repair" in w
               for w in report["warnings"]), report["warnings"]

    counts = Index(layout).rebuild()
    assert counts == {"artifacts": 2, "keys": 4}
    rows = Index(layout).query("SELECT kind, kernels FROM artifacts ORDER BY kernels")
    assert [(r["kind"], r["kernels"]) for r in rows] == [("shared_object", 1),
                                                         ("shared_object", 3)]
    assert run_worker(cache_dir, kernels=4, tag="garbage", env=ONE_UNIT)["warnings"] == []
    assert Index(layout).counters()["hits"] == 4


HOLD_EXCLUSIVE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


def test_locked_index_never_stops_a_lookup(cache_dir):
    env = {**ONE_UNIT, "SOBUILD_SQLITE_WAL": "0", "SOBUILD_SQLITE_TIMEOUT": "0.5"}
    run_worker(cache_dir, env, kernels=2, tag="locked")
    layout = Layout(cache_dir)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_EXCLUSIVE, str(layout.index)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        report = run_worker(cache_dir, env, kernels=3, tag="locked")  # 2 hits, 1 build
        assert report["values"] == expected_values(3)
        assert any("could not be updated" in w and "locked" in w for w in report["warnings"])
    finally:
        holder.communicate("\n")
    assert Index(layout).journal_mode() == "delete"
    assert Index(layout).counters()["builds"] == 2  # the locked-out batch was dropped
    assert Index(layout).rebuild() == {"artifacts": 2, "keys": 3}
    conn = sqlite3.connect(layout.index)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
