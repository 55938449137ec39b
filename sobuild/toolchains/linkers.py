"""The linker a GCC or Clang driver links kernels with: the fastest one that works here.

A kernel's link is a small job, yet the driver's default, GNU ld (bfd), spends about
0.15 s of a 0.4 s build reading libstdc++'s symbols, on the critical path of every cold
build round. gold takes 0.04 s for the same shared object; lld and mold are faster still.
So the compiler probe tries ``-fuse-ld=`` with each of ``PREFERRED`` in turn, linking a
small shared object that uses the C++ runtime, and keeps the first that works; none (or a
target that is not ELF) leaves the driver's default. The choice and the linker's version
are part of the toolchain's identity, hence of every key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

#: Fastest first.
PREFERRED = ("mold", "lld", "gold")
#: Linking as kernels do; exceptions and ``new`` reach into libstdc++ (or libc++).
_TEST_SOURCE = """\
#include <stdexcept>
extern "C" int sobuild_link_probe(int n) {
    try { if (n < 0) throw std::runtime_error("negative"); return *new int(n); }
    catch (const std::exception&) { return -1; }
}
"""
_TIMEOUT = 60


@dataclass(frozen=True)
class Linker:
    """A linker chosen with ``-fuse-ld=name``: its program's path and what ``--version`` says."""

    name: str
    path: str
    version: str

    @property
    def option(self) -> str:
        return f"-fuse-ld={self.name}"


def fastest_linker(compiler: tuple[str, ...], system: str,
                   env: Mapping[str, str] | None = None) -> Linker | None:
    """The first of ``PREFERRED`` that links a C++ shared object with ``compiler``, or None
    (the driver's own linker) when none does or ``system`` does not use ELF."""
    if system not in ("Linux", "FreeBSD"):
        return None
    run_env = dict(env) if env is not None else None
    with tempfile.TemporaryDirectory(prefix="sobuild-linker-") as tmp:
        source, obj = os.path.join(tmp, "probe.cpp"), os.path.join(tmp, "probe.o")
        with open(source, "w", encoding="utf-8") as f:
            f.write(_TEST_SOURCE)
        if not _succeeds([*compiler, "-fPIC", "-c", "-o", obj, source], run_env):
            return None
        for name in PREFERRED:
            output = os.path.join(tmp, f"probe-{name}.so")
            if not _succeeds([*compiler, "-shared", f"-fuse-ld={name}", "-o", output, obj],
                             run_env) or not os.path.isfile(output):
                continue
            version = _output([*compiler, f"-fuse-ld={name}", "-Wl,--version"], run_env)
            if version:
                return Linker(name, _program_path(compiler, name, run_env),
                              version.splitlines()[0])
    return None


def _program_path(compiler: tuple[str, ...], name: str, env: dict | None) -> str:
    """Where the driver finds ``ld.<name>``: in its own directories, else on the PATH."""
    program = _output([*compiler, f"-print-prog-name=ld.{name}"], env).splitlines()
    found = program[0] if program else f"ld.{name}"
    if not os.path.isabs(found):
        found = shutil.which(found, path=(env or os.environ).get("PATH")) or ""
    return found


def _succeeds(argv: list[str], env: dict | None) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=_TIMEOUT, env=env,
                              stdin=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _output(argv: list[str], env: dict | None) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              timeout=_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""
