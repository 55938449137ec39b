"""Find the C++ compiler (SOBUILD_CXX, then CXX, then the PATH; cl.exe via vswhere on Windows)
and recognise it by what it is, not by its name or what ``--version`` prints.

What a compiler is comes from the macros it predefines, the way sccache's
``detect_c_compiler`` finds out: it preprocesses a small file (``PROBE_SOURCE``) whose
``#if defined(__NVCC__) ... #elif defined(__clang__) ... #elif defined(__GNUC__)`` chain
leaves one marker standing. So any GCC- or Clang-compatible compiler works whatever it is
called (Intel's icpx defines ``__clang__``, mpicxx runs g++, a ``clang++`` script that runs
g++ is GCC), and a program that is no compiler says so. The same file prints the macros that
tell versions apart (``__VERSION__``, ``__clang_version__``, ``__INTEL_LLVM_COMPILER``, ...):
behind a wrapper they are the real compiler's, and they go into the key.

Launchers: a known launcher (``LAUNCHERS``: ccache, sccache, distcc, icecc, buildcache) in
front of the compiler (``SOBUILD_CXX='ccache g++'``) runs the compiles, but the compiler
after it is the one probed and named in the key: ``ccache g++`` and ``g++`` build the same
binary under the same key. A launcher's stand-in link found first on the PATH
(``/usr/lib/ccache/g++ -> ../../bin/ccache``) stands for the next g++ on the PATH that is
not one, as the launcher finds it; that compiler is the one probed and named.

Probing (preprocessing the file, ``--version``, ``-dumpmachine``, ``-###``) costs a few
subprocess calls, so the result is remembered in ``<cache>/toolchains/`` (``ProbeRecords``),
named by the compiler's path and file status, the command, and the PATH (a wrapper runs
the compiler the PATH finds); a record whose compiler proper (cc1plus, clang) has changed
since is probed again. A warm process only stats files and reads one small JSON file. The
command that runs is always the one found here, never one read from a record.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence

import xxhash

from ..errors import CompilerNotFoundError
from .base import Toolchain
from .clang import Clang
from .gcc import GCC
from .msvc import MSVC, find_msvc
from .probes import ProbeRecords, file_status, run_compiler, stat_fingerprint

POSIX_CANDIDATES = ("c++", "g++", "clang++")
FAMILIES: dict[str, type[Toolchain]] = {"gcc": GCC, "clang": Clang, "msvc": MSVC}
FAMILY_NAMES = {"gcc": "GCC", "clang": "Clang", "msvc": "MSVC"}
#: Programs that run the compiler named by their next word, and build what it would build.
LAUNCHERS = frozenset({"ccache", "sccache", "distcc", "icecc", "buildcache"})

HOW_TO_SET = ("Point sobuild at a C++ compiler: export SOBUILD_CXX=/path/to/g++ (or clang++; "
              "a launcher works too: SOBUILD_CXX='ccache g++'). CXX is honoured after it.")

#: The first branch that holds names the family. nvcc first: it defines its host compiler's
#: macros too; clang before GCC: Clang defines __GNUC__ (4.2.1) as well; cl defines neither,
#: and clang-cl defines _MSC_VER and __clang__.
_FAMILY_CHAIN = """\
#if defined(__NVCC__)
sobuild_family "nvcc"
#elif defined(_MSC_VER) && !defined(__clang__)
sobuild_family "msvc"
#elif defined(__clang__)
sobuild_family "clang"
#elif defined(__GNUC__)
sobuild_family "gcc"
#else
sobuild_family "unknown"
#endif
"""


def _probe_source() -> str:
    names = dict.fromkeys(m for cls in FAMILIES.values() for m in cls.identifying_macros)
    return _FAMILY_CHAIN + "".join(f'#ifdef {name}\nsobuild_macro "{name}" {name}\n#endif\n'
                                   for name in names)


#: What the compiler preprocesses (``<compiler> -E sobuild_probe.cpp``): one family marker,
#: then each identifying macro it defines, as ``sobuild_macro "NAME" value``.
PROBE_SOURCE = _probe_source()
_FAMILY_RE = re.compile(r'^[ \t]*sobuild_family[ \t]+"(\w+)"[ \t]*$', re.M)
_MACRO_RE = re.compile(r'^[ \t]*sobuild_macro[ \t]+"(\w+)"[ \t]*(.*?)[ \t]*$', re.M)
_DIRECTIVE_RE = re.compile(r"^[ \t]*#[ \t]*(?:if|ifdef|elif|endif)\b", re.M)


def read_probe(output: str) -> tuple[str | None, dict[str, str]]:
    """The family marker (``gcc``, ``clang``, ``msvc``, ``nvcc`` or ``unknown``) and the
    identifying macros in a program's output for ``PROBE_SOURCE``. The family is None
    when the file was not preprocessed: no marker, or the file printed back as it is."""
    families = _FAMILY_RE.findall(output)
    if len(families) != 1 or _DIRECTIVE_RE.search(output):
        return None, {}
    macros = {}
    for name, value in _MACRO_RE.findall(output):
        if len(value) >= 2 and value[0] == value[-1] == '"':  # a string: its text
            value = value[1:-1].strip()
        macros[name] = value
    return families[0], macros


def _program_name(path: str) -> str:
    """``/usr/bin/ccache`` -> ``ccache``, ``C:\\tools\\sccache.exe`` -> ``sccache``."""
    name = os.path.basename(path).lower()
    return name[:-4] if name.endswith(".exe") else name


def split_launchers(words: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``words`` as (launchers, compiler words): ``ccache g++`` -> ``(ccache,), (g++,)``.

    Leading words named like a launcher are launchers; each runs the next word. Words that
    follow and are no launcher (``env``) stay in front of the compiler, the last word.
    CompilerNotFoundError when a launcher has no compiler after it.
    """
    count = 0
    while count < len(words) and _program_name(words[count]) in LAUNCHERS:
        count += 1
    launchers, rest = tuple(words[:count]), tuple(words[count:])
    example = shlex.join([*launchers, "g++"])
    if launchers and not rest:
        raise CompilerNotFoundError(
            f"{launchers[-1]} is a compiler launcher, and no compiler follows it: name the "
            f"compiler it runs after it, e.g. SOBUILD_CXX={shlex.quote(example)}")
    if launchers and rest[0].startswith("-"):
        raise CompilerNotFoundError(
            f"{launchers[-1]} is a compiler launcher: the word after it must be the compiler "
            f"it runs, not the option {rest[0]!r} (e.g. SOBUILD_CXX={shlex.quote(example)})")
    return launchers, rest


def _behind_stand_in(path: str, env: Mapping[str, str]) -> str:
    """The compiler a launcher's stand-in link runs, or ``path`` when it is none.

    ``/usr/lib/ccache/g++`` (a link to ccache, first on the PATH) runs the next ``g++`` on
    the PATH that is not itself a link to a launcher: that is the compiler. CompilerNotFound
    when there is none.
    """
    real = os.path.realpath(path)
    launcher = _program_name(real)
    if launcher not in LAUNCHERS or _program_name(path) in LAUNCHERS:
        return path
    name = os.path.basename(path)
    for directory in env.get("PATH", os.environ.get("PATH", os.defpath)).split(os.pathsep):
        found = shutil.which(name, path=directory) if directory else None
        if found is not None and _program_name(os.path.realpath(found)) not in LAUNCHERS:
            return os.path.abspath(found)
    raise CompilerNotFoundError(
        f"{path} is {launcher}'s stand-in for {name} (a link to {real}), and no other {name} "
        f"is on the PATH for it to run: install {name}, or name the compiler after the "
        f"launcher (SOBUILD_CXX={shlex.quote(f'{launcher} /path/to/{name}')})")


def script_digest(path: str) -> str:
    """xxh3-128 of the file at ``path`` when it is a script (``#!``: a wrapper, which can
    add flags), else ""."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"#!":
                return ""
            f.seek(0)
            digest = xxhash.xxh3_128()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()


def _probe(command: tuple[str, ...], compiler: tuple[str, ...],
           environment: tuple[tuple[str, str], ...] = ()) -> Toolchain:
    """Run ``compiler`` (the real one behind ``command``) to learn what it is."""
    env = {**os.environ, **dict(environment)} if environment else None
    who = shlex.join(compiler)
    with tempfile.TemporaryDirectory(prefix="sobuild-probe-") as tmp:
        source = os.path.join(tmp, "sobuild_probe.cpp")
        with open(source, "w", encoding="utf-8") as f:
            f.write(PROBE_SOURCE)
        output = run_compiler([*compiler, "-E", source], env)
    family, macros = read_probe(output)
    if family is None:
        said = output.splitlines()[0][:200] if output else "(nothing)"
        raise CompilerNotFoundError(
            f"{who} is not a C++ compiler sobuild knows (GCC, Clang or MSVC): asked to "
            f"preprocess a test file ({who} -E sobuild_probe.cpp), it printed {said!r}, not "
            f"the preprocessed file. {HOW_TO_SET}")
    if family == "nvcc":
        raise CompilerNotFoundError(
            f"{who} is NVIDIA's nvcc (it defines __NVCC__), a CUDA compiler driver: sobuild "
            f"builds C++ kernels with a host compiler. Point SOBUILD_CXX at g++ or clang++.")
    if family not in FAMILIES:
        raise CompilerNotFoundError(
            f"{who} preprocesses C++ but is not a compiler sobuild knows (GCC, Clang or "
            f"MSVC): it defines none of __GNUC__, __clang__ and _MSC_VER, which GCC- and "
            f"Clang-compatible compilers define. {HOW_TO_SET}")
    cls = FAMILIES[family]
    try:
        fields = cls.describe(compiler, output, lambda argv: run_compiler(argv, env))
    except ValueError as exc:
        raise CompilerNotFoundError(f"{who} predefines the macros of {FAMILY_NAMES[family]}, "
                                    f"but {exc}. {HOW_TO_SET}") from None
    resolved = os.path.realpath(compiler[-1])
    return cls(command=command, compiler=compiler if compiler != command else (),
               environment=environment, resolved=resolved,
               macros=tuple(sorted(macros.items())), script=script_digest(resolved), **fields)


def probe(command: Sequence[str], environment: tuple[tuple[str, str], ...] = (),
          env: Mapping[str, str] | None = None) -> Toolchain:
    """Run the compiler of ``command`` (behind any launcher) to learn what it is: not
    remembered. ``env`` (default ``os.environ``) supplies the PATH."""
    env = os.environ if env is None else env
    launchers, rest = split_launchers(tuple(command))
    program = _which(rest[-1], env) or rest[-1]
    compiler = (*rest[:-1], _behind_stand_in(program, env))
    return _probe((*launchers, *rest[:-1], program), compiler, environment)


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


def _which(name: str, env: Mapping[str, str]) -> str | None:
    """``name`` as an absolute path, symlinks kept, or None.

    Kept, because the name chooses the driver: /usr/bin/clang++ resolves to .../bin/clang,
    which compiles C++ but does not link the C++ runtime; ccache's stand-ins resolve to ccache.
    """
    found = shutil.which(name, path=env.get("PATH"))
    return os.path.abspath(found) if found else None


def _not_found(name: str, env: Mapping[str, str]) -> str:
    if os.sep in name or (os.altsep and os.altsep in name):
        if os.path.isdir(name):
            return "is a directory"
        return "is not executable" if os.path.exists(name) else "no such file"
    return "not on the PATH" + ("" if env.get("PATH", os.environ.get("PATH")) else
                                " (PATH is empty)")


_TEXT_FIELDS = ("version", "target", "system", "resolved", "proper", "proper_status", "script",
                "linker", "linker_path", "linker_version", "linker_status")
_PROBE_FIELDS = ("family", "command", "compiler", "environment", "macros", *_TEXT_FIELDS)


def probe_fingerprint(command: tuple[str, ...], compiler: tuple[str, ...],
                      environment: tuple[tuple[str, str], ...], path: str) -> str:
    """The name of a compiler's probe record: it changes with the real compiler's file, the
    command and compiler words, the environment, and ``path`` (the PATH the compiler runs
    with: a wrapper runs the compiler it finds there)."""
    return stat_fingerprint(compiler[-1], *command, "", *compiler, repr(environment), path)


def _cached_probe(command: tuple[str, ...], compiler: tuple[str, ...],
                  environment: tuple[tuple[str, str], ...], records: ProbeRecords | None
                  ) -> Toolchain:
    recorded_environment = [list(kv) for kv in environment]

    def compute() -> dict:
        toolchain = _probe(command, compiler, environment)
        return {"family": toolchain.family, "command": list(command),
                "compiler": list(compiler), "version": toolchain.version,
                "target": toolchain.target, "system": toolchain.system,
                "resolved": toolchain.resolved, "environment": recorded_environment,
                "macros": dict(toolchain.macros), "proper": toolchain.proper,
                "proper_status": file_status(toolchain.proper), "script": toolchain.script,
                "linker": toolchain.linker, "linker_path": toolchain.linker_path,
                "linker_version": toolchain.linker_version,
                "linker_status": file_status(toolchain.linker_path)}

    def check(data: dict) -> str | None:
        """Why a record is not this compiler's probe (None: it is)."""
        if data["command"] != list(command):
            return (f"names the command {data['command']!r}, not the compiler that was probed "
                    f"({shlex.join(command)})")
        if data["compiler"] != list(compiler):
            return (f"names the compiler {data['compiler']!r}, not the one that was probed "
                    f"({shlex.join(compiler)})")
        if data["environment"] != recorded_environment:
            return "names another environment than the compiler's"
        macros = data["macros"]
        if (data["family"] not in FAMILIES
                or not all(isinstance(data[f], str) for f in _TEXT_FIELDS)
                or not isinstance(macros, dict)
                or not all(isinstance(v, str) for v in macros.values())):
            return "is not a probe record of this version of sobuild"
        return None

    def fresh(data: dict) -> bool:
        """False when the compiler proper (behind a wrapper too) or the linker it chose
        changed since the probe."""
        return (file_status(data["proper"]) == data["proper_status"]
                and file_status(data["linker_path"]) == data["linker_status"])

    # The PATH the compiler runs with (the process's, or MSVC's environment's): a wrapper
    # runs the compiler it finds there.
    path = dict(environment).get("PATH", os.environ.get("PATH", ""))
    fingerprint = probe_fingerprint(command, compiler, environment, path)
    data = (records.get("probe", fingerprint, compute, _PROBE_FIELDS, check, fresh)
            if records is not None else compute())
    # The command and environment are the ones probed: a record only says what they are.
    return FAMILIES[data["family"]](
        command=command, compiler=compiler if compiler != command else (),
        version=data["version"], target=data["target"], system=data["system"],
        environment=environment, resolved=data["resolved"],
        macros=tuple(sorted(data["macros"].items())), proper=data["proper"],
        script=data["script"], linker=data["linker"], linker_path=data["linker_path"],
        linker_version=data["linker_version"], probe_records=records)


def detect(env: Mapping[str, str] | None = None, records: ProbeRecords | None = None
           ) -> Toolchain:
    """The toolchain sobuild builds with; CompilerNotFoundError saying what to do if none.

    ``env`` (default ``os.environ``) supplies SOBUILD_CXX, CXX and PATH; ``records`` is
    where probes are remembered (a cache's ``toolchains/``), None to probe every time.
    """
    env = os.environ if env is None else env
    looked: list[str] = []
    for source, words in candidates(env):
        where = f"{source}={env[source]!r}" if source != "PATH" else "on the PATH"
        try:
            launchers, rest = split_launchers(words)
        except CompilerNotFoundError as exc:
            raise CompilerNotFoundError(f"{where}: {exc}. {HOW_TO_SET}") from None
        for launcher in launchers:
            if _which(launcher, env) is None:
                raise CompilerNotFoundError(
                    f"{where} names the launcher {launcher}, which sobuild cannot run: "
                    f"{launcher} {_not_found(launcher, env)}. Install it, or set {source} to "
                    f"the compiler alone. {HOW_TO_SET}")
        program = _which(rest[-1], env)
        environment: tuple[tuple[str, str], ...] = ()
        if program is None and MSVC.looks_like(rest[-1]):
            msvc = find_msvc(env)
            if msvc is not None:
                program, environment = msvc.cl_path, msvc.environment
        if program is not None:
            try:
                compiler = (*rest[:-1], _behind_stand_in(program, env))
                return _cached_probe((*launchers, *rest[:-1], program), compiler, environment,
                                     records)
            except CompilerNotFoundError as exc:
                raise CompilerNotFoundError(f"{program} ({where}): {exc}") from None
        why = _not_found(rest[-1], env)
        if source != "PATH":
            # An explicit choice that does not exist is an error, not a reason to pick another.
            raise CompilerNotFoundError(
                f"{source}={env[source]!r} names no compiler sobuild can run: "
                f"{rest[-1]} {why}. Set {source} to the path of a C++ compiler (g++, "
                f"clang++), or unset it to use the one on the PATH. {HOW_TO_SET}")
        looked.append(rest[-1])
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
