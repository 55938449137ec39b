"""GCC (g++): builds a shared object with -shared -fPIC in one call."""

from __future__ import annotations

import os
import platform
import re
import shlex
from collections.abc import Callable

from .base import Toolchain
from .linkers import fastest_linker
from .probes import cpu_descriptor, file_status, run_compiler, stat_fingerprint

#: Flags whose meaning depends on the host CPU: a key must then name the CPU.
NATIVE_FLAG_RE = re.compile(r"^-m(?:arch|tune|cpu)=native$")
#: Options of Clang's compiler proper (-cc1) that say what "native" became; GCC's cc1plus
#: says it with -m options and --param cache sizes.
_CLANG_CPU_OPTIONS = ("-target-cpu", "-tune-cpu", "-target-feature")

_native_memo: dict[tuple, str] = {}
#: Macros of compilers that take GCC's command line but not its precompiled headers.
_NOT_GCC_PCH = ("__INTEL_COMPILER", "__NVCOMPILER_MAJOR__")


def native_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    """The flags of ``flags`` that ask for the host CPU (``-march=native`` and kin)."""
    return tuple(f for f in flags if NATIVE_FLAG_RE.match(f))


def parse_native_options(driver_output: str) -> str:
    """The CPU options of the compiler-proper line of ``-###`` output, as one string.

    GCC expands ``-march=native`` into ``-march=znver3 -mavx2 ... --param l1-cache-size=32``;
    Clang into ``-target-cpu znver3 -target-feature +avx2 ...``.
    """
    line = _compiler_proper_line(driver_output)
    if line is None:
        return ""
    clang = '"-cc1"' in line
    kept, it = [], iter(shlex.split(line)[1:])
    for token in it:
        if token in _CLANG_CPU_OPTIONS or (not clang and token == "--param"):
            kept.append(f"{token} {next(it, '')}")
        elif token.startswith("-m") and not clang:
            kept.append(token)
    return " ".join(kept)


def _compiler_proper_line(driver_output: str) -> str | None:
    """The line of ``-###`` output that runs the compiler proper (GCC's cc1plus, Clang's
    ``-cc1``), or None."""
    for line in driver_output.splitlines():
        if '"-cc1"' in line or "cc1plus" in line:
            return line
    return None


def compiler_proper(driver_output: str) -> str:
    """The program a driver runs to compile C++, from its ``-###`` output: GCC's
    ``/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus``, Clang's ``/usr/lib/llvm-14/bin/clang``
    (symlinks resolved); "" if it names none. Behind a wrapper (mpicxx, a script), the
    compiler the wrapper runs."""
    line = _compiler_proper_line(driver_output)
    if line is None:
        return ""
    try:
        program = shlex.split(line)[0]
    except (ValueError, IndexError):
        return ""
    return os.path.realpath(program) if os.path.isabs(program) else program


class GCC(Toolchain):
    """GCC, and any compiler that predefines ``__GNUC__`` but not ``__clang__`` (mpicxx over
    g++, Intel's classic icpc, NVIDIA's nvc++): GCC's command line."""

    family = "gcc"
    default_flags = ("-O3",)
    base_flags = ("-shared", "-fPIC", "-std=c++17", "-fvisibility=hidden")
    identifying_macros = ("__VERSION__", "__GNUC__", "__GNUC_MINOR__", "__GNUC_PATCHLEVEL__",
                          "__INTEL_COMPILER", "__INTEL_COMPILER_UPDATE",
                          "__INTEL_COMPILER_BUILD_DATE", "__NVCOMPILER_MAJOR__",
                          "__NVCOMPILER_MINOR__", "__NVCOMPILER_PATCHLEVEL__")

    @classmethod
    def describe(cls, compiler: tuple[str, ...], preprocessed: str,
                 run: Callable[[list[str]], str]) -> dict:
        """``--version``, ``-dumpmachine``, the compiler proper (from ``-###``) and the
        fastest linker it can use."""
        version = run([*compiler, "--version"])
        target = run([*compiler, "-dumpmachine"]).strip()
        if not target or len(target.split()) != 1:
            raise ValueError(f"-dumpmachine printed {target[:200]!r}, not a target triple "
                             "such as x86_64-linux-gnu")
        driver = run([*compiler, "-###", "-x", "c++", "-c", os.devnull, "-o", os.devnull])
        linker = fastest_linker(compiler, platform.system())
        return {"version": version, "target": target, "proper": compiler_proper(driver),
                "linker": linker.name if linker else "",
                "linker_path": linker.path if linker else "",
                "linker_version": linker.version if linker else ""}

    def export_macro(self) -> str:
        return '__attribute__((visibility("default")))'

    def shared_object_argv(self, source: str, output: str, include_dir: str,
                           flags: tuple[str, ...]) -> list[str]:
        return [*self.command, *self.base_flags, *self.link_flags, *flags, "-I", include_dir,
                "-o", output, source]

    @property
    def link_flags(self) -> tuple[str, ...]:
        """``-fuse-ld=`` of the probe's faster linker, if it found one."""
        return (f"-fuse-ld={self.linker}",) if self.linker else ()

    # -- precompiled headers ---------------------------------------------------------

    pch_suffix = ".gch"

    @property
    def precompiled_headers(self) -> bool:
        """GCC itself, run directly, with a POSIX shell for ninja. Not behind a launcher
        (ccache caches no compile that reads a precompiled header unless configured to,
        distcc cannot send one), nor Intel's icpc or NVIDIA's nvc++ (other PCH options), nor
        Clang (its PCH names the headers it read by absolute path and is refused once they
        moved: sobuild builds in temporary directories)."""
        macros = dict(self.macros)
        return (self.family == "gcc" and not self.compiler and self.system != "Windows"
                and not any(name in macros for name in _NOT_GCC_PCH))

    def pch_argv(self, header: str, output: str, include_dir: str,
                 flags: tuple[str, ...]) -> list[str]:
        """The unit's command line (without ``-shared``, a link option) for a header: GCC
        uses a PCH only when the options that shape code are those it was built with."""
        base = tuple(f for f in self.base_flags if f != "-shared")
        return [*self.command, "-x", "c++-header", *base, *flags, "-I", include_dir,
                "-o", output, header]

    def pch_use_argv(self, header: str) -> list[str]:
        """``-include``: GCC looks for ``header.gch`` beside it and reads the text when that
        is missing or not valid for this compile; ``-Winvalid-pch`` says why in the log."""
        return ["-include", header, "-Winvalid-pch"]

    def pch_rule(self, name: str = "cxx_pch") -> str:
        """Built into ``$out.tmp`` and renamed: ``$out`` is there only if GCC succeeded. The
        headers it read are listed in ``$out.d`` (make's syntax)."""
        command = self.rule_words(self.pch_argv("$in", "$out.tmp", "$incdir",
                                                ("$flags", "-MD", "-MF", "$out.d")),
                                  shlex.quote)
        return (
            f"rule {name}\n"
            f"  command = ({command} && mv -f $out.tmp $out) > $log 2>&1 || rm -f $out.tmp\n"
            f"  description = PCH $out\n"
        )

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
            # The compiler proper and the PATH too: a wrapper (mpicxx) runs the compiler it
            # finds on the PATH, which can be upgraded while the wrapper stays the same.
            fingerprint = (stat_fingerprint(self.path, *self.command, *native, cpu,
                                            file_status(self.proper), os.environ.get("PATH", ""))
                           if cpu is not None else None)

            def compute() -> dict:
                return {"options": self._ask_native(native, cpu)}

            data = (self.probe_records.get("native", fingerprint, compute, ("options",))
                    if self.probe_records is not None else compute())
            _native_memo[memo] = data["options"]
        return _native_memo[memo]

    def _ask_native(self, native: tuple[str, ...], cpu: str | None) -> str:
        env = {**os.environ, **dict(self.environment)}
        output = run_compiler([*self.compiler_command, *native, "-###", "-x", "c++", "-c",
                               os.devnull, "-o", os.devnull], env)
        # A compiler that says nothing useful still gets a key naming this host's CPU.
        return parse_native_options(output) or f"cpu:{cpu or 'unknown'}"
