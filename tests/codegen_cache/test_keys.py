"""The key of a memoised call: what changes it, what must not, and what has no key."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

APPLY = "brian2.stateupdaters.base.StateUpdateMethod.apply_stateupdater"
STATEMENTS = "brian2.codegen.translation.make_statements"

EQS = "dv/dt = (v0 - v) / tau : volt\nv0 : volt\ntau : second"


def _group(eqs=EQS, **kwds):
    from brian2 import NeuronGroup

    return NeuronGroup(2, eqs, **kwds)


def _update_key(codegen, eqs=EQS, method="exact", method_options=None):
    group = _group(eqs)
    return codegen.installed[APPLY].key(
        (group.equations, group.variables, method), {"method_options": method_options})


def _statements_key(codegen, group, code="v = v0 + 1*mV"):
    import numpy as np

    variables = dict(group.variables)
    return codegen.installed[STATEMENTS].key((code, variables, np.float64), {})


def test_same_model_same_key_whatever_the_group(codegen):
    assert _update_key(codegen) == _update_key(codegen)
    a, b = _group(), _group(name="another_name")
    assert _statements_key(codegen, a) == _statements_key(codegen, b)


def test_equation_change_changes_key(codegen):
    assert _update_key(codegen) != _update_key(
        codegen, "dv/dt = (v0 - v) / (2*tau) : volt\nv0 : volt\ntau : second")


def test_method_changes_key(codegen):
    assert _update_key(codegen, method="exact") != _update_key(codegen, method="euler")


def test_method_option_changes_key(codegen):
    assert _update_key(codegen, method_options={"simplify": True}) != \
        _update_key(codegen, method_options={"simplify": False})


def test_unit_and_dtype_of_a_variable_change_key(codegen):
    import numpy as np

    base = _group("v : volt\nv0 : volt")
    assert _statements_key(codegen, base) == _statements_key(codegen, _group("v : volt\nv0 : volt"))
    unit = _group("v : volt\nv0 : amp")
    assert _statements_key(codegen, base) != _statements_key(codegen, unit)
    dtype = _group("v : volt\nv0 : volt", dtype={"v0": np.float32})
    assert _statements_key(codegen, base) != _statements_key(codegen, dtype)


@pytest.mark.parametrize("name, value", [
    ("core.default_float_dtype", "float32"),
    ("codegen.loop_invariant_optimisations", False),
    ("codegen.target", "cython"),
])
def test_preference_changes_key(codegen, name, value):
    import numpy as np
    from brian2 import prefs

    if value == "float32":
        value = np.float32
    before = _update_key(codegen)
    saved = prefs[name]
    prefs[name] = value
    try:
        assert _update_key(codegen) != before
    finally:
        prefs[name] = saved
    assert _update_key(codegen) == before


def test_host_specific_preferences_do_not_change_key(codegen):
    from brian2 import prefs

    before = _update_key(codegen)
    saved = prefs["codegen.cpp.include_dirs"]
    prefs["codegen.cpp.include_dirs"] = ["/somewhere/only/this/host/has"]
    try:
        assert _update_key(codegen) == before
    finally:
        prefs["codegen.cpp.include_dirs"] = saved


def test_preference_changed_in_place_changes_key(codegen):
    from brian2 import prefs

    before = _update_key(codegen)
    prefs["core.network.default_schedule"].append("end")
    try:
        assert _update_key(codegen) != before
    finally:
        prefs["core.network.default_schedule"].pop()


KEY_SCRIPT = f"""
import json, sys
import numpy as np
import sobuild.brian_adapter.codegen_cache as cc
from brian2 import NeuronGroup
g = NeuronGroup(3, '''dv/dt = (v0 - v + I) / tau : volt
                      I = 2*v0 : volt
                      v0 : volt
                      tau : second''', threshold='v > v0', method='exact')
keys = [cc.installed[{APPLY!r}].key((g.equations, g.variables, 'exact'), {{}}),
        cc.installed[{STATEMENTS!r}].key(('v = v0 + I', dict(g.variables), np.float64), {{}})]
json.dump(keys, sys.stdout)
"""


def test_keys_are_equal_in_processes_with_different_string_hashing(cache_dir):
    keys = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", KEY_SCRIPT], env=env, check=True,
                             capture_output=True, text=True, timeout=300).stdout
        keys.append(json.loads(out))
    assert keys[0] == keys[1] == keys[2]


def test_canonical_form_orders_sets_and_mappings(codegen):
    from sobuild.brian_adapter.codegen_canonical import canonical

    names = [f"name{i}" for i in range(50)]
    forward, backward = frozenset(names), frozenset(reversed(names))
    assert repr(canonical(forward)) == repr(canonical(backward))
    assert repr(canonical(dict.fromkeys(names, 1))) == \
        repr(canonical(dict.fromkeys(reversed(names), 1)))
    assert canonical({1: "a"}) != canonical({1.0: "a"})


def test_user_function_has_no_canonical_form(codegen):
    from brian2 import Function

    from sobuild.brian_adapter.codegen_canonical import NoCanonicalForm, canonical

    user = Function(lambda x: x, arg_units=[1], return_unit=1)
    with pytest.raises(NoCanonicalForm):
        canonical(user)
    with pytest.raises(NoCanonicalForm):
        canonical(object())
