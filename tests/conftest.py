"""Fixtures shared by every test: a fresh cache directory per test, compilers present."""

from __future__ import annotations

import shutil

import pytest

import sobuild


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_clang: skipped when clang++ is not installed")


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
        pytest.skip("clang++ is not installed (ci/test.sh installs it with apt-get)")
    return path
