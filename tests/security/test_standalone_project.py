"""What sobuild writes into a standalone project's directory goes nowhere else.

A project directory may be shared (a setgid directory of the group, umask 002), so another
member can plant names in it before the build: a symbolic link at the program's name, at its
build log's or at the name a link writes before renaming into place, or a FIFO there. The
victim's build writes neither through a link (her ``~/.bashrc`` stays as it was) nor into a
FIFO (it would wait forever), and leaves the program and its log as regular files.
"""

from __future__ import annotations

import os
import stat

import pytest

from .conftest import as_mallory, finish_one_neuron, run_one_neuron, setgid_dir, start_one_neuron, worker_env

pytestmark = [pytest.mark.brian, pytest.mark.needs_root]

PROGRAM, LOG = "main", "sobuild_build.log"


def link_temporary(pid: int) -> str:
    """The name under which sobuild once linked the program (in the project, by pid)."""
    return f".{PROGRAM}.sobuild-link-{pid}"


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A cache holding the example's objects, and the spikes of a project built with it."""
    cache = tmp_path_factory.mktemp("standalone-cache")
    env = worker_env(SOBUILD_CACHE_DIR=str(cache), SOBUILD_CXX="g++")
    first = run_one_neuron("cpp_standalone", cache / "spikes.npz", env,
                           tmp_path_factory.mktemp("project"))
    assert first.returncode == 0, first.stderr[-3000:]
    return env, first.spikes


@pytest.mark.parametrize("planted", ["links", "fifos"])
def test_a_build_writes_through_nothing_a_member_planted_in_the_project(warm, open_dir, planted):
    env, reference = warm
    project = setgid_dir(open_dir / "project")
    home = open_dir / "victim-home"
    home.mkdir()
    bashrc = home / ".bashrc"
    bashrc.write_text("export PATH=/usr/bin\n")
    if planted == "links":  # before the build, and (for the pid) as soon as it starts
        plant, early, late = 'ln -s "$1" "$2"', [PROGRAM, LOG], [link_temporary]
    else:
        plant, early, late = 'mkfifo "$2"', [LOG], [link_temporary]
    for name in early:
        assert as_mallory(plant, str(bashrc), str(project / name)).returncode == 0
    victim = start_one_neuron("cpp_standalone", open_dir / "spikes.npz", env, project)
    for name in late:
        assert as_mallory(plant, str(bashrc), str(project / name(victim.pid))).returncode == 0
    run = finish_one_neuron(victim, open_dir / "spikes.npz", timeout=120)

    assert bashrc.read_text() == "export PATH=/usr/bin\n"
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.spikes == reference
    for name in (PROGRAM, LOG):
        mode = os.lstat(project / name).st_mode
        assert stat.S_ISREG(mode), f"{name} is {stat.filemode(mode)}, not a regular file"
