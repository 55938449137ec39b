"""SOBUILD_SHARED_DIR: a read-only tier looked up after the local one; misses built locally."""

from __future__ import annotations

import os
import subprocess

import pytest

from sobuild.store.index import Index
from sobuild.store.layout import Layout

from .conftest import NOBODY, expected_values, run_worker, worker_env


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.needs_root
def test_read_only_shared_tier_serves_another_user(open_dir, user_tmp):
    shared = open_dir / "shared"
    run_worker(shared, worker_env(SOBUILD_JOBS="1"), kernels=3, tag="tier")  # the prebuild
    subprocess.run(["chmod", "-R", "a-w", str(shared)], check=True)
    before = _files(shared)
    index_before = Index(Layout(shared)).counters()
    local = open_dir / "nobody-cache"
    local.mkdir()
    os.chown(local, NOBODY, NOBODY)

    env = worker_env(home=user_tmp, TMPDIR=str(user_tmp), SOBUILD_SHARED_DIR=str(shared))
    report = run_worker(local, env, kernels=5, tag="tier", user=f"{NOBODY}:{NOBODY}")
    assert report["uid"] == NOBODY and report["root"] == str(local)
    assert report["values"] == expected_values(5)
    assert report["warnings"] == [] and report["stderr"] == ""
    nobodys_index = Index(Layout(local), trusted_gid=NOBODY)  # read by root: trust its group
    counters = nobodys_index.counters()
    assert counters["hits"] == 3 and counters["misses"] == 2 and counters["builds"] == 2
    assert len(list(Layout(local).iter_kernel_files())) == 2
    assert _files(shared) == before and Index(Layout(shared)).counters() == index_before

    again = run_worker(local, env, kernels=5, tag="tier", user=f"{NOBODY}:{NOBODY}")
    assert again["values"] == expected_values(5)
    assert nobodys_index.counters()["hits"] == 8  # 3 from the shared tier, 2 local


def test_missing_shared_tier_is_not_an_error(cache_dir, tmp_path):
    env = worker_env(SOBUILD_SHARED_DIR=str(tmp_path / "not-mounted-today"))
    report = run_worker(cache_dir, env, kernels=2, tag="no-tier")
    assert report["values"] == expected_values(2) and report["warnings"] == []


def test_local_tier_comes_first(cache_dir, tmp_path):
    shared = tmp_path / "shared"
    run_worker(shared, kernels=2, tag="order")
    run_worker(cache_dir, kernels=2, tag="order")
    env = worker_env(SOBUILD_SHARED_DIR=str(shared))
    (artifact, *_) = Layout(shared).iter_artifact_dirs()
    (artifact / "lib.so").chmod(0o644)
    (artifact / "lib.so").write_bytes(b"corrupt")  # would be noticed if it were read
    report = run_worker(cache_dir, env, kernels=2, tag="order")
    assert report["values"] == expected_values(2) and report["warnings"] == []
