"""GCC (g++): builds a shared object with -shared -fPIC in one call."""

from __future__ import annotations

from .base import Toolchain


class GCC(Toolchain):
    family = "gcc"
    default_flags = ("-O3",)
    base_flags = ("-shared", "-fPIC", "-std=c++17", "-fvisibility=hidden")

    def export_macro(self) -> str:
        return '__attribute__((visibility("default")))'

    def shared_object_argv(self, source: str, output: str, include_dir: str,
                           flags: tuple[str, ...]) -> list[str]:
        return [*self.command, *self.base_flags, *flags, "-I", include_dir, "-o", output, source]

    @staticmethod
    def recognises(version_output: str) -> bool:
        text = version_output.lower()
        return "free software foundation" in text or text.startswith(("g++", "gcc", "c++ ("))
