"""GCC (g++): builds a shared object with -shared -fPIC in one call."""

from __future__ import annotations

import os
import re
import shlex

from .base import Toolchain
from .probes import cpu_descriptor, run_compiler, stat_fingerprint

#: Flags whose meaning depends on the host CPU: a key must then name the CPU.
NATIVE_FLAG_RE = re.compile(r"^-m(?:arch|tune|cpu)=native$")
#: Options of Clang's compiler proper (-cc1) that say what "native" became; GCC's cc1plus
#: says it with -m options and --param cache sizes.
_CLANG_CPU_OPTIONS = ("-target-cpu", "-tune-cpu", "-target-feature")

#: The program name GCC prints first in --version (argv[0] of the driver).
_GCC_NAME_RE = re.compile(r"(?:^|[-/\\])(?:g\+\+|c\+\+|gcc)(?:-[\d.]+)?(?:\.exe)?$")

_native_memo: dict[tuple, str] = {}


def native_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    """The flags of ``flags`` that ask for the host CPU (``-march=native`` and kin)."""
    return tuple(f for f in flags if NATIVE_FLAG_RE.match(f))


def parse_native_options(driver_output: str) -> str:
    """The CPU options of the compiler-proper line of ``-###`` output, as one string.

    GCC expands ``-march=native`` into ``-march=znver3 -mavx2 ... --param l1-cache-size=32``;
    Clang into ``-target-cpu znver3 -target-feature +avx2 ...``.
    """
    for line in driver_output.splitlines():
        clang = '"-cc1"' in line
        if clang or "cc1plus" in line:
            break
    else:
        return ""
    kept, it = [], iter(shlex.split(line)[1:])
    for token in it:
        if token in _CLANG_CPU_OPTIONS or (not clang and token == "--param"):
            kept.append(f"{token} {next(it, '')}")
        elif token.startswith("-m") and not clang:
            kept.append(token)
    return " ".join(kept)


class GCC(Toolchain):
    family = "gcc"
    default_flags = ("-O3",)
    base_flags = ("-shared", "-fPIC", "-std=c++17", "-fvisibility=hidden")

    def export_macro(self) -> str:
        return '__attribute__((visibility("default")))'

    def shared_object_argv(self, source: str, output: str, include_dir: str,
                           flags: tuple[str, ...]) -> list[str]:
        return [*self.command, *self.base_flags, *flags, "-I", include_dir, "-o", output, source]

    def key_identity(self, flags: tuple[str, ...]) -> dict:
        """With ``-march=native`` (or ``-mtune``/``-mcpu=native``) the key names what the
        compiler makes of it on this host, so hosts with other CPUs build their own."""
        identity = self.identity()
        native = native_flags(flags)
        if native:
            identity["native"] = self.native_target(native)
        return identity

    def native_target(self, native: tuple[str, ...]) -> str:
        """What ``native`` means on this host, e.g. ``-march=znver3 -mavx2 ...``.

        Asked of the compiler (``-###``) once per host: cached by the compiler's stat and the
        CPU's model and features, which differ between the nodes of a mixed cluster.
        """
        memo = (self.command, native, self.probe_records)
        if memo not in _native_memo:
            cpu = cpu_descriptor()
            fingerprint = (stat_fingerprint(self.path, *self.command, *native, cpu)
                           if cpu is not None else None)

            def compute() -> dict:
                return {"options": self._ask_native(native, cpu)}

            data = (self.probe_records.get("native", fingerprint, compute, ("options",))
                    if self.probe_records is not None else compute())
            _native_memo[memo] = data["options"]
        return _native_memo[memo]

    def _ask_native(self, native: tuple[str, ...], cpu: str | None) -> str:
        env = {**os.environ, **dict(self.environment)}
        output = run_compiler([*self.command, *native, "-###", "-x", "c++", "-c", os.devnull,
                               "-o", os.devnull], env)
        # A compiler that says nothing useful still gets a key naming this host's CPU.
        return parse_native_options(output) or f"cpu:{cpu or 'unknown'}"

    @staticmethod
    def recognises(version_output: str) -> bool:
        """``g++ (Debian 12.2.0-14) 12.2.0``, ``x86_64-linux-gnu-g++-12 (...)``, ``g++.exe (...)``
        with the FSF's copyright (GNU ``true --version`` has the copyright, not the name)."""
        first = version_output.strip().split(None, 1)[0].lower() if version_output.strip() else ""
        return (bool(_GCC_NAME_RE.search(first))
                and "free software foundation" in version_output.lower())
