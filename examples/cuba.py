"""Brian2's CUBA example (examples/CUBA.py): 4000 LIF neurons, current-based synapses.

Usage: python examples/cuba.py TARGET DURATION [--fixed] [--seed N] [--out F.npz]
Without --fixed, as in Brian2's example: initial potentials by rand() and connections with
p=0.02 are drawn by the target. With --fixed they are drawn with numpy and handed in as
arrays, so that every target must give the same spikes.
"""

from __future__ import annotations

import argparse
from typing import Any

import _example


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The CUBA network of Brian2's example, recording all spikes."""
    import numpy as np
    from brian2 import NeuronGroup, SpikeMonitor, Synapses, ms, mV

    ns = {
        "taum": 20 * ms,
        "taue": 5 * ms,
        "taui": 10 * ms,
        "Vt": -50 * mV,
        "Vr": -60 * mV,
        "El": -49 * mV,
        "we": (60 * 0.27 / 10) * mV,  # excitatory synaptic weight (voltage)
        "wi": (-20 * 4.5 / 10) * mV,  # inhibitory synaptic weight
    }
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    P = NeuronGroup(
        4000, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="linear",
        namespace=ns,
    )
    Ce = Synapses(P, P, on_pre="ge += we", namespace=ns)
    Ci = Synapses(P, P, on_pre="gi += wi", namespace=ns)
    if args.fixed:
        rng = np.random.RandomState(args.seed)
        P.v = ns["Vr"] + rng.rand(4000) * (ns["Vt"] - ns["Vr"])
        e_i, e_j = np.nonzero(rng.rand(3200, 4000) < 0.02)
        i_i, i_j = np.nonzero(rng.rand(800, 4000) < 0.02)
        Ce.connect(i=e_i, j=e_j)
        Ci.connect(i=i_i + 3200, j=i_j)
    else:
        P.v = "Vr + rand() * (Vt - Vr)"
        Ce.connect("i<3200", p=0.02)
        Ci.connect("i>=3200", p=0.02)
    P.ge = 0 * mV
    P.gi = 0 * mV
    s_mon = SpikeMonitor(P)
    return {
        "name": "cuba",
        "objects": [P, Ce, Ci, s_mon],
        "namespace": ns,
        "spikemon": s_mon,
        "summary": lambda: {"synapses": [len(Ce), len(Ci)]},
    }


if __name__ == "__main__":
    _example.main(__doc__.splitlines()[0], build)
