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

The key of a call is the xxh3-128 of the canonical form of its arguments, the function's
qualified name and the environment (versions and preferences; see ``codegen_canonical``).
An argument (or preference) without a canonical form makes the call run exactly as Brian2
would, counted as ``data_bypasses``: a key is never guessed.

A value is pickled together with the side effects its computation had on Brian2 (its log
messages and display units, see ``codegen_effects``), and only if it unpickles to the same
thing (sympy re-evaluates some unevaluated expressions when they are rebuilt); a value that
cannot be stored so leaves a marker (``NOT_PERSISTED``) under its key instead, so that later
processes compute it at once, neither pickling it again nor asking the remote tiers (a warm
process never waits for an unreachable remote for it). It is stored
with :meth:`sobuild.Cache.put_data` (namespace ``brian2``) and, on a hit in a later
process, unpickled only after the store's digest check, and its side effects replayed. A
corrupt, unreadable or untrusted entry is recomputed (warned about once), never fatal.
"""

from __future__ import annotations

import pickle
import time
import warnings
from collections.abc import Callable
from typing import Any

from brian2.core.preferences import prefs
from brian2.utils.caching import cached

from ..errors import SobuildError, UntrustedEntryError
from ..keys import data_key
from . import codegen_effects, hooks
from . import prefs as sobuild_prefs
from .codegen_canonical import Environment, NoCanonicalForm, canonical

NAMESPACE = "brian2"
#: Bump when the key or the payload format changes.
FORMAT_VERSION = 3
ENABLE_PREF = "codegen.runtime.sobuild.codegen_cache"
#: Payloads larger than this are not stored (a result dragging a whole network along).
MAX_PAYLOAD_BYTES = 4 << 20
#: The payload stored for a call whose result cannot be persisted: compute it in every process.
#: (Not a pickle: ``pickle.loads`` of it fails, so no reader can take it for a value.)
NOT_PERSISTED = b"sobuild: computed in every process"

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

_CACHED_CODE = cached(lambda: None).__code__


def _cached(value: Any) -> str | None:
    if getattr(value, "__code__", None) is _CACHED_CODE:
        return None
    return "it is not decorated with Brian2's @cached (brian2.utils.caching.cached) any more"


#: Their hooks: the function inside each one's @cached closure is replaced.
CACHED_FUNCTIONS = tuple(hooks.declare(__name__, module, path, "cell", _cached)
                         for module, path in FUNCTIONS)


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

    def __init__(self, func: Callable, environment: Environment):
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
        if found is NOT_PERSISTED:
            cache.count("data_bypasses")
            return self.func(*args, **kwds)
        if found is not None:
            result, events = found
            codegen_effects.replay(events)
            return result
        return self._compute_and_store(cache, key, args, kwds)

    def key(self, args: tuple, kwds: dict) -> str:
        """The store key of a call (NoCanonicalForm if an argument has no canonical form)."""
        return data_key("brian2-codegen", str(FORMAT_VERSION), self.environment.describe(),
                        self.name, canonical(args), canonical(sorted(kwds.items())))

    def _load(self, cache, key: str) -> tuple[Any, list] | bytes | None:
        """The stored (result, events), NOT_PERSISTED, or None (missing or unusable)."""
        try:
            payload = cache.get_data(key)
        except UntrustedEntryError as exc:
            _warn_once("untrusted", f"{exc} Recomputing instead.")
            cache.count("data_misses")
            return None
        if payload is None:
            return None
        if payload == NOT_PERSISTED:
            return NOT_PERSISTED
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
        with codegen_effects.recording() as events:
            start = time.perf_counter()
            result = self.func(*args, **kwds)
        seconds = time.perf_counter() - start
        payload = _faithful_pickle((result, events))
        if payload is None:
            cache.count("data_bypasses")
            payload, seconds = NOT_PERSISTED, 0.0
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


def func_cell(decorated: Callable) -> Any:
    """The cell of a @cached function's closure that holds the function it decorates."""
    return decorated.__closure__[decorated.__code__.co_freevars.index("func")]


#: The installed stand-ins, by the qualified name of the function they persist.
installed: dict[str, PersistentFunction] = {}


def install() -> None:
    """Route Brian2's @cached functions through the persistent cache (idempotent)."""
    environment = Environment()
    cells = [func_cell(hook.get()) for hook in CACHED_FUNCTIONS]  # all found before any changes
    for cell in cells:
        if not isinstance(cell.cell_contents, PersistentFunction):
            cell.cell_contents = PersistentFunction(cell.cell_contents, environment)
            installed[cell.cell_contents.name] = cell.cell_contents
    codegen_effects.install()


def clear() -> int:
    """Remove the cached Brian2 code generation (data entries of namespace ``brian2``) from
    the writable cache directory; returns how many entries were removed."""
    return sobuild_prefs.get_cache().store.remove_namespace(NAMESPACE, kernels=False)
