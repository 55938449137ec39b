"""The runtime support library of Brian2 kernels, and the headers kernels include.

Parsing C++ container headers, not generating code, dominated the build of a Brian2 kernel:
Brian2's ``DynamicArray1D``/``2D`` and ``CSpikeQueue`` are templates over ``std::vector``,
and the synapse-creation templates used ``<map>`` and ``<set>``. Those live in one library
(``templates/sobuild_support.cc``, compiled against Brian2's own headers so that it works
on the objects of Brian2's extension), which exports a table of functions
(``sobuild_brian::runtime`` in ``sobuild_brian.h``). Kernels include only ``sobuild_brian.h``
(the C library's math, small handle classes) and receive the table's address in slot 3 of
their argument block (``arguments.RUNTIME_SLOT``).

The library is a kernel of the cache like any other: its key covers its source, the headers
by content, the flags and the compiler's identity, so it is built once per toolchain (in the
batch of the first kernels that need it, alongside them), kept as an artifact of its own,
verified before every load, rebuilt when missing or corrupt, built once when two processes
need it at once (the per-key build lock), shared through the shared and remote tiers.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from ..loader.cffi_loader import ffi
from ..spec import KernelSpec

#: Brian2's package directory, found without importing Brian2 (``prewarm`` starts before it).
_BRIAN_DIR = Path(importlib.util.find_spec("brian2").origin).parent
_TEMPLATES_DIR = Path(__file__).parent / "templates"
#: What kernels include (by content: part of their keys).
_KERNEL_HEADER_FILES = {
    "sobuild_brian.h": _TEMPLATES_DIR / "sobuild_brian.h",
    "brianlib/common_math.h": _BRIAN_DIR / "devices/cpp_standalone/brianlib/common_math.h",
    "stdint_compat.h": _BRIAN_DIR / "synapses/stdint_compat.h",
}
#: What the support library includes besides.
_SUPPORT_HEADER_FILES = {
    "sobuild_dynamic_array.h": _TEMPLATES_DIR / "sobuild_dynamic_array.h",
    "brianlib/dynamic_array.h": _BRIAN_DIR / "devices/cpp_standalone/brianlib/dynamic_array.h",
    "spikequeue.h": _BRIAN_DIR / "synapses/spikequeue.h",
}
SOURCE = _TEMPLATES_DIR / "sobuild_support.cc"
ENTRY = "int run(void* const* _args)"
#: The default of ``codegen.runtime.sobuild.extra_compile_args``: the kernels' flags.
KERNEL_FLAGS = ("-O3", "-ffast-math", "-fno-finite-math-only")
#: The prologue of every Brian2 kernel (``kernel_head`` in ``templates/common_group.cpp``):
#: one precompiled header serves every model.
KERNEL_PROLOGUE = '#define SOBUILD_PCH 1\n#include "sobuild_brian.h"'
_headers: dict[str, str] | None = None


def kernel_headers() -> dict[str, str]:
    """The headers every Brian2 kernel may include, by content."""
    global _headers
    if _headers is None:
        _headers = {name: path.read_text() for name, path in _KERNEL_HEADER_FILES.items()}
    return _headers


@functools.cache
def support_spec() -> KernelSpec:
    """The support library as a kernel: its entry writes the table's address to slot 0.
    Built with the toolchain's default flags (the kernels' extra flags do not apply). Read
    once per process (``prewarm`` and the first batch both ask)."""
    headers = {**kernel_headers(),
               **{name: path.read_text() for name, path in _SUPPORT_HEADER_FILES.items()}}
    return KernelSpec(source=SOURCE.read_text(), entry=ENTRY, headers=headers,
                      namespace="brian2")


def pch_carrier_spec() -> KernelSpec:
    """A kernel of the kernels' prologue with an empty body: building it builds the
    precompiled header that prologue reads with the default flags (``prewarm``), as the
    first unit of any kernels would."""
    return KernelSpec(source=KERNEL_PROLOGUE + "\n\nint run(void* const* _args)\n{\n"
                      "    return 0;\n}\n", entry=ENTRY, flags=KERNEL_FLAGS,
                      headers=kernel_headers(), namespace="brian2")


class SupportLibrary:
    """The support library of this process: queued with the first code objects that need it
    (``codeobject.load_kernels``), loaded once; ``address`` is then its table's."""

    def __init__(self) -> None:
        self.specs: dict[str, KernelSpec] = {}
        self.address: int | None = None
        self._func = None  # keeps the library loaded

    def queue(self) -> None:
        """Ask for the library in the next build (a no-op once it is loaded)."""
        if self.address is None and not self.specs:
            self.specs = {"table": support_spec()}

    def _bind(self, funcs: dict) -> None:
        func = funcs["table"]
        out = ffi.new("void**")
        argblock = ffi.new("void*[1]", [out])
        if func(argblock) != 0 or out[0] == ffi.NULL:
            raise RuntimeError("sobuild's Brian2 support library gave no function table")
        self._func = func
        self.address = int(ffi.cast("uintptr_t", out[0]))
        self.specs = {}


LIBRARY = SupportLibrary()
