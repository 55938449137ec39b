"""The argument block of a Brian2 kernel: one ``void*`` slot per array, object or constant.

The block is filled once per code object. Every slot is a stable address: numpy arrays of
Brian2's RuntimeDevice (never reallocated), the C++ objects behind dynamic arrays and spike
queues (the kernel reads ``get_data_ptr()`` and ``size()`` itself on each call, so a
resize, in the kernel or in Python, needs no refresh), and one-element arrays holding
constants. Values that change every step (t, dt, N of synapses and monitors) are arrays
and therefore read through their pointers. The C++ lines that bind the slots depend on
names and types only, never on values, so a kernel's source (and key) is the same from
run to run and from one parameter value to the next.

Slots 0-3 are reserved: the error buffer, an output array with its element count (the
group_get templates) and the table of the runtime support library (``support_library``),
through which kernels reach dynamic arrays and spike queues (``uses_runtime``).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import numpy as np
from brian2.codegen.generators.cpp_generator import c_data_type
from brian2.core.functions import Function
from brian2.core.variables import (
    ArrayVariable,
    AuxiliaryVariable,
    Constant,
    DynamicArrayVariable,
    Subexpression,
)

RUNTIME_SLOT = 3
FIRST_SLOT = 4

_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype = ctypes.c_char_p
_capsule_name.argtypes = [ctypes.py_object]

#: The kernel's view (sobuild_brian.h) of the object behind each kind of capsule Brian2
#: hands out.
_CAPSULE_TYPES = {b"CSpikeQueue": "sobuild_brian::spike_queue"}
_RUNTIME = ("const sobuild_brian::runtime* const _rt = "
            f"static_cast<const sobuild_brian::runtime*>(_args[{RUNTIME_SLOT}]);")


@dataclass
class ArgumentBlock:
    """The C++ lines binding the slots, and what goes into the slots."""

    declarations: list[str] = field(default_factory=list)
    addresses: list[int] = field(default_factory=list)
    keepalive: list = field(default_factory=list)
    #: whether the kernel calls the runtime support library (slot RUNTIME_SLOT)
    uses_runtime: bool = False
    _declared: set = field(default_factory=set)

    def add(self, address: int, lines: list[str], keep=None) -> None:
        slot = FIRST_SLOT + len(self.addresses)
        self.addresses.append(address)
        self.declarations.extend(line.replace("@", f"_args[{slot}]") for line in lines)
        if keep is not None:
            self.keepalive.append(keep)

    def add_runtime_object(self, address: int, cpp_class: str, name: str, keep) -> None:
        """An object of the support library (a dynamic array, a spike queue) as ``name``, a
        handle holding its address and the runtime's table (``name->`` reaches its methods,
        as through a pointer)."""
        if not self.uses_runtime:
            self.uses_runtime = True
            self.declarations.append(_RUNTIME)
        self.add(address, [f"const {cpp_class} {name}(_rt, @);"], keep)

    def add_array(self, name: str, array: np.ndarray) -> None:
        """A numpy array as ``T* name``."""
        if name in self._declared:
            return
        self._declared.add(name)
        ctype = c_data_type(array.dtype)
        self.add(array.ctypes.data, [f"{ctype}* const {name} = static_cast<{ctype}*>(@);"],
                 array)

    def add_constant(self, name: str, value, dtype) -> None:
        """A scalar as ``const T name``, read from a one-element array."""
        storage = np.array([value], dtype=dtype)
        ctype = c_data_type(storage.dtype)
        self.add(storage.ctypes.data,
                 [f"const {ctype} {name} = *static_cast<const {ctype}*>(@);"], storage)

    def source(self) -> str:
        return "\n    ".join(self.declarations)


def capsule_address(capsule) -> tuple[bytes, int]:
    """The name and the C++ object address of a PyCapsule."""
    name = _capsule_name(capsule)
    return name, _capsule_pointer(capsule, name)


def build_arguments(codeobj, identifiers: set[str]) -> ArgumentBlock:
    """The argument block of ``codeobj`` for the names its code uses (``identifiers``)."""
    from brian2.devices.device import get_device

    device = get_device()
    block = ArgumentBlock()
    for name, var in sorted(codeobj.variables.items()):
        if isinstance(var, Function):
            _add_function_namespace(block, codeobj, var, identifiers, set())
        elif isinstance(var, (AuxiliaryVariable, Subexpression)):
            continue
        elif isinstance(var, DynamicArrayVariable):
            _add_dynamic_array(block, device, name, var, identifiers)
        elif isinstance(var, ArrayVariable):
            _add_array(block, device, name, var, identifiers)
        elif isinstance(var, Constant):
            if name in identifiers:
                block.add_constant(name, var.get_value(), var.dtype)
        elif type(var).__name__ == "PyCapsule":
            capsule_name, address = capsule_address(var)
            cpp_type = _CAPSULE_TYPES.get(capsule_name)
            if cpp_type is None or name != "_queue_capsule":
                raise NotImplementedError(
                    f"The sobuild target cannot pass the object {name!r} (a capsule "
                    f"{capsule_name!r}) to C++; use the 'cython' target for this model.")
            if "_queue" in identifiers:
                block.add_runtime_object(address, cpp_type, "_queue", var)
    return block


def _uses(identifiers: set[str], *names: str) -> bool:
    return any(n in identifiers for n in names)


def _add_array(block: ArgumentBlock, device, name: str, var, identifiers) -> None:
    array_name = device.get_array_name(var)
    if not _uses(identifiers, array_name, f"_num{name}", name):
        return
    value = var.get_value()
    block.add_array(array_name, value)
    if f"_num{name}" in identifiers:
        block.add_constant(f"_num{name}", value.size, np.uint64)
    if var.scalar and var.constant and name in identifiers:
        ctype = c_data_type(var.dtype)
        block.declarations.append(f"const {ctype} {name} = {array_name}[0];")


def _add_dynamic_array(block: ArgumentBlock, device, name: str, var, identifiers) -> None:
    array_name = device.get_array_name(var)
    dyn_name = device.get_array_name(var, access_data=False)
    if not _uses(identifiers, array_name, dyn_name, f"{dyn_name}_ptr", f"_num{name}", name):
        return
    ctype = c_data_type(var.dtype)
    cpp_class = f"sobuild_brian::dynamic_array_{var.ndim}d<{ctype}>"
    if f"{dyn_name}_ptr" not in block._declared:
        block._declared.add(f"{dyn_name}_ptr")
        _, address = capsule_address(device.get_capsule(var))
        block.add_runtime_object(address, cpp_class, f"{dyn_name}_ptr", device.arrays[var])
        if var.ndim == 1:
            block.declarations.append(
                f"{ctype}* const {array_name} = {dyn_name}_ptr->get_data_ptr();")
    size = "size()" if var.ndim == 1 else "rows()"
    block.declarations.append(f"const size_t _num{name} = {dyn_name}_ptr->{size};")
    if var.ndim == 1 and var.scalar and var.constant and name in identifiers:
        block.declarations.append(f"const {ctype} {name} = {array_name}[0];")


def _add_function_namespace(block: ArgumentBlock, codeobj, func: Function, identifiers,
                            seen: set) -> None:
    """Arrays a function's C++ implementation reads (``_namespace<key>``), recursively."""
    if id(func) in seen:
        return
    seen.add(id(func))
    impl = func.implementations[codeobj.__class__]
    namespace = impl.get_namespace(codeobj.owner) or {}
    for key, value in sorted(namespace.items()):
        if f"_namespace{key}" not in identifiers:
            continue
        if not isinstance(value, np.ndarray) or value.shape == ():
            raise NotImplementedError(
                f"The function {impl.name or func.pyfunc.__name__!r} gives its C++ code the "
                f"Python object {key!r} (type {type(value).__name__}); the sobuild target "
                "passes only arrays to C++. Use the 'cython' target for this function.")
        block.add_array(key, np.ascontiguousarray(value))
    for dep in (impl.dependencies or {}).values():
        _add_function_namespace(block, codeobj, dep, identifiers, seen)
