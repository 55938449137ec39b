"""A clock's step in C, for the networks that run sobuild kernels; the runtime's own kernels.

Brian2's ``Clock.advance`` reads and writes the clock's ``timestep`` and ``t`` arrays through
the device's variable machinery: several microseconds of Python per step, more than the
kernels of a small network take together. Each clock of a network with sobuild code objects
gets an ``advance`` (an instance attribute shadowing the method, bound again before every
run, since only ``Network.run`` calls it) that calls one kernel doing Brian2's arithmetic on
the same arrays: ``timestep + 1``, ``t = timestep * dt`` in double precision, and
``StopIteration`` past the end of the clock's interval.

``KERNEL`` holds that kernel and the network's step loop (``step_loop.cpp``, driven by
``step_loop``): both are built once per toolchain, in the batch of a process's first network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from brian2.core.clocks import Clock

from ..loader.cffi_loader import ffi
from ..spec import KernelSpec
from . import hooks

#: The method each clock of a network with sobuild code objects gets an instance attribute for.
ADVANCE = hooks.declare(__name__, "brian2.core.clocks", "Clock.advance", "shadow")

SOURCE = """\
#include <stdint.h>

extern "C" int run(void* const* args)
{
    int64_t* timestep = (int64_t*)args[0];
    double* t = (double*)args[1];
    const double dt = *(const double*)args[2];
    const int64_t end = *(const int64_t*)args[3];
    const int64_t next = *timestep + 1;
    if (next > end)
        return 1;
    *timestep = next;
    *t = (double)next * dt;
    return 0;
}
"""
ENTRY = "int run(void* const* args)"
SPEC = KernelSpec(source=SOURCE, entry=ENTRY, flags=("-O2",), namespace="brian2")
STEP_LOOP_SPEC = KernelSpec(source=(Path(__file__).parent / "step_loop.cpp").read_text(),
                            entry=ENTRY, flags=("-O2",), namespace="brian2")
NO_END = np.iinfo(np.int64).max


class ClockKernel:
    """The advance kernel and the step loop, loaded once per process; queued with a
    network's code objects (``batch``) so that they are built in the same batch as they are."""

    def __init__(self) -> None:
        self.specs = {"advance": SPEC, "step_loop": STEP_LOOP_SPEC}
        self.func = None
        self.step_loop = None

    def _bind(self, funcs: dict) -> None:
        self.func = funcs["advance"]
        self.step_loop = funcs["step_loop"]


KERNEL = ClockKernel()


def bind_advance(clocks, enabled: bool) -> None:
    """Give every plain ``Clock`` in ``clocks`` the kernel's ``advance`` (KERNEL is loaded),
    or, not ``enabled``, Brian2's own again (a clock shared with an earlier network)."""
    for clock in clocks:
        clock.__dict__.pop("advance", None)
        if not enabled or type(clock) is not Clock:  # an EventClock steps through its times
            continue
        end = np.array([NO_END if clock._i_end is None else clock._i_end], dtype=np.int64)
        arrays = [clock.variables[name].get_value() for name in ("timestep", "t", "dt")]
        argblock = ffi.new("void*[4]", [ffi.from_buffer(a) for a in (*arrays, end)])
        clock.advance = _advance(KERNEL.func, argblock, (arrays, end))


def _advance(func, argblock, keep_alive):
    def advance() -> None:
        if func(argblock):
            raise StopIteration("Clock has reached the end of its available times.")

    advance.keep_alive = keep_alive  # the arrays the pointers point into
    return advance
