"""Helpers of the cluster tests: cache users in real processes (see worker.py), other users.

Tests that start processes as other users are marked ``needs_root`` (see tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import xxhash

from sobuild.store.layout import Layout

WORKER = Path(__file__).with_name("worker.py")
NOBODY = 65534
#: Test users and their group, made up (setuid needs no /etc/passwd entry).
GROUP_GID, ALICE, BOB, MALLORY = 61000, 61001, 61002, 61003

def expected_values(count: int, first: int = 0) -> list[list[float]]:
    """What worker.py's kernels i = first.. compute from [1, 2, 3]."""
    return [[2.0 + i, 4.0 + i, 6.0 + i] for i in range(first, first + count)]


def worker_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a worker: no inherited SOBUILD_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOBUILD_")}
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra)
    return env


def worker_argv(cache: Path | str, **opts) -> list[str]:
    argv = [sys.executable, str(WORKER), "--cache", str(cache)]
    for name, value in opts.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def start_worker(cache: Path | str, env: dict[str, str] | None = None, **opts) -> subprocess.Popen:
    """A worker in a session of its own (so a kill takes its compiler and ninja along)."""
    return subprocess.Popen(worker_argv(cache, **opts), env=env or worker_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> dict:
    """Wait for a worker and return its report; fails the test if it printed none."""
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"worker failed ({proc.returncode}):\n{out}\n{err}"
    report = json.loads(lines[-1])
    report["stderr"] = err
    return report


def run_worker(cache: Path | str, env: dict[str, str] | None = None, **opts) -> dict:
    return finish(start_worker(cache, env, **opts))


def gxx_wrapper(path: Path, on_compile: str) -> Path:
    """An executable ``path`` that runs g++, after the shell code ``on_compile`` for each
    compile (not for a probe, which writes to /dev/null or, the linker probe, into a
    ``sobuild-linker-`` directory); ``$arg`` is the file it writes."""
    path.write_text(f"""#!/bin/sh
prev=""
for arg in "$@"; do
  if [ "$prev" = "-o" ] && [ "$arg" != /dev/null ]; then
    case "$arg" in
      */sobuild-linker-*/*) ;;
      *)
{textwrap.indent(textwrap.dedent(on_compile).strip(), "        ")}
        ;;
    esac
  fi
  prev="$arg"
done
exec '{shutil.which("g++")}' "$@"
""")
    path.chmod(0o755)
    return path


def process_running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie nobody reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until ``path`` exists; the test fails if the worker ``proc`` ends first, or
    after ``timeout`` s (and the worker's session is killed)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the worker ended before {path.name} appeared:\n{out}\n{err}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"{path} never appeared")
        time.sleep(0.02)


def setgid_dir(path: Path) -> Path:
    """``path`` made (if missing) as an admin makes a directory for the group: root's, of
    GROUP_GID, setgid, mode 2775."""
    path.mkdir(exist_ok=True)
    os.chown(path, 0, GROUP_GID)
    path.chmod(0o2775)
    return path


def group_cache(open_dir: Path, user_tmp: Path) -> tuple[Path, dict[str, str]]:
    """A group cache (a ``setgid_dir``) and the environment of its workers."""
    env = worker_env(home=user_tmp, TMPDIR=str(user_tmp), SOBUILD_TRUST_GROUP="1",
                     SOBUILD_JOBS="1")
    return setgid_dir(open_dir / "group-cache"), env


def assert_nothing_half_written(layout: Layout) -> None:
    """Every artifact in place is whole and matches its digest; every key names one."""
    digests = set()
    for directory in layout.iter_artifact_dirs():
        for name in ("lib.so", "lib.cpp", "meta.json", "build.log"):
            assert (directory / name).is_file(), f"{directory} lacks {name}"
        assert xxhash.xxh3_128_hexdigest((directory / "lib.so").read_bytes()) == directory.name
        assert json.loads((directory / "meta.json").read_text())["digest"] == directory.name
        digests.add(directory.name)
    for key_file in layout.iter_kernel_files():
        assert json.loads(key_file.read_text())["artifact"] in digests


@pytest.fixture
def open_dir():
    """A directory that other users can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="sobuild-cluster-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def user_tmp(open_dir):
    """A TMPDIR every user may write (g++'s temporaries, the private fallback cache)."""
    path = open_dir / "usertmp"
    path.mkdir()
    path.chmod(0o1777)
    return path
