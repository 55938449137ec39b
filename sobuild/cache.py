"""Cache: look kernels up by content address in the tiers, build the misses, load them.

A thin layer over ``Store`` (the files of each tier) and ``Builder`` (locks, ninja,
timeouts). The warm path reads a key file and the shared object it names through one open,
checked handle, hashes those bytes and dlopens that very inode; the use it records goes to
the index in one write at exit. Every way to reach a library (a hit, a kernel published by
another process while this one waited, a shared tier) goes through ``_library``.
"""

from __future__ import annotations

import atexit
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings, setting
from .errors import BuildError, CacheDirectoryError, UntrustedEntryError
from .keys import check_key, kernel_key
from .loader.cffi_loader import Kernel, KernelLoadError, load_bytes, load_kernel, load_verified, loaded
from .spec import KernelSpec
from .store import data as data_entries
from .store.index import IndexBatch
from .store.layout import Layout
from .store.publish import explain_os_error, remove_tree
from .store.store import BrokenEntryError, Store
from .store.trust import private_temp_dir
from .toolchains.base import Toolchain

if TYPE_CHECKING:
    from .builder import Built, Outcome
    from .compilation.ninja import Progress
    from .remote.entries import Bundle
    from .remote.tier import RemoteTier
    from .store.meta import ArtifactMeta

#: Seconds a run (not a command) waits for a locked index unless SOBUILD_SQLITE_TIMEOUT is set.
RUN_INDEX_TIMEOUT = 1.0


@dataclass(frozen=True)
class Found:
    """A loaded, verified artifact holding a kernel, and the tier it came from."""

    store: Store
    digest: str
    library: Path
    lib: object


class Cache:
    """A content-addressed store of compiled kernels (``path``: the cache directory).

    ``progress`` is called with (units finished, units in the build) while a batch builds.
    """

    def __init__(self, path: str | os.PathLike | None = None, *,
                 shared_dir: str | os.PathLike | None = None,
                 toolchain: Toolchain | None = None, jobs: int | None = None,
                 progress: Progress | None = None):
        settings = Settings.from_env(path)
        # a run waits about a second for a locked index, then skips and counts the update;
        # a timeout the user set is theirs to choose (a loaded node may need longer)
        bound = (setting("SOBUILD_SQLITE_TIMEOUT") if os.environ.get("SOBUILD_SQLITE_TIMEOUT")
                 else RUN_INDEX_TIMEOUT)
        store = Store(settings.cache_dir, trust_group=settings.trust_group, index_timeout=bound)
        if not store.usable():
            fallback = private_temp_dir()
            warnings.warn(f"sobuild: the cache directory {store.root} is not writable; using a "
                          f"private temporary cache at {fallback} for this process. Set "
                          "SOBUILD_CACHE_DIR to a writable directory to keep kernels across "
                          "runs.", RuntimeWarning, stacklevel=2)
            store = Store(fallback, index_timeout=bound)
            if not store.usable():
                raise CacheDirectoryError(f"neither {settings.cache_dir} nor {fallback} can be "
                                          "written: set SOBUILD_CACHE_DIR to a writable "
                                          "directory")
        self.settings = settings
        self.store = store
        shared = shared_dir if shared_dir is not None else settings.shared_dir
        self.tiers = [store]
        if shared:
            self.tiers.append(Store(Path(shared).expanduser(), writable=False,
                                    trust_group=settings.trust_group))
        self.jobs = jobs or settings.jobs
        self.progress = progress
        self._toolchain = toolchain
        self._pending = IndexBatch()
        self._warned: set[str] = set()
        self.remotes: list[RemoteTier] = []
        self._toolchain_id: str | None = None
        if settings.remotes:  # the remote package and its clients are imported only then
            from .remote.tier import configured_tiers

            self.remotes = configured_tiers(settings.remotes, self.count)
        atexit.register(self.flush)

    @property
    def root(self) -> Path:
        return self.store.root

    @property
    def layout(self) -> Layout:
        return self.store.layout

    @property
    def toolchain(self) -> Toolchain:
        """The compiler (detected on first use; its probe is kept in the cache directory)."""
        if self._toolchain is None:
            from .toolchains.detect import detect
            from .toolchains.probes import ProbeRecords

            store = self.store
            self._toolchain = detect(records=ProbeRecords(
                store.root, store.trusted_gid, store.file_mode, store.dir_mode))
        return self._toolchain

    def key(self, spec: KernelSpec) -> str:
        return kernel_key(spec, self.toolchain)

    # -- kernels --------------------------------------------------------------------------

    def load(self, spec: KernelSpec) -> Kernel:
        """The kernel of ``spec``: loaded from the cache, or built first on a miss."""
        return self.load_many([spec])[0]

    def load_many(self, specs: Sequence[KernelSpec]) -> list[Kernel]:
        """Kernels for all ``specs``; every miss is built in one ninja run.

        Raises BuildError after the batch if some kernels did not compile: the others are
        built and published all the same.
        """
        keys = [self.key(spec) for spec in specs]
        unique = dict(zip(keys, specs))
        kernels: dict[str, Kernel] = {}
        missing: dict[str, KernelSpec] = {}
        for key, spec in unique.items():
            found = self._find(key)
            kernel = self._bind(found, key, spec) if found is not None else None
            if kernel is None:
                missing[key] = spec
            else:
                kernels[key] = kernel
                self._pending.use(found.digest)
                if found.store is not self.store:
                    self._pending.count("shared_hits")
                elif self._resharing():
                    self._upload(found.digest)
        self._pending.count("hits", len(kernels))
        if missing and self.remotes:
            self._fetch_remote(missing, kernels)
        if missing:
            self._build(missing, kernels)
        return [kernels[key] for key in keys]

    def _build(self, missing: dict[str, KernelSpec], kernels: dict[str, Kernel]) -> None:
        from .builder import Builder

        builder = Builder(self.store, self.toolchain, self.settings, self.jobs, self.progress)
        outcome = builder.build(missing, self._find)
        self._record(outcome)
        for key, found in outcome.found.items():  # published by another process meanwhile
            self._pending.use(found.digest)
            kernel = self._bind(found, key, missing[key])
            if kernel is None:
                raise KernelLoadError(f"{found.library} does not hold kernel {key}, although "
                                      "its key file names it; it has been set aside")
            kernels[key] = kernel
        for key, built in outcome.built.items():
            kernels[key] = self._load_built(key, missing[key], built)
        for meta, _ in outcome.published:
            self._upload(meta.digest)
        self.flush()
        if outcome.failures:
            raise BuildError(outcome.failures)

    def _record(self, outcome: Outcome) -> None:
        """Count a build round: who waited for another's build counts as a hit."""
        pending = self._pending
        pending.count("hits", len(outcome.found))
        pending.count("misses", len(outcome.built) + len(outcome.failures))
        pending.count("build_errors", len(outcome.failures))
        for meta, size in outcome.published:
            self._record_artifact(meta, size)
            pending.count("builds", len(meta.kernels))
            pending.count("build_seconds", meta.build_seconds)

    def _record_artifact(self, meta: ArtifactMeta, size: int) -> None:
        """Tell the index of an artifact published in the local tier (built or downloaded)."""
        self._pending.artifacts.append({
            "id": meta.digest, "kind": "shared_object", "namespace": meta.namespace,
            "bytes": size, "toolchain": meta.toolchain_name,
            "build_seconds": meta.build_seconds, "kernels": len(meta.kernels),
            "created": meta.created})
        self._pending.keys.update(dict.fromkeys(meta.kernel_keys, meta.digest))

    def _load_built(self, key: str, spec: KernelSpec, built: Built) -> Kernel:
        """A kernel this process built: from the store, else from the bytes it holds."""
        suffix = self.toolchain.suffix
        library = self.store.library_path(built.digest, suffix)
        lib = self._library(self.store, built.digest)
        if lib is None:  # set aside or replaced since: load the very bytes built here
            lib = load_bytes(built.content, built.digest, suffix)
        return load_kernel(lib, key, spec.function_pointer_type, spec.entry, library)

    # -- remote tiers ---------------------------------------------------------------------

    def _fetch_remote(self, missing: dict[str, KernelSpec], kernels: dict[str, Kernel]) -> None:
        """Kernels of the remote tiers, in order: checked, written into the local tier, then
        loaded from it through the same verified path as any local hit."""
        toolchain = self._remote_toolchain()
        for tier in self.remotes:
            if not missing:
                return
            bundles = tier.fetch_kernels(list(missing), toolchain)
            adopted = {b.meta.digest: b for b in bundles.values()}
            for bundle in adopted.values():
                self._adopt(bundle, tier.name)
            for key, bundle in bundles.items():
                found = self._find(key)
                lib = found.lib if found is not None else load_bytes(
                    bundle.library, bundle.meta.digest, self.toolchain.suffix)
                library = self.store.library_path(bundle.meta.digest, self.toolchain.suffix)
                spec = missing.pop(key)
                kernels[key] = load_kernel(lib, key, spec.function_pointer_type, spec.entry,
                                           library)
                self._pending.use(bundle.meta.digest)
                self._pending.count("hits")

    def _adopt(self, bundle: Bundle, tier: str) -> None:
        """Publish a checked remote artifact into the local tier (so the next process is warm
        here); on a full or broken disk it is only loaded from memory."""
        staged = self.store.temp_dir("remote")
        try:
            library = staged / f"lib{self.toolchain.suffix}"
            library.write_bytes(bundle.library)
            size = self.store.publish(library, bundle.meta, bundle.source,
                                      f"downloaded from the remote tier {tier}\n")
        except OSError as exc:
            warnings.warn(f"sobuild: a kernel of {tier} could not be written to {self.root} "
                          f"({exc}); it is loaded from memory", RuntimeWarning, stacklevel=5)
        else:
            self._record_artifact(bundle.meta, size)
        finally:
            remove_tree(staged)

    def _writable_remotes(self) -> list[RemoteTier]:
        return [tier for tier in self.remotes if tier.writable and tier.on]

    def _remote_toolchain(self) -> str:
        """The toolchain identity that remote records are signed with (computed once)."""
        if self._toolchain_id is None:
            from .remote.entries import toolchain_identity

            self._toolchain_id = toolchain_identity(self.toolchain.identity())
        return self._toolchain_id

    def _resharing(self) -> bool:
        return any(tier.url.reshare for tier in self.remotes)

    def _upload(self, digest: str) -> None:
        """Upload a local artifact to every writable remote tier (each bounded by its budget)."""
        tiers = self._writable_remotes()
        if not tiers:
            return
        from .remote.entries import Bundle

        try:
            entry = self.store.open_library(digest, self.toolchain.suffix)
            if entry is None:
                return
            try:
                library = entry.read()
            finally:
                entry.close()
            source = self.store.read(self.layout.artifact_dir(digest) / "lib.cpp").decode()
            bundle = Bundle(self.store.read_meta(digest), library, source)
        except (OSError, ValueError, BrokenEntryError, UntrustedEntryError):
            return  # set aside or replaced meanwhile: nothing sound to share
        toolchain = self._remote_toolchain()
        for tier in tiers:
            tier.upload_bundle(bundle, toolchain)

    def lookup(self, spec: KernelSpec) -> Path | None:
        """The verified shared object holding ``spec``'s kernel, or None on a miss."""
        found = self._find(self.key(spec))
        return found.library if found else None

    def _find(self, key: str) -> Found | None:
        """The first tier's verified, loaded artifact that the key of ``key`` names."""
        for store in self.tiers:
            try:
                digest = store.artifact_of(key)
                lib = self._library(store, digest) if digest is not None else None
            except UntrustedEntryError as exc:
                if store.writable:
                    raise
                self._skip_untrusted(store, exc)
                continue
            if lib is not None:
                library = store.library_path(digest, self.toolchain.suffix)
                return Found(store, digest, library, lib)
        return None

    def _library(self, store: Store, digest: str):
        """The loaded library of ``digest`` from ``store``: opened, checked, hashed and loaded
        on one handle; None when missing or broken (a broken one is set aside)."""
        lib = loaded(digest)
        if lib is not None:
            return lib
        suffix = self.toolchain.suffix
        try:
            entry = store.open_library(digest, suffix)
        except BrokenEntryError as exc:
            self._pending.count("corrupt")
            moved = store.discard_artifact(digest)
            if digest not in self._warned:
                self._warned.add(digest)
                warnings.warn(f"sobuild: {exc} (corrupt); " + (
                    "it is set aside and rebuilt." if moved else
                    f"it cannot be set aside from {store.root}, so this process builds its "
                    "own copy (`sobuild verify --repair` as its owner removes it)."),
                    RuntimeWarning, stacklevel=5)
            return None
        if entry is None:
            return None
        fd, entry.fd = entry.fd, -1
        return load_verified(fd, digest, suffix)

    def _bind(self, found: Found, key: str, spec: KernelSpec) -> Kernel | None:
        """The kernel ``key`` of a found artifact; None (the key set aside) if it holds none."""
        try:
            return load_kernel(found.lib, key, spec.function_pointer_type, spec.entry,
                               found.library)
        except KernelLoadError:
            self._pending.count("bad_keys")
            warnings.warn(f"sobuild: the key file of kernel {key} names {found.library}, which "
                          "does not hold it; the key is set aside and the kernel rebuilt.",
                          RuntimeWarning, stacklevel=4)
            found.store.forget_key(key, found.digest)
            return None

    def _skip_untrusted(self, store: Store, exc: UntrustedEntryError) -> None:
        """An untrusted entry of a read-only tier: not run; built locally instead."""
        self._pending.count("untrusted_skipped")
        if str(store.root) not in self._warned:
            self._warned.add(str(store.root))
            warnings.warn(f"sobuild: skipping an entry of the shared tier {store.root}: {exc}",
                          RuntimeWarning, stacklevel=5)

    # -- data entries ---------------------------------------------------------------------

    def get_data(self, key: str) -> bytes | None:
        """The payload stored under ``key``, digest-checked; None when missing or corrupt."""
        check_key(key)
        for store in self.tiers:
            try:
                entry = store.get_data(key)
            except BrokenEntryError:
                self._pending.count("data_corrupt")
                continue
            except UntrustedEntryError as exc:
                if store.writable:
                    raise
                self._skip_untrusted(store, exc)
                continue
            if entry is None:
                continue
            self._pending.count("data_hits")
            self._pending.count("data_saved_seconds", entry.header.get("seconds", 0.0))
            if store.writable:
                self._pending.use(key)
                if self._resharing():
                    self._upload_data(key)
            return entry.payload
        payload = self._fetch_remote_data(key) if self.remotes else None
        if payload is None:
            self._pending.count("data_misses")
        return payload

    def _fetch_remote_data(self, key: str) -> bytes | None:
        """A data entry of the remote tiers, checked, kept in the local tier, then read back."""
        for tier in self.remotes:
            blob = tier.fetch_data(key)
            if blob is None:
                continue
            try:
                header, payload = data_entries.decode(blob)
            except data_entries.CorruptEntryError:
                tier.count("refused_corrupt")
                continue
            try:
                self._store_data(key, blob, header)
            except OSError:
                pass  # a full or broken disk: the payload serves this process all the same
            self._pending.count("data_hits")
            self._pending.count("data_saved_seconds", header.get("seconds", 0.0))
            return payload
        return None

    def _upload_data(self, key: str) -> None:
        tiers = self._writable_remotes()
        if not tiers:
            return
        try:
            blob = self.store.read(self.layout.data_file(key))
        except (OSError, UntrustedEntryError):
            return
        for tier in tiers:
            tier.upload_data(key, blob)

    def put_data(self, key: str, payload: bytes, *, namespace: str = "default",
                 seconds: float = 0.0) -> None:
        """Store ``payload`` under ``key`` (atomically; an existing entry is kept)."""
        check_key(key)
        blob = data_entries.encode(payload, namespace, seconds)
        try:
            created = self._store_data(key, blob, {"namespace": namespace, "seconds": seconds})
        except OSError as exc:
            raise explain_os_error(exc, self.root) from exc
        if created:
            self._pending.count("data_stored")
            self._upload_data(key)

    def _store_data(self, key: str, blob: bytes, header: dict) -> bool:
        """Write an encoded data entry into the local tier, and tell the index when it is new."""
        created = self.store.put_data(key, blob)
        if created:
            self._pending.artifacts.append({
                "id": key, "kind": "data", "namespace": header.get("namespace", "default"),
                "bytes": len(blob), "toolchain": "", "build_seconds": header.get("seconds", 0.0),
                "kernels": 1, "created": time.time()})
        return created

    def remove_data(self, key: str) -> None:
        """Remove the data entry of ``key`` from the writable tier (an unusable one, say)."""
        self.store.remove_data(check_key(key))

    def count(self, name: str, amount: float = 1) -> None:
        """Add to a named counter of the index (written with the next flush)."""
        self._pending.count(name, amount)

    # -- the index ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what this process recorded to the index, in one transaction."""
        if self._pending:
            batch, self._pending = self._pending, IndexBatch()
            written = self.store.record(batch)
            if written and batch.artifacts:
                from .store.prune import over_limit, start_background

                if over_limit(self.store.index, self.settings.max_size):
                    start_background(self.layout)  # detached; one at a time per cache
