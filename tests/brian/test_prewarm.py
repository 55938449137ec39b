"""The support library and the kernels' precompiled header built in the background from the
adapter's import (``prewarm``): real processes, real compilers, empty caches.

A process that imports the adapter on an empty cache gets the same spikes as one that
builds everything in its first batch, and two such processes build each kernel, the
library and the precompiled header once between them. A process that exits right after the
import exits at once, leaves no compiler running, and leaves a cache that the next process
uses without a warning. A warm process starts no background build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from skipping import cannot_run
from test_support_library import CHILD, holders, library

import sobuild
from sobuild.brian_adapter.support_library import pch_carrier_spec
from sobuild.toolchains.detect import from_command

#: Imports the adapter and says whether it started a background build, then exits.
IMPORT_ONLY = """
import sobuild.brian_adapter
print("PREWARM", sobuild.brian_adapter.prewarm.thread is not None, flush=True)
"""

#: g++ behind a script that, with SLOW_CXX set, sleeps before each compile of a build
#: (ninja runs them in the cache's tmp/; the compiler's probes run elsewhere).
SLOW_GXX = """#!/bin/sh
case "$PWD" in */cache/tmp/*) [ -n "$SLOW_CXX" ] && sleep 300;; esac
exec g++ "$@"
"""


def start(cache_dir: Path, code: str = CHILD, cxx: str = "g++", **env: str
          ) -> subprocess.Popen:
    env = dict(os.environ, SOBUILD_CACHE_DIR=str(cache_dir), SOBUILD_CXX=cxx,
               SOBUILD_SQLITE_TIMEOUT="60", **env)
    for name in ("SOBUILD_BRIAN_PREWARM", "SOBUILD_PCH", "SLOW_CXX"):
        if name not in env or not env[name]:
            env.pop(name, None)
    return subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(child: subprocess.Popen) -> tuple[dict, str]:
    """The RESULT of a CHILD process, and what it wrote to stderr."""
    out, err = child.communicate(timeout=600)
    assert child.returncode == 0, err[-3000:]
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), err


def carrier_built(cache_dir: Path, cxx: str = "g++") -> bool:
    """Whether the background build ran here: only it builds the header's carrier kernel."""
    cache = sobuild.Cache(cache_dir, toolchain=from_command(cxx))
    try:
        return cache.lookup(pch_carrier_spec()) is not None
    finally:
        cache.flush()


def pchs(cache_dir: Path) -> list[Path]:
    return [p for p in (cache_dir / "pch").glob("*") if p.is_dir()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The spikes of a process that builds everything in its first batch (no prewarm)."""
    if shutil.which("g++") is None:
        cannot_run("needs g++")
    cache_dir = tmp_path_factory.mktemp("prewarm-reference")
    found, _ = finish(start(cache_dir, SOBUILD_BRIAN_PREWARM="0"))
    assert not carrier_built(cache_dir)
    assert found["synapses"] > 0 and len(found["i"]) > 0
    return found


def test_two_processes_on_an_empty_cache_build_everything_once(reference, tmp_path):
    children = [start(tmp_path), start(tmp_path)]
    assert [finish(child)[0] for child in children] == [reference, reference]
    assert carrier_built(tmp_path)
    assert len(holders(tmp_path)) == 1
    assert len(pchs(tmp_path)) == 1  # the carrier's header is the one the kernels read
    keys = list((tmp_path / "kernels").glob("*/*"))
    cache = sobuild.Cache(tmp_path)
    try:  # every kernel (the library, the carrier among them) was built by one of the two
        assert cache.store.counters()["builds"] == len(keys)
    finally:
        cache.flush()


def _compilers_of(path: Path) -> list[str]:
    """The command lines of living processes that name ``path``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in text:
            found.append(text)
    return found


def test_a_process_that_exits_at_once_leaves_a_cache_the_next_one_uses(reference, tmp_path):
    gxx = tmp_path / "slow-g++"
    gxx.write_text(SLOW_GXX)
    gxx.chmod(0o755)
    cache_dir = tmp_path / "cache"
    child = start(cache_dir, IMPORT_ONLY, str(gxx), SLOW_CXX="1")
    try:  # its compiles sleep for 300 s: an exit that waited for them would time out here
        out, err = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail("the process waited for its background build to exit")
    assert child.returncode == 0, err[-3000:]
    assert "PREWARM True" in out
    assert library(cache_dir, str(gxx)) is None
    deadline = time.monotonic() + 30  # ninja gets SIGTERM when its parent dies
    while _compilers_of(gxx) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _compilers_of(gxx) == []
    found, err = finish(start(cache_dir, cxx=str(gxx)))
    assert found == reference
    assert "Warning" not in err, err
    assert library(cache_dir, str(gxx)) is not None and carrier_built(cache_dir, str(gxx))


def test_a_warm_process_starts_no_background_build(reference, tmp_path):
    assert finish(start(tmp_path))[0] == reference
    warm = start(tmp_path, IMPORT_ONLY)
    out, err = warm.communicate(timeout=120)
    assert warm.returncode == 0, err[-3000:]
    assert "PREWARM False" in out
    empty = start(tmp_path / "empty", IMPORT_ONLY)
    out, _ = empty.communicate(timeout=120)
    assert "PREWARM True" in out
