"""Brian2's COBAHH example (examples/COBAHH.py): 4000 Hodgkin-Huxley neurons, conductances.

Usage: python examples/cobahh.py TARGET DURATION [--fixed] [--seed N] [--out F.npz]
Without --fixed, as in Brian2's example: connections (p=0.02) and initial values (randn())
are drawn by the target. With --fixed they are drawn with numpy and handed in as arrays, so
that every target must give the same spikes. Records v of neurons 1, 10 and 100.
"""

from __future__ import annotations

import argparse
from typing import Any

import _example


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The COBAHH network of Brian2's example, recording all spikes and three traces."""
    import numpy as np
    from brian2 import (
        Equations,
        NeuronGroup,
        SpikeMonitor,
        StateMonitor,
        Synapses,
        cm,
        ms,
        msiemens,
        mV,
        nS,
        siemens,
        ufarad,
        umetre,
    )

    area = 20000 * umetre**2
    ns = {
        "Cm": (1 * ufarad * cm**-2) * area,
        "gl": (5e-5 * siemens * cm**-2) * area,
        "El": -60 * mV,
        "EK": -90 * mV,
        "ENa": 50 * mV,
        "g_na": (100 * msiemens * cm**-2) * area,
        "g_kd": (30 * msiemens * cm**-2) * area,
        "VT": -63 * mV,
        "taue": 5 * ms,
        "taui": 10 * ms,
        "Ee": 0 * mV,
        "Ei": -80 * mV,
        "we": 6 * nS,
        "wi": 67 * nS,
    }
    eqs = Equations("""
    dv/dt = (gl*(El-v)+ge*(Ee-v)+gi*(Ei-v)-
             g_na*(m*m*m)*h*(v-ENa)-
             g_kd*(n*n*n*n)*(v-EK))/Cm : volt
    dm/dt = alpha_m*(1-m)-beta_m*m : 1
    dn/dt = alpha_n*(1-n)-beta_n*n : 1
    dh/dt = alpha_h*(1-h)-beta_h*h : 1
    dge/dt = -ge*(1./taue) : siemens
    dgi/dt = -gi*(1./taui) : siemens
    alpha_m = 0.32*(mV**-1)*4*mV/exprel((13*mV-v+VT)/(4*mV))/ms : Hz
    beta_m = 0.28*(mV**-1)*5*mV/exprel((v-VT-40*mV)/(5*mV))/ms : Hz
    alpha_h = 0.128*exp((17*mV-v+VT)/(18*mV))/ms : Hz
    beta_h = 4./(1+exp((40*mV-v+VT)/(5*mV)))/ms : Hz
    alpha_n = 0.032*(mV**-1)*5*mV/exprel((15*mV-v+VT)/(5*mV))/ms : Hz
    beta_n = .5*exp((10*mV-v+VT)/(40*mV))/ms : Hz
    """)
    P = NeuronGroup(
        4000, model=eqs, threshold="v>-20*mV", refractory=3 * ms,
        method="exponential_euler", namespace=ns,
    )
    Pe = P[:3200]
    Pi = P[3200:]
    Ce = Synapses(Pe, P, on_pre="ge+=we", namespace=ns)
    Ci = Synapses(Pi, P, on_pre="gi+=wi", namespace=ns)
    if args.fixed:
        rng = np.random.RandomState(args.seed)
        e_i, e_j = np.nonzero(rng.rand(3200, 4000) < 0.02)
        i_i, i_j = np.nonzero(rng.rand(800, 4000) < 0.02)
        Ce.connect(i=e_i, j=e_j)
        Ci.connect(i=i_i, j=i_j)
        P.v = ns["El"] + (rng.randn(4000) * 5 - 5) * mV
        P.ge = (rng.randn(4000) * 1.5 + 4) * 10.0 * nS
        P.gi = (rng.randn(4000) * 12 + 20) * 10.0 * nS
    else:
        Ce.connect(p=0.02)
        Ci.connect(p=0.02)
        P.v = "El + (randn() * 5 - 5)*mV"
        P.ge = "(randn() * 1.5 + 4) * 10.*nS"
        P.gi = "(randn() * 12 + 20) * 10.*nS"
    trace = StateMonitor(P, "v", record=[1, 10, 100])
    s_mon = SpikeMonitor(P)
    return {
        "name": "cobahh",
        "objects": [P, Ce, Ci, trace, s_mon],
        "namespace": ns,
        "spikemon": s_mon,
        "arrays": lambda: {"trace_t": trace.t_[:], "trace_v": trace.v_[:]},
        "summary": lambda: {"synapses": [len(Ce), len(Ci)]},
    }


if __name__ == "__main__":
    _example.main(__doc__.splitlines()[0], build)
