"""Build locks against a hostile user and a stuck holder, with real processes: a planted link
is never written through, other users can neither open nor plant lock files, and no wait
outlives its bound (a stopped, vanished or read-only holder ends it early)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sobuild.store.layout import Layout
from sobuild.store.locks import KeyLock
from sobuild.store.prune import prune_lock

from .conftest import ALICE, BOB, GROUP_GID, MALLORY, setgid_dir, start_as

KEY = "ab" * 16
DATA = b"the user's own notes, not a lock\n" * 64
KINDS = pytest.mark.parametrize("kind", ["flock", "file"])
#: A wait that must end early: the test fails if it took half of it.
LONG = 120.0

HOLD = """
import sys, time
from sobuild.store.locks import KeyLock
lock = KeyLock(sys.argv[1], kind=sys.argv[2])
assert lock.try_acquire()
print("held", flush=True)
time.sleep(600)
"""


def victim_file(directory: Path) -> Path:
    path = directory / "important.txt"
    path.write_bytes(DATA)
    return path


def start_holder(path: Path, kind: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), kind],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.communicate()


def gives_up_early(lock: KeyLock) -> str:
    """Wait up to LONG s for ``lock``, which must give up in less than half of that; what it
    then says of the holder."""
    start = time.monotonic()
    assert not lock.acquire(timeout=LONG)
    assert time.monotonic() - start < LONG / 2
    return lock.describe_holder()


# -- 1. planted symbolic links: the user's own file is never truncated or written ------------

@KINDS
def test_symlink_at_a_key_lock_is_replaced_not_written_through(tmp_path, kind):
    victim = victim_file(tmp_path)
    path = Layout(tmp_path / "cache").lock_file(KEY)
    path.parent.mkdir(parents=True)
    path.symlink_to(victim)
    lock = KeyLock(path, kind=kind)
    assert lock.try_acquire()
    assert not path.is_symlink() and lock.holder()["pid"] == os.getpid()
    assert not KeyLock(path, kind=kind).try_acquire()  # it still locks
    lock.release()
    path.unlink(missing_ok=True)
    path.symlink_to(victim)  # planted again, for a waiting acquire
    assert lock.acquire(timeout=LONG)
    lock.release()
    assert victim.read_bytes() == DATA


def test_symlink_at_the_prune_lock_is_not_written_through(tmp_path):
    victim = victim_file(tmp_path)
    layout = Layout(tmp_path / "cache")
    layout.locks.mkdir(parents=True)
    (layout.locks / "prune.lock").symlink_to(victim)
    lock = prune_lock(layout)
    assert lock.try_acquire()
    assert not prune_lock(layout).try_acquire()  # one prune at a time still
    lock.release()
    assert victim.read_bytes() == DATA
    assert not (layout.locks / "prune.lock").is_symlink()


def test_symlinked_lock_directory_is_not_locked_in(tmp_path):
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    layout = Layout(tmp_path / "cache")
    layout.locks.mkdir(parents=True)
    path = layout.lock_file(KEY)
    path.parent.symlink_to(elsewhere, target_is_directory=True)
    lock = KeyLock(path)
    assert not lock.try_acquire()
    assert "symbolic link" in gives_up_early(lock)
    assert list(elsewhere.iterdir()) == []


CLEAN_IDLE = """
import sys
from sobuild.store.cleanup import remove_idle_locks
from sobuild.store.layout import Layout
print(remove_idle_locks(Layout(sys.argv[1]), older_than=0))
"""


def test_idle_lock_cleanup_opens_no_fifo_and_follows_no_link(tmp_path):
    victim = tmp_path / "empty-but-mine"
    victim.touch()  # empty and old, as an idle lock file is
    os.utime(victim, (time.time() - 7200,) * 2)
    layout = Layout(tmp_path / "cache")
    fifo, link, idle = (layout.lock_file(c * 32) for c in "cde")
    lock = KeyLock(idle, kind="flock")
    assert lock.try_acquire()
    lock.release()
    for path in (fifo, link):
        path.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    link.symlink_to(victim)
    # in a process of its own: opening the FIFO for reading would block it for good
    out = subprocess.run([sys.executable, "-c", CLEAN_IDLE, str(layout.root)],
                         capture_output=True, text=True, timeout=LONG)
    assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr
    assert not idle.exists() and victim.exists()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()  # only files go


# -- 2. other users: they can neither open a private lock file nor plant one ---------------

TRY_TO_HOLD = """
import errno, fcntl, sys
drop_privileges()
try:
    fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError as exc:
    print(errno.errorcode[exc.errno])
else:
    print("held")
"""


@pytest.mark.needs_root
def test_other_users_cannot_open_a_private_lock_file(open_dir):
    layout = Layout(open_dir / "cache")
    path, other = layout.lock_file(KEY), layout.lock_file("cd" * 16)
    mask = os.umask(0)  # the widest umask: the modes must not come from it
    try:
        for lock in (KeyLock(path, kind="flock", file_mode=0o600, dir_mode=0o755),
                     KeyLock(other, kind="flock")):
            assert lock.try_acquire()
            lock.release()
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755  # reachable: the file alone guards
    assert stat.S_IMODE(other.parent.stat().st_mode) == 0o700
    mallory = start_as(f"{MALLORY}:{MALLORY}", TRY_TO_HOLD, str(path))
    out, err = mallory.communicate(timeout=LONG)
    assert out.strip() == "EACCES", err


PLANT = """
import fcntl, json, sys, time
drop_privileges()
os.umask(0)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
os.write(fd, json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                         "time": time.time()}).encode())
fcntl.flock(fd, fcntl.LOCK_EX)
print(os.fstat(fd).st_ino, flush=True)
time.sleep(600)
"""


@pytest.mark.needs_root
@KINDS
def test_lock_file_planted_by_another_user_is_replaced_not_used(open_dir, kind):
    path = Layout(open_dir / "cache").lock_file(KEY)
    path.parent.mkdir(parents=True)
    path.parent.chmod(0o777)  # as an old sobuild made it under umask 000
    mallory = start_as(f"{MALLORY}:{MALLORY}", PLANT, str(path))
    try:
        planted = int(mallory.stdout.readline())
        lock = KeyLock(path, kind=kind)
        assert lock.try_acquire(), lock.describe_holder()
        st = os.lstat(path)
        assert st.st_ino != planted and st.st_uid == os.geteuid()
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert not path.parent.stat().st_mode & 0o022  # nobody else can plant one again
        assert lock.holder()["pid"] == os.getpid()
        lock.release()
        assert not list(path.parent.glob("*.stale-*"))
    finally:
        stop(mallory)


HOLD_READ_ONLY = """
import fcntl, sys, time
drop_privileges()
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""

WAIT_AS_MEMBER = """
import json, sys, time
from sobuild.store.locks import KeyLock
drop_privileges()
lock = KeyLock(sys.argv[1], kind="flock", trusted_gid=int(sys.argv[2]), file_mode=0o660,
               dir_mode=0o2770)
start = time.monotonic()
got = lock.acquire(timeout=float(sys.argv[3]))
st = os.stat(sys.argv[1])
print(json.dumps({"got": got, "seconds": time.monotonic() - start, "uid": st.st_uid,
                  "mode": st.st_mode & 0o7777}))
"""


@pytest.mark.needs_root
def test_read_only_holder_of_an_old_lock_file_cannot_block(open_dir):
    """In a group cache, BOB's lock file of an old sobuild is 0644: MALLORY, outside the
    group, opens it read-only and holds its flock. ALICE, a member, is not held up."""
    cache = open_dir / "cache"
    path = Layout(cache).lock_file(KEY)
    for directory in (cache, cache / "locks", path.parent):
        setgid_dir(directory)
    path.touch()
    os.chown(path, BOB, GROUP_GID)
    path.chmod(0o644)
    mallory = start_as(f"{MALLORY}:{MALLORY}", HOLD_READ_ONLY, str(path))
    try:
        assert mallory.stdout.readline().strip() == "held"
        alice = start_as(f"{ALICE}:{GROUP_GID}:{GROUP_GID}", WAIT_AS_MEMBER, str(path),
                         str(GROUP_GID), str(LONG))
        out, err = alice.communicate(timeout=2 * LONG)
        assert alice.returncode == 0, err
        report = json.loads(out)
        assert report["got"] and report["seconds"] < LONG / 2
        assert report["uid"] == ALICE and report["mode"] == 0o660
    finally:
        stop(mallory)


# -- 3. bounded waits: a stopped or vanished holder, and ``with`` -----------------------------

@pytest.mark.needs_proc
@KINDS
def test_stopped_holder_ends_the_wait_early(tmp_path, kind):
    path = Layout(tmp_path / "cache").lock_file(KEY)
    holder = start_holder(path, kind)
    try:
        os.kill(holder.pid, signal.SIGSTOP)  # what `scontrol suspend` sends
        lock = KeyLock(path, kind=kind)
        text = gives_up_early(lock)
        assert f"locked by process {holder.pid} on host " in text and "(stopped)" in text
    finally:
        stop(holder)
    assert lock.acquire(timeout=LONG)  # its holder continued and killed: taken over
    lock.release()


HOLD_AND_FORK = """
import os, sys, time
from sobuild.store.locks import KeyLock
lock = KeyLock(sys.argv[1], kind="flock")
assert lock.try_acquire()
if os.fork() == 0:  # a child forked without exec keeps the lock's descriptor
    print(os.getpid(), flush=True)
    time.sleep(600)
os._exit(0)
"""


@pytest.mark.needs_proc
def test_vanished_holder_ends_the_wait_early(tmp_path):
    path = Layout(tmp_path / "cache").lock_file(KEY)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_AND_FORK, str(path)],
                              stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    try:
        holder.wait(timeout=LONG)
        lock = KeyLock(path, kind="flock")
        text = gives_up_early(lock)
        assert f"locked by process {holder.pid} " in text and "(no longer running)" in text
    finally:
        os.kill(child, signal.SIGKILL)
        holder.stdout.close()
    deadline = time.monotonic() + LONG
    while not lock.try_acquire():
        assert time.monotonic() < deadline, "the child's lock was never released"
        time.sleep(0.05)
    lock.release()


WAIT_WITH = """
import sys
from sobuild.store.locks import KeyLock
try:
    with KeyLock(sys.argv[1], kind="flock"):
        print("entered")
except TimeoutError as exc:
    print("gave up:", exc)
"""


def test_with_statement_waits_at_most_sobuild_lock_wait(tmp_path):
    path = Layout(tmp_path / "cache").lock_file(KEY)
    holder = start_holder(path, "flock")  # running, and never letting go
    try:
        out = subprocess.run([sys.executable, "-c", WAIT_WITH, str(path)], capture_output=True,
                             text=True, timeout=LONG, env={**os.environ, "SOBUILD_LOCK_WAIT": "1"})
        assert out.stdout.startswith("gave up: waited 1 s for "), out.stderr
        assert f"locked by process {holder.pid} on host " in out.stdout
    finally:
        stop(holder)
