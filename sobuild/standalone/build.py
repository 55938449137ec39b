"""Build a Brian2 standalone project: objects by content address, one ninja run, one link.

``build_project`` does what ``make`` does in the project directory, with the makefile's
sources and flags (``makefile``), but each object file has a key: the text the compiler
reads, the name it is compiled under, the contents of the project and include-directory
headers it reaches (``includes``), the flags and the compiler's identity (as a kernel's key
has). Objects are data entries of the cache (namespace ``brian2-standalone``), so another
project directory of the same model, a fresh temporary directory of a sweep or a test, or
the next run after a one-parameter change finds what did not change. Brian2's runtime
library sources (``brianlib/spikequeue.cpp``) and the files that depend on nothing
model-specific (``network.cpp``) get the same key in every project: they are compiled once
per compiler and flags. The code objects are merged into one unit per parallel job
(``merge``). Every miss is compiled in one ninja run; then the program is linked in the
build's private directory and renamed into the project directory, where ``device.run()``
finds it (a shared project directory: nothing is written through a name planted there).

Objects are compiled with the project directory as the working directory (``-I.`` and the
relative file names mean what they mean to ``make``) and with
``-fdebug-prefix-map=<project>=.``: an object's debug information names no project, so it
serves every project and a debugger run in the project directory finds its sources. That
flag is not in the key.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import Cache
from ..compilation.ninja import read_ninja_log, run_build_file
from ..errors import UntrustedEntryError
from ..keys import build_identity, data_key
from ..store.publish import write_file_atomic
from ..store.trust import current_umask
from ..toolchains.base import Toolchain, ninja_escape, ninja_value
from . import LOG_NAME, prelude
from .includes import IncludeScanner, UnfollowedInclude, include_dirs
from .makefile import Makefile, ProjectError, read_makefile
from .merge import CodeObject, code_object, group, render

#: The namespace of the cache's data entries holding object files.
NAMESPACE = "brian2-standalone"
#: Bump when what goes into an object changes (the merged units' text, the command line).
OBJECT_VERSION = 1


class ProjectBuildError(ProjectError, RuntimeError):
    """Objects of a standalone project did not compile, or its program did not link."""


@dataclass
class ObjectFile:
    """One object of the program: ``name`` (the source, or the code objects of a unit),
    the ``text`` the compiler reads from ``source`` (a project file, or a unit written into
    the build directory), its ``key`` (None: never cached) and how it was obtained."""

    name: str
    source: str
    text: str
    key: str | None = None
    hit: bool = False
    failed: bool = False
    seconds: float = 0.0
    log: str = ""
    unit: bool = False


@dataclass
class BuildReport:
    """What a project build did: its objects in link order, and the link's seconds."""

    directory: Path
    objects: list[ObjectFile] = field(default_factory=list)
    link_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def built(self) -> list[str]:
        """The names of the objects that were compiled."""
        return [o.name for o in self.objects if not o.hit]

    @property
    def hits(self) -> list[str]:
        """The names of the objects that came from the cache."""
        return [o.name for o in self.objects if o.hit]

    def describe(self) -> str:
        lines = [f"sobuild: {len(self.hits)} object(s) from the cache, {len(self.built)} "
                 f"compiled, link {self.link_seconds:.2f} s, total {self.seconds:.2f} s"]
        for o in self.objects:
            state = ("cached  " if o.hit else "FAILED  " if o.failed
                     else f"compiled {o.seconds:6.2f} s")
            lines.append(f"  {state}  {o.key or '(no key)':32}  {o.name}")
        lines += [f"--- {o.name}\n{o.log}" for o in self.objects if o.log.strip()]
        return "\n".join(lines) + "\n"


def object_key(toolchain: Toolchain, flags: tuple[str, ...], obj: ObjectFile,
               headers: dict[str, str]) -> str:
    """The content address of an object file."""
    payload = {
        **build_identity(toolchain, flags), "object": OBJECT_VERSION, "name": obj.name,
        "text": obj.text, "headers": headers, "flags": list(flags),
        "prelude": prelude.PRELUDE if prelude.reads_prelude(obj.name, toolchain) else None,
    }
    return data_key(NAMESPACE, json.dumps(payload, sort_keys=True, separators=(",", ":")))


def plan_objects(directory: Path, makefile: Makefile, units: int) -> list[ObjectFile]:
    """The objects of the program in link order: the makefile's sources, its mergeable code
    objects replaced by ``units`` merged units (each where its first member was)."""
    texts = {}
    for source in makefile.sources:
        try:
            texts[source] = (directory / source).read_text()
        except OSError as exc:
            raise ProjectError(f"cannot read {source}, a source the makefile of {directory} "
                               f"lists: {exc}") from None
    mergeable: dict[str, CodeObject] = {}
    for source, text in texts.items():
        header = directory / source[:-len(".cpp")] if source.endswith(".cpp") else None
        if source.startswith("code_objects/") and header is not None:
            try:
                member = code_object(source, text, header.with_suffix(".h").read_text()
                                     if header.with_suffix(".h").is_file() else "")
            except OSError:
                member = None
            if member is not None:
                mergeable[source] = member
    first_member = {}
    for number, members in enumerate(group(list(mergeable.values()), units)):
        if len(members) == 1:
            del mergeable[members[0].path]  # alone: compiled from its own file
            continue
        name = " ".join(m.path for m in members)
        obj = ObjectFile(name, f"unit{number}.cpp", render(members), unit=True)
        first_member[min(m.path for m in members)] = obj
    objects = []
    for source in makefile.sources:
        if source in first_member:
            objects.append(first_member[source])
        elif source not in mergeable:
            objects.append(ObjectFile(source, source, texts[source]))
    return objects


def build_project(directory: str | os.PathLike, cache: Cache) -> BuildReport:
    """Build the standalone project in ``directory`` (written by Brian2, with its makefile)
    into its program, through the cache. ProjectBuildError if something does not compile
    or link: its message holds the compiler's first error lines, the whole output is in
    ``directory/sobuild_build.log``."""
    start = time.perf_counter()
    project = Path(directory).resolve()
    makefile = read_makefile(project)
    toolchain = cache.toolchain
    if toolchain.family == "msvc":
        raise ProjectError("sobuild builds standalone projects with GCC or Clang; with MSVC, "
                           "Brian2's own build (nmake) is used")
    report = BuildReport(project, plan_objects(project, makefile, cache.jobs))
    scanner = IncludeScanner(project, include_dirs(makefile.compile_flags, project))
    for obj in report.objects:
        try:
            headers = scanner.headers(obj.text, (project / obj.source).parent)
        except UnfollowedInclude:
            continue  # no key: compiled every time
        obj.key = object_key(toolchain, makefile.compile_flags, obj, headers)
    build_dir = Path(tempfile.mkdtemp(prefix=".sobuild-", dir=project))
    try:
        payloads = _stored_objects(report, cache)
        _compile(report, build_dir, makefile, toolchain, cache)
        for number, payload in payloads.items():
            (build_dir / f"{number}.o").write_bytes(payload)
        _link(report, build_dir, makefile, toolchain)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
        report.seconds = time.perf_counter() - start
        # under a fresh name, renamed into place: a link or FIFO planted at the log's name
        # in a shared project directory is replaced, never written through or waited on
        write_file_atomic(project / LOG_NAME, report.describe().encode(), project,
                          file_mode=0o666 & ~current_umask(), durable=False)
    return report


def _stored_objects(report: BuildReport, cache: Cache) -> dict[int, bytes]:
    """The objects the cache holds, by number in the link order (marked as hits).

    An entry that someone untrusted could have written (another user's, or in a directory
    of another user's) is linked into nothing: the object is compiled here instead, with one
    warning naming the first such entry, and counted as a miss.
    """
    payloads: dict[int, bytes] = {}
    refused: list[UntrustedEntryError] = []
    for number, obj in enumerate(report.objects):
        if obj.key is None:
            continue
        try:
            payload = cache.get_data(obj.key)
        except UntrustedEntryError as exc:
            refused.append(exc)
            cache.count("data_misses")
            continue
        if payload is not None:
            obj.hit = True
            payloads[number] = payload
    if refused:
        warnings.warn(f"sobuild: {len(refused)} object(s) of {report.directory} found in the "
                      f"cache are not linked but compiled again: {refused[0]}",
                      RuntimeWarning, stacklevel=3)
    return payloads


def _compile_command(obj: ObjectFile, number: int, project: Path, build_dir: Path,
                     flags: tuple[str, ...], toolchain: Toolchain,
                     header: prelude.Prelude | None) -> str:
    source = str(build_dir / obj.source) if obj.unit else obj.source
    include = ["-include", str(header.header), "-Winvalid-pch"] if header is not None else []
    argv = [*toolchain.command, *flags, f"-fdebug-prefix-map={project}=.", *include, "-c",
            source, "-o", str(build_dir / f"{number}.o")]
    return (f"cd {shlex.quote(str(project))} && {shlex.join(argv)} "
            f"> {shlex.quote(str(build_dir / f'{number}.log'))} 2>&1")


def _compile(report: BuildReport, build_dir: Path, makefile: Makefile, toolchain: Toolchain,
             cache: Cache) -> None:
    """Compile the objects that were not hits, in one ninja run; store those with a key."""
    misses = [(n, o) for n, o in enumerate(report.objects) if not o.hit]
    if not misses:
        return
    lines = ["ninja_required_version = 1.5", "rule compile", "  command = $cmd",
             "  description = CXX $out"]
    project, flags = report.directory, makefile.compile_flags
    header = (prelude.prepare(cache, toolchain, flags, build_dir)
              if any(prelude.reads_prelude(o.name, toolchain) for _, o in misses) else None)
    after = ""
    if header is not None and header.built_here:
        binary = ninja_escape(header.binary.name)
        lines += [f"build {binary}: compile",
                  f"  cmd = {ninja_value(prelude.build_command(header, project, flags, toolchain))}"]
        after = f" || {binary}"
    # the longest first (ninja starts edges in the order of the file): the critical path
    for number, obj in sorted(misses, key=lambda item: -len(item[1].text)):
        if obj.unit:
            (build_dir / obj.source).write_text(obj.text)
        reads = header if prelude.reads_prelude(obj.name, toolchain) else None
        command = _compile_command(obj, number, project, build_dir, flags, toolchain, reads)
        lines += [f"build {ninja_escape(f'{number}.o')}: compile{after if reads else ''}",
                  f"  cmd = {ninja_value(command)}"]
    (build_dir / "build.ninja").write_text("\n".join(lines) + "\n")
    env = {**os.environ, **dict(toolchain.environment)}
    output, timed_out = run_build_file(build_dir, cache.jobs, env, cache.settings.build_timeout)
    times = read_ninja_log(build_dir)
    if header is not None:
        prelude.publish(cache, header)
    failed = []
    for number, obj in misses:
        try:
            obj.log = (build_dir / f"{number}.log").read_text(errors="replace")
        except OSError:
            obj.log = output
        obj.seconds = times.get(f"{number}.o", 0.0)
        path = build_dir / f"{number}.o"
        if f"{number}.o" not in times or not path.exists():
            obj.failed = True
            failed.append(obj)
        elif obj.key is not None:
            cache.put_data(obj.key, path.read_bytes(), namespace=NAMESPACE, seconds=obj.seconds)
    if failed:
        stopped = (f" (stopped after {cache.settings.build_timeout:g} s, "
                   "SOBUILD_BUILD_TIMEOUT)" if timed_out else "")
        parts = [f"Project compilation failed{stopped}: {len(failed)} object(s) of "
                 f"{report.directory} did not compile:"]
        for obj in failed:
            parts.append(f"--- {obj.name}")
            parts += [f"    | {line}" for line in toolchain.first_error_lines(obj.log)]
        parts.append(f"The compiler's whole output is in {report.directory / LOG_NAME}.")
        raise ProjectBuildError("\n".join(parts))


def _link(report: BuildReport, build_dir: Path, makefile: Makefile,
          toolchain: Toolchain) -> None:
    """Link the program in this build's private directory, then rename it into the project
    (atomically, replacing the old one): no other process, nor a name someone planted in a
    shared project directory, is ever written through."""
    start = time.perf_counter()
    program = report.directory / makefile.program
    linking = build_dir / program.name
    objects = [str(build_dir / f"{n}.o") for n in range(len(report.objects))]
    proc = subprocess.run([*toolchain.command, *toolchain.link_flags, *objects, "-o", str(linking),
                           *makefile.link_flags], cwd=report.directory, capture_output=True,
                          text=True, errors="replace",
                          env={**os.environ, **dict(toolchain.environment)})
    report.link_seconds = time.perf_counter() - start
    if proc.returncode != 0:
        lines = toolchain.first_error_lines(proc.stdout + proc.stderr)
        raise ProjectBuildError(f"Project linking failed in {report.directory}:\n"
                                + "\n".join(f"    | {line}" for line in lines))
    try:
        os.replace(linking, program)
    except OSError as exc:
        raise ProjectBuildError(f"The program linked, but cannot be put in place at "
                                f"{program}: {exc.strerror} (remove what is there)") from exc
