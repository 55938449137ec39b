"""dlopen an artifact once, find a kernel through ``sobuild_lookup``, call it with raw pointers.

One declaration serves every artifact (``void* sobuild_lookup(const char*)``, in the
generated out-of-line module ``_ffi``); each distinct entry signature is parsed once into a
function-pointer type. A ``Kernel`` converts numpy
arrays to pointers (checking dtype and contiguity); ``Kernel.func`` is the bare cffi
function for callers that pass pointers themselves, at the cost of one cffi call.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from ._ffi import ffi  # out-of-line: no pycparser at run time (see ffi_build.py)

_libraries: dict[str, object] = {}

#: C type of a pointee -> the numpy dtype name an array must have to be passed for it.
POINTEE_DTYPES = {
    "double": "float64", "float": "float32",
    "int8_t": "int8", "int16_t": "int16", "int32_t": "int32", "int64_t": "int64",
    "uint8_t": "uint8", "uint16_t": "uint16", "uint32_t": "uint32", "uint64_t": "uint64",
    "char": "int8", "signed char": "int8", "unsigned char": "uint8", "_Bool": "bool",
    "short": "int16", "int": "int32", "long long": "int64", "unsigned int": "uint32",
}


class KernelLoadError(RuntimeError):
    """An artifact does not hold the kernel it should."""


def open_library(path: str | os.PathLike):
    """dlopen ``path`` once per process (paths are content-addressed, so caching is exact)."""
    key = os.fspath(path)
    lib = _libraries.get(key)
    if lib is None:
        lib = _libraries[key] = ffi.dlopen(key)
    return lib


@cache
def function_type(pointer_type: str):
    return ffi.typeof(pointer_type)


def _array_converter(index: int, pointee: str, ctype):
    import numpy as np

    dtype = np.dtype(POINTEE_DTYPES[pointee]) if pointee in POINTEE_DTYPES else None
    # from_buffer is ~8x cheaper than casting arr.ctypes.data and keeps the array alive
    buffer_type = ffi.getctype(ctype.item, "[]") if dtype is not None else "char[]"

    def convert(value):
        if isinstance(value, np.ndarray):
            if dtype is not None and value.dtype != dtype:
                raise TypeError(f"argument {index}: expected an array of {dtype} for "
                                f"'{pointee} *', got {value.dtype}")
            if not value.flags.c_contiguous:
                raise ValueError(f"argument {index}: array must be C-contiguous "
                                 "(np.ascontiguousarray)")
            return ffi.from_buffer(buffer_type, value)
        if isinstance(value, int):
            return ffi.cast(ctype, value)
        if value is None:
            return ffi.NULL
        return value  # cffi cdata, or a buffer cffi accepts itself

    return convert


class Kernel:
    """A loaded kernel: call it with numpy arrays, pointers (int or cdata) and scalars."""

    __slots__ = ("key", "entry", "func", "artifact", "_converters")

    def __init__(self, key: str, entry: str, func, artifact: Path):
        self.key = key
        self.entry = entry
        self.func = func
        self.artifact = artifact
        self._converters = None

    def _make_converters(self):
        converters = []
        for i, arg in enumerate(ffi.typeof(self.func).args):
            if arg.kind == "pointer":
                pointee = arg.item.cname if arg.item.kind != "void" else "void"
                converters.append(_array_converter(i, pointee, arg))
            else:
                converters.append(None)
        return converters

    def __call__(self, *args):
        if self._converters is None:
            self._converters = self._make_converters()
        if len(args) != len(self._converters):
            raise TypeError(f"{self.entry} takes {len(self._converters)} argument(s), "
                            f"{len(args)} given")
        return self.func(*[a if c is None else c(a) for c, a in zip(self._converters, args)])

    def __repr__(self) -> str:
        return f"<sobuild.Kernel {self.entry!r} key={self.key[:12]}>"


def load_kernel(library_path: Path, key: str, pointer_type: str, entry: str) -> Kernel:
    lib = open_library(library_path)
    address = lib.sobuild_lookup(key.encode())
    if address == ffi.NULL:
        raise KernelLoadError(f"{library_path} does not hold kernel {key}")
    return Kernel(key, entry, ffi.cast(function_type(pointer_type), address), library_path)
