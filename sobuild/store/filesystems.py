"""What filesystem a path is on: network filesystems need rollback journals and lock files."""

from __future__ import annotations

import os
from pathlib import Path

NETWORK_FILESYSTEMS = ("nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "beegfs",
                       "ceph", "fuse.sshfs", "fuse.glusterfs", "glusterfs", "9p", "afs")


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def filesystem_type(path: str | Path, mounts: str = "/proc/mounts") -> str:
    """The type of the filesystem holding ``path`` (``ext4``, ``nfs4`` ...), or ``unknown``."""
    target = os.path.realpath(path)
    while not os.path.exists(target):
        target = os.path.dirname(target)
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
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith(("nfs", "fuse.s3"))


def use_wal(path: str | Path) -> bool:
    """WAL needs shared memory between clients: never on a network filesystem.

    ``SOBUILD_SQLITE_WAL=1``/``0`` overrides the detection.
    """
    forced = os.environ.get("SOBUILD_SQLITE_WAL", "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    return not is_network_filesystem(filesystem_type(path))
