"""What the persistent layer does with the store, in this process: bypasses, entries that
cannot be unpickled, switching off, clearing."""

from __future__ import annotations

import numpy as np
import pytest

CODE = "v = v0 + 2*v0\nv0 = v"


def _fresh_statements(group, code=CODE):
    """make_statements as Brian2 calls it, with Brian2's in-memory memo emptied first."""
    from brian2.codegen.translation import make_statements

    make_statements._cache.clear()
    return make_statements(code, dict(group.variables), np.float64)


def _group():
    from brian2 import NeuronGroup

    return NeuronGroup(2, "v : volt\nv0 : volt")


def _counters(codegen):
    from sobuild.brian_adapter.prefs import get_cache

    cache = get_cache()
    cache.flush()
    return cache.store.counters()


def _statements_text(result):
    return [[(s.var, s.op, s.expr, str(s.dtype)) for s in block] for block in result]


def _entries(cache_dir):
    return sorted(cache_dir.glob("data/*/*"))


def test_stored_then_found(codegen, cache_dir):
    group = _group()
    first = _fresh_statements(group)
    assert _entries(cache_dir)
    before = _counters(codegen)
    second = _fresh_statements(group)
    after = _counters(codegen)
    assert after["data_hits"] > before.get("data_hits", 0)
    assert _statements_text(first) == _statements_text(second)


def test_argument_without_canonical_form_is_a_counted_bypass(codegen):
    from brian2 import Function

    group = _group()
    variables = dict(group.variables)
    variables["double"] = Function(lambda x: 2 * x, arg_units=[None], return_unit=lambda u: u)
    from brian2.codegen.translation import make_statements

    before = _counters(codegen).get("data_bypasses", 0)
    make_statements._cache.clear()
    result = make_statements("v = double(v0)", variables, np.float64)
    assert _counters(codegen)["data_bypasses"] > before
    assert _statements_text(result) == [[], [("v", "=", "double(v0)", "<class 'numpy.float64'>")]]


def test_entry_that_cannot_be_unpickled_is_recomputed_and_replaced(codegen, cache_dir):
    from sobuild.store import data as data_entries

    group = _group()
    expected = _statements_text(_fresh_statements(group))
    (path,) = _entries(cache_dir)
    path.chmod(0o600)
    path.write_bytes(data_entries.encode(b"not a pickle", "brian2", 1.0))  # digest matches
    path.chmod(0o444)
    before = _counters(codegen).get("data_corrupt", 0)
    with pytest.warns(RuntimeWarning, match="could not be unpickled"):
        assert _statements_text(_fresh_statements(group)) == expected
    assert _counters(codegen)["data_corrupt"] == before + 1
    assert b"not a pickle" not in path.read_bytes(), "the entry was replaced"


def test_preference_off_stores_nothing(codegen, cache_dir):
    from brian2 import prefs

    prefs["codegen.runtime.sobuild.codegen_cache"] = False
    _fresh_statements(_group())
    assert not _entries(cache_dir)


def test_clear_removes_codegen_entries_only(codegen, cache_dir):
    from sobuild.brian_adapter.prefs import get_cache
    from sobuild.keys import data_key

    _fresh_statements(_group())
    cache = get_cache()
    other = data_key("someone else's entry")
    cache.put_data(other, b"kept", namespace="other")
    cache.flush()
    stored = len(_entries(cache_dir)) - 1  # how many depends on Brian2's in-memory cache
    assert stored >= 1
    assert codegen.clear() == stored
    assert [p.name for p in _entries(cache_dir)] == [other]
    assert cache.get_data(other) == b"kept"


def test_value_that_does_not_unpickle_the_same_is_computed_in_every_process(codegen,
                                                                          cache_dir):
    from brian2.parsing.sympytools import _str_to_sympy, str_to_sympy

    before = _counters(codegen)
    _str_to_sympy._cache.clear()
    # sympy rebuilds an unpickled expm1(x + 1.0) as E*exp(x) - 1 (Brian2 issue #1350)
    assert str(str_to_sympy("expm1(x + 1.0)")) == "expm1(x + 1.0)"
    first = _counters(codegen)
    assert first["data_bypasses"] == before.get("data_bypasses", 0) + 1
    [entry] = _entries(cache_dir)  # the marker, not the value
    assert entry.read_bytes().endswith(codegen.NOT_PERSISTED)
    _str_to_sympy._cache.clear()  # as a later process: computed at once, never a miss
    assert str(str_to_sympy("expm1(x + 1.0)")) == "expm1(x + 1.0)"
    second = _counters(codegen)
    assert second["data_bypasses"] == first["data_bypasses"] + 1
    assert second.get("data_misses", 0) == first.get("data_misses", 0)
