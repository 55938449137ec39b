"""Network filesystems from the mount table: no sqlite WAL there (overridable), a busy timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

import sobuild
from sobuild.errors import ConfigError
from sobuild.store.filesystems import filesystem_type, is_network_filesystem, use_wal
from sobuild.store.index import Index
from sobuild.store.layout import Layout

#: A compute node's /proc/mounts: NFS homes under autofs, Lustre, GPFS with a local disk
#: mounted inside it, CIFS and BeeGFS, mount points with escaped spaces.
MOUNTS = str(Path(__file__).with_name("data") / "mounts.txt")


@pytest.mark.parametrize("path, fstype", [
    ("/home/alice/.cache/sobuild", "nfs4"),
    ("/home/alice", "nfs4"),
    ("/home/bob/cache", "autofs"),
    ("/opt/apps/sobuild-cache", "nfs"),
    ("/scratch/alice/sobuild", "lustre"),
    ("/project/neuro/cache", "lustre"),
    ("/gpfs/work/alice", "gpfs"),
    ("/gpfs/work/local disk/cache", "ext4"),
    ("/mnt/win share/cache", "cifs"),
    ("/mnt/beegfs/c", "beegfs"),
    ("/tmp/sobuild", "xfs"),
    ("/scratchy/not-lustre", "xfs"),
    ("/", "xfs"),
])
def test_filesystem_type_from_a_recorded_mount_table(path, fstype):
    assert filesystem_type(path, MOUNTS) == fstype


@pytest.mark.parametrize("path, wal", [
    ("/home/alice/.cache/sobuild", False), ("/scratch/alice/sobuild", False),
    ("/gpfs/work/alice", False), ("/mnt/win share/cache", False), ("/mnt/beegfs/c", False),
    ("/gpfs/work/local disk/cache", True), ("/tmp/sobuild", True),
])
def test_no_wal_on_network_filesystems(path, wal, monkeypatch):
    monkeypatch.delenv("SOBUILD_SQLITE_WAL", raising=False)
    assert use_wal(path, MOUNTS) is wal
    monkeypatch.setenv("SOBUILD_SQLITE_WAL", "1")
    assert use_wal(path, MOUNTS) is True
    monkeypatch.setenv("SOBUILD_SQLITE_WAL", "off")
    assert use_wal(path, MOUNTS) is False


def test_network_types():
    for fstype in ("nfs", "nfs4", "lustre", "gpfs", "cifs", "beegfs", "ceph", "fuse.sshfs"):
        assert is_network_filesystem(fstype)
    for fstype in ("ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "unknown"):
        assert not is_network_filesystem(fstype)


def test_unreadable_mount_table_means_unknown(tmp_path):
    assert filesystem_type("/tmp", str(tmp_path / "no-such-file")) == "unknown"


@pytest.mark.parametrize("setting, mode", [("0", "delete"), ("1", "wal")])
def test_index_journal_mode_follows_the_setting(tmp_path, monkeypatch, setting, mode):
    monkeypatch.setenv("SOBUILD_SQLITE_WAL", setting)
    assert Index(Layout(tmp_path)).journal_mode() == mode


def test_busy_timeout_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("SOBUILD_SQLITE_TIMEOUT", raising=False)
    assert Index(Layout(tmp_path)).timeout == 10.0
    monkeypatch.setenv("SOBUILD_SQLITE_TIMEOUT", "60")
    assert Index(Layout(tmp_path)).timeout == 60.0
    assert Index(Layout(tmp_path), timeout=1.0).timeout == 1.0  # what a run asks for
    monkeypatch.setenv("SOBUILD_SQLITE_TIMEOUT", "a while")
    with pytest.raises(ConfigError, match="SOBUILD_SQLITE_TIMEOUT"):
        Index(Layout(tmp_path))


def test_a_run_waits_a_second_for_the_index_unless_the_user_set_the_timeout(
        tmp_path, monkeypatch):
    monkeypatch.delenv("SOBUILD_SQLITE_TIMEOUT", raising=False)
    assert sobuild.Cache(tmp_path).store.index.timeout == 1.0
    monkeypatch.setenv("SOBUILD_SQLITE_TIMEOUT", "60")
    assert sobuild.Cache(tmp_path).store.index.timeout == 60.0
