"""Helpers of the security tests: attacks made by other users, in real processes.

The cluster tests' helpers (users, workers, reachable directories) are re-exported here.
A test that cannot run (not root, no /proc) skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cluster.conftest import (  # noqa: F401  (fixtures and helpers for the tests here)
    ALICE,
    BOB,
    GROUP_GID,
    MALLORY,
    finish,
    open_dir,
    run_worker,
    start_worker,
    user_tmp,
    worker_env,
)

IN_CI = os.environ.get("CI") == "true"


def cannot_run(reason: str) -> None:
    """Skip the test, or fail it under CI=true (CI runs as root on Linux: everything runs)."""
    if IN_CI:
        pytest.fail(f"cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def as_root() -> None:
    """For tests that start processes as other users (setuid needs root)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        cannot_run("runs processes as other users (setuid), which needs root")


needs_root = pytest.mark.usefixtures("as_root")

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
