"""What sobuild writes into a standalone project's directory goes nowhere else.

A project directory may be shared (a setgid directory of the group, umask 002), so another
member can plant names in it before the build: symbolic links at the program's name and at
its build log's, a FIFO at the name a link wrote before renaming into place
(``.main.sobuild-link-<pid>``: she sees the pid in /proc). The victim's build writes through
no link (her ``~/.bashrc`` stays as it was), waits on no FIFO, and leaves the program and its
log as regular files.
"""

from __future__ import annotations

import os
import stat

import pytest

from .conftest import as_mallory, finish_one_neuron, setgid_dir, start_one_neuron, worker_env

pytestmark = [pytest.mark.brian, pytest.mark.needs_root]

PROGRAM, LOG = "main", "sobuild_build.log"
BASHRC = "export PATH=/usr/bin\n"


def test_a_build_writes_through_nothing_a_member_planted_in_the_project(open_dir, tmp_path):
    project = setgid_dir(open_dir / "project")
    bashrc = open_dir / "victim-home" / ".bashrc"
    bashrc.parent.mkdir()
    bashrc.write_text(BASHRC)
    for name in (PROGRAM, LOG):
        planted = as_mallory('ln -s "$1" "$2"', str(bashrc), str(project / name))
        assert planted.returncode == 0, planted.stderr
    env = worker_env(SOBUILD_CACHE_DIR=str(tmp_path / "cache"), SOBUILD_CXX="g++")
    victim = start_one_neuron("cpp_standalone", open_dir / "spikes.npz", env, project)
    fifo = project / f".{PROGRAM}.sobuild-link-{victim.pid}"
    planted = as_mallory('mkfifo "$1"', str(fifo))  # it imports Brian2 first: seconds
    assert planted.returncode == 0, planted.stderr
    run = finish_one_neuron(victim, open_dir / "spikes.npz", timeout=300)

    assert bashrc.read_text() == BASHRC
    assert run.returncode == 0, run.stderr[-3000:]
    for name in (PROGRAM, LOG):
        mode = os.lstat(project / name).st_mode
        assert stat.S_ISREG(mode), f"{name} is {stat.filemode(mode)}, not a regular file"
    assert (project / LOG).read_text().startswith("sobuild: ")
