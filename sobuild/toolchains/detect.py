"""Find the C++ compiler: SOBUILD_CXX, then CXX, then the PATH (cl.exe via vswhere on Windows).

Probing a compiler (``--version``, ``-dumpmachine``) costs a few subprocess calls, so the
result is remembered in ``<cache>/toolchains/`` (``ProbeRecords``), keyed by the compiler's
path and file status: a warm process only stats the compiler and reads one small JSON file.
The command that runs is always the one found here, never one read from a record.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
from collections.abc import Mapping

from ..errors import CompilerNotFoundError
from .base import Toolchain
from .clang import Clang
from .gcc import GCC
from .msvc import MSVC, find_msvc
from .probes import ProbeRecords, run_compiler, stat_fingerprint

POSIX_CANDIDATES = ("c++", "g++", "clang++")
FAMILIES: dict[str, type[Toolchain]] = {"gcc": GCC, "clang": Clang, "msvc": MSVC}

HOW_TO_SET = ("Point sobuild at a C++ compiler: export SOBUILD_CXX=/path/to/g++ (or clang++; "
              "a launcher works too: SOBUILD_CXX='ccache g++'). CXX is honoured after it.")


def probe(command: tuple[str, ...], environment: tuple[tuple[str, str], ...] = ()) -> Toolchain:
    """Run the compiler to learn its family, version and target."""
    env = {**os.environ, **dict(environment)} if environment else None
    resolved = os.path.realpath(command[-1])
    if MSVC.looks_like(command[-1]):
        banner = run_compiler(list(command), env)
        try:
            return MSVC.from_banner(command, banner, environment)
        except ValueError as exc:
            raise CompilerNotFoundError(f"{command[-1]} does not look like MSVC's cl.exe "
                                        f"({exc}). {HOW_TO_SET}") from None
    version = run_compiler([*command, "--version"], env)
    for cls in (Clang, GCC):
        if cls.recognises(version):
            target = run_compiler([*command, "-dumpmachine"], env).strip()
            if not target or len(target.split()) != 1:
                raise CompilerNotFoundError(
                    f"{shlex.join(command)} -dumpmachine printed {target[:200]!r}, not a "
                    f"target triple such as x86_64-linux-gnu. {HOW_TO_SET}")
            return cls(command=command, version=version, target=target, resolved=resolved)
    said = version.splitlines()[0][:200] if version else "(nothing)"
    raise CompilerNotFoundError(
        f"{shlex.join(command)} is not a C++ compiler sobuild knows (GCC, Clang or MSVC): its "
        f"--version printed {said!r}. {HOW_TO_SET}")


def candidates(env: Mapping[str, str]) -> list[tuple[str, tuple[str, ...]]]:
    """Where to look, in order, as (source, argv prefix): source is SOBUILD_CXX, CXX or PATH."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for var in ("SOBUILD_CXX", "CXX"):
        command = tuple(_split(env.get(var, "")))
        if command:
            found.append((var, command))
    names = ("cl.exe",) if platform.system() == "Windows" else POSIX_CANDIDATES
    found.extend(("PATH", (name,)) for name in names)
    return found


def _split(value: str) -> list[str]:
    """A command line into words: POSIX rules, or Windows' (paths keep their backslashes)."""
    if os.name != "nt":
        return shlex.split(value)
    return [w[1:-1] if len(w) > 1 and w[0] == w[-1] == '"' else w
            for w in shlex.split(value, posix=False)]


def _resolve(command: tuple[str, ...], env: Mapping[str, str]) -> tuple[str, ...] | None:
    """``command`` with its compiler as an absolute path, symlinks kept.

    Kept, because the name chooses the driver: /usr/bin/clang++ resolves to .../bin/clang,
    which compiles C++ but does not link the C++ runtime; ccache's symlinks resolve to ccache.
    """
    found = shutil.which(command[-1], path=env.get("PATH"))
    return (*command[:-1], os.path.abspath(found)) if found else None


def _not_found(command: tuple[str, ...], env: Mapping[str, str]) -> str:
    name = command[-1]
    if os.sep in name or (os.altsep and os.altsep in name):
        if os.path.isdir(name):
            return "is a directory"
        return "is not executable" if os.path.exists(name) else "no such file"
    return "not on the PATH" + ("" if env.get("PATH", os.environ.get("PATH")) else
                                " (PATH is empty)")


_PROBE_FIELDS = ("family", "command", "version", "target", "system", "resolved", "environment")


def _cached_probe(command: tuple[str, ...], environment: tuple[tuple[str, str], ...],
                  records: ProbeRecords | None) -> Toolchain:
    recorded_environment = [list(kv) for kv in environment]

    def compute() -> dict:
        return {**probe(command, environment).identity(), "environment": recorded_environment}

    def check(data: dict) -> str | None:
        """Why a record is not this compiler's probe (None: it is)."""
        if data["command"] != list(command):
            return (f"names the command {data['command']!r}, not the compiler that was probed "
                    f"({shlex.join(command)})")
        if data["environment"] != recorded_environment:
            return "names another environment than the compiler's"
        if data["family"] not in FAMILIES or not all(
                isinstance(data[f], str) for f in ("version", "target", "system", "resolved")):
            return "is not a probe record of this version of sobuild"
        return None

    fingerprint = stat_fingerprint(command[-1], *command, repr(environment))
    data = (records.get("probe", fingerprint, compute, _PROBE_FIELDS, check)
            if records is not None else compute())
    # The command and environment are the ones probed: a record only says what they are.
    return FAMILIES[data["family"]](
        command=command, version=data["version"], target=data["target"],
        system=data["system"], environment=environment, resolved=data["resolved"],
        probe_records=records)


def detect(env: Mapping[str, str] | None = None, records: ProbeRecords | None = None
           ) -> Toolchain:
    """The toolchain sobuild builds with; CompilerNotFoundError saying what to do if none.

    ``env`` (default ``os.environ``) supplies SOBUILD_CXX, CXX and PATH; ``records`` is
    where probes are remembered (a cache's ``toolchains/``), None to probe every time.
    """
    env = os.environ if env is None else env
    looked: list[str] = []
    for source, command in candidates(env):
        resolved = _resolve(command, env)
        environment: tuple[tuple[str, str], ...] = ()
        if resolved is None and MSVC.looks_like(command[-1]):
            msvc = find_msvc(env)
            if msvc is not None:
                resolved, environment = (*command[:-1], msvc.cl_path), msvc.environment
        if resolved is not None:
            try:
                return _cached_probe(resolved, environment, records)
            except CompilerNotFoundError as exc:
                where = f"{source}={env[source]!r}" if source != "PATH" else "on the PATH"
                raise CompilerNotFoundError(f"{resolved[-1]} ({where}): {exc}") from None
        why = _not_found(command, env)
        if source != "PATH":
            # An explicit choice that does not exist is an error, not a reason to pick another.
            raise CompilerNotFoundError(
                f"{source}={env[source]!r} names no compiler sobuild can run: "
                f"{command[-1]} {why}. Set {source} to the path of a C++ compiler (g++, "
                f"clang++), or unset it to use the one on the PATH. {HOW_TO_SET}")
        looked.append(command[-1])
    path = env.get("PATH", os.environ.get("PATH", ""))
    raise CompilerNotFoundError(
        f"no C++ compiler found: looked for {', '.join(looked)} on the PATH "
        f"({path or 'empty'}): not found. Install g++ or clang++ (Debian/Ubuntu: apt-get "
        f"install g++; macOS: xcode-select --install), or: {HOW_TO_SET}")


def from_command(command: str, records: ProbeRecords | None = None) -> Toolchain:
    """The toolchain of ``command`` (``"clang++"``, ``"/opt/gcc-13/bin/g++"``, ``"ccache g++"``).

    For ``sobuild.Cache(toolchain=from_command("clang++"))``; raises CompilerNotFoundError
    when it is missing or not a compiler. ``records``: where its probe is remembered.
    """
    return detect({"SOBUILD_CXX": command, "PATH": os.environ.get("PATH", "")}, records)
