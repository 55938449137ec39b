"""Per-key single-flight build locks that survive crashes and work on network filesystems.

``flock`` is used where it works: the kernel drops it when its holder dies, even on
``kill -9``, and on NFS it is carried by the server's lock manager. Where it does not work
(Lustre mounted without ``-o flock``, some NFS set-ups; or ``SOBUILD_LOCKS=file``), the lock
is a file created with ``O_EXCL`` that records pid, host and time; a heartbeat thread
refreshes its mtime while the lock is held. Such a lock is stale, and is taken over, when
its process is gone (same host) or when it has not been refreshed for
``SOBUILD_LOCK_TIMEOUT`` seconds (another host, or a hung holder).

A lock only saves work: publication is atomic and never overwrites, so the rare race in
which two processes both believe they hold a lock (a stale lock broken at the very moment
its holder released it) costs one duplicate build, never a broken entry.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

HEARTBEAT_SECONDS = 5.0
#: An O_EXCL lock file still empty after this long was left by a holder that died at once.
EMPTY_LOCK_GRACE_SECONDS = 10.0
#: flock refused with these errors: the filesystem does not support it.
_FLOCK_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
#: Devices on which flock failed in this process: their locks go straight to lock files.
_flock_broken_devices: set[int] = set()


def lock_timeout() -> float:
    """Seconds after which a lock file not refreshed by its holder is taken over."""
    return float(os.environ.get("SOBUILD_LOCK_TIMEOUT", "120"))


def lock_kind() -> str:
    """``flock`` or ``file``: ``SOBUILD_LOCKS=file`` forces lock files, ``auto`` prefers flock."""
    mode = os.environ.get("SOBUILD_LOCKS", "auto").strip().lower()
    if mode == "file":
        return "file"
    if mode not in ("auto", "flock", ""):
        raise ValueError(f"SOBUILD_LOCKS={mode!r}: use 'auto', 'flock' or 'file'")
    try:
        import fcntl  # noqa: F401
    except ImportError:  # Windows
        return "file"
    return "flock"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def hostname() -> str:
    """This machine's name, as recorded in lock files (no ``socket`` import on POSIX)."""
    try:
        return os.uname().nodename
    except AttributeError:  # Windows
        import socket

        return socket.gethostname()


def _holder_record() -> bytes:
    return json.dumps({"pid": os.getpid(), "host": hostname(),
                       "time": time.time()}).encode()


class _Heartbeat:
    """One daemon thread per process that refreshes the mtime of every held lock file."""

    def __init__(self) -> None:
        self._paths: set[Path] = set()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, path: Path) -> None:
        with self._mutex:
            self._paths.add(path)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sobuild-lock-heartbeat",
                                                daemon=True)
                self._thread.start()

    def discard(self, path: Path) -> None:
        with self._mutex:
            self._paths.discard(path)

    def _run(self) -> None:
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            with self._mutex:
                paths = list(self._paths)
                if not paths:
                    self._thread = None
                    return
            for path in paths:
                try:
                    os.utime(path)
                except OSError:
                    pass


_heartbeat = _Heartbeat()


class KeyLock:
    """An exclusive lock on one key; ``try_acquire`` never blocks, ``acquire`` waits.

    ``kind`` is ``"flock"`` or ``"file"`` (default: from ``SOBUILD_LOCKS``).
    """

    def __init__(self, path: str | os.PathLike, kind: str | None = None):
        self.path = Path(path)
        self.kind = kind or lock_kind()
        self._fd: int | None = None
        self._ino: int | None = None
        self._recorded = False  # a flock holder record to erase on release

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free (or stale); never waits."""
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "flock":
            got = self._try_flock(blocking=False)
            if got is not None:
                return got
        return self._try_acquire_file()

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock; False if ``timeout`` seconds passed first."""
        if timeout is None and self.kind == "flock":
            if self._fd is not None:
                raise RuntimeError(f"lock {self.path} is already held by this object")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            got = self._try_flock(blocking=True)
            if got is not None:
                return got
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while not self.try_acquire():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        return True

    def release(self) -> None:
        """Give the lock up (a lock file is removed only if it is still ours)."""
        if self._fd is None:
            return
        if self.kind == "file":
            _heartbeat.discard(self.path)
            try:
                if os.stat(self.path).st_ino == self._ino:
                    os.unlink(self.path)
            except FileNotFoundError:
                pass
        elif self._recorded:
            try:  # an empty lock file costs an inode, not a block per key
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
        os.close(self._fd)
        self._fd = self._ino = None
        self._recorded = False

    def __enter__(self) -> KeyLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def holder(self) -> dict | None:
        """pid, host and time recorded by the lock's last holder, if readable."""
        try:
            return json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None

    # -- flock -------------------------------------------------------------------------

    def _try_flock(self, blocking: bool) -> bool | None:
        """True/False for got/busy; None when flock does not work here (use a lock file)."""
        import fcntl

        try:
            if os.stat(self.path.parent).st_dev in _flock_broken_devices:
                self.kind = "file"
                return None
        except OSError:
            pass
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            writable = True
        except PermissionError:  # another user's lock file in a group cache: read is enough
            fd = os.open(self.path, os.O_RDONLY)
            writable = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as exc:
            os.close(fd)
            if exc.errno in _FLOCK_UNSUPPORTED:
                _flock_broken_devices.add(os.stat(self.path.parent).st_dev)
                self.kind = "file"
                return None
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        if writable:  # for people looking at a hung build; the kernel holds the real lock
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, _holder_record(), 0)
                self._recorded = True
            except OSError:
                pass
        self._fd = fd
        return True

    # -- O_EXCL lock files -------------------------------------------------------------

    def _try_acquire_file(self) -> bool:
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                if not self._break_if_stale():
                    return False
                continue
            try:
                os.write(fd, _holder_record())
                os.fsync(fd)
            except OSError:
                os.close(fd)
                os.unlink(self.path)
                raise
            self._fd, self._ino = fd, os.fstat(fd).st_ino
            _heartbeat.add(self.path)
            return True
        return False

    def _is_stale(self, st: os.stat_result) -> bool:
        age = time.time() - st.st_mtime
        holder = self.holder()
        if not holder:
            return age > EMPTY_LOCK_GRACE_SECONDS
        if age > lock_timeout():  # not refreshed: its holder is gone or hung, on any host
            return True
        if holder.get("host") == hostname():
            try:
                return not _pid_alive(int(holder.get("pid", 0)))
            except (TypeError, ValueError):
                return True
        return False

    def _break_if_stale(self) -> bool:
        """Remove a stale lock file; True if the way is free (try creating again)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return True
        if not self._is_stale(st):
            return False
        # rename first: of several processes breaking the same lock, exactly one moves it
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}-{time.time_ns()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True
        try:
            if os.stat(aside).st_ino != st.st_ino:
                # the stale lock was broken and a fresh one taken in between: put it back
                try:
                    os.link(aside, self.path)
                except OSError:
                    pass
                return False
            return True
        finally:
            aside.unlink(missing_ok=True)
