"""The Brian2 support library that another user planted in a group cache is never loaded.

Every Brian2 kernel calls the runtime support library (``brian_adapter/support_library.py``),
a kernel of the cache under one key per toolchain. Mallory learns that key from a run in a
cache of her own and plants her library (a constructor leaving a marker) under it in the
group's setgid cache directory. The victim, who does not trust the group, uses that cache as
her read-only shared tier (she gets the reference spikes, with a warning, and builds her own
library) or as her cache (refused with an error naming the entry, or built again with a
warning): either way Mallory's library is never dlopened.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xxhash

from sobuild.store.layout import Layout

from .conftest import as_mallory, evil_library, run_one_neuron, setgid_dir, worker_env

pytestmark = [pytest.mark.brian, pytest.mark.needs_root]

#: A header only the support library includes (``support_library._SUPPORT_HEADER_FILES``).
SUPPORT_HEADER = "sobuild_dynamic_array.h"


def support_library_key(cache: Path) -> str:
    """The key of the support library in ``cache``: the kernel of the artifact whose
    meta.json lists the support library's own header."""
    layout = Layout(cache)
    (key,) = [kernel["key"] for directory in layout.iter_artifact_dirs()
              for meta in [json.loads((directory / "meta.json").read_text())]
              if SUPPORT_HEADER in meta["headers"] for kernel in meta["kernels"]]
    return key


@pytest.fixture(scope="module")
def learnt(tmp_path_factory):
    """What Mallory learns from a run in a cache of her own: the support library's key, and
    the spikes (the reference)."""
    mallory = tmp_path_factory.mktemp("mallory")
    env = worker_env(SOBUILD_CACHE_DIR=str(mallory / "cache"), SOBUILD_CXX="g++")
    run = run_one_neuron("sobuild", mallory / "spikes.npz", env)
    assert run.returncode == 0, run.stderr[-3000:]
    return support_library_key(mallory / "cache"), run.spikes


@pytest.mark.parametrize("tier", ["shared", "own"])
def test_a_support_library_another_member_planted_is_never_loaded(learnt, open_dir, user_tmp,
                                                                  tier):
    key, reference = learnt
    marker = user_tmp / "mallory-ran"
    library = evil_library(open_dir / "mallory", marker)
    digest = xxhash.xxh3_128_hexdigest(library.read_bytes())
    cache = setgid_dir(open_dir / "group-cache")
    layout = Layout(cache)
    plant = as_mallory('mkdir -p "$1" "$(dirname "$3")"\n'
                       'cp "$2" "$1/lib.so"\n'
                       'printf \'{"artifact": "%s"}\' "$4" > "$3"',
                       str(layout.artifact_dir(digest)), str(library),
                       str(layout.kernel_file(key)), digest)
    assert plant.returncode == 0, plant.stderr

    env = worker_env(SOBUILD_CXX="g++")
    if tier == "shared":
        env.update(SOBUILD_CACHE_DIR=str(open_dir / "victim-cache"), SOBUILD_SHARED_DIR=str(cache))
    else:
        env.update(SOBUILD_CACHE_DIR=str(cache))
    victim = run_one_neuron("sobuild", open_dir / "spikes.npz", env)
    assert not marker.exists(), "Mallory's support library was loaded by the victim"
    assert "belongs to another user" in victim.stderr, victim.stderr[-3000:]
    if victim.returncode == 0:  # it built a library of its own
        assert victim.spikes == reference
    else:  # refused, naming the entry: only in a cache that is the victim's own
        assert tier == "own" and "UntrustedEntryError" in victim.stderr, victim.stderr[-3000:]
