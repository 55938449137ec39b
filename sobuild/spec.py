"""KernelSpec: everything that goes into one kernel, and its canonical bytes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import SpecError

_ENTRY_RE = re.compile(r"^\s*(?P<result>[^()]*?)\b(?P<name>[A-Za-z_]\w*)\s*\((?P<params>.*)\)\s*;?\s*$", re.S)
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: Characters that would end a line of build.ninja or of the generated source, or a C string.
_LINE_BREAKS_RE = re.compile(r"[\n\r\0]")
#: What only C++ can say in a declaration: references, scopes (``std::``), templates.
_CXX_ONLY_RE = re.compile(r"&|::|<|>")


@dataclass(frozen=True)
class KernelSpec:
    """A C++ kernel: its source, the C declaration of its entry point and what shapes its build.

    ``source`` defines the entry as an ordinary C++ function (no ``extern "C"``); sobuild
    compiles it inside a namespace of its own, so several kernels can share one translation
    unit. ``entry`` is a C declaration such as ``"void run(double* v, int32_t n)"`` using C
    builtin and ``<stdint.h>`` types and pointers. ``headers`` maps include names to their
    text; they are written beside the source and are part of the key. ``namespace`` groups
    kernels of one user (``brian2``, say) so they can be cleared together. Text that could
    change what the build runs (a line break in a flag, say) or that is not UTF-8 is refused
    with a SpecError; a ``source`` given as bytes is decoded as UTF-8.
    """

    source: str
    entry: str = "void run(void* const* args)"
    flags: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    defines: Mapping[str, str | None] = field(default_factory=dict)
    namespace: str = "default"

    def __post_init__(self) -> None:
        if isinstance(self.flags, str) or not isinstance(self.flags, Iterable):
            raise TypeError("KernelSpec.flags must be a sequence of strings, e.g. ['-O3']")
        if isinstance(self.source, bytes):
            object.__setattr__(self, "source", _decode(self.source))
        object.__setattr__(self, "flags", tuple(str(f) for f in self.flags))
        object.__setattr__(self, "headers", dict(self.headers))
        object.__setattr__(self, "defines", dict(self.defines))
        check_text(self)
        if not _ENTRY_RE.match(self.entry):
            raise SpecError(f"entry {self.entry!r} is not a C function declaration")
        cxx_only = sorted(set(_CXX_ONLY_RE.findall(self.entry)))
        if cxx_only:
            raise SpecError(
                f"entry {self.entry!r} uses C++ ({' '.join(cxx_only)}): an entry is a C "
                "declaration, with builtin and <stdint.h> types and pointers, e.g. "
                "'void run(double* v, int32_t n)'; pass arrays as pointers and their sizes")
        if not _NAMESPACE_RE.match(self.namespace):
            raise SpecError(f"namespace {self.namespace!r}: use letters, digits, '_', '.', '-'")
        for name in self.headers:
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or ":" in name or not name:
                raise SpecError(f"header name {name!r} must be a relative path inside the build")
        for name in self.defines:
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise SpecError(f"define {name!r} is not a macro name")

    @property
    def entry_name(self) -> str:
        """The function name the source defines, e.g. ``run``."""
        return _ENTRY_RE.match(self.entry)["name"]

    @property
    def function_pointer_type(self) -> str:
        """The entry as a C function-pointer type, e.g. ``void(*)(double* v, int32_t n)``."""
        m = _ENTRY_RE.match(self.entry)
        return f"{m['result'].strip()}(*)({m['params'].strip()})"

    @property
    def build_group(self) -> tuple:
        """Kernels with equal build groups can be compiled in one translation unit."""
        return (self.flags, tuple(sorted(self.headers.items())), tuple(sorted(self.defines.items())))

    def canonical(self) -> dict:
        """A JSON-able form, independent of dict order and of the process."""
        return {
            "source": self.source,
            "entry": " ".join(self.entry.split()),
            "flags": list(self.flags),
            "headers": sorted(self.headers.items()),
            "defines": sorted((k, v) for k, v in self.defines.items()),
            "namespace": self.namespace,
        }

    def canonical_bytes(self) -> bytes:
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":")).encode()


def check_text(spec: KernelSpec) -> None:
    """Refuse text that could change the meaning of build.ninja or of the generated source:
    a line break or NUL in a flag, define, header name or entry; text that is not UTF-8."""
    # (what, its name, text): messages are only made for what is refused (the warm path)
    fields = [("entry", None, spec.entry), *(("flag", i, f) for i, f in enumerate(spec.flags)),
              *(("header name", n, n) for n in spec.headers),
              *(("define", n, n) for n in spec.defines),
              *(("value of define", n, v if isinstance(v, str) else str(v))
                for n, v in spec.defines.items() if v is not None)]
    texts = [("source", None, spec.source), *(("header", n, t) for n, t in spec.headers.items()),
             *fields]
    for what, name, text in texts:
        if not isinstance(text, str):
            raise SpecError(f"{_label(what, name)} must be a string, not "
                            f"{type(text).__name__}: {text!r}")
        if not text.isascii():  # O(1) in CPython: ASCII text costs nothing here
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise SpecError(f"{_label(what, name)} is not valid UTF-8: {text[exc.start]!r}"
                                f" at {_position(text, exc.start)}") from None
    for what, name, value in fields:
        if _LINE_BREAKS_RE.search(value):
            raise SpecError(f"{_label(what, name)} holds a line break or NUL, which sobuild "
                            f"never passes to the compiler: {value!r}")


def _label(what: str, name: str | int | None) -> str:
    return what if name is None else f"{what} {name!r}"


def _decode(source: bytes) -> str:
    try:
        return source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"source is not valid UTF-8: byte {source[exc.start:exc.start + 1]!r} "
                        f"at {_position(source, exc.start)}") from None


def _position(text: str | bytes, index: int) -> str:
    """``index`` in ``text`` as a line and column (both from 1), and the offset itself."""
    newline = "\n" if isinstance(text, str) else b"\n"
    line = text.count(newline, 0, index) + 1
    column = index - (text.rfind(newline, 0, index) + 1) + 1
    return f"line {line}, column {column} (offset {index})"
