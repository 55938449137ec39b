"""The sqlite index beside the files: entries, sizes, use and counters.

Files are the truth; this index only accelerates ``stats``, ``ls`` and ``prune`` and records
use. Every write is one batched transaction (``IndexBatch``), made after a build or at exit.
A missing, locked, corrupt or untrusted index never stops a lookup: a write that cannot be
made within the index's ``timeout`` is skipped, counted (``index_skipped``, added to the next
write that succeeds) and reported once. ``reconcile`` brings the index in line with the
files (entries that never reached it, rows of entries that are gone); ``rebuild`` recreates
it from the files.

Trust: before sqlite opens it, the index file is opened without following links and without
blocking, and it and its side files (``-journal``, ``-wal``, ``-shm``) must be regular files
of the current user (or of the trusted group): a planted link would make sqlite write into
another database, a FIFO would hang it. (SQLite's ``nofollow`` is an open flag that Python
cannot pass; the ``file:...?nofollow=1`` URI is ignored by SQLite 3.40, so the check is ours,
and after connecting, the file sqlite opened must be the inode that was checked.)

Errors say what they are: ``IndexLockedError`` (another process holds the index: wait, never
repair; the holder's pid from ``/proc/locks`` where Linux has it), ``IndexCorruptError``
(``sobuild verify --repair`` rebuilds it), ``IndexUntrustedError`` (``verify --repair`` moves
it aside). They are ``sqlite3.OperationalError`` too, for callers that catch sqlite's errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..config import setting
from ..errors import SobuildError
from ..keys import KEY_RE
from .files import ensure_dir, opened, read_entry
from .filesystems import use_wal
from .layout import Layout
from .meta import ArtifactMeta
from .publish import fsync_path
from .trust import group_tier

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
COLUMNS = ("id", "kind", "namespace", "bytes", "toolchain", "build_seconds", "kernels",
           "created", "last_use", "hits")
INSERT_ROW = (f"INSERT OR IGNORE INTO artifacts ({', '.join(COLUMNS)}) "
              f"VALUES ({', '.join(':' + c for c in COLUMNS)})")
ADD_COUNTER = ("INSERT INTO counters (name, value) VALUES (?, ?) "
               "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value")
#: The files sqlite keeps beside the index (rollback journal, write-ahead log, shared memory).
SIDE_FILES = ("-journal", "-wal", "-shm")
#: Mode of the index in a private cache, and in a trusted group cache.
PRIVATE_MODE, GROUP_MODE = 0o644, 0o664
_BUSY = (5, 6)        # SQLITE_BUSY, SQLITE_LOCKED
_CORRUPT = (11, 26)   # SQLITE_CORRUPT, SQLITE_NOTADB
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class IndexUnavailableError(SobuildError, sqlite3.OperationalError):
    """The index cannot be used now; the message says why and what to do."""

    #: How ``sobuild verify`` names the problem.
    problem = "index unusable"


class IndexLockedError(IndexUnavailableError):
    """Another process holds the index for longer than the timeout: wait, do not repair."""

    problem = "index locked"

    def __init__(self, message: str, holder: int | None = None):
        super().__init__(message)
        self.holder = holder


class IndexCorruptError(IndexUnavailableError):
    """The index is not a sound sqlite database: ``sobuild verify --repair`` rebuilds it."""

    problem = "index corrupt"


class IndexUntrustedError(IndexUnavailableError):
    """The index (or a side file) is a link, not a regular file, or not the user's own."""

    problem = "index untrusted"


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


@dataclass
class IndexView:
    """The index's entries corrected by the files (what ``Index.reconcile`` returns)."""

    rows: list[dict]
    keys: dict[str, str]
    counters: dict[str, float]
    #: why the corrections could not be written (the view is corrected all the same)
    unsaved: IndexUnavailableError | None = None


class Index:
    """The sqlite file of one cache directory.

    ``timeout`` bounds every operation's wait for another process's lock (default
    ``SOBUILD_SQLITE_TIMEOUT``; a run uses at most 1 s). ``trusted_gid`` is the group of a
    trusted group cache, whose members' index files are used; ``file_mode`` is the exact
    mode a new index file gets.
    """

    def __init__(self, layout: Layout, *, timeout: float | None = None,
                 trusted_gid: int | None = None, file_mode: int = PRIVATE_MODE):
        self.layout = layout
        self.path = layout.index
        self.timeout = max(0.0, setting("SOBUILD_SQLITE_TIMEOUT") if timeout is None
                           else timeout)
        self.trusted_gid = trusted_gid
        self.file_mode = file_mode
        #: writes skipped since the last one that succeeded (added as ``index_skipped``)
        self.skipped = 0
        self._warned = False

    @classmethod
    def of_tier(cls, layout: Layout, trust_group: bool, *, timeout: float | None = None
                ) -> Index:
        """The index of ``layout`` for a command: trusted group and mode from the directory."""
        gid = group_tier(layout.root, trust_group)
        return cls(layout, timeout=timeout, trusted_gid=gid,
                   file_mode=PRIVATE_MODE if gid is None else GROUP_MODE)

    # -- connecting ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self) -> Iterator[tuple[sqlite3.Connection, float]]:
        """A checked connection and the deadline of this operation; sqlite and OS errors
        come out as IndexUnavailableError (locked, corrupt, untrusted or other)."""
        deadline = time.monotonic() + self.timeout
        try:
            conn, fd = self._connect(deadline)
        except OSError as exc:
            raise IndexUnavailableError(f"the index {self.path} cannot be opened ({exc})") \
                from exc
        except sqlite3.Error as exc:
            raise self._explain(exc) from exc
        try:
            yield conn, deadline
        except sqlite3.Error as exc:
            raise self._explain(exc) from exc
        finally:
            conn.close()
            # Only now: closing any descriptor of the file drops every POSIX lock this
            # process holds on it, sqlite's too (a WAL reader's lock among them, without
            # which another process checkpoints and deletes the WAL under this one).
            os.close(fd)

    def _connect(self, deadline: float) -> tuple[sqlite3.Connection, int]:
        """A connection, and the checked descriptor of the file: keep it open until the
        connection is closed."""
        fd = self._open_checked()
        try:
            for suffix in SIDE_FILES:
                side = Path(f"{self.path}{suffix}")
                try:
                    st = os.lstat(side)
                except FileNotFoundError:
                    continue
                self._refuse_unless_trusted(side, st)
            conn = sqlite3.connect(self.path, timeout=_remaining(deadline),
                                   isolation_level=None)
            try:
                self._check_same_file(conn, os.fstat(fd))
                # The index can be rebuilt from the files: it needs no fsync per transaction.
                conn.execute("PRAGMA synchronous=NORMAL")
                if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    _wait(conn, deadline)
                    conn.execute(f"PRAGMA journal_mode={self._journal()}")
                    conn.executescript(SCHEMA)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except BaseException:
                conn.close()
                raise
        except BaseException:
            os.close(fd)
            raise
        return conn, fd

    def _journal(self) -> str:
        return "WAL" if use_wal(self.layout.root) else "DELETE"

    def _open_checked(self) -> int:
        """A handle on the index file (created with ``file_mode`` if missing), checked to be
        a trusted regular file before sqlite opens it by name."""
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
        except FileNotFoundError:
            fd = self._create(self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._refuse_unless_trusted(self.path, os.lstat(self.path))
            raise exc from None
        try:
            st = os.fstat(fd)
            self._refuse_unless_trusted(self.path, st)
            extra = st.st_mode & 0o022 & ~self.file_mode  # write bits a umask of 002 gave
            if os.name == "posix" and extra and st.st_uid == os.geteuid():
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~extra)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _create(self, path: Path) -> int:
        """Create ``path`` with exactly ``file_mode`` (not the umask's) and open it."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC,
                         self.file_mode)
        except FileExistsError:  # another process was first
            return os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, self.file_mode)
        return fd

    def _untrusted_reason(self, st: os.stat_result) -> str | None:
        if stat.S_ISLNK(st.st_mode):
            return "is a symbolic link"
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file"
        if os.name != "posix":
            return None
        if st.st_mode & stat.S_IWOTH:
            return "is writable by every user"
        if st.st_uid != os.geteuid() and not (self.trusted_gid is not None
                                              and st.st_gid == self.trusted_gid):
            return "belongs to another user"
        return None

    def _refuse_unless_trusted(self, path: Path, st: os.stat_result) -> None:
        why = self._untrusted_reason(st)
        if why is not None:
            raise IndexUntrustedError(
                f"the index file {path} {why} (uid {st.st_uid}, mode "
                f"{stat.filemode(st.st_mode)}): sobuild does not use it. `sobuild verify "
                "--repair` moves it aside and rebuilds the index from the files")

    def _check_same_file(self, conn: sqlite3.Connection, checked: os.stat_result) -> None:
        """The file sqlite opened must be the checked inode, at the index's own name."""
        if os.name != "posix":
            return
        opened = conn.execute("PRAGMA database_list").fetchone()[2]
        expected = os.path.join(os.path.realpath(self.path.parent), self.path.name)
        st = os.lstat(opened)
        if opened != expected or (st.st_dev, st.st_ino) != (checked.st_dev, checked.st_ino):
            raise IndexUntrustedError(f"the index file {self.path} was replaced while it was "
                                      "opened: sobuild does not use it")

    def _explain(self, exc: sqlite3.Error) -> IndexUnavailableError:
        """The error that says what a failure of sqlite means for the index."""
        if isinstance(exc, IndexUnavailableError):
            return exc
        code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc)
        if primary in _BUSY or (primary is None and "is locked" in text):
            pid = lock_holder([self.path, Path(f"{self.path}-shm")])
            who = f"process {pid}" if pid else "another process"
            waited = f" for more than {self.timeout:g} s" if self.timeout else ""
            return IndexLockedError(
                f"the index {self.path} is locked by {who}{waited}: wait for it to finish and "
                "try again. The index is not damaged: do not repair it", pid)
        if primary in _CORRUPT or (primary is None and ("malformed" in text
                                                        or "not a database" in text)):
            return self._corrupt(text)
        return IndexUnavailableError(f"the index {self.path} could not be used ({text})")

    def _corrupt(self, detail: str) -> IndexCorruptError:
        return IndexCorruptError(f"the index {self.path} is corrupt ({detail}): `sobuild verify "
                                 "--repair` rebuilds it from the files")

    # -- writing -------------------------------------------------------------------------

    def write(self, batch: IndexBatch) -> bool:
        """Apply ``batch`` in one transaction, waiting at most ``timeout`` for a lock.

        On any failure the batch is skipped and counted (``index_skipped`` in the next write
        that succeeds), a warning names the cause once, and False is returned.
        """
        if not batch:
            return True
        try:
            with self._session() as (conn, deadline):
                _wait(conn, deadline)
                conn.execute("BEGIN IMMEDIATE")
                self._apply(conn, batch)
                if self.skipped:
                    conn.execute(ADD_COUNTER, ("index_skipped", self.skipped))
                _wait(conn, deadline)  # a rollback journal's commit waits for readers
                conn.execute("COMMIT")
        except IndexUnavailableError as exc:
            self.skipped += 1
            if not self._warned:
                self._warned = True
                warnings.warn(f"sobuild: the index could not be updated: {exc}. Lookups go on "
                              "from the files; the skipped update is counted.",
                              RuntimeWarning, stacklevel=2)
            return False
        self.skipped = 0
        return True

    @staticmethod
    def _apply(conn: sqlite3.Connection, batch: IndexBatch) -> None:
        conn.executemany(INSERT_ROW, [{**a, "last_use": a["created"], "hits": 0}
                                      for a in batch.artifacts])
        conn.executemany("INSERT OR REPLACE INTO keys (key, artifact) VALUES (?, ?)",
                         batch.keys.items())
        conn.executemany(
            "UPDATE artifacts SET hits = hits + ?, last_use = MAX(last_use, ?) WHERE id = ?",
            [(n, when, artifact) for artifact, (n, when) in batch.uses.items()])
        conn.executemany(ADD_COUNTER, batch.counters.items())

    def _transaction(self, statements: list[tuple[str, list]]) -> None:
        with self._session() as (conn, deadline):
            _wait(conn, deadline)
            conn.execute("BEGIN IMMEDIATE")
            for sql, rows in statements:
                conn.executemany(sql, rows)
            _wait(conn, deadline)
            conn.execute("COMMIT")

    def reset_counters(self) -> None:
        self._transaction([("UPDATE counters SET value = 0", [()]),
                           ("UPDATE artifacts SET hits = 0", [()])])

    def forget(self, artifact_ids: list[str]) -> None:
        ids = [(a,) for a in artifact_ids]
        self._transaction([("DELETE FROM keys WHERE artifact = ?", ids),
                           ("DELETE FROM artifacts WHERE id = ?", ids)])

    # -- reading -------------------------------------------------------------------------

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._session() as (conn, _):
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, params).fetchall()

    def counters(self) -> dict[str, float]:
        return {r["name"]: r["value"] for r in self.query("SELECT name, value FROM counters")}

    def journal_mode(self) -> str:
        return self.query("PRAGMA journal_mode")[0][0]

    def diagnose(self) -> IndexUnavailableError | None:
        """Why the index cannot be read right now (no wait for a lock), or None."""
        probe = Index(self.layout, timeout=0, trusted_gid=self.trusted_gid,
                      file_mode=self.file_mode)
        try:
            check = probe.query("PRAGMA quick_check")[0][0]
        except IndexUnavailableError as exc:
            return exc
        if check != "ok":
            return self._corrupt(check)
        return None

    # -- the files -----------------------------------------------------------------------

    def reconcile(self) -> IndexView:
        """Bring the index in line with the files and return its corrected entries.

        Entries on disk that the index lacks (a ``kill -9`` between publish and the index
        write, a skipped write) are added, rows whose files are gone are dropped; kernel keys
        alike. Cost: one read of the index and one listing of ``artifacts/``, ``data/`` and
        ``kernels/``; only the unknown entries' ``meta.json``, data headers and key files are
        read. Raises IndexUnavailableError when the index cannot be read; when it can be
        read but not written (locked, read-only), the view is corrected all the same and
        ``unsaved`` says why.
        """
        # The index is read before the files are listed: an entry published in between is
        # then added (INSERT OR IGNORE), never dropped.
        with self._session() as (conn, deadline):
            conn.row_factory = sqlite3.Row
            _wait(conn, deadline)
            conn.execute("BEGIN")
            rows = [dict(r) for r in conn.execute("SELECT * FROM artifacts")]
            keys = dict(conn.execute("SELECT key, artifact FROM keys").fetchall())
            counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
            conn.execute("COMMIT")
        layout, gid = self.layout, self.trusted_gid
        on_disk = _listing(layout)
        indexed = {r["id"] for r in rows}
        added = [row for kind in ("shared_object", "data")
                 for name in sorted(on_disk[kind] - indexed)
                 if (row := _row(layout, kind, name, gid)) is not None]
        gone = {r["id"] for r in rows if r["id"] not in on_disk.get(r["kind"], ())
                and not _exists(layout, r["kind"], r["id"])}
        new_keys = {k: a for k in sorted(on_disk["key"] - keys.keys())
                    if (a := _key_target(layout, k, gid)) is not None}
        stale_keys = {k for k in keys.keys() - on_disk["key"] if not _exists(layout, "key", k)}
        view = IndexView([r for r in rows if r["id"] not in gone] + added,
                         {**{k: a for k, a in keys.items() if k not in stale_keys}, **new_keys},
                         counters)
        if added or gone or new_keys or stale_keys:
            try:
                self._transaction([
                    (INSERT_ROW, added),
                    ("INSERT OR IGNORE INTO keys (key, artifact) VALUES (?, ?)",
                     list(new_keys.items())),
                    ("DELETE FROM artifacts WHERE id = ?", [(i,) for i in sorted(gone)]),
                    ("DELETE FROM keys WHERE key = ?", [(k,) for k in sorted(stale_keys)]),
                ])
            except IndexUnavailableError as exc:
                view.unsaved = exc
        return view

    def rebuild(self) -> dict[str, int]:
        """Recreate the index from the files, keeping its counters if they can be read.

        A locked index is not replaced: past the timeout this raises IndexLockedError. An
        untrusted index (a link, a FIFO, another user's file) is moved aside into ``tmp/``
        unread; a corrupt one is replaced.
        """
        counters = self._counters_for_rebuild()
        artifacts, keys = scan_files(self.layout, self.trusted_gid)
        tmp = self.path.with_name(f"index.rebuild-{time.time_ns()}.sqlite")
        os.close(self._create(tmp))
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                # a temp file, made durable once by the fsync before the rename
                conn.execute("PRAGMA synchronous=OFF")
                conn.execute(f"PRAGMA journal_mode={self._journal()}")
                conn.executescript(SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("BEGIN")
                conn.executemany(INSERT_ROW, artifacts)
                conn.executemany("INSERT OR REPLACE INTO keys (key, artifact) VALUES (?, ?)",
                                 keys.items())
                conn.executemany(ADD_COUNTER, counters.items())
                conn.execute("COMMIT")
            finally:
                conn.close()  # a WAL database is checkpointed: no -wal beside tmp
            fsync_path(tmp)
            for suffix in SIDE_FILES:  # a stale log would be replayed into the new file
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return {"artifacts": len(artifacts), "keys": len(keys)}

    def _counters_for_rebuild(self) -> dict[str, float]:
        """The counters of the index to be replaced, read while holding its write lock."""
        if not os.path.lexists(self.path):
            return {}
        try:
            with self._session() as (conn, deadline):
                _wait(conn, deadline)
                conn.execute("BEGIN IMMEDIATE")  # nobody is writing it: it may be replaced
                counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
                conn.execute("ROLLBACK")
                return counters
        except IndexLockedError:
            raise
        except IndexUntrustedError:
            self._set_aside()
        except IndexUnavailableError:
            pass  # corrupt or unreadable: the files are the truth
        return {}

    def _set_aside(self) -> None:
        """Move the untrusted index file and side files into ``tmp/``, unread."""
        ensure_dir(self.layout.tmp, 0o755 if self.trusted_gid is None else 0o2775)
        for suffix in ("", *SIDE_FILES):
            path = Path(f"{self.path}{suffix}")
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if self._untrusted_reason(st) is not None:
                os.rename(path, self.layout.tmp / f"index-untrusted-{os.getpid()}-"
                                                  f"{time.time_ns()}{suffix}")


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _wait(conn: sqlite3.Connection, deadline: float) -> None:
    """Let the next statement wait for a lock only until ``deadline``."""
    conn.execute(f"PRAGMA busy_timeout={int(_remaining(deadline) * 1000)}")


def lock_holder(paths: list[Path], locks: str = "/proc/locks") -> int | None:
    """A process (not this one) holding a POSIX lock on one of ``paths``, writers first;
    None when unknown (no ``/proc/locks``: not Linux). Matched by inode number."""
    inodes = set()
    for path in paths:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(path).st_ino)
    try:
        with open(locks) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    reader = None
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 6:
            continue  # a blocked waiter, not a holder
        try:
            pid, inode = int(fields[4]), int(fields[5].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if inode not in inodes or pid <= 0 or pid == os.getpid():
            continue
        if fields[3] == "WRITE":
            return pid
        reader = reader or pid
    return reader


def _listing(layout: Layout) -> dict[str, set[str]]:
    """Names of the entries on disk by kind (``shared_object``, ``data``, ``key``): one
    directory listing per prefix directory, no file read; links are not entries."""
    found: dict[str, set[str]] = {}
    for kind, base, want_dir in (("shared_object", layout.artifacts, True),
                                 ("data", layout.data, False), ("key", layout.kernels, False)):
        names = found[kind] = set()
        try:
            prefixes = [e for e in os.scandir(base) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for prefix in prefixes:
            try:
                entries = list(os.scandir(prefix.path))
            except OSError:
                continue
            names.update(e.name for e in entries
                         if KEY_RE.match(e.name) and e.name[:2] == prefix.name
                         and e.is_dir(follow_symlinks=False) == want_dir
                         and not e.is_symlink())
    return found


def _exists(layout: Layout, kind: str, name: str) -> bool:
    """Whether an entry not seen in the listing is there after all (or is not ours to drop:
    a row of another kind, or a name that is not a key)."""
    paths = {"shared_object": layout.artifact_dir, "data": layout.data_file,
             "key": layout.kernel_file}
    try:
        return kind not in paths or os.path.lexists(paths[kind](name))
    except ValueError:
        return False


def _row(layout: Layout, kind: str, name: str, trusted_gid: int | None) -> dict | None:
    """The index row of one entry on disk, read under the trust rules; None if unreadable."""
    try:
        if kind == "data":
            return _data_row(layout, name, trusted_gid)
        return _artifact_row(layout, name, trusted_gid)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SobuildError):
        return None


def _artifact_row(layout: Layout, name: str, trusted_gid: int | None) -> dict:
    directory = layout.artifact_dir(name)
    meta = ArtifactMeta.parse(read_entry(layout.root, directory / "meta.json", trusted_gid))
    st = os.lstat(directory)
    with os.scandir(directory) as entries:
        size = sum(e.stat(follow_symlinks=False).st_size for e in entries
                   if e.is_file(follow_symlinks=False))
    return {"id": name, "kind": "shared_object", "namespace": meta.namespace, "bytes": size,
            "toolchain": meta.toolchain_name, "build_seconds": meta.build_seconds,
            "kernels": len(meta.kernels) or 1, "created": meta.created,
            "last_use": st.st_atime, "hits": 0}


def _data_row(layout: Layout, name: str, trusted_gid: int | None) -> dict:
    with opened(layout.root, layout.data_file(name), trusted_gid) as entry:
        header = json.loads(entry.read().partition(b"\n")[0])
        st = entry.stat
    return {"id": name, "kind": "data", "namespace": header.get("namespace", "default"),
            "bytes": st.st_size, "toolchain": "", "build_seconds": header.get("seconds", 0.0),
            "kernels": 1, "created": header.get("created", st.st_mtime),
            "last_use": st.st_atime, "hits": 0}


def _key_target(layout: Layout, key: str, trusted_gid: int | None) -> str | None:
    try:
        target = json.loads(read_entry(layout.root, layout.kernel_file(key), trusted_gid))
        return target["artifact"] if KEY_RE.match(target["artifact"]) else None
    except (OSError, ValueError, KeyError, TypeError, SobuildError):
        return None


def scan_files(layout: Layout, trusted_gid: int | None = None
               ) -> tuple[list[dict], dict[str, str]]:
    """Index rows for what is on disk (artifacts with their meta, data entries) and the
    kernel keys; files that cannot be read under the trust rules are left out."""
    on_disk = _listing(layout)
    rows = [row for kind in ("shared_object", "data") for name in sorted(on_disk[kind])
            if (row := _row(layout, kind, name, trusted_gid)) is not None]
    keys = {k: a for k in sorted(on_disk["key"])
            if (a := _key_target(layout, k, trusted_gid)) is not None}
    return rows, keys
