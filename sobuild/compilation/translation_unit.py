"""Many kernels in one translation unit, each compiled exactly as it would be alone.

Compiler start-up and header parsing dominate small kernels (13 kernels: 1.9 s as 13 g++
calls, 0.17 s as one unit), so a batch is compiled as a few units. A kernel's *prologue* is
the ordered sequence of its preprocessor lines up to its last ``#include`` (includes,
defines, pragmas: all that shapes what its headers mean). Kernels share a unit only when
their prologues are the same text: the unit states that prologue once at file scope, then
wraps each kernel's body (the source with its prologue lines blanked, so line numbers hold)
in a namespace of its own. A macro that a body defines or undefines is saved before it and
restored after it (``push_macro``/``pop_macro``), so no body changes the next one. ``#line``
directives make the compiler report errors against the kernel's own file name. A kernel
whose source cannot be split this way (code or a conditional among its includes, its own
``extern "C"``, a file-scope ``#pragma`` in its body) gets a unit to itself, unwrapped.
Each unit ends with ``sobuild_lookup(key)``, which returns a kernel's entry point: one cffi
declaration serves every artifact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..spec import KernelSpec
from ..toolchains.base import Toolchain

_DIRECTIVE_RE = re.compile(r"\s*#\s*(\w*)\s*(.*)", re.S)
_MACRO_NAME_RE = re.compile(r"[A-Za-z_]\w*")
_INCLUDES = frozenset({"include", "include_next", "import"})
_CONDITIONALS = frozenset({"if", "ifdef", "ifndef", "elif", "elifdef", "elifndef", "else",
                           "endif"})
#: Pragmas whose effect ends with the statement or function they stand in; any other
#: (``pack``, ``GCC optimize``, ``GCC diagnostic``...) would reach the kernels after it.
_LOCAL_PRAGMA_RE = re.compile(r"(?:omp|acc|simd|ivdep|unroll|nounroll|loop|"
                              r"GCC\s+(?:ivdep|unroll)|clang\s+loop)\b")
_EXTERN_C_RE = re.compile(r'extern\s+"C"')

PRELUDE = "#include <cstddef>\n#include <cstdint>\n#include <cstring>\n"


def kernel_filename(key: str) -> str:
    """The name errors are reported against, and the name of the kept source on failure."""
    return f"kernel-{key[:16]}.cpp"


def namespace_of(key: str) -> str:
    return f"sobuild_k_{key}"


@dataclass(frozen=True)
class SplitSource:
    """A source split for a shared unit: ``prologue`` (directive texts, in order, with the
    line number of each in ``prologue_lines``), the ``body`` with those lines blanked, and
    the ``macros`` the body defines or undefines."""

    prologue: tuple[str, ...]
    prologue_lines: tuple[int, ...]
    body: str
    macros: tuple[str, ...]


@dataclass(frozen=True)
class _Logical:
    """One logical line (physical lines joined at backslash-newline), comments removed."""

    first: int  # index of its first physical line
    last: int
    code: str
    open_comment: bool  # a block comment is still open at its end


def _strip_comments(text: str, in_comment: bool) -> tuple[str, bool]:
    """``text`` with its comments replaced by a space; whether a block comment stays open."""
    if not in_comment and "/" not in text:
        return text, False
    out, i, quote = [], 0, ""
    while i < len(text):
        if in_comment:
            end = text.find("*/", i)
            if end < 0:
                return "".join(out), True
            out.append(" ")
            i, in_comment = end + 2, False
        elif quote:
            out.append(text[i:i + 2] if text[i] == "\\" else text[i])
            quote = "" if text[i] == quote else quote
            i += 2 if text[i] == "\\" else 1
        elif text.startswith("//", i):
            break
        elif text.startswith("/*", i):
            in_comment, i = True, i + 2
        else:
            quote = text[i] if text[i] in "\"'" else ""
            out.append(text[i])
            i += 1
    return "".join(out), in_comment


def _logical_lines(lines: list[str]) -> list[_Logical]:
    result, i, in_comment = [], 0, False
    while i < len(lines):
        first, parts = i, []
        while True:
            line = lines[i].rstrip("\r")
            i += 1
            if not line.endswith("\\") or i == len(lines):
                parts.append(line)
                break
            parts.append(line[:-1])
        code, in_comment = _strip_comments("".join(parts), in_comment)
        result.append(_Logical(first, i - 1, code.strip(), in_comment))
    return result


def split_source(source: str) -> SplitSource | None:
    """The prologue, the body and its macros; None if the source cannot share a unit."""
    if _EXTERN_C_RE.search(source):
        return None
    lines = source.split("\n")
    logical = _logical_lines(lines)
    directives = [(_DIRECTIVE_RE.fullmatch(ll.code) if ll.code.startswith("#") else None)
                  for ll in logical]
    last_include = max((n for n, d in enumerate(directives) if d and d[1] in _INCLUDES),
                       default=-1)
    prologue, prologue_lines = [], []
    for ll, d in zip(logical[:last_include + 1], directives):
        if ll.code and (d is None or d[1] in _CONDITIONALS or d[1] == "line"):
            return None  # code or a conditional among the includes: only its own order holds
        if d and d[1]:
            prologue.append(f"#{d[1]} {d[2]}".rstrip())
            prologue_lines.append(ll.first + 1)
    if last_include >= 0 and logical[last_include].open_comment:
        return None
    macros = []
    for d in directives[last_include + 1:]:
        if d and d[1] in ("define", "undef"):
            name = _MACRO_NAME_RE.match(d[2])
            if name:
                macros.append(name[0])
        elif d and d[1] == "pragma" and not _LOCAL_PRAGMA_RE.match(d[2]):
            return None
    blanked = logical[last_include].last + 1 if last_include >= 0 else 0
    body = "\n".join([""] * blanked + lines[blanked:])
    return SplitSource(tuple(prologue), tuple(prologue_lines), body, tuple(dict.fromkeys(macros)))


def _define_lines(spec: KernelSpec) -> list[str]:
    return [f"#define {k}" + ("" if v is None else f" {v}") for k, v in sorted(spec.defines.items())]


def _head_lines(spec: KernelSpec, toolchain: Toolchain) -> list[str]:
    """What every unit of ``spec``'s build group states first: its defines, the prelude and
    the export macro."""
    return [*_define_lines(spec), PRELUDE.rstrip(),
            f"#define SOBUILD_EXPORT extern \"C\" {toolchain.export_macro()}"]


def prologue_header(spec: KernelSpec, split: SplitSource, toolchain: Toolchain,
                    guard: str) -> str:
    """The head of a unit of ``spec``'s build group and prologue ``split`` as a header of its
    own, for a precompiled header: the unit's defines, prelude, export macro and prologue
    directives, without the ``#line`` directives that name a kernel's file (so units of
    other kernels with the same prologue read the same text); it defines ``guard`` last."""
    return "\n".join([*_head_lines(spec, toolchain), *split.prologue, f"#define {guard}", ""])


def render(kernels: list[tuple[str, KernelSpec]], toolchain: Toolchain,
           prologue_guard: str | None = None) -> str:
    """The text of one unit holding ``kernels`` (one build group, one prologue).

    With ``prologue_guard`` (a unit of wrapped kernels compiled with a precompiled header,
    see ``prologue_header``), the unit's head is skipped when that macro is defined: the
    header, included first on the command line, stated it already. Without the header the
    unit reads its own head, so it compiles the same either way.
    """
    first_key, first = kernels[0]
    lines = [f"// generated by sobuild: one translation unit, {len(kernels)} kernel(s)"]
    head = _head_lines(first, toolchain)
    table = []
    parts = [(key, spec, split_source(spec.source)) for key, spec in kernels]
    if len(parts) == 1 and parts[0][2] is None:
        lines += [*head, f'#line 1 "{kernel_filename(first_key)}"', first.source, ""]
        table.append((first_key, first, f"&{first.entry_name}"))
    else:
        prologue = parts[0][2]
        if any(split is None or split.prologue != prologue.prologue for _, _, split in parts):
            raise ValueError("kernels of one unit must have the same prologue (see partition)")
        if prologue_guard:
            lines.append(f"#ifndef {prologue_guard}")
        lines += head
        for number, text in zip(prologue.prologue_lines, prologue.prologue):
            lines += [f'#line {number} "{kernel_filename(first_key)}"', text]
        if prologue_guard:
            lines.append("#endif")
        for key, spec, split in parts:
            lines += [f'#pragma push_macro("{m}")' for m in split.macros]
            lines += [f"namespace {namespace_of(key)} {{",
                      f'#line 1 "{kernel_filename(key)}"', split.body, "}"]
            for m in split.macros:
                lines += [f"#undef {m}", f'#pragma pop_macro("{m}")']
            table.append((key, spec, f"&{namespace_of(key)}::{spec.entry_name}"))
    lines.append("")
    lines.append("SOBUILD_EXPORT void* sobuild_lookup(const char* key) {")
    lines.append("    static const struct { const char* key; void* entry; } table[] = {")
    for key, spec, address in table:
        cast = f"static_cast<{spec.function_pointer_type}>({address})"
        lines.append(f'        {{"{key}", reinterpret_cast<void*>({cast})}},')
    lines.append("    };")
    lines.append("    for (const auto& e : table) if (std::strcmp(e.key, key) == 0) return e.entry;")
    lines.append("    return nullptr;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def partition(kernels: list[tuple[str, KernelSpec]], jobs: int) -> list[list[tuple[str, KernelSpec]]]:
    """Split kernels into units: per build group and prologue, about one unit per parallel job.

    Sizes are balanced by source length (largest first onto the lightest unit).
    """
    groups: dict[tuple, list] = {}
    units: list[list] = []
    for key, spec in kernels:
        split = split_source(spec.source)
        if split is None:
            units.append([(key, spec)])
        else:
            groups.setdefault((spec.build_group, split.prologue), []).append((key, spec))
    total = sum(len(g) for g in groups.values())
    for members in groups.values():
        share = max(1, round(jobs * len(members) / total)) if total else 1
        count = min(len(members), share)
        bins: list[list] = [[] for _ in range(count)]
        weights = [0] * count
        for item in sorted(members, key=lambda kv: -len(kv[1].source)):
            i = weights.index(min(weights))
            bins[i].append(item)
            weights[i] += len(item[1].source) + 2000  # a kernel costs more than its text
        units.extend(bins)
    return units
