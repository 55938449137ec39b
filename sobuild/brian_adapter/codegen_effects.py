"""What a computation of Brian2's code generation does to Brian2 besides returning its value.

A cached value alone is not enough to replay a computation: it also emits Brian2 log
messages, and registers the units it creates for display (parsing ``Cm : farad/meter**2``
creates the unit ``farad / (meter ** 2)``, and every new Unit is added to Brian2's
``user_unit_register``, so quantities of that dimension print in it). While
:func:`recording` is active these side effects are recorded as events, stored with the
value, and :func:`replay` repeats them in their order on a hit, so a warm process logs what
a cold one logs and prints quantities in the same units. Without the units, a warm process
that never parsed "farad/meter**2" prints 0.01 F/m^2 as "0.01 * metre ** -4 * kilogram **
-1 * ...", and Brian2's get_unit() then registers a unit named so for the dimension, which
sticks for the rest of the process.

Events: ``("log", name, filter_name, level, msg, name_suffix, once)`` for a log message,
``("unit", registry, dim, scale, name, dispname, latexname, iscompound)`` for a unit.
:func:`install` wraps ``BrianLogger._log`` and ``UnitRegistry.add`` to record them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from brian2.units import fundamentalunits
from brian2.units.fundamentalunits import Unit, UnitRegistry
from brian2.utils.logger import BrianLogger

from . import hooks

LOG = hooks.declare(__name__, "brian2.utils.logger", "BrianLogger._log", "wrap")
ADD_UNIT = hooks.declare(__name__, "brian2.units.fundamentalunits", "UnitRegistry.add", "wrap")

_recordings: list[list[tuple]] = []

#: The registries whose new units are recorded, by name in ``brian2.units.fundamentalunits``.
_REGISTRIES = ("standard_unit_register", "additional_unit_register", "user_unit_register")
REGISTRIES = {name: hooks.declare(__name__, "brian2.units.fundamentalunits", name, "read",
                                  hooks.an_instance_of(UnitRegistry))
              for name in _REGISTRIES}


@contextmanager
def recording() -> Iterator[list[tuple]]:
    """The events of the computation run inside the block (recordings nest)."""
    events: list[tuple] = []
    _recordings.append(events)
    try:
        yield events
    finally:
        _recordings.pop()


def _registry_name(registry: UnitRegistry) -> str | None:
    for name in _REGISTRIES:
        if getattr(fundamentalunits, name) is registry:
            return name
    return None


def install() -> None:
    """Wrap Brian2's logger and unit registries to record events (idempotent)."""
    for hook in REGISTRIES.values():
        hook.get()
    LOG.wrap(_recording_log)
    ADD_UNIT.wrap(_recording_add)


def _recording_log(original):
    @functools.wraps(original)
    def _log(self, log_level, msg, name_suffix, once):
        for recording in _recordings:
            recording.append(("log", self.name, self.filter_name, log_level, msg,
                              name_suffix, once))
        return original(self, log_level, msg, name_suffix, once)

    return _log


def _recording_add(original):
    @functools.wraps(original)
    def add(self, u):
        if _recordings:
            registry = _registry_name(self)
            if registry is not None:
                event = ("unit", registry, u.dim, u.scale, u._name, u._dispname,
                         u._latexname, u.iscompound)
                for recording in _recordings:
                    recording.append(event)
        return original(self, u)

    return add


def replay(events: list[tuple]) -> None:
    """Repeat recorded events in their order."""
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
