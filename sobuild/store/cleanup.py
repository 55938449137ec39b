"""Leftovers of crashed processes: temp dirs and files under ``tmp/``, broken lock files.

A process killed while it builds or publishes leaves its work in ``tmp/`` (never in the
store proper: entries appear by rename only). Nothing there is ever read again, so
``verify`` and ``prune`` remove what is older than a grace period; the grace period keeps
the work of processes that are still building, on this host or another. Idle ``flock``
lock files (one per key ever built, empty when nobody holds them) go the same way.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from .layout import Layout
from .publish import remove_tree

#: Default age after which a leftover is removed: longer than any build.
DEFAULT_TEMP_AGE = 3600.0


@dataclass
class CleanResult:
    """What ``clean_temp`` removed (or would remove) and how many bytes that frees."""

    removed: list[Path] = field(default_factory=list)
    bytes: int = 0
    #: idle lock files removed (not listed one by one: there is one per key ever built)
    idle_locks: int = 0


def _newest_mtime_and_size(path: Path) -> tuple[float, int]:
    """The newest mtime of ``path`` and of anything inside it; the total size of its files."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        return st.st_mtime, st.st_size
    newest, size = st.st_mtime, 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                s = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            newest = max(newest, s.st_mtime)
            if not stat.S_ISDIR(s.st_mode):
                size += s.st_size
    return newest, size


def find_leftovers(layout: Layout, older_than: float = DEFAULT_TEMP_AGE) -> list[tuple[Path, int]]:
    """Leftovers not touched for ``older_than`` seconds, with their sizes in bytes.

    Everything in ``tmp/`` (``build-*``, ``publish-*``, ``file-*``, ``discard-*`` ...), lock
    files set aside when a stale lock was broken, and unfinished index rebuilds.
    """
    candidates: list[Path] = []
    if layout.tmp.is_dir():
        candidates += layout.tmp.iterdir()
    if layout.locks.is_dir():
        candidates += layout.locks.glob("??/*.lock.stale-*")
    candidates += layout.root.glob("index.rebuild-*.sqlite")
    now = time.time()
    found = []
    for path in sorted(candidates):
        try:
            newest, size = _newest_mtime_and_size(path)
        except OSError:
            continue
        if now - newest >= older_than:
            found.append((path, size))
    return found


def clean_temp(layout: Layout, older_than: float = DEFAULT_TEMP_AGE, *,
               dry_run: bool = False) -> CleanResult:
    """Remove the leftovers of crashed builds and publishes (see ``find_leftovers``).

    With ``dry_run`` nothing is removed and the result says what would be. A leftover that
    cannot be removed (another user's, in a cache that is not a group cache) is skipped.
    """
    result = CleanResult()
    for path, size in find_leftovers(layout, older_than):
        if not dry_run:
            try:
                if stat.S_ISDIR(os.lstat(path).st_mode):
                    remove_tree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue
            except OSError:
                continue
        result.removed.append(path)
        result.bytes += size
    if not dry_run:
        result.idle_locks = remove_idle_locks(layout, older_than)
    return result


def remove_idle_locks(layout: Layout, older_than: float = DEFAULT_TEMP_AGE) -> int:
    """Remove ``flock`` lock files nobody holds and nobody has used for ``older_than`` s.

    Such a file is empty (its holder record is erased on release) and can be locked at
    once; it is removed while locked. Lock files created with ``O_EXCL`` always hold their
    holder's record and are left to the stale-lock takeover. Only regular files are opened
    (without following links or blocking) and removed. Returns how many went.
    """
    try:
        import fcntl
    except ImportError:
        return 0
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    now, removed = time.time(), 0
    for path in layout.locks.glob("??/*.lock"):
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size or now - st.st_mtime < older_than:
                continue
            fd = os.open(path, flags)
        except OSError:
            continue
        try:
            opened = os.fstat(fd)
            if stat.S_ISREG(opened.st_mode) and opened.st_ino == st.st_ino:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_size == 0 and os.lstat(path).st_ino == st.st_ino:
                    path.unlink()
                    removed += 1
        except OSError:
            pass  # held, gone, or not ours to remove
        finally:
            os.close(fd)
    return removed
