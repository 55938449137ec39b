"""MSVC (cl.exe): found through the environment of a developer prompt or through vswhere.

Everything here that reads what Windows prints (cl's banner, vswhere, the ``set`` output
after vcvarsall.bat) is a pure function, tested on any platform with recorded outputs.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from .base import Toolchain

#: cl's banner, also localised ("... Optimierungscompiler Version 19.38.33133 für x64").
BANNER_RE = re.compile(r"Microsoft\b.*?\bversion\s+(?P<version>\d+(?:\.\d+)+)"
                       r"(?:[ \t]+\S+[ \t]+(?P<arch>ARM64EC|ARM64|ARM|x64|AMD64|80x86|x86)\b)?",
                       re.I)
#: cl's own names for its targets, as triples.
ARCH_TRIPLES = {"x64": "x86_64-pc-windows-msvc", "amd64": "x86_64-pc-windows-msvc",
                "x86": "i686-pc-windows-msvc", "80x86": "i686-pc-windows-msvc",
                "arm64": "aarch64-pc-windows-msvc", "arm64ec": "arm64ec-pc-windows-msvc",
                "arm": "thumbv7a-pc-windows-msvc"}
#: Variables vcvarsall.bat sets that cl and link need (and the architectures it chose).
VC_ENV_VARS = ("PATH", "INCLUDE", "LIB", "LIBPATH", "VCINSTALLDIR", "VCToolsInstallDir",
               "WindowsSdkDir", "WindowsSDKVersion", "UCRTVersion", "UniversalCRTSdkDir",
               "VSCMD_ARG_HOST_ARCH", "VSCMD_ARG_TGT_ARCH")
#: platform.machine() on Windows -> the architecture argument of vcvarsall.bat.
VCVARS_ARCH = {"amd64": "x64", "x86_64": "x64", "arm64": "arm64", "aarch64": "arm64",
               "x86": "x86", "i386": "x86", "i686": "x86"}
#: vswhere component that a cl for each vcvarsall architecture comes with.
VC_COMPONENTS = {"arm64": "Microsoft.VisualStudio.Component.VC.Tools.ARM64"}
VC_COMPONENT_DEFAULT = "Microsoft.VisualStudio.Component.VC.Tools.x86.x64"

#: Characters that make an argument need quotes on cl's command line run through cmd.
_NEEDS_QUOTES = re.compile(r'[\s"&|<>^()]')


def quote_arg(arg: str) -> str:
    """``arg`` for cl's command line under ``cmd /c``: the MSVC runtime's quoting rules, and
    quotes around anything cmd would otherwise act on (spaces, ``& | < > ^ ( )``)."""
    if arg and not _NEEDS_QUOTES.search(arg):
        return arg
    out, backslashes = [], 0
    for ch in arg:
        if ch == "\\":
            backslashes += 1
            continue
        out.append("\\" * (2 * backslashes + 1) + '"' if ch == '"' else "\\" * backslashes + ch)
        backslashes = 0
    out.append("\\" * (2 * backslashes))
    return '"' + "".join(out) + '"'


def parse_banner(banner: str) -> dict:
    """``version``, ``target`` and ``system`` from what ``cl`` prints on stderr; ValueError
    if it holds no banner."""
    m = BANNER_RE.search(banner)
    if not m:
        first = banner.strip().splitlines()[0] if banner.strip() else "(nothing)"
        raise ValueError(f"not an MSVC banner: {first!r}")
    arch = m["arch"] or "x86"  # banners before VS 2005 named no target: 32-bit x86
    return {"version": f"MSVC {m['version']} for {arch}",
            "target": ARCH_TRIPLES.get(arch.lower(), arch.lower()), "system": "Windows"}


class MSVC(Toolchain):
    """Microsoft's cl: predefines ``_MSC_VER`` and not ``__clang__``."""

    family = "msvc"
    default_flags = ("/O2",)
    # /MD: the DLL runtime. With the static one (/LD's default) every kernel DLL takes a
    # fiber-local-storage slot of its own, and a process runs out of them at ~120 DLLs.
    base_flags = ("/nologo", "/LD", "/MD", "/EHsc", "/std:c++17", "/utf-8")
    identifying_macros = ("_MSC_FULL_VER", "_MSC_BUILD")

    @staticmethod
    def looks_like(path: str) -> bool:
        """Named like cl: where to look for one through vswhere (never what recognises one)."""
        return PureWindowsPath(path).name.lower() in ("cl", "cl.exe")

    @classmethod
    def from_banner(cls, command: tuple[str, ...], banner: str,
                    environment: tuple[tuple[str, str], ...] = ()) -> MSVC:
        """Identity from what ``cl`` prints when run without arguments."""
        return cls(command=command, environment=environment, **parse_banner(banner))

    @classmethod
    def describe(cls, compiler: tuple[str, ...], preprocessed: str,
                 run: Callable[[list[str]], str]) -> dict:
        """Version and target from cl's banner: printed on stderr while it preprocessed the
        detection probe, else by cl run without arguments."""
        try:
            return parse_banner(preprocessed)
        except ValueError:
            return parse_banner(run(list(compiler)))

    def export_macro(self) -> str:
        return "__declspec(dllexport)"

    def shared_object_argv(self, source: str, output: str, include_dir: str,
                           flags: tuple[str, ...]) -> list[str]:
        return [*self.command, *self.base_flags, *flags, f"/I{include_dir}", source,
                f"/Fo{output}.obj", f"/Fe{output}"]

    def join_flags(self, flags: tuple[str, ...]) -> str:
        return " ".join(quote_arg(f) for f in flags)

    def ninja_rule(self, name: str = "cxx_shared") -> str:
        command = self.rule_command(quote_arg)
        # ninja runs commands without a shell on Windows: cmd gives us the redirection.
        # /S with one outer pair of quotes: cmd strips exactly those and keeps the rest.
        return (
            f"rule {name}\n"
            f'  command = cmd /S /c "{command} > $log 2>&1"\n'
            f"  description = CL $out\n"
        )

    #: ``file.cpp(3): error C2065: ...``, ``LINK : fatal error LNK1104: ...``,
    #: ``cl : Command line error D8021 : ...``; never a warning (``warning C4244``).
    _ERROR_RE = re.compile(r"\b(?:fatal\s+)?error\s+[A-Z]{1,3}\d{4,5}\b")


@dataclass(frozen=True)
class FoundMSVC:
    cl_path: str
    environment: tuple[tuple[str, str], ...]


def vswhere_path(env: Mapping[str, str]) -> Path:
    root = env.get("ProgramFiles(x86)", r"C:\Program Files (x86)")
    return Path(root) / "Microsoft Visual Studio" / "Installer" / "vswhere.exe"


def parse_vswhere(output: str) -> str | None:
    """The installation path vswhere printed (``-property installationPath``)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[0] if lines else None


def parse_set_output(output: str) -> dict[str, str]:
    """The variables of ``cmd /c "vcvarsall.bat x64 && set"`` that cl and link need."""
    wanted = {name.upper(): name for name in VC_ENV_VARS}
    env = {}
    for line in output.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.upper() in wanted:
            env[wanted[name.upper()]] = value.strip()
    return env


def cl_from_environment(env: Mapping[str, str]) -> str | None:
    """cl.exe of a developer prompt (``VCToolsInstallDir`` set by vcvarsall)."""
    tools = env.get("VCToolsInstallDir")
    if not tools:
        return None
    host = "Host" + env.get("VSCMD_ARG_HOST_ARCH", "x64").lower()
    arch = env.get("VSCMD_ARG_TGT_ARCH", "x64").lower()
    return str(PureWindowsPath(tools) / "bin" / host / arch / "cl.exe")


def vcvars_arch(machine: str | None = None) -> str:
    """vcvarsall.bat's name for this host's architecture (``AMD64`` -> ``x64``)."""
    machine = (machine or platform.machine()).lower()
    return VCVARS_ARCH.get(machine, "x64")


def find_msvc(env: Mapping[str, str], run=subprocess.run,
              exists: Callable[[str], bool] = os.path.exists,
              arch: str | None = None) -> FoundMSVC | None:
    """cl.exe with the environment it needs: from the current prompt, else through vswhere.

    ``run`` and ``exists`` are ``subprocess.run`` and ``os.path.exists`` (replaceable, so
    that recorded outputs test this on any platform); ``arch`` is vcvarsall's architecture
    (default: this host's).
    """
    cl = cl_from_environment(env)
    if cl and exists(cl):
        return FoundMSVC(cl, ())
    vswhere = vswhere_path(env)
    if not exists(str(vswhere)):
        return None
    arch = arch or vcvars_arch()
    out = run([str(vswhere), "-latest", "-products", "*", "-requires",
               VC_COMPONENTS.get(arch, VC_COMPONENT_DEFAULT), "-property", "installationPath",
               "-utf8"], capture_output=True, text=True, encoding="utf-8").stdout
    install = parse_vswhere(out)
    if not install:
        return None
    vcvars = PureWindowsPath(install) / "VC" / "Auxiliary" / "Build" / "vcvarsall.bat"
    # A string, not a list: Windows hands it to cmd as it is (a list would be re-quoted).
    out = run(f'cmd.exe /d /s /c ""{vcvars}" {arch} >nul && set"', capture_output=True,
              text=True).stdout
    vc_env = parse_set_output(out)
    cl = cl_from_environment(vc_env)
    if not cl:
        return None
    return FoundMSVC(cl, tuple(sorted(vc_env.items())))
