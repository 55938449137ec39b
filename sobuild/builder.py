"""Builder: compile a batch's misses once across processes, in one ninja run, and publish them.

Single flight: a key is built by the process that holds its lock; the others wait, with a
bound (``SOBUILD_LOCK_WAIT``; earlier when the holder is stopped or gone), and then find
the published kernel, or build privately (publication is atomic and never overwrites, so
a duplicate build costs time, never a broken entry). A build has a timeout
(``SOBUILD_BUILD_TIMEOUT``). A kernel that does not compile is remembered under its key:
the next process gets the same BuildError without compiling.
"""

from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import xxhash

from .config import Settings, setting
from .errors import BuildFailure, UntrustedEntryError
from .spec import KernelSpec
from .store.locks import KeyLock
from .store.meta import ArtifactMeta
from .store.publish import explain_os_error, remove_tree
from .store.store import BrokenEntryError, Store, artifact_meta
from .toolchains.base import Toolchain

if TYPE_CHECKING:
    from .compilation.ninja import Progress, UnitResult
    from .compilation.pch import PrecompiledHeader


@dataclass(frozen=True)
class Built:
    """A shared object this process built and published: its digest and its very bytes."""

    digest: str
    content: bytes


@dataclass
class Outcome:
    """What a build round gave: kernels built here, kernels published by others meanwhile
    (found by ``find``), and the kernels that did not compile."""

    built: dict[str, Built] = field(default_factory=dict)
    found: dict[str, object] = field(default_factory=dict)
    failures: list[BuildFailure] = field(default_factory=list)
    #: the artifacts published, with their size on disk
    published: list[tuple[ArtifactMeta, int]] = field(default_factory=list)


class Builder:
    """Builds kernels into ``store`` with ``toolchain`` (``jobs`` compiler processes)."""

    def __init__(self, store: Store, toolchain: Toolchain, settings: Settings, jobs: int,
                 progress: Progress | None = None):
        self.store = store
        self.toolchain = toolchain
        self.settings = settings
        self.jobs = jobs
        self.progress = progress

    def build(self, missing: dict[str, KernelSpec], find: Callable[[str], object | None]
              ) -> Outcome:
        """Build what nobody else is building; wait (bounded) for the rest, then build what
        is still missing. ``find(key)`` looks a kernel up (a hit, or None)."""
        outcome = Outcome()
        retry_failed = setting("SOBUILD_RETRY_FAILED")
        todo: dict[str, KernelSpec] = {}
        for key, spec in missing.items():
            failure = None if retry_failed else self.store.remembered_failure(key)
            if failure is not None:
                outcome.failures.append(failure)
            else:
                todo[key] = spec
        held: dict[str, KeyLock] = {}
        busy: list[str] = []
        try:
            for key in sorted(todo):
                lock = self._lock(key)
                if lock.try_acquire():
                    held[key] = lock
                else:
                    busy.append(key)
            self._build_held(held, todo, find, outcome)
        finally:
            for lock in held.values():
                lock.release()
        for key in busy:
            self._wait_and_build(key, todo[key], find, outcome)
        return outcome

    def _lock(self, key: str) -> KeyLock:
        store = self.store
        return KeyLock(store.layout.lock_file(key), trusted_gid=store.trusted_gid,
                       file_mode=store.lock_mode, dir_mode=store.dir_mode)

    def _build_held(self, held: dict[str, KeyLock], todo: dict[str, KernelSpec],
                    find: Callable[[str], object | None], outcome: Outcome) -> None:
        items = {}
        for key in held:
            hit = find(key)  # published by another process since we looked
            if hit is not None:
                outcome.found[key] = hit
            else:
                items[key] = todo[key]
        if items:
            self._build_and_publish(items, outcome)

    def _wait_and_build(self, key: str, spec: KernelSpec, find: Callable[[str], object | None],
                        outcome: Outcome) -> None:
        lock = self._lock(key)
        got = lock.acquire(timeout=self.settings.lock_wait)
        try:
            hit = find(key)
            if hit is not None:
                outcome.found[key] = hit
                return
            if not got:
                warnings.warn(f"sobuild: kernel {key} is {lock.describe_holder()}; building it "
                              "in this process rather than waiting longer (SOBUILD_LOCK_WAIT="
                              f"{self.settings.lock_wait:g} s).", RuntimeWarning, stacklevel=4)
            self._build_and_publish({key: spec}, outcome)
        finally:
            lock.release()

    def _build_and_publish(self, items: dict[str, KernelSpec], outcome: Outcome) -> None:
        from .compilation.ninja import Unit, build_units  # the warm path never needs them
        from .compilation.pch import GUARD
        from .compilation.translation_unit import partition, render

        toolchain = self.toolchain
        try:
            build_dir = self.store.temp_dir("build")
        except OSError as exc:
            raise explain_os_error(exc, self.store.root) from exc

        def run(units: list[Unit], where) -> list[UnitResult]:
            return build_units(units, where, toolchain, self.jobs, self.progress,
                               timeout=self.settings.build_timeout)

        try:
            groups = partition(list(items.items()), self.jobs)
            pchs = self._precompiled_headers(groups)
            units = [Unit(f"unit{i}", group, render(group, toolchain, pch and GUARD), pch)
                     for i, (group, pch) in enumerate(zip(groups, pchs))]
            retry: list[tuple[tuple[str, KernelSpec], PrecompiledHeader | None]] = []
            for result in run(units, build_dir):
                pch = result.unit.pch
                if result.ok:
                    self._publish(result, outcome)
                elif not result.timed_out and (len(result.unit.kernels) > 1
                                               or (pch is not None and not pch.ready)):
                    # find which kernel broke the unit; or, when its precompiled header
                    # did not build either, let the error name the kernel's own file
                    usable = pch if pch is not None and pch.ready else None
                    retry += [(kv, usable) for kv in result.unit.kernels]
                else:
                    outcome.failures.extend(self._failures(result))
            if retry:
                solo_dir = build_dir / "solo"
                solo_dir.mkdir()
                units = [Unit(f"solo{i}", [kv], render([kv], toolchain, pch and GUARD), pch)
                         for i, (kv, pch) in enumerate(retry)]
                for result in run(units, solo_dir):
                    if result.ok:
                        self._publish(result, outcome)
                    else:
                        outcome.failures.extend(self._failures(result))
            self._publish_pchs(pchs)
        except OSError as exc:
            raise explain_os_error(exc, self.store.root) from exc
        finally:
            remove_tree(build_dir)

    def _precompiled_headers(self, groups: list[list[tuple[str, KernelSpec]]]
                             ) -> list[PrecompiledHeader | None]:
        """The precompiled header each unit of ``groups`` is compiled with (None: none).

        Units with the same one share it; one the cache holds, checked, is used as it is, any
        other is built in this run (``SOBUILD_PCH``: auto, 0 or 1; see ``compilation.pch``).
        """
        from .compilation.pch import plan

        mode = setting("SOBUILD_PCH")
        if mode is False or not self.toolchain.precompiled_headers:
            return [None] * len(groups)
        chosen: dict[str, PrecompiledHeader] = {}
        result: list[PrecompiledHeader | None] = []
        for group in groups:
            pch = plan(group, self.toolchain, force=mode is True)
            if pch is not None:
                if pch.key not in chosen:
                    pch.cached = self._cached_pch(pch.key)
                    chosen[pch.key] = pch
                pch = chosen[pch.key]
            result.append(pch)
        return result

    def _cached_pch(self, key: str) -> bytes | None:
        """The checked bytes of the cache's precompiled header ``key``; None to build it (a
        broken one, or one that read a system header changed since, is removed first; an
        untrusted one is never read)."""
        from .compilation.pch import stale

        try:
            found = self.store.open_pch(key)
        except BrokenEntryError:
            self.store.discard_pch(key)
            return None
        except (UntrustedEntryError, OSError):
            return None
        if found is None:
            return None
        content, meta = found
        if stale(meta.get("depends")) is not None:
            self.store.discard_pch(key)
            return None
        return content

    def _publish_pchs(self, pchs: list[PrecompiledHeader | None]) -> None:
        """Publish the precompiled headers this build made. Failing to keep one (a full
        disk, say) fails no kernel: the next build makes it again."""
        toolchain = self.toolchain
        published = set()
        for pch in pchs:
            if pch is None or id(pch) in published or not (pch.built_here and pch.ready):
                continue
            published.add(id(pch))
            info = {"toolchain": toolchain.short_name, "flags": list(pch.flags),
                    "build_seconds": pch.seconds, "depends": pch.depends}
            try:
                self.store.publish_pch(pch.key, pch.text, pch.binary, info)
            except OSError:
                pass

    def _publish(self, result: UnitResult, outcome: Outcome) -> None:
        """Publish one built unit as an artifact, then its kernel keys."""
        from .compilation.translation_unit import kernel_filename

        toolchain = self.toolchain
        content = result.output.read_bytes()
        digest = xxhash.xxh3_128_hexdigest(content)
        spec = result.unit.spec
        meta = artifact_meta(
            digest, len(content), {**toolchain.identity(), "short_name": toolchain.short_name},
            spec, list(spec.flags or toolchain.default_flags), result.seconds,
            [{"key": key, "entry": s.entry, "source_name": kernel_filename(key)}
             for key, s in result.unit.kernels])
        size = self.store.publish(result.output, meta, result.unit.source, result.log)
        outcome.published.append((meta, size))
        for key, _ in result.unit.kernels:
            outcome.built[key] = Built(digest, content)

    def _failures(self, result: UnitResult) -> list[BuildFailure]:
        """Keep (and, for a compile error, remember) the kernels of a failed unit."""
        from .compilation.translation_unit import kernel_filename

        if result.disk_full:  # the disk failed, not the kernel
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.store.root))
        lines = self.toolchain.first_error_lines(result.log)
        failures = []
        for key, spec in result.unit.kernels:
            files = {kernel_filename(key): spec.source, **spec.headers,
                     "unit.cpp": result.unit.source}
            failures.append(self.store.keep_failure(
                key, files, result.log, lines, self.toolchain.short_name,
                remember=not result.timed_out))
        return failures
