"""``brian2.clear_cache('sobuild')``: remove sobuild's Brian2 entries, keep everything else.

Brian2 registers each target's cache directory in ``brian2._cache_dirs_and_extensions`` and
``clear_cache`` deletes that directory whole, after refusing when it holds a file of an
unexpected type. sobuild's cache directory also holds other users' kernels, so for
'sobuild' the same check runs (a foreign file stops it, with Brian2's error) and then only
the Brian2 entries go: shared objects of namespace ``brian2`` (with their kernel keys) and
the cached code generation.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import hooks

CLEAR_CACHE = hooks.declare(__name__, "brian2", "clear_cache", "wrap")
CACHE_DIRS = hooks.declare(__name__, "brian2", "_cache_dirs_and_extensions", "register",
                           hooks.an_instance_of(dict))

TARGET = "sobuild"
NAMESPACE = "brian2"
#: Directories of a cache that only sobuild writes into, and its files at the top.
_STORE_DIRS = {"artifacts", "kernels", "data", "locks", "failed", "tmp", "toolchains", "pch"}
_STORE_FILES = ("index.sqlite",)  # with -wal, -shm, -journal


def register(root: str | os.PathLike) -> None:
    """Tell Brian2 where the 'sobuild' target's cache is."""
    CACHE_DIRS.get()[TARGET] = (os.fspath(root), _STORE_FILES)


def _check_no_foreign_files(root: Path) -> None:
    if not root.exists():
        return
    for entry in root.iterdir():
        if entry.name in _STORE_DIRS and entry.is_dir():
            continue
        if entry.is_file() and entry.name.startswith(_STORE_FILES):
            continue
        raise OSError(
            f"The cache directory for target '{TARGET}' contains the file '{entry}' of an "
            "unexpected type and will therefore not be cleared. Remove it, or clear the "
            f"cache with `sobuild clear --cache-dir {root}`.")


def clear_brian_entries(root: str | os.PathLike) -> int:
    """Remove the Brian2 kernels (and their shared objects) under ``root``; returns how many
    shared objects were removed."""
    from ..store.store import Store

    return Store(root).remove_namespace(NAMESPACE, data=False)


def install() -> None:
    """Route ``brian2.clear_cache('sobuild')`` to :func:`clear_brian_entries`."""
    CLEAR_CACHE.wrap(_clearing_sobuild)


def _clearing_sobuild(original):
    def clear_cache(target):
        if target != TARGET:
            return original(target)
        from . import codegen_cache
        from .prefs import get_cache

        root = get_cache().root
        register(root)
        _check_no_foreign_files(root)
        clear_brian_entries(root)
        codegen_cache.clear()

    clear_cache.__doc__ = original.__doc__
    return clear_cache
