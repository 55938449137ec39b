"""Helpers of the security tests: attacks made by other users, in real processes.

The cluster tests' helpers (users, workers, reachable directories) are re-exported here.
Tests that start processes as other users are marked ``needs_root`` (see tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster.conftest import (  # noqa: F401  (fixtures and helpers for the tests here)
    ALICE,
    BOB,
    GROUP_GID,
    MALLORY,
    finish,
    group_cache,
    gxx_wrapper,
    open_dir,
    process_running,
    run_worker,
    setgid_dir,
    start_worker,
    user_tmp,
    wait_for,
    worker_env,
)


class CountingCompiler:
    """A g++ wrapper in ``directory`` that counts its compiles, and the environment of
    workers using it (with ``env``)."""

    def __init__(self, directory: Path, **env: str):
        self.log = directory / "compiles.log"
        path = gxx_wrapper(directory / "counting-g++", f"""echo "$arg" >> '{self.log}'""")
        self.env = worker_env(SOBUILD_CXX=str(path), **env)

    def take(self) -> int:
        """Compiles since the last call."""
        if not self.log.exists():
            return 0
        count = len(self.log.read_text().splitlines())
        self.log.unlink()
        return count


#: Prepended to the code of ``start_as``: ``drop_privileges()`` becomes $AS_USER.
_AS_USER = """
import os
def drop_privileges():
    uid, gid, *rest = os.environ["AS_USER"].split(":")
    os.setgroups([int(g) for g in rest[0].split(",")] if rest and rest[0] else [])
    os.setgid(int(gid))
    os.setuid(int(uid))
"""


def start_as(user: str, code: str, *args: str, **env: str) -> subprocess.Popen:
    """``python -c code args`` that becomes ``user`` ("UID:GID[:G1,G2]") where it calls
    ``drop_privileges()``: it starts as root (the interpreter lives under /root), so it
    imports all it needs first, as worker.py does. Text pipes for stdout and stderr."""
    return subprocess.Popen([sys.executable, "-c", _AS_USER + code, *args],
                            env={**os.environ, **env, "AS_USER": user},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


#: Mallory's constructor: whatever it is compiled into writes the file @MARKER@ when it is
#: loaded or run.
MALLORY_CONSTRUCTOR = r"""
#include <cstdio>
__attribute__((constructor)) static void mallory_was_here() {
    FILE* f = fopen("@MARKER@", "w");
    if (f) fclose(f);
}
"""

#: Mallory's library: it runs her constructor on dlopen, and every kernel it is asked for
#: writes -666 instead of computing.
EVIL_SOURCE = r"""
#include <cstdint>
static void evil(double* v, int32_t n) { for (int32_t i = 0; i < n; i++) v[i] = -666; }
extern "C" void* sobuild_lookup(const char*) { return (void*)&evil; }
""" + MALLORY_CONSTRUCTOR


def with_constructor(source: str, marker: Path) -> str:
    """``source`` with Mallory's constructor appended, writing ``marker``."""
    return source + MALLORY_CONSTRUCTOR.replace("@MARKER@", str(marker))


def evil_library(directory: Path, marker: Path, owner: int = MALLORY) -> Path:
    """Mallory's ``directory/lib.so`` (owned by her, readable by all)."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "evil.cpp"
    source.write_text(EVIL_SOURCE.replace("@MARKER@", str(marker)))
    library = directory / "lib.so"
    subprocess.run([shutil.which("g++"), "-shared", "-fPIC", "-O1", "-o", str(library),
                    str(source)], check=True, timeout=120)
    for path in (directory, source, library):
        os.chown(path, owner, GROUP_GID)
    directory.chmod(0o755)
    library.chmod(0o755)
    return library


def as_mallory(script: str, *args: str) -> subprocess.CompletedProcess:
    """A shell script run by Mallory, a member of the group (umask 002)."""
    return subprocess.run(["/bin/sh", "-ec", script, "mallory", *args], capture_output=True,
                          text=True, timeout=60, user=MALLORY, group=GROUP_GID,
                          extra_groups=[GROUP_GID], umask=0o002)


# -- a victim's Brian2 process ----------------------------------------------------------------

#: Brian2's one-neuron example (a few spikes in 100 ms, a spike monitor): a small real model.
ONE_NEURON = Path(__file__).resolve().parents[2] / "examples" / "one_neuron.py"


@dataclass
class BrianRun:
    """How a victim's run of the example ended: its exit status, its stderr (warnings,
    errors) and the spikes it recorded (None when it failed)."""

    returncode: int
    stderr: str
    spikes: tuple[list, list] | None


def start_one_neuron(target: str, out: Path, env: dict[str, str],
                     project: Path | None = None) -> subprocess.Popen:
    """The example on ``target`` (``project``: cpp_standalone's project directory) in a
    session of its own, its spikes saved to ``out`` (.npz). The adapter is imported at
    start-up (``SOBUILD_BRIAN_AUTOLOAD``), so cpp_standalone builds through sobuild."""
    env = {**env, "SOBUILD_BRIAN_AUTOLOAD": "1"}
    argv = [sys.executable, str(ONE_NEURON), target, "100ms", "--quiet", "--out", str(out)]
    if project is not None:
        argv += ["--standalone-dir", str(project)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def finish_one_neuron(proc: subprocess.Popen, out: Path, timeout: float = 300) -> BrianRun:
    """Wait for ``start_one_neuron``'s process (the test fails if it hangs past ``timeout``)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"the victim's Brian2 run hung for {timeout:g} s:\n{err[-3000:]}")
    if proc.returncode != 0:
        return BrianRun(proc.returncode, err, None)
    import numpy as np

    with np.load(out) as arrays:
        spikes = (arrays["spike_i"].tolist(), arrays["spike_t"].tolist())
    assert spikes[0], "the neuron should spike: nothing would be compared"
    return BrianRun(0, err, spikes)


def run_one_neuron(target: str, out: Path, env: dict[str, str],
                   project: Path | None = None) -> BrianRun:
    """``start_one_neuron`` and ``finish_one_neuron``."""
    return finish_one_neuron(start_one_neuron(target, out, env, project), out)
