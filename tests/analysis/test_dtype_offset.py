"""A reduced-dtype audit's systematic offset against float32: measured on an independent float32 copy, carried
into every KL interval by the stated rule, and nothing at all for a float32 audit."""

import copy

import numpy as np
import pytest
import torch
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl.analysis import stats
from pytest_swapkl.analysis.audit import summarize
from pytest_swapkl.analysis.dtype_offset import (
    carried_audit,
    carry_interval,
    measure_dtype_offset,
    offset_interval,
    spread_probes,
)
from pytest_swapkl.analysis.dtype_offset_text import offset_line
from pytest_swapkl.engine.probes import audit_probes, parse_pairs

pytestmark = pytest.mark.usefixtures("one_thread")
PAIRS = parse_pairs("all", 4)


def audit_of(model, ids):
    measurement = engine.measure(model, ids, audit_probes(PAIRS, 4))
    return measurement, summarize(measurement, PAIRS, 4, n_resamples=200, seed=0)


def estimates(audit):
    return [getattr(p, name) for p in audit.pairs for name in ("replacement_ij", "replacement_ji", "interchange",
                                                                 "replacement")] + [r.kl for r in audit.removals]


def test_a_bfloat16_audit_is_measured_against_float32_and_every_kl_interval_carried_by_the_rule():
    model, ids = tiny_model("llama"), random_ids(8, 12)
    narrow = copy.deepcopy(model).to(torch.bfloat16)
    measurement, audit = audit_of(narrow, ids)
    offset = measure_dtype_offset(narrow, ids, measurement, n_probes=6, n_sequences=4, n_resamples=200)
    assert (offset.audit_dtype, offset.reference_dtype, offset.carried) == ("bfloat16", "float32", True)
    assert next(narrow.parameters()).dtype == torch.bfloat16  # copied, never cast in place
    # By hand: the same probes and rows on a float32 copy of the bfloat16 weights (the arithmetic's offset).
    rows = np.array(offset.sequences)
    probes = spread_probes(measurement, 6)
    wide = engine.measure(copy.deepcopy(narrow).float(), ids[torch.from_numpy(rows)], probes)
    for entry, probe in zip(offset.probes, probes):
        assert entry["probe"] == probe.name
        assert entry["audit"] == pytest.approx(measurement[probe].kl_per_seq[rows].mean(), rel=1e-9)
        assert entry["reference"] == pytest.approx(wide[probe].kl, rel=1e-9)
        assert entry["relative"] == pytest.approx(entry["audit"] / entry["reference"] - 1, rel=1e-6, abs=1e-9)
    assert offset.relative == pytest.approx(np.mean([e["relative"] for e in offset.probes]))
    assert offset.low <= offset.relative <= offset.high
    carried = carried_audit(audit, offset)
    for before, after in zip(estimates(audit), estimates(carried)):  # the rule, exactly; the estimate as measured
        assert after.value == before.value
        assert after.low == before.low / (1 + offset.high) and after.high == before.high / (1 + offset.low)
    assert carried.spearman == audit.spearman and carried.intervals == audit.intervals  # order-only: unchanged
    record = offset.to_json()
    assert record["carried"] and record["ci"] == [offset.low, offset.high] and "1 + offset_high" in record["rule"]
    assert offset_line(record).startswith("bfloat16 vs float32: systematic offset")


def test_a_float32_audit_has_offset_zero_and_its_intervals_unchanged():
    model, ids = tiny_model("llama"), random_ids(4, 12)
    measurement, audit = audit_of(model, ids)
    offset = measure_dtype_offset(model, ids, measurement)
    assert (offset.relative, offset.low, offset.high, offset.carried) == (0.0, 0.0, 0.0, False)
    assert carried_audit(audit, offset) is audit
    assert offset.to_json()["rule"].startswith("none") and offset_line(offset.to_json()) is None


def test_the_carried_interval_covers_the_float32_mean_where_the_measured_one_does_not():
    """A known truth shaped like issue 34's study models: every probe 1.5% above float32 (a 0.1% spread between
    probes), per-pair sampling error about 1%. The audit's own intervals hold its bfloat16 means and mostly miss
    float32's; the carried ones, with the offset measured on 16 probes x 8 sequences as the audit does, hold them."""
    rng = np.random.default_rng(0)
    n_probes, n_sequences = 40, 400
    float32 = np.exp(rng.uniform(-4, 0, n_probes))[:, None] * rng.lognormal(0, 0.1, (n_probes, n_sequences))
    bfloat16 = float32 * (1.015 + rng.normal(0, 0.001, (n_probes, 1))) * rng.lognormal(0, 0.002, float32.shape)
    sample = rng.choice(n_probes, 16, replace=False), rng.choice(n_sequences, 8, replace=False)
    delta, low, high, _ = offset_interval(bfloat16[sample[0]][:, sample[1]], float32[sample[0]][:, sample[1]])
    assert low < 0.015 < high
    lows, highs = stats.intervals(stats.bootstrap_means(bfloat16.T, stats.bootstrap_indices(n_sequences, 1000, 0)))
    truth = float32.mean(1)
    measured = (lows <= truth) & (truth <= highs)
    carried_low, carried_high = carry_interval(lows, highs, low, high)
    carried = (carried_low <= truth) & (truth <= carried_high)
    assert measured.mean() < 0.5 and carried.all()
