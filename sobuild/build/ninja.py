"""One build.ninja for a batch of translation units, one ninja run, results per unit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import SobuildError
from ..spec import KernelSpec
from ..toolchains.base import Toolchain, ninja_escape


@dataclass
class Unit:
    """A translation unit to build: its kernels (one build group) and its files."""

    name: str
    kernels: list[tuple[str, KernelSpec]]
    source: str

    @property
    def spec(self) -> KernelSpec:
        return self.kernels[0][1]


@dataclass
class UnitResult:
    unit: Unit
    output: Path
    log: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.output.exists()


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
    """Write sources, headers and build.ninja; return the build file."""
    lines = ["ninja_required_version = 1.5", toolchain.ninja_rule("cxx_shared")]
    include_dirs: dict[tuple, str] = {}
    for unit in units:
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
        lines += [f"build {ninja_escape(out)}: cxx_shared {ninja_escape(unit.name + '.cpp')}",
                  f"  flags = {flags.replace('$', '$$')}",
                  f"  incdir = {include_dirs[group]}",
                  f"  log = {unit.name}.log"]
    path = build_dir / "build.ninja"
    path.write_text("\n".join(lines) + "\n")
    return path


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


def _run_ninja(argv: list[str], build_dir: Path, env: dict, progress: Progress | None
               ) -> subprocess.CompletedProcess:
    """Run ninja; with ``progress``, stream its ``[finished/total]`` status lines to it."""
    if progress is None:
        return subprocess.run(argv, cwd=build_dir, capture_output=True, text=True, env=env)
    env = {**env, "NINJA_STATUS": "[%f/%t] "}
    with subprocess.Popen(argv, cwd=build_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env) as proc:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            m = _STATUS_RE.match(line)
            if m:
                progress(int(m[1]), int(m[2]))
    return subprocess.CompletedProcess(argv, proc.returncode, "".join(lines), "")


def build_units(units: list[Unit], build_dir: Path, toolchain: Toolchain, jobs: int,
                progress: Progress | None = None) -> list[UnitResult]:
    """Build every unit in one ninja run (``-k 0``: a failing unit stops none of the others)."""
    write_build_file(units, build_dir, toolchain)
    env = {**os.environ, **dict(toolchain.environment)}
    if progress is not None:
        progress(0, len(units))
    proc = _run_ninja([ninja_binary(), "-k", "0", "-j", str(max(1, jobs))], build_dir, env,
                      progress)
    times = read_ninja_log(build_dir)
    results = []
    for unit in units:
        out = f"{unit.name}{toolchain.suffix}"
        try:
            log = (build_dir / f"{unit.name}.log").read_text(errors="replace")
        except OSError:
            log = proc.stdout + proc.stderr  # ninja itself failed before running the compiler
        results.append(UnitResult(unit, build_dir / out, log, times.get(out, 0.0)))
    return results
