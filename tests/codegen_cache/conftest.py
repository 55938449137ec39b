"""Fixtures of the codegen-cache tests. Every test here is marked ``brian``: without Brian2 it
is skipped, and fails under CI=true (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MODEL = HERE / "model.py"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.brian)


@pytest.fixture
def codegen(cache_dir):
    """The codegen_cache module, with this process's Brian2 cache in ``cache_dir``."""
    from brian2 import prefs
    from brian2.utils.logger import BrianLogger

    from sobuild.brian_adapter import codegen_cache

    BrianLogger.suppress_name("unused_brian_object")  # the tests' groups are never run
    codegen_cache._warned.clear()  # each test sees its own once-only warnings

    saved = {name: prefs[name] for name in ("codegen.runtime.sobuild.cache_dir",
                                            "codegen.runtime.sobuild.codegen_cache")}
    prefs["codegen.runtime.sobuild.cache_dir"] = str(cache_dir)
    prefs["codegen.runtime.sobuild.codegen_cache"] = True
    yield codegen_cache
    for name, value in saved.items():
        prefs[name] = value


def counters(cache_dir: Path) -> dict[str, float]:
    """The counters recorded in the index of ``cache_dir``."""
    import sobuild

    cache = sobuild.Cache(cache_dir)
    return cache.store.counters()


def _run_model(cache_dir: Path, out: Path, *, enabled: bool = True, hash_seed: str = "0",
              extra_env: dict | None = None, args: tuple = (), script: Path = MODEL) -> dict:
    """Run ``script`` (model.py) in a fresh process on ``cache_dir``; its JSON result, and
    counter deltas."""
    before = counters(cache_dir)
    env = {**os.environ, "SOBUILD_CACHE_DIR": str(cache_dir), "PYTHONHASHSEED": hash_seed,
           "SOBUILD_CODEGEN_CACHE": "1" if enabled else "0", **(extra_env or {})}
    proc = subprocess.run([sys.executable, str(script), str(out), *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = counters(cache_dir)
    result = json.loads(out.read_text())
    result["stderr"] = proc.stderr
    result["counters"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return result


@pytest.fixture
def run_model():
    """``run_model(cache_dir, out_json, enabled=True, hash_seed="0", args=(), script=MODEL)``:
    model.py (or ``script``) in a fresh process; its result with ``counters`` (what that
    process added) and ``stderr``."""
    return _run_model
