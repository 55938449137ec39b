"""Brian2's linear state updater with the closed-form exponential writes the same abstract
code as Brian2's own, and takes the closed form only where that holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sympy as sp

from sobuild.brian_adapter.linear_exponential import sylvester_exponential

#: Equations, and whether their system has no feedback and distinct eigenvalues.
SYSTEMS = {
    # Brian2's CUBA example: two synaptic currents into the membrane potential
    "cuba": ("""dv/dt = (ge+gi-(v-El))/taum : volt (unless refractory)
                dge/dt = -ge/taue : volt
                dgi/dt = -gi/taui : volt""", True),
    # a chain of filters, rise and decay
    "biexponential": ("""dv/dt = (g - v)/tau : 1
                         dg/dt = (h - g)/taud : 1
                         dh/dt = -h/taur : 1""", True),
    # an alpha synapse: one time constant twice, a Jordan block
    "alpha": ("""dv/dt = (g - v)/tau : 1
                 dg/dt = (h - g)/taus : 1
                 dh/dt = -h/taus : 1""", False),
    # feedback: two compartments exchanging
    "exchange": ("""dx/dt = (y - x)/tau : 1
                    dy/dt = (x - y)/tau2 : 1""", False),
    # feedback with complex eigenvalues: Brian2 refuses it, and so must the adapter
    "oscillator": ("""dx/dt = y/tau : 1
                      dy/dt = -x/tau : 1""", False),
}

#: Prints {name: abstract code} for SYSTEMS (argv[1], JSON), with the adapter if argv[2] is
#: "adapter"; CUBA once more with method_options={'simplify': False}; and how many times
#: the closed form was taken.
CHILD = """
import json, sys
systems = json.loads(sys.argv[1])
taken = []
if sys.argv[2] == "adapter":
    import sobuild.brian_adapter
    from sobuild.brian_adapter import linear_exponential
    closed_form = linear_exponential.sylvester_exponential
    def counted(matrix):
        result = closed_form(matrix)
        taken.append(result is not None)
        return result
    linear_exponential.sylvester_exponential = counted
from brian2 import Equations
from brian2.stateupdaters.exact import linear
def abstract_code(text, **options):
    try:
        return linear(Equations(text), {}, **options)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
codes = {name: abstract_code(text) for name, (text, _) in systems.items()}
codes["cuba, simplify=False"] = abstract_code(systems["cuba"][0],
                                              method_options={"simplify": False})
codes["closed forms taken"] = sum(taken)
print("RESULT " + json.dumps(codes))
"""


def _start(with_adapter: bool) -> subprocess.Popen:
    env = dict(os.environ, SOBUILD_CODEGEN_CACHE="0")  # computed, not read from a cache
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(SYSTEMS), "adapter" if with_adapter else "-"],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _codes(child: subprocess.Popen) -> dict[str, str]:
    out, err = child.communicate(timeout=900)
    assert child.returncode == 0, err[-3000:]
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_the_abstract_code_is_brian2s_own():
    brian2s, ours = _start(with_adapter=False), _start(with_adapter=True)
    expected, found = _codes(brian2s), _codes(ours)
    assert found.pop("closed forms taken") == sum(holds for _, holds in SYSTEMS.values())
    assert expected.pop("closed forms taken") == 0
    assert set(found) == set(SYSTEMS) | {"cuba, simplify=False"}
    for name in found:
        assert found[name] == expected[name], name
    assert found["oscillator"].startswith("UnsupportedEquationsException")


def _coefficients(name: str) -> sp.Matrix:
    from brian2 import Equations
    from brian2.stateupdaters.exact import get_linear_system

    return get_linear_system(Equations(SYSTEMS[name][0]), {})[1]


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_the_closed_form_is_taken_exactly_where_it_holds(name):
    dt = sp.Symbol("dt", real=True, positive=True)
    matrix = _coefficients(name) * dt
    closed_form = sylvester_exponential(matrix)
    assert (closed_form is not None) == SYSTEMS[name][1]
    if closed_form is None:
        return
    # the exponential itself, at numbers where sympy's own is quick: equal to 12 digits
    values = {s: sp.Rational(k + 3, 7 * (k + 2)) for k, s in
              enumerate(sorted(matrix.free_symbols, key=str))}
    ours = closed_form.subs(values).evalf(20)
    sympys = matrix.subs(values).exp().evalf(20)
    assert max(abs(a - b) for a, b in zip(ours, sympys, strict=True)) < 1e-12
