"""Toolchain: a compiler's identity, how it builds a shared object, and its ninja rule."""

from __future__ import annotations

import platform
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ..errors import SobuildError

if TYPE_CHECKING:
    from .probes import ProbeRecords

SHARED_SUFFIXES = {"Linux": ".so", "Darwin": ".dylib", "Windows": ".dll"}


def shared_suffix(system: str | None = None) -> str:
    """The file suffix of a loadable shared object on ``system`` (default: this one)."""
    return SHARED_SUFFIXES.get(system or platform.system(), ".so")


def ninja_escape(text: str) -> str:
    """Escape a path for a ninja build line ('$', ' ' and ':' are special there)."""
    return ninja_value(text).replace(" ", "$ ").replace(":", "$:")


def ninja_value(text: str) -> str:
    """``text`` as plain text in build.ninja: '$' escaped. A line break or NUL is refused:
    ninja has no escape for them, and what followed would be a line of build.ninja."""
    if "\n" in text or "\r" in text or "\0" in text:
        raise SobuildError(f"{text!r} holds a line break or NUL: sobuild never writes one "
                           "into build.ninja")
    return text.replace("$", "$$")


@dataclass(frozen=True)
class Toolchain:
    """A detected C++ compiler.

    ``command`` is the argv prefix that runs it (``("/usr/bin/g++",)``, or with a
    launcher such as ``("ccache", "/usr/bin/g++")``); ``version`` is its full version
    output and ``target`` its target triple: together with ``family`` and ``resolved``
    (the compiler's path with symlinks resolved) they are the identity that goes into
    every kernel key. ``environment`` holds variables the compiler needs (MSVC's
    vcvarsall environment); ``probe_records`` is where probes of this compiler are remembered.
    """

    command: tuple[str, ...]
    version: str
    target: str
    system: str = field(default_factory=platform.system)
    environment: tuple[tuple[str, str], ...] = ()
    resolved: str = ""
    probe_records: ProbeRecords | None = field(default=None, compare=False, repr=False)

    family: ClassVar[str] = "generic"
    #: Flags used when a spec names none.
    default_flags: ClassVar[tuple[str, ...]] = ()

    @property
    def path(self) -> str:
        return self.command[-1]

    @property
    def suffix(self) -> str:
        return shared_suffix(self.system)

    def identity(self) -> dict:
        """What of this compiler shapes a binary: goes into the key."""
        return {
            "family": self.family,
            "command": list(self.command),
            "resolved": self.resolved or self.path,
            "version": self.version,
            "target": self.target,
            "system": self.system,
        }

    def key_identity(self, flags: tuple[str, ...]) -> dict:
        """The identity for a build with ``flags``: with the host CPU when they ask for it."""
        return self.identity()

    @property
    def short_name(self) -> str:
        first = self.version.strip().splitlines()[0] if self.version.strip() else self.path
        return f"{self.family} {first}"

    # -- building -------------------------------------------------------------------

    def export_macro(self) -> str:
        """C++ attribute that exports a symbol from the shared object."""
        raise NotImplementedError

    def shared_object_argv(self, source: str, output: str, include_dir: str,
                           flags: tuple[str, ...]) -> list[str]:
        """argv compiling ``source`` straight into the shared object ``output``."""
        raise NotImplementedError

    def join_flags(self, flags: tuple[str, ...]) -> str:
        """Flags as one command-line string for the ninja rule's ``$flags``."""
        return " ".join(shlex.quote(f) for f in flags)

    def ninja_rule(self, name: str = "cxx_shared") -> str:
        """A ninja rule building ``$out`` from ``$in``, output of the compiler into ``$log``."""
        return (
            f"rule {name}\n"
            f"  command = {self.rule_command(shlex.quote)} > $log 2>&1\n"
            f"  description = CXX $out\n"
        )

    def rule_command(self, quote: Callable[[str], str]) -> str:
        """The compile command of the ninja rule, its words quoted with ``quote``. The
        compiler's own words (``shared_object_argv`` starts with them) are plain text to ninja
        too; the rest is sobuild's, with the rule's ``$in``, ``$out``, ``$incdir``, ``$flags``."""
        argv = self.shared_object_argv("$in", "$out", "$incdir", ("$flags",))
        program, rest = argv[:len(self.command)], argv[len(self.command):]
        return " ".join([*(ninja_value(quote(a)) for a in program),
                         *(a if a.startswith("$") else quote(a) for a in rest)])

    # -- reading its output -----------------------------------------------------------

    #: A diagnostic line that is an error (GCC and Clang: ``file:3:5: error: ...``,
    #: ``g++: fatal error: ...``, ``error: ...``); a word "error" inside a warning is not.
    _ERROR_RE = re.compile(r"(?:^|:\s)(?:fatal\s+)?error:")

    def first_error_lines(self, log: str, count: int = 12) -> list[str]:
        """The first lines of ``log`` from the first error on: what a user needs to see."""
        lines = log.splitlines()
        for i, line in enumerate(lines):
            if self._ERROR_RE.search(line):
                start = i - 1 if i and lines[i - 1].rstrip().endswith(":") else i
                return lines[start:start + count]
        return lines[:count]
