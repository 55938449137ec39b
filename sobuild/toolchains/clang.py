"""Clang (clang++): the GCC command line, its own identity."""

from __future__ import annotations

from .gcc import GCC


class Clang(GCC):
    """Clang, and any compiler that predefines ``__clang__`` (Apple clang, Intel's icpx with
    ``__INTEL_LLVM_COMPILER``, AMD's aocc, vendor builds): GCC's command line."""

    family = "clang"
    identifying_macros = (*GCC.identifying_macros, "__clang_version__",
                          "__apple_build_version__", "__INTEL_LLVM_COMPILER",
                          "__INTEL_CLANG_COMPILER")
