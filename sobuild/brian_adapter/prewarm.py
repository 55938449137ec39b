"""What every Brian2 kernel needs, built in the background from the adapter's import on.

On an empty cache (or with a new compiler), the first build round of a Brian2 process
waited for the compiler probe, the runtime support library (``support_library``) and the
precompiled header of the kernels' one prologue: about 3.5 s of a cold CUBA process, while
the process had spent 1-2.5 s importing Brian2 and building its network in Python with a
core idle. :func:`start`, called when the adapter is imported (before it imports Brian2),
looks for both in the cache with the key and presence checks the first batch makes
anyway; when one is missing it builds both in a daemon thread, through the cache's ordinary batch
build (with as many compiler jobs: once the batch waits for it, no core should idle): the
per-key build lock keeps each build single across this thread, the first batch and other
processes. The first batch (``codeobject.load_kernels``) waits
for the thread (:func:`wait`) and then finds them in the cache. The thread raises nothing:
what it failed to build, the batch builds itself and reports as it always did (a kernel
that did not compile is remembered under its key, so the batch reports that error at once).

The precompiled header is built the way every one is, with the first unit that reads it:
the thread's unit is ``support_library.pch_carrier_spec()``, a kernel of the prologue with
an empty body (a few kilobytes, built once per toolchain, as the header is).

Nothing of this runs when both are in the cache (every warm process): no thread, no
compiler. The cache is the one ``SOBUILD_CACHE_DIR`` names (or the default): a Brian2 script
that sets ``codegen.runtime.sobuild.cache_dir`` or other kernel flags only gets its things
built in its first batch, as before. ``SOBUILD_BRIAN_PREWARM=0`` turns this off (a node
without a spare core, or a process that imports the adapter but builds no kernel).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..cache import Cache
from ..config import setting
from ..errors import SobuildError, UntrustedEntryError
from ..spec import KernelSpec
from .support_library import pch_carrier_spec, support_spec

#: The cache of the adapter's import (``prefs.get_cache`` uses it when it is the one wanted).
cache: Cache | None = None
#: The background build of this process (None: none started, or waited for already).
thread: threading.Thread | None = None
#: What the last background build raised, for the record (the first batch builds anew).
error: BaseException | None = None


def start() -> None:
    """Start building what the cache lacks of the support library and the kernels'
    precompiled header, in a daemon thread; nothing when it has both or when turned off.

    Nothing either with a remote tier (``SOBUILD_REMOTE``): there the first batch fetches
    what the cache lacks, and a build ahead of it (the header's carrier kernel, which no
    batch uploads) would make a job on a warm remote compile."""
    global cache, thread
    if not setting("SOBUILD_BRIAN_PREWARM") or os.environ.get("SOBUILD_REMOTE", "").strip():
        return
    try:
        cache = Cache()
        if not any(cache.layout.root.joinpath("toolchains").glob("probe-*.json")):
            needed = None  # an empty cache: the compiler is probed in the thread too
        else:
            needed = missing(cache)
            if not needed:
                return
    except (SobuildError, OSError):
        return  # no compiler, an unusable cache: the first batch says what is wrong
    thread = threading.Thread(target=_build, args=(cache.root, needed), daemon=True,
                               name="sobuild-prewarm")
    thread.start()


def missing(cache: Cache) -> list[KernelSpec]:
    """The kernels to build: the support library and the carrier of the kernels'
    precompiled header (when the compiler makes one), unless the cache holds them. A
    header pruned since its carrier was built is built again by the next batch that reads
    it; a cache whose header came without a carrier gets the carrier once (it compiles
    with that header), so that warm processes need not plan the header to find it there."""
    specs = [support_spec()]
    if setting("SOBUILD_PCH") is not False and cache.toolchain.precompiled_headers:
        specs.append(pch_carrier_spec())
    return [spec for spec in specs if not _holds(cache, spec)]


def _holds(cache: Cache, spec: KernelSpec) -> bool:
    """Whether the cache's key file of ``spec`` names an artifact whose library is there
    (its digest is checked when it is loaded, by the batch)."""
    try:
        digest = cache.store.artifact_of(cache.key(spec))
    except UntrustedEntryError:  # the batch says what is wrong with it
        return True
    return digest is not None and cache.store.library_path(
        digest, cache.toolchain.suffix).is_file()


def _build(root: Path, needed: list[KernelSpec] | None) -> None:
    """The thread: build ``needed`` (None: what ``missing`` finds) into the cache at ``root``
    with a Cache of its own (its index writes stay in this thread)."""
    global error
    try:
        own = Cache(root)
        specs = missing(own) if needed is None else needed
        if specs:
            own.load_many(specs)
    except BaseException as exc:  # noqa: BLE001  the first batch builds, and reports, anew
        error = exc


def wait(root: Path) -> None:
    """Wait until the background build into the cache at ``root`` (if any) has ended."""
    global thread
    if thread is not None and cache is not None and cache.root == root:
        thread.join()
        thread = None
