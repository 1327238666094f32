"""Adaptive precision reaches the verdicts of the exact audit, on synthetic tables and on tiny models."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl.analysis import adaptive
from pytest_swapkl.analysis.agreement import Tolerances
from pytest_swapkl.analysis.audit import summarize
from pytest_swapkl.engine.measurement import Measurement, ProbeStats
from pytest_swapkl.engine.probes import audit_probes, interchange, parse_pairs

RESAMPLES = 300
STRICT = adaptive.Tests(Tolerances(rank=2, rank_is_fraction=False, min_spearman=0.8, min_jaccard=0.5), prune_k=2,
                        prune_methods=("replacement", "interchange", "removal"))


def outcomes(measurement: Measurement, pairs, n_layers: int, tests: adaptive.Tests) -> dict:
    """Every generated test's verdict (and the pruning sets) as the plugin would judge this measurement."""
    return adaptive.verdicts(measurement, pairs, n_layers, tests, RESAMPLES, 0)


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


def synthetic_slices(table: dict, n_sequences: int, seed: int = 0):
    """measure_slice over positions of the permuted sequences, as measure_adaptive hands them to the engine."""
    order = adaptive.permutation(n_sequences, seed)

    def measure_slice(probes, start, stop, progress):
        rows = order[start:stop]
        stats = {p: ProbeStats(p, table[p][rows], np.zeros(stop - start)) for p in probes if p in table}
        return Measurement("fast", stop - start, 8, np.zeros(stop - start), stats)

    return measure_slice


def exact_measurement(table: dict, n_sequences: int) -> Measurement:
    return Measurement("fast", n_sequences, 8, np.zeros(n_sequences),
                       {p: ProbeStats(p, values, np.zeros(n_sequences)) for p, values in table.items()})


def bounded_table(seed: int, n_layers: int, n_sequences: int) -> dict:
    """Per-sequence KLs within [0.5, 1.5] x a probe's mean (so within 4x the largest on any slice: the bound
    adaptive mode assumes holds), probes spread over two orders of magnitude, a few nearly tied."""
    rng = np.random.default_rng(seed)
    probes = audit_probes(parse_pairs("all", n_layers), n_layers)
    means = np.exp(rng.uniform(-4, 0, len(probes)))
    close = rng.choice(len(probes), size=3, replace=False)
    means[close[1:]] = means[close[0]] * (1 + rng.normal(0, 0.05, 2))
    shared = rng.uniform(-0.3, 0.3, n_sequences)  # hard sequences are hard for every probe
    return {probe: mean * (1 + np.clip(shared + rng.uniform(-0.2, 0.2, n_sequences), -0.5, 0.5))
            for probe, mean in zip(probes, means)}


@pytest.mark.parametrize("alpha", [0.5, 0.2])
def test_the_rate_of_verdicts_differing_from_exact_is_at_most_alpha(alpha):
    """The guarantee, measured: over random orders of the sequences (the seed), the share of adaptive audits
    with any verdict unlike the exact audit's, on tables where the bound holds. A large alpha makes the rule
    stop early often, so a rule that broke its guarantee would show here."""
    n_layers, n_sequences, runs = 4, 256, 24
    tests = adaptive.Tests(Tolerances(rank=1, rank_is_fraction=False, min_spearman=0.8, min_jaccard=0.5), prune_k=2,
                           prune_methods=("replacement", "interchange", "removal"), alpha=alpha)
    pairs = parse_pairs("all", n_layers)
    differing, stopped_early = 0, 0
    for run in range(runs):
        table = bounded_table(run % 6, n_layers, n_sequences)
        exact = adaptive.verdicts(exact_measurement(table, n_sequences), pairs, n_layers, tests, RESAMPLES, run)
        result = adaptive.sample_adaptively(synthetic_slices(table, n_sequences, run), n_sequences, 8, pairs,
                                            n_layers, tests, n_resamples=RESAMPLES, seed=run)
        got = adaptive.verdicts(result.measurement, pairs, n_layers, tests, RESAMPLES, run)
        differing += got != exact
        stopped_early += sum(result.sequences.values()) < n_sequences * len(result.sequences)
        assert not result.beyond_bound
    assert differing / runs <= alpha
    assert stopped_early >= runs // 2  # not vacuous: the rule did stop early


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_sequences=st.sampled_from([16, 32, 64, 128]),
       alpha=st.sampled_from([0.05, 0.5]))
def test_a_tie_the_verdict_depends_on_is_measured_to_the_end(seed, n_sequences, alpha):
    """Two pairs whose interchange distances are identical on every sequence, below all others: which layer
    the 1-layer interchange-guided set removes rests on that tie, so adaptive mode may not stop before both
    are measured on every sequence, however the rest looks."""
    n_layers = 4
    table = bounded_table(seed, n_layers, n_sequences)
    pairs = parse_pairs("all", n_layers)
    first, second = interchange(*pairs[0], n_layers), interchange(*pairs[1], n_layers)
    smallest = min(values.min() for values in table.values())
    table[first] = table[second] = np.full(n_sequences, smallest / 10)
    tests = adaptive.Tests(prune_k=1, prune_methods=("interchange",), alpha=alpha)
    result = adaptive.sample_adaptively(synthetic_slices(table, n_sequences, seed % 97), n_sequences, 8, pairs,
                                        n_layers, tests, n_resamples=100, seed=seed % 97)
    assert result.sequences[first] == result.sequences[second] == n_sequences


@pytest.mark.parametrize("seed", range(4))
def test_adaptive_verdicts_equal_exact_and_probes_hold_their_own_sequences(seed):
    n_layers, n_sequences = 5, 64
    table = synthetic_table(seed, n_layers, n_sequences)
    pairs = parse_pairs("all", n_layers)
    result = adaptive.sample_adaptively(synthetic_slices(table, n_sequences, seed), n_sequences, 8, pairs, n_layers,
                                        STRICT, n_resamples=RESAMPLES, seed=seed)
    exact = adaptive.verdicts(exact_measurement(table, n_sequences), pairs, n_layers, STRICT, RESAMPLES, seed)
    assert adaptive.verdicts(result.measurement, pairs, n_layers, STRICT, RESAMPLES, seed) == exact
    order = adaptive.permutation(n_sequences, seed)
    for probe, count in result.sequences.items():  # the seeded order's first sequences; full ones in order
        expected = table[probe] if count == n_sequences else table[probe][order[:count]]
        assert np.array_equal(result.measurement[probe].kl_per_seq, expected)


def test_clearly_separated_probes_stop_early():
    n_layers, n_sequences = 4, 256
    probes = audit_probes(parse_pairs("all", n_layers), n_layers)
    rng = np.random.default_rng(0)
    table = {p: 3.0 ** k * (1 + 0.01 * rng.uniform(-1, 1, n_sequences)) for k, p in enumerate(probes)}
    result = adaptive.sample_adaptively(synthetic_slices(table, n_sequences), n_sequences, 8,
                                        parse_pairs("all", n_layers), n_layers, adaptive.Tests(),
                                        n_resamples=RESAMPLES)
    assert sum(result.sequences.values()) <= n_sequences * len(probes) / 2
    assert result.rounds[-1]["unsettled_tests"] == []


def test_the_order_of_the_sequences_is_a_seeded_permutation():
    assert sorted(adaptive.permutation(50, 3)) == list(range(50))
    assert np.array_equal(adaptive.permutation(50, 3), adaptive.permutation(50, 3))
    assert not np.array_equal(adaptive.permutation(50, 3), adaptive.permutation(50, 4))
    assert not np.array_equal(adaptive.permutation(50, 3), np.arange(50))


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
