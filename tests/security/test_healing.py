"""Broken, swapped, untrusted and non-regular entries: loads heal them with a bounded number
of compiles, ``verify`` reports them and ``repair`` removes them, nothing hangs on a FIFO
(issue 12: 6, 7, 8, 9).

Everything runs in real processes with a deadline: a hang fails the test, it never stalls
the suite. Compiles are counted by a g++ wrapper that writes a line per compile.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cluster.conftest import expected_values

from sobuild.store.layout import Layout

from .conftest import MALLORY, CountingCompiler, start_worker, worker_env

DEADLINE = 300  # a load that builds, on a loaded machine; a hang is minutes past it

#: verify (and repair) a cache in a process of its own; prints what they found and did.
VERIFY = """
import json, sys
from sobuild.store.store import Store
from sobuild.store.verify import repair, verify
store = Store(sys.argv[1])
report = verify(store)
out = {"problems": [[p.kind, str(p.path)] for p in report.problems]}
if sys.argv[2] == "repair":
    repair(store, report)
    out["after"] = [[p.kind, str(p.path)] for p in verify(store).problems]
print(json.dumps(out))
"""

#: Cache.get_data (after put_data with "put:PAYLOAD") in a process of its own.
DATA = """
import json, sys, warnings
import sobuild
cache_dir, shared, key, action = sys.argv[1:5]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    cache = sobuild.Cache(cache_dir, shared_dir=shared or None)
    if action.startswith("put:"):
        cache.put_data(key, action[4:].encode())
    got = cache.get_data(key)
    cache.flush()
print(json.dumps({"got": None if got is None else got.decode(),
                  "warnings": [str(w.message) for w in caught]}))
"""

DATA_KEY = "5e" * 16


@pytest.fixture
def compiles(tmp_path) -> CountingCompiler:
    return CountingCompiler(tmp_path, SOBUILD_JOBS="1")


def load(cache: Path, env: dict, timeout: float = DEADLINE, **opts) -> dict:
    """A worker's report; the test fails (and the worker is killed) if it hangs or crashes."""
    proc = start_worker(cache, env, **opts)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the load did not finish within {timeout} s")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"worker failed ({proc.returncode}):\n{out}\n{err}"
    assert "RecursionError" not in err
    return {**json.loads(lines[-1]), "stderr": err}


def run_script(code: str, *args: str, timeout: float = 60) -> dict:
    """``python -c code args``: its JSON output; the test fails if it does not finish."""
    try:
        proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, env=worker_env())
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not finish within {timeout} s (hung?): {args}")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def verify_and_repair(cache: Path) -> dict:
    return run_script(VERIFY, cache, "repair")


def entry_problems(problems: list) -> list:
    """The problems about entries (not about the index, which repair rebuilds)."""
    return [p for p in problems if p[1] != "None"]


def get_data(cache: Path, action: str = "get", shared: Path | str = "") -> dict:
    return run_script(DATA, cache, shared, DATA_KEY, action)


# -- 6: an artifact directory without its library ------------------------------------------

@pytest.mark.parametrize("damage", ["missing", "directory"])
def test_artifact_without_its_library_is_rebuilt_once(cache_dir, compiles, damage):
    """lib.so removed (or a directory in its place): the rebuild gives the same digest. One
    compile, no storm, no recursion; then hits again."""
    first = load(cache_dir, compiles.env, kernels=2, tag=f"nolib-{damage}")
    assert first["values"] == expected_values(2) and compiles.take() == 1
    (artifact,) = Layout(cache_dir).iter_artifact_dirs()
    library = artifact / "lib.so"
    library.unlink()
    if damage == "directory":
        library.mkdir()
        (library / "inside").write_bytes(b"x")

    second = load(cache_dir, compiles.env, kernels=2, tag=f"nolib-{damage}")
    assert second["values"] == expected_values(2), second
    assert compiles.take() == 1
    (rebuilt,) = Layout(cache_dir).iter_artifact_dirs()
    assert rebuilt.name == artifact.name and (rebuilt / "lib.so").is_file()

    third = load(cache_dir, compiles.env, kernels=2, tag=f"nolib-{damage}")
    assert third["values"] == expected_values(2) and third["warnings"] == []
    assert compiles.take() == 0


# -- 7: kernel key files swapped, or one a link to the other -----------------------------------

def _two_artifacts(cache_dir: Path, compiles: CountingCompiler, tag: str) -> tuple[Path, Path]:
    """Kernels 0 and 1 in artifacts of their own; their key files."""
    layout = Layout(cache_dir)
    assert load(cache_dir, compiles.env, kernels=1, tag=tag)["values"] == expected_values(1)
    (key0,) = layout.iter_kernel_files()
    assert load(cache_dir, compiles.env, kernels=1, first=1, tag=tag)["values"] == \
        expected_values(1, first=1)
    (key1,) = set(layout.iter_kernel_files()) - {key0}
    assert compiles.take() == 2
    return key0, key1


def _swap(a: Path, b: Path) -> None:
    blob_a, blob_b = a.read_bytes(), b.read_bytes()
    for path, blob in ((a, blob_b), (b, blob_a)):
        path.chmod(0o644)
        path.write_bytes(blob)
        path.chmod(0o444)


def test_swapped_keys_are_set_aside_and_rebuilt(cache_dir, compiles):
    key0, key1 = _two_artifacts(cache_dir, compiles, "swapped-load")
    _swap(key0, key1)
    report = load(cache_dir, compiles.env, kernels=2, tag="swapped-load")
    assert report["values"] == expected_values(2), report
    assert compiles.take() <= 2  # each kernel rebuilt at most once
    again = load(cache_dir, compiles.env, kernels=2, tag="swapped-load")
    assert again["values"] == expected_values(2) and again["warnings"] == []
    assert compiles.take() == 0
    assert not [p for p in run_script(VERIFY, cache_dir, "check")["problems"]
                if p[0] == "wrong key"]


def test_swapped_keys_are_reported_and_repaired(cache_dir, compiles):
    key0, key1 = _two_artifacts(cache_dir, compiles, "swapped-verify")
    _swap(key0, key1)
    result = verify_and_repair(cache_dir)
    assert ["wrong key", str(key0)] in result["problems"], result
    assert ["wrong key", str(key1)] in result["problems"], result
    assert not key0.exists() and not key1.exists()
    assert entry_problems(result["after"]) == [], result["after"]
    report = load(cache_dir, compiles.env, kernels=2, tag="swapped-verify")
    assert report["values"] == expected_values(2) and report["warnings"] == []
    assert compiles.take() <= 2


def test_key_linked_to_another_key_is_set_aside_and_rebuilt(cache_dir, compiles):
    key0, key1 = _two_artifacts(cache_dir, compiles, "linked-key-load")
    pointer = key0.read_bytes()
    key1.unlink()
    key1.symlink_to(key0)
    report = load(cache_dir, compiles.env, kernels=2, tag="linked-key-load")
    assert report["values"] == expected_values(2), report
    assert compiles.take() <= 1  # kernel 0 is a hit
    assert not key1.is_symlink() and key0.read_bytes() == pointer  # the link went
    again = load(cache_dir, compiles.env, kernels=2, tag="linked-key-load")
    assert again["values"] == expected_values(2) and again["warnings"] == []
    assert compiles.take() == 0


def test_key_linked_to_another_key_is_reported_and_repaired(cache_dir, compiles):
    key0, key1 = _two_artifacts(cache_dir, compiles, "linked-key")
    pointer = key0.read_bytes()
    key1.unlink()
    key1.symlink_to(key0)
    result = verify_and_repair(cache_dir)
    assert ["untrusted", str(key1)] in result["problems"], result
    assert not os.path.lexists(key1)
    assert key0.read_bytes() == pointer  # the link went, not what it named
    assert entry_problems(result["after"]) == [], result["after"]
    report = load(cache_dir, compiles.env, kernels=2, tag="linked-key")
    assert report["values"] == expected_values(2) and report["warnings"] == []
    assert compiles.take() <= 1  # kernel 0 is a hit


# -- 8: FIFOs where files should be -----------------------------------------------------------

def _plant_fifo(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    os.mkfifo(path, 0o644)


@pytest.mark.parametrize("where", ["library", "key"])
def test_fifo_in_a_kernel_entry_hangs_nothing(cache_dir, compiles, where):
    tag = f"fifo-{where}"
    assert load(cache_dir, compiles.env, kernels=1, tag=tag)["values"] == expected_values(1)
    layout = Layout(cache_dir)
    (artifact,) = layout.iter_artifact_dirs()
    (key,) = layout.iter_kernel_files()
    fifo = artifact / "lib.so" if where == "library" else key
    compiles.take()

    _plant_fifo(fifo)
    healed = load(cache_dir, compiles.env, kernels=1, tag=tag)
    assert healed["values"] == expected_values(1), healed
    assert compiles.take() == 1
    assert fifo.is_file()  # set aside and published again

    _plant_fifo(fifo)
    result = verify_and_repair(cache_dir)
    expected = ["corrupt artifact", str(artifact)] if where == "library" \
        else ["bad key file", str(key)]
    assert expected in result["problems"], result
    assert not os.path.lexists(fifo)
    assert entry_problems(result["after"]) == [], result["after"]
    after = load(cache_dir, compiles.env, kernels=1, tag=tag)
    assert after["values"] == expected_values(1) and after["warnings"] == []


def test_fifo_at_a_data_entry_hangs_nothing(cache_dir):
    path = Layout(cache_dir).data_file(DATA_KEY)
    assert get_data(cache_dir, "put:first")["got"] == "first"
    _plant_fifo(path)
    assert get_data(cache_dir)["got"] is None  # set aside: a miss
    assert get_data(cache_dir, "put:second")["got"] == "second"

    _plant_fifo(path)
    result = verify_and_repair(cache_dir)
    assert ["bad data", str(path)] in result["problems"], result
    assert not os.path.lexists(path)
    assert entry_problems(result["after"]) == [], result["after"]
    assert get_data(cache_dir, "put:third")["got"] == "third"


# -- 9: entries of other users, group-writable, or links --------------------------------------

UNTRUSTED = ["foreign-library", "foreign-artifact", "foreign-key", "group-writable-library",
             "group-writable-key", "linked-library", "linked-artifact"]


def _make_untrusted(layout: Layout, how: str, outside: Path) -> tuple[Path, Path]:
    """Spoil the only kernel of ``layout``; (the spoilt path, the path verify reports)."""
    (artifact,) = layout.iter_artifact_dirs()
    (key,) = layout.iter_kernel_files()
    library = artifact / "lib.so"
    if how == "foreign-library":
        os.chown(library, MALLORY, MALLORY)
        return library, artifact
    if how == "foreign-artifact":
        os.chown(artifact, MALLORY, MALLORY)
        return artifact, artifact
    if how == "foreign-key":
        os.chown(key, MALLORY, MALLORY)
        return key, key
    if how == "group-writable-library":
        library.chmod(0o464)
        return library, artifact
    if how == "group-writable-key":
        key.chmod(0o664)
        return key, key
    if how == "linked-library":  # the very bytes, elsewhere: only the link is wrong
        shutil.copy2(library, outside)
        library.unlink()
        library.symlink_to(outside)
        return library, artifact
    assert how == "linked-artifact"
    shutil.copytree(artifact, outside, symlinks=True)
    shutil.rmtree(artifact)
    artifact.symlink_to(outside)
    return artifact, artifact


@pytest.mark.needs_root
@pytest.mark.parametrize("how", UNTRUSTED)
def test_untrusted_entries_are_reported_and_repaired(cache_dir, compiles, tmp_path, how):
    tag = f"untrusted-{how}"
    assert load(cache_dir, compiles.env, kernels=1, tag=tag)["values"] == expected_values(1)
    layout = Layout(cache_dir)
    outside = tmp_path / "outside"
    spoilt, reported = _make_untrusted(layout, how, outside)
    kept = sorted((p.name, p.read_bytes()) for p in [outside, *outside.glob("*")]
                  if p.is_file()) if how.startswith("linked") else None
    compiles.take()

    result = verify_and_repair(cache_dir)
    assert ["untrusted", str(reported)] in result["problems"], result
    assert not os.path.lexists(spoilt)
    assert entry_problems(result["after"]) == [], result["after"]
    if kept is not None:  # the link went, not what it named
        assert sorted((p.name, p.read_bytes()) for p in [outside, *outside.glob("*")]
                      if p.is_file()) == kept
    report = load(cache_dir, compiles.env, kernels=1, tag=tag)
    assert report["values"] == expected_values(1) and report["warnings"] == []
    assert compiles.take() <= 1


@pytest.mark.needs_root
def test_data_entry_of_another_user_is_reported_and_repaired(cache_dir):
    path = Layout(cache_dir).data_file(DATA_KEY)
    assert get_data(cache_dir, "put:mine")["got"] == "mine"
    os.chown(path, MALLORY, MALLORY)
    result = verify_and_repair(cache_dir)
    assert ["untrusted", str(path)] in result["problems"], result
    assert not os.path.lexists(path)
    assert get_data(cache_dir, "put:again")["got"] == "again"


@pytest.mark.needs_root
@pytest.mark.parametrize("how", ["foreign-library", "foreign-key", "linked-artifact"])
def test_untrusted_entry_of_a_shared_tier_is_skipped_and_built_locally(cache_dir, compiles,
                                                                        tmp_path, how):
    """A read-only shared tier (SOBUILD_SHARED_DIR) is not the user's to repair: its foreign
    entry is skipped with a warning, not run, and the kernel is built in the user's cache."""
    shared = tmp_path / "shared"
    tag = f"shared-{how}"
    assert load(shared, compiles.env, kernels=2, tag=tag)["values"] == expected_values(2)
    layout = Layout(shared)
    (artifact,) = layout.iter_artifact_dirs()
    for key in list(layout.iter_kernel_files())[1:]:  # one kernel, as _make_untrusted wants
        key.unlink()
    spoilt, _ = _make_untrusted(layout, how, tmp_path / "outside")
    before = sorted(str(p) for p in shared.rglob("*"))
    compiles.take()

    report = load(cache_dir, {**compiles.env, "SOBUILD_SHARED_DIR": str(shared)}, kernels=2,
                  tag=tag)
    assert report["values"] == expected_values(2), report
    assert report["root"] == str(cache_dir)
    assert any("skipping" in w and str(shared) in w for w in report["warnings"]), report
    assert compiles.take() == 1  # both kernels built here, in one unit
    assert len(list(Layout(cache_dir).iter_kernel_files())) == 2
    assert os.path.lexists(spoilt) and sorted(str(p) for p in shared.rglob("*")) == before


@pytest.mark.needs_root
def test_data_entry_of_another_user_in_a_shared_tier_is_skipped(cache_dir, tmp_path):
    shared = tmp_path / "shared"
    assert get_data(shared, "put:theirs")["got"] == "theirs"
    os.chown(Layout(shared).data_file(DATA_KEY), MALLORY, MALLORY)
    result = get_data(cache_dir, shared=shared)
    assert result["got"] is None
    assert any("skipping" in w for w in result["warnings"]), result
    assert get_data(cache_dir, "put:mine", shared=shared)["got"] == "mine"
