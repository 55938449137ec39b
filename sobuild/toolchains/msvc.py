"""MSVC (cl.exe): found through the environment of a developer prompt or through vswhere."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from .base import Toolchain

BANNER_RE = re.compile(r"Microsoft \(R\) C/C\+\+ Optimizing Compiler Version (?P<version>[\d.]+)"
                       r"(?: for (?P<arch>\w+))?")
#: cl's own names for its targets, as triples.
ARCH_TRIPLES = {"x64": "x86_64-pc-windows-msvc", "x86": "i686-pc-windows-msvc",
                "80x86": "i686-pc-windows-msvc", "ARM64": "aarch64-pc-windows-msvc",
                "ARM": "armv7-pc-windows-msvc"}
#: Variables vcvarsall.bat sets that cl and link need.
VC_ENV_VARS = ("PATH", "INCLUDE", "LIB", "LIBPATH", "VCINSTALLDIR", "VCToolsInstallDir",
               "WindowsSdkDir", "WindowsSDKVersion", "UCRTVersion", "UniversalCRTSdkDir")


class MSVC(Toolchain):
    family = "msvc"
    default_flags = ("/O2",)
    base_flags = ("/nologo", "/LD", "/EHsc", "/std:c++17", "/utf-8")

    @staticmethod
    def looks_like(path: str) -> bool:
        return PureWindowsPath(path).name.lower() in ("cl", "cl.exe")

    @classmethod
    def from_banner(cls, command: tuple[str, ...], banner: str,
                    environment: tuple[tuple[str, str], ...] = ()) -> MSVC:
        """Identity from what ``cl`` prints when run without arguments."""
        m = BANNER_RE.search(banner)
        if not m:
            raise ValueError(f"not an MSVC banner: {banner.splitlines()[:1]}")
        arch = m["arch"] or "x86"
        return cls(command=command, version=m.group(0), target=ARCH_TRIPLES.get(arch, arch),
                   system="Windows", environment=environment)

    def export_macro(self) -> str:
        return "__declspec(dllexport)"

    def shared_object_argv(self, source: str, output: str, include_dir: str,
                           flags: tuple[str, ...]) -> list[str]:
        obj = output + ".obj" if not output.startswith("$") else "$out.obj"
        return [*self.command, *self.base_flags, *flags, f"/I{include_dir}", source,
                f"/Fo{obj}", f"/Fe{output}"]

    def join_flags(self, flags: tuple[str, ...]) -> str:
        return subprocess.list2cmdline(list(flags))

    def ninja_rule(self, name: str = "cxx_shared") -> str:
        argv = self.shared_object_argv("$in", "$out", "$incdir", ("$flags",))
        command = " ".join(a if a.startswith(("$", "/")) else f'"{a}"' for a in argv)
        # ninja runs commands without a shell on Windows: cmd /c gives us the redirection.
        return (
            f"rule {name}\n"
            f"  command = cmd /c {command} > $log 2>&1\n"
            f"  description = CL $out\n"
        )

    _ERROR_RE = re.compile(r"\b(?:fatal )?error [CL]?\d+|: error\b", re.I)


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
    host = "Hostx64" if env.get("VSCMD_ARG_HOST_ARCH", "x64") == "x64" else "Hostx86"
    arch = env.get("VSCMD_ARG_TGT_ARCH", "x64")
    return str(PureWindowsPath(tools) / "bin" / host / arch / "cl.exe")


def find_msvc(env: Mapping[str, str], run=subprocess.run) -> FoundMSVC | None:
    """cl.exe with the environment it needs: from the current prompt, else through vswhere."""
    cl = cl_from_environment(env)
    if cl and os.path.exists(cl):
        return FoundMSVC(cl, ())
    vswhere = vswhere_path(env)
    if not vswhere.exists():
        return None
    out = run([str(vswhere), "-latest", "-products", "*", "-requires",
               "Microsoft.VisualStudio.Component.VC.Tools.x86.x64",
               "-property", "installationPath"], capture_output=True, text=True).stdout
    install = parse_vswhere(out)
    if not install:
        return None
    vcvars = Path(install) / "VC" / "Auxiliary" / "Build" / "vcvarsall.bat"
    out = run(f'cmd /u /c "{vcvars}" x64 && set', capture_output=True, text=True,
              shell=True).stdout
    vc_env = parse_set_output(out)
    cl = cl_from_environment(vc_env)
    if not cl:
        return None
    return FoundMSVC(cl, tuple(sorted(vc_env.items())))
