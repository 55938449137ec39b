"""Clang (clang++): the GCC command line, its own identity."""

from __future__ import annotations

from .gcc import GCC


class Clang(GCC):
    family = "clang"

    @staticmethod
    def recognises(version_output: str) -> bool:
        """``clang version 14.0.6``, ``Debian clang version ...``, ``Apple clang version ...``."""
        return "clang version" in version_output.lower()
