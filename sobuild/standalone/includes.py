"""The headers a source reads from the project and its include directories, by content.

An object file's key holds the contents of the headers its source includes (``objects.h``,
``brianlib/dynamic_array.h``, a user's header on an ``-I`` directory ...), followed
transitively. A header found in none of those directories is the compiler's (``<cmath>``,
``<vector>``): the toolchain's identity covers it, as it does for kernels. Every
``#include`` line counts, whatever conditional surrounds it: a key may hold a header the
compiler skips, never miss one it reads. A source with an include the scanner cannot follow
(one named by a macro) has no key and is always compiled.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import xxhash

_INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*(?:include|include_next|import)\b[ \t]*(.*)$', re.M)
_NAMED_RE = re.compile(r'"([^"\n]+)"|<([^>\n]+)>')
#: Flags naming an include directory, as a word of their own or glued to the directory.
_DIRECTORY_FLAGS = ("-I", "-iquote", "-isystem", "-idirafter")


class UnfollowedInclude(Exception):
    """An ``#include`` whose header the scanner cannot name (``#include MACRO``)."""


def include_dirs(flags: tuple[str, ...], project: Path) -> list[Path]:
    """The directories of ``-I``, ``-iquote``, ``-isystem`` and ``-idirafter`` in ``flags``,
    in order; relative ones (Brian2's ``-I.``) taken from the project directory."""
    found: list[Path] = []
    words = iter(flags)
    for word in words:
        for flag in _DIRECTORY_FLAGS:
            if word == flag:
                directory = next(words, "")
            elif word.startswith(flag):
                directory = word[len(flag):]
            else:
                continue
            if directory:
                found.append(project / directory)
            break
    return found


class IncludeScanner:
    """Follows the includes of sources of one project; each header is read once."""

    def __init__(self, project: Path, directories: list[Path]) -> None:
        self.project = project
        self.directories = directories
        self._headers: dict[Path, tuple[str, tuple[Path, ...]]] = {}  # digest, its includes

    def headers(self, text: str, directory: Path) -> dict[str, str]:
        """The headers ``text`` (a source in ``directory``) reads, transitively: their
        names (relative to the project when inside it) and xxh3 digests.
        UnfollowedInclude if one cannot be named."""
        result: dict[str, str] = {}
        pending = list(self._resolve_all(text, directory))
        while pending:
            path = pending.pop()
            name = self._name(path)
            if name in result:
                continue
            digest, nested = self._header(path)
            result[name] = digest
            pending.extend(nested)
        return dict(sorted(result.items()))

    def _header(self, path: Path) -> tuple[str, tuple[Path, ...]]:
        if path not in self._headers:
            data = path.read_bytes()
            text = data.decode("utf-8", errors="replace")
            self._headers[path] = (xxhash.xxh3_128_hexdigest(data),
                                   tuple(self._resolve_all(text, path.parent)))
        return self._headers[path]

    def _resolve_all(self, text: str, directory: Path) -> list[Path]:
        found = []
        for match in _INCLUDE_RE.finditer(text):
            named = _NAMED_RE.match(match[1])
            if named is None:
                raise UnfollowedInclude(f"#include {match[1].strip()}")
            quoted, angled = named[1], named[2]
            path = self._resolve(quoted or angled, directory if quoted else None)
            if path is not None:
                found.append(path)
        return found

    def _resolve(self, name: str, directory: Path | None) -> Path | None:
        """The file ``name`` names: beside the including file (quoted includes), then in
        the include directories; None for the compiler's own headers."""
        candidates = ([directory] if directory is not None else []) + self.directories
        for base in candidates:
            path = base / name
            if path.is_file():
                return Path(os.path.normpath(path))
        return None

    def _name(self, path: Path) -> str:
        try:
            return path.relative_to(self.project).as_posix()
        except ValueError:
            return str(path)
