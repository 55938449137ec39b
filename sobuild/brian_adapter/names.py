"""Kernel sources that do not depend on Brian2's object names.

Brian2 names arrays after their owners (``_array_neurongroup_3_v``), and numbers objects in
the order they are made, so the same model built twice in one process (a parameter sweep, a
test suite) gets different names and, without this, different kernels. The owners' names in
array identifiers are replaced by ``sobuild_o0``, ``sobuild_o1``, ... in the order of the code object's
(sorted) variables: the source, hence the key, depends on the model's structure only.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
    if not renames:
        return lambda source: source
    pattern = re.compile(r"\b(" + "|".join(
        re.escape(k) for k in sorted(renames, key=len, reverse=True)) + r")\b")
    return lambda source: pattern.sub(lambda m: renames[m.group(1)], source)
