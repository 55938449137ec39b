"""What Brian2's makefile says: the sources, the compile and link flags, the program.

Brian2's ``CPPStandaloneDevice.generate_makefile`` renders ``makefile`` from its template:
``SRCS``, ``CXXFLAGS`` (``-c`` and the flags), ``LFLAGS`` and ``PROGRAM`` are plain
assignments whose values may refer to other variables (``$(OPTIMISATIONS)``). Reading the
makefile, rather than Brian2's arguments, builds exactly what ``make`` would: the flags of
``prefs.codegen.cpp``, the device's, debug and OpenMP (``-fopenmp``) included.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..errors import SobuildError

_ASSIGNMENT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*[:?]?=(.*)$")
_REFERENCE_RE = re.compile(r"\$(?:\(([A-Za-z_][A-Za-z0-9_]*)\)|\{([A-Za-z_][A-Za-z0-9_]*)\})")


class ProjectError(SobuildError):
    """A standalone project sobuild cannot build (its makefile is missing or not Brian2's)."""


@dataclass(frozen=True)
class Makefile:
    """A project's build as its makefile states it: ``sources`` (paths relative to the
    project directory, in the makefile's order), ``compile_flags`` (without ``-c``),
    ``link_flags`` and the ``program`` to write."""

    sources: tuple[str, ...]
    compile_flags: tuple[str, ...]
    link_flags: tuple[str, ...]
    program: str


def read_makefile(directory: Path) -> Makefile:
    """The build that ``directory/makefile`` describes; ProjectError naming what is wrong."""
    path = directory / "makefile"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ProjectError(f"cannot read the standalone project's makefile {path}: {exc}") \
            from None
    variables: dict[str, str] = {}
    for line in text.splitlines():
        match = _ASSIGNMENT_RE.match(line)
        if match and not line.startswith("\t"):
            variables[match[1]] = match[2].strip()

    def value(name: str, seen: tuple[str, ...] = ()) -> str:
        if name not in variables:
            raise ProjectError(f"{path} assigns no {name}: it is not a makefile of Brian2's "
                               "cpp_standalone device")
        if name in seen:
            raise ProjectError(f"{path}: {name} refers to itself")
        return _REFERENCE_RE.sub(
            lambda m: value(m[1] or m[2], (*seen, name)) if (m[1] or m[2]) in variables else "",
            variables[name])

    def words(name: str) -> tuple[str, ...]:
        try:
            return tuple(shlex.split(value(name)))
        except ValueError as exc:
            raise ProjectError(f"{path}: {name} cannot be split into words ({exc})") from None

    compile_flags = words("CXXFLAGS")
    if "-c" not in compile_flags:
        raise ProjectError(f"{path}: CXXFLAGS lacks -c, which Brian2's makefile always has")
    sources = words("SRCS")
    if not sources:
        raise ProjectError(f"{path} lists no source files (SRCS)")
    return Makefile(sources, tuple(f for f in compile_flags if f != "-c"), words("LFLAGS"),
                    value("PROGRAM") or "main")
