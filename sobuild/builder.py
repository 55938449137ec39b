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
from .errors import BuildFailure
from .spec import KernelSpec
from .store.locks import KeyLock
from .store.meta import ArtifactMeta
from .store.publish import explain_os_error, remove_tree
from .store.store import Store, artifact_meta
from .toolchains.base import Toolchain

if TYPE_CHECKING:
    from .compilation.ninja import Progress, UnitResult


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
            units = [Unit(f"unit{i}", group, render(group, toolchain))
                     for i, group in enumerate(partition(list(items.items()), self.jobs))]
            retry = []
            for result in run(units, build_dir):
                if result.ok:
                    self._publish(result, outcome)
                elif len(result.unit.kernels) > 1 and not result.timed_out:
                    retry.extend(result.unit.kernels)  # find which kernel broke the unit
                else:
                    outcome.failures.extend(self._failures(result))
            if retry:
                solo_dir = build_dir / "solo"
                solo_dir.mkdir()
                units = [Unit(f"solo{i}", [kv], render([kv], toolchain))
                         for i, kv in enumerate(retry)]
                for result in run(units, solo_dir):
                    if result.ok:
                        self._publish(result, outcome)
                    else:
                        outcome.failures.extend(self._failures(result))
        except OSError as exc:
            raise explain_os_error(exc, self.store.root) from exc
        finally:
            remove_tree(build_dir)

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
