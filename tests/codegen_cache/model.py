"""A small CUBA network (method chosen by Brian2: 'exact'), run in a fresh process.

Writes JSON to argv[1]: the abstract and generated code of every code object, the spikes,
and Brian2's INFO log messages. ``--pref-off`` switches the codegen cache off through the
Brian2 preference instead of the environment; ``--euler`` integrates with 'euler' (no sympy
solving: a cheap cold process for the tests that only need some entries);
``--standalone DIR`` runs it on Brian2's cpp_standalone device with its project in DIR.
"""

import json
import logging
import sys

from brian2 import NeuronGroup, SpikeMonitor, Synapses, ms, mV, prefs, run, seed, set_device
from brian2.utils.logger import catch_logs

import sobuild.brian_adapter  # noqa: F401  (installs the codegen cache)

prefs.codegen.target = "numpy"
if "--standalone" in sys.argv:
    set_device("cpp_standalone", directory=sys.argv[sys.argv.index("--standalone") + 1])
if "--pref-off" in sys.argv:
    prefs.codegen.runtime.sobuild.codegen_cache = False
seed(7)
with catch_logs(log_level=logging.INFO) as logs:
    taum, taue, taui, Vt, Vr, El = 20 * ms, 5 * ms, 10 * ms, -50 * mV, -60 * mV, -49 * mV
    P = NeuronGroup(200, """dv/dt = (ge + gi - (v - El)) / taum : volt (unless refractory)
                            dge/dt = -ge / taue : volt
                            dgi/dt = -gi / taui : volt""",
                    threshold="v > Vt", reset="v = Vr", refractory=5 * ms,
                    method="euler" if "--euler" in sys.argv else ("exact", "euler"))
    P.v = "Vr + rand() * (Vt - Vr)"
    Ce = Synapses(P, P, on_pre="ge += 1.62*mV")
    Ci = Synapses(P, P, on_pre="gi += -9*mV")
    Ce.connect("i < 160", p=0.1)
    Ci.connect("i >= 160", p=0.1)
    M = SpikeMonitor(P)
    run(50 * ms)

objects = [o for g in (P, Ce, Ci) for o in g.contained_objects if getattr(o, "codeobj", None)]
result = {
    "abstract": {o.name: str(o.abstract_code) for o in objects},
    "generated": {o.name: str(o.codeobj.code) for o in objects},
    "spikes": [M.i[:].tolist(), (M.t[:] / ms).round(6).tolist()],
    # the timing inside "using method 'exact' (took 1.23s)" is the original computation's
    "logs": [(level, name, msg.split(" (took")[0]) for level, name, msg in logs],
}
with open(sys.argv[1], "w") as f:
    json.dump(result, f)
