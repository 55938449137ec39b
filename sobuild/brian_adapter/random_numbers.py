"""rand() and randn() in sobuild kernels, drawn exactly like Brian2's cython target.

The kernels use the buffers of Brian2's RuntimeDevice (``rand_buffer``,
``randn_buffer`` and their indices) and refill them, when the index wraps to 0, from
numpy's global RandomState through its C interface, without the Python API. The cython
target refills them with ``numpy.random.rand(n)`` and ``numpy.random.randn(n)``; the
kernels give the same numbers and leave numpy's generator in the same state. So
``seed()``, ``get_random_state()`` and ``set_random_state()`` cover sobuild's random
numbers, and a seeded run draws the numbers the cython target draws.

``randn(n)`` is numpy's legacy Gaussian: the polar method makes normals in pairs, and the
RandomState keeps the second of a pair for its next call (``get_state()[3:]``: the flag
``has_gauss`` and the value). A refill starts with the cached value when there is one
(after an odd number of the script's own ``numpy.random.randn`` draws), clears it, and
caches the spare of its own last pair, as ``randn(n)`` does. The kernels are therefore
given the RandomState's ``aug_bitgen_t`` (its ``bit_generator``, ``has_gauss`` and
``gauss``), a field numpy does not export: :func:`_legacy_state_offset` finds it in the
RandomState object and checks it with ``set_state`` on a private instance.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
from brian2.devices.device import RANDOM_BUFFER_SIZE
from brian2.utils.logger import get_logger

from . import hooks

logger = get_logger(__name__)

#: The functions given a 'sobuild' implementation, and the runtime device's buffers (and
#: their indices) that the implementation draws from.
IMPLEMENTATIONS = {
    name: hooks.declare(__name__, "brian2.core.functions",
                        f"DEFAULT_FUNCTIONS.{name}.implementations", "register",
                        hooks.with_method("add_implementation"))
    for name in ("rand", "randn")}
BUFFERS = {
    f"{name}{suffix}": hooks.declare(__name__, "brian2.devices.device",
                                     f"all_devices.runtime.{name}{suffix}", "read")
    for name in ("rand", "randn") for suffix in ("_buffer", "_buffer_index")}

#: The address of the ``aug_bitgen_t`` of numpy's global RandomState, read by the
#: kernels; its ``bit_generator`` is the ``bitgen_t`` that ``rand(n)`` and ``randn(n)`` use.
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


class _AugBitgen(ctypes.Structure):
    """numpy's ``aug_bitgen_t`` (numpy/random/src/legacy/legacy-distributions.h); the
    kernels' ``sobuild_brian::legacy_state`` has the same layout."""

    _fields_ = [("bit_generator", ctypes.c_void_p), ("has_gauss", ctypes.c_int),
                ("gauss", ctypes.c_double)]


_POINTER = ctypes.sizeof(ctypes.c_void_p)
_BITGEN_WORDS = 5  # bitgen_t: the state and four function pointers


def _words(address: int, count: int) -> list[int]:
    return list((ctypes.c_size_t * count).from_address(address))


def _find_legacy_state(rs: np.random.RandomState) -> int | None:
    """Offset of ``rs``'s ``aug_bitgen_t`` in the object: the word that points at the
    object's own copy of its bit generator's ``bitgen_t`` (RandomState keeps one and
    points ``_aug_state.bit_generator`` at it)."""
    base, size = id(rs), type(rs).__basicsize__
    words = _words(base, size // _POINTER)
    bitgen = _words(rs._bit_generator.ctypes.bit_generator.value, _BITGEN_WORDS)
    copies = {base + i * _POINTER for i in range(len(words) - _BITGEN_WORDS + 1)
              if words[i:i + _BITGEN_WORDS] == bitgen}
    for j, word in enumerate(words):
        if word in copies and j * _POINTER + ctypes.sizeof(_AugBitgen) <= size:
            return j * _POINTER
    return None


@functools.cache
def _legacy_state_offset() -> int | None:
    """Where a RandomState keeps its cached Gaussian, checked on a private instance:
    ``set_state`` and ``seed`` must show in the struct found, or None."""
    rs = np.random.RandomState(0)
    offset = _find_legacy_state(rs)
    if offset is None:
        return None
    aug = _AugBitgen.from_address(id(rs) + offset)
    key, pos = rs.get_state()[1:3]
    for has_gauss, gauss in ((1, 0.8125), (0, 0.0), (1, -2.5)):
        rs.set_state(("MT19937", key, pos, has_gauss, gauss))
        if (aug.has_gauss, aug.gauss) != (has_gauss, gauss):
            return None
    rs.seed(0)
    return offset if (aug.has_gauss, aug.gauss) == (0, 0.0) else None


#: Used when numpy's layout is not recognised: a state of sobuild's own, which never
#: keeps a Gaussian (the buffers' size is even).
_fallback = _AugBitgen()


def refresh_generator() -> None:
    """Point GENERATOR at the ``aug_bitgen_t`` of numpy's current global RandomState."""
    rs = np.random.mtrand._rand
    offset = _legacy_state_offset() if type(rs) is np.random.RandomState else None
    if offset is not None:
        GENERATOR[0] = id(rs) + offset
        return
    logger.warn(f"sobuild does not recognise numpy's RandomState (numpy {np.__version__}): "
                "randn() ignores a Gaussian cached by the script's own numpy.random.randn "
                "draws, and may then differ from the cython target's.",
                name_suffix="legacy_gauss", once=True)
    _fallback.bit_generator = rs._bit_generator.ctypes.bit_generator.value
    GENERATOR[0] = ctypes.addressof(_fallback)


def register(codeobj_class: type) -> None:
    """Add the C++ rand() and randn() implementations for ``codeobj_class``."""
    implementations = {name: hook.get() for name, hook in IMPLEMENTATIONS.items()}
    buffers = {name: hook.get() for name, hook in BUFFERS.items()}
    refresh_generator()
    for name, kind in (("rand", "uniform"), ("randn", "normal")):
        implementations[name].add_implementation(
            codeobj_class,
            code=_CODE.format(name=name, kind=kind, size=RANDOM_BUFFER_SIZE),
            name=f"_{name}",
            namespace={
                f"_{name}_buffer": buffers[f"{name}_buffer"],
                f"_{name}_buffer_index": buffers[f"{name}_buffer_index"],
                f"_{name}_generator": GENERATOR,
            },
        )
