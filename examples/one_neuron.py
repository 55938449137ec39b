"""One leaky integrate-and-fire neuron with a constant drive: the per-step overhead.

Usage: python examples/one_neuron.py TARGET DURATION [--out F.npz]
Four code objects run every step (state update, threshold, reset, spike monitor) on one
neuron, so the time per step is what a target costs per code object call. No random numbers.
"""

from __future__ import annotations

import argparse
from typing import Any

import _example


def build(args: argparse.Namespace) -> dict[str, Any]:
    """One neuron firing regularly, its spikes recorded."""
    from brian2 import NeuronGroup, SpikeMonitor, ms

    ns = {"tau": 10 * ms}
    G = NeuronGroup(
        1, "dv/dt = (1.1 - v)/tau : 1", threshold="v>1", reset="v = 0", method="exact",
        namespace=ns,
    )
    s_mon = SpikeMonitor(G)
    return {"name": "one_neuron", "objects": [G, s_mon], "namespace": ns, "spikemon": s_mon}


if __name__ == "__main__":
    _example.main(__doc__.splitlines()[0], build)
