"""Toolchains: g++ and clang++ build for real; MSVC's command lines, ninja rule, output parsing and
detection against recorded outputs of cl.exe, vswhere and vcvarsall.bat."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sobuild
from sobuild import BuildError, CompilerNotFoundError, KernelSpec
from sobuild.compilation.ninja import Unit, write_build_file
from sobuild.compilation.translation_unit import render
from sobuild.toolchains import GCC, MSVC, detect, from_command
from sobuild.toolchains.gcc import native_flags, parse_native_options
from sobuild.toolchains.msvc import (
    cl_from_environment,
    find_msvc,
    parse_set_output,
    parse_vswhere,
    quote_arg,
    vcvars_arch,
)
from sobuild.toolchains.probes import ProbeRecords

from .kernels import BROKEN_SOURCE, SCALE_ENTRY, family, scale_spec

FIXTURES = Path(__file__).parents[1] / "fixtures" / "msvc"
PATH = os.environ["PATH"]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture
def gxx(cache_dir):
    return from_command(shutil.which("g++"), ProbeRecords(cache_dir, None))


@pytest.fixture
def clang(cache_dir, clangxx):
    return from_command(clangxx, ProbeRecords(cache_dir, None))


# -- GCC and Clang, for real ------------------------------------------------------------------

def test_gcc_and_clang_build_the_same_kernels_under_different_keys(cache_dir, gxx, clang):
    specs = family(3)
    results = {}
    for toolchain in (gxx, clang):
        cache = sobuild.Cache(cache_dir, toolchain=toolchain)
        kernels = cache.load_many(specs)
        outputs = []
        for kernel in kernels:
            v = np.array([4.0, 9.0])
            kernel(v, 2)
            outputs.append(v.tolist())
        keys = [cache.key(s) for s in specs]
        artifact = Path(kernels[0].artifact)
        meta = json.loads((artifact.parent / "meta.json").read_text())
        assert meta["toolchain"]["family"] == toolchain.family
        assert meta["toolchain"]["command"] == list(toolchain.command)
        results[toolchain.family] = (keys, outputs, artifact)
        cache.flush()
    (gcc_keys, gcc_out, gcc_lib), (clang_keys, clang_out, clang_lib) = results.values()
    assert gcc_out == clang_out == [[2.0 * s, 3.0 * s] for s in (1, 2, 3)]
    assert not set(gcc_keys) & set(clang_keys)
    assert gcc_lib != clang_lib and gcc_lib.suffix == clang_lib.suffix == ".so"


def test_a_kernel_without_flags_gets_the_default_optimisation(cache, gxx):
    assert gxx.default_flags == ("-O3",)  # on the instance, not only the class
    kernel = cache.load(scale_spec(flags=()))
    meta = json.loads((Path(kernel.artifact).parent / "meta.json").read_text())
    assert meta["flags"] == ["-O3"]


CXX_RUNTIME_KERNEL = """
#include <stdexcept>
#include <vector>
void run(double* v, int32_t n) {
    std::vector<double> copy(v, v + n);
    try { if (n < 0) throw std::runtime_error("negative"); } catch (const std::exception&) {}
    for (int32_t i = 0; i < n; i++) v[i] = copy[n - 1 - i];
}
"""

FRESH_CLANG_PROCESS = """
import sys, sobuild
from sobuild.loader.cffi_loader import ffi
from sobuild.toolchains import detect
toolchain = detect({"PATH": sys.argv[1]})   # clang++ is the only compiler on this PATH
kernel = sobuild.Cache(toolchain=toolchain).load(sobuild.KernelSpec(
    source=sys.argv[2], entry="void run(double* v, int32_t n)"))
v = ffi.new("double[]", [1.0, 2.0, 3.0])
kernel.func(v, 3)
print(toolchain.family, toolchain.command[0], list(v))
"""


def test_clangxx_from_the_path_links_the_cxx_runtime(cache_dir, tmp_path, clangxx):
    # /usr/bin/clang++ is a symlink to .../bin/clang: run under that name, clang compiles C++
    # but does not link libstdc++, and dlopen fails in a process that has not loaded it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "clang++").symlink_to(clangxx)
    out = subprocess.run([sys.executable, "-c", FRESH_CLANG_PROCESS, str(bin_dir),
                          CXX_RUNTIME_KERNEL], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["clang", str(bin_dir / "clang++"), "[3.0,", "2.0,", "1.0]"]


def test_a_clang_compile_error_reports_clangs_first_error_lines(cache_dir, clang):
    cache = sobuild.Cache(cache_dir, toolchain=clang)
    broken = KernelSpec(source=BROKEN_SOURCE, entry=SCALE_ENTRY, flags=("-O2",))
    good = family(2)
    with pytest.raises(BuildError) as info:
        cache.load_many([*good, broken])
    (failure,) = info.value.failures
    first = failure.first_lines[0]
    assert Path(failure.source_path).name in first
    assert "error: use of undeclared identifier 'undefined_name_here'" in first
    assert first in str(info.value) and failure.source_path in str(info.value)
    assert all(cache.lookup(spec) is not None for spec in good)


def test_first_error_lines_skip_warnings_that_mention_errors():
    log = ("kernel-1.cpp: In function 'void run(double*, int32_t)':\n"
           "kernel-1.cpp:2:9: warning: unused variable 'error' [-Wunused-variable]\n"
           "kernel-1.cpp:3:12: error: 'undefined_name_here' was not declared in this scope\n"
           "    3 |     v[0] = undefined_name_here + 1;\n")
    gcc = GCC(command=("g++",), version="", target="x86_64-linux-gnu")
    assert gcc.first_error_lines(log)[0].startswith("kernel-1.cpp:3:12: error:")
    assert gcc.first_error_lines("g++: fatal error: no input files\n") == [
        "g++: fatal error: no input files"]
    assert gcc.first_error_lines("a\nb\n", count=1) == ["a"]  # no error line: the start


# -- -march=native: the key names the host CPU --------------------------------------------------

GCC_DRIVER_LINE = (' /usr/lib/gcc/x86_64-linux-gnu/12/cc1plus -quiet -imultiarch x86_64-linux-gnu '
                   '-D_GNU_SOURCE /dev/null "-march=znver3" -mmmx -mavx2 -mno-avx512f --param '
                   '"l1-cache-size=32" "-mtune=znver3" -quiet -dumpbase null -o /tmp/cc1.s')
CLANG_DRIVER_LINE = (' "/usr/lib/llvm-14/bin/clang" "-cc1" "-triple" "x86_64-pc-linux-gnu" '
                     '"-mrelocation-model" "pic" "-target-cpu" "znver3" "-target-feature" "+avx2" '
                     '"-target-feature" "-avx512f" "-tune-cpu" "generic" "-o" "/dev/null"')


def test_native_options_are_read_from_the_driver_output():
    assert parse_native_options("Using built-in specs.\n" + GCC_DRIVER_LINE) == (
        "-march=znver3 -mmmx -mavx2 -mno-avx512f --param l1-cache-size=32 -mtune=znver3")
    assert parse_native_options("clang version 14.0.6\n" + CLANG_DRIVER_LINE) == (
        "-target-cpu znver3 -target-feature +avx2 -target-feature -avx512f -tune-cpu generic")
    assert parse_native_options("no compiler line") == ""
    assert native_flags(("-O3", "-march=native", "-mtune=native", "-march=x86-64")) == (
        "-march=native", "-mtune=native")


@pytest.mark.parametrize("compiler", ["g++", "clang++"])
def test_march_native_puts_the_host_cpu_into_the_key(cache_dir, compiler, request):
    if compiler == "clang++":
        request.getfixturevalue("clangxx")  # cannot run without it
    toolchain = from_command(compiler, ProbeRecords(cache_dir, None))
    cache = sobuild.Cache(cache_dir, toolchain=toolchain)
    portable = scale_spec(flags=("-O3",))
    native = scale_spec(flags=("-O3", "-march=native"))
    assert "native" not in toolchain.key_identity(portable.flags)
    cpu = toolchain.key_identity(native.flags)["native"]
    assert ("-march=" if compiler == "g++" else "-target-cpu ") in cpu
    assert "native" not in cpu  # what native became on this host, not the word
    assert cache.key(native) != cache.key(portable)
    assert cache.key(native) != cache.key(scale_spec(flags=("-O3", "-mtune=native")))
    probes = [json.loads(p.read_text())["options"]
              for p in (cache_dir / "toolchains").glob("native-*.json")]
    assert cpu in probes and len(probes) == 2  # -march=native and -mtune=native
    v = np.array([16.0])
    cache.load(native)(v, 1)
    assert v[0] == 8.0


# -- MSVC: recorded outputs -------------------------------------------------------------------

@pytest.mark.parametrize("banner,version,target", [
    ("cl_banner_x64.txt", "MSVC 19.38.33133 for x64", "x86_64-pc-windows-msvc"),
    ("cl_banner_x86.txt", "MSVC 19.38.33133 for x86", "i686-pc-windows-msvc"),
    ("cl_banner_arm64.txt", "MSVC 19.40.33811 for ARM64", "aarch64-pc-windows-msvc"),
    ("cl_banner_x64_de.txt", "MSVC 19.38.33133 for x64", "x86_64-pc-windows-msvc"),
    ("cl_banner_vs2008_80x86.txt", "MSVC 15.00.30729.01 for 80x86", "i686-pc-windows-msvc"),
])
def test_cl_banner_gives_version_and_target_triple(banner, version, target):
    cl = MSVC.from_banner(("cl.exe",), fixture(banner))
    assert (cl.version, cl.target, cl.system, cl.suffix) == (version, target, "Windows", ".dll")
    assert cl.identity()["family"] == "msvc"


def test_a_localised_banner_gives_the_same_identity_as_the_english_one():
    english = MSVC.from_banner(("cl.exe",), fixture("cl_banner_x64.txt"))
    german = MSVC.from_banner(("cl.exe",), fixture("cl_banner_x64_de.txt"))
    assert english.identity() == german.identity()


def test_something_else_is_not_a_banner():
    with pytest.raises(ValueError, match="not an MSVC banner: 'g\\+\\+ \\(GCC\\) 12'"):
        MSVC.from_banner(("cl.exe",), "g++ (GCC) 12\n")


CL = (r"C:\Program Files\Microsoft Visual Studio\2022\Community\VC\Tools\MSVC\14.38.33130"
      r"\bin\Hostx64\x64\cl.exe")


@pytest.fixture
def msvc() -> MSVC:
    return MSVC.from_banner((CL,), fixture("cl_banner_x64.txt"))


def test_msvc_command_line(msvc):
    assert msvc.shared_object_argv("unit0.cpp", "unit0.dll", "include0", ("/O2", "/fp:fast")) == [
        CL, "/nologo", "/LD", "/MD", "/EHsc", "/std:c++17", "/utf-8", "/O2", "/fp:fast",
        "/Iinclude0", "unit0.cpp", "/Founit0.dll.obj", "/Feunit0.dll"]


def test_msvc_ninja_rule_runs_cl_through_cmd_with_the_log_redirected(msvc):
    assert msvc.ninja_rule() == (
        "rule cxx_shared\n"
        '  command = cmd /S /c ""C:\\Program Files\\Microsoft Visual Studio\\2022\\Community\\VC'
        '\\Tools\\MSVC\\14.38.33130\\bin\\Hostx64\\x64\\cl.exe" /nologo /LD /MD /EHsc /std:c++17 '
        '/utf-8 $flags /I$incdir $in /Fo$out.obj /Fe$out > $log 2>&1"\n'
        "  description = CL $out\n")


@pytest.mark.parametrize("flag,quoted", [
    ("/O2", "/O2"),
    ("/DNAME=two words", '"/DNAME=two words"'),
    ('/DSTR="x"', '"/DSTR=\\"x\\""'),
    ("/DAMP=a&b", '"/DAMP=a&b"'),
    ("/IC:\\dir with space\\", '"/IC:\\dir with space\\\\"'),
    ("", '""'),
])
def test_msvc_flags_are_quoted_for_cl_under_cmd(msvc, flag, quoted):
    assert quote_arg(flag) == quoted
    assert msvc.join_flags(("/O2", flag)) == f"/O2 {quoted}"


def test_msvc_build_file_and_translation_unit(msvc, tmp_path):
    spec = scale_spec(flags=("/O2", "/fp:fast"))
    key = "0" * 32
    source = render([(key, spec)], msvc)
    assert '#define SOBUILD_EXPORT extern "C" __declspec(dllexport)' in source
    assert msvc.export_macro() == "__declspec(dllexport)"
    write_build_file([Unit("unit0", [(key, spec)], source)], tmp_path, msvc)
    build = (tmp_path / "build.ninja").read_text()
    assert "build unit0.dll: cxx_shared unit0.cpp\n  flags = /O2 /fp$:fast\n" not in build
    assert "build unit0.dll: cxx_shared unit0.cpp\n  flags = /O2 /fp:fast\n" in build
    assert "  log = unit0.log" in build and "cmd /S /c" in build


def test_msvc_first_error_lines_start_at_the_first_error_not_a_warning(msvc):
    lines = msvc.first_error_lines(fixture("cl_error_log.txt"))
    assert lines == [
        "kernel-3f9a0c2d51e8b7a4.cpp(3): error C2065: 'undefined_name_here': undeclared identifier",
        "kernel-3f9a0c2d51e8b7a4.cpp(5): error C2143: syntax error: missing ';' before '}'"]
    assert msvc.first_error_lines(fixture("link_error_log.txt")) == [
        "LINK : fatal error LNK1104: cannot open file 'unit1.dll'"]
    assert msvc.first_error_lines("cl : Command line error D8021 : invalid numeric argument "
                                  "'/Wfoo'")[0].startswith("cl : Command line error D8021")


def test_vswhere_and_vcvarsall_outputs_are_parsed():
    assert parse_vswhere(fixture("vswhere_installation_path.txt")) == (
        r"C:\Program Files\Microsoft Visual Studio\2022\Community")
    assert parse_vswhere("\r\n") is None
    env = parse_set_output(fixture("vcvarsall_x64_set.txt"))
    assert env["PATH"].startswith(r"C:\Program Files\Microsoft Visual Studio")  # from "Path="
    assert env["INCLUDE"].count(";") == 3 and env["LIB"].endswith(r"um\x64")
    assert env["VSCMD_ARG_TGT_ARCH"] == "x64"
    assert "USERNAME" not in env and "COMPUTERNAME" not in env
    assert cl_from_environment(env) == CL
    assert cl_from_environment({**env, "VSCMD_ARG_HOST_ARCH": "arm64",
                                "VSCMD_ARG_TGT_ARCH": "arm64"}).endswith(r"\Hostarm64\arm64\cl.exe")
    assert cl_from_environment({}) is None


@pytest.mark.parametrize("machine,arch", [("AMD64", "x64"), ("ARM64", "arm64"), ("x86", "x86")])
def test_vcvarsall_architecture_of_the_host(machine, arch):
    assert vcvars_arch(machine) == arch


class RecordedWindows:
    """subprocess.run and os.path.exists of a Windows machine with VS 2022 installed."""

    def __init__(self, program_files_x86: Path, vswhere_output: str, set_output: str):
        self.calls: list = []
        self.existing = {str(program_files_x86 / "Microsoft Visual Studio" / "Installer" /
                             "vswhere.exe")}
        self.outputs = [vswhere_output, set_output]

    def run(self, argv, **kwargs):
        self.calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout=self.outputs[len(self.calls) - 1],
                                           stderr="")

    def exists(self, path: str) -> bool:
        return path in self.existing


def test_find_msvc_through_vswhere_and_vcvarsall(tmp_path):
    windows = RecordedWindows(tmp_path, fixture("vswhere_installation_path.txt"),
                              fixture("vcvarsall_x64_set.txt"))
    found = find_msvc({"ProgramFiles(x86)": str(tmp_path)}, run=windows.run,
                      exists=windows.exists, arch="x64")
    assert found.cl_path == CL
    env = dict(found.environment)
    assert env["INCLUDE"].startswith(r"C:\Program Files\Microsoft Visual Studio\2022")
    assert set(env) >= {"PATH", "INCLUDE", "LIB", "LIBPATH", "VCToolsInstallDir"}
    vswhere, vcvars = windows.calls
    assert vswhere[0].endswith("vswhere.exe")
    assert vswhere[1:] == ["-latest", "-products", "*", "-requires",
                           "Microsoft.VisualStudio.Component.VC.Tools.x86.x64",
                           "-property", "installationPath", "-utf8"]
    # cmd /s /c with one outer pair of quotes; no /u (it would make `set` print UTF-16)
    assert vcvars == ('cmd.exe /d /s /c ""C:\\Program Files\\Microsoft Visual Studio\\2022\\'
                      'Community\\VC\\Auxiliary\\Build\\vcvarsall.bat" x64 >nul && set"')


def test_find_msvc_asks_for_the_arm64_tools_on_arm64(tmp_path):
    windows = RecordedWindows(tmp_path, fixture("vswhere_installation_path.txt"), "")
    assert find_msvc({"ProgramFiles(x86)": str(tmp_path)}, run=windows.run,
                     exists=windows.exists, arch="arm64") is None  # vcvarsall printed nothing
    assert "Microsoft.VisualStudio.Component.VC.Tools.ARM64" in windows.calls[0]
    assert " arm64 >nul" in windows.calls[1]


def test_find_msvc_in_a_developer_prompt_runs_nothing(tmp_path):
    windows = RecordedWindows(tmp_path, "", "")
    windows.existing.add(CL)
    prompt = parse_set_output(fixture("vcvarsall_x64_set.txt"))
    found = find_msvc(prompt, run=windows.run, exists=windows.exists)
    assert found.cl_path == CL and found.environment == () and windows.calls == []


def test_no_visual_studio_means_no_msvc(tmp_path):
    windows = RecordedWindows(tmp_path, "", "")
    assert find_msvc({"ProgramFiles(x86)": str(tmp_path / "elsewhere")}, run=windows.run,
                     exists=windows.exists) is None
    assert find_msvc({"ProgramFiles(x86)": str(tmp_path)}, run=windows.run,
                     exists=windows.exists) is None  # vswhere found no installation
    assert len(windows.calls) == 1


#: What cl /E prints on stdout for the detection probe (cl defines _MSC_VER, not __clang__).
CL_PREPROCESSED = """\
#line 1 "C:\\\\Users\\\\me\\\\AppData\\\\Local\\\\Temp\\\\sobuild_probe.cpp"

sobuild_family "msvc"

sobuild_macro "_MSC_FULL_VER" 194033811

sobuild_macro "_MSC_BUILD" 0
"""


def test_detect_recognises_cl_exe_by_its_macros_and_reads_its_banner(tmp_path):
    # a program named cl.exe that preprocesses like cl and prints cl's recorded banner on
    # stderr, as cl does for every run
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    preprocessed = tmp_path / "preprocessed.txt"
    preprocessed.write_text(CL_PREPROCESSED)
    cl = bin_dir / "cl.exe"
    cl.write_text(f"#!/bin/sh\ncat '{FIXTURES / 'cl_banner_arm64.txt'}' >&2\n"
                  f"[ \"$1\" = -E ] && cat '{preprocessed}'\nexit 0\n")
    cl.chmod(0o755)
    records = ProbeRecords(tmp_path / "cache", None)
    toolchain = detect({"SOBUILD_CXX": "cl.exe", "PATH": str(bin_dir)}, records)
    assert isinstance(toolchain, MSVC)
    assert (toolchain.target, toolchain.suffix) == ("aarch64-pc-windows-msvc", ".dll")
    assert toolchain.version == "MSVC 19.40.33811 for ARM64"
    assert toolchain.identity()["macros"] == {"_MSC_FULL_VER": "194033811", "_MSC_BUILD": "0"}
    assert detect({"SOBUILD_CXX": "cl.exe", "PATH": str(bin_dir)}, records) == toolchain


def test_a_program_named_cl_exe_that_is_gcc_is_gcc(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cl.exe").symlink_to(shutil.which("g++"))
    toolchain = detect({"SOBUILD_CXX": "cl.exe", "PATH": str(bin_dir)})
    assert isinstance(toolchain, GCC) and toolchain.family == "gcc"


def test_a_missing_cl_exe_says_what_to_do(tmp_path):
    with pytest.raises(CompilerNotFoundError, match="SOBUILD_CXX='cl.exe'.*not on the PATH"):
        detect({"SOBUILD_CXX": "cl.exe", "PATH": str(tmp_path),
                "ProgramFiles(x86)": str(tmp_path)})


def test_the_suffix_follows_the_toolchains_system():
    assert GCC(command=("g++",), version="", target="", system="Darwin").suffix == ".dylib"
    assert GCC(command=("g++",), version="", target="", system="Linux").suffix == ".so"
    assert MSVC(command=("cl.exe",), version="", target="", system="Windows").suffix == ".dll"
