"""Compilers are recognised by what they are (the macros they predefine, as sccache does), not
by their name or --version text: launchers (ccache, distcc) run the compiles while the real
compiler behind them is what the key names; wrappers (mpicxx) are recognised by the macros of
the compiler they run. All for real: real g++, clang++, ccache and distcc, scripts in tmp_path.

CI needs the apt packages g++, clang, ccache and distcc (tests that need one skip locally
without it, and fail under CI=true)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from skipping import cannot_run

import sobuild
from sobuild import CompilerNotFoundError
from sobuild.toolchains import GCC, Clang, detect, from_command
from sobuild.toolchains.detect import PROBE_SOURCE, read_probe, split_launchers
from sobuild.toolchains.probes import ProbeRecords

from .kernels import scale_spec
from .probe_calls import PROBE, detection_calls

GXX = shutil.which("g++")
PATH = os.environ["PATH"]


def script(path: Path, body: str) -> str:
    """An executable shell script at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def program(name: str) -> str:
    """The path of ``name`` on the PATH; the test cannot run without it."""
    found = shutil.which(name)
    if found is None:
        cannot_run(f"{name} is not installed (CI installs it: apt-get install {name})")
    return found


def load_and_run(cache: sobuild.Cache, scale: float = 2.0) -> list[float]:
    v = np.array([4.0, 9.0])
    cache.load(scale_spec(scale))(v, 2)
    return v.tolist()


def meta_of(cache: sobuild.Cache, scale: float = 2.0) -> dict:
    kernel = cache.load(scale_spec(scale))
    return json.loads((Path(kernel.artifact).parent / "meta.json").read_text())


@pytest.fixture
def gxx_identity(tmp_path) -> dict:
    """The identity of plain g++, probed on its own."""
    return from_command(GXX, ProbeRecords(tmp_path / "plain-records", None)).identity()


@pytest.fixture
def plain_key(tmp_path):
    """The key of a kernel built by plain g++."""
    toolchain = from_command(GXX, ProbeRecords(tmp_path / "plain-records", None))
    return lambda spec: sobuild.Cache(tmp_path / "plain-cache", toolchain=toolchain).key(spec)


# -- what the detection file says -------------------------------------------------------------

def test_the_detection_file_tells_gcc_from_clang_from_msvc_by_their_macros():
    gcc = '# 1 "sobuild_probe.cpp"\n\nsobuild_family "gcc"\n\nsobuild_macro "__VERSION__" "12.2.0"\n'
    assert read_probe(gcc) == ("gcc", {"__VERSION__": "12.2.0"})
    # Intel's icpx: Clang, with a version of its own
    icpx = ('sobuild_family "clang"\nsobuild_macro "__VERSION__" "Intel(R) oneAPI DPC++/C++ '
            'Compiler 2024.0.0 (2024.0.0.20231017)"\nsobuild_macro "__clang_version__" '
            '"17.0.0 (icx 2024.0.0.20231017)"\nsobuild_macro "__INTEL_LLVM_COMPILER" 20240000\n')
    family, macros = read_probe(icpx)
    assert family == "clang" and macros["__INTEL_LLVM_COMPILER"] == "20240000"
    assert macros["__clang_version__"] == "17.0.0 (icx 2024.0.0.20231017)"
    assert read_probe('#line 1 "C:\\\\t\\\\sobuild_probe.cpp"\nsobuild_family "msvc"\n')[0] == "msvc"
    # not preprocessed: nothing, a --version banner, or the file printed back as it is
    for output in ("", "g++ (GCC) 12.2.0\nCopyright (C) 2022 Free Software Foundation",
                   PROBE_SOURCE):
        assert read_probe(output) == (None, {})


def test_the_detection_file_asks_in_sccaches_order():
    order = [PROBE_SOURCE.index(m) for m in ("__NVCC__", "_MSC_VER", "__clang__", "__GNUC__")]
    assert order == sorted(order)  # nvcc wraps a host compiler; Clang defines __GNUC__ too


@pytest.mark.parametrize("words,launchers,compiler", [
    (["g++"], (), ("g++",)),
    (["ccache", "g++"], ("ccache",), ("g++",)),
    (["/usr/bin/ccache", "/opt/gcc/bin/g++"], ("/usr/bin/ccache",), ("/opt/gcc/bin/g++",)),
    (["ccache", "distcc", "g++"], ("ccache", "distcc"), ("g++",)),
    (["sccache.exe", "cl.exe"], ("sccache.exe",), ("cl.exe",)),
    (["env", "g++"], (), ("env", "g++")),  # not a launcher: stays in front of the compiler
])
def test_launchers_are_told_from_the_compiler(words, launchers, compiler):
    assert split_launchers(words) == (launchers, compiler)


# -- launchers: they run the compiles, the compiler behind them is the identity --------------

def test_ccache_g_plus_plus_builds_under_the_identity_and_key_of_g_plus_plus(
        cache_dir, monkeypatch, tmp_path, gxx_identity, plain_key):
    program("ccache")
    monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache"))
    monkeypatch.setenv("CCACHE_LOGFILE", str(tmp_path / "ccache.log"))
    monkeypatch.setenv("SOBUILD_CXX", "ccache g++")
    cache = sobuild.Cache(cache_dir)
    toolchain = cache.toolchain
    assert isinstance(toolchain, GCC) and toolchain.family == "gcc"
    assert toolchain.command == ("ccache", GXX)  # ccache runs the compiles ...
    identity = toolchain.identity()
    assert identity["command"] == [GXX]  # ... the real g++ is the identity
    assert identity["resolved"] == os.path.realpath(GXX)
    assert identity["macros"]["__VERSION__"] and identity["proper"].endswith("cc1plus")
    assert identity == gxx_identity
    assert "ccache" not in json.dumps(identity)
    assert not (tmp_path / "ccache.log").exists()  # probing ran g++, not ccache

    assert load_and_run(cache) == [4.0, 6.0]
    assert "Command line: ccache " + GXX in (tmp_path / "ccache.log").read_text()
    assert meta_of(cache)["toolchain"]["command"] == [GXX]
    assert cache.key(scale_spec()) == plain_key(scale_spec())


def test_distcc_g_plus_plus_builds_under_the_key_of_g_plus_plus(cache_dir, monkeypatch,
                                                                 tmp_path, plain_key):
    program("distcc")
    (tmp_path / "distcc").mkdir()
    monkeypatch.setenv("DISTCC_DIR", str(tmp_path / "distcc"))
    monkeypatch.setenv("DISTCC_HOSTS", "localhost")  # compile here, no daemon
    monkeypatch.setenv("DISTCC_LOG", str(tmp_path / "distcc.log"))
    monkeypatch.setenv("DISTCC_VERBOSE", "1")
    monkeypatch.setenv("SOBUILD_CXX", "distcc g++")
    cache = sobuild.Cache(cache_dir)
    assert cache.toolchain.command == ("distcc", GXX)
    assert cache.toolchain.identity()["command"] == [GXX]
    assert load_and_run(cache) == [4.0, 6.0]
    assert GXX in (tmp_path / "distcc.log").read_text()  # distcc ran g++
    assert cache.key(scale_spec()) == plain_key(scale_spec())


def test_a_ccache_stand_in_first_on_the_path_stands_for_the_next_g_plus_plus(
        cache_dir, monkeypatch, tmp_path, gxx_identity, plain_key):
    # /usr/lib/ccache/g++ -> ../../bin/ccache, first on the PATH (Fedora does that for everyone)
    stand_ins = tmp_path / "ccache-links"
    stand_ins.mkdir()
    (stand_ins / "g++").symlink_to(program("ccache"))
    monkeypatch.setenv("PATH", f"{stand_ins}{os.pathsep}{PATH}")
    monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache"))
    monkeypatch.setenv("CCACHE_LOGFILE", str(tmp_path / "ccache.log"))
    monkeypatch.setenv("SOBUILD_CXX", "g++")
    cache = sobuild.Cache(cache_dir)
    toolchain = cache.toolchain
    assert toolchain.command == (str(stand_ins / "g++"),)  # the compiles run through ccache
    assert toolchain.compiler == (GXX,) and toolchain.identity() == gxx_identity
    assert load_and_run(cache) == [4.0, 6.0]
    assert "Command line: " in (tmp_path / "ccache.log").read_text()
    assert cache.key(scale_spec()) == plain_key(scale_spec())


def test_a_stand_in_with_no_compiler_behind_it_says_so(tmp_path):
    stand_ins = tmp_path / "ccache-links"
    stand_ins.mkdir()
    (stand_ins / "g++").symlink_to(program("ccache"))
    with pytest.raises(CompilerNotFoundError, match=r"stand-in for g\+\+ .*no other g\+\+ is on "
                                                    r"the PATH"):
        detect({"SOBUILD_CXX": "g++", "PATH": str(stand_ins)})


@pytest.mark.parametrize("value,cause", [
    ("ccache", "ccache is a compiler launcher, and no compiler follows it"),
    ("ccache -s g++", "the word after it must be the compiler it runs, not the option '-s'"),
    ("ccache distcc", "distcc is a compiler launcher, and no compiler follows it"),
])
def test_a_launcher_without_a_compiler_after_it_says_so(value, cause):
    with pytest.raises(CompilerNotFoundError) as info:
        detect({"SOBUILD_CXX": value, "PATH": PATH})
    message = str(info.value)
    assert f"SOBUILD_CXX={value!r}" in message and cause in message
    assert "export SOBUILD_CXX=" in message


def test_a_launcher_that_is_not_installed_says_so(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "g++").symlink_to(GXX)
    with pytest.raises(CompilerNotFoundError, match=r"names the launcher ccache, which sobuild "
                                                    r"cannot run: ccache not on the PATH"):
        detect({"SOBUILD_CXX": "ccache g++", "PATH": str(bin_dir)})


def test_the_warm_path_runs_neither_the_launcher_nor_the_compiler(monkeypatch, tmp_path):
    program("ccache")
    log = tmp_path / "invocations.log"
    compiler = script(tmp_path / "bin" / "g++", f"""\
        echo "$*" >> '{log}'
        exec '{GXX}' "$@"
        """)
    monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache"))
    monkeypatch.setenv("CCACHE_LOGFILE", str(tmp_path / "ccache.log"))
    records = ProbeRecords(tmp_path / "cache", None)
    env = {"SOBUILD_CXX": f"ccache {compiler}", "PATH": PATH}
    first = detect(env, records)
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in detection_calls(calls)] == PROBE
    assert detect(env, records) == first
    assert log.read_text().splitlines() == calls  # nothing ran the second time
    assert not (tmp_path / "ccache.log").exists()  # and ccache never ran for a probe


# -- wrappers: recognised by the macros of the compiler they run -------------------------------

def test_an_mpicxx_wrapper_script_is_gcc_and_its_identity_holds_the_real_gxx(
        cache_dir, monkeypatch, tmp_path, gxx_identity, plain_key):
    mpicxx = script(tmp_path / "mpi" / "bin" / "mpicxx", 'exec g++ "$@"\n')
    monkeypatch.setenv("SOBUILD_CXX", mpicxx)
    cache = sobuild.Cache(cache_dir)
    toolchain = cache.toolchain
    assert isinstance(toolchain, GCC) and toolchain.family == "gcc"
    identity = toolchain.identity()
    # the wrapper: its own path and its text, since it can add flags ...
    assert identity["command"] == [mpicxx] and identity["resolved"] == os.path.realpath(mpicxx)
    assert len(identity["script"]) == 32
    # ... and the real compiler behind it: its macros and its compiler proper
    assert identity["macros"] == gxx_identity["macros"]
    assert identity["proper"] == gxx_identity["proper"]
    assert identity["version"] == gxx_identity["version"]
    assert load_and_run(cache) == [4.0, 6.0]
    assert meta_of(cache)["toolchain"]["macros"]["__VERSION__"] == (
        gxx_identity["macros"]["__VERSION__"])
    assert cache.key(scale_spec()) != plain_key(scale_spec())  # the wrapper may add flags

    # a wrapper that adds a flag is another compiler
    other = script(tmp_path / "other" / "mpicxx", 'exec g++ -DMPICH_SKIP_MPICXX "$@"\n')
    assert detect({"SOBUILD_CXX": other, "PATH": PATH}).identity()["script"] != identity["script"]


def test_a_wrapper_named_clang_that_runs_gxx_is_gcc(tmp_path, gxx_identity):
    # even when it says "clang" in its --version: the macros decide
    liar = script(tmp_path / "bin" / "clang++", """\
        if [ "$1" = --version ]; then echo "clang version 99.0.0"; exit 0; fi
        exec g++ "$@"
        """)
    toolchain = detect({"SOBUILD_CXX": liar, "PATH": PATH})
    assert isinstance(toolchain, GCC) and not isinstance(toolchain, Clang)
    assert toolchain.family == "gcc"
    assert toolchain.identity()["macros"] == gxx_identity["macros"]
    assert toolchain.version == "clang version 99.0.0"  # what it says is kept, not believed
    cache = sobuild.Cache(tmp_path / "cache", toolchain=toolchain)
    assert load_and_run(cache) == [4.0, 6.0]


def test_a_wrapper_named_gxx_that_runs_clang_is_clang(tmp_path, clangxx):
    wrapper = script(tmp_path / "bin" / "g++", f'exec "{clangxx}" "$@"\n')
    toolchain = detect({"SOBUILD_CXX": wrapper, "PATH": PATH})
    assert isinstance(toolchain, Clang)
    assert "__clang_version__" in toolchain.identity()["macros"]


def test_a_clang_compatible_compiler_by_another_name_is_clang_with_its_own_macros(
        tmp_path, clangxx):
    # what Intel's icpx is: Clang's command line, __clang__ and __INTEL_LLVM_COMPILER
    icpx = script(tmp_path / "oneapi" / "bin" / "icpx",
                  f'exec "{clangxx}" -D__INTEL_LLVM_COMPILER=20240000 "$@"\n')
    toolchain = detect({"SOBUILD_CXX": icpx, "PATH": PATH})
    assert isinstance(toolchain, Clang)
    assert toolchain.identity()["macros"]["__INTEL_LLVM_COMPILER"] == "20240000"
    cache = sobuild.Cache(tmp_path / "cache", toolchain=toolchain)
    assert load_and_run(cache) == [4.0, 6.0]


def test_a_wrapper_that_runs_what_the_path_finds_is_probed_again_when_the_path_changes(
        monkeypatch, tmp_path, clangxx):
    # `module swap gcc clang` changes the PATH, not the MPI module's mpicxx
    wrapper = script(tmp_path / "mpicxx", 'exec c++ "$@"\n')
    gnu, llvm = tmp_path / "gnu", tmp_path / "llvm"
    for directory, target in ((gnu, GXX), (llvm, clangxx)):
        directory.mkdir()
        (directory / "c++").symlink_to(target)
    records = ProbeRecords(tmp_path / "cache", None)
    monkeypatch.setenv("SOBUILD_CXX", wrapper)
    for directory, family in ((gnu, "gcc"), (llvm, "clang"), (gnu, "gcc")):
        monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{PATH}")
        assert detect(records=records).family == family


def test_a_compiler_replaced_behind_its_wrapper_is_probed_again(tmp_path):
    # the wrapper stays the same; the compiler proper it runs (cc1plus) is upgraded in place
    proper = tmp_path / "libexec" / "cc1plus"
    proper.parent.mkdir()
    proper.write_text("version 1")
    log = tmp_path / "invocations.log"
    wrapper = script(tmp_path / "bin" / "mpicxx", f"""\
        echo "$*" >> '{log}'
        case "$*" in *-###*) echo " {proper} -quiet -o /tmp/cc.s"; exit 0;; esac
        exec '{GXX}' "$@"
        """)
    records = ProbeRecords(tmp_path / "cache", None)
    env = {"SOBUILD_CXX": wrapper, "PATH": PATH}
    first = detect(env, records)
    assert first.identity()["proper"] == str(proper)
    assert detect(env, records) == first
    assert len(detection_calls(log.read_text().splitlines())) == len(PROBE)
    proper.write_text("version 2, a little longer")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # out of date is not suspicious: no warning
        assert detect(env, records) == first
    assert len(detection_calls(log.read_text().splitlines())) == 2 * len(PROBE)


# -- what is not a compiler says so ------------------------------------------------------------

def test_a_script_that_only_says_it_is_gcc_is_not_a_compiler(tmp_path):
    # its --version is GCC's to the letter; it preprocesses nothing
    fake = script(tmp_path / "bin" / "g++", """\
        echo "g++ (GCC) 12.2.0"
        echo "Copyright (C) 2022 Free Software Foundation, Inc."
        """)
    records = ProbeRecords(tmp_path / "cache", None)
    with pytest.raises(CompilerNotFoundError) as info:
        detect({"SOBUILD_CXX": fake, "PATH": PATH}, records)
    message = str(info.value)
    assert f"{fake} (SOBUILD_CXX={fake!r})" in message
    assert "is not a C++ compiler sobuild knows (GCC, Clang or MSVC)" in message
    assert "asked to preprocess a test file" in message and "printed 'g++ (GCC) 12.2.0'" in message
    assert "export SOBUILD_CXX=" in message
    assert not list((tmp_path / "cache").glob("toolchains/probe-*"))  # nothing remembered


def test_a_script_that_prints_the_file_back_is_not_a_compiler(tmp_path):
    cat = script(tmp_path / "bin" / "c++", 'for a; do last="$a"; done; cat "$last"\n')
    with pytest.raises(CompilerNotFoundError, match=r"printed '#if defined\(__NVCC__\)', not the "
                                                    r"preprocessed file"):
        detect({"SOBUILD_CXX": cat, "PATH": PATH})


def test_a_preprocessor_without_a_known_compilers_macros_is_named_so(tmp_path):
    # g++ -undef: a C++ preprocessor that predefines none of GCC's own macros
    bare = script(tmp_path / "bin" / "c++", f'exec "{GXX}" -undef "$@"\n')
    with pytest.raises(CompilerNotFoundError, match="preprocesses C\\+\\+ but is not a compiler "
                                                    "sobuild knows.*none of __GNUC__, __clang__ "
                                                    "and _MSC_VER"):
        detect({"SOBUILD_CXX": bare, "PATH": PATH})


def test_nvcc_is_named_and_refused(tmp_path):
    nvcc = script(tmp_path / "cuda" / "bin" / "nvcc", f'exec "{GXX}" -D__NVCC__ "$@"\n')
    with pytest.raises(CompilerNotFoundError, match="is NVIDIA's nvcc .*Point SOBUILD_CXX at "
                                                    "g\\+\\+ or clang\\+\\+"):
        detect({"SOBUILD_CXX": nvcc, "PATH": PATH})
