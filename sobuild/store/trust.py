"""Whether code found in a cache may be run: loading a shared object (or unpickling) runs it.

An entry is trusted when it belongs to the current user (or to root) and nobody else can
write it; or, in a tier configured as a group cache (``SOBUILD_TRUST_GROUP=1`` and a setgid
directory whose group the user is in), when it belongs to that group. World-writable is
never trusted. The directories between the tier's root and the entry are held to the same
owners and may not be symbolic links, so no name leads out of the cache directory. Outside
a group cache, a directory of one's own that is group-writable (made by a umask of 002) is
made private when it is met (``tighten``); files may not be group-writable at all there.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from ..errors import UntrustedEntryError

GROUP_HELP = ("To share a cache within a group: `chgrp -R GROUP DIR && chmod -R g+rwX DIR && "
              "find DIR -type d -exec chmod g+s {} +`, use umask 002 and set "
              "SOBUILD_TRUST_GROUP=1 for every user of it (see 'Using sobuild on a cluster' "
              "in the README).")
ROOT_UID = 0


def group_tier(root: Path, trust_group: bool) -> int | None:
    """The gid whose members' entries are trusted in ``root``, or None.

    That is the group of ``root`` when ``trust_group`` is set, ``root`` is setgid and the
    current user is a member of its group.
    """
    if not trust_group or os.name == "nt":
        return None
    try:
        st = root.stat()
    except OSError:
        return None
    if st.st_mode & stat.S_ISGID and (st.st_gid in os.getgroups() or st.st_gid == os.getegid()):
        return st.st_gid
    return None


def refuse(path: Path, st: os.stat_result, why: str) -> UntrustedEntryError:
    """The error refusing ``path``: what is wrong with it, and what to do."""
    return UntrustedEntryError(
        f"{path} {why} (uid {st.st_uid}, gid {st.st_gid}, mode {stat.filemode(st.st_mode)}): "
        f"sobuild will not run code from it. Remove it (`sobuild verify --repair`) or, if the "
        f"cache is shared on purpose, configure it as a group cache. {GROUP_HELP}")


def check_trusted(path: Path, st: os.stat_result, trusted_gid: int | None) -> None:
    """Raise UntrustedEntryError unless the file ``path`` (with stat ``st``) may be run."""
    if os.name == "nt":
        return
    mode = st.st_mode
    if mode & stat.S_IWOTH:
        raise refuse(path, st, "is writable by every user")
    if trusted_gid is not None and st.st_gid == trusted_gid:
        return
    if st.st_uid not in (os.geteuid(), ROOT_UID):
        raise refuse(path, st, "belongs to another user")
    if mode & stat.S_IWGRP:
        raise refuse(path, st, "is writable by its group, and this cache is not a trusted "
                                "group cache")


def check_trusted_directory(path: Path, st: os.stat_result, trusted_gid: int | None) -> None:
    """Raise UntrustedEntryError unless the directory ``path`` is held by trusted owners."""
    if os.name == "nt":
        return
    if stat.S_ISLNK(st.st_mode):
        raise refuse(path, st, "is a symbolic link inside the cache (entries must not lead "
                                "out of it)")
    if st.st_mode & stat.S_IWOTH:
        raise refuse(path, st, "is writable by every user")
    if trusted_gid is not None and st.st_gid == trusted_gid:
        return
    if st.st_uid not in (os.geteuid(), ROOT_UID):
        raise refuse(path, st, "belongs to another user")


def tighten(fd: int, st: os.stat_result, trusted_gid: int | None) -> None:
    """Take group and world write from a directory of one's own outside a group cache."""
    if trusted_gid is None and st.st_mode & 0o022 and st.st_uid == os.geteuid():
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~0o022)


def current_umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_modes(trusted_gid: int | None) -> tuple[int, int]:
    """(file mode, directory mode) for published entries, with the umask applied.

    Entries of a private tier are read-only (0444/0755); a trusted group cache needs them
    group-writable (0664/2775) so that every member can prune and repair them.
    """
    mask = current_umask()
    if trusted_gid is not None:
        return 0o664 & ~mask, 0o2775 & ~mask
    return 0o444 & ~mask, 0o755 & ~mask


def private_temp_dir() -> Path:
    """A temporary cache directory that only the current user can write.

    ``<tmp>/sobuild-<uid>`` is reused across processes when it is ours and private;
    otherwise (someone else made it, or it is a link) a fresh one is created.
    """
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    path = Path(tempfile.gettempdir()) / f"sobuild-{uid}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return Path(tempfile.mkdtemp(prefix=f"sobuild-{uid}-"))
    if os.name == "nt":
        return path
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077:
        return path
    return Path(tempfile.mkdtemp(prefix=f"sobuild-{uid}-"))
