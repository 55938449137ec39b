"""Check a cache against itself: digests, kernel keys, data entries, leftovers, the index.

``verify`` only reads and returns the problems it found; ``repair`` removes what is broken
(the same way prune evicts: renamed aside first, then deleted) and rebuilds the index from
the files, which are the truth.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from ..keys import KEY_RE
from ..toolchains.base import SHARED_SUFFIXES
from .cleanup import find_leftovers
from .data import CorruptEntryError, decode
from .index import Index
from .layout import Layout
from .publish import remove_tree

LIBRARY_NAMES = tuple(f"lib{s}" for s in sorted(set(SHARED_SUFFIXES.values())))


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a cache; ``path`` is what ``repair`` removes (None: index only)."""

    kind: str
    path: Path | None
    detail: str


@dataclass
class Report:
    """What ``verify`` checked and what it found."""

    artifacts: int = 0
    kernels: int = 0
    data: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_artifact(directory: Path, problems: list[Problem]) -> str | None:
    """Problems of one artifact directory; its digest if it is sound."""
    name = directory.name
    if not KEY_RE.match(name) or directory.parent.name != name[:2]:
        problems.append(Problem("stray file", directory, "not an artifact digest"))
        return None
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        problems.append(Problem("bad meta", directory, f"meta.json unreadable ({exc})"))
        return None
    libraries = [directory / n for n in LIBRARY_NAMES if (directory / n).exists()]
    if len(libraries) != 1:
        problems.append(Problem("missing library", directory, "no shared object in it"))
        return None
    try:
        content = libraries[0].read_bytes()
        mode = directory.stat().st_mode | libraries[0].stat().st_mode
    except OSError as exc:
        problems.append(Problem("unreadable", directory, str(exc)))
        return None
    digest = xxhash.xxh3_128_hexdigest(content)
    if digest != name or meta.get("digest") != name:
        problems.append(Problem("corrupt artifact", directory,
                                f"{libraries[0].name} hashes to {digest[:12]}…"))
        return None
    if mode & stat.S_IWOTH:
        problems.append(Problem("untrusted", directory, "writable by every user"))
        return None
    return name


def verify(layout: Layout) -> Report:
    """Check every entry of ``layout`` and the index against the files."""
    report = Report()
    problems = report.problems
    sound: set[str] = set()
    on_disk: set[str] = set()
    for directory in layout.iter_artifact_dirs():
        report.artifacts += 1
        on_disk.add(directory.name)
        digest = _check_artifact(directory, problems)
        if digest:
            sound.add(digest)
    keys: dict[str, str] = {}
    for path in layout.iter_kernel_files():
        report.kernels += 1
        try:
            target = json.loads(path.read_bytes())["artifact"]
        except (OSError, ValueError, KeyError, TypeError):
            problems.append(Problem("bad key file", path, "unreadable kernel key file"))
            continue
        if not KEY_RE.match(path.name):
            problems.append(Problem("stray file", path, "not a kernel key"))
        elif target not in sound:
            problems.append(Problem("dangling key", path, f"names artifact {str(target)[:12]}…, "
                                    "missing or broken"))
        else:
            keys[path.name] = target
    data: set[str] = set()
    for path in layout.iter_data_files():
        report.data += 1
        on_disk.add(path.name)
        try:
            decode(path.read_bytes())
        except (OSError, CorruptEntryError) as exc:
            problems.append(Problem("corrupt data", path, str(exc)))
            continue
        data.add(path.name)
    for orphan, size in find_leftovers(layout):
        problems.append(Problem("orphan temp", orphan, f"left by a crashed process ({size} bytes)"))
    problems.extend(_check_index(layout, on_disk, sound | data, keys))
    return report


def _check_index(layout: Layout, on_disk: set[str], entries: set[str], keys: dict[str, str]
                 ) -> list[Problem]:
    """Sound ``entries`` missing from the index; indexed entries not ``on_disk`` at all."""
    if not layout.index.exists():
        return [Problem("index missing", None, "index.sqlite does not exist")] \
            if on_disk or keys else []
    index = Index(layout)
    try:
        check = index.query("PRAGMA quick_check")[0][0]
        if check != "ok":
            return [Problem("index corrupt", None, check)]
        indexed = {r["id"] for r in index.query("SELECT id FROM artifacts")}
        indexed_keys = {r["key"]: r["artifact"] for r in index.query("SELECT key, artifact FROM keys")}
    except (sqlite3.Error, OSError) as exc:
        return [Problem("index corrupt", None, str(exc))]
    problems = []
    if entries - indexed:
        problems.append(Problem("index incomplete", None,
                                f"{len(entries - indexed)} entries on disk are not indexed"))
    if indexed - on_disk:
        problems.append(Problem("index stale", None,
                                f"{len(indexed - on_disk)} indexed entries are not on disk"))
    unindexed_keys = sum(1 for k, a in keys.items() if indexed_keys.get(k) != a)
    if unindexed_keys:
        problems.append(Problem("index incomplete", None,
                                f"{unindexed_keys} kernel keys are not indexed"))
    return problems


def repair(layout: Layout, report: Report) -> dict[str, int]:
    """Remove the broken entries of ``report`` and rebuild the index from the files."""
    removed = 0
    for problem in report.problems:
        path = problem.path
        if path is None:
            continue
        aside = layout.tmp / f"repair-{os.getpid()}-{time.time_ns()}"
        try:
            if path.parent != layout.tmp:
                layout.tmp.mkdir(parents=True, exist_ok=True)
                os.rename(path, aside)
                path = aside
            remove_tree(path) if path.is_dir() else path.unlink(missing_ok=True)
        except FileNotFoundError:
            continue
        removed += 1
    counts = Index(layout).rebuild()
    return {"removed": removed, **counts}


def relative(layout: Layout, path: Path | None) -> str:
    """``path`` relative to the cache directory, for messages."""
    if path is None:
        return "index.sqlite"
    try:
        return str(path.relative_to(layout.root))
    except ValueError:
        return str(path)
