"""rand() and randn() in sobuild kernels, drawn exactly like Brian2's cython target.

The kernels use the buffers of Brian2's RuntimeDevice (``rand_buffer``,
``randn_buffer`` and their indices) and refill them, when the index wraps to 0, from
numpy's global RandomState through its C interface (``bitgen_t``), without the Python API:
``numpy.random.rand(n)`` and ``numpy.random.randn(n)`` would give the same numbers. So
``seed()``, ``get_random_state()`` and ``set_random_state()`` cover sobuild's random
numbers, and a seeded run draws the same numbers as with the cython target.
"""

from __future__ import annotations

import numpy as np
from brian2.core.functions import DEFAULT_FUNCTIONS
from brian2.devices.device import RANDOM_BUFFER_SIZE, all_devices

#: The address of numpy's global bit generator (``bitgen_t*``), read by the kernels.
GENERATOR = np.zeros(1, dtype=np.uint64)

_CODE = """
static double _{name}(const int _vectorisation_idx)
{{
    int32_t& _index = _namespace_{name}_buffer_index[0];
    if (_index == 0)
        sobuild_brian::fill_{kind}(_namespace_{name}_generator[0], _namespace_{name}_buffer, {size});
    const double _value = _namespace_{name}_buffer[_index];
    if (++_index == {size})
        _index = 0;
    return _value;
}}
"""


def refresh_generator() -> None:
    """Point GENERATOR at numpy's current global bit generator."""
    GENERATOR[0] = np.random.mtrand._rand._bit_generator.ctypes.bit_generator.value


def register(codeobj_class: type) -> None:
    """Add the C++ rand() and randn() implementations for ``codeobj_class``."""
    device = all_devices["runtime"]
    refresh_generator()
    for name, kind in (("rand", "uniform"), ("randn", "normal")):
        DEFAULT_FUNCTIONS[name].implementations.add_implementation(
            codeobj_class,
            code=_CODE.format(name=name, kind=kind, size=RANDOM_BUFFER_SIZE),
            name=f"_{name}",
            namespace={
                f"_{name}_buffer": getattr(device, f"{name}_buffer"),
                f"_{name}_buffer_index": getattr(device, f"{name}_buffer_index"),
                f"_{name}_generator": GENERATOR,
            },
        )
