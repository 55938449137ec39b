"""A neuron whose parameters Cm and Ri clash with the script's own names, prepared for a run
in a fresh process: Brian2 warns that the internal variables win, printing the script's
values in the units it has registered for display (``0.01 * farad / (meter ** 2)``, a unit
registered when Brian2 parses ``Cm : farad/meter**2``).

Writes JSON to argv[1]: the WARNING messages, and Brian2's registered display units in
order. ``--spatial``: a SpatialNeuron (Cm and Ri are its own), else a NeuronGroup that
declares them; ``--plain`` leaves sobuild out (Brian2 alone).
"""

import json
import logging
import sys

if "--plain" not in sys.argv:
    import sobuild.brian_adapter  # noqa: F401  (installs the codegen cache)

from brian2 import Cylinder, NeuronGroup, SpatialNeuron, cm, ms, mV, ohm, prefs, run, siemens, uF, um
from brian2.units.fundamentalunits import user_unit_register
from brian2.utils.logger import catch_logs

prefs.codegen.target = "numpy"
Cm = 1 * uF / cm**2
Ri = 100 * ohm * cm
gL = 1e-4 * siemens / cm**2
EL = -70 * mV
with catch_logs(log_level=logging.WARNING) as logs:
    if "--spatial" in sys.argv:
        neuron = SpatialNeuron(morphology=Cylinder(length=100 * um, diameter=1 * um, n=5),
                               model="Im = gL*(EL - v) : amp/meter**2", Cm=Cm, Ri=Ri,
                               method="exponential_euler")
    else:
        neuron = NeuronGroup(5, """dv/dt = (gL*(EL - v) - (v - EL)/(Ri*um)) / Cm : volt
                                   Cm : farad/meter**2 (constant)
                                   Ri : ohm*meter (constant)""", method="euler")
        neuron.Cm = Cm
        neuron.Ri = Ri
    neuron.v = EL
    run(0 * ms)  # prepares the run (resolves the names), takes no step

result = {
    "warnings": sorted(msg for _, _, msg in logs),
    "units": [(name, str(unit.dim), float(unit))
              for name, unit in user_unit_register.units.items()],
}
with open(sys.argv[1], "w") as f:
    json.dump(result, f)
