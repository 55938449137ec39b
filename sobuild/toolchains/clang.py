"""Clang (clang++): the GCC command line, its own identity."""

from __future__ import annotations

from .gcc import GCC


class Clang(GCC):
    family = "clang"

    @staticmethod
    def recognises(version_output: str) -> bool:
        return "clang version" in version_output.lower()
