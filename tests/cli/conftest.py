"""Fixtures of the CLI tests: a cache filled by real builds, and the CLI two ways.

``sobuild_cli`` runs a command through typer's CliRunner (in this process) and as a real
``sobuild`` subprocess (the installed console script): every test that takes it runs twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sobuild
from sobuild.cli import app

#: The console script of the environment the tests run in (pip install -e puts it there).
SOBUILD_SCRIPT = Path(sys.executable).parent / "sobuild"


def kernel_spec(i: int) -> sobuild.KernelSpec:
    """A small real C++ kernel; ``i`` makes its source (and key) distinct."""
    return sobuild.KernelSpec(
        source=f"void run(double* v, int32_t n) {{ for (int j = 0; j < n; j++) v[j] += {i}; }}",
        entry="void run(double* v, int32_t n)")


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


class Cli:
    """Run ``sobuild ARGS`` through CliRunner or as a subprocess, with the test's environment."""

    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, *args: str, env: dict[str, str] | None = None, input: str | None = None
                 ) -> Outcome:
        env = {**os.environ, **(env or {})}
        if self.mode == "runner":
            result = CliRunner().invoke(app, list(args), env=env, input=input)
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception
            return Outcome(result.exit_code, result.stdout, result.stderr)
        assert SOBUILD_SCRIPT.exists(), "pip install -e . puts the sobuild script beside python"
        proc = subprocess.run([str(SOBUILD_SCRIPT), *args], capture_output=True, text=True,
                              env=env, input=input if input is not None else "", timeout=300)
        return Outcome(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(params=["runner", "process"])
def sobuild_cli(request) -> Cli:
    return Cli(request.param)


@pytest.fixture
def cli_runner() -> Cli:
    """CliRunner only (in this process)."""
    return Cli("runner")


@pytest.fixture
def sobuild_process() -> Cli:
    """The real console script only (for what CliRunner cannot show, a terminal say)."""
    return Cli("process")


@dataclass
class Filled:
    """A cache with two shared objects (four kernels, two of them hit again) and a data entry."""

    path: Path
    specs: list[sobuild.KernelSpec]
    artifacts: list[str]
    keys: list[str]
    data_key: str


@pytest.fixture
def filled(cache_dir) -> Filled:
    cache = sobuild.Cache(cache_dir, jobs=2)
    specs = [kernel_spec(i) for i in range(4)]
    cache.load_many(specs)          # 4 misses, built as 2 translation units
    cache.load_many(specs[:2])      # 2 hits
    data_key = "d" * 32
    cache.put_data(data_key, b"a pickled value", namespace="brian2", seconds=1.5)
    cache.flush()
    artifacts = sorted(p.name for p in cache.layout.iter_artifact_dirs())
    keys = [cache.key(s) for s in specs]
    return Filled(cache_dir, specs, artifacts, keys, data_key)


def corrupt_index(cache_dir: Path) -> None:
    """Overwrite the index with garbage (its WAL too: sqlite would rebuild pages from it)."""
    for suffix in ("-wal", "-shm"):
        (cache_dir / f"index.sqlite{suffix}").unlink(missing_ok=True)
    (cache_dir / "index.sqlite").write_bytes(b"this is not a database" * 100)
