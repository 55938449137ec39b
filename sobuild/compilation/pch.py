"""Precompiled headers: a unit's prologue parsed once per machine, not once per model.

Parsing headers dominates the compile of a unit whose kernels include C++ containers (a
Brian2 unit with ``<map>``, ``<set>``, ``<vector>``, Brian2's dynamic arrays and spike
queues: 70-85% of its time). The head of such a unit (its defines, the prelude, the export
macro and its kernels' prologue, without the ``#line`` directives that name a kernel's file:
``translation_unit.prologue_header``) is precompiled once and kept in the cache under a key
of its own: the compiler's identity, the flags, that text and the contents of the spec
headers it can reach. Units of later models with the same include list read it instead of
parsing the headers again. A kernel's key does not change: a unit compiles to the same
shared object with or without it.

When: a unit of wrapped kernels (``split_source``), with a compiler that supports it
(``Toolchain.precompiled_headers``: GCC), whose prologue holds only includes and defines and
reaches a heavy header: a C++ library header other than the C library's and a few small
ones (``LEAN_HEADERS``), or a header sobuild cannot see (named by a macro, or not among the
spec's headers). A kernel that includes only ``<cstdint>`` and ``<cmath>`` gets none: the
header would cost more to build and keep than it saves. ``SOBUILD_PCH=1`` precompiles every
such prologue, lean ones too; ``SOBUILD_PCH=0`` none. A prologue may choose for itself:
``#define SOBUILD_PCH 1`` gets one however lean its includes (Brian2's kernels: one lean
prologue shared by every model, ``<cmath>`` about half of a unit's compile), ``#define
SOBUILD_PCH 0`` none (a source built once per toolchain).

How: a header not in the cache is an edge of the build's ninja run that the units using it
depend on (order-only). One that fails to build leaves no file and the units read the header
as text, which is their own head: a unit skips its head when the header's guard is defined
(``render(prologue_guard=GUARD)``), so it compiles the same either way. The Builder then
publishes it (``Store.publish_pch``: a temp dir renamed into place; of two processes that
built the same one at once, the first rename wins). One from the cache is read through the
store's checked handles, its xxh3 compared with the digest recorded beside it, and those
very bytes are written into the build directory for the compiler: a missing, corrupt or
untrusted one is built again, never used. So is one that read a file outside the spec's
headers (a system header: ``<vector>``, a library's) that has changed since: GCC itself
never checks, and would compile new kernels against the old text. Its build lists those
files (``-MD``), and their sizes and mtimes are recorded beside it and compared before use.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from ..keys import build_identity
from ..spec import KernelSpec
from ..toolchains.base import Toolchain
from .translation_unit import prologue_header, split_source

#: Bump when the precompiled header's text or command line changes.
PCH_VERSION = 1
#: The macro the header defines last; a unit compiled with it skips its own head.
GUARD = "SOBUILD_PROLOGUE_H"
#: The header's name in a build directory (its precompiled file is beside it).
HEADER_NAME = "sobuild_prologue.h"
#: Prologue lines by which a source chooses for itself: a precompiled header whatever its
#: includes (kernels of which many models share the prologue), or none (a source built once
#: per toolchain, such as a support library: its header would never be read again).
WANT_PCH = "#define SOBUILD_PCH 1"
NO_PCH = "#define SOBUILD_PCH 0"

_C_LIBRARY = ("assert", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits",
              "locale", "math", "setjmp", "signal", "stdalign", "stdarg", "stdbool", "stddef",
              "stdint", "stdio", "stdlib", "string", "time", "uchar", "wchar", "wctype")
#: Headers whose parsing a precompiled header does not pay for: the C library's (``<cmath>``
#: is the largest, about 0.3 s with GCC 12) and small C++ support headers. Any other header
#: (containers, ``<algorithm>``, ``<string>``, ``<iostream>`` ...) makes a prologue heavy.
LEAN_HEADERS = frozenset({*(f"c{n}" for n in _C_LIBRARY), *(f"{n}.h" for n in _C_LIBRARY),
                          "limits", "type_traits", "new", "exception", "initializer_list",
                          "typeinfo", "iosfwd", "version", "cstdalign", "cstdbool"})

_INCLUDE_RE = re.compile(r'#\s*include\s*(?:"([^"\n]+)"|<([^>\n]+)>|(.*))')
_HEADER_INCLUDE_RE = re.compile(r"^[ \t]*#[ \t]*(?:include|include_next|import)\b[ \t]*(.*)$",
                                re.M)
#: A word of a make rule (``\ `` escapes a space) and its escapes.
_MAKE_WORD_RE = re.compile(r"(?:\\.|[^\s\\])+")
_MAKE_ESCAPE_RE = re.compile(r"\\(.)")
#: The prologue directives a precompiled header may hold (a pragma, ``#include_next`` or
#: ``#import`` would not mean the same in a header).
_ALLOWED = ("#include ", "#define ", "#undef ")


@dataclass(eq=False)
class PrecompiledHeader:
    """The precompiled header of a unit's head: its key and text, the checked bytes of the
    cache's copy (``cached``) or None to build it in this run; ``directory`` is where the
    build placed it, ``seconds`` and ``log`` how building it went."""

    key: str
    text: str
    flags: tuple[str, ...]
    suffix: str
    cached: bytes | None = None
    directory: Path | None = None
    seconds: float = 0.0
    log: str = ""
    #: the files outside the build directory it read: [path, size, mtime in ns]
    depends: list[list] = field(default_factory=list)

    @property
    def header(self) -> Path:
        assert self.directory is not None
        return self.directory / HEADER_NAME

    @property
    def binary(self) -> Path:
        return self.header.with_name(HEADER_NAME + self.suffix)

    @property
    def built_here(self) -> bool:
        """Whether this build compiles it (it was not in the cache)."""
        return self.cached is None

    @property
    def ready(self) -> bool:
        """Whether the build directory holds it, precompiled."""
        return self.directory is not None and self.binary.is_file()

    def describe(self) -> str:
        """A line for the log of a unit that used it."""
        how = ("from the cache" if not self.built_here else
               "built in this build" if self.ready else "which did not build: read as text")
        return f"sobuild: precompiled header {self.key} ({how})\n"


def read_depends(path: Path) -> list[list]:
    """The files a compile listed in the make rule ``path`` (``-MD``) that lie outside the
    build directory (absolute paths: system and library headers), with their size and
    mtime; the spec's headers are in the key already."""
    try:
        text = path.read_text(errors="replace").replace("\\\n", " ")
    except OSError:
        return []
    _, _, rest = text.partition(": ")
    found: dict[str, list] = {}
    for word in _MAKE_WORD_RE.findall(rest):
        name = _MAKE_ESCAPE_RE.sub(r"\1", word).replace("$$", "$")
        if os.path.isabs(name) and name not in found:
            try:
                st = os.stat(name)
            except OSError:
                continue
            found[name] = [name, st.st_size, st.st_mtime_ns]
    return list(found.values())


def stale(depends: object) -> str | None:
    """The first file of ``depends`` (``read_depends``) that changed or went since, or None.
    A record that is not such a list counts as stale."""
    if not isinstance(depends, list):
        return "(no record of the files it read)"
    for item in depends:
        try:
            name, size, mtime = item
            st = os.stat(name)
        except (OSError, TypeError, ValueError):
            return str(item)
        if (st.st_size, st.st_mtime_ns) != (size, mtime):
            return name
    return None


def scan(prologue: tuple[str, ...], headers: Mapping[str, str]) -> tuple[dict[str, str], bool]:
    """The spec headers a prologue can read (through their own includes too) and whether it
    reads a heavy header. An include is looked up as the compiler would: beside the header
    that includes it, then among the spec headers (the include directory); every candidate
    found counts. One named by a macro could read anything: every header, heavy."""
    reached: dict[str, str] = {}
    heavy = False
    todo = [(text, "") for text in prologue]
    while todo:
        text, where = todo.pop()
        m = _INCLUDE_RE.match(text)
        if not m:
            continue
        name = m[1] or m[2]
        if name is None:
            return dict(headers), True
        candidates = [name]
        if m[1] and where:
            candidates.insert(0, posixpath.normpath(posixpath.join(where, name)))
        found = False
        for candidate in candidates:
            if candidate in headers:
                found = True
                if candidate not in reached:
                    reached[candidate] = headers[candidate]
                    here = posixpath.dirname(candidate)
                    todo += [("#include " + rest, here)
                             for rest in _HEADER_INCLUDE_RE.findall(headers[candidate])]
        if not found and name not in LEAN_HEADERS:
            heavy = True
    return reached, heavy


def pch_key(text: str, reached: Mapping[str, str], flags: tuple[str, ...],
            toolchain: Toolchain) -> str:
    """32 hex digits naming a precompiled header: equal wherever the same compiler would
    build it from the same text, headers and flags."""
    payload = {
        **build_identity(toolchain, flags),
        "pch": PCH_VERSION,
        "argv": toolchain.pch_argv("$in", "$out", "$incdir", flags),
        "text": text,
        "headers": sorted(reached.items()),
    }
    return xxhash.xxh3_128_hexdigest(json.dumps(payload, sort_keys=True,
                                                separators=(",", ":")).encode())


def plan(kernels: list[tuple[str, KernelSpec]], toolchain: Toolchain, *, force: bool = False
         ) -> PrecompiledHeader | None:
    """The precompiled header a unit of ``kernels`` (one build group and prologue) should be
    compiled with, or None: a unit it would not pay for (``force``: every one it can be).
    The caller checks ``toolchain.precompiled_headers``."""
    _, first = kernels[0]
    split = split_source(first.source)
    if split is None or not split.prologue:
        return None
    if not all(text.startswith(_ALLOWED) for text in split.prologue):
        return None
    if any(HEADER_NAME in text for text in split.prologue):
        return None  # it would include the header itself
    if NO_PCH in split.prologue:
        return None
    reached, heavy = scan(split.prologue, first.headers)
    if not (heavy or force or WANT_PCH in split.prologue):
        return None
    flags = first.flags or toolchain.default_flags
    text = prologue_header(first, split, toolchain, GUARD)
    return PrecompiledHeader(pch_key(text, reached, flags, toolchain), text, flags,
                             toolchain.pch_suffix or "")
