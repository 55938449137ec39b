"""Fixtures shared by every test: a fresh cache directory per test, compilers present.

A test that cannot run here (not root, no /proc, no fork, no clang++, no tmpfs, no Brian2)
goes through ``cannot_run``: it skips, except under CI=true, where it fails (CI runs as
root on Linux with Brian2 installed, so everything runs there). Mark a test ``needs_root``,
``needs_proc``, ``needs_fork`` or ``brian`` for those four (the tests under tests/brian/
and tests/codegen_cache/ are marked ``brian`` by their conftest).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from skipping import IN_CI, cannot_run  # noqa: F401  (tests/ is on sys.path)

import sobuild


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_root: runs processes as other users (setuid); cannot run otherwise")
    config.addinivalue_line(
        "markers", "needs_proc: reads /proc/<pid>/stat (Linux); cannot run otherwise")
    config.addinivalue_line(
        "markers", "needs_fork: forks processes (os.fork); cannot run otherwise")


@functools.cache
def brian2_missing() -> str | None:
    """Why Brian2 cannot be imported here, or None if it can."""
    try:
        import brian2  # noqa: F401
    except ImportError as exc:
        return (f"Brian2 cannot be imported ({exc}): it needs Python >= 3.13 and "
                "pip install -e '.[brian]' (ci/test.sh makes such a .venv)")
    return None


def pytest_runtest_setup(item):
    """The ``needs_root``, ``needs_proc``, ``needs_fork`` and ``brian`` markers, checked
    before any fixture is made."""
    if item.get_closest_marker("needs_root") and (not hasattr(os, "geteuid")
                                                  or os.geteuid() != 0):
        cannot_run("runs processes as other users (setuid), which needs root")
    if item.get_closest_marker("needs_proc") and not os.path.exists("/proc/self/stat"):
        cannot_run("reads /proc/<pid>/stat (Linux)")
    if item.get_closest_marker("needs_fork") and not hasattr(os, "fork"):
        cannot_run("forks processes (os.fork)")
    if item.get_closest_marker("brian") and brian2_missing():
        cannot_run(brian2_missing())


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty cache directory, also set as SOBUILD_CACHE_DIR for subprocesses."""
    path = tmp_path / "cache"
    monkeypatch.setenv("SOBUILD_CACHE_DIR", str(path))
    monkeypatch.delenv("SOBUILD_SHARED_DIR", raising=False)
    return path


@pytest.fixture
def cache(cache_dir):
    c = sobuild.Cache(cache_dir)
    yield c
    c.flush()


@pytest.fixture
def clangxx():
    path = shutil.which("clang++")
    if path is None:
        cannot_run("clang++ is not installed (ci/test.sh installs it with apt-get)")
    return path


@pytest.fixture
def small_tmpfs() -> Iterator[Callable[[Path], Path]]:
    """``small_tmpfs(path)``: a 1 MiB tmpfs mounted at the new directory ``path`` (a disk
    that fills up for real), unmounted at teardown."""
    mounted = []

    def mount(path: Path) -> Path:
        path.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            cannot_run(f"cannot mount a small tmpfs (needs root and CAP_SYS_ADMIN): "
                       f"{proc.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=True)
