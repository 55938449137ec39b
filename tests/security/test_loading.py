"""What is loaded is what was checked: no swap between the check and dlopen, no library found
in place by a publish, no file another user planted in a private cache (issue 12: 2, 3, 4).

Attackers are real other users (setuid children); their libraries are real shared objects
whose constructor leaves a marker and whose kernel computes wrong numbers.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from cluster.conftest import expected_values

from sobuild.store.layout import Layout

from .conftest import (
    ALICE,
    GROUP_GID,
    MALLORY,
    as_mallory,
    evil_library,
    finish,
    group_cache,
    gxx_wrapper,
    run_worker,
    setgid_dir,
    start_worker,
    wait_for,
    worker_env,
)

GXX = shutil.which("g++")
ALICE_IN_GROUP = f"{ALICE}:{GROUP_GID}:{GROUP_GID}"

#: For each compile when $GATE_DIR is set: write $GATE_DIR/compiling, then wait for
#: $GATE_DIR/go (ten minutes at most).
GATE = """
if [ -n "$GATE_DIR" ]; then
  : > "$GATE_DIR/compiling"
  n=0
  while [ ! -e "$GATE_DIR/go" ] && [ $n -lt 6000 ]; do sleep 0.1; n=$((n + 1)); done
fi
"""


# -- 2: the verified artifact is swapped between the check and the load ---------------------

@pytest.mark.needs_root
def test_artifact_swapped_while_the_batch_compiles_is_not_loaded(open_dir, user_tmp):
    """Alice's batch: kernel 0 is a hit, kernel 1 compiles (slowly). Meanwhile Mallory, in
    the group, renames kernel 0's verified artifact directory and puts a symbolic link to a
    directory of her own in its place. What Alice gets for kernel 0 is what was checked."""
    cache, env = group_cache(open_dir, user_tmp)
    env["SOBUILD_CXX"] = str(gxx_wrapper(open_dir / "gated-g++", GATE))
    first = run_worker(cache, env, kernels=1, tag="swap", user=ALICE_IN_GROUP, umask="002")
    assert first["values"] == expected_values(1)
    (artifact,) = Layout(cache).iter_artifact_dirs()

    marker = user_tmp / "mallory-ran"
    evil_dir = open_dir / "mallory-artifact"
    evil_library(evil_dir, marker)
    gate = user_tmp / "gate"
    gate.mkdir(mode=0o777)
    gate.chmod(0o777)
    victim = start_worker(cache, {**env, "GATE_DIR": str(gate)}, kernels=2, tag="swap",
                          user=ALICE_IN_GROUP, umask="002")
    try:
        wait_for(gate / "compiling", victim)  # kernel 0 was found; kernel 1 compiles
        swap = as_mallory('mv "$1" "$1.aside" && ln -s "$2" "$1"', str(artifact), str(evil_dir))
        assert swap.returncode == 0, swap.stderr
        assert artifact.is_symlink() and artifact.resolve() == evil_dir
    finally:
        (gate / "go").touch()
    report = finish(victim, timeout=300)
    assert not marker.exists(), "Mallory's constructor ran as Alice"
    assert report["values"] == expected_values(2), report


# -- 3: a publish finds the artifact directory already there ----------------------------------

@pytest.mark.needs_root
def test_planted_artifact_of_another_user_is_not_loaded_by_a_publish(cache_dir, open_dir,
                                                                      tmp_path):
    """Mallory (here: files chowned to her, as a directory she could write would allow) plants
    ``artifacts/<d>/lib.so`` under the digest ``d`` the victim's build will produce, learnt
    by building the same kernel in a cache of her own."""
    env = worker_env(SOBUILD_JOBS="1", SOBUILD_CXX=GXX)
    scratch = run_worker(tmp_path / "mallory-cache", env, kernels=2, tag="planted")
    assert scratch["values"] == expected_values(2)
    (learnt,) = Layout(tmp_path / "mallory-cache").iter_artifact_dirs()
    digest = learnt.name

    marker = open_dir / "mallory-ran"
    planted = Layout(cache_dir).artifact_dir(digest)
    evil_library(planted, marker)
    shutil.copy(learnt / "meta.json", planted / "meta.json")
    os.chown(planted / "meta.json", MALLORY, GROUP_GID)
    evil_bytes = (planted / "lib.so").read_bytes()

    report = run_worker(cache_dir, env, kernels=2, tag="planted")
    assert not marker.exists(), "the planted library ran"
    assert report["values"] == expected_values(2), report
    # the victim's build gave the planted digest (so its publish met the planted directory)
    (published,) = Layout(cache_dir).iter_artifact_dirs()
    assert published.name == digest
    library = published / "lib.so"
    assert library.stat().st_uid == os.geteuid() and library.read_bytes() != evil_bytes
    again = run_worker(cache_dir, env, kernels=2, tag="planted")
    assert again["values"] == expected_values(2) and not marker.exists()


@pytest.mark.needs_root
def test_planted_artifact_of_a_group_member_is_not_loaded_by_a_publish(open_dir, user_tmp):
    """In a group cache Mallory's files are trusted by owner: she plants a directory under
    the digest of Alice's next build (and removes its key so Alice builds); the bytes are
    what give her away."""
    cache, env = group_cache(open_dir, user_tmp)
    env["SOBUILD_CXX"] = GXX
    alice = {"user": ALICE_IN_GROUP, "umask": "002"}
    first = run_worker(cache, env, kernels=2, tag="planted-group", **alice)
    assert first["values"] == expected_values(2)
    layout = Layout(cache)
    (artifact,) = layout.iter_artifact_dirs()
    keys = [str(p) for p in layout.iter_kernel_files()]
    assert len(keys) == 2

    marker = user_tmp / "mallory-ran"
    evil_dir = open_dir / "mallory-lib"
    evil_library(evil_dir, marker)
    plant = as_mallory('dir="$1"; shift; lib="$1"; shift\n'
                       'rm -f "$@"\n'
                       'mv "$dir" "$dir.gone"\n'
                       'mkdir "$dir" && cp "$dir.gone/meta.json" "$lib" "$dir/"',
                       str(artifact), str(evil_dir / "lib.so"), *keys)
    assert plant.returncode == 0, plant.stderr
    assert (artifact / "lib.so").stat().st_uid == MALLORY

    report = run_worker(cache, env, kernels=2, tag="planted-group", **alice)
    assert not marker.exists(), "Mallory's library ran as Alice"
    assert report["values"] == expected_values(2), report
    assert (artifact / "lib.so").stat().st_uid == ALICE  # the same digest, Alice's bytes
    assert {str(p) for p in layout.iter_kernel_files()} == set(keys)


# -- 4: a private cache in a group directory stays private --------------------------------------

def _writable_by_others(root: Path) -> list[str]:
    found = []
    for where, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            path = Path(where) / name
            st = path.lstat()
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o022:
                found.append(f"{path.relative_to(root)} {stat.filemode(st.st_mode)}")
    return found


@pytest.mark.needs_root
def test_private_cache_in_a_group_directory_stays_private(open_dir, user_tmp):
    """Alice (umask 002, no SOBUILD_TRUST_GROUP) keeps her own cache in the group's setgid
    directory: nothing sobuild creates there is group-writable. One that an older sobuild left
    group-writable is made private when next used, and what Mallory put in it is refused."""
    cache = setgid_dir(open_dir / "group") / "alice-cache"
    env = worker_env(home=user_tmp, TMPDIR=str(user_tmp), SOBUILD_JOBS="1", SOBUILD_CXX=GXX)
    alice = {"user": ALICE_IN_GROUP, "umask": "002"}
    first = run_worker(cache, env, kernels=2, tag="private", **alice)
    assert first["values"] == expected_values(2)
    assert first["root"] == str(cache)
    assert _writable_by_others(cache) == []

    # as an older sobuild left it: every directory group-writable (setgid, as the parent)
    for where, dirs, _ in os.walk(cache):
        for name in [".", *dirs]:
            (Path(where) / name).chmod(0o2775)
    layout = Layout(cache)
    (artifact,) = layout.iter_artifact_dirs()
    marker = user_tmp / "mallory-ran"
    evil_dir = open_dir / "mallory-lib"
    evil_library(evil_dir, marker)
    plant = as_mallory('mv "$1/lib.so" "$1/lib.so.old" && cp "$2" "$1/lib.so"',
                       str(artifact), str(evil_dir / "lib.so"))
    assert plant.returncode == 0, plant.stderr

    second = run_worker(cache, env, kernels=2, tag="private", **alice)
    assert not marker.exists(), "Mallory's library ran as Alice"
    assert second.get("error") == "UntrustedEntryError", second
    assert "belongs to another user" in second["message"]
    for path in (cache, layout.kernels, artifact.parent.parent, artifact.parent, artifact):
        mode = path.stat().st_mode
        assert not mode & 0o022, f"{path} is still {stat.filemode(mode)}"
