"""An unwritable cache directory and a full disk: one warning, or a clear error and nothing partial."""

from __future__ import annotations

import os

import pytest

from sobuild.store.index import Index
from sobuild.store.layout import Layout

from .conftest import (
    MALLORY,
    NOBODY,
    assert_nothing_half_written,
    expected_values,
    run_worker,
    worker_env,
)

AS_NOBODY = f"{NOBODY}:{NOBODY}"


@pytest.mark.needs_root
def test_unwritable_cache_directory_falls_back_with_one_warning(open_dir, user_tmp):
    not_mine = open_dir / "root-only"
    not_mine.mkdir(mode=0o755)
    env = worker_env(home=user_tmp, TMPDIR=str(user_tmp))
    report = run_worker(not_mine, env, kernels=2, tag="fallback", user=AS_NOBODY)
    fallback = user_tmp / f"sobuild-{NOBODY}"
    assert report["values"] == expected_values(2) and report["root"] == str(fallback)
    (warning,) = report["warnings"]
    assert str(not_mine) in warning and "not writable" in warning
    assert "SOBUILD_CACHE_DIR" in warning
    assert os.stat(fallback).st_uid == NOBODY and os.stat(fallback).st_mode & 0o077 == 0
    assert not list(not_mine.iterdir())

    again = run_worker(not_mine, env, kernels=2, tag="fallback", user=AS_NOBODY)
    assert again["root"] == str(fallback) and len(again["warnings"]) == 1
    nobodys_index = Index(Layout(fallback), trusted_gid=NOBODY)  # read by root: trust its group
    assert nobodys_index.counters()["builds"] == 2  # kept across processes


@pytest.mark.needs_root
def test_fallback_directory_planted_by_another_user_is_not_used(open_dir, user_tmp):
    planted = user_tmp / f"sobuild-{NOBODY}"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    os.chown(planted, MALLORY, MALLORY)
    not_mine = open_dir / "root-only"
    not_mine.mkdir(mode=0o755)
    env = worker_env(home=user_tmp, TMPDIR=str(user_tmp))
    report = run_worker(not_mine, env, kernels=1, tag="planted", user=AS_NOBODY)
    assert report["values"] == expected_values(1)
    assert report["root"] != str(planted) and report["root"].startswith(str(user_tmp))
    assert not list(planted.iterdir())


@pytest.fixture
def small_disk(open_dir, small_tmpfs):
    """A 1 MiB tmpfs: a disk that fills up for real."""
    return small_tmpfs(open_dir / "small-disk")


def _fill(mount_point, leave: int) -> None:
    """Fill the disk but ``leave`` bytes."""
    st = os.statvfs(mount_point)
    with open(mount_point / "filler", "ab") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))


def test_full_disk_gives_a_clear_error_and_leaves_nothing_partial(small_disk):
    cache = small_disk / "cache"
    outcomes = []
    # from no room at all, through room for the sources but not the objects, to enough
    for leave in (0, 16 << 10, 40 << 10, 80 << 10, 160 << 10):
        _fill(small_disk, leave)
        report = run_worker(cache, kernels=3, tag=f"full-{leave}")
        if "error" in report:
            assert report["error"] == "CacheDirectoryError", report
            assert "is full" in report["message"] and "sobuild prune" in report["message"]
        else:
            assert report["values"] == expected_values(3)
        outcomes.append(report.get("error", "ok"))
        layout = Layout(cache)
        assert_nothing_half_written(layout)
        assert not list(layout.tmp.iterdir()) and not layout.failed.exists()
        (small_disk / "filler").unlink()
    assert outcomes.count("CacheDirectoryError") >= 3 and "ok" in outcomes, outcomes
    report = run_worker(cache, kernels=3, tag="full-0")  # with room again, it just works
    assert "error" not in report, report
    assert report["values"] == expected_values(3)
