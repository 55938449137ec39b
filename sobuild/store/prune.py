"""Eviction by size, age and least recent use; the automatic prune after a build.

``prune`` first reconciles the index with the files (entries that never reached the index
are counted and can be evicted; rows of entries that are gone are dropped), then ``plan``
picks the entries to evict from the index's sizes and last use: those unused for longer
than ``older_than``, then the least recently used until the cache fits in ``max_size``.
They are removed the way readers can bear: kernel key files first (a reader then misses
and rebuilds), then the artifact is renamed into ``tmp/`` (nobody sees half of it) and
deleted; finally the index forgets them.

The automatic prune (``start_background``) runs ``python -m sobuild.store.prune DIR`` as a
detached process when a build took the cache over ``SOBUILD_MAX_SIZE``; a non-blocking lock
keeps it to one at a time per cache. It prunes to ``AUTO_TARGET`` of the limit, so that the
next build does not start another prune straight away.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import setting
from ..errors import UntrustedEntryError
from .cleanup import clean_temp
from .files import read_entry
from .index import Index, IndexUnavailableError
from .layout import PCH_META, Layout
from .locks import KeyLock
from .meta import ArtifactMeta
from .publish import remove_tree

#: The automatic prune brings the cache down to this fraction of SOBUILD_MAX_SIZE.
AUTO_TARGET = 0.9


@dataclass(frozen=True)
class Victim:
    """An entry chosen for eviction, and why (``age`` or ``size``)."""

    id: str
    kind: str
    bytes: int
    last_use: float
    reason: str


@dataclass
class PruneResult:
    """What a prune removed (or would remove) and the cache size before and after."""

    victims: list[Victim] = field(default_factory=list)
    before: int = 0
    dry_run: bool = False
    temp_removed: int = 0

    @property
    def freed(self) -> int:
        return sum(v.bytes for v in self.victims)

    @property
    def after(self) -> int:
        return self.before - self.freed


def total_bytes(index: Index) -> int:
    """The cache's size according to the index."""
    return int(index.query("SELECT COALESCE(SUM(bytes), 0) AS n FROM artifacts")[0]["n"])


def plan(index: Index, max_size: int | None = None, older_than: float | None = None,
         now: float | None = None, extra: Sequence[dict] = ()
         ) -> tuple[list[Victim], int]:
    """(entries to evict, least recently used first; the cache size now). ``extra``: entries
    the index does not hold (precompiled headers), as rows of id, kind, bytes, last_use."""
    now = time.time() if now is None else now
    rows = index.query("SELECT id, kind, bytes, last_use FROM artifacts "
                       "ORDER BY last_use ASC, id ASC")
    if extra:
        rows = sorted([*rows, *extra], key=lambda r: (r["last_use"], r["id"]))
    total = sum(r["bytes"] for r in rows)
    remaining = total
    victims = []
    for r in rows:
        if older_than is not None and r["last_use"] < now - older_than:
            reason = "age"
        elif max_size is not None and remaining > max_size:
            reason = "size"
        else:
            continue
        victims.append(Victim(r["id"], r["kind"], r["bytes"], r["last_use"], reason))
        remaining -= r["bytes"]
    return victims, total


def _aside(layout: Layout, path: Path, what: str) -> Path | None:
    """Rename ``path`` into tmp/ (atomic, same filesystem); None if it is gone already."""
    layout.tmp.mkdir(parents=True, exist_ok=True)
    aside = layout.tmp / f"{what}-{os.getpid()}-{time.time_ns()}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    return aside


def _unlink_key_if_points_to(layout: Layout, key: str, digest: str) -> None:
    path = layout.kernel_file(key)
    try:
        if json.loads(path.read_bytes()).get("artifact") != digest:
            return  # re-published since: keep it
    except (OSError, ValueError, AttributeError):
        return
    path.unlink(missing_ok=True)


def remove_entry(layout: Layout, index: Index, entry_id: str, kind: str) -> None:
    """Remove one artifact (its kernel keys first), data entry or precompiled header."""
    if kind == "pch":
        aside = _aside(layout, layout.pch_dir(entry_id), "evict")
        if aside is not None:
            remove_tree(aside)
        return
    if kind == "data":
        aside = _aside(layout, layout.data_file(entry_id), "evict")
        if aside is not None:
            aside.unlink(missing_ok=True)
        return
    directory = layout.artifact_dir(entry_id)
    keys = {r["key"] for r in index.query("SELECT key FROM keys WHERE artifact = ?",
                                          (entry_id,))}
    try:
        meta = ArtifactMeta.parse(read_entry(layout.root, directory / "meta.json",
                                             index.trusted_gid))
        keys.update(meta.kernel_keys)
    except (OSError, ValueError, UntrustedEntryError):
        pass
    for key in sorted(keys):
        try:
            _unlink_key_if_points_to(layout, key, entry_id)
        except ValueError:
            continue  # not a key: nothing of ours
    aside = _aside(layout, directory, "evict")
    if aside is not None:
        remove_tree(aside)


def prune(layout: Layout, max_size: int | None = None, older_than: float | None = None,
          dry_run: bool = False, *, index: Index | None = None) -> PruneResult:
    """Evict by age and then by size (LRU); unless dry, also remove crashed processes' leftovers.

    The index is reconciled with the files first (rebuilt if missing); one that cannot be
    written (locked, corrupt, untrusted) raises its IndexUnavailableError.
    """
    index = index or Index.of_tier(layout, setting("SOBUILD_TRUST_GROUP"))
    if not os.path.lexists(layout.index):
        index.rebuild()  # files are the truth: index them before choosing
    else:
        unsaved = index.reconcile().unsaved
        if unsaved is not None:
            raise unsaved
    victims, before = plan(index, max_size, older_than, extra=pch_rows(layout))
    result = PruneResult(victims, before, dry_run)
    if dry_run:
        return result
    for victim in victims:
        remove_entry(layout, index, victim.id, victim.kind)
    index.forget([v.id for v in victims])
    result.temp_removed = len(clean_temp(layout).removed)
    return result


def pch_rows(layout: Layout) -> list[dict]:
    """The precompiled headers as entries to prune: their bytes and last use (the mtime of
    their meta.json, which each use touches)."""
    rows = []
    for directory in layout.iter_pch_dirs():
        try:
            size = sum(p.lstat().st_size for p in directory.iterdir())
            last_use = (directory / PCH_META).lstat().st_mtime
        except OSError:
            last_use = 0.0  # half of one, or not one: the first to go
            size = 0
        rows.append({"id": directory.name, "kind": "pch", "bytes": size, "last_use": last_use})
    return rows


def remove_all(layout: Layout, index: Index | None = None) -> dict[str, int]:
    """Remove every entry: kernel keys first, then shared objects, data, failed builds,
    precompiled headers.

    Each directory is renamed into tmp/ before it is deleted; the index is rebuilt (empty,
    counters kept). Returns how many of each were removed.
    """
    counts = {"kernels": sum(1 for _ in layout.iter_kernel_files()),
              "shared_objects": sum(1 for _ in layout.iter_artifact_dirs()),
              "data": sum(1 for _ in layout.iter_data_files()),
              "failed": sum(1 for p in layout.failed.glob("*") if p.is_dir()),
              "pch": sum(1 for _ in layout.iter_pch_dirs())}
    for directory in (layout.kernels, layout.artifacts, layout.data, layout.failed, layout.pch):
        aside = _aside(layout, directory, "clear")
        if aside is not None:
            remove_tree(aside)
    (index or Index.of_tier(layout, setting("SOBUILD_TRUST_GROUP"))).rebuild()
    return counts


# -- the automatic prune --------------------------------------------------------------------

def prune_lock(layout: Layout) -> KeyLock:
    """The lock that keeps automatic prunes of one cache to one at a time."""
    from ..config import setting
    from .trust import group_tier, publish_modes

    gid = group_tier(layout.root, setting("SOBUILD_TRUST_GROUP"))
    file_mode, dir_mode = publish_modes(gid)
    return KeyLock(layout.locks / "prune.lock", trusted_gid=gid, file_mode=file_mode,
                   dir_mode=dir_mode)


def over_limit(index: Index, max_size: int) -> bool:
    try:
        return total_bytes(index) > max_size
    except (sqlite3.Error, OSError):
        return False


def start_background(layout: Layout) -> subprocess.Popen | None:
    """Start a detached ``python -m sobuild.store.prune DIR`` unless one is running."""
    probe = prune_lock(layout)
    try:
        if not probe.try_acquire():
            return None  # a prune is running
    except OSError:
        return None
    probe.release()
    detach = ({"start_new_session": True} if os.name == "posix"
              else {"creationflags": getattr(subprocess, "DETACHED_PROCESS", 0)})
    try:
        return subprocess.Popen([sys.executable, "-m", "sobuild.store.prune", str(layout.root)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, close_fds=True, **detach)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    """The background prune: take the lock (or leave), prune to AUTO_TARGET of the limit."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sobuild.store.prune CACHE_DIR", file=sys.stderr)
        return 2
    layout = Layout(Path(args[0]))
    lock = prune_lock(layout)
    if not lock.try_acquire():
        return 0
    try:
        prune(layout, max_size=int(setting("SOBUILD_MAX_SIZE") * AUTO_TARGET))
    except IndexUnavailableError:
        return 1  # locked by another prune or a command: the next build tries again
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
