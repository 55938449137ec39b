"""Check a cache against itself: digests, kernel keys, data entries, leftovers, the index.

``verify`` only reads and returns the problems it found; ``repair`` removes what is broken
(the same way prune evicts: renamed aside first, then deleted) and rebuilds the index from
the files, which are the truth.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UntrustedEntryError
from ..keys import KEY_RE
from ..toolchains.base import SHARED_SUFFIXES
from .cleanup import find_leftovers
from .data import CorruptEntryError, decode
from .files import NotRegularFileError
from .index import IndexUnavailableError
from .meta import BadMetaError
from .publish import remove_tree
from .store import LIBRARY_STEM, BrokenEntryError, Store

LIBRARY_NAMES = tuple(f"{LIBRARY_STEM}{s}" for s in sorted(set(SHARED_SUFFIXES.values())))


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
    precompiled_headers: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_artifact(store: Store, directory: Path, problems: list[Problem]
                    ) -> tuple[str, set[str]] | None:
    """Problems of one artifact directory; (its digest, the keys it holds) if it is sound."""
    name = directory.name
    if not KEY_RE.match(name) or directory.parent.name != name[:2]:
        problems.append(Problem("stray file", directory, "not an artifact digest"))
        return None
    if directory.is_symlink():
        problems.append(Problem("untrusted", directory, "a symbolic link"))
        return None
    try:
        meta = store.read_meta(name)
    except UntrustedEntryError as exc:
        problems.append(Problem("untrusted", directory, _why(exc)))
        return None
    except (OSError, BadMetaError) as exc:
        problems.append(Problem("bad meta", directory, f"meta.json unreadable ({exc})"))
        return None
    libraries = [n for n in LIBRARY_NAMES if os.path.lexists(directory / n)]
    if len(libraries) != 1:
        problems.append(Problem("missing library", directory, "no shared object in it"))
        return None
    try:
        entry = store.open_library(name, libraries[0][len(LIBRARY_STEM):])
    except UntrustedEntryError as exc:
        problems.append(Problem("untrusted", directory, _why(exc)))
        return None
    except BrokenEntryError as exc:
        problems.append(Problem("corrupt artifact", directory, str(exc)))
        return None
    except OSError as exc:
        problems.append(Problem("unreadable", directory, str(exc)))
        return None
    if entry is None:
        problems.append(Problem("missing library", directory, "no shared object in it"))
        return None
    entry.close()
    if meta.digest != name:
        problems.append(Problem("corrupt artifact", directory,
                                f"meta.json names {meta.digest[:12]}…"))
        return None
    return name, set(meta.kernel_keys)


def _check_pch(store: Store, directory: Path) -> Problem | None:
    """What is wrong with a precompiled header's directory (None: it is sound)."""
    if not KEY_RE.match(directory.name):
        return Problem("stray file", directory, "not a precompiled header's key")
    if directory.is_symlink():
        return Problem("untrusted", directory, "a symbolic link")
    try:
        if store.open_pch(directory.name, use=False) is None:
            return Problem("corrupt pch", directory, "gone while checked")
    except UntrustedEntryError as exc:
        return Problem("untrusted", directory, _why(exc))
    except BrokenEntryError as exc:
        return Problem("corrupt pch", directory, str(exc))
    except OSError as exc:
        return Problem("unreadable", directory, str(exc))
    return None


def _why(exc: UntrustedEntryError) -> str:
    """The first sentence of a refusal: what is wrong, without the advice."""
    return str(exc).split(": sobuild will not run", 1)[0]


def _read(store: Store, path: Path, problems: list[Problem], what: str) -> bytes | None:
    """The bytes of an entry file, or None after recording why it cannot be used."""
    try:
        return store.read(path)
    except UntrustedEntryError as exc:
        problems.append(Problem("untrusted", path, _why(exc)))
    except NotRegularFileError as exc:
        problems.append(Problem(f"bad {what}", path, str(exc)))
    except OSError as exc:
        problems.append(Problem(f"bad {what}", path, f"unreadable ({exc.strerror or exc})"))
    return None


def verify(store: Store) -> Report:
    """Check every entry of ``store`` and its index against the files.

    Nothing is followed or waited for: links, FIFOs and entries of untrusted owners are
    reported (``untrusted``), as are keys naming an artifact that does not hold them.
    """
    layout = store.layout
    report = Report()
    problems = report.problems
    sound: dict[str, set[str]] = {}
    on_disk: set[str] = set()
    for directory in layout.iter_artifact_dirs():
        report.artifacts += 1
        on_disk.add(directory.name)
        checked = _check_artifact(store, directory, problems)
        if checked:
            sound[checked[0]] = checked[1]
    keys: dict[str, str] = {}
    for path in layout.iter_kernel_files():
        report.kernels += 1
        if not KEY_RE.match(path.name):
            problems.append(Problem("stray file", path, "not a kernel key"))
            continue
        blob = _read(store, path, problems, "key file")
        if blob is None:
            continue
        try:
            target = json.loads(blob)["artifact"]
        except (ValueError, KeyError, TypeError):
            problems.append(Problem("bad key file", path, "unreadable kernel key file"))
            continue
        if target not in sound:
            problems.append(Problem("dangling key", path, f"names artifact {str(target)[:12]}…, "
                                    "missing or broken"))
        elif path.name not in sound[target]:
            problems.append(Problem("wrong key", path, f"names artifact {target[:12]}…, which "
                                    "does not hold this kernel"))
        else:
            keys[path.name] = target
    data: set[str] = set()
    for path in layout.iter_data_files():
        report.data += 1
        on_disk.add(path.name)
        blob = _read(store, path, problems, "data")
        if blob is None:
            continue
        try:
            decode(blob)
        except CorruptEntryError as exc:
            problems.append(Problem("corrupt data", path, str(exc)))
            continue
        data.add(path.name)
    for directory in layout.iter_pch_dirs():
        report.precompiled_headers += 1
        problem = _check_pch(store, directory)
        if problem is not None:
            problems.append(problem)
    for orphan, size in find_leftovers(layout):
        problems.append(Problem("orphan temp", orphan, f"left by a crashed process ({size} bytes)"))
    problems.extend(_check_index(store, on_disk, set(sound) | data, keys))
    return report


def _check_index(store: Store, on_disk: set[str], entries: set[str], keys: dict[str, str]
                 ) -> list[Problem]:
    """Sound ``entries`` missing from the index; indexed entries not ``on_disk`` at all.

    A locked index is reported as locked (never as corrupt: repair must not replace it).
    """
    if not os.path.lexists(store.layout.index):
        return [Problem("index missing", None, "index.sqlite does not exist")] \
            if on_disk or keys else []
    index = store.index
    try:
        check = index.query("PRAGMA quick_check")[0][0]
        if check != "ok":
            return [Problem("index corrupt", None, check)]
        indexed = {r["id"] for r in index.query("SELECT id FROM artifacts")}
        indexed_keys = {r["key"]: r["artifact"] for r in index.query("SELECT key, artifact FROM keys")}
    except IndexUnavailableError as exc:
        return [Problem(exc.problem, None, str(exc))]
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


def repair(store: Store, report: Report) -> dict[str, int]:
    """Remove the broken and untrusted entries of ``report``; rebuild the index from the files."""
    layout = store.layout
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
            if path.is_dir() and not path.is_symlink():
                remove_tree(path)
            else:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            continue
        removed += 1
    counts = store.index.rebuild()
    return {"removed": removed, **counts}


def relative(root: Path, path: Path | None) -> str:
    """``path`` relative to the cache directory ``root``, for messages."""
    if path is None:
        return "index.sqlite"
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
