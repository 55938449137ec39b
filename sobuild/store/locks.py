"""Per-key single-flight locks that survive crashes and work on network filesystems.

``flock`` is used where it works (the kernel drops it when its holder dies, even on
``kill -9``). Where it does not (Lustre without ``-o flock``, some NFS set-ups), the lock is a
file created with ``O_EXCL`` that records pid, host and time; its holder refreshes the
file's mtime while it builds. Such a lock is stale when its process is gone (same host) or
when it has not been refreshed for ``SOBUILD_LOCK_TIMEOUT`` seconds (another host).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
from pathlib import Path

HEARTBEAT_SECONDS = 5.0
#: flock refused for these: fall back to O_EXCL lock files.
_FLOCK_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}


def lock_timeout() -> float:
    return float(os.environ.get("SOBUILD_LOCK_TIMEOUT", "120"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _use_flock() -> bool:
    mode = os.environ.get("SOBUILD_LOCKS", "auto").lower()
    if mode == "file":
        return False
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return False
    return True


class KeyLock:
    """An exclusive lock on one key; ``try_acquire`` never blocks, ``acquire`` waits."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None
        self._excl = not _use_flock()
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._excl:
            import fcntl

            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in _FLOCK_UNSUPPORTED:
                    self._excl = True
                    return self.try_acquire()
                return False
            self._fd = fd
            return True
        return self._try_acquire_excl()

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock (polling with back-off); False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while not self.try_acquire():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        if self._excl:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> KeyLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- the O_EXCL fallback ----------------------------------------------------------

    def _try_acquire_excl(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            if self._break_if_stale():
                return self._try_acquire_excl()
            return False
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "time": time.time()}).encode())
        os.fsync(fd)
        self._fd = fd
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, daemon=True)
        self._heartbeat.start()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                os.utime(self.path)
            except OSError:
                return

    def holder(self) -> dict | None:
        """pid, host and time recorded in an O_EXCL lock file, if readable."""
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _break_if_stale(self) -> bool:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return True
        age = time.time() - st.st_mtime
        holder = self.holder()
        if holder is None:
            stale = age > 2.0  # a lock file is written right after creation
        elif holder.get("host") == socket.gethostname():
            stale = not _pid_alive(int(holder.get("pid", 0)))
        else:
            stale = age > lock_timeout()
        if not stale:
            return False
        # rename first: of several processes breaking the same lock, exactly one wins
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}-{time.time_ns()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True
        if aside.stat().st_ino != st.st_ino:
            # another process broke the stale lock and took a fresh one in between: put it back
            try:
                os.link(aside, self.path)
            except OSError:
                pass
            os.unlink(aside)
            return False
        os.unlink(aside)
        return True
