"""The sqlite index beside the files: entries, sizes, use and counters.

Files are the truth; this index only accelerates ``stats``, ``ls`` and ``prune`` and records
use. Every write is one batched transaction (``IndexBatch``), made after a build or at exit.
A missing, locked or corrupt index never stops a lookup: failures are reported once and the
batch is dropped. ``rebuild`` recreates it from the files.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .filesystems import busy_timeout, use_wal
from .layout import Layout
from .publish import fsync_path

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY,          -- digest of a shared object, or the key of a data entry
    kind TEXT NOT NULL,           -- 'shared_object' or 'data'
    namespace TEXT NOT NULL DEFAULT 'default',
    bytes INTEGER NOT NULL DEFAULT 0,
    toolchain TEXT NOT NULL DEFAULT '',
    build_seconds REAL NOT NULL DEFAULT 0,  -- compile (or compute) time spent once
    kernels INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL,
    last_use REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS artifacts_last_use ON artifacts(last_use);
CREATE TABLE IF NOT EXISTS keys (
    key TEXT PRIMARY KEY,
    artifact TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS keys_artifact ON keys(artifact);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL DEFAULT 0
);
"""


@dataclass
class IndexBatch:
    """Everything one process has to tell the index, written in one transaction."""

    artifacts: list[dict] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    counters: Counter = field(default_factory=Counter)
    uses: dict[str, list] = field(default_factory=lambda: defaultdict(lambda: [0, 0.0]))

    def count(self, name: str, amount: float = 1) -> None:
        self.counters[name] += amount

    def use(self, artifact: str, when: float | None = None) -> None:
        entry = self.uses[artifact]
        entry[0] += 1
        entry[1] = max(entry[1], when or time.time())

    def __bool__(self) -> bool:
        return bool(self.artifacts or self.keys or self.counters or self.uses)


class Index:
    """The sqlite file of one cache directory."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.path = layout.index
        self._warned = False

    def connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            _create_with_umask(self.path)
        timeout = busy_timeout()
        conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        # The index can be rebuilt from the files: it needs no fsync per transaction.
        conn.execute("PRAGMA synchronous=NORMAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            mode = "WAL" if use_wal(self.layout.root) else "DELETE"
            conn.execute(f"PRAGMA journal_mode={mode}")
            conn.executescript(SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return conn

    def journal_mode(self) -> str:
        with self._closing() as conn:
            return conn.execute("PRAGMA journal_mode").fetchone()[0]

    def _closing(self):
        import contextlib

        return contextlib.closing(self.connect())

    def write(self, batch: IndexBatch) -> bool:
        """Apply ``batch`` in one transaction; on any sqlite failure warn once and drop it."""
        if not batch:
            return True
        try:
            with self._closing() as conn:
                conn.execute("BEGIN IMMEDIATE")
                self._apply(conn, batch)
                conn.execute("COMMIT")
            return True
        except (sqlite3.Error, OSError) as exc:
            if not self._warned:
                self._warned = True
                warnings.warn(f"sobuild: the index {self.path} could not be updated ({exc}); "
                              "lookups go on from the files. `sobuild verify --repair` rebuilds "
                              "it.", RuntimeWarning, stacklevel=3)
            return False

    @staticmethod
    def _apply(conn: sqlite3.Connection, batch: IndexBatch) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO artifacts (id, kind, namespace, bytes, toolchain, "
            "build_seconds, kernels, created, last_use, hits) VALUES (:id, :kind, :namespace, "
            ":bytes, :toolchain, :build_seconds, :kernels, :created, :created, 0)",
            batch.artifacts)
        conn.executemany("INSERT OR REPLACE INTO keys (key, artifact) VALUES (?, ?)",
                         batch.keys.items())
        conn.executemany(
            "UPDATE artifacts SET hits = hits + ?, last_use = MAX(last_use, ?) WHERE id = ?",
            [(n, when, artifact) for artifact, (n, when) in batch.uses.items()])
        conn.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            batch.counters.items())

    # -- reading ------------------------------------------------------------------------

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._closing() as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, params).fetchall()

    def counters(self) -> dict[str, float]:
        return {r["name"]: r["value"] for r in self.query("SELECT name, value FROM counters")}

    def reset_counters(self) -> None:
        with self._closing() as conn:
            conn.execute("UPDATE counters SET value = 0")
            conn.execute("UPDATE artifacts SET hits = 0")

    def forget(self, artifact_ids: list[str]) -> None:
        with self._closing() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM keys WHERE artifact = ?", [(a,) for a in artifact_ids])
            conn.executemany("DELETE FROM artifacts WHERE id = ?", [(a,) for a in artifact_ids])
            conn.execute("COMMIT")

    # -- rebuilding ---------------------------------------------------------------------

    def rebuild(self) -> dict[str, int]:
        """Recreate the index from the files, keeping the counters if they can be read."""
        import sqlite_utils

        try:
            counters = self.counters()
        except (sqlite3.Error, OSError):
            counters = {}
        artifacts, keys = scan_files(self.layout)
        tmp = self.path.with_name(f"index.rebuild-{time.time_ns()}.sqlite")
        _create_with_umask(tmp)
        db = sqlite_utils.Database(tmp)
        # a temp file, made durable once by the fsync before the rename: no sync per chunk
        db.conn.execute("PRAGMA synchronous=OFF")
        db.conn.executescript(SCHEMA)
        db.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db["artifacts"].insert_all(artifacts, pk="id", replace=True)
        db["keys"].insert_all(({"key": k, "artifact": a} for k, a in keys.items()), pk="key",
                              replace=True)
        db["counters"].insert_all(({"name": n, "value": v} for n, v in counters.items()),
                                  pk="name", replace=True)
        db.conn.commit()
        db.close()
        fsync_path(tmp)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        tmp.replace(self.path)
        return {"artifacts": len(artifacts), "keys": len(keys)}


def _create_with_umask(path: Path) -> None:
    """Create an empty database file whose mode the umask decides (sqlite would use 0644):
    every member of a group cache must be able to write the index and its journal."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
    except OSError:
        pass  # a read-only or missing directory: connecting reports it


def read_meta(artifact_dir: Path) -> dict:
    return json.loads((artifact_dir / "meta.json").read_text())


def scan_files(layout: Layout) -> tuple[list[dict], dict[str, str]]:
    """Index rows for what is on disk: artifacts with their meta, kernel keys, data entries."""
    artifacts: list[dict] = []
    for d in layout.iter_artifact_dirs():
        try:
            meta = read_meta(d)
            st = d.stat()
        except (OSError, ValueError):
            continue
        artifacts.append({
            "id": d.name, "kind": "shared_object", "namespace": meta.get("namespace", "default"),
            "bytes": sum(p.stat().st_size for p in d.rglob("*") if p.is_file()),
            "toolchain": meta.get("toolchain", {}).get("short_name", ""),
            "build_seconds": meta.get("build_seconds", 0.0),
            "kernels": len(meta.get("kernels", [])) or 1,
            "created": meta.get("created", st.st_mtime), "last_use": st.st_atime, "hits": 0,
        })
    keys = {}
    for f in layout.iter_kernel_files():
        try:
            keys[f.name] = json.loads(f.read_text())["artifact"]
        except (OSError, ValueError, KeyError):
            continue
    from .data import read_header

    for f in layout.iter_data_files():
        try:
            header = read_header(f)
            st = f.stat()
        except (OSError, ValueError):
            continue
        artifacts.append({
            "id": f.name, "kind": "data", "namespace": header.get("namespace", "default"),
            "bytes": st.st_size, "toolchain": "", "build_seconds": header.get("seconds", 0.0),
            "kernels": 1, "created": header.get("created", st.st_mtime),
            "last_use": st.st_atime, "hits": 0,
        })
    return artifacts, keys
