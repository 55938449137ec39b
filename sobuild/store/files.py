"""The one way sobuild opens and creates the files of a cache directory.

Reading: every component below the tier's root is opened relative to its parent's open
handle (``openat``), without following symbolic links; the file itself without blocking
(a FIFO or a device never hangs a reader). Owner, mode and type are checked on the open
handles, so what is checked is what is read: no path is resolved again afterwards.

Creating: directories get their mode explicitly (``dir_mode``), whatever the umask or a
setgid parent would give them, so a private cache stays private.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath

from ..errors import UntrustedEntryError
from .trust import check_trusted, check_trusted_directory, refuse, tighten

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
#: openat() with a dir_fd, O_NOFOLLOW and fstat on handles: POSIX systems.
SAFE_OPEN = os.name == "posix" and os.open in os.supports_dir_fd


class NotRegularFileError(OSError):
    """A trusted entry that is not a regular file (a FIFO, a directory ...): broken, not hostile."""


@dataclass
class EntryFile:
    """A checked, open entry: ``fd`` stays valid (and names the checked inode) until closed."""

    fd: int
    stat: os.stat_result
    path: Path

    def read(self) -> bytes:
        """All of the file's bytes, read from the handle."""
        chunks, offset = [], 0
        while True:
            chunk = os.pread(self.fd, max(self.stat.st_size - offset, 1 << 16), offset) \
                if hasattr(os, "pread") else os.read(self.fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            offset += len(chunk)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _relative_parts(root: Path, path: str | os.PathLike) -> tuple[str, ...]:
    rel = PurePath(path)
    if rel.is_absolute():
        try:
            rel = rel.relative_to(root)
        except ValueError:
            raise UntrustedEntryError(f"{path} is outside the cache directory {root}") from None
    parts = rel.parts
    if not parts or ".." in parts or any(p in ("", ".") for p in parts):
        raise UntrustedEntryError(f"{path} leads out of the cache directory {root}")
    return parts


def open_entry(root: str | os.PathLike, path: str | os.PathLike, trusted_gid: int | None
               ) -> EntryFile:
    """Open the file ``path`` (absolute inside ``root``, or relative to it) for reading.

    Raises UntrustedEntryError for a symbolic link, a name outside ``root``, or a file or
    directory owned or writable by someone untrusted; NotRegularFileError for a trusted
    FIFO, directory or device; OSError (FileNotFoundError ...) when it is not there, which
    callers treat as a miss. The caller closes the result (or uses ``opened``).
    """
    root = Path(root)
    parts = _relative_parts(root, path)
    full = root.joinpath(*parts)
    if not SAFE_OPEN:
        fd = os.open(full, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        return EntryFile(fd, os.fstat(fd), full)
    directory = os.open(root, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        _check_directory(root, directory, trusted_gid)
        where = root
        for part in parts[:-1]:
            where = where / part
            try:
                inner = os.open(part, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC,
                                dir_fd=directory)
            except OSError as exc:
                _refuse_if_link(part, directory, where, exc)
                raise
            os.close(directory)
            directory = inner
            _check_directory(where, directory, trusted_gid)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC,
                         dir_fd=directory)
        except OSError as exc:
            _refuse_if_link(parts[-1], directory, full, exc)
            raise
    finally:
        os.close(directory)
    try:
        st = os.fstat(fd)
        check_trusted(full, st, trusted_gid)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(f"{full} is not a regular file "
                                      f"({stat.filemode(st.st_mode)})")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return EntryFile(fd, st, full)


def _check_directory(path: Path, fd: int, trusted_gid: int | None) -> None:
    st = os.fstat(fd)
    if st.st_mode & 0o022 and trusted_gid is None and st.st_uid == os.geteuid():
        tighten(fd, st, trusted_gid)
        st = os.fstat(fd)
    check_trusted_directory(path, st, trusted_gid)


def _refuse_if_link(name: str, dir_fd: int, where: Path, exc: OSError) -> None:
    """Turn the ELOOP/ENOTDIR of a symbolic link met with O_NOFOLLOW into a refusal."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise refuse(where, st, "is a symbolic link inside the cache (entries must not lead "
                                "out of it)") from exc
    if not stat.S_ISDIR(st.st_mode) and isinstance(exc, NotADirectoryError):
        raise refuse(where, st, "is not a directory") from exc


@contextmanager
def opened(root: str | os.PathLike, path: str | os.PathLike, trusted_gid: int | None
           ) -> Iterator[EntryFile]:
    """``open_entry`` as a context manager that closes the handle."""
    entry = open_entry(root, path, trusted_gid)
    try:
        yield entry
    finally:
        entry.close()


def read_entry(root: str | os.PathLike, path: str | os.PathLike, trusted_gid: int | None) -> bytes:
    """The bytes of a trusted regular file of the cache (see ``open_entry``)."""
    with opened(root, path, trusted_gid) as entry:
        return entry.read()


def ensure_dir(path: Path, dir_mode: int) -> Path:
    """Create ``path`` and its missing parents with exactly ``dir_mode`` (umask and a setgid
    parent do not widen it); existing directories are left as they are."""
    missing = []
    p = Path(path)
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, dir_mode)
        except FileExistsError:
            continue
        os.chmod(directory, dir_mode)
    return Path(path)
