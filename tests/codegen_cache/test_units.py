"""A warm process prints quantities in the units a cold one (and Brian2 alone) prints them:
the units that Brian2's cached parsing registers for display are replayed on a hit."""

from __future__ import annotations

from pathlib import Path

import pytest

CLASH = Path(__file__).parent / "clash.py"


# A SpatialNeuron's own equations are stored only when their pickle comes back byte for byte,
# which depends on the order of a set of names, so on the string hashing: under
# PYTHONHASHSEED=0 they are recomputed by every process (and register their units), under 1
# they are stored, as in most processes.
@pytest.mark.parametrize("variant, hash_seed", [((), "0"), (("--spatial",), "1")],
                         ids=["NeuronGroup", "SpatialNeuron"])
def test_warm_process_warns_in_brian2s_units(cache_dir, tmp_path, run_model, variant,
                                             hash_seed):
    """Cm and Ri clash with the script's names. Brian2 prints the script's values in the
    units its parsed equations registered (farad / (meter ** 2)); a warm process, whose
    parsing comes from the cache, must print and register the same, not SI base units."""
    def process(name, *args):
        return run_model(cache_dir, tmp_path / f"{name}.json", script=CLASH,
                         args=(*args, *variant), hash_seed=hash_seed)

    plain, cold, warm = process("plain", "--plain"), process("cold"), process("warm")
    assert warm["counters"]["data_hits"] > 0
    assert warm["counters"].get("data_stored", 0) == 0, "the warm process stored something"

    assert len(plain["warnings"]) == 2
    assert "with the value 0.01 * farad / (meter ** 2)." in plain["warnings"][0]
    assert "with the value 1. * ohm * meter." in plain["warnings"][1]
    for process in (cold, warm):
        assert process["warnings"] == plain["warnings"]
        assert process["units"] == plain["units"]
