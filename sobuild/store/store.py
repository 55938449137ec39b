"""Store: one cache directory (a tier), owning every file in it.

Layout, the rules for opening files (``files.open_entry``: no links followed, no blocking,
owner and mode checked on the handle), ``meta.json``, publishing, data entries, remembered
build failures, usage records, removal by namespace and verification all live behind this
class. The Builder and the Cache, the Brian2 adapter and the CLI use its public methods.

A local store is written; a shared directory tier is a read-only Store. Remote tiers
(Redis, HTTP) will be further backends with the same lookups, one file each.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

from ..errors import BuildFailure, UntrustedEntryError
from ..keys import ABI_VERSION, check_key
from . import data as data_entries
from .files import EntryFile, NotRegularFileError, ensure_dir, open_entry, read_entry
from .index import GROUP_MODE, PRIVATE_MODE, Index, IndexBatch
from .layout import PCH_HEADER, PCH_META, Layout
from .meta import ArtifactMeta, BadMetaError
from .publish import make_temp_dir, publish_dir, remove_tree, write_file_atomic
from .trust import group_tier, publish_modes

if TYPE_CHECKING:
    from .inspect import Entry
    from .prune import PruneResult
    from .stats import Entries

LIBRARY_STEM = "lib"
FAILURE_RECORD = "failure.json"


class BrokenEntryError(Exception):
    """An entry of one's own that cannot be used (wrong bytes, missing or odd files)."""


@dataclass(frozen=True)
class DataEntry:
    """A data entry's header (namespace, compute seconds ...) and its digest-checked payload."""

    header: dict
    payload: bytes


class Store:
    """The files of one cache directory; ``writable=False`` for a read-only shared tier."""

    def __init__(self, root: str | os.PathLike, *, writable: bool = True,
                 trust_group: bool = False, index_timeout: float | None = None):
        # absolute: entries are opened relative to the root's handle, by their path inside it
        self.layout = Layout(Path(os.path.abspath(Path(root).expanduser())))
        self.index_timeout = index_timeout
        self.writable = writable
        self.trusted_gid = group_tier(self.layout.root, trust_group)
        self.file_mode, self.dir_mode = publish_modes(self.trusted_gid)
        self._index: Index | None = None

    def __repr__(self) -> str:
        kind = "writable" if self.writable else "read-only"
        group = f", group {self.trusted_gid}" if self.trusted_gid is not None else ""
        return f"<sobuild.Store {self.root} ({kind}{group})>"

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def lock_mode(self) -> int:
        """Lock files: readable (lockable) by nobody untrusted."""
        return self.file_mode & ~0o007 | 0o600

    @property
    def index(self) -> Index:
        """The sqlite index (``index_timeout``: a run's bound; None: the commands' setting)."""
        if self._index is None:
            self._index = Index(self.layout, timeout=self.index_timeout,
                                trusted_gid=self.trusted_gid,
                                file_mode=PRIVATE_MODE if self.trusted_gid is None else GROUP_MODE)
        return self._index

    def usable(self) -> bool:
        """Create the directory (privately, whatever the umask) and check it can be written."""
        try:
            ensure_dir(self.layout.tmp, self.dir_mode)
            fd, probe = tempfile.mkstemp(dir=self.layout.tmp, prefix="probe-")
            os.close(fd)
            os.unlink(probe)
            return True
        except OSError:
            return False

    def ensure_dir(self, path: Path) -> Path:
        """``path`` inside the store, created with the store's directory mode."""
        return ensure_dir(path, self.dir_mode)

    def temp_dir(self, prefix: str) -> Path:
        """A private directory under ``tmp/`` (same filesystem: renames out of it are atomic)."""
        return make_temp_dir(self.ensure_dir(self.layout.tmp), prefix)

    def read(self, path: Path) -> bytes:
        """The bytes of a trusted regular file of this store (see ``files.open_entry``)."""
        return read_entry(self.root, path, self.trusted_gid)

    # -- kernels ------------------------------------------------------------------------

    def artifact_of(self, key: str) -> str | None:
        """The digest the kernel key file of ``key`` names; None when there is none to use.

        A damaged key file is a miss (publishing rewrites it); so is, in a writable store, a
        symbolic link in its place (the link is set aside, never what it names).
        UntrustedEntryError when it belongs to someone untrusted, or is a link in a read-only
        store.
        """
        path = self.layout.kernel_file(key)
        try:
            blob = self.read(path)
            digest = json.loads(blob)["artifact"]
            return check_key(digest)
        except NotRegularFileError:
            self.forget_key(key)
            return None
        except UntrustedEntryError:
            if not (self.writable and _link_in_real_directories(path)):
                raise
            self.forget_key(key)
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def library_path(self, digest: str, suffix: str) -> Path:
        """Where the shared object of artifact ``digest`` lives (``suffix``: ``.so`` ...)."""
        return self.layout.artifact_dir(digest) / f"{LIBRARY_STEM}{suffix}"

    def open_library(self, digest: str, suffix: str) -> EntryFile | None:
        """The artifact's shared object, open and checked: its bytes hash to ``digest``.

        None when there is no such artifact. BrokenEntryError when the directory is there
        but its library is missing, not a file, or other bytes; UntrustedEntryError when
        someone untrusted could have placed it.
        """
        library = self.library_path(digest, suffix)
        directory = library.parent
        try:
            entry = open_entry(self.root, library, self.trusted_gid)
        except FileNotFoundError:
            if os.path.lexists(directory):
                raise BrokenEntryError(f"{directory} has no {LIBRARY_STEM}{suffix}") from None
            return None
        except NotRegularFileError as exc:
            raise BrokenEntryError(str(exc)) from None
        try:
            actual = xxhash.xxh3_128_hexdigest(entry.read())
        except BaseException:
            entry.close()
            raise
        if actual != digest:
            entry.close()
            raise BrokenEntryError(f"{entry.path} does not match its digest (it hashes to "
                                   f"{actual[:12]}…)")
        return entry

    def read_meta(self, digest: str) -> ArtifactMeta:
        """The parsed ``meta.json`` of an artifact (BadMetaError, OSError, UntrustedEntryError)."""
        return ArtifactMeta.parse(self.read(self.layout.artifact_dir(digest) / "meta.json"))

    def publish(self, library: Path, meta: ArtifactMeta, source: str, log: str) -> int:
        """Publish a built shared object (moved from ``library``) with its source, log and
        meta, then the key files of its kernels; returns the artifact's bytes on disk.

        An artifact already there under the same digest is kept if it is sound, and set
        aside first if it is not (a missing library, other bytes, files of someone else).
        """
        staged = self.temp_dir("publish")
        try:
            shutil.move(library, staged / f"{LIBRARY_STEM}{Path(library).suffix}")
            (staged / "lib.cpp").write_text(source)
            (staged / "build.log").write_text(log)
            (staged / "meta.json").write_bytes(meta.to_bytes())
            size = sum(p.stat().st_size for p in staged.iterdir())
            final = self.layout.artifact_dir(meta.digest)
            self.ensure_dir(final.parent)
            if os.path.lexists(final) and not self._sound(meta.digest, Path(library).suffix):
                self.discard_artifact(meta.digest)
            publish_dir(staged, final, self.file_mode, self.dir_mode)
        finally:
            remove_tree(staged)
        self.write_keys(meta.kernel_keys, meta.digest)
        return size

    def _sound(self, digest: str, suffix: str) -> bool:
        try:
            entry = self.open_library(digest, suffix)
        except (BrokenEntryError, UntrustedEntryError, OSError):
            return False
        if entry is None:
            return False
        entry.close()
        return True

    def write_keys(self, keys: list[str], digest: str) -> None:
        """Point each kernel key at ``digest`` (replacing whatever was at the key's name)."""
        pointer = json.dumps({"artifact": digest}).encode()
        for key in keys:
            write_file_atomic(self.layout.kernel_file(key), pointer, self.layout.tmp,
                              self.file_mode, durable=False, dir_mode=self.dir_mode)

    def forget_key(self, key: str, digest: str | None = None) -> None:
        """Remove the key file of ``key`` (only if it still names ``digest``, when given)."""
        if not self.writable:
            return
        path = self.layout.kernel_file(key)
        if digest is not None:
            try:
                if json.loads(self.read(path)).get("artifact") != digest:
                    return
            except (OSError, ValueError, AttributeError, UntrustedEntryError):
                pass  # unreadable: nothing anyone can use, remove it
        self._set_aside(path, "key")

    def discard_artifact(self, digest: str) -> bool:
        """Move a broken artifact directory aside (readers never see half of it), delete it;
        False when it cannot be moved (a read-only tier, a directory not ours)."""
        return self.writable and self._set_aside(self.layout.artifact_dir(digest), "discard")

    def _set_aside(self, path: Path, what: str) -> bool:
        aside = self.layout.tmp / f"{what}-{os.getpid()}-{time.time_ns()}"
        try:
            self.ensure_dir(self.layout.tmp)
            os.rename(path, aside)
        except OSError:
            return False
        if os.path.isdir(aside) and not os.path.islink(aside):
            remove_tree(aside)
        else:
            os.unlink(aside)
        return True

    # -- precompiled headers (sobuild.compilation.pch) ----------------------------------

    def open_pch(self, key: str, *, use: bool = True) -> tuple[bytes, dict] | None:
        """The bytes of precompiled header ``key``, checked (they hash to the digest its
        ``meta.json`` records), and that meta. None when there is none; BrokenEntryError
        when its directory is there but a file is missing, odd or other bytes;
        UntrustedEntryError as for kernels. With ``use``, the use is recorded (the meta's
        mtime) for prune."""
        directory = self.layout.pch_dir(key)
        try:
            meta = json.loads(self.read(directory / PCH_META))
            name, digest = meta["file"], meta["digest"]
            if not isinstance(meta, dict) or meta.get("key") != key or not _pch_file_name(name):
                raise ValueError("meta.json describes another precompiled header")
            content = self.read(directory / name)
        except FileNotFoundError:
            if os.path.lexists(directory):
                raise BrokenEntryError(f"{directory} misses a file") from None
            return None
        except (NotRegularFileError, ValueError, KeyError, TypeError) as exc:
            raise BrokenEntryError(f"{directory}: {exc}") from None
        actual = xxhash.xxh3_128_hexdigest(content)
        if actual != digest:
            raise BrokenEntryError(f"{directory / name} does not match its digest (it hashes "
                                   f"to {actual[:12]}…)")
        if use and self.writable:
            try:
                os.utime(directory / PCH_META)
            except OSError:
                pass  # another member's entry in a group cache
        return content, meta

    def publish_pch(self, key: str, text: str, binary: Path, info: dict) -> bool:
        """Publish precompiled header ``key`` (its ``text`` and the file ``binary``, moved)
        with a meta.json of ``info`` and its digest; False when a sound one was there first.
        One that is not sound is set aside first."""
        content = Path(binary).read_bytes()
        name = PCH_HEADER + Path(binary).suffix
        if not _pch_file_name(name):
            raise ValueError(f"{binary} is not a precompiled header")
        meta = {**info, "key": key, "file": name, "size": len(content),
                "digest": xxhash.xxh3_128_hexdigest(content), "created": time.time()}
        del content
        staged = self.temp_dir("pch")
        try:
            shutil.move(binary, staged / name)
            (staged / PCH_HEADER).write_text(text)
            (staged / PCH_META).write_text(json.dumps(meta, indent=1, sort_keys=True))
            final = self.layout.pch_dir(key)
            self.ensure_dir(final.parent)
            if os.path.lexists(final):
                try:
                    if self.open_pch(key, use=False) is not None:
                        return False
                except (BrokenEntryError, UntrustedEntryError, OSError):
                    pass
                self.discard_pch(key)
            # no fsync of its 20-40 MB: a crash leaves bytes that fail the digest: rebuilt
            return publish_dir(staged, final, self.file_mode, self.dir_mode, durable=False)
        finally:
            remove_tree(staged)

    def discard_pch(self, key: str) -> bool:
        """Move a broken precompiled header aside and delete it (see ``discard_artifact``)."""
        return self.writable and self._set_aside(self.layout.pch_dir(key), "discard")

    # -- build failures -----------------------------------------------------------------

    def keep_failure(self, key: str, files: dict[str, str], log: str, first_lines: list[str],
                     toolchain: str, *, remember: bool) -> BuildFailure:
        """Keep the sources and log of a kernel that did not compile, under failed/<key>/.

        With ``remember`` the next process gets the same BuildError without compiling.
        """
        staged = self.temp_dir("failed")
        directory = self.layout.failed_dir(key)
        source_name = next(iter(files))
        try:
            for name, text in files.items():
                path = staged / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            (staged / "build.log").write_text(log)
            if remember:
                record = {"key": key, "first_lines": first_lines, "toolchain": toolchain,
                          "source": source_name, "created": time.time()}
                (staged / FAILURE_RECORD).write_text(json.dumps(record, indent=1))
            self.ensure_dir(directory.parent)
            self._set_aside(directory, "failed-old")
            publish_dir(staged, directory, self.file_mode, self.dir_mode)
        finally:
            remove_tree(staged)
        return BuildFailure(key, str(directory / source_name), str(directory / "build.log"),
                            first_lines)

    def remembered_failure(self, key: str) -> BuildFailure | None:
        """The failure kept for ``key`` by an earlier build, if one was remembered."""
        directory = self.layout.failed_dir(key)
        try:
            record = json.loads(self.read(directory / FAILURE_RECORD))
            lines = [str(line) for line in record["first_lines"]]
            source = Path(str(record["source"])).name
        except (OSError, ValueError, KeyError, TypeError, UntrustedEntryError):
            return None
        return BuildFailure(key, str(directory / source), str(directory / "build.log"), lines,
                            remembered=True)

    def forget_failures(self) -> int:
        """Remove every kept build failure; returns how many."""
        count = sum(1 for p in self.layout.failed.glob("*") if p.is_dir())
        self._set_aside(self.layout.failed, "clear")
        return count

    # -- data entries ---------------------------------------------------------------------

    def get_data(self, key: str) -> DataEntry | None:
        """The data entry of ``key``, digest-checked; None when missing or broken (a broken
        one is removed from a writable store). UntrustedEntryError as for kernels."""
        path = self.layout.data_file(key)
        try:
            header, payload = data_entries.decode(self.read(path))
        except FileNotFoundError:
            return None
        except (NotRegularFileError, data_entries.CorruptEntryError):
            if self.writable:
                self._set_aside(path, "data")
            raise BrokenEntryError(f"{path} is broken") from None
        except OSError:
            return None
        return DataEntry(header, payload)

    def put_data(self, key: str, blob: bytes) -> bool:
        """Store an encoded data entry (atomically; an existing one is kept): True if new."""
        return write_file_atomic(self.layout.data_file(key), blob, self.layout.tmp,
                                 self.file_mode, overwrite=False, durable=False,
                                 dir_mode=self.dir_mode)

    def remove_data(self, key: str) -> None:
        """Remove the data entry of ``key`` (an unusable one, say)."""
        if self.writable:
            self._set_aside(self.layout.data_file(key), "data")

    def remove_namespace(self, namespace: str, *, kernels: bool = True, data: bool = True
                         ) -> int:
        """Remove the shared objects (with their keys) and data entries of ``namespace``."""
        from .prune import remove_entry

        removed: list[str] = []
        if kernels:
            for directory in self.layout.iter_artifact_dirs():
                try:
                    meta = self.read_meta(directory.name)
                except (OSError, ValueError, BadMetaError, UntrustedEntryError):
                    continue
                if meta.namespace == namespace:
                    remove_entry(self.layout, self.index, directory.name, "shared_object")
                    removed.append(directory.name)
        if data:
            for path in self.layout.iter_data_files():
                try:
                    header = data_entries.read_header(path)
                except (OSError, ValueError):
                    continue
                if header.get("namespace") == namespace:
                    self.remove_data(path.name)
                    removed.append(path.name)
        if removed:
            self.index.forget(removed)
        return len(removed)

    # -- maintenance: what the commands do (their modules are imported when used) ---------

    def exists(self) -> bool:
        """Whether anything was ever stored here (the directory exists)."""
        return self.root.is_dir()

    def entries(self) -> Entries:
        """Every entry, from the index reconciled with the files (or from the files)."""
        from .stats import read_index

        return read_index(self.layout, self.index)

    def stats(self, max_size: int) -> dict:
        """What ``sobuild stats`` shows, as one JSON-able dict."""
        from .stats import gather_stats

        return gather_stats(self.layout, max_size, self.index)

    def reset_counters(self) -> bool:
        """Zero the counters (entries kept); False when there is no index yet."""
        if not os.path.lexists(self.layout.index):
            return False
        self.index.reset_counters()
        return True

    def prune(self, max_size: int | None = None, older_than: float | None = None,
              dry_run: bool = False) -> PruneResult:
        """Evict by age, then least recent use, down to ``max_size`` bytes."""
        from .prune import prune

        return prune(self.layout, max_size, older_than, dry_run, index=self.index)

    def clear(self) -> dict[str, int]:
        """Remove every entry (counters kept); how many of each kind went."""
        from .prune import remove_all

        return remove_all(self.layout, self.index)

    def find(self, prefix: str) -> list[Entry]:
        """The entries whose id starts with ``prefix`` (``sobuild show``)."""
        from .inspect import find_entries

        return find_entries(self.layout, prefix)

    # -- usage ----------------------------------------------------------------------------

    def counters(self) -> dict[str, float]:
        """The index's counters (hits, misses, builds ...); empty when there is no index."""
        if not self.layout.index.exists():
            return {}
        return self.index.counters()

    def record(self, batch: IndexBatch) -> bool:
        """Write what a process recorded to the index in one transaction (False: skipped)."""
        return self.index.write(batch)


def _pch_file_name(name: object) -> bool:
    """A precompiled header's file name as its meta.json may give it: ``prologue.h.<ext>``."""
    return (isinstance(name, str) and name.startswith(PCH_HEADER + ".")
            and name[len(PCH_HEADER) + 1:].isalnum())


def _link_in_real_directories(path: Path) -> bool:
    """``path`` is a symbolic link, in directories that are not (renaming it moves the link)."""
    try:
        return (stat.S_ISLNK(os.lstat(path).st_mode)
                and not any(stat.S_ISLNK(os.lstat(p).st_mode) for p in path.parents[:2]))
    except OSError:
        return False


def artifact_meta(digest: str, size: int, toolchain: dict, spec, flags: list[str],
                  build_seconds: float, kernels: list[dict]) -> ArtifactMeta:
    """The meta of a freshly built artifact of ``kernels`` built from ``spec``'s build group."""
    return ArtifactMeta(
        digest=digest, size=size, abi=ABI_VERSION, toolchain=toolchain,
        flags=flags, defines=dict(spec.defines), headers=sorted(spec.headers),
        namespace=spec.namespace, build_seconds=build_seconds, created=time.time(),
        kernels=kernels)
