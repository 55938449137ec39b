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

    ``command`` is the argv prefix that runs the compiles (``("/usr/bin/g++",)``, or with a
    launcher such as ``("ccache", "/usr/bin/g++")``); ``compiler`` is the real compiler behind
    it when that differs (``("/usr/bin/g++",)`` behind ccache, or behind ccache's stand-in
    link ``/usr/lib/ccache/g++``; empty: ``command`` itself). Only the real compiler is
    probed and named in the key: ``family`` (from the macros it predefines), its words and
    ``resolved`` path, ``version`` (its ``--version`` output), ``target`` (its triple),
    ``macros`` (the identifying macros it predefines, such as ``__VERSION__``), ``proper``
    (the compiler proper its driver runs, cc1plus or clang's ``-cc1``: the real compiler
    behind a wrapper such as mpicxx), ``script`` (a digest of the compiler file when it
    is a script, which can add flags) and ``linker`` (the ``-fuse-ld=`` choice of
    ``linkers.fastest_linker``, with its ``linker_path`` and ``linker_version``; empty: the
    driver's own). ``environment`` holds variables the compiler needs
    (MSVC's vcvarsall environment); ``probe_records`` is where probes of it are remembered.
    """

    command: tuple[str, ...]
    version: str
    target: str
    system: str = field(default_factory=platform.system)
    environment: tuple[tuple[str, str], ...] = ()
    resolved: str = ""
    compiler: tuple[str, ...] = ()
    macros: tuple[tuple[str, str], ...] = ()
    proper: str = ""
    script: str = ""
    linker: str = ""
    linker_path: str = ""
    linker_version: str = ""
    probe_records: ProbeRecords | None = field(default=None, compare=False, repr=False)

    family: ClassVar[str] = "generic"
    #: Flags used when a spec names none.
    default_flags: ClassVar[tuple[str, ...]] = ()
    #: Predefined macros that tell this family's compilers (and versions) apart: each one
    #: defined is part of the identity. The detection probe prints those of every family.
    identifying_macros: ClassVar[tuple[str, ...]] = ()

    @property
    def compiler_command(self) -> tuple[str, ...]:
        """The real compiler's argv prefix: ``command`` without its launchers."""
        return self.compiler or self.command

    @property
    def path(self) -> str:
        """The real compiler's path (behind any launcher)."""
        return self.compiler_command[-1]

    @property
    def suffix(self) -> str:
        return shared_suffix(self.system)

    def identity(self) -> dict:
        """What of this compiler shapes a binary: goes into the key.

        The real compiler's, never a launcher's: ccache, sccache, distcc, icecc and
        buildcache run the very compiler named after them (distcc and icecc on other hosts,
        which must have the same one), so ``ccache g++`` and ``g++`` build the same binary
        under the same key.
        """
        identity = {
            "family": self.family,
            "command": list(self.compiler_command),
            "resolved": self.resolved or self.path,
            "version": self.version,
            "target": self.target,
            "system": self.system,
        }
        # Absent when unknown (a Toolchain made by hand): keys of such toolchains stay put.
        if self.macros:
            identity["macros"] = dict(self.macros)
        if self.proper:
            identity["proper"] = self.proper
        if self.script:
            identity["script"] = self.script
        if self.linker:
            identity["linker"] = f"{self.linker}: {self.linker_version}"
        return identity

    def key_identity(self, flags: tuple[str, ...]) -> dict:
        """The identity for a build with ``flags``: with the host CPU when they ask for it."""
        return self.identity()

    @property
    def short_name(self) -> str:
        first = self.version.strip().splitlines()[0] if self.version.strip() else self.path
        return f"{self.family} {first}"

    # -- probing --------------------------------------------------------------------

    @classmethod
    def describe(cls, compiler: tuple[str, ...], preprocessed: str,
                 run: Callable[[list[str]], str]) -> dict:
        """What a compiler its macros showed to be of this family says about itself:
        ``version``, ``target`` and the family's own fields (``system``, ``proper``), asked
        of ``compiler`` with ``run(argv) -> output``; ``preprocessed`` is what it printed
        for the detection probe. ValueError: why it is not one after all."""
        raise NotImplementedError

    # -- building -------------------------------------------------------------------

    def export_macro(self) -> str:
        """C++ attribute that exports a symbol from the shared object."""
        raise NotImplementedError

    def shared_object_argv(self, source: str, output: str, include_dir: str,
                           flags: tuple[str, ...]) -> list[str]:
        """argv compiling ``source`` straight into the shared object ``output``."""
        raise NotImplementedError

    @property
    def link_flags(self) -> tuple[str, ...]:
        """Options that choose the linker (``linker``) in a link by this compiler."""
        return ()

    def join_flags(self, flags: tuple[str, ...]) -> str:
        """Flags as one command-line string for the ninja rule's ``$flags``."""
        return " ".join(shlex.quote(f) for f in flags)

    def ninja_rule(self, name: str = "cxx_shared", extra: tuple[str, ...] = ()) -> str:
        """A ninja rule building ``$out`` from ``$in``, output of the compiler into ``$log``
        (``extra``: arguments after the flags, such as ``pch_use_argv``'s)."""
        return (
            f"rule {name}\n"
            f"  command = {self.rule_command(shlex.quote, extra)} > $log 2>&1\n"
            f"  description = CXX $out\n"
        )

    def rule_command(self, quote: Callable[[str], str], extra: tuple[str, ...] = ()) -> str:
        """The compile command of the ninja rule, its words quoted with ``quote``. The
        compiler's own words (``shared_object_argv`` starts with them) are plain text to ninja
        too; the rest is sobuild's, with the rule's ``$in``, ``$out``, ``$incdir``, ``$flags``."""
        return self.rule_words(self.shared_object_argv("$in", "$out", "$incdir",
                                                       ("$flags", *extra)), quote)

    def rule_words(self, argv: list[str], quote: Callable[[str], str]) -> str:
        """``argv`` (starting with ``command``) as the words of a ninja rule's command."""
        program, rest = argv[:len(self.command)], argv[len(self.command):]
        return " ".join([*(ninja_value(quote(a)) for a in program),
                         *(a if a.startswith("$") else quote(a) for a in rest)])

    # -- precompiled headers (see sobuild.compilation.pch) --------------------------------

    #: The suffix of the file a header ``X.h`` is precompiled into, found beside it (GCC's
    #: ``X.h.gch``); None where sobuild does not precompile headers.
    pch_suffix: ClassVar[str | None] = None

    @property
    def precompiled_headers(self) -> bool:
        """Whether sobuild precompiles a unit's prologue with this compiler."""
        return False

    def pch_argv(self, header: str, output: str, include_dir: str,
                 flags: tuple[str, ...]) -> list[str]:
        """argv precompiling ``header`` into ``output`` for units built with ``flags``."""
        raise NotImplementedError

    def pch_use_argv(self, header: str) -> list[str]:
        """Arguments that make a compile read ``header`` first, precompiled when its
        ``pch_suffix`` file beside it is valid, else as text."""
        raise NotImplementedError

    def pch_rule(self, name: str = "cxx_pch") -> str:
        """A ninja rule precompiling ``$in`` into ``$out`` and listing the files it read in
        ``$out.d`` (make's syntax); one that fails leaves no ``$out`` but succeeds all the
        same, so that the units depending on it are built (reading the header as text)."""
        raise NotImplementedError

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
