"""Small real C++ kernels the core tests build."""

from __future__ import annotations

from sobuild import KernelSpec

SCALE_SOURCE = """
#include <cmath>
void run(double* v, int32_t n) {
    for (int32_t i = 0; i < n; i++) v[i] = std::sqrt(v[i]) * SCALE;
}
"""
SCALE_ENTRY = "void run(double* v, int32_t n)"


def scale_spec(scale: float = 2.0, **changes) -> KernelSpec:
    """sqrt(v) * scale, in place."""
    fields = {"source": SCALE_SOURCE.replace("SCALE", repr(float(scale))), "entry": SCALE_ENTRY,
              "flags": ("-O2",)}
    fields.update(changes)
    return KernelSpec(**fields)


def family(count: int, **changes) -> list[KernelSpec]:
    """``count`` distinct kernels of one build group."""
    return [scale_spec(float(i + 1), **changes) for i in range(count)]


BROKEN_SOURCE = """
void run(double* v, int32_t n) {
    v[0] = undefined_name_here + 1;
}
"""
