"""One build per network: code objects compiled during ``Network.before_run`` are built together.

Brian2 creates a network's code objects one by one in ``Network.before_run`` and calls
``compile()`` on each. While a network prepares (inside the wrapped
``Network.before_run``), ``SoBuildCodeObject.compile()`` only renders its kernels and
queues them here; their ``before_run`` blocks, if any, are queued too. When
``Network.before_run`` returns, every queued kernel is handed to the cache in ONE
``load_many`` call (all misses compiled in one ninja run), then the queued ``before_run``
blocks run in their original order. So, once ``Network.before_run(namespace)`` has
returned, every kernel of the network is built and loaded: a build-only tool (``sobuild
prebuild``) can call it and skip the simulation. Last, objects whose code objects are all
sobuild kernels get a fused ``run`` (``codeobject.fuse_runs``), and the network's clocks a step
in C (``clock``) followed by the steps that need no Python (``step_loop``).

If a queued code object must run before that (e.g. a string-expression getter called from
some object's ``before_run``), the queue is built at that moment. Code objects created
outside a network's preparation (``G.v = 'rand()'``, ``S.connect(...)``) are built at once,
as a batch of one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from . import clock, hooks, step_loop

BEFORE_RUN = hooks.declare(__name__, "brian2.core.network", "Network.before_run", "wrap")

_depth = 0
_pending: list = []  # code objects with kernels not yet built
_deferred: list[Callable[[], None]] = []  # before_run blocks waiting for the build
#: What builds and binds a list of code objects, and what fuses their runs: given by
#: ``codeobject`` to ``install`` (this module does not import it).
_load_kernels: Callable[[list], None] | None = None
_fuse_runs: Callable[[Iterable], bool] | None = None


def collecting() -> bool:
    """True while a network prepares: kernels are queued, not built."""
    return _depth > 0


def queue(codeobj) -> None:
    _pending.append(codeobj)


def defer(call: Callable[[], None]) -> None:
    """Run ``call`` after the queued kernels are built (in order)."""
    _deferred.append(call)


def build_pending() -> None:
    """Build and load every queued kernel in one batch, then run the deferred blocks."""
    while _pending or _deferred:
        objects = list(_pending)
        _pending.clear()
        if objects:
            _load_kernels(objects)
        calls = list(_deferred)
        _deferred.clear()
        for call in calls:
            call()


def discard_pending() -> None:
    _pending.clear()
    _deferred.clear()


def install(load_kernels: Callable[[list], None], fuse_runs: Callable[[Iterable], bool]
            ) -> None:
    """Wrap ``Network.before_run`` so that a network's kernels are built as one batch with
    ``load_kernels``; ``fuse_runs`` then gives the network's sobuild objects a fused run."""
    global _load_kernels, _fuse_runs
    _load_kernels, _fuse_runs = load_kernels, fuse_runs
    BEFORE_RUN.wrap(_batched)


def _batched(original: Callable) -> Callable:
    """``Network.before_run`` building the network's kernels in one batch."""

    @functools.wraps(original)
    def before_run(self, run_namespace):
        global _depth
        _depth += 1
        try:
            original(self, run_namespace)
        except BaseException:
            _depth -= 1
            if not _depth:
                discard_pending()
            raise
        _depth -= 1
        if not _depth:
            if _pending and clock.KERNEL.func is None:
                queue(clock.KERNEL)  # built in the network's batch
            build_pending()
        objects = self.sorted_objects
        uses_sobuild = _fuse_runs(obj for obj in objects if obj.active)
        if uses_sobuild and clock.KERNEL.func is None:
            _load_kernels([clock.KERNEL])
        step_loop.bind(self, objects, uses_sobuild)

    return before_run
