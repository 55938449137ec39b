"""dlopen a verified artifact once, find a kernel through ``sobuild_lookup``, call it with raw
pointers.

What is loaded is the inode that was checked: the Store hands over an open, digest-checked
handle, and Linux loads it as ``/proc/self/fd/N``. That descriptor stays open for as long
as the library is loaded (for the process's life), so no later handle can reuse its
number, and with it the name under which the dynamic loader knows the library. Elsewhere
the checked bytes are written to a private copy, which is loaded instead.

One declaration serves every artifact (``void* sobuild_lookup(const char*)``, in the
generated out-of-line module ``_ffi``); each distinct entry signature is parsed once into a
function-pointer type. A ``Kernel`` converts numpy
arrays to pointers (checking dtype and contiguity); ``Kernel.func`` is the bare cffi
function for callers that pass pointers themselves, at the cost of one cffi call.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

from ._ffi import ffi  # out-of-line: no pycparser at run time (see ffi_build.py)

#: Loaded libraries by digest (content-addressed: one load per process is exact).
_libraries: dict[str, object] = {}
#: Descriptors of libraries loaded through /proc/self/fd: never closed (see above).
_held_descriptors: list[int] = []
_PROC_FD = "/proc/self/fd"

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


def loaded(digest: str):
    """The library of ``digest`` if this process has loaded it already."""
    return _libraries.get(digest)


def load_verified(fd: int, digest: str, suffix: str):
    """Load the checked library open at ``fd`` (which this takes over) once per process."""
    lib = _libraries.get(digest)
    if lib is not None:
        os.close(fd)
        return lib
    if os.path.isdir(_PROC_FD):
        try:
            lib = ffi.dlopen(f"{_PROC_FD}/{fd}")
        except BaseException:
            os.close(fd)
            raise
        _held_descriptors.append(fd)
    else:
        try:
            content = _read_all(fd)
        finally:
            os.close(fd)
        lib = _load_private_copy(content, digest, suffix)
    _libraries[digest] = lib
    return lib


def load_bytes(content: bytes, digest: str, suffix: str):
    """Load a library from bytes this process holds (built and hashed here) once per process."""
    lib = _libraries.get(digest)
    if lib is None:
        lib = _libraries[digest] = _load_private_copy(content, digest, suffix)
    return lib


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _load_private_copy(content: bytes, digest: str, suffix: str):
    """dlopen a copy of ``content`` that only this user can reach."""
    if hasattr(os, "memfd_create") and os.path.isdir(_PROC_FD):
        fd = os.memfd_create(f"sobuild-{digest}", os.MFD_CLOEXEC)
        os.write(fd, content)
        lib = ffi.dlopen(f"{_PROC_FD}/{fd}")
        _held_descriptors.append(fd)
        return lib
    from ..store.trust import private_temp_dir

    directory = private_temp_dir()
    fd, path = tempfile.mkstemp(prefix=f"{digest}-", suffix=suffix, dir=directory)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)
    return ffi.dlopen(path)


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


def load_kernel(lib, key: str, pointer_type: str, entry: str, library_path: Path) -> Kernel:
    """The kernel ``key`` of the loaded library ``lib``; KernelLoadError if it holds none."""
    address = lib.sobuild_lookup(key.encode())
    if address == ffi.NULL:
        raise KernelLoadError(f"{library_path} does not hold kernel {key}")
    return Kernel(key, entry, ffi.cast(function_type(pointer_type), address), library_path)
