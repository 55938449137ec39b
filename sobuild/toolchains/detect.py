"""Find the C++ compiler: SOBUILD_CXX, then CXX, then the PATH (cl.exe via vswhere on Windows).

Probing a compiler (``--version``, ``-dumpmachine``) costs a few subprocess calls, so the
result is cached in the cache directory, keyed by the compiler's path and file status: a
warm process only stats the compiler.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import xxhash

from ..errors import CompilerNotFoundError
from .base import Toolchain
from .clang import Clang
from .gcc import GCC
from .msvc import MSVC, find_msvc

POSIX_CANDIDATES = ("c++", "g++", "clang++")
FAMILIES: dict[str, type[Toolchain]] = {"gcc": GCC, "clang": Clang, "msvc": MSVC}


def _run(argv: list[str], env: Mapping[str, str] | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env=dict(env) if env is not None else None)
    return (proc.stdout + proc.stderr).strip()


def probe(command: tuple[str, ...], environment: tuple[tuple[str, str], ...] = ()) -> Toolchain:
    """Run the compiler to learn its family, version and target."""
    env = {**os.environ, **dict(environment)} if environment else None
    if MSVC.looks_like(command[-1]):
        return MSVC.from_banner(command, _run(list(command), env), environment)
    version = _run([*command, "--version"], env)
    for cls in (Clang, GCC):
        if cls.recognises(version):
            target = _run([*command, "-dumpmachine"], env).splitlines()[0]
            return cls(command=command, version=version, target=target)
    raise CompilerNotFoundError(
        f"{' '.join(command)} is not a compiler sobuild knows (GCC, Clang or MSVC); "
        f"its --version said: {version.splitlines()[0] if version else '(nothing)'}")


def _resolve(command: tuple[str, ...]) -> tuple[str, ...] | None:
    found = shutil.which(command[-1])
    return (*command[:-1], os.path.realpath(found)) if found else None


def candidates(env: Mapping[str, str]) -> list[tuple[str, tuple[str, ...]]]:
    """Where to look, in order, as (reason, argv prefix) pairs."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for var in ("SOBUILD_CXX", "CXX"):
        if env.get(var, "").strip():
            found.append((f"${var}", tuple(shlex.split(env[var], posix=os.name != "nt"))))
    names = ("cl.exe",) if platform.system() == "Windows" else POSIX_CANDIDATES
    found.extend(("PATH", (name,)) for name in names)
    return found


def _stat_fingerprint(command: tuple[str, ...], environment: tuple) -> str:
    st = os.stat(command[-1])
    parts = [*command, str(st.st_mtime_ns), str(st.st_size), str(st.st_ino), repr(environment)]
    return xxhash.xxh3_64_hexdigest("\0".join(parts).encode())


def _cached_probe(command: tuple[str, ...], environment: tuple, cache_dir: Path | None) -> Toolchain:
    if cache_dir is None:
        return probe(command, environment)
    path = cache_dir / "toolchains" / f"{_stat_fingerprint(command, environment)}.json"
    try:
        data = json.loads(path.read_text())
        cls = FAMILIES[data.pop("family")]
        return cls(command=tuple(data["command"]), version=data["version"], target=data["target"],
                   system=data["system"],
                   environment=tuple(tuple(kv) for kv in data.get("environment", ())))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    toolchain = probe(command, environment)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**toolchain.identity(),
                                   "environment": [list(kv) for kv in toolchain.environment]}))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache still works; the next process probes again
    return toolchain


def detect(env: Mapping[str, str] | None = None, cache_dir: Path | None = None) -> Toolchain:
    """The toolchain sobuild builds with, and raise a helpful error if there is none."""
    env = os.environ if env is None else env
    looked: list[str] = []
    for reason, command in candidates(env):
        resolved = _resolve(command)
        environment: tuple = ()
        if resolved is None and MSVC.looks_like(command[-1]):
            msvc = find_msvc(env)
            if msvc is not None:
                resolved, environment = (*command[:-1], msvc.cl_path), msvc.environment
        if resolved is None:
            looked.append(f"{' '.join(command)} (from {reason}): not found")
            if reason != "PATH":  # an explicit choice that does not exist is an error
                break
            continue
        return _cached_probe(resolved, environment, cache_dir)
    raise CompilerNotFoundError(
        "no C++ compiler found. Looked for:\n  " + "\n  ".join(looked) +
        "\nInstall g++ or clang++ (Debian/Ubuntu: apt-get install g++), or point sobuild at "
        "one: export SOBUILD_CXX=/path/to/c++ (CXX is honoured too).")
