"""An object file of a standalone project that another user planted in the cache is never
linked into the victim's program.

The objects of cpp_standalone projects are data entries of the cache (namespace
``brian2-standalone``), some under the same key in every project of a compiler and flags
(``brianlib/spikequeue.cpp``'s). The victim keeps her cache in a setgid directory its admin
made for the group, without SOBUILD_TRUST_GROUP. Mallory, a member, learns spikequeue's key
from a build in a cache of her own and, before the victim's first build, plants her object
under it: the real ``spikequeue.cpp`` plus her constructor, compiled with the project's
flags, so that it would link. The victim's build links none of it (her constructor never
runs in ``main``): it compiles its own objects, with a warning naming her directory, and gets
the spikes of Mallory's clean build.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sobuild.standalone.build import NAMESPACE
from sobuild.standalone.makefile import read_makefile
from sobuild.store import data

from .conftest import as_mallory, run_one_neuron, setgid_dir, with_constructor, worker_env

pytestmark = [pytest.mark.brian, pytest.mark.needs_root]

SPIKEQUEUE = "brianlib/spikequeue.cpp"


def object_line(project: Path, source: str) -> list[str]:
    """The words of the line of ``source``'s object in the project's build log (its state,
    its key, its name last)."""
    for line in (project / "sobuild_build.log").read_text().splitlines():
        if line.split()[-1:] == [source]:
            return line.split()
    raise AssertionError(f"{source} is not in the build log of {project}")


def mallory_entry(project: Path, source: str, marker: Path, workdir: Path) -> Path:
    """The data entry Mallory plants: ``source`` with her constructor, compiled as the
    project's makefile compiles it (beside a copy of its directory, for its includes)."""
    copy = workdir / Path(source).parent
    shutil.copytree(project / Path(source).parent, copy)
    evil = copy / "evil.cpp"
    evil.write_text(with_constructor((project / source).read_text(), marker))
    obj = workdir / "evil.o"
    subprocess.run(["g++", *read_makefile(project).compile_flags, "-c", str(evil), "-o",
                    str(obj)], cwd=project, check=True, timeout=300)
    entry = workdir / "entry"
    entry.write_bytes(data.encode(obj.read_bytes(), NAMESPACE, 0.0))
    entry.chmod(0o644)
    return entry


def test_an_object_another_member_planted_is_never_linked(open_dir, user_tmp):
    mallory = open_dir / "mallory"
    env = worker_env(SOBUILD_CACHE_DIR=str(mallory / "cache"), SOBUILD_CXX="g++")
    learnt = run_one_neuron("cpp_standalone", mallory / "spikes.npz", env, mallory / "project")
    assert learnt.returncode == 0, learnt.stderr[-3000:]
    key = object_line(mallory / "project", SPIKEQUEUE)[-2]
    marker = user_tmp / "mallory-ran"
    entry = mallory_entry(mallory / "project", SPIKEQUEUE, marker, mallory)

    cache = setgid_dir(open_dir / "group-cache")
    plant = as_mallory('mkdir -p "$1/data/$2" && cp "$3" "$1/data/$2/$4"',
                       str(cache), key[:2], str(entry), key)
    assert plant.returncode == 0, plant.stderr

    env["SOBUILD_CACHE_DIR"] = str(cache)
    victim = run_one_neuron("cpp_standalone", open_dir / "spikes.npz", env, open_dir / "project")
    assert not marker.exists(), "Mallory's object was linked into the victim's program"
    assert victim.returncode == 0, victim.stderr[-3000:]
    assert victim.spikes == learnt.spikes
    warning = "not linked but compiled again: " + str(cache / "data") + " belongs to another user"
    assert warning in victim.stderr, victim.stderr[-3000:]
    assert object_line(open_dir / "project", SPIKEQUEUE)[:1] == ["compiled"]
