"""Atomic publication: write into a temp dir inside the store, fsync, then rename into place.

A published artifact is never overwritten: if the name exists (another process built the
same bytes), the newcomer is discarded. Readers therefore see a whole entry or none.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import CacheDirectoryError
from .files import ensure_dir


def explain_os_error(exc: OSError, where: Path) -> CacheDirectoryError:
    """Turn a low-level write failure into an error that says what to do."""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        what = "is full (no space left on device or quota exceeded)"
        todo = "free space, run `sobuild prune --max-size 1G`, or set SOBUILD_CACHE_DIR elsewhere"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = "is not writable"
        todo = "fix its permissions or set SOBUILD_CACHE_DIR to a directory you can write"
    else:
        what = f"cannot be written ({exc.strerror})"
        todo = "check the directory, or set SOBUILD_CACHE_DIR elsewhere"
    return CacheDirectoryError(f"the sobuild cache at {where} {what}: {todo}. Nothing partial "
                               "was left behind.")


def make_temp_dir(tmp_root: Path, prefix: str) -> Path:
    """A new private (0700) directory in ``tmp_root``, which must exist."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-", dir=tmp_root))


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish_dir(staged: Path, final: Path, file_mode: int = 0o444,
                dir_mode: int = 0o755, durable: bool = True) -> bool:
    """Move the fully written ``staged`` dir to ``final``; False if ``final`` already exists.

    Files get ``file_mode`` and directories ``dir_mode`` first (a group cache needs them
    group-writable; ``mkdtemp`` made ``staged`` private). ``durable=False`` skips the fsync
    of the files, for entries whose reader checks their digest (see ``write_file_atomic``).
    """
    for path in staged.rglob("*"):
        if path.is_file():
            if durable:
                fsync_path(path)
            os.chmod(path, file_mode)
        elif path.is_dir():
            os.chmod(path, dir_mode)
    os.chmod(staged, dir_mode)
    ensure_dir(final.parent, dir_mode)
    try:
        os.rename(staged, final)
    except OSError as exc:
        if final.exists():
            remove_tree(staged)
            return False
        raise exc
    fsync_path(final.parent)
    return True


def _set_mode(fd: int, path: str, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # Windows before Python 3.13
        os.chmod(path, mode)


def write_file_atomic(final: Path, data: bytes, tmp_root: Path, file_mode: int = 0o444,
                      overwrite: bool = True, durable: bool = True,
                      dir_mode: int = 0o755) -> bool:
    """Write ``data`` to ``final`` through a temp file; False if it existed and not ``overwrite``.

    ``durable=False`` skips the fsync, for files whose reader validates them (a digest, a
    parse) and treats a damaged one as a miss: a crash then costs a recompute, not a wrong
    result, and each write saves 1-6 ms. Missing directories get ``dir_mode``.
    """
    ensure_dir(tmp_root, dir_mode)
    fd, tmp = tempfile.mkstemp(prefix=f"file-{os.getpid()}-", dir=tmp_root)
    try:
        with os.fdopen(fd, "wb") as f:
            # on the handle, not the name: in a directory others may write (a shared project
            # directory), the name could be a link planted after mkstemp
            _set_mode(f.fileno(), tmp, file_mode)
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        ensure_dir(final.parent, dir_mode)
        if overwrite:
            os.replace(tmp, final)
            return True
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        except OSError:  # filesystems without hard links
            if final.exists():
                return False
            os.replace(tmp, final)
            return True
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_tree(path: Path) -> None:
    """Remove a directory of read-only files (rename aside first, so readers never see half)."""
    if not path.exists():
        return

    def make_writable(func, p, _exc):
        os.chmod(os.path.dirname(p), 0o700)
        os.chmod(p, 0o600) if os.path.isfile(p) else None
        func(p)

    shutil.rmtree(path, onexc=make_writable) if _HAS_ONEXC else shutil.rmtree(
        path, onerror=make_writable)


_HAS_ONEXC = "onexc" in shutil.rmtree.__code__.co_varnames
