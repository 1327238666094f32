"""The noise floor is measured: the audit's arithmetic against a wider-dtype reference, on its smallest probes."""

import copy

import numpy as np
import pytest
import torch
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl.analysis.noise import measure_noise_floor, smallest_probes
from pytest_swapkl.engine.probes import audit_probes, parse_pairs

pytestmark = pytest.mark.usefixtures("one_thread")


def audit_measurement(model, ids, path="fast"):
    probes = audit_probes(parse_pairs("adjacent", 4), 4)
    return engine.measure(model, ids, probes, path=path)


def test_the_floor_is_the_largest_difference_from_an_independent_wider_reference():
    model, ids = tiny_model("llama"), random_ids(6, 12)
    before = copy.deepcopy(model.state_dict())
    measurement = audit_measurement(model, ids)
    noise = measure_noise_floor(model, ids, measurement, n_probes=3, n_sequences=4, seed=0)
    # By hand: the same rows and probes, the reference semantics on a float64 copy.
    rows = torch.tensor(noise.sequences)
    probes = smallest_probes(measurement, 3)
    wide = engine.measure(copy.deepcopy(model).double(), ids[rows], probes, path="reference")
    by_hand = max(abs(float(measurement[p].kl_per_seq[rows.numpy()].mean()) - wide[p].kl) for p in probes)
    assert noise.floor == pytest.approx(by_hand, rel=1e-9, abs=1e-15)
    assert 0 < noise.floor < 1e-5  # float32 rounding is measured, not assumed to be 0
    assert (noise.audit_dtype, noise.reference_dtype) == ("float32", "float64") and len(noise.sequences) == 4
    assert [e["probe"] for e in noise.probes] == [p.name for p in probes]
    # The audit's model is untouched: same dtype, same weights.
    assert next(model.parameters()).dtype == torch.float32
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())


def test_the_smallest_probes_are_chosen_and_identities_never():
    model, ids = tiny_model("llama"), random_ids(3, 12)
    measurement = audit_measurement(model, ids)
    chosen = smallest_probes(measurement, 4)
    kls = sorted(measurement.kl(p) for p in measurement.probes if p.first_changed_slot() is not None)
    assert [measurement.kl(p) for p in chosen] == kls[:4]


def test_a_bfloat16_audit_is_compared_with_float32_and_its_floor_is_far_above_float32s():
    model, ids = tiny_model("llama"), random_ids(4, 12)
    float32 = measure_noise_floor(model, ids, audit_measurement(model, ids), n_probes=3)
    narrow = copy.deepcopy(model).to(torch.bfloat16)
    bfloat16 = measure_noise_floor(narrow, ids, audit_measurement(narrow, ids), n_probes=3)
    assert (bfloat16.audit_dtype, bfloat16.reference_dtype) == ("bfloat16", "float32")
    assert bfloat16.floor > 100 * float32.floor


def test_adaptive_style_partial_measurements_are_measured_again_on_the_sample():
    """Where the audit did not measure every sequence of a probe, its side is measured again on the rows."""
    model, ids = tiny_model("llama"), random_ids(6, 12)
    full = audit_measurement(model, ids)
    partial = copy.copy(full)
    partial.probes = {p: type(s)(p, s.kl_per_seq[:2], s.nll_per_seq[:2]) for p, s in full.probes.items()}
    a = measure_noise_floor(model, ids, full, n_probes=2, seed=3)
    b = measure_noise_floor(model, ids, partial, n_probes=2, seed=3)
    assert b.sequences == a.sequences and b.floor == pytest.approx(a.floor, rel=0.5, abs=1e-9)
    assert np.isfinite(b.floor)


def test_a_long_sample_is_cut_to_its_prefix_on_both_sides():
    """The default sample is a prefix of each drawn sequence: the audit's side is measured again on it."""
    model, ids = tiny_model("llama"), random_ids(3, 12)
    measurement = audit_measurement(model, ids)
    noise = measure_noise_floor(model, ids, measurement, n_probes=2, n_sequences=1, n_tokens=6)
    sample, probes = ids[torch.tensor(noise.sequences)][:, :6], smallest_probes(measurement, 2)
    ours = engine.measure(model, sample, probes)
    wide = engine.measure(copy.deepcopy(model).double(), sample, probes, path="reference")
    assert noise.floor == pytest.approx(max(abs(ours[p].kl - wide[p].kl) for p in probes), rel=1e-9, abs=1e-15)
    assert len(noise.sequences) == 1 and "on 1 x 6 tokens" in noise.reason
