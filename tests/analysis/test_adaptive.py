"""Adaptive precision settles population verdicts (analysis/population.py): its error rate against a known
truth, the tie it must measure to the end, determinism, and the audit on tiny models."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl.analysis import adaptive, population
from pytest_swapkl.analysis.audit import summarize
from pytest_swapkl.engine.measurement import Measurement, ProbeStats
from pytest_swapkl.engine.probes import audit_probes, interchange, parse_pairs

RESAMPLES = 300
ROOT = Path(__file__).resolve().parents[2]


def population_means(seed: int, n_layers: int) -> dict:
    """Each probe's population mean, spread over two orders of magnitude, a few nearly tied."""
    rng = np.random.default_rng(seed)
    probes = audit_probes(parse_pairs("all", n_layers), n_layers)
    means = np.exp(rng.uniform(-4, 0, len(probes)))
    close = rng.choice(len(probes), size=3, replace=False)
    means[close[1:]] = means[close[0]] * (1 + rng.normal(0, 0.05, 2))
    return dict(zip(probes, means))


def iid_draws(means: dict, n_sequences: int, seed: int) -> dict:
    """Sequences drawn i.i.d. from the population: each probe's mean times a shared and an own log-normal
    factor of mean 1 (hard sequences are hard for every probe)."""
    rng = np.random.default_rng([seed, 7])
    shared = np.exp(rng.normal(0, 0.3, n_sequences) - 0.3 ** 2 / 2)
    return {p: m * shared * np.exp(rng.normal(0, 0.2, n_sequences) - 0.2 ** 2 / 2) for p, m in means.items()}


def synthetic_slices(table: dict, n_sequences: int, seed: int = 0):
    """measure_slice over positions of the permuted sequences, as measure_adaptive hands them to the engine."""
    order = adaptive.permutation(n_sequences, seed)

    def measure_slice(probes, start, stop, progress):
        rows = order[start:stop]
        stats = {p: ProbeStats(p, table[p][rows], np.zeros(stop - start)) for p in probes if p in table}
        return Measurement("fast", stop - start, 8, np.zeros(stop - start), stats)

    return measure_slice


def truth_of(means: dict, pairs, n_layers: int, tests: adaptive.Tests) -> dict:
    rows = adaptive.row_probes(pairs, n_layers)
    values = np.array([means[p] for p in rows])[:, None]
    return tests.decisions(pairs, n_layers).estimates(values, np.ones(len(rows), dtype=np.int64))


@pytest.mark.parametrize("alpha", [0.5, 0.2])
def test_the_rate_of_settled_verdicts_unlike_the_population_is_at_most_alpha(alpha):
    """The guarantee, measured against a known truth (the population means): the share of adaptive audits with
    any settled verdict unlike the population's. A large alpha makes the rule stop early often, so a rule that
    broke its guarantee would show here."""
    n_layers, n_sequences, runs = 5, 64, 24
    tests = adaptive.Tests(prune_k=2, alpha=alpha)
    pairs = parse_pairs("all", n_layers)
    wrong, stopped_early = 0, 0
    for run in range(runs):
        means = population_means(run % 6, n_layers)
        truth = truth_of(means, pairs, n_layers, tests)
        result = adaptive.sample_adaptively(synthetic_slices(iid_draws(means, n_sequences, run), n_sequences, run),
                                            n_sequences, 8, pairs, n_layers, tests, seed=run)
        wrong += any(result.settled[name] and result.verdicts[name] != truth[name] for name in truth)
        stopped_early += sum(result.sequences.values()) < n_sequences * len(result.sequences)
    assert wrong / runs <= alpha
    assert stopped_early >= runs // 2  # not vacuous: the rule did stop early


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_sequences=st.sampled_from([16, 32, 64]))
def test_a_tie_a_set_rests_on_is_measured_to_the_end_and_left_unsettled(seed, n_sequences):
    """Two pairs with identical interchange distances on every sequence, below all others: which layer the 1-layer
    interchange set holds rests on that tie, so both are measured on every sequence and the set is not settled."""
    n_layers = 4
    table = iid_draws(population_means(seed % 1000, n_layers), n_sequences, seed)
    pairs = parse_pairs("all", n_layers)
    first, second = interchange(*pairs[0], n_layers), interchange(*pairs[2], n_layers)  # (0, 1) and (0, 3)
    smallest = min(values.min() for values in table.values())
    table[first] = table[second] = np.full(n_sequences, smallest / 10) * (1 + np.arange(n_sequences) % 2)
    result = adaptive.sample_adaptively(synthetic_slices(table, n_sequences, seed % 97), n_sequences, 8, pairs,
                                        n_layers, adaptive.Tests(), seed=seed % 97)
    assert result.sequences[first] == result.sequences[second] == n_sequences
    assert not result.settled["set_I_k1"]


def test_probes_hold_the_seeded_orders_first_sequences():
    n_layers, n_sequences, seed = 5, 64, 3
    table = iid_draws(population_means(seed, n_layers), n_sequences, seed)
    pairs = parse_pairs("all", n_layers)
    result = adaptive.sample_adaptively(synthetic_slices(table, n_sequences, seed), n_sequences, 8, pairs, n_layers,
                                        adaptive.Tests(), seed=seed)
    order = adaptive.permutation(n_sequences, seed)
    for probe, count in result.sequences.items():  # the seeded order's first sequences; full ones in order
        expected = table[probe] if count == n_sequences else table[probe][order[:count]]
        assert np.array_equal(result.measurement[probe].kl_per_seq, expected)


def test_clearly_separated_probes_stop_at_the_pilot():
    n_layers, n_sequences = 4, 256
    probes = audit_probes(parse_pairs("all", n_layers), n_layers)
    rng = np.random.default_rng(0)
    table = {p: 3.0 ** k * (1 + 0.01 * rng.uniform(-1, 1, n_sequences)) for k, p in enumerate(probes)}
    result = adaptive.sample_adaptively(synthetic_slices(table, n_sequences), n_sequences, 8,
                                        parse_pairs("all", n_layers), n_layers, adaptive.Tests())
    assert set(result.sequences.values()) == {adaptive.PILOT}
    assert result.rounds[-1]["unsettled"] == [] and all(result.settled.values())


def test_the_order_of_the_sequences_is_a_seeded_permutation():
    assert sorted(adaptive.permutation(50, 3)) == list(range(50))
    assert np.array_equal(adaptive.permutation(50, 3), adaptive.permutation(50, 3))
    assert not np.array_equal(adaptive.permutation(50, 3), adaptive.permutation(50, 4))
    assert not np.array_equal(adaptive.permutation(50, 3), np.arange(50))


def test_schedule_starts_at_the_pilot_and_grows_to_the_end():
    assert adaptive.schedule(64) == [8, 12, 18, 27, 40, 60, 64]
    assert adaptive.schedule(3) == [3]
    assert population.schedule(20, 8, 2.0) == [8, 16, 20]


def _replay_module():
    path = ROOT / "benchmarks" / "statistics" / "adaptive_population_replay.py"
    spec = importlib.util.spec_from_file_location("adaptive_population_replay", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_replay_is_deterministic():
    """benchmarks/statistics/adaptive_population_replay.py: each run is seeded by its index alone."""
    replay = _replay_module()
    n_layers, n_sequences = 5, 32
    pairs = parse_pairs("all", n_layers)
    rows = adaptive.row_probes(pairs, n_layers)
    draws = iid_draws(population_means(1, n_layers), n_sequences, 1)
    table = np.array([draws[p] for p in rows])
    decisions = adaptive.Tests().decisions(pairs, n_layers)
    truth = decisions.estimates(table, np.full(len(rows), n_sequences))
    for seed in (0, 5):
        assert replay._order_run((decisions, table, truth, seed, 8)) == replay._order_run(
            (decisions, table, truth, seed, 8))
        assert replay._population_run((decisions, table, seed, 8)) == replay._population_run(
            (decisions, table, seed, 8))


@pytest.mark.parametrize("family", ["llama", "gpt_neox"])
def test_the_adaptive_audit_on_tiny_models(family):
    model = tiny_model(family)
    n_layers = model.config.num_hidden_layers
    pairs = parse_pairs("all", n_layers)
    ids = random_ids(32, 16)
    exact = engine.measure(model, ids, audit_probes(pairs, n_layers), batch_size=8)
    result = adaptive.measure_adaptive(model, ids, pairs, n_layers, adaptive.Tests(), n_resamples=RESAMPLES,
                                       batch_size=8, notice=lambda _: None)
    assert result.measurement.base_ppl == pytest.approx(exact.base_ppl, rel=1e-6)  # base over all sequences
    for probe, count in result.sequences.items():  # the engine's numbers on the sequences measured
        order = adaptive.permutation(32, 0)[:count] if count < 32 else np.arange(32)
        assert np.allclose(result.measurement[probe].kl_per_seq, exact[probe].kl_per_seq[order], rtol=1e-4,
                           atol=1e-7)
    info = result.to_json(summarize(result.measurement, pairs, n_layers, n_resamples=RESAMPLES))
    assert info["probe_sequences"] <= info["exact_probe_sequences"]
    assert set(info["population_verdicts"]) == set(result.settled)
