"""Where the adapter reaches into Brian2's internals, and the Brian2 versions it is tested with.

Beyond Brian2's public API the adapter wraps methods (``Network.before_run``,
``brian2.clear_cache``, the logger and the unit registries), swaps the function inside
Brian2's ``@cached`` closures (the codegen cache), registers itself in Brian2's tables (the
code generation targets, the implementations of ``rand`` and ``randn``), reads the runtime
device's random number buffers, and shadows ``Clock.advance`` and ``BrianObject.run`` on
instances. Each such place is a :class:`Hook`, declared by the module that uses it with
:func:`declare` and named ``'<adapter module>: <Brian2 module>.<path>'``.

A hook that cannot be installed (what it patches, wraps or reads is gone, or is no longer
what the adapter expects) raises :class:`HookError` naming it, when the adapter is
imported: a new Brian2 must not quietly lose the codegen cache or the batch build. The
adapter is tested with the Brian2 versions of :data:`TESTED_BRIAN2_VERSIONS`; importing it
with another Brian2 warns once (:class:`UntestedBrian2Warning`).
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import SobuildError

#: The Brian2 release series (major.minor) the adapter is tested with: CI runs its tests
#: against these. Any other version warns once when the adapter is imported.
TESTED_BRIAN2_VERSIONS = ("2.11",)

#: The attribute marking a function that a hook installed: the hook's name.
MARK = "_sobuild_hook"


class HookError(SobuildError):
    """One of the adapter's hooks into Brian2 cannot be installed."""

    def __init__(self, hook: str, reason: str) -> None:
        self.hook = hook
        super().__init__(
            f"sobuild.brian_adapter: cannot install hook {hook!r} — {reason}. Brian2 "
            f"{brian2_version()} is installed; the adapter is tested with Brian2 "
            f"{_tested()} (pip install {_requirement()!r}).")


class UntestedBrian2Warning(UserWarning):
    """The installed Brian2 is not a version the adapter is tested with."""


def brian2_version() -> str:
    import brian2

    return str(getattr(brian2, "__version__", "unknown"))


def _series(version: str) -> str | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return f"{match[1]}.{match[2]}" if match else None


def _tested() -> str:
    return " or ".join(TESTED_BRIAN2_VERSIONS)


def _requirement() -> str:
    return f"brian2=={TESTED_BRIAN2_VERSIONS[-1]}.*"


def is_tested(version: str) -> bool:
    """Whether ``version`` belongs to a tested release series (``2.11.0``, ``2.11.1.dev3``)."""
    return _series(version) in TESTED_BRIAN2_VERSIONS


_version_warned = False


def check_brian2_version() -> None:
    """Warn (once per process) if the installed Brian2 is not a tested version."""
    global _version_warned
    version = brian2_version()
    if _version_warned or is_tested(version):
        return
    _version_warned = True
    warnings.warn(
        f"sobuild.brian_adapter is tested with Brian2 {_tested()}, and Brian2 {version} is "
        "installed: the adapter's hooks into Brian2's internals were found, but what they do "
        f"is not checked against this version. Install a tested one (pip install "
        f"{_requirement()!r}) or run sobuild's Brian2 tests (tests/brian) with this one.",
        UntestedBrian2Warning, stacklevel=3)


#: What a hook expects to find: given the object, a description of what is wrong, or None.
Expectation = Callable[[Any], "str | None"]


def a_function(value: Any) -> str | None:
    return None if callable(value) else f"it is a {type(value).__name__}, not a function"


def an_instance_of(*types: type) -> Expectation:
    def expect(value: Any) -> str | None:
        if isinstance(value, types):
            return None
        return f"it is a {type(value).__name__}, not a {' or '.join(t.__name__ for t in types)}"

    return expect


def with_method(method: str) -> Expectation:
    def expect(value: Any) -> str | None:
        return None if callable(getattr(value, method, None)) else f"it has no {method}()"

    return expect


@dataclass(frozen=True)
class Hook:
    """A place in Brian2 the adapter relies on: ``path`` in ``module``, whose parts are
    attributes or, in a mapping, keys (``DEFAULT_FUNCTIONS.rand.implementations``)."""

    adapter: str  # the adapter module relying on it: 'batch'
    module: str  # Brian2's module: 'brian2.core.network'
    path: str  # 'Network.before_run'
    #: What the adapter does there: 'wrap' (replaces a function by a wrapper), 'cell'
    #: (replaces the function inside a closure), 'register' (adds itself to a table), 'read'
    #: (uses the object), 'shadow' (sets an attribute of that name on instances).
    kind: str
    #: What the object must be, besides present (a function, for 'wrap' and 'shadow').
    expect: Expectation | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.adapter}: {self.module}.{self.path}"

    def error(self, reason: str) -> HookError:
        return HookError(self.name, reason)

    def resolve(self) -> tuple[Any, str, Any]:
        """The object holding the last part of the path, that part, and what it names now
        (HookError if a part is missing)."""
        try:
            obj: Any = importlib.import_module(self.module)
        except ImportError as exc:
            raise self.error(f"module {self.module} cannot be imported ({exc})") from exc
        where = self.module
        *parents, last = self.path.split(".")
        for part in parents:
            obj = _child(obj, part, self, where)
            where = f"{where}.{part}"
        return obj, last, _child(obj, last, self, where)

    def get(self) -> Any:
        """What the path names now (HookError if it is missing or not what is expected)."""
        value = self.resolve()[2]
        problem = self.expect(value) if self.expect is not None else None
        if problem:
            raise self.error(problem)
        return value

    def wrap(self, make: Callable[[Callable], Callable]) -> None:
        """Replace the function at the path by ``make(original)``, marked as this hook's;
        nothing if it is this hook's already."""
        owner, last, original = self.resolve()
        if getattr(original, MARK, None) == self.name:
            return
        wrapper = make(self.get())
        setattr(wrapper, MARK, self.name)
        if isinstance(owner, Mapping):
            owner[last] = wrapper
        else:
            setattr(owner, last, wrapper)


def _child(obj: Any, part: str, hook: Hook, where: str) -> Any:
    if isinstance(obj, Mapping):
        if part in obj:
            return obj[part]
        raise hook.error(f"{where} has no entry {part!r}")
    try:
        return getattr(obj, part)
    except AttributeError:
        raise hook.error(f"{where} has no attribute {part!r}") from None


#: Every declared hook, by name, in the order of declaration.
HOOKS: dict[str, Hook] = {}


def declare(adapter_module: str, module: str, path: str, kind: str,
            expect: Expectation | None = None) -> Hook:
    """Declare a hook of ``adapter_module`` (its ``__name__``) into Brian2; ``expect``
    defaults to :func:`a_function` for the kinds 'wrap' and 'shadow'."""
    if expect is None and kind in ("wrap", "shadow"):
        expect = a_function
    hook = Hook(adapter_module.rpartition(".")[2], module, path, kind, expect)
    HOOKS[hook.name] = hook
    return hook


def check_declared() -> None:
    """Resolve and check every declared hook: HookError for the first that is missing or
    not what it should be, before the adapter installs any (so that a failed import leaves
    Brian2 as it was)."""
    for hook in HOOKS.values():
        hook.get()
