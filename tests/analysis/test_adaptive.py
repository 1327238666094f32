"""Adaptive precision reaches the verdicts of the exact audit, on synthetic tables and on tiny models."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import random_ids, tiny_model

from pytest_swapkl.analysis import adaptive
from pytest_swapkl import engine
from pytest_swapkl.analysis.agreement import Tolerances
from pytest_swapkl.analysis.audit import summarize
from pytest_swapkl.engine.measurement import Measurement, ProbeStats
from pytest_swapkl.engine.probes import audit_probes, interchange, parse_pairs, removal, replacement

RESAMPLES = 300
STRICT = adaptive.Tests(Tolerances(rank=2, rank_is_fraction=False, min_spearman=0.8, min_jaccard=0.5), prune_k=2,
                        prune_methods=("replacement", "interchange", "removal"))


def outcomes(measurement: Measurement, pairs, n_layers: int, tests: adaptive.Tests) -> dict:
    """Every generated test's verdict (and the pruning sets) as the plugin would judge this measurement."""
    audit = summarize(measurement, pairs, n_layers, tests.replacement_reduce, RESAMPLES, 0)
    judge = adaptive._Judge(
        [adaptive.PairProbes(i, j, replacement(i, j, n_layers), replacement(j, i, n_layers),
                             interchange(i, j, n_layers)) for i, j in pairs],
        [removal([layer], n_layers) for layer in range(n_layers)], measurement, audit, tests, n_layers)
    return judge.outcomes_now()


def synthetic_table(seed: int, n_layers: int, n_sequences: int) -> dict:
    """Per probe and sequence, a KL: a probe's true mean times sequence-level noise, some probes nearly tied."""
    rng = np.random.default_rng(seed)
    probes = audit_probes(parse_pairs("all", n_layers), n_layers)
    means = np.exp(rng.uniform(-4, 0, len(probes)))
    ties = rng.choice(len(probes), size=len(probes) // 4, replace=False)
    means[ties] = means[ties[0]] * (1 + rng.normal(0, 0.02, len(ties)))  # a cluster of near-ties
    spread = rng.uniform(0.05, 0.6, len(probes))
    shared = rng.normal(0, 0.3, n_sequences)  # hard sequences are hard for every probe
    return {probe: mean * np.exp(s * rng.normal(0, 1, n_sequences) + shared)
            for probe, mean, s in zip(probes, means, spread)}


def synthetic_slices(table: dict, n_sequences: int):
    def measure_slice(probes, start, stop, progress):
        stats = {p: ProbeStats(p, table[p][start:stop], np.zeros(stop - start)) for p in probes if p in table}
        return Measurement("fast", stop - start, 8, np.zeros(stop - start), stats)

    return measure_slice


@settings(max_examples=25, deadline=None, derandomize=True)  # a heuristic rule: keep CI deterministic
@given(seed=st.integers(0, 2**32 - 1), n_layers=st.integers(3, 7), n_sequences=st.sampled_from([16, 32, 64]))
def test_adaptive_verdicts_equal_exact_on_synthetic_audits(seed, n_layers, n_sequences):
    table = synthetic_table(seed, n_layers, n_sequences)
    pairs = parse_pairs("all", n_layers)
    exact = Measurement("fast", n_sequences, 8, np.zeros(n_sequences),
                        {p: ProbeStats(p, values, np.zeros(n_sequences)) for p, values in table.items()})
    result = adaptive.sample_adaptively(synthetic_slices(table, n_sequences), n_sequences, 8, pairs, n_layers,
                                        STRICT, n_resamples=RESAMPLES)
    assert outcomes(result.measurement, pairs, n_layers, STRICT) == outcomes(exact, pairs, n_layers, STRICT)
    for probe, count in result.sequences.items():  # each probe's numbers are a prefix of its exact numbers
        assert np.array_equal(result.measurement[probe].kl_per_seq, table[probe][:count])


def test_clearly_separated_probes_stop_after_the_first_slice():
    n_layers, n_sequences = 5, 64
    probes = audit_probes(parse_pairs("all", n_layers), n_layers)
    rng = np.random.default_rng(0)
    table = {p: (k + 1) * np.exp(0.01 * rng.normal(0, 1, n_sequences)) for k, p in enumerate(probes)}
    result = adaptive.sample_adaptively(synthetic_slices(table, n_sequences), n_sequences, 8,
                                        parse_pairs("all", n_layers), n_layers, adaptive.Tests(),
                                        n_resamples=RESAMPLES)
    assert set(result.sequences.values()) == {adaptive.schedule(n_sequences)[0]}
    assert len(result.rounds) == 1 and result.rounds[0]["unsettled_tests"] == []


def test_schedule_starts_small_and_doubles_to_the_end():
    assert adaptive.schedule(64) == [4, 8, 16, 32, 64]
    assert adaptive.schedule(32) == [4, 8, 16, 32]
    assert adaptive.schedule(3) == [3]
    assert adaptive.schedule(200) == [13, 26, 52, 104, 200]


@pytest.mark.parametrize("family", ["llama", "gpt_neox"])
@pytest.mark.parametrize("tests", [adaptive.Tests(), STRICT], ids=["default", "strict"])
def test_adaptive_verdicts_equal_exact_on_tiny_models(family, tests):
    model = tiny_model(family)
    n_layers = model.config.num_hidden_layers
    pairs = parse_pairs("all", n_layers)
    ids = random_ids(32, 16)
    exact = engine.measure(model, ids, audit_probes(pairs, n_layers), batch_size=8)
    result = adaptive.measure_adaptive(model, ids, pairs, n_layers, tests, n_resamples=RESAMPLES, batch_size=8,
                                       notice=lambda _: None)
    assert outcomes(result.measurement, pairs, n_layers, tests) == outcomes(exact, pairs, n_layers, tests)
    assert result.measurement.base_ppl == pytest.approx(exact.base_ppl, rel=1e-6)  # base over all sequences
    info = result.to_json(summarize(result.measurement, pairs, n_layers, n_resamples=RESAMPLES))
    assert info["probe_sequences"] <= info["exact_probe_sequences"]
    assert all(entry["interval_width"] >= 0 for entry in info["probes"].values())
