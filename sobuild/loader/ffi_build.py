"""Generates ``_ffi.py``, cffi's out-of-line ABI module for the one declaration sobuild needs.

An in-line ``cffi.FFI().cdef(...)`` imports pycparser at run time (27 ms here, 195 ms on a
loaded machine); the out-of-line module parses type strings in C and costs ~3 ms. Rewrite
it with ``python -m sobuild.loader.ffi_build`` after changing ``DECLARATIONS``; a test
checks that the committed file is current.
"""

from __future__ import annotations

import sys
from pathlib import Path

DECLARATIONS = "void* sobuild_lookup(const char* key);"
MODULE = "sobuild.loader._ffi"


def generate(path: Path) -> None:
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(DECLARATIONS)
    ffi.set_source(MODULE, None)
    ffi.emit_python_code(str(path))


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("_ffi.py"))
