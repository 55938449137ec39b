"""One build.ninja for a batch of translation units, one ninja run, results per unit."""

from __future__ import annotations

import errno
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import SobuildError
from ..spec import KernelSpec, check_text
from ..toolchains.base import Toolchain, ninja_escape, ninja_value
from .pch import PrecompiledHeader, read_depends

#: Room a failed build must have had to count as a compile error rather than a full disk:
#: a compiler that failed for want of space deletes what it wrote, so "no room" is not 0.
ROOM_NEEDED = 1 << 20


@dataclass
class Unit:
    """A translation unit to build: its kernels (one build group) and its files; ``pch``:
    the precompiled header of its head, when it is compiled with one (see ``pch``)."""

    name: str
    kernels: list[tuple[str, KernelSpec]]
    source: str
    pch: PrecompiledHeader | None = None

    @property
    def spec(self) -> KernelSpec:
        return self.kernels[0][1]


@dataclass
class UnitResult:
    """How a unit's build went: its shared object, the compiler's output and time.

    ``timed_out``: the build was stopped (SOBUILD_BUILD_TIMEOUT) before this unit was built;
    ``disk_full``: it failed where there was no room left to write (ENOSPC, EDQUOT).
    """

    unit: Unit
    output: Path
    log: str
    seconds: float
    timed_out: bool = False
    disk_full: bool = False

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.output.exists()


def ninja_binary() -> str:
    """ninja from the PyPI package, else from the PATH."""
    try:
        import ninja

        candidate = Path(ninja.BIN_DIR) / ("ninja.exe" if os.name == "nt" else "ninja")
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("ninja")
    if not found:
        raise SobuildError("ninja not found: `pip install ninja` (sobuild depends on it)")
    return found


def write_build_file(units: list[Unit], build_dir: Path, toolchain: Toolchain) -> Path:
    """Write sources, headers and build.ninja; return the build file.

    Every spec is checked again (one unpickled or changed after construction was not), and
    every text goes into build.ninja escaped: nothing of a spec becomes a line of its own.
    """
    lines = ["ninja_required_version = 1.5", toolchain.ninja_rule("cxx_shared")]
    if any(unit.pch is not None for unit in units):
        lines += [toolchain.ninja_rule("cxx_shared_pch", tuple(toolchain.pch_use_argv("$pch"))),
                  toolchain.pch_rule("cxx_pch")]
    include_dirs: dict[tuple, str] = {}
    placed: list[PrecompiledHeader] = []
    for unit in units:
        for _, kernel in unit.kernels:
            check_text(kernel)
        spec = unit.spec
        group = spec.build_group
        if group not in include_dirs:
            inc = f"include{len(include_dirs)}"
            include_dirs[group] = inc
            (build_dir / inc).mkdir()
            for name, text in spec.headers.items():
                path = build_dir / inc / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        (build_dir / f"{unit.name}.cpp").write_text(unit.source)
        out = f"{unit.name}{toolchain.suffix}"
        flags = toolchain.join_flags(spec.flags or toolchain.default_flags)
        rule, after, pch_lines = "cxx_shared", "", []
        if unit.pch is not None:
            pch = unit.pch
            if pch.directory is None:  # its first unit: place it (and build it) here
                lines += _place_pch(pch, f"pch{len(placed)}", build_dir, toolchain, flags,
                                    include_dirs[group])
                placed.append(pch)
            header = os.path.relpath(pch.header, build_dir)
            rule, pch_lines = "cxx_shared_pch", [f"  pch = {ninja_value(header)}"]
            if pch in placed and pch.built_here:
                after = f" || {ninja_escape(os.path.relpath(pch.binary, build_dir))}"
        lines += [f"build {ninja_escape(out)}: {rule} {ninja_escape(unit.name + '.cpp')}{after}",
                  f"  flags = {ninja_value(flags)}",
                  f"  incdir = {ninja_value(include_dirs[group])}",
                  f"  log = {ninja_value(unit.name + '.log')}", *pch_lines]
    path = build_dir / "build.ninja"
    path.write_text("\n".join(lines) + "\n")
    return path


def _place_pch(pch: PrecompiledHeader, name: str, build_dir: Path, toolchain: Toolchain,
               flags: str, incdir: str) -> list[str]:
    """Write a precompiled header's text into ``build_dir/name/``, with its checked bytes
    from the cache, or else the lines of build.ninja that build it there."""
    pch.directory = build_dir / name
    pch.directory.mkdir()
    pch.header.write_text(pch.text)
    if not pch.built_here:
        pch.binary.write_bytes(pch.cached)
        return []
    binary = f"{name}/{pch.binary.name}"
    return [f"build {ninja_escape(binary)}: cxx_pch {ninja_escape(f'{name}/{pch.header.name}')}",
            f"  flags = {ninja_value(flags)}",
            f"  incdir = {ninja_value(incdir)}",
            f"  log = {ninja_value(name + '.log')}"]


def read_ninja_log(build_dir: Path) -> dict[str, float]:
    """Seconds each output took, from ninja's own log (start and end in ms)."""
    seconds: dict[str, float] = {}
    try:
        text = (build_dir / ".ninja_log").read_text()
    except OSError:
        return seconds
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 4 and fields[0].isdigit():
            seconds[fields[3]] = (int(fields[1]) - int(fields[0])) / 1000
    return seconds


#: A build's progress: called with (units finished, units in the build) as ninja reports them.
Progress = Callable[[int, int], None]
_STATUS_RE = re.compile(r"^\[(\d+)/(\d+)\]")


def _run_ninja(argv: list[str], build_dir: Path, env: dict, progress: Progress | None,
               timeout: float | None) -> tuple[str, bool]:
    """Run ninja in a session of its own; its output, and whether ``timeout`` stopped it.

    Its ``[finished/total]`` status lines go to ``progress``. On timeout the whole session
    (ninja, the shells and compilers it started) is killed. On Linux ninja also gets SIGTERM
    when this process dies, even by ``kill -9``, and stops its compilers (ninja passes the
    signal on to each command's group).
    """
    env = {**env, "NINJA_STATUS": "[%f/%t] "}
    proc = subprocess.Popen(argv, cwd=build_dir, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            errors="replace", env=env, start_new_session=True,
                            preexec_fn=_death_signal())
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    deadline = None if timeout is None else time.monotonic() + timeout
    output = []
    try:
        while (line := lines.get(timeout=None if deadline is None
                                 else max(0.0, deadline - time.monotonic()))) is not None:
            output.append(line)
            m = _STATUS_RE.match(line)
            if m and progress is not None:
                progress(int(m[1]), int(m[2]))
    except queue.Empty:
        _kill_session(proc)
        return "".join(output), True
    except BaseException:  # KeyboardInterrupt, an error of progress: no build left behind
        _kill_session(proc)
        raise
    proc.wait()
    return "".join(output), False


def run_build_file(build_dir: Path, jobs: int, env: dict, timeout: float | None = None,
                   progress: Progress | None = None) -> tuple[str, bool]:
    """Run ``build_dir/build.ninja`` (``-k 0``: a failing edge stops none of the others) with
    ``jobs`` edges at once: ninja's output, and whether ``timeout`` stopped it (see
    ``_run_ninja``). For callers that write their own build file (standalone projects)."""
    return _run_ninja([ninja_binary(), "-k", "0", "-j", str(max(1, jobs))], build_dir, env,
                      progress, timeout)


def _death_signal() -> Callable[[], None] | None:
    """Linux: a function run in the child before exec that makes it receive SIGTERM when its
    parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere None. libc is looked up here, in
    the parent: the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def set_death_signal() -> None:
        prctl(pr_set_pdeathsig, sigterm)

    return set_death_signal


def _pump(stream, lines: queue.SimpleQueue) -> None:
    """Move ``stream``'s lines to ``lines``, then None. Reading (and closing) it here, never
    in the caller, so that a killed build whose pipe is still held cannot block the caller."""
    with stream:
        for line in stream:
            lines.put(line)
    lines.put(None)


def _kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL ninja, reap it, then SIGKILL every process group of its session: ninja starts
    each command in a group of its own, the session holds them all. Without /proc (macOS,
    Windows) only ninja's own group is killed."""
    if not hasattr(os, "killpg"):
        proc.kill()
        proc.wait()
        return
    killed: set[int] = set()
    groups = {proc.pid}
    while groups - killed:  # until a look finds no group that was not killed yet
        for pgid in groups - killed:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            killed.add(pgid)
        proc.wait()  # ninja is gone: it starts nothing more
        groups = _session_groups(proc.pid)


def _session_groups(sid: int) -> set[int]:
    """The process groups of the living processes of session ``sid``, from /proc."""
    groups = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        state, pgrp, session = fields[0], int(fields[2]), int(fields[3])
        if session == sid and state not in ("Z", "X"):
            groups.add(pgrp)
    return groups


def no_room(directory: Path) -> bool:
    """Whether writing ``ROOM_NEEDED`` bytes into ``directory`` fails for want of space
    (ENOSPC: blocks or inodes; EDQUOT: the user's quota), asked of the file system itself."""
    try:
        fd, name = tempfile.mkstemp(prefix=".sobuild-room-", dir=directory)
    except OSError as exc:
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, ROOM_NEEDED)
        else:
            return shutil.disk_usage(directory).free < ROOM_NEEDED
    except OSError as exc:
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    finally:
        os.close(fd)
        os.unlink(name)
    return False


def build_units(units: list[Unit], build_dir: Path, toolchain: Toolchain, jobs: int,
                progress: Progress | None = None, timeout: float | None = None
                ) -> list[UnitResult]:
    """Build every unit in one ninja run (``-k 0``: a failing unit stops none of the others).

    After ``timeout`` seconds the build is killed: units not finished by then are
    ``timed_out``. A failed unit is ``disk_full`` when the build directory or the compiler's
    temporary directory has no room left.
    """
    write_build_file(units, build_dir, toolchain)
    env = {**os.environ, **dict(toolchain.environment)}
    built_pchs = list({id(u.pch): u.pch for u in units
                       if u.pch is not None and u.pch.built_here
                       and u.pch.directory.parent == build_dir}.values())
    if progress is not None:
        progress(0, len(units) + len(built_pchs))
    output, timed_out = _run_ninja([ninja_binary(), "-k", "0", "-j", str(max(1, jobs))],
                                   build_dir, env, progress, timeout)
    times = read_ninja_log(build_dir)
    for pch in built_pchs:
        pch.seconds = times.get(f"{pch.directory.name}/{pch.binary.name}", 0.0)
        try:
            pch.log = (build_dir / f"{pch.directory.name}.log").read_text(errors="replace")
        except OSError:
            pch.log = ""
        pch.depends = read_depends(pch.binary.with_name(pch.binary.name + ".d"))
    results = []
    for unit in units:
        out = f"{unit.name}{toolchain.suffix}"
        try:
            log = (build_dir / f"{unit.name}.log").read_text(errors="replace")
        except OSError:
            log = output  # ninja itself failed before running the compiler
        stopped = timed_out and out not in times  # a killed link may leave half an output
        if unit.pch is not None:
            log = unit.pch.describe() + log
        if stopped:
            log = (f"sobuild stopped this build after {timeout:g} s (SOBUILD_BUILD_TIMEOUT)\n"
                   + log)
        results.append(UnitResult(unit, build_dir / out, log, times.get(out, 0.0), stopped))
    failed = [r for r in results if not r.ok and not r.timed_out]
    if failed and any(no_room(d) for d in (build_dir, Path(tempfile.gettempdir()))):
        for result in failed:
            result.disk_full = True
    return results
