"""Precompiled headers: a heavy prologue is parsed once per cache, not once per model.

Real g++ and ninja. A unit whose kernels include C++ containers is compiled with a
precompiled header of its head, built in the same ninja run the first time and kept in
``<cache>/pch/<key>/``; later models with the same include list use it. A lean kernel gets
none; a missing, corrupt or foreign one is never used: it is built again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xxhash

import sobuild
from sobuild import BuildError, KernelSpec
from sobuild.compilation.pch import GUARD, plan, scan
from sobuild.compilation.translation_unit import split_source
from sobuild.store.store import Store
from sobuild.store.verify import verify
from sobuild.toolchains.detect import from_command

from .kernels import SCALE_ENTRY, scale_spec

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

#: A kernel whose prologue is heavy: a C++ container.
HEAVY_SOURCE = """
#include <cmath>
#include <vector>
void run(double* v, int32_t n) {
    std::vector<double> w(v, v + n);
    for (int32_t i = 0; i < n; i++) v[i] = std::sqrt(w[i]) * SCALE;
}
"""


def heavy_spec(scale: float, **changes) -> KernelSpec:
    """sqrt(v) * scale through a std::vector, in place."""
    fields = {"source": HEAVY_SOURCE.replace("SCALE", repr(float(scale))), "entry": SCALE_ENTRY,
              "flags": ("-O2",)}
    fields.update(changes)
    return KernelSpec(**fields)


@pytest.fixture(scope="module")
def gxx():
    return from_command("g++")


@pytest.fixture
def gcache(cache_dir, gxx, monkeypatch):
    """A cache on g++, with SOBUILD_PCH unset (auto)."""
    monkeypatch.delenv("SOBUILD_PCH", raising=False)
    c = sobuild.Cache(cache_dir, toolchain=gxx)
    yield c
    c.flush()


def check(kernel, scale: float) -> None:
    v = np.array([0.0, 1.0, 4.0, 9.0])
    kernel(v, v.size)
    assert v.tolist() == [0.0, scale, 2 * scale, 3 * scale]


def pch_dirs(cache_dir: Path) -> list[Path]:
    return sorted(p for p in (cache_dir / "pch").glob("*") if p.is_dir())


def build_log(cache: sobuild.Cache, spec: KernelSpec) -> str:
    """The compiler's log of the unit that built ``spec``."""
    digest = cache.store.artifact_of(cache.key(spec))
    return (cache.store.layout.artifact_dir(digest) / "build.log").read_text()


def used(log: str) -> str | None:
    """How the unit got its precompiled header, from its log (None: it had none)."""
    for how in ("from the cache", "built in this build", "which did not build"):
        if f"({how}" in log:
            assert "not used because" not in log  # -Winvalid-pch: GCC took it
            return how
    return None


def test_a_heavy_kernel_builds_a_pch_once_and_another_model_reuses_it(gcache, cache_dir):
    check(gcache.load(heavy_spec(2)), 2)
    (directory,) = pch_dirs(cache_dir)
    assert used(build_log(gcache, heavy_spec(2))) == "built in this build"
    meta = json.loads((directory / "meta.json").read_text())
    gch = (directory / meta["file"]).read_bytes()
    assert meta["file"] == "prologue.h.gch" and meta["key"] == directory.name
    assert meta["digest"] == xxhash.xxh3_128_hexdigest(gch) and meta["size"] == len(gch)
    text = (directory / "prologue.h").read_text()
    assert "#include <vector>" in text and "#line" not in text and f"#define {GUARD}" in text

    # another model, in another process's cache object: same includes, other kernels
    other = sobuild.Cache(cache_dir, toolchain=gcache.toolchain)
    kernels = other.load_many([heavy_spec(3), heavy_spec(5)])
    for scale, kernel in zip((3, 5), kernels):
        check(kernel, scale)
    assert used(build_log(other, heavy_spec(3))) == "from the cache"
    assert pch_dirs(cache_dir) == [directory]
    assert not verify(other.store).problems


def test_the_cached_pch_is_what_the_compiler_reads(gcache, cache_dir, tmp_path):
    """A PCH doctored to define a macro its text does not (its digest recorded as if
    sobuild had built it) changes what a new kernel computes: the compile read it."""
    gcache.load(heavy_spec(2))
    (directory,) = pch_dirs(cache_dir)
    header = tmp_path / "doctored.h"
    header.write_text((directory / "prologue.h").read_text() + "#define PROBE 7\n")
    argv = gcache.toolchain.pch_argv(str(header), str(header) + ".gch", str(tmp_path), ("-O2",))
    subprocess.run(argv, check=True)
    gch = Path(str(header) + ".gch").read_bytes()
    meta = json.loads((directory / "meta.json").read_text())
    meta.update(digest=xxhash.xxh3_128_hexdigest(gch), size=len(gch))
    for name, data in (("prologue.h.gch", gch), ("meta.json", json.dumps(meta).encode())):
        (directory / name).chmod(0o644)
        (directory / name).write_bytes(data)
    probe = KernelSpec(source=HEAVY_SOURCE.replace("void run", """
        #ifndef PROBE
        #define PROBE 1
        #endif
        void run""").replace("* SCALE;", "* PROBE;"), entry=SCALE_ENTRY, flags=("-O2",))
    check(gcache.load(probe), 7)
    assert used(build_log(gcache, probe)) == "from the cache"


def test_a_lean_kernel_gets_none_unless_asked(gcache, cache_dir, monkeypatch):
    check(gcache.load(scale_spec(2.0)), 2)  # <cmath> only
    assert pch_dirs(cache_dir) == []
    assert used(build_log(gcache, scale_spec(2.0))) is None
    monkeypatch.setenv("SOBUILD_PCH", "1")
    check(gcache.load(scale_spec(3.0)), 3)
    assert len(pch_dirs(cache_dir)) == 1
    assert used(build_log(gcache, scale_spec(3.0))) == "built in this build"


def test_a_prologue_chooses_for_itself(gcache, cache_dir, monkeypatch):
    """``#define SOBUILD_PCH 1`` gets a lean prologue its header (Brian2's kernels, which
    every model shares); ``#define SOBUILD_PCH 0`` a heavy one none, even under
    SOBUILD_PCH=1 (a source built once per toolchain)."""
    wanted = replace(scale_spec(2.0), source="#define SOBUILD_PCH 1\n" + scale_spec(2.0).source)
    check(gcache.load(wanted), 2)
    assert used(build_log(gcache, wanted)) == "built in this build"
    assert len(pch_dirs(cache_dir)) == 1
    monkeypatch.setenv("SOBUILD_PCH", "1")
    unwanted = heavy_spec(3, source="#define SOBUILD_PCH 0\n" + heavy_spec(3).source)
    check(gcache.load(unwanted), 3)
    assert used(build_log(gcache, unwanted)) is None
    assert len(pch_dirs(cache_dir)) == 1


def test_sobuild_pch_0_builds_none(gcache, cache_dir, monkeypatch):
    monkeypatch.setenv("SOBUILD_PCH", "0")
    check(gcache.load(heavy_spec(2)), 2)
    assert pch_dirs(cache_dir) == []
    assert used(build_log(gcache, heavy_spec(2))) is None


def test_which_prologues_are_heavy():
    def heavy(source: str, headers: dict | None = None) -> bool:
        return scan(split_source(source).prologue, headers or {})[1]

    assert not heavy("#include <cstdint>\n#include <cmath>\nint f();")
    assert not heavy('#include "a.h"\nint f();', {"a.h": "#include <cmath>\n#include <limits>"})
    assert heavy("#include <cmath>\n#include <map>\nint f();")
    assert heavy('#include "a.h"\nint f();', {"a.h": '#include "sub/b.h"',
                                               "sub/b.h": "#include <vector>"})
    assert heavy('#include "not_among_the_headers.h"\nint f();')
    assert heavy("#define H <cmath>\n#include H\nint f();")


def test_the_key_follows_what_the_header_reads_not_the_kernels(gxx):
    def key(source: str, **changes) -> str | None:
        pch = plan([("0" * 32, KernelSpec(source, entry="int f()", **changes))], gxx)
        return pch and pch.key

    base = '#include "a.h"\nint f() { return 1; }'
    headers = {"a.h": "#include <vector>\n", "unread.h": "1"}
    first = key(base, headers=headers)
    assert first is not None
    assert key(base.replace("1;", "2;"), headers=headers) == first  # another kernel body
    assert key(base, headers={**headers, "unread.h": "2"}) == first  # a header it never reads
    assert key(base, headers={**headers, "a.h": "#include <vector>\n//"}) != first
    assert key(base, headers=headers, defines={"X": "1"}) != first
    assert key(base, headers=headers, flags=("-O1",)) != first
    assert key("#pragma pack(1)\n" + base, headers=headers) is None  # a pragma: no PCH


def test_a_missing_pch_is_built_again(gcache, cache_dir):
    gcache.load(heavy_spec(2))
    (directory,) = pch_dirs(cache_dir)
    shutil.rmtree(directory)
    check(gcache.load(heavy_spec(3)), 3)
    assert used(build_log(gcache, heavy_spec(3))) == "built in this build"
    assert [p.name for p in pch_dirs(cache_dir)] == [directory.name]


def test_a_corrupt_pch_is_detected_by_its_digest_and_built_again(gcache, cache_dir):
    gcache.load(heavy_spec(2))
    (directory,) = pch_dirs(cache_dir)
    gch = directory / "prologue.h.gch"
    data = bytearray(gch.read_bytes())
    data[len(data) // 2] ^= 0xFF  # GCC would read it, and compile nonsense or crash
    gch.chmod(0o644)
    gch.write_bytes(bytes(data))
    problems = verify(Store(cache_dir)).problems
    assert [p.kind for p in problems] == ["corrupt pch"]
    check(gcache.load(heavy_spec(3)), 3)
    assert used(build_log(gcache, heavy_spec(3))) == "built in this build"
    meta = json.loads((directory / "meta.json").read_text())
    assert xxhash.xxh3_128_hexdigest(gch.read_bytes()) == meta["digest"]
    assert not verify(Store(cache_dir)).problems


def test_a_pch_that_read_a_system_header_changed_since_is_built_again(gcache, cache_dir,
                                                                      tmp_path):
    """GCC never checks the headers a PCH was made of: sobuild compares their size and mtime
    (recorded from the build's -MD list) before each use, so new kernels see the new text."""
    system = tmp_path / "system"
    system.mkdir()
    header = system / "mylib.h"
    header.write_text("#include <vector>\n#define MYLIB_SCALE 2.0\n")
    source = HEAVY_SOURCE.replace("#include <vector>", "#include <mylib.h>")
    flags = ("-O2", f"-isystem{system}")

    def spec(tag: str) -> KernelSpec:
        return KernelSpec(source.replace("* SCALE;", f"* MYLIB_SCALE; // {tag}"),
                          entry=SCALE_ENTRY, flags=flags)

    check(gcache.load(spec("a")), 2)
    (directory,) = pch_dirs(cache_dir)
    depends = json.loads((directory / "meta.json").read_text())["depends"]
    assert str(header) in [name for name, _, _ in depends]
    check(gcache.load(spec("b")), 2)
    assert used(build_log(gcache, spec("b"))) == "from the cache"
    header.write_text("#include <vector>\n#define MYLIB_SCALE 3.0\n")
    os.utime(header, ns=(time.time_ns(), time.time_ns() + 10**9))
    check(gcache.load(spec("c")), 3)
    assert used(build_log(gcache, spec("c"))) == "built in this build"
    assert [p.name for p in pch_dirs(cache_dir)] == [directory.name]


def test_another_toolchain_or_other_flags_make_another_pch(gcache, cache_dir, tmp_path):
    gcache.load(heavy_spec(2))
    check(gcache.load(heavy_spec(2, flags=("-O1",))), 2)
    assert used(build_log(gcache, heavy_spec(2, flags=("-O1",)))) == "built in this build"
    wrapper = tmp_path / "g++-wrapper"  # another compiler for sobuild: its own identity
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("g++")} "$@"\n')
    wrapper.chmod(0o755)
    other = sobuild.Cache(cache_dir, toolchain=from_command(str(wrapper)))
    assert other.toolchain.precompiled_headers
    check(other.load(heavy_spec(2)), 2)
    assert used(build_log(other, heavy_spec(2))) == "built in this build"
    assert len(pch_dirs(cache_dir)) == 3


def test_a_pch_changes_neither_the_key_nor_the_shared_object(tmp_path, gxx, monkeypatch):
    built = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("SOBUILD_PCH", mode)
        cache = sobuild.Cache(tmp_path / mode, toolchain=gxx)
        spec = heavy_spec(2)
        check(cache.load(spec), 2)
        built[mode] = (cache.key(spec), cache.store.artifact_of(cache.key(spec)))
        cache.flush()
    assert len(pch_dirs(tmp_path / "1")) == 1 and not pch_dirs(tmp_path / "0")
    assert built["0"] == built["1"]  # same key, same bytes (the artifact is their digest)


def test_a_prologue_that_does_not_compile_fails_as_its_kernel(gcache, cache_dir):
    broken = KernelSpec(HEAVY_SOURCE.replace("#include <vector>",
                                             '#include <vector>\n#include "missing.h"'),
                        entry=SCALE_ENTRY)
    with pytest.raises(BuildError) as raised:
        gcache.load(broken)
    assert "missing.h" in str(raised.value)
    assert "kernel-" in str(raised.value) and "sobuild_prologue.h" not in str(raised.value)
    assert pch_dirs(cache_dir) == []


def test_a_broken_kernel_beside_good_ones_is_found_with_the_pch(gcache, cache_dir):
    gcache.jobs = 1  # one unit: its kernels are retried one by one
    broken = heavy_spec(9, source=HEAVY_SOURCE.replace("* SCALE;", "* undefined_here;"))
    with pytest.raises(BuildError, match="undefined_here"):
        gcache.load_many([heavy_spec(2), broken, heavy_spec(3)])
    for scale in (2, 3):
        check(gcache.load(heavy_spec(scale)), scale)
        assert used(build_log(gcache, heavy_spec(scale))) == "built in this build"
    assert len(pch_dirs(cache_dir)) == 1


def test_prune_and_clear_remove_pchs(gcache, cache_dir):
    gcache.load(heavy_spec(2))
    (directory,) = pch_dirs(cache_dir)
    result = gcache.store.prune(older_than=3600.0)
    assert not result.victims
    old = time.time() - 7200
    os.utime(directory / "meta.json", (old, old))
    result = gcache.store.prune(older_than=3600.0)
    assert [(v.id, v.kind) for v in result.victims] == [(directory.name, "pch")]
    assert pch_dirs(cache_dir) == []
    gcache.load(heavy_spec(3))
    assert gcache.store.clear()["pch"] == 1
    assert not (cache_dir / "pch").exists()


_RACER = """
import os, sys, time
from pathlib import Path
import numpy as np
import sobuild
from sobuild.toolchains.detect import from_command
sys.path.insert(0, {tests!r})
from core.test_precompiled_header import check, heavy_spec
scale = float(sys.argv[1])
cache = sobuild.Cache(os.environ["SOBUILD_CACHE_DIR"], toolchain=from_command("g++"))
spec = heavy_spec(scale)
cache.key(spec)  # detection done: start together
Path(sys.argv[2]).touch()
while len(list(Path(sys.argv[2]).parent.glob("ready-*"))) < 2:
    time.sleep(0.01)
check(cache.load(spec), scale)
print("ok")
"""


def test_two_processes_building_one_pch_at_once(cache_dir, tmp_path, monkeypatch):
    """Two models with the same includes, cold, at the same moment: both build the PCH
    privately, both succeed, one PCH is kept and it is sound."""
    monkeypatch.delenv("SOBUILD_PCH", raising=False)
    script = tmp_path / "racer.py"
    script.write_text(_RACER.format(tests=str(Path(__file__).parents[1])))
    procs = [subprocess.Popen([sys.executable, str(script), str(scale),
                               str(tmp_path / f"ready-{scale}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for scale in (2, 3)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    assert len(pch_dirs(cache_dir)) == 1
    store = Store(cache_dir)
    assert not verify(store).problems
    assert not list((cache_dir / "tmp").glob("pch-*"))  # the loser's copy is gone
