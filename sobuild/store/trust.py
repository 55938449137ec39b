"""Whether code found in a cache may be run: loading a shared object (or unpickling) runs it.

An entry is trusted when it belongs to the current user and nobody else can write it; or,
in a tier configured as a group cache (``SOBUILD_TRUST_GROUP=1`` and a setgid directory
whose group the user is in), when it belongs to that group. World-writable is never trusted.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import UntrustedEntryError

GROUP_HELP = ("To share a cache within a group: `chgrp -R GROUP DIR && chmod -R g+rwX DIR && "
              "find DIR -type d -exec chmod g+s {} +`, use umask 002 and set "
              "SOBUILD_TRUST_GROUP=1 for every user of it.")


def group_tier(root: Path, trust_group: bool) -> int | None:
    """The gid whose members' entries are trusted in ``root``, or None."""
    if not trust_group or os.name == "nt":
        return None
    try:
        st = root.stat()
    except OSError:
        return None
    if st.st_mode & stat.S_ISGID and (st.st_gid in os.getgroups() or st.st_gid == os.getegid()):
        return st.st_gid
    return None


def check_trusted(path: Path, st: os.stat_result, trusted_gid: int | None) -> None:
    """Raise UntrustedEntryError unless ``path`` (with stat ``st``) may be run."""
    if os.name == "nt":
        return
    mode = st.st_mode
    if mode & stat.S_IWOTH:
        raise UntrustedEntryError(f"{path} is writable by every user: sobuild will not run it. "
                                  f"Remove it (`sobuild verify --repair`). {GROUP_HELP}")
    if st.st_uid == os.geteuid() and not mode & stat.S_IWGRP:
        return
    if trusted_gid is not None and st.st_gid == trusted_gid:
        return
    owner = "another user" if st.st_uid != os.geteuid() else "you, but group-writable"
    raise UntrustedEntryError(f"{path} belongs to {owner} (uid {st.st_uid}, gid {st.st_gid}, "
                              f"mode {stat.filemode(mode)}): sobuild will not run it. "
                              f"{GROUP_HELP}")
