"""The canonical form of a call of Brian2's code generation: what its persistent key is made of.

:func:`canonical` describes an argument as a string that is equal in every process exactly
when the argument is the same for Brian2's code generation: the identity Brian2 uses in
memory (``_state_tuple`` attributes by name), code strings, sets and mappings in sorted
order, sympy expressions by ``srepr``, dimensions, dtypes, registered devices, state
updaters and Brian2's default functions by name. An argument without such a description
(a user's function, an object known only by its identity) raises :class:`NoCanonicalForm`:
a key is never guessed.

:class:`Environment` describes what else a result depends on: the versions of Python,
Brian2, sympy, numpy and pyparsing (for a development version of Brian2 also a digest of
its sources) and the values of the Brian2 preferences (all of them but logging, sobuild's
own and those naming host-specific paths, compilers or CPU counts; see
``HOST_PREFERENCES``), so that the machines of a cluster share keys.
"""

from __future__ import annotations

import copy
import datetime
import sys
import types
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy
from brian2.core.functions import DEFAULT_FUNCTIONS, Function
from brian2.core.preferences import prefs
from brian2.devices.device import Device, all_devices
from brian2.equations.codestrings import CodeString
from brian2.stateupdaters.base import StateUpdateMethod
from brian2.units.fundamentalunits import Dimension
from brian2.utils.caching import CacheKey

#: Preferences left out of the key: they only configure logging, compilers, build tools and
#: caches, and their defaults name host-specific paths or CPU counts (a cluster shares keys).
HOST_PREFERENCES = (
    "logging.",
    "codegen.runtime.sobuild.",
    "codegen.runtime.cython.cache_dir",
    "codegen.cpp.include_dirs",
    "codegen.cpp.library_dirs",
    "codegen.cpp.runtime_library_dirs",
    "codegen.cpp.msvc_vars_location",
    "codegen.cpp.compiler",
    "devices.cpp_standalone.extra_make_args_unix",
    "devices.cpp_standalone.extra_make_args_windows",
    "GSL.directory",
)

_CAPSULE = type(datetime.datetime_CAPI)  # PyCapsule


class NoCanonicalForm(TypeError):
    """An argument has no description that is the same in every process."""


# -- canonical serialisation ------------------------------------------------------------------

_ATOMS = (str, int, float, bool, complex, bytes, type(None))
FUNCTION_IMPLEMENTATIONS = ("pyfunc", "implementations")


def _qualname(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _importable(target: Any) -> bool:
    """True if ``target`` is what importing its module and qualified name gives."""
    obj: Any = sys.modules.get(getattr(target, "__module__", None) or "")
    for part in getattr(target, "__qualname__", "<>").split("."):
        obj = getattr(obj, part, None)
    return obj is target


def _attributes(obj: Any) -> dict:
    """An object's instance attributes: its ``__dict__`` and its slots."""
    found = dict(getattr(obj, "__dict__", {}))
    for klass in type(obj).__mro__:
        for name in getattr(klass, "__slots__", ()):
            if name not in found and hasattr(obj, name):
                found[name] = getattr(obj, name)
    return found


def _node(tag: str, *parts: str) -> str:
    return f"{tag}({','.join(parts)})"


def _state(obj: Any, skip=()) -> str:
    return _node("attrs", *sorted(f"{k!r}:{canonical(v)}" for k, v in _attributes(obj).items()
                                  if k not in skip))


def canonical(obj: Any) -> str:
    """A string equal in every process exactly when ``obj`` is the same for Brian2's code
    generation (nodes ``tag(child,...)``, leaves as ``repr``); NoCanonicalForm if none."""
    t = type(obj)
    if t in _ATOMS:
        return _node(t.__name__, repr(obj))
    if t is tuple or t is list:
        return _node(t.__name__, *map(canonical, obj))
    if isinstance(obj, CacheKey) and t._state_tuple is CacheKey._state_tuple:
        return _node("state", repr(_qualname(t)), _state(obj, obj._cache_irrelevant_attributes))
    if hasattr(obj, "_state_tuple"):
        return _node("state", repr(_qualname(t)), canonical(obj._state_tuple))
    if isinstance(obj, CodeString):
        return _node("code", repr(_qualname(t)), repr(obj.code))
    if isinstance(obj, Mapping):
        return _node("map", repr(_qualname(t)),
                     *sorted(f"{canonical(k)}:{canonical(v)}" for k, v in obj.items()))
    if isinstance(obj, (set, frozenset)):
        return _node("set", *sorted(map(canonical, obj)))
    if isinstance(obj, Dimension):
        return _node("dim", repr(obj._dims))
    if isinstance(obj, np.ndarray):  # also Quantity and Unit, with their attributes
        if obj.dtype.kind not in "biufc":
            raise NoCanonicalForm(f"array of dtype {obj.dtype}")
        return _node("array", repr(_qualname(t)), repr(obj.dtype.str), repr(obj.shape),
                     obj.tobytes().hex(), _state(obj))
    if isinstance(obj, np.generic):
        return _node("scalar", repr(_qualname(t)), repr(obj.dtype.str), obj.tobytes().hex())
    if isinstance(obj, np.dtype):
        if obj.fields is not None:
            raise NoCanonicalForm("structured dtype")
        return _node("dtype", repr(obj.str))
    if isinstance(obj, type):
        if not _importable(obj):
            raise NoCanonicalForm(f"class {obj!r} that cannot be imported by name")
        return _node("type", repr(_qualname(obj)))
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
        if _importable(obj):
            return _node("callable", repr(_qualname(obj)))
        if (isinstance(obj, types.FunctionType) and obj.__closure__ is None
                and (obj.__module__ or "").startswith("brian2.")):
            # a lambda of Brian2's own code: fixed by Brian2's version, which is in the key
            return _node("brian2-code", repr(_qualname(obj)), repr(obj.__code__.co_firstlineno))
    if isinstance(obj, sympy.Basic):
        return _node("sympy", repr(sympy.srepr(obj)))
    if isinstance(obj, Function):
        # Brian2's default functions by name and what code generation reads of them (not
        # their Python or target implementations); a user's function has no stable name
        for name, function in DEFAULT_FUNCTIONS.items():
            if function is obj:
                return _node("brian2-function", repr(name), repr(_qualname(t)),
                             _state(obj, FUNCTION_IMPLEMENTATIONS))
    if t is _CAPSULE:
        # an opaque C pointer (a spike queue) that code generation passes on but cannot read
        return _node("capsule")
    if isinstance(obj, Device):
        for name, device in all_devices.items():
            if device is obj:
                return _node("device", repr(name), repr(_qualname(t)))
    if isinstance(obj, StateUpdateMethod):
        for name, method in StateUpdateMethod.stateupdaters.items():
            if method is obj:
                return _node("stateupdater", repr(name), repr(_qualname(t)))
    raise NoCanonicalForm(f"{_qualname(t)} (it is identified by its identity only)")


# -- what else the result depends on --------------------------------------------------------------

def _versions() -> str:
    import brian2
    import pyparsing

    parts = [sys.version, sys.implementation.cache_tag, brian2.__version__, sympy.__version__,
             np.__version__, pyparsing.__version__]
    if any(mark in brian2.__version__ for mark in ("dev", "+")):
        parts.append(_source_digest(brian2.__path__[0]))
    return repr(parts)


def _source_digest(root: str) -> str:
    """xxh3 of a development checkout's Python sources (its version does not name them)."""
    import os

    import xxhash

    h = xxhash.xxh3_128()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def _key_preferences(values: dict) -> str:
    """The canonical form of the preferences that enter the key."""
    kept = {name: value for name, value in values.items()
            if not name.startswith(HOST_PREFERENCES)}
    return canonical(kept)


class Environment:
    """Versions and preferences as one string, recomputed only when a preference changes."""

    def __init__(self):
        self._versions: str | None = None
        self._snapshot: dict | None = None
        self._prefs: str | None = None

    def describe(self) -> str:
        if self._versions is None:
            self._versions = _versions()
        values = prefs.prefs
        try:
            unchanged = self._snapshot is not None and values == self._snapshot
        except (ValueError, TypeError):  # a value without a plain ==
            unchanged = False
        if not unchanged:
            self._snapshot = None
            self._prefs = _key_preferences(values)  # NoCanonicalForm propagates: bypass
            self._snapshot = copy.deepcopy(values)
        return self._versions + self._prefs
