"""A network's time-step loop in C: many steps per return to Python.

Brian2's ``Network.run`` keeps its loop, and everything around it (``before_run``, reports,
``stop()``, the maximum run time, the end of the run, ``after_run``). What changes is what
one of its iterations covers. Each step Python runs ends with the clocks' ``advance``; on a
network whose objects are sobuild kernels, that ``advance`` (an instance attribute, as in
``clock``) advances the clock and then runs the following steps in C (``step_loop.cpp``:
the clocks chosen as ``Network._nextclocks`` does, each object's kernels in the network's
order) until a step needs Python: a ``NetworkOperation`` or another object that is not all
sobuild kernels on a clock that steps, the end of the interval, or a deadline in wall
time (the next report, the device's maximum run time, and at least every
:data:`POLL_SECONDS` so that signals and a ``stop()`` from another thread are seen). Brian2's
loop then runs that step as usual. A kernel's error is raised as the code object raises it,
with ``Network.t`` at the step that failed.

With several clocks, Brian2's loop calls ``advance`` once per clock stepping; the steps in C
start after the last of them. ``prefs.codegen.runtime.sobuild.step_loop = 'python'`` (or
``SOBUILD_STEP_LOOP=python``), ``profile=True`` (its timings are per object, in Python)
and clocks other than ``Clock`` (an ``EventClock``) keep Brian2's loop for every step.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterable

import numpy as np
from brian2.core.base import BrianObject
from brian2.core.clocks import Clock
from brian2.core.network import Network
from brian2.core.preferences import prefs
from brian2.devices.device import RuntimeDevice, get_device
from brian2.units import second

from ..loader.cffi_loader import ffi
from . import clock, hooks

RUN = hooks.declare(__name__, "brian2.core.network", "Network.run", "wrap")
GLOBALLY_STOPPED = hooks.declare(__name__, "brian2.core.network", "Network._globally_stopped",
                                 "read", hooks.an_instance_of(bool))
NEXT_CLOCKS = hooks.declare(__name__, "brian2.core.network", "Network._nextclocks", "read",
                            hooks.a_function)
TEXT_REPORT = hooks.declare(__name__, "brian2.core.network", "TextReport", "read",
                            hooks.a_function)
MAXIMUM_RUN_TIME = hooks.declare(__name__, "brian2.devices.device",
                                 "all_devices.runtime._maximum_run_time", "read")

#: Longest time in C between two returns to Python (Ctrl-C, stop() from another thread).
POLL_SECONDS = 0.05
NO_DEADLINE = float("inf")


class _RunContext:
    """What the C loop needs to know of a ``Network.run`` call: set by the wrapper around it."""

    def __init__(self, network: Network, profile, report_period) -> None:
        self.network = network
        self.profile = profile
        self.report_period = report_period
        self.next_report = NO_DEADLINE
        self.stop_by = NO_DEADLINE

    def watch(self, report):
        """``report`` as Brian2's loop will call it, noting when it does (the next report is
        due ``report_period`` later); a value Brian2 refuses is passed on unchanged."""
        if isinstance(report, str) and report in ("text", "stdout", "stderr"):
            report = TEXT_REPORT.get()(sys.stderr if report == "stderr" else sys.stdout)
        elif not callable(report):
            return report

        def reported(*args):  # report_period is valid by now: Brian2 checked its unit
            self.next_report = time.time() + float(self.report_period)
            return report(*args)

        return reported

    def deadline(self) -> float:
        return min(time.time() + POLL_SECONDS, self.next_report, self.stop_by)


_current: _RunContext | None = None


def _with_context(original: Callable) -> Callable:
    """``Network.run`` noting its arguments for the C loop (``bind``)."""

    @functools.wraps(original)
    def run(self, duration, report=None, report_period=10 * second, namespace=None,
            profile=None, level=0):
        global _current
        outer, _current = _current, _RunContext(self, profile, report_period)
        try:
            if report is not None and isinstance(get_device(), RuntimeDevice):
                # (a standalone device writes the report into its C++ code: left as given)
                report = _current.watch(report)
            # one frame deeper: Brian2 finds the caller's namespace ``level`` frames up
            return original(self, duration, report, report_period, namespace, profile,
                            level + 1)
        finally:
            _current = outer

    return run


def install() -> None:
    """Wrap ``Network.run`` so that the C loop knows the run's report and profile."""
    RUN.wrap(_with_context)


def _wanted(network: Network, context: _RunContext | None, clocks: Iterable) -> bool:
    if context is None or context.network is not network:
        return False  # before_run without a run (sobuild prebuild)
    if prefs["codegen.runtime.sobuild.step_loop"] != "c":
        return False
    profile = context.profile
    if profile is None:
        profile = get_device().build_options.get("profile", False)
    return not profile and all(type(c) is Clock for c in clocks)


def bind(network: Network, objects: list, uses_sobuild: bool) -> None:
    """Called at the end of ``network``'s ``before_run``: give its clocks their ``advance``
    in C (``clock``) and, where the C loop applies, the steps that follow it."""
    clocks = {obj.clock for obj in objects}
    clock.bind_advance(clocks, uses_sobuild)
    context = _current
    if not uses_sobuild or not _wanted(network, context, clocks):
        return
    maximum = get_device()._maximum_run_time
    if maximum is not None:
        context.stop_by = time.time() + float(maximum)
    loop = NetworkLoop(network, [obj for obj in objects if obj.active],
                       list(network._clocks), context)
    if loop.python_at_every_step:
        return
    for clk in network._clocks:
        clk.advance = loop.advance_of(clk)


class NetworkLoop:
    """The schedule of one run of a network, as the C loop reads it."""

    def __init__(self, network: Network, active_objects: list, clocks: list,
                 context: _RunContext) -> None:
        self.network = network
        self.context = context
        self.single_clock = len(clocks) == 1
        self.clocks = clocks
        clock_index = {id(clk): i for i, clk in enumerate(clocks)}
        funcs, argblocks, call_clock, self.codeobjs = [], [], [], []
        python_clocks = set()
        for obj in active_objects:
            fused = obj.__dict__.get("run")
            calls = getattr(fused, "calls", None)
            if calls is None and not obj._code_objects and type(obj).run is BrianObject.run:
                continue  # nothing runs: a group without code objects
            index = clock_index[id(obj.clock)]
            if calls is None:  # Python runs it
                python_clocks.add(index)
            for func, argblock, codeobj in calls if calls is not None else [(None,) * 3]:
                funcs.append(ffi.NULL if func is None else ffi.cast("void*", func))
                argblocks.append(ffi.NULL if argblock is None else ffi.cast("void*", argblock))
                call_clock.append(index)
                self.codeobjs.append(codeobj)
        n_clocks = len(clocks)
        #: Every clock has an object that Python runs: so has every step (then the C loop
        #: would only add a call per step).
        self.python_at_every_step = len(python_clocks) == n_clocks
        clock_arrays = {name: [clk.variables[name].get_value() for clk in clocks]
                        for name in ("timestep", "t", "dt")}
        self.deadline = np.zeros(1, dtype=np.float64)
        self.failed = np.zeros(1, dtype=np.int64)
        arrays = [  # step_loop.cpp's arguments, in order
            ffi.new("void*[]", funcs or 1),
            ffi.new("void*[]", argblocks or 1),
            np.array(call_clock or [0], dtype=np.int32),
            np.array([len(funcs), n_clocks], dtype=np.int64),
            *(ffi.new("void*[]", [ffi.from_buffer(a) for a in clock_arrays[name]])
              for name in ("timestep", "t", "dt")),
            np.array([clk._i_end for clk in clocks], dtype=np.int64),
            self.deadline,
            self.failed,
            np.zeros(n_clocks, dtype=np.int8),  # scratch: the clocks stepping
            np.zeros(n_clocks, dtype=np.int8),  # scratch: the clocks with Python objects
        ]
        # the block's pointers point into these
        self._keep = [a if isinstance(a, ffi.CData) else ffi.from_buffer(a) for a in arrays]
        self._clock_arrays = clock_arrays
        self.argblock = ffi.new("void*[]", [ffi.cast("void*", a) for a in self._keep])
        self.func = clock.KERNEL.step_loop
        self._clocks_to_advance = 0

    def advance_of(self, clk: Clock) -> Callable[[], None]:
        """``clk``'s advance in C, then, after the last clock of the step, the steps in C."""
        advance_clock = clk.__dict__["advance"]

        def advance() -> None:
            if self._clocks_to_advance == 0:
                self._clocks_to_advance = 1 if self.single_clock else len(
                    self.network._nextclocks()[1])
            advance_clock()
            self._clocks_to_advance -= 1
            if self._clocks_to_advance == 0:
                self.run_steps()

        return advance

    def run_steps(self) -> None:
        """Run steps in C until one needs Python; raise a kernel's error as Brian2 would."""
        network = self.network
        if network._stopped or Network._globally_stopped:
            return
        deadline = self.context.deadline()
        if deadline <= time.time():
            return  # Python's step: Brian2 reports or stops there
        self.deadline[0] = deadline
        code = self.func(self.argblock)
        if code:
            # Brian2's loop set Network.t at the top of the step that failed
            first = network._nextclocks()[0] if not self.single_clock else self.clocks[0]
            network.t_ = first.variables["t"].get_value()[0]
            self.codeobjs[self.failed[0]]._raise("run", code)
