"""Cache: look kernels up by content address, build the misses as one batch, load them.

The warm path reads a key file, reads and hashes the artifact it names, and dlopens it;
the use it records goes to the index in one write at exit. Misses take a per-key lock (one
compile per key across processes), are compiled as a few translation units in one ninja
run, published atomically, and then loaded like hits.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

from .config import Settings
from .errors import BuildError, BuildFailure, CacheDirectoryError
from .keys import ABI_VERSION, check_key, kernel_key
from .loader.cffi_loader import Kernel, load_kernel
from .spec import KernelSpec
from .store import data as data_entries
from .store.files import read_entry
from .store.index import Index, IndexBatch
from .store.layout import Layout
from .store.locks import KeyLock
from .store.publish import (
    explain_os_error,
    make_temp_dir,
    publish_dir,
    remove_tree,
    write_file_atomic,
)
from .store.trust import group_tier, private_temp_dir, publish_modes
from .toolchains.base import Toolchain
from .toolchains.detect import detect

if TYPE_CHECKING:
    from .build.ninja import Progress, UnitResult

LIBRARY_STEM = "lib"


@dataclass(frozen=True)
class Tier:
    """One cache directory; the local tier is written, a shared tier only read."""

    layout: Layout
    writable: bool
    trusted_gid: int | None


@dataclass(frozen=True)
class Found:
    """A verified artifact holding a kernel."""

    library: Path
    digest: str
    tier: Tier


def _usable_directory(root: Path) -> bool:
    try:
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=root / "tmp", prefix="probe-")
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


class Cache:
    """A content-addressed store of compiled kernels (``path``: the cache directory)."""

    #: Called with (units finished, units in the build) while a batch builds (`sobuild prebuild`).
    progress: Progress | None = None

    def __init__(self, path: str | os.PathLike | None = None, *,
                 shared_dir: str | os.PathLike | None = None,
                 toolchain: Toolchain | None = None, jobs: int | None = None):
        settings = Settings.from_env(path)
        root = settings.cache_dir
        if not _usable_directory(root):
            fallback = private_temp_dir()
            warnings.warn(f"sobuild: the cache directory {root} is not writable; using a private "
                          f"temporary cache at {fallback} for this process. Set SOBUILD_CACHE_DIR "
                          "to a writable directory to keep kernels across runs.",
                          RuntimeWarning, stacklevel=2)
            if not _usable_directory(fallback):
                raise CacheDirectoryError(f"neither {root} nor {fallback} can be written: set "
                                          "SOBUILD_CACHE_DIR to a writable directory")
            root = fallback
        self.settings = settings
        self.layout = Layout(root)
        self.local = Tier(self.layout, True, group_tier(root, settings.trust_group))
        self._file_mode, self._dir_mode = publish_modes(self.local.trusted_gid)
        shared = shared_dir if shared_dir is not None else settings.shared_dir
        self.tiers = [self.local]
        if shared:
            shared_layout = Layout(Path(shared).expanduser())
            self.tiers.append(Tier(shared_layout, False,
                                   group_tier(shared_layout.root, settings.trust_group)))
        self.jobs = jobs or settings.jobs
        self.index = Index(self.layout)
        self._toolchain = toolchain
        self._pending = IndexBatch()
        self._artifacts: dict[tuple[str, str], Found | None] = {}
        atexit.register(self.flush)

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def toolchain(self) -> Toolchain:
        """The compiler (detected on first use; its probe is cached in the cache directory)."""
        if self._toolchain is None:
            self._toolchain = detect(cache_dir=self.layout.root)
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
        found: dict[str, Found] = {}
        missing: dict[str, KernelSpec] = {}
        for key, spec in zip(keys, specs):
            if key in found or key in missing:
                continue
            hit = self._lookup(key)
            if hit is None:
                missing[key] = spec
            else:
                found[key] = hit
        self._pending.count("hits", len(found))
        for hit in found.values():
            self._pending.use(hit.digest)
        failures: list[BuildFailure] = []
        if missing:
            self._pending.count("misses", len(missing))
            built, failures = self._build_single_flight(missing)
            found.update(built)
            self.flush()
        if failures:
            raise BuildError(failures)
        return [self._load_found(found[key], key, spec) for key, spec in zip(keys, specs)]

    def _load_found(self, hit: Found, key: str, spec: KernelSpec) -> Kernel:
        """dlopen a verified kernel; if its entry was evicted since (`sobuild prune`), redo."""
        try:
            return load_kernel(hit.library, key, spec.function_pointer_type, spec.entry)
        except OSError:
            if hit.library.exists():
                raise
            self._artifacts.pop((str(hit.tier.layout.root), hit.digest), None)
            return self.load(spec)  # found again if republished, else built again

    def lookup(self, spec: KernelSpec) -> Path | None:
        """The verified shared object holding ``spec``'s kernel, or None on a miss."""
        found = self._lookup(self.key(spec))
        return found.library if found else None

    def _lookup(self, key: str) -> Found | None:
        for tier in self.tiers:
            try:
                digest = json.loads(tier.layout.kernel_file(key).read_bytes())["artifact"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            found = self._verified_artifact(tier, digest)
            if found is not None:
                return found
        return None

    def _verified_artifact(self, tier: Tier, digest: str) -> Found | None:
        """The artifact's library if its bytes match its digest and its owner is trusted."""
        memo = (str(tier.layout.root), digest)
        if memo in self._artifacts:
            return self._artifacts[memo]
        try:
            directory = tier.layout.artifact_dir(digest)
        except ValueError:
            return None
        library = directory / f"{LIBRARY_STEM}{self.toolchain.suffix}"
        try:
            content = read_entry(tier.layout.root, library, tier.trusted_gid)
        except OSError:
            return None
        if xxhash.xxh3_128_hexdigest(content) != digest:
            self._pending.count("corrupt")
            warnings.warn(f"sobuild: {library} does not match its digest (corrupt); it is "
                          "set aside and rebuilt.", RuntimeWarning, stacklevel=4)
            if tier.writable:
                self._discard(directory)
            return None  # not remembered: a rebuild may publish the same digest again
        found = self._artifacts[memo] = Found(library, digest, tier)
        return found

    def _discard(self, directory: Path) -> None:
        """Move an entry aside (readers never see half of it), then delete it."""
        aside = self.layout.tmp / f"discard-{os.getpid()}-{time.time_ns()}"
        try:
            os.rename(directory, aside)
        except OSError:
            return
        remove_tree(aside)

    # -- building -----------------------------------------------------------------------

    def _build_single_flight(self, missing: dict[str, KernelSpec]
                             ) -> tuple[dict[str, Found], list[BuildFailure]]:
        """Build what nobody else is building; wait for the rest, then build what is left."""
        found: dict[str, Found] = {}
        failures: list[BuildFailure] = []
        waiting = sorted(missing)
        first_round = True
        while waiting:
            held: dict[str, KeyLock] = {}
            later = []
            for key in waiting:
                lock = KeyLock(self.layout.lock_file(key))
                got = lock.try_acquire() if first_round else lock.acquire()
                if not got:
                    later.append(key)
                    continue
                hit = self._lookup(key)
                if hit is not None:  # published while we were waiting
                    lock.release()
                    found[key] = hit
                else:
                    held[key] = lock
            try:
                if held:
                    built, failed = self._build_and_publish({k: missing[k] for k in held})
                    found.update(built)
                    failures.extend(failed)
            finally:
                for lock in held.values():
                    lock.release()
            waiting, first_round = later, False
        return found, failures

    def _build_and_publish(self, items: dict[str, KernelSpec]
                           ) -> tuple[dict[str, Found], list[BuildFailure]]:
        from .build.ninja import Unit, build_units  # the warm path never needs them
        from .build.translation_unit import partition, render

        toolchain = self.toolchain
        found: dict[str, Found] = {}
        failures: list[BuildFailure] = []
        try:
            build_dir = make_temp_dir(self.layout.tmp, "build")
        except OSError as exc:
            raise explain_os_error(exc, self.layout.root) from exc
        try:
            kernels = list(items.items())
            units = [Unit(f"unit{i}", group, render(group, toolchain))
                     for i, group in enumerate(partition(kernels, self.jobs))]
            results = build_units(units, build_dir, toolchain, self.jobs, self.progress)
            retry = []
            for result in results:
                if result.ok:
                    found.update(self._publish(result))
                elif len(result.unit.kernels) > 1:
                    retry.extend(result.unit.kernels)  # find which kernel broke the unit
                else:
                    failures.append(self._keep_failure(result))
            if retry:
                solo_dir = build_dir / "solo"
                solo_dir.mkdir()
                units = [Unit(f"solo{i}", [kv], render([kv], toolchain))
                         for i, kv in enumerate(retry)]
                for result in build_units(units, solo_dir, toolchain, self.jobs, self.progress):
                    if result.ok:
                        found.update(self._publish(result))
                    else:
                        failures.append(self._keep_failure(result))
        except OSError as exc:
            raise explain_os_error(exc, self.layout.root) from exc
        finally:
            remove_tree(build_dir)
        self._pending.count("build_errors", len(failures))
        return found, failures

    def _publish(self, result: UnitResult) -> dict[str, Found]:
        """Publish one built unit as an artifact, then its kernel keys."""
        from .build.translation_unit import kernel_filename

        toolchain = self.toolchain
        unit = result.unit
        content = result.output.read_bytes()
        digest = xxhash.xxh3_128_hexdigest(content)
        spec = unit.spec
        meta = {
            "digest": digest,
            "size": len(content),
            "abi": ABI_VERSION,
            "toolchain": {**toolchain.identity(), "short_name": toolchain.short_name},
            "flags": list(spec.flags or toolchain.default_flags),
            "defines": spec.defines,
            "headers": sorted(spec.headers),
            "namespace": spec.namespace,
            "build_seconds": result.seconds,
            "created": time.time(),
            "kernels": [{"key": key, "entry": s.entry, "source_name": kernel_filename(key)}
                        for key, s in unit.kernels],
        }
        staged = make_temp_dir(self.layout.tmp, "publish")
        try:
            library = staged / f"{LIBRARY_STEM}{toolchain.suffix}"
            shutil.move(result.output, library)
            (staged / "lib.cpp").write_text(unit.source)
            (staged / "build.log").write_text(result.log)
            (staged / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
            size = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())
            final = self.layout.artifact_dir(digest)
            publish_dir(staged, final, self._file_mode, self._dir_mode)
        finally:
            if staged.exists():
                remove_tree(staged)
        pointer = json.dumps({"artifact": digest}).encode()
        for key, _ in unit.kernels:
            write_file_atomic(self.layout.kernel_file(key), pointer, self.layout.tmp,
                              self._file_mode, durable=False)  # a damaged one is a miss
            self._pending.keys[key] = digest
        self._pending.artifacts.append({
            "id": digest, "kind": "shared_object", "namespace": spec.namespace,
            "bytes": size,
            "toolchain": toolchain.short_name, "build_seconds": result.seconds,
            "kernels": len(unit.kernels), "created": meta["created"],
        })
        self._pending.count("builds", len(unit.kernels))
        self._pending.count("build_seconds", result.seconds)
        found = Found(final / library.name, digest, self.local)
        self._artifacts[(str(self.layout.root), digest)] = found
        return {key: found for key, _ in unit.kernels}

    def _keep_failure(self, result: UnitResult) -> BuildFailure:
        """Keep the source and log of a kernel that did not compile, under failed/<key>/."""
        from .build.translation_unit import kernel_filename

        if "No space left on device" in result.log:  # the disk failed, not the kernel
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.layout.root))
        (key, spec), = result.unit.kernels
        staged = make_temp_dir(self.layout.tmp, "failed")  # renamed into place when whole
        try:
            (staged / kernel_filename(key)).write_text(spec.source)
            for name, text in spec.headers.items():
                header = staged / name
                header.parent.mkdir(parents=True, exist_ok=True)
                header.write_text(text)
            (staged / "unit.cpp").write_text(result.unit.source)
            (staged / "build.log").write_text(result.log)
            os.chmod(staged, self._dir_mode)
            directory = self.layout.failed_dir(key)
            directory.parent.mkdir(parents=True, exist_ok=True)
            remove_tree(directory)  # an earlier failure of the same kernel
            os.rename(staged, directory)
        finally:
            remove_tree(staged)
        return BuildFailure(key, str(directory / kernel_filename(key)),
                            str(directory / "build.log"),
                            self.toolchain.first_error_lines(result.log))

    # -- data entries ---------------------------------------------------------------------

    def get_data(self, key: str) -> bytes | None:
        """The payload stored under ``key``, digest-checked; None when missing or corrupt."""
        check_key(key)
        for tier in self.tiers:
            path = tier.layout.data_file(key)
            try:
                blob = read_entry(tier.layout.root, path, tier.trusted_gid)
            except OSError:
                continue
            try:
                header, payload = data_entries.decode(blob)
            except data_entries.CorruptEntryError:
                self._pending.count("data_corrupt")
                if tier.writable:
                    path.unlink(missing_ok=True)
                continue
            self._pending.count("data_hits")
            self._pending.count("data_saved_seconds", header.get("seconds", 0.0))
            if tier.writable:
                self._pending.use(key)
            return payload
        self._pending.count("data_misses")
        return None

    def put_data(self, key: str, payload: bytes, *, namespace: str = "default",
                 seconds: float = 0.0) -> None:
        """Store ``payload`` under ``key`` (atomically; an existing entry is kept)."""
        blob = data_entries.encode(payload, namespace, seconds)
        try:
            created = write_file_atomic(self.layout.data_file(key), blob, self.layout.tmp,
                                        self._file_mode, overwrite=False, durable=False)
        except OSError as exc:
            raise explain_os_error(exc, self.layout.root) from exc
        if created:
            now = time.time()
            self._pending.artifacts.append({
                "id": key, "kind": "data", "namespace": namespace, "bytes": len(blob),
                "toolchain": "", "build_seconds": seconds, "kernels": 1, "created": now})
            self._pending.count("data_stored")

    def count(self, name: str, amount: float = 1) -> None:
        """Add to a named counter of the index (written with the next flush)."""
        self._pending.count(name, amount)

    # -- the index ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what this process recorded to the index, in one transaction."""
        if self._pending:
            batch, self._pending = self._pending, IndexBatch()
            written = self.index.write(batch)
            if written and batch.artifacts:
                from .store.prune import over_limit, start_background

                if over_limit(self.index, self.settings.max_size):
                    start_background(self.layout)  # detached; one at a time per cache
