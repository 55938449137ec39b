"""Brian2's in-memory ``@cached`` code generation, persisted in the sobuild store.

Brian2 memoises its parsing and sympy work per process (``brian2/utils/caching.py``): the
decorator ``cached`` builds a closure ``cached_func`` over the original function ``func``
and looks results up in ``func._cache``. Other modules import the *decorated* objects by
name (``from ...sympytools import sympy_to_str``), so replacing module attributes would
miss every copy imported before us. Instead we replace the closure's ``func`` cell with a
:class:`PersistentFunction`: every existing reference to the decorated function, wherever
it was imported, now reaches us, and only on an in-memory miss (in-memory hits stay as fast
as before). Brian2 keeps its own dict (``func._cache``, which ``brian2.tests`` clears) and
statistics; we see the original arguments, so the persistent key can include types.

The key of a call is the xxh3-128 of a canonical serialisation of its arguments (the
identity Brian2 uses in memory: ``_state_tuple`` attributes by name, code strings, sets and
mappings in sorted order, sympy expressions by ``srepr``, dimensions, dtypes, registered
devices, state updaters and Brian2's default functions by name), the function's qualified
name, the versions of Python, Brian2, sympy, numpy and pyparsing (for a development version
of Brian2 also a digest of its sources) and the values of the Brian2 preferences (all of
them but logging, sobuild's own and those naming host-specific paths, compilers or CPU
counts; see ``HOST_PREFERENCES``). An argument (or preference) without a canonical form
makes the call run exactly as Brian2 would, counted as ``data_bypasses``: a key is never
guessed.

A value is pickled together with the side effects its computation had on Brian2 (only if
it unpickles to the same thing: sympy re-evaluates some unevaluated expressions when they
are rebuilt): the log messages it emitted and the units it registered for display (parsing
``Cm : farad/meter**2`` creates the unit ``farad / (meter ** 2)``, and every new Unit is
added to Brian2's ``user_unit_register``, so quantities of that dimension print in it). It
is stored with :meth:`sobuild.Cache.put_data` (namespace ``brian2``) and, on a hit in a
later process, unpickled only after the store's digest check, and its messages and units
replayed in their order, so a warm process logs what a cold one logs and prints quantities
in the same units. A corrupt, unreadable or untrusted entry is recomputed (warned about
once), never fatal.
"""

from __future__ import annotations

import copy
import datetime
import functools
import importlib
import logging
import pickle
import sys
import time
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import sympy
from brian2.core.functions import DEFAULT_FUNCTIONS, Function
from brian2.core.preferences import prefs
from brian2.devices.device import Device, all_devices
from brian2.equations.codestrings import CodeString
from brian2.stateupdaters.base import StateUpdateMethod
from brian2.units import fundamentalunits
from brian2.units.fundamentalunits import Dimension, Unit, UnitRegistry
from brian2.utils.caching import CacheKey, cached
from brian2.utils.logger import BrianLogger

from ..errors import SobuildError, UntrustedEntryError
from ..keys import data_key
from . import prefs as sobuild_prefs

NAMESPACE = "brian2"
#: Bump when the key or the payload format changes.
FORMAT_VERSION = 3
ENABLE_PREF = "codegen.runtime.sobuild.codegen_cache"
#: Payloads larger than this are not stored (a result dragging a whole network along).
MAX_PAYLOAD_BYTES = 4 << 20

#: The decorated functions whose results persist: (module, attribute path).
FUNCTIONS = (
    ("brian2.stateupdaters.base", "StateUpdateMethod.apply_stateupdater"),
    ("brian2.stateupdaters.exact", "LinearStateUpdater.__call__"),
    ("brian2.codegen.translation", "make_statements"),
    ("brian2.equations.equations", "parse_string_equations"),
    ("brian2.parsing.sympytools", "_str_to_sympy"),
    ("brian2.parsing.sympytools", "sympy_to_str"),
    ("brian2.parsing.statements", "parse_statement"),
)

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

_CACHED_CODE = cached(lambda: None).__code__
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


class _Environment:
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


# -- what a computation does to Brian2 besides returning its value --------------------------------
# Recorded while a call computes, stored with its value and replayed on a hit: Brian2's log
# messages, ("log", name, filter_name, level, msg, name_suffix, once), and the units added to
# its display registries, ("unit", registry, dim, scale, name, dispname, latexname,
# iscompound). Without the units, a warm process that never parsed "farad/meter**2" prints
# 0.01 F/m^2 as "0.01 * metre ** -4 * kilogram ** -1 * ...", and Brian2's get_unit() then
# registers a unit named so for the dimension, which sticks for the rest of the process.

_recordings: list[list[tuple]] = []

_REGISTRIES = ("standard_unit_register", "additional_unit_register", "user_unit_register")


def _registry_name(registry: UnitRegistry) -> str | None:
    for name in _REGISTRIES:
        if getattr(fundamentalunits, name) is registry:
            return name
    return None


def _install_recorders() -> None:
    original = BrianLogger._log
    if not getattr(original, "_sobuild_recorder", False):
        @functools.wraps(original)
        def _log(self, log_level, msg, name_suffix, once):
            for recording in _recordings:
                recording.append(("log", self.name, self.filter_name, log_level, msg,
                                  name_suffix, once))
            return original(self, log_level, msg, name_suffix, once)

        _log._sobuild_recorder = True
        BrianLogger._log = _log

    original_add = UnitRegistry.add
    if not getattr(original_add, "_sobuild_recorder", False):
        @functools.wraps(original_add)
        def add(self, u):
            if _recordings:
                registry = _registry_name(self)
                if registry is not None:
                    event = ("unit", registry, u.dim, u.scale, u._name, u._dispname,
                             u._latexname, u.iscompound)
                    for recording in _recordings:
                        recording.append(event)
            return original_add(self, u)

        add._sobuild_recorder = True
        UnitRegistry.add = add


def _replay(events: list[tuple]) -> None:
    for kind, *event in events:
        if kind == "log":
            name, filter_name, level, msg, suffix, once = event
            logger = BrianLogger(name)
            logger.filter_name = filter_name
            logger._log(level, msg, suffix, once)
        else:
            registry, dim, scale, name, dispname, latexname, iscompound = event
            automatic, Unit.automatically_register_units = Unit.automatically_register_units, False
            try:
                unit = Unit(10.0**scale, dim=dim, scale=scale, name=name, dispname=dispname,
                            latexname=latexname, iscompound=iscompound)
            finally:
                Unit.automatically_register_units = automatic
            getattr(fundamentalunits, registry).add(unit)


# -- the persistent layer -------------------------------------------------------------------------

_warned: set[str] = set()


def _warn_once(kind: str, message: str) -> None:
    if kind not in _warned:
        _warned.add(kind)
        warnings.warn(f"sobuild codegen cache: {message}", RuntimeWarning, stacklevel=4)


def enabled() -> bool:
    """Whether the persistent codegen cache is on (the Brian2 preference, default from env)."""
    return bool(prefs.prefs.get(ENABLE_PREF, False))


class PersistentFunction:
    """Stands in for the original function inside Brian2's ``cached`` closure."""

    def __init__(self, func: Callable, environment: _Environment):
        self.func = func
        self.name = f"{func.__module__}.{func.__qualname__}"
        self.environment = environment
        # what the closure reads from ``func`` besides calling it
        self._cache = func._cache
        self._cache_statistics = func._cache_statistics

    def __call__(self, *args, **kwds):
        if not enabled():
            return self.func(*args, **kwds)
        try:
            cache = sobuild_prefs.get_cache()
        except (SobuildError, OSError) as exc:
            _warn_once("cache", f"the cache cannot be used ({exc}); Brian2's code generation "
                       "runs uncached.")
            return self.func(*args, **kwds)
        try:
            key = self.key(args, kwds)
        except Exception as exc:  # noqa: BLE001 -- no key, for whatever reason: run uncached
            if not isinstance(exc, (NoCanonicalForm, RecursionError)):
                _warn_once("key", f"no key for a call of {self.name} ({exc!r}); it runs "
                           "uncached.")
            cache.count("data_bypasses")
            return self.func(*args, **kwds)
        found = self._load(cache, key)
        if found is not None:
            result, events = found
            _replay(events)
            return result
        return self._compute_and_store(cache, key, args, kwds)

    def key(self, args: tuple, kwds: dict) -> str:
        """The store key of a call (NoCanonicalForm if an argument has no canonical form)."""
        return data_key("brian2-codegen", str(FORMAT_VERSION), self.environment.describe(),
                        self.name, canonical(args), canonical(sorted(kwds.items())))

    def _load(self, cache, key: str) -> tuple[Any, list] | None:
        try:
            payload = cache.get_data(key)
        except UntrustedEntryError as exc:
            _warn_once("untrusted", f"{exc} Recomputing instead.")
            cache.count("data_misses")
            return None
        if payload is None:
            return None
        try:
            result, events = pickle.loads(payload)
            return result, events
        except Exception as exc:  # noqa: BLE001 -- any unpickling failure means: recompute
            cache.count("data_corrupt")
            _warn_once("unpickle", f"an entry could not be unpickled ({exc!r}); it is removed "
                       "and recomputed.")
            _discard(cache, key)
            return None

    def _compute_and_store(self, cache, key: str, args: tuple, kwds: dict) -> Any:
        events: list[tuple] = []
        _recordings.append(events)
        start = time.perf_counter()
        try:
            result = self.func(*args, **kwds)
        finally:
            _recordings.pop()
        seconds = time.perf_counter() - start
        payload = _faithful_pickle((result, events))
        if payload is None:
            cache.count("data_bypasses")
            return result
        try:
            cache.put_data(key, payload, namespace=NAMESPACE, seconds=seconds)
        except (SobuildError, OSError) as exc:
            _warn_once("store", f"a result could not be stored ({exc}).")
        return result


def _faithful_pickle(value: Any) -> bytes | None:
    """``value`` pickled, or None if it cannot be stored faithfully: unpicklable, too big,
    referring to the running script (another process cannot import ``__main__``), or not
    coming back the same (sympy rebuilds ``expm1(x + 1.0)``, created unevaluated, as
    ``E*exp(x) - 1``): unpickled and pickled again, it must give the same bytes."""
    try:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if len(payload) > MAX_PAYLOAD_BYTES or b"__main__" in payload:
            return None
        again = pickle.dumps(pickle.loads(payload), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 -- whatever fails here is simply not persisted
        return None
    return payload if again == payload else None


def _discard(cache, key: str) -> None:
    """Remove an unusable entry from the writable tier (put_data never overwrites)."""
    cache.remove_data(key)


def _decorated(module: str, path: str) -> Callable:
    obj: Any = importlib.import_module(module)
    for part in path.split("."):
        owner, obj = obj, getattr(obj, part)
    raw = vars(owner).get(part, obj)  # a staticmethod holds the decorated function
    return getattr(raw, "__func__", raw)


#: The installed stand-ins, by the qualified name of the function they persist.
installed: dict[str, PersistentFunction] = {}


def install() -> None:
    """Route Brian2's @cached functions through the persistent cache (idempotent)."""
    environment = _Environment()
    for module, path in FUNCTIONS:
        decorated = _decorated(module, path)
        if decorated.__code__ is not _CACHED_CODE:
            logging.getLogger(__name__).debug("%s.%s is not Brian2's @cached: left alone",
                                              module, path)
            continue
        cell = decorated.__closure__[decorated.__code__.co_freevars.index("func")]
        if not isinstance(cell.cell_contents, PersistentFunction):
            cell.cell_contents = PersistentFunction(cell.cell_contents, environment)
            installed[cell.cell_contents.name] = cell.cell_contents
    _install_recorders()


def clear() -> int:
    """Remove the cached Brian2 code generation (data entries of namespace ``brian2``) from
    the writable cache directory; returns how many entries were removed."""
    return sobuild_prefs.get_cache().store.remove_namespace(NAMESPACE, kernels=False)
