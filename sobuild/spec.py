"""KernelSpec: everything that goes into one kernel, and its canonical bytes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_ENTRY_RE = re.compile(r"^\s*(?P<result>[^()]*?)\b(?P<name>[A-Za-z_]\w*)\s*\((?P<params>.*)\)\s*;?\s*$", re.S)
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class KernelSpec:
    """A C++ kernel: its source, the C declaration of its entry point and what shapes its build.

    ``source`` defines the entry as an ordinary C++ function (no ``extern "C"``); sobuild
    compiles it inside a namespace of its own, so several kernels can share one translation
    unit. ``entry`` is a C declaration such as ``"void run(double* v, int32_t n)"`` using C
    builtin and ``<stdint.h>`` types and pointers. ``headers`` maps include names to their
    text; they are written beside the source and are part of the key. ``namespace`` groups
    kernels of one user (``brian2``, say) so they can be cleared together.
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
        object.__setattr__(self, "flags", tuple(str(f) for f in self.flags))
        object.__setattr__(self, "headers", dict(self.headers))
        object.__setattr__(self, "defines", dict(self.defines))
        if not _ENTRY_RE.match(self.entry):
            raise ValueError(f"entry {self.entry!r} is not a C function declaration")
        if not _NAMESPACE_RE.match(self.namespace):
            raise ValueError(f"namespace {self.namespace!r}: use letters, digits, '_', '.', '-'")
        for name in self.headers:
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or ":" in name or not name:
                raise ValueError(f"header name {name!r} must be a relative path inside the build")
        for name in self.defines:
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise ValueError(f"define {name!r} is not a macro name")

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
