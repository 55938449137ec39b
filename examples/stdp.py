"""Brian2's STDP example (examples/synapses/STDP.py): 1000 Poisson inputs, one neuron, STDP.

Usage: python examples/stdp.py TARGET DURATION [--fixed] [--seed N] [--out F.npz]
Without --fixed, as in Brian2's example: the PoissonGroup's spikes and the initial weights
(rand()) are drawn by the target. With --fixed the input spikes are drawn with numpy and
played by a SpikeGeneratorGroup, and the weights are handed in as an array, so that every
target must give the same spikes and weights. Records the input spikes (the reported
spikes), the output neuron's spikes, the weights of synapses 0 and 1 and the final weights.
"""

from __future__ import annotations

import argparse
from typing import Any

import _example


def poisson_spikes(rng, n: int, rate_hz: float, steps: int, dt_s: float):
    """Indices and time steps of Bernoulli(rate*dt) spikes, as PoissonGroup draws them."""
    import numpy as np

    indices, step_of = [], []
    chunk = max(1, 2_000_000 // n)
    for start in range(0, steps, chunk):
        stop = min(steps, start + chunk)
        s, i = np.nonzero(rng.rand(stop - start, n) < rate_hz * dt_s)
        indices.append(i)
        step_of.append(s + start)
    return np.concatenate(indices), np.concatenate(step_of)


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The STDP network of Brian2's example."""
    import numpy as np
    from brian2 import (
        Hz,
        NeuronGroup,
        PoissonGroup,
        SpikeGeneratorGroup,
        SpikeMonitor,
        StateMonitor,
        Synapses,
        defaultclock,
        ms,
        mV,
        second,
    )

    N = 1000
    gmax = 0.01
    dApre = 0.01
    ns = {
        "taum": 10 * ms,
        "taupre": 20 * ms,
        "taupost": 20 * ms,
        "Ee": 0 * mV,
        "vt": -54 * mV,
        "vr": -60 * mV,
        "El": -74 * mV,
        "taue": 5 * ms,
        "gmax": gmax,
        "dApre": dApre * gmax,
        "dApost": -dApre * 1.05 * gmax,
    }
    F = 15 * Hz
    eqs_neurons = """
    dv/dt = (ge * (Ee-vr) + El - v) / taum : volt
    dge/dt = -ge / taue : 1
    """
    if args.fixed:
        rng = np.random.RandomState(args.seed)
        dt_s = float(defaultclock.dt)
        steps = int(round(args.duration / dt_s))
        idx, step = poisson_spikes(rng, N, float(F), steps, dt_s)
        source = SpikeGeneratorGroup(N, idx, step * dt_s * second)
    else:
        source = PoissonGroup(N, rates=F)
    neurons = NeuronGroup(
        1, eqs_neurons, threshold="v>vt", reset="v = vr", method="linear", namespace=ns
    )
    neurons.v = ns["vr"]
    S = Synapses(
        source,
        neurons,
        """w : 1
           dApre/dt = -Apre / taupre : 1 (event-driven)
           dApost/dt = -Apost / taupost : 1 (event-driven)""",
        on_pre="""ge += w
                  Apre += dApre
                  w = clip(w + Apost, 0, gmax)""",
        on_post="""Apost += dApost
                   w = clip(w + Apre, 0, gmax)""",
        namespace=ns,
    )
    S.connect()
    if args.fixed:
        S.w = rng.rand(N) * gmax
    else:
        S.w = "rand() * gmax"
    mon = StateMonitor(S, "w", record=[0, 1])
    s_mon = SpikeMonitor(source)
    out_mon = SpikeMonitor(neurons)
    return {
        "name": "stdp",
        "objects": [source, neurons, S, mon, s_mon, out_mon],
        "namespace": ns,
        "spikemon": s_mon,
        "arrays": lambda: {
            "w": S.w[:],
            "mon_w": mon.w[:],
            "out_t": out_mon.t_[:],
        },
        "summary": lambda: {
            "synapses": [len(S)],
            "out_spikes": int(out_mon.num_spikes),
            "mean_w_over_gmax": float(np.mean(S.w[:]) / gmax),
        },
    }


if __name__ == "__main__":
    _example.main(__doc__.splitlines()[0], build)
