"""sobuild against Brian2's own targets on Brian2's examples CUBA, COBAHH and STDP.

Where the target draws no random number (``--fixed``: initial values, connections and input
spikes drawn with numpy up front) sobuild must give the reference's spikes exactly and its
recorded values to floating-point tolerance. Where the target draws them (the examples as
Brian2 ships them), a seeded sobuild run must be reproducible and statistically equal to the
reference: rates and synapse counts within a few percent.

The numpy target is the reference in CI (it compiles nothing); the cython reference of CUBA
runs in CI too, the others are ``slow`` (cython's compilation of each model takes a minute).
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.brian

# Short enough for CI, long enough for thousands of spikes.
DURATIONS = {"cuba": "200ms", "cobahh": "50ms", "stdp": "2s", "one_neuron": "100ms"}
MODELS = ["cuba", "cobahh", "stdp"]


def references(model: str) -> list:
    """numpy always; cython in CI for CUBA, marked slow for the others."""
    marks = () if model in ("cuba", "one_neuron") else (pytest.mark.slow,)
    return ["numpy", pytest.param("cython", marks=marks)]


FIXED_CASES = [
    pytest.param(model, ref, id=f"{model}-{getattr(ref, 'values', [ref])[0]}")
    for model in [*MODELS, "one_neuron"]
    for ref in references(model)
]


def relative_difference(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


@pytest.mark.parametrize(("model", "reference"), FIXED_CASES)
def test_fixed_inputs_give_the_references_spikes(run_example, model, reference):
    duration = DURATIONS[model]
    ref = run_example(model, reference, duration, fixed=True)
    ours = run_example(model, "sobuild", duration, fixed=True)

    assert ours.result["n_spikes"] > 0, "the model should spike: nothing was compared"
    np.testing.assert_array_equal(ours.spikes(), ref.spikes())
    if model == "cobahh":
        np.testing.assert_array_equal(ours.arrays["trace_t"], ref.arrays["trace_t"])
        np.testing.assert_allclose(ours.arrays["trace_v"], ref.arrays["trace_v"], rtol=1e-6, atol=1e-9)
    if model == "stdp":
        np.testing.assert_array_equal(ours.arrays["out_t"], ref.arrays["out_t"])
        np.testing.assert_allclose(ours.arrays["w"], ref.arrays["w"], rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(ours.arrays["mon_w"], ref.arrays["mon_w"], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("model", MODELS)
def test_seeded_random_run_is_reproducible(run_example, model):
    duration = DURATIONS[model]
    first = run_example(model, "sobuild", duration, seed=11)
    again = run_example(model, "sobuild", duration, seed=11, fresh=True)
    other = run_example(model, "sobuild", duration, seed=12)

    np.testing.assert_array_equal(again.spikes(), first.spikes())
    assert again.result["synapses"] == first.result["synapses"]
    if model == "stdp":
        np.testing.assert_array_equal(again.arrays["w"], first.arrays["w"])
    # ... and the seed matters: another seed draws other connections and other spikes
    assert not np.array_equal(other.spikes(), first.spikes())


# Expected synapse counts of the examples' connect() calls (p=0.02).
EXPECTED_SYNAPSES = {
    "cuba": [3200 * 4000 * 0.02, 800 * 4000 * 0.02],
    "cobahh": [3200 * 4000 * 0.02, 800 * 4000 * 0.02],
    "stdp": [1000],
}
RATE_TOLERANCE = {"cuba": 0.10, "cobahh": 0.05, "stdp": 0.03}


@pytest.mark.parametrize(
    ("model", "reference"),
    [pytest.param(m, r, id=f"{m}-{getattr(r, 'values', [r])[0]}") for m in MODELS
     for r in references(m)],
)
def test_random_run_is_statistically_the_references(run_example, model, reference):
    duration = DURATIONS[model]
    ref = run_example(model, reference, duration, seed=21)
    ours = run_example(model, "sobuild", duration, seed=21)

    for n_ours, n_ref, expected in zip(
        ours.result["synapses"], ref.result["synapses"], EXPECTED_SYNAPSES[model]
    ):
        assert relative_difference(n_ours, expected) < 0.02, (n_ours, expected)
        assert relative_difference(n_ours, n_ref) < 0.03, (n_ours, n_ref)
    rate, ref_rate = ours.result["rate_hz"], ref.result["rate_hz"]
    assert relative_difference(rate, ref_rate) < RATE_TOLERANCE[model], (rate, ref_rate)
    if model == "stdp":
        # the input rate is 15 Hz; the weights start uniform in [0, gmax]
        assert abs(rate - 15.0) < 0.5
        assert abs(ours.result["mean_w_over_gmax"] - ref.result["mean_w_over_gmax"]) < 0.05
