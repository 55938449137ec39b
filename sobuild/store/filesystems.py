"""What filesystem a path is on: network filesystems need rollback journals and lock files."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import setting

NETWORK_FILESYSTEMS = ("nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "beegfs",
                       "fuse.beegfs", "ceph", "fuse.ceph", "fuse.sshfs", "fuse.glusterfs",
                       "glusterfs", "9p", "afs", "gfs2", "ocfs2", "panfs", "pvfs2", "orangefs",
                       "wekafs", "quobyte", "fuse.juicefs")


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def filesystem_type(path: str | Path, mounts: str = "/proc/mounts") -> str:
    """The type of the filesystem holding ``path`` (``ext4``, ``nfs4`` ...), or ``unknown``.

    ``path`` need not exist yet (the mount holding its nearest ancestor counts); ``mounts``
    is a table in the format of ``/proc/mounts``.
    """
    target = os.path.realpath(path)
    try:
        with open(mounts) as f:
            table = [line.split() for line in f]
    except OSError:
        return "unknown"
    best, best_type = "", "unknown"
    for fields in table:
        if len(fields) < 3:
            continue
        mount_point = _unescape(fields[1])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fields[2]
    return best_type


def is_network_filesystem(fstype: str) -> bool:
    """True for filesystems shared between machines (no shared memory, so no sqlite WAL)."""
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith(("nfs", "fuse.s3"))


def use_wal(path: str | Path, mounts: str = "/proc/mounts") -> bool:
    """WAL needs shared memory between clients: never on a network filesystem.

    ``SOBUILD_SQLITE_WAL=1``/``0`` overrides the detection.
    """
    forced = setting("SOBUILD_SQLITE_WAL")
    if forced is not None:
        return forced
    return not is_network_filesystem(filesystem_type(path, mounts))
