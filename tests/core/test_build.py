"""Building: one ninja run per batch, units that share kernels, and the error paths."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from cluster.conftest import process_running

import sobuild
from sobuild import BuildError, CompilerNotFoundError, KernelSpec
from sobuild.compilation.ninja import Unit, build_units
from sobuild.compilation.translation_unit import partition, render, split_source
from sobuild.config import cpu_count
from sobuild.toolchains.detect import from_command

from .kernels import BROKEN_SOURCE, SCALE_ENTRY, family, scale_spec


def test_kernels_with_the_same_names_share_a_unit_without_clashing(cache, cache_dir):
    # every kernel defines run(), a helper and a macro of the same names
    source = """
    #include <cmath>
    #define FACTOR {f}
    static double helper(double x) {{ return x * FACTOR; }}
    void run(double* v, int32_t n) {{ for (int i = 0; i < n; i++) v[i] = helper(v[i]); }}
    """
    specs = [KernelSpec(source=source.format(f=f), entry=SCALE_ENTRY) for f in (2, 3, 5, 7)]
    cache.jobs = 1
    kernels = cache.load_many(specs)
    assert len(list((cache_dir / "artifacts").glob("??/*"))) == 1  # one unit for the batch
    for f, kernel in zip((2, 3, 5, 7), kernels):
        v = np.ones(2)
        kernel(v, 2)
        assert v.tolist() == [f, f]


def test_a_batch_is_split_into_about_one_unit_per_job():
    specs = family(10)
    items = [(f"{i:032x}", s) for i, s in enumerate(specs)]
    units = partition(items, jobs=3)
    assert len(units) == 3
    assert sorted(k for unit in units for k, _ in unit) == sorted(k for k, _ in items)
    # kernels that differ in flags cannot share a unit
    mixed = items[:2] + [(f"{99:032x}", scale_spec(1.0, flags=("-O0",)))]
    assert all(len({s.flags for _, s in u}) == 1 for u in partition(mixed, jobs=1))


def test_sources_that_cannot_be_wrapped_get_a_unit_of_their_own(cache):
    conditional = """
    #ifdef __cplusplus
    #include <cmath>
    #endif
    void run(double* v, int32_t n) { v[0] = std::sqrt(v[0]); }
    """
    assert split_source(conditional) is None
    spec = KernelSpec(source=conditional, entry=SCALE_ENTRY)
    kernel, other = cache.load_many([spec, scale_spec(2.0)])
    v = np.array([9.0])
    kernel(v, 1)
    assert v[0] == 3.0


def test_a_compile_error_names_the_kept_source_and_the_rest_of_the_batch_is_built(cache):
    good = family(3)
    broken = KernelSpec(source=BROKEN_SOURCE, entry=SCALE_ENTRY, flags=("-O2",))
    with pytest.raises(BuildError) as info:
        cache.load_many([*good, broken])
    (failure,) = info.value.failures
    assert failure.key == cache.key(broken)
    kept = Path(failure.source_path)
    assert kept.read_text() == BROKEN_SOURCE
    assert kept.name in "\n".join(failure.first_lines)  # errors point at the kernel's own file
    assert any("undefined_name_here" in line for line in failure.first_lines)
    message = str(info.value)
    assert failure.source_path in message and "undefined_name_here" in message
    assert "error" in Path(failure.log_path).read_text()
    # the good kernels of the same batch were published
    assert all(cache.lookup(spec) is not None for spec in good)
    cache.flush()
    counters = cache.store.counters()
    assert counters["builds"] == 3 and counters["build_errors"] == 1


def test_an_entry_that_does_not_match_the_source_is_a_build_error(cache):
    spec = scale_spec(1.0, entry="void run(float* v, int32_t n)")
    with pytest.raises(BuildError, match="kernel"):
        cache.load(spec)


def test_a_missing_compiler_says_what_was_looked_for_and_how_to_set_it(cache_dir, monkeypatch):
    monkeypatch.setenv("SOBUILD_CXX", "/nonexistent/bin/c++")
    with pytest.raises(CompilerNotFoundError) as info:
        sobuild.Cache(cache_dir).load(scale_spec())
    assert "/nonexistent/bin/c++" in str(info.value)
    assert "SOBUILD_CXX" in str(info.value)


def test_no_compiler_on_the_path(cache_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("SOBUILD_CXX", raising=False)
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(CompilerNotFoundError, match="g\\+\\+.*not found"):
        sobuild.Cache(cache_dir).load(scale_spec())


def test_sobuild_jobs_sets_the_parallelism(cache_dir, monkeypatch):
    monkeypatch.setenv("SOBUILD_JOBS", "3")
    assert sobuild.Cache(cache_dir).jobs == 3
    monkeypatch.delenv("SOBUILD_JOBS")
    assert sobuild.Cache(cache_dir).jobs == cpu_count()  # the CPUs this process may use


# -- a build that hangs, a disk that is full ----------------------------------------------------

HANGING_COMPILER = """#!/bin/sh
# g++, but a compile (not a probe) writes its pid and hangs
for arg in "$@"; do
  if [ "$arg" = "-shared" ]; then echo $$ >> "{pids}"; exec sleep 100000; fi
done
exec {gxx} "$@"
"""


def _units(specs: list[KernelSpec], toolchain) -> list[Unit]:
    kernels = [(f"{i:032x}", spec) for i, spec in enumerate(specs)]
    return [Unit(f"unit{i}", group, render(group, toolchain))
            for i, group in enumerate(partition(kernels, jobs=len(specs)))]


@pytest.mark.needs_proc
def test_a_hanging_compiler_is_killed_with_its_whole_build_after_the_timeout(tmp_path):
    pids = tmp_path / "pids"
    wrapper = tmp_path / "hanging-g++"
    wrapper.write_text(HANGING_COMPILER.format(pids=pids, gxx=shutil.which("g++")))
    wrapper.chmod(0o755)
    toolchain = from_command(str(wrapper))
    timeout = 0.5
    while not pids.exists():  # until the compilers had started when time was up (any load)
        build_dir = tmp_path / f"build-{timeout:g}"
        build_dir.mkdir()
        results = build_units(_units(family(2), toolchain), build_dir, toolchain, jobs=2,
                              timeout=timeout)
        assert [(r.timed_out, r.ok, r.disk_full) for r in results] == [(True, False, False)] * 2
        assert all(r.log.startswith(f"sobuild stopped this build after {timeout:g} s "
                                    "(SOBUILD_BUILD_TIMEOUT)") for r in results)
        timeout *= 4
    started = [int(pid) for pid in pids.read_text().split()]
    deadline = time.monotonic() + 60  # SIGKILL was sent: they end at once, whatever the load
    while any(process_running(pid) for pid in started):
        assert time.monotonic() < deadline, f"compilers {started} still run"
        time.sleep(0.01)


@pytest.fixture
def full_disk(tmp_path, small_tmpfs):
    """A 1 MiB tmpfs, filled up but for ``room`` bytes: a disk that is full for real."""
    mount_point = small_tmpfs(tmp_path / "small")
    build_dir = mount_point / "build"
    build_dir.mkdir()
    room = 8 << 10  # the sources and build.ninja fit, the shared object does not
    st = os.statvfs(mount_point)
    (mount_point / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - room))
    return build_dir


def test_a_full_disk_is_told_from_a_compile_error_by_the_file_system(full_disk, tmp_path):
    toolchain = from_command(shutil.which("g++"))
    broken = KernelSpec(source=BROKEN_SOURCE, entry=SCALE_ENTRY)
    (result,) = build_units(_units([scale_spec()], toolchain), full_disk, toolchain, jobs=1)
    assert (result.ok, result.disk_full, result.timed_out) == (False, True, False)
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    (result,) = build_units(_units([broken], toolchain), roomy, toolchain, jobs=1)
    assert (result.ok, result.disk_full) == (False, False)
