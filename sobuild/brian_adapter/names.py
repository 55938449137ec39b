"""Kernel sources that do not depend on Brian2's object names.

Brian2 names arrays after their owners (``_array_neurongroup_3_v``), and numbers objects in
the order they are made, so the same model built twice in one process (a parameter sweep, a
test suite) gets different names and, without this, different kernels. The owners' names in
array identifiers are replaced by ``sobuild_o0``, ``sobuild_o1``, ... in the order of the code object's
(sorted) variables: the source, hence the key, depends on the model's structure only.
Functions that are named objects too (a ``TimedArray``, a ``BinomialFunction``) and carry a
name Brian2 numbered (``_timedarray_1``) give it to the C++ function and to its namespace
arrays (``_timedarray_1_values``, ``_namespace_timedarray_1_values``); these become
``_sobuild_f0``, ``_sobuild_f0_values``, ...
"""

from __future__ import annotations

import re
from collections.abc import Callable

from brian2.core.functions import Function
from brian2.core.names import Nameable
from brian2.core.variables import ArrayVariable, DynamicArrayVariable


def canonicalizer(variables, device) -> Callable[[str], str]:
    """A function rewriting the array identifiers of ``variables`` in a kernel's source."""
    owners: dict[str, str] = {}
    renames: dict[str, str] = {}
    for _, var in sorted(variables.items()):
        if not isinstance(var, ArrayVariable):
            continue
        owner = getattr(var.owner, "name", None)
        if owner is None:
            continue
        alias = owners.setdefault(owner, f"sobuild_o{len(owners)}")
        stems = [device.get_array_name(var)]
        if isinstance(var, DynamicArrayVariable):
            stems.append(device.get_array_name(var, access_data=False))
        for stem in stems:
            new = stem.replace(f"_array_{owner}_", f"_array_{alias}_", 1)
            for original, renamed in ((stem, new), (f"_ptr{stem}", f"_ptr{new}"),
                                      (f"{stem}_ptr", f"{new}_ptr")):
                renames[original] = renamed
    # names Brian2 numbers (_timedarray_1, _binomial_2); a name the user chose is stable
    functions = {var.name: f"_sobuild_f{i}" for i, (_, var) in enumerate(sorted(
        (k, v) for k, v in variables.items()
        if isinstance(v, Function) and isinstance(v, Nameable) and v.name.startswith("_")))}
    if not renames and not functions:
        return lambda source: source
    pattern = re.compile(r"\b(" + "|".join(
        re.escape(k) for k in sorted(renames, key=len, reverse=True)) + r")\b") if renames else None

    longest_first = sorted(functions, key=len, reverse=True)  # _timedarray_1, _timedarray

    def rename_function_identifier(match: re.Match) -> str:
        identifier = match.group(0)
        prefix = "_namespace" if identifier.startswith("_namespace") else ""
        rest = identifier[len(prefix):]
        for name in longest_first:
            if rest == name or rest.startswith(name + "_"):
                return prefix + functions[name] + rest[len(name):]
        return identifier

    def canonical(source: str) -> str:
        if pattern is not None:
            source = pattern.sub(lambda m: renames[m.group(1)], source)
        if functions:
            source = IDENTIFIER.sub(rename_function_identifier, source)
        return source

    return canonical


IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
