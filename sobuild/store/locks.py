"""Per-key single-flight build locks that survive crashes and work on network filesystems.

``flock`` is used where it works: the kernel drops it when its holder dies, even on
``kill -9``, and on NFS it is carried by the server's lock manager. Where it does not work
(Lustre mounted without ``-o flock``, some NFS set-ups; or ``SOBUILD_LOCKS=file``), the lock
is a file created with ``O_EXCL`` that records pid, host and time; a heartbeat thread
refreshes its mtime while the lock is held. Such a lock is stale, and is taken over, when
its process is gone (same host) or when it has not been refreshed for
``SOBUILD_LOCK_TIMEOUT`` seconds (another host, or a hung holder).

Lock files are the user's own (or, in a trusted group cache, the group's): they are opened
without following symbolic links and without blocking, checked on the open handle, and
created with an exact mode that lets nobody untrusted open them (opening is enough to hold
a ``flock``). Anything else found at a lock's name (a link, a FIFO, another user's file, a
file others can open) is moved aside and replaced; nothing is ever written through it.
Every wait is bounded, and ends early when the holder is a stopped or vanished process of
this host.

A lock only saves work: publication is atomic and never overwrites, so the rare race in
which two processes both believe they hold a lock (a stale lock broken at the very moment
its holder released it) costs one duplicate build, never a broken entry.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
from pathlib import Path

from ..config import setting
from ..errors import SobuildError, UntrustedEntryError
from .files import SAFE_OPEN, ensure_dir
from .trust import check_trusted_directory, tighten

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

HEARTBEAT_SECONDS = 5.0
#: An O_EXCL lock file still empty after this long was left by a holder that died at once.
EMPTY_LOCK_GRACE_SECONDS = 10.0
#: A holder of this host seen stopped (or gone) for this long ends a wait early.
STOPPED_CONFIRM_SECONDS = 1.0
#: flock refused with these errors: the filesystem does not support it.
_FLOCK_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
#: Devices on which flock failed in this process: their locks go straight to lock files.
_flock_broken_devices: set[int] = set()
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_RECORD_MAX = 4096


class LockWaitError(SobuildError, TimeoutError):
    """A lock was not obtained within its bound (``with KeyLock(...)``)."""


class _Unusable(Exception):
    """The lock cannot be taken safely here (its directory or name is not ours to use)."""


def lock_kind(kind: str | None = None) -> str:
    """``flock`` or ``file`` for ``kind`` (default ``SOBUILD_LOCKS``: ``auto`` prefers flock)."""
    mode = kind or setting("SOBUILD_LOCKS")
    if mode not in ("auto", "flock", "file"):
        raise ValueError(f"lock kind {mode!r}: use 'auto', 'flock' or 'file'")
    return "flock" if mode != "file" and fcntl is not None else "file"


def hostname() -> str:
    """This machine's name, as recorded in lock files (no ``socket`` import on POSIX)."""
    try:
        return os.uname().nodename
    except AttributeError:  # Windows
        import socket

        return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_state(pid: int) -> str:
    """``running``, ``stopped`` (SIGSTOP, ``scontrol suspend``) or ``gone``, for a process of
    this host; ``running`` when that cannot be told."""
    if pid <= 0:
        return "gone"
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if os.path.exists("/proc/self/stat"):
            return "gone"
        return "running" if _pid_alive(pid) else "gone"
    except OSError:
        return "running"
    state = data[data.rfind(b")") + 2:][:1]  # the field after the command name
    if state in (b"T", b"t"):
        return "stopped"
    return "gone" if state in (b"Z", b"X") else "running"


def _holder_record() -> bytes:
    return json.dumps({"pid": os.getpid(), "host": hostname(),
                       "time": time.time()}).encode()


class _Heartbeat:
    """One daemon thread per process that refreshes the mtime of every held lock file."""

    def __init__(self) -> None:
        self._held: dict[int, Path] = {}  # open descriptor -> its path
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, fd: int, path: Path) -> None:
        with self._mutex:
            self._held[fd] = path
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sobuild-lock-heartbeat",
                                                daemon=True)
                self._thread.start()

    def discard(self, fd: int) -> None:
        with self._mutex:
            self._held.pop(fd, None)

    def _run(self) -> None:
        by_fd = os.utime in os.supports_fd
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            with self._mutex:  # under the mutex: a released descriptor is never touched
                if not self._held:
                    self._thread = None
                    return
                for fd, path in self._held.items():
                    try:  # the held inode itself, never what a name leads to now
                        if by_fd:
                            os.utime(fd)
                        else:
                            os.utime(path, follow_symlinks=False)
                    except (OSError, NotImplementedError):
                        pass


_heartbeat = _Heartbeat()


class KeyLock:
    """An exclusive lock on one key; ``try_acquire`` never waits, ``acquire`` waits a bounded time.

    ``kind`` is ``"flock"`` or ``"file"`` (default: from ``SOBUILD_LOCKS``). New lock
    directories get exactly ``dir_mode``; lock files exactly ``file_mode``, with read and
    write for their owner and without any bit that would let someone untrusted open them
    (outside a group cache, ``trusted_gid`` None: nobody but the owner).
    """

    def __init__(self, path: str | os.PathLike, kind: str | None = None, *,
                 trusted_gid: int | None = None, file_mode: int = 0o600, dir_mode: int = 0o700):
        self.path = Path(path)
        self.kind = lock_kind(kind)
        self.trusted_gid = trusted_gid
        self.file_mode = file_mode & (0o770 if trusted_gid is not None else 0o700) | 0o600
        self.dir_mode = dir_mode
        #: the name used with the directory's descriptor (the whole path without openat)
        self._name = self.path.name if SAFE_OPEN else str(self.path)
        self._fd: int | None = None
        self._ino: int | None = None
        self._recorded = False  # a flock holder record to erase on release
        self._problem: str | None = None  # why the last attempt could not lock safely

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free (or stale); never waits. False too when it cannot be
        taken safely (``describe_holder`` says why)."""
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        self._problem = None
        try:
            dir_fd = self._open_dir()
            try:
                if self.kind == "flock":
                    got = self._try_flock(dir_fd)
                    if got is not None:
                        return got
                return self._try_acquire_file(dir_fd)
            finally:
                if dir_fd is not None:
                    os.close(dir_fd)
        except _Unusable as exc:
            self._problem = str(exc)
            return False

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait at most ``timeout`` seconds (default ``SOBUILD_LOCK_WAIT``) for the lock.

        False on timeout, when the lock cannot be taken safely, or early when its holder is
        a process of this host that is stopped or gone (its descriptor lives on elsewhere):
        the caller then builds privately.
        """
        if timeout is None:
            timeout = setting("SOBUILD_LOCK_WAIT")
        deadline = time.monotonic() + timeout
        delay = 0.01
        suspect: tuple[tuple[int, str], float] | None = None  # (pid, state), first seen
        while not self.try_acquire():
            now = time.monotonic()
            if self._problem is not None or now >= deadline:
                return False
            state = self._holder_state()
            if state is None or state[1] == "running":
                suspect = None
            elif suspect is None or suspect[0] != state:
                suspect = (state, now)
            elif now - suspect[1] >= STOPPED_CONFIRM_SECONDS:
                return False
            time.sleep(min(delay, max(deadline - now, 0.0)))
            delay = min(delay * 1.5, 0.25)
        return True

    def release(self) -> None:
        """Give the lock up (a lock file is removed only if it is still ours)."""
        if self._fd is None:
            return
        if self.kind == "file":
            _heartbeat.discard(self._fd)
            try:
                if os.stat(self.path, follow_symlinks=False).st_ino == self._ino:
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
        wait = setting("SOBUILD_LOCK_WAIT")
        if not self.acquire(wait):
            raise LockWaitError(f"waited {wait:g} s for {self.path}: {self.describe_holder()}")
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def holder(self) -> dict | None:
        """pid, host and time recorded by the lock's last holder, if readable and trusted."""
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
        except OSError:
            return None
        try:
            if not self._sound(os.fstat(fd), openable=False):
                return None
            data = os.read(fd, _RECORD_MAX)
        except OSError:
            return None
        finally:
            os.close(fd)
        try:
            record = json.loads(data)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    def describe_holder(self) -> str:
        """Who holds the lock, for messages: "locked by process 1234 on host node7 since
        12:03:04 (stopped)", or why it could not be taken."""
        if self._problem is not None:
            return self._problem
        record = self.holder() or {}
        pid, host, when = record.get("pid"), record.get("host"), record.get("time")
        if not isinstance(pid, int) or not isinstance(host, str):
            return "locked by an unknown process"
        text = f"locked by process {pid} on host {host}"
        if isinstance(when, (int, float)):
            since = time.localtime(when)
            same_day = since[:3] == time.localtime()[:3]
            text += time.strftime(" since %H:%M:%S" if same_day else " since %Y-%m-%d %H:%M:%S", since)
        state = self._holder_state()
        if state is not None and state[1] != "running":
            text += " (stopped)" if state[1] == "stopped" else " (no longer running)"
        return text

    def _holder_state(self) -> tuple[int, str] | None:
        """(pid, ``process_state``) of a holder of this host; None for another host or no record."""
        record = self.holder()
        if not record or record.get("host") != hostname() or not isinstance(record.get("pid"), int):
            return None
        return record["pid"], process_state(record["pid"])

    # -- the lock's directory and file ---------------------------------------------------

    def _open_dir(self) -> int | None:
        """The lock's directory, created with ``dir_mode``, opened without following a link
        and held to trusted owners (None without openat: paths are used)."""
        parent = self.path.parent
        try:
            ensure_dir(parent, self.dir_mode)
        except OSError as exc:
            raise _Unusable(f"cannot create the lock directory {parent}: {exc.strerror}") from None
        if not SAFE_OPEN:
            return None
        try:
            fd = os.open(parent, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC)
        except OSError as exc:
            raise _Unusable(f"the lock directory {parent} cannot be used: it is a symbolic "
                            f"link or not a directory ({exc.strerror})") from None
        try:
            tighten(fd, os.fstat(fd), self.trusted_gid)
            check_trusted_directory(parent, os.fstat(fd), self.trusted_gid)
        except (UntrustedEntryError, OSError) as exc:
            os.close(fd)
            raise _Unusable(f"the lock directory {parent} is not safe to lock in: {exc}") from None
        return fd

    def _sound(self, st: os.stat_result, openable: bool) -> bool:
        """Whether ``st`` is a lock file of a trusted owner that nobody untrusted can write
        (``openable``: nor open at all, which is enough to hold a flock)."""
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return False
        if os.name == "nt":
            return True
        group = self.trusted_gid is not None and st.st_gid == self.trusted_gid
        if st.st_uid != os.geteuid() and not group:
            return False
        untrusted = 0o007 if group else 0o077
        return not st.st_mode & (untrusted if openable else untrusted & 0o022)

    def _stat(self, dir_fd: int | None) -> os.stat_result | None:
        try:
            return os.stat(self._name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def _create(self, dir_fd: int | None, flags: int) -> int | None:
        """A new lock file with exactly ``file_mode``; None if one appeared meanwhile."""
        try:
            fd = os.open(self._name, flags | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC,
                         self.file_mode, dir_fd=dir_fd)
        except FileExistsError:
            return None
        except OSError as exc:
            raise _Unusable(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        if hasattr(os, "fchmod"):
            os.fchmod(fd, self.file_mode)
        return fd

    def _set_aside(self, dir_fd: int | None, st: os.stat_result) -> bool:
        """Remove the file ``st`` from the lock's name; True if the way is free.

        Renamed first: of several processes removing the same file, exactly one moves it,
        and one that moved a fresh lock instead puts it back. Unlinking a name never
        touches what a link leads to.
        """
        aside = f"{self._name}.stale-{os.getpid()}-{time.time_ns()}"
        try:
            os.rename(self._name, aside, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except FileNotFoundError:
            return True
        except OSError as exc:
            raise _Unusable(f"{self.path} is not a usable lock file and cannot be moved "
                            f"aside: {exc.strerror}") from None
        try:
            moved = os.stat(aside, dir_fd=dir_fd, follow_symlinks=False)
            if (moved.st_ino, moved.st_dev) != (st.st_ino, st.st_dev):
                try:  # a fresh lock was taken in between: put it back
                    os.link(aside, self._name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd,
                            follow_symlinks=False)
                except (OSError, NotImplementedError):
                    pass
                return False
            return True
        finally:
            try:
                os.unlink(aside, dir_fd=dir_fd)
            except OSError:  # a directory: left to the clean-up of ``*.lock.stale-*``
                pass

    def _is_ours(self, fd: int, dir_fd: int | None) -> bool:
        """Whether the lock's name still leads to the open file ``fd``."""
        st, mine = self._stat(dir_fd), os.fstat(fd)
        return st is not None and (st.st_ino, st.st_dev) == (mine.st_ino, mine.st_dev)

    # -- flock -------------------------------------------------------------------------

    def _open_flock_file(self, dir_fd: int | None) -> int:
        """A descriptor of a sound lock file at the lock's name, replacing anything else."""
        for _ in range(5):
            st = self._stat(dir_fd)
            if st is None:
                fd = self._create(dir_fd, os.O_RDWR | _O_NONBLOCK)
                if fd is not None:
                    return fd
                continue
            if self._sound(st, openable=True):
                try:
                    fd = os.open(self._name, os.O_RDWR | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC,
                                 dir_fd=dir_fd)
                except FileNotFoundError:
                    continue
                except OSError:  # replaced by a link or a file we may not write, meanwhile
                    fd = None
                if fd is not None:
                    opened = os.fstat(fd)
                    if self._sound(opened, openable=True):
                        return fd
                    os.close(fd)
                    st = opened
            self._set_aside(dir_fd, st)
        raise _Unusable(f"the lock file {self.path} keeps being replaced by something that is "
                        f"not a private lock file")

    def _try_flock(self, dir_fd: int | None) -> bool | None:
        """True/False for got/busy; None when flock does not work here (use a lock file)."""
        dev = os.fstat(dir_fd).st_dev if dir_fd is not None else os.stat(self.path.parent).st_dev
        if dev in _flock_broken_devices:
            self.kind = "file"
            return None
        for _ in range(3):
            fd = self._open_flock_file(dir_fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in _FLOCK_UNSUPPORTED:
                    _flock_broken_devices.add(dev)
                    self.kind = "file"
                    if os.fstat(fd).st_size == 0 and self._is_ours(fd, dir_fd):
                        os.unlink(self._name, dir_fd=dir_fd)  # make way for an O_EXCL lock file
                    os.close(fd)
                    return None
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return False
                raise
            if not self._is_ours(fd, dir_fd):  # replaced or removed as idle before our flock
                os.close(fd)
                continue
            try:  # for people looking at a hung build; the kernel holds the real lock
                os.ftruncate(fd, 0)
                os.pwrite(fd, _holder_record(), 0)
                self._recorded = True
            except OSError:
                pass
            self._fd = fd
            return True
        return False

    # -- O_EXCL lock files -------------------------------------------------------------

    def _try_acquire_file(self, dir_fd: int | None) -> bool:
        for _ in range(3):
            fd = self._create(dir_fd, os.O_WRONLY)
            if fd is None:
                if not self._break_if_stale(dir_fd):
                    return False
                continue
            try:
                os.write(fd, _holder_record())
                os.fsync(fd)
            except OSError:
                os.close(fd)
                os.unlink(self._name, dir_fd=dir_fd)
                raise
            self._fd, self._ino = fd, os.fstat(fd).st_ino
            _heartbeat.add(fd, self.path)
            return True
        return False

    def _is_stale(self, st: os.stat_result) -> bool:
        age = time.time() - st.st_mtime
        holder = self.holder()
        if not holder:
            return age > EMPTY_LOCK_GRACE_SECONDS
        if age > setting("SOBUILD_LOCK_TIMEOUT"):  # not refreshed: gone or hung, on any host
            return True
        if holder.get("host") == hostname():
            pid = holder.get("pid")
            return not isinstance(pid, int) or process_state(pid) == "gone"
        return False

    def _break_if_stale(self, dir_fd: int | None) -> bool:
        """Remove a stale lock file, or anything that is not a sound one; True if the way
        is free (try creating again)."""
        st = self._stat(dir_fd)
        if st is None:
            return True
        if self._sound(st, openable=False) and not self._is_stale(st):
            return False
        return self._set_aside(dir_fd, st)
