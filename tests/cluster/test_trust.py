"""Code from a cache runs only if it is trusted: own (or root's) entries, or a group cache;
no key or name leads out of the cache directory."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

import sobuild
from sobuild.store.index import Index
from sobuild.store.layout import Layout

from .conftest import (
    ALICE,
    BOB,
    GROUP_GID,
    MALLORY,
    NOBODY,
    expected_values,
    group_cache,
    run_worker,
    worker_env,
)
from .worker import kernel_specs

ONE_UNIT = worker_env(SOBUILD_JOBS="1")


def _only_artifact(cache_dir):
    (artifact,) = Layout(cache_dir).iter_artifact_dirs()
    return artifact


@pytest.mark.needs_root
def test_entry_of_another_user_is_refused_with_help(cache_dir):
    run_worker(cache_dir, ONE_UNIT, kernels=2, tag="owner")
    os.chown(_only_artifact(cache_dir) / "lib.so", NOBODY, NOBODY)
    report = run_worker(cache_dir, ONE_UNIT, kernels=2, tag="owner")
    assert report["error"] == "UntrustedEntryError"
    assert "belongs to another user" in report["message"]
    assert "SOBUILD_TRUST_GROUP=1" in report["message"] and "chmod g+s" in report["message"]


@pytest.mark.needs_root
def test_artifact_directory_of_another_user_is_refused(cache_dir):
    run_worker(cache_dir, ONE_UNIT, kernels=1, tag="owner-dir")
    os.chown(_only_artifact(cache_dir), NOBODY, NOBODY)
    report = run_worker(cache_dir, ONE_UNIT, kernels=1, tag="owner-dir")
    assert report["error"] == "UntrustedEntryError" and "belongs to another user" in report["message"]


@pytest.mark.needs_root
def test_data_entry_of_another_user_is_refused(cache):
    key = "ab" * 16
    cache.put_data(key, b"payload")
    os.chown(cache.layout.data_file(key), NOBODY, NOBODY)
    with pytest.raises(sobuild.UntrustedEntryError, match="another user"):
        sobuild.Cache(cache.root).get_data(key)


@pytest.mark.parametrize("what, mode, message", [
    ("lib.so", 0o446, "writable by every user"),
    ("lib.so", 0o464, "writable by its group"),
])
def test_writable_by_others_is_refused(cache_dir, what, mode, message):
    run_worker(cache_dir, ONE_UNIT, kernels=1, tag="mode")
    (_only_artifact(cache_dir) / what).chmod(mode)
    report = run_worker(cache_dir, ONE_UNIT, kernels=1, tag="mode")
    assert report["error"] == "UntrustedEntryError" and message in report["message"]


def test_own_directory_writable_by_others_is_made_private(cache_dir):
    """Files in it are checked one by one; the directory itself is ours to tighten."""
    run_worker(cache_dir, ONE_UNIT, kernels=1, tag="mode")
    artifact = _only_artifact(cache_dir)
    artifact.chmod(0o777)
    artifact.parent.chmod(0o775)
    report = run_worker(cache_dir, ONE_UNIT, kernels=1, tag="mode")
    assert report["values"] == expected_values(1) and "error" not in report
    assert stat.S_IMODE(artifact.stat().st_mode) == 0o755
    assert stat.S_IMODE(artifact.parent.stat().st_mode) == 0o755


# -- a group cache, with real users ---------------------------------------------------------

def _group_user(uid, *groups):
    return f"{uid}:{groups[0] if groups else uid}:{','.join(map(str, groups))}"


@pytest.mark.needs_root
def test_group_cache_shared_by_two_users(open_dir, user_tmp):
    cache, env = group_cache(open_dir, user_tmp)
    alice, bob = _group_user(ALICE, GROUP_GID), _group_user(BOB, GROUP_GID)

    first = run_worker(cache, env, kernels=2, tag="group", user=alice, umask="002")
    assert first["values"] == expected_values(2) and first["root"] == str(cache)
    artifact = _only_artifact(cache)
    for path, mode in [(artifact, 0o2775), (artifact / "lib.so", 0o664),
                       (artifact / "meta.json", 0o664),
                       (next(Layout(cache).iter_kernel_files()), 0o664)]:
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (ALICE, GROUP_GID), path
        assert stat.S_IMODE(st.st_mode) == mode, (path, oct(st.st_mode))

    second = run_worker(cache, env, kernels=3, tag="group", user=bob, umask="002")
    assert second["values"] == expected_values(3) and second["warnings"] == []
    third = run_worker(cache, env, kernels=3, tag="group", user=alice, umask="002")
    assert third["values"] == expected_values(3) and third["warnings"] == []
    counters = Index(Layout(cache), trusted_gid=GROUP_GID).counters()
    assert counters["builds"] == 3 and counters["hits"] == 2 + 3

    untrusting = {k: v for k, v in env.items() if k != "SOBUILD_TRUST_GROUP"}
    refused = run_worker(cache, untrusting, kernels=3, tag="group", user=bob, umask="002")
    assert refused["error"] == "UntrustedEntryError"
    assert "SOBUILD_TRUST_GROUP=1" in refused["message"]

    # not in the group: the group's entries, even as a read-only tier, are not run; they are
    # skipped with a warning and the kernels are built in her own cache
    outsider_cache = user_tmp / "mallory"
    outsider = run_worker(outsider_cache, {**env, "SOBUILD_SHARED_DIR": str(cache)},
                          kernels=3, tag="group", user=_group_user(MALLORY), umask="022")
    assert outsider["values"] == expected_values(3) and outsider["root"] == str(outsider_cache)
    assert any("skipping" in w and str(cache) in w and "belongs to another user" in w
               for w in outsider["warnings"]), outsider["warnings"]
    keys = list(Layout(outsider_cache).iter_kernel_files())
    assert len(keys) == 3 and all(k.stat().st_uid == MALLORY for k in keys)


@pytest.mark.needs_root
def test_group_cache_honours_the_umask(open_dir, user_tmp):
    cache, env = group_cache(open_dir, user_tmp)
    report = run_worker(cache, env, kernels=1, tag="umask",
                        user=_group_user(ALICE, GROUP_GID), umask="027")
    assert report["values"] == expected_values(1)
    artifact = _only_artifact(cache)
    assert stat.S_IMODE(artifact.stat().st_mode) == 0o2750
    assert stat.S_IMODE((artifact / "lib.so").stat().st_mode) == 0o640


# -- names never leave the cache --------------------------------------------------------------

@pytest.mark.parametrize("key", ["../../../etc/passwd", "ab/../../x", "/etc/passwd",
                                 "AB" * 16, "ab" * 17, ""])
def test_keys_that_are_not_keys_are_refused(cache, key):
    for method in (cache.layout.kernel_file, cache.layout.data_file, cache.layout.lock_file,
                   cache.layout.artifact_dir, cache.get_data):
        with pytest.raises(ValueError, match="not a sobuild key"):
            method(key)
    with pytest.raises(ValueError, match="not a sobuild key"):
        cache.put_data(key, b"x")


def test_key_file_naming_a_path_outside_is_a_miss(cache_dir, tmp_path):
    (spec,) = kernel_specs(1, "escape")
    cache = sobuild.Cache(cache_dir)
    cache.load(spec)
    key_file = cache.layout.kernel_file(cache.key(spec))
    key_file.chmod(0o644)
    key_file.write_text(json.dumps({"artifact": "../../../../" + str(tmp_path)}))
    fresh = sobuild.Cache(cache_dir)
    assert fresh.lookup(spec) is None
    v = np.array([1.0])
    fresh.load(spec)(v, 1)
    assert v.tolist() == [2.0]
    assert json.loads(key_file.read_text())["artifact"] == _only_artifact(cache_dir).name


@pytest.mark.parametrize("link", ["artifact", "library", "shard"])
def test_symbolic_links_out_of_the_cache_are_refused(cache_dir, tmp_path, link):
    run_worker(cache_dir, ONE_UNIT, kernels=1, tag="symlink")
    artifact = _only_artifact(cache_dir)
    outside = tmp_path / "outside"
    if link == "artifact":  # artifacts/ab/<digest> -> a copy elsewhere
        artifact.rename(outside)
        artifact.symlink_to(outside)
    elif link == "library":  # artifacts/ab/<digest>/lib.so -> elsewhere
        (artifact / "lib.so").rename(outside)
        (artifact / "lib.so").symlink_to(outside)
    else:  # artifacts/ab -> elsewhere
        artifact.parent.rename(outside)
        artifact.parent.symlink_to(outside)
    report = run_worker(cache_dir, ONE_UNIT, kernels=1, tag="symlink")
    assert report["error"] == "UntrustedEntryError" and "symbolic link" in report["message"]


def test_symbolic_link_to_a_data_entry_is_refused(cache, tmp_path):
    key = "cd" * 16
    outside = tmp_path / "payload"
    outside.write_bytes(sobuild.cache.data_entries.encode(b"evil", "default", 0.0))
    path = cache.layout.data_file(key)
    path.parent.mkdir(parents=True)
    path.symlink_to(outside)
    with pytest.raises(sobuild.UntrustedEntryError, match="symbolic link"):
        cache.get_data(key)
