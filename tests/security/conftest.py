"""Helpers of the security tests: attacks made by other users, in real processes.

The cluster tests' helpers (users, workers, reachable directories) are re-exported here.
Tests that start processes as other users are marked ``needs_root`` (see tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
