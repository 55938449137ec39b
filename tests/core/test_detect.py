"""Finding the compiler, for real: SOBUILD_CXX, then CXX, then the PATH; probes cached on disk;
every way of not having a compiler says what to do."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sobuild
from sobuild import CompilerNotFoundError
from sobuild.toolchains import GCC, Clang, detect, from_command
from sobuild.toolchains.probes import ProbeRecords

from .kernels import scale_spec
from .probe_calls import PROBE, detection_calls

GXX = shutil.which("g++")
PATH = os.environ["PATH"]


def script(path: Path, body: str) -> str:
    """An executable shell script at ``path``."""
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def recording_compiler(tmp_path: Path) -> tuple[str, Path]:
    """A SOBUILD_CXX that writes each of its invocations to a log, then runs g++."""
    log = tmp_path / "invocations.log"
    wrapper = script(tmp_path / "recording-g++", f"""\
        echo "$*" >> '{log}'
        exec '{GXX}' "$@"
        """)
    return wrapper, log


def invocations(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def first_words(calls: list[str]) -> list[str]:
    return [call.split()[0] for call in calls]


# -- the order of detection -------------------------------------------------------------------

def test_sobuild_cxx_comes_before_cxx_and_the_path(clangxx):
    toolchain = detect({"SOBUILD_CXX": clangxx, "CXX": GXX, "PATH": PATH})
    assert isinstance(toolchain, Clang)
    assert toolchain.command == (clangxx,)


def test_cxx_comes_before_the_path(clangxx):
    assert isinstance(detect({"CXX": clangxx, "PATH": PATH}), Clang)
    assert isinstance(detect({"CXX": GXX, "PATH": PATH}), GCC)


def test_the_path_is_searched_for_cxx_then_gxx_then_clangxx(tmp_path, clangxx):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "clang++").symlink_to(clangxx)
    only_clang = detect({"PATH": str(bin_dir)})
    assert isinstance(only_clang, Clang)
    # the name is kept (clang++ -> .../bin/clang would not link the C++ runtime) ...
    assert only_clang.command == (str(bin_dir / "clang++"),)
    # ... and the resolved file is part of the identity
    assert only_clang.identity()["resolved"] == os.path.realpath(clangxx)
    (bin_dir / "g++").symlink_to(GXX)
    assert isinstance(detect({"PATH": str(bin_dir)}), GCC)
    (bin_dir / "c++").symlink_to(clangxx)
    first = detect({"PATH": str(bin_dir)})
    assert isinstance(first, Clang) and first.command == (str(bin_dir / "c++"),)


def test_a_launcher_in_sobuild_cxx_is_kept_in_front_of_the_compiler():
    toolchain = detect({"SOBUILD_CXX": "env g++", "PATH": PATH})
    assert toolchain.command == ("env", GXX)
    assert isinstance(toolchain, GCC)
    assert toolchain.shared_object_argv("a.cpp", "a.so", "inc", ())[:2] == ["env", GXX]


def test_cache_uses_sobuild_cxx(cache_dir, monkeypatch, clangxx):
    monkeypatch.setenv("SOBUILD_CXX", clangxx)
    cache = sobuild.Cache(cache_dir)
    assert cache.toolchain.family == "clang"
    import numpy as np

    v = np.array([4.0, 9.0])
    cache.load(scale_spec(1.0))(v, 2)
    assert v.tolist() == [2.0, 3.0]


# -- the probe is cached ----------------------------------------------------------------------

WARM_LOAD = """
import sys, numpy as np, sobuild
sys.path.insert(0, sys.argv[1])
from tests.core.kernels import scale_spec
v = np.array([16.0])
sobuild.Cache().load(scale_spec(float(sys.argv[2])))(v, 1)
print(v[0])
"""


def load_in_fresh_process(scale: float) -> float:
    root = Path(__file__).parents[2]
    out = subprocess.run([sys.executable, "-c", WARM_LOAD, str(root), str(scale)],
                         capture_output=True, text=True, check=True).stdout
    return float(out)


def test_a_warm_process_does_not_run_the_compiler(cache_dir, monkeypatch, tmp_path):
    wrapper, log = recording_compiler(tmp_path)
    monkeypatch.setenv("SOBUILD_CXX", wrapper)
    assert load_in_fresh_process(2.0) == 8.0
    cold = invocations(log)
    assert first_words(cold[:4]) == PROBE
    builds = detection_calls(cold)[len(PROBE):]
    assert len(builds) == 1 and "-shared" in builds[0]  # one compile
    assert list((cache_dir / "toolchains").glob("probe-*.json"))

    assert load_in_fresh_process(2.0) == 8.0
    assert invocations(log) == cold  # the warm process ran nothing

    assert load_in_fresh_process(3.0) == 12.0
    new = invocations(log)[len(cold):]
    assert len(new) == 1 and "-shared" in new[0]  # a miss compiles, but probes nothing


NATIVE_KEY = """
import sys
from pathlib import Path
from sobuild.toolchains import detect
from sobuild.toolchains.probes import ProbeRecords
records = ProbeRecords(Path(sys.argv[1]), None)
print(detect(records=records).key_identity(("-O3", "-march=native"))["native"])
"""


def test_what_march_native_means_is_probed_once_per_host(cache_dir, monkeypatch, tmp_path):
    wrapper, log = recording_compiler(tmp_path)
    monkeypatch.setenv("SOBUILD_CXX", wrapper)
    runs = [subprocess.run([sys.executable, "-c", NATIVE_KEY, str(cache_dir)], check=True,
                           capture_output=True, text=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] and "-march=" in runs[0]
    calls = detection_calls(invocations(log))
    assert first_words(calls[:4]) == PROBE
    assert len(calls) == 5 and calls[4].startswith("-march=native -###")


def test_a_changed_compiler_is_probed_again(cache_dir, tmp_path):
    wrapper, log = recording_compiler(tmp_path)
    records = ProbeRecords(cache_dir, None)
    first = detect({"SOBUILD_CXX": wrapper, "PATH": PATH}, records)
    assert first_words(detection_calls(invocations(log))) == PROBE
    assert detect({"SOBUILD_CXX": wrapper, "PATH": PATH}, records) == first
    assert len(detection_calls(invocations(log))) == len(PROBE)
    with open(wrapper, "a") as f:  # a compiler upgrade changes the file
        f.write("# upgraded\n")
    detect({"SOBUILD_CXX": wrapper, "PATH": PATH}, records)
    assert len(detection_calls(invocations(log))) == 2 * len(PROBE)


def test_a_corrupt_probe_file_is_probed_again_and_rewritten(cache_dir, tmp_path):
    wrapper, log = recording_compiler(tmp_path)
    records = ProbeRecords(cache_dir, None)
    first = detect({"SOBUILD_CXX": wrapper, "PATH": PATH}, records)
    (probe_file,) = (cache_dir / "toolchains").glob("probe-*.json")
    for garbage in ("{not json", '{"family": "gcc"}', "[]"):
        probe_file.write_text(garbage)
        assert detect({"SOBUILD_CXX": wrapper, "PATH": PATH}, records) == first
    assert len(detection_calls(invocations(log))) == len(PROBE) * 4
    assert detect({"SOBUILD_CXX": wrapper, "PATH": PATH}, records) == first
    assert len(detection_calls(invocations(log))) == len(PROBE) * 4  # written back


# -- no compiler, or not a compiler: what to do -----------------------------------------------

def test_a_missing_sobuild_cxx_names_it_and_says_how_to_set_it(cache_dir, monkeypatch):
    monkeypatch.setenv("SOBUILD_CXX", "/nonexistent")
    with pytest.raises(CompilerNotFoundError) as info:
        sobuild.Cache(cache_dir).load(scale_spec())
    message = str(info.value)
    assert "SOBUILD_CXX='/nonexistent'" in message and "no such file" in message
    assert "export SOBUILD_CXX=" in message


def test_an_explicit_choice_that_is_missing_is_not_replaced_by_another_compiler():
    with pytest.raises(CompilerNotFoundError, match=r"CXX='no-such-c\+\+'.*not on the PATH"):
        detect({"CXX": "no-such-c++", "PATH": PATH})


def test_an_empty_path_lists_what_was_looked_for(cache_dir, monkeypatch):
    monkeypatch.delenv("SOBUILD_CXX", raising=False)
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(CompilerNotFoundError) as info:
        sobuild.Cache(cache_dir).load(scale_spec())
    message = str(info.value)
    assert "c++, g++, clang++" in message and "(empty)" in message
    assert "apt-get install g++" in message and "export SOBUILD_CXX=" in message


@pytest.mark.parametrize("kind", ["directory", "not executable"])
def test_a_path_that_cannot_be_run(tmp_path, kind):
    target = tmp_path / "compiler"
    if kind == "directory":
        target.mkdir()
    else:
        target.write_text("#!/bin/sh\n")
    with pytest.raises(CompilerNotFoundError, match=f"is {'a ' if kind == 'directory' else ''}"
                                                    f"{kind}.*SOBUILD_CXX"):
        detect({"SOBUILD_CXX": str(target), "PATH": PATH})


def test_bin_true_is_not_a_compiler(cache_dir, monkeypatch):
    monkeypatch.setenv("SOBUILD_CXX", "/bin/true")
    with pytest.raises(CompilerNotFoundError) as info:
        sobuild.Cache(cache_dir).load(scale_spec())
    message = str(info.value)
    assert "/bin/true (SOBUILD_CXX='/bin/true')" in message
    assert "not a C++ compiler sobuild knows (GCC, Clang or MSVC)" in message
    assert "export SOBUILD_CXX=" in message


def test_a_program_printing_nonsense_is_not_a_compiler(tmp_path):
    nonsense = script(tmp_path / "nonsense", "echo 'Hello from a build script'\n")
    with pytest.raises(CompilerNotFoundError, match="printed 'Hello from a build script'"):
        detect({"SOBUILD_CXX": nonsense, "PATH": PATH}, ProbeRecords(tmp_path / "cache", None))
    assert not list((tmp_path / "cache").glob("toolchains/probe-*"))  # nothing remembered


def test_a_gcc_lookalike_without_a_target_triple_is_refused(tmp_path):
    # it preprocesses like g++ (it is g++ there), but knows no -dumpmachine
    fake = script(tmp_path / "fake-g++", f"""\
        case "$1" in
          -E) exec '{GXX}' "$@";;
          --version) echo "g++ (GCC) 12.2.0"; echo "Copyright (C) 2022 Free Software Foundation";;
          *) echo "unknown option $1";;
        esac
        """)
    with pytest.raises(CompilerNotFoundError, match="predefines the macros of GCC, but "
                                                    "-dumpmachine printed 'unknown option"):
        detect({"SOBUILD_CXX": fake, "PATH": PATH})


def test_from_command_gives_the_toolchain_of_one_compiler(clangxx, tmp_path):
    records = ProbeRecords(tmp_path, None)
    toolchain = from_command("clang++", records)
    assert isinstance(toolchain, Clang) and toolchain.command == (clangxx,)
    assert toolchain.probe_records == records
    with pytest.raises(CompilerNotFoundError, match="SOBUILD_CXX='no-such-compiler'"):
        from_command("no-such-compiler")
