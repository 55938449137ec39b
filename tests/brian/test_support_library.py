"""The runtime support library on the cold path: real processes, real compilers, one cache.

Brian2's dynamic arrays and spike queues live in a library built once per toolchain and kept
in the cache (``support_library``). A process that finds it missing, corrupt or built by
another compiler builds its own and gives the same spikes; two processes that need it at
once build it once between them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from skipping import cannot_run

import sobuild
from sobuild.brian_adapter.support_library import support_spec
from sobuild.toolchains.detect import from_command

#: A network whose kernels call the library: synapses created from a condition, a spike
#: queue, a spike monitor; the spikes and the synapse count printed as JSON.
CHILD = """
import json
import sobuild.brian_adapter
from brian2 import NeuronGroup, SpikeMonitor, Synapses, ms, prefs, run, seed
prefs.codegen.target = "sobuild"
prefs["codegen.runtime.sobuild.codegen_cache"] = False
seed(7)
G = NeuronGroup(30, "dv/dt = (1.5 - v) / (10*ms) : 1", threshold="v > 1", reset="v = 0",
                method="exact")
G.v = "rand()"
S = Synapses(G, G, "w : 1", on_pre="v += w", delay=1 * ms)
S.connect("i != j", p=0.2)
S.w = 0.02
M = SpikeMonitor(G)
run(60 * ms)
print("RESULT " + json.dumps({"synapses": len(S), "i": M.i[:].tolist(),
                              "t": [float(x) for x in M.t_[:]]}))
"""


def start(cache_dir: Path, cxx: str = "g++") -> subprocess.Popen:
    env = dict(os.environ, SOBUILD_CACHE_DIR=str(cache_dir), SOBUILD_CXX=cxx)
    return subprocess.Popen([sys.executable, "-c", CHILD], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def result(child: subprocess.Popen) -> dict:
    out, err = child.communicate(timeout=600)
    assert child.returncode == 0, err[-3000:]
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def run_child(cache_dir: Path, cxx: str = "g++") -> dict:
    return result(start(cache_dir, cxx))


def library(cache_dir: Path, cxx: str = "g++") -> Path | None:
    """The support library the cache holds for ``cxx`` (verified), or None."""
    cache = sobuild.Cache(cache_dir, toolchain=from_command(cxx))
    try:
        return cache.lookup(support_spec())
    finally:
        cache.flush()


def holders(cache_dir: Path) -> list[Path]:
    """The artifact directories on disk holding g++'s support library (this process may
    keep a library it loaded: only the files tell what another process will find)."""
    cache = sobuild.Cache(cache_dir, toolchain=from_command("g++"))
    try:
        key = cache.key(support_spec())
    finally:
        cache.flush()
    return [d for d in (cache_dir / "artifacts").glob("*/*")
            if (d / "meta.json").is_file() and key in (d / "meta.json").read_text()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The spikes of a first process on an empty cache (which builds the library)."""
    if shutil.which("g++") is None:
        cannot_run("needs g++")
    cache_dir = tmp_path_factory.mktemp("support-reference")
    found = run_child(cache_dir)
    assert len(holders(cache_dir)) == 1
    assert found["synapses"] > 0 and len(found["i"]) > 0
    return found


def test_a_missing_library_is_built_again(reference, tmp_path):
    run_child(tmp_path)
    (held,) = holders(tmp_path)
    shutil.rmtree(held)
    assert run_child(tmp_path) == reference
    assert [(d / "lib.so").is_file() for d in holders(tmp_path)] == [True]


def test_a_corrupt_library_is_never_loaded_and_is_built_again(reference, tmp_path):
    run_child(tmp_path)
    (held,) = holders(tmp_path)
    lib = held / "lib.so"
    content = bytearray(lib.read_bytes())
    content[len(content) // 2] ^= 0xFF  # same size, other bytes: only the digest tells
    lib.chmod(0o644)
    lib.write_bytes(bytes(content))
    assert run_child(tmp_path) == reference
    (rebuilt,) = holders(tmp_path)
    assert (rebuilt / "lib.so").read_bytes() != bytes(content)


def test_another_toolchain_builds_its_own(reference, tmp_path):
    if shutil.which("clang++") is None:
        cannot_run("needs clang++")
    run_child(tmp_path, "g++")
    assert library(tmp_path, "clang++") is None  # g++'s is not clang++'s
    assert run_child(tmp_path, "clang++") == reference
    gcc_lib, clang_lib = library(tmp_path, "g++"), library(tmp_path, "clang++")
    assert gcc_lib is not None and clang_lib is not None and gcc_lib != clang_lib
    meta = json.loads((clang_lib.parent / "meta.json").read_text())
    assert "clang" in json.dumps(meta).lower()


def test_two_processes_needing_it_at_once_build_it_once(reference, tmp_path):
    children = [start(tmp_path), start(tmp_path)]
    assert [result(child) for child in children] == [reference, reference]
    assert len(holders(tmp_path)) == 1
    keys = list((tmp_path / "kernels").glob("*/*"))
    cache = sobuild.Cache(tmp_path)
    try:  # every kernel, the library among them, was built by one of the two
        assert cache.store.counters()["builds"] == len(keys)
    finally:
        cache.flush()
