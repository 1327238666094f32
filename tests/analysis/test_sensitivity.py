"""analysis/sensitivity.py: each cheap factor's numbers against a direct recomputation from the per-sequence table
(on the demo model and a tiny random model), the dtype offset against its definition, and the factor names."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from pytest_swapkl import engine
from pytest_swapkl.analysis import sensitivity
from pytest_swapkl.analysis.agreement import Tolerances, pair_verdicts
from pytest_swapkl.analysis.audit import summarize
from pytest_swapkl.analysis.pair_rules import PAIR_RULES, SetRule
from pytest_swapkl.analysis.sensitivity import Context, parse_factors, sensitivity_section
from pytest_swapkl.audit.results import audit_document
from pytest_swapkl.engine.measurement import Measurement, ProbeStats
from pytest_swapkl.engine.probes import audit_probes, interchange, parse_pairs, replacement
from pytest_swapkl.inputs.data import load_calibration
from pytest_swapkl.inputs.loading import load_model

RESAMPLES = 200


def _context(model, ids, n_layers, pairs_spec="all"):
    pairs = parse_pairs(pairs_spec, n_layers)
    measurement = engine.measure(model, ids, audit_probes(pairs, n_layers), path="reference")
    audit = summarize(measurement, pairs, n_layers, n_resamples=RESAMPLES, seed=0)
    return Context(audit, pairs, n_layers, Tolerances(), RESAMPLES, 0, dtype="float32", seq_len=ids.shape[1])


@pytest.fixture(scope="module")
def demo(one_thread):
    loaded = load_model("demo", device="cpu")
    ids = load_calibration("demo", loaded.tokenizer, tokens=2048, seq_len=128, seed=0).input_ids
    return _context(loaded.model, ids, loaded.n_layers)


@pytest.fixture(scope="module")
def tiny(one_thread):
    import torch
    from tiny_models import tiny_model

    model = tiny_model("llama", n_layers=5)
    ids = torch.randint(0, model.config.vocab_size, (12, 16), generator=torch.Generator().manual_seed(3))
    return _context(model, ids, 5)


def paper_greedy(pairs, distances, k, spacing):
    """The paper's Table 14 rule written out: per layer its smallest distance, ascending, none within spacing."""
    scores: dict = {}
    for (i, j), d in zip(pairs, distances):
        scores[i], scores[j] = min(scores.get(i, np.inf), d), min(scores.get(j, np.inf), d)
    taken = []
    for layer, _ in sorted(sorted(scores.items()), key=lambda item: item[1]):
        if len(taken) < k and all(abs(layer - other) > spacing for other in taken):
            taken.append(layer)
    return sorted(taken)


def direct_distances(context, rows=None):
    """R (max of the two directions) and I of every pair, as means over ``rows`` of the per-sequence KL."""
    m, n = context.audit.measurement, context.n_layers
    rows = slice(None) if rows is None else rows
    mean = lambda probe: float(m[probe].kl_per_seq[rows].mean())  # noqa: E731
    r = [max(mean(replacement(i, j, n)), mean(replacement(j, i, n))) for i, j in context.pairs]
    return r, [mean(interchange(i, j, n)) for i, j in context.pairs]


def direct_items(context, rows=None):
    """The top-k sets and the Spearman verdict recomputed without the audit's code."""
    r, i = direct_distances(context, rows)
    items = {}
    for t in context.audit.top_k:
        items[f"top-{t.k} R"] = paper_greedy(context.pairs, r, t.k, 1)
        items[f"top-{t.k} I"] = paper_greedy(context.pairs, i, t.k, 1)
    items["Spearman"] = bool(spearmanr(r, i)[0] >= Tolerances().min_spearman)
    return items


@pytest.mark.parametrize("which", ["demo", "tiny"])
def test_rules_rows_are_each_rule_applied_to_the_measured_distances(which, request):
    context = request.getfixturevalue(which)
    r, i = direct_distances(context)
    rows = sensitivity.rules_factor(context)["rows"]
    others = [name for name in PAIR_RULES if name != "min-partner"]
    assert {row["label"] for row in rows} == {*(f"min-partner (spacing {s})" for s in (0, 1, 2)), *others}
    for row in rows:
        name, k = row["rule"]["name"], row["k"]
        if name == "min-partner":
            expected = [paper_greedy(context.pairs, d, k, row["rule"]["spacing"]) for d in (r, i)]
        else:
            expected = [PAIR_RULES.get(name)(context.pairs, d, k) for d in (r, i)]
        assert [row["replacement_layers"], row["interchange_layers"]] == expected
        jaccard = len(set(expected[0]) & set(expected[1])) / len(set(expected[0]) | set(expected[1]))
        assert row["jaccard"] == pytest.approx(jaccard)
        reference = next(t for t in context.audit.top_k if t.k == k).jaccard >= 0.33
        assert row["flips"] == ((jaccard >= 0.33) != reference)
        assert row["audit_rule"] == (row["rule"] == SetRule().record())


@pytest.mark.parametrize("which", ["demo", "tiny"])
def test_draw_and_size_shares_are_the_share_of_draws_that_state_the_full_verdict(which, request):
    context = request.getfixturevalue(which)
    n = context.audit.measurement.n_sequences
    full = direct_items(context)
    found = sensitivity_section(context, ("draws", "size"))
    halves = [direct_items(context, rows) for split in range(4) for rows in sensitivity.split_halves(n, split, 0)]
    for key, value in full.items():
        assert found["draws"]["stays"][key] == pytest.approx(np.mean([h[key] == value for h in halves]))
        agree = [halves[2 * s][key] == halves[2 * s + 1][key] for s in range(4)]
        assert found["draws"]["halves_agree"][key] == pytest.approx(np.mean(agree))
    for row in found["size"]["rows"]:
        size = int(round(row["share"] * n))
        draws = [direct_items(context, sensitivity.draw_rows(n, size, d, 0)) for d in range(8)] if size < n else [full]
        for key, value in full.items():
            assert row["stays"][key] == pytest.approx(np.mean([d[key] == value for d in draws]))


def test_the_divergent_pairs_are_the_plugins_failing_rank_cases(demo):
    document = audit_document(demo.audit, {}, {}, {}, 0.0)
    failing = [f"L{v.i:02d}-L{v.j:02d}" for v in pair_verdicts(document, Tolerances()) if not v.passed]
    assert sensitivity.verdicts(demo.audit, Tolerances())["divergent"] == failing


def test_halves_are_disjoint_and_cover_every_sequence():
    first, second = sensitivity.split_halves(17, 2, 5)
    assert len(first) == 8 and sorted([*first, *second]) == list(range(17))
    assert list(sensitivity.draw_rows(17, 4, 1, 5)) == sorted(sensitivity.draw_rows(17, 4, 1, 5))


def _table(kl_rows):
    """A measurement whose probe p has per-sequence KL kl_rows[p]."""
    probes = {replacement(0, p + 1, 9): ProbeStats(replacement(0, p + 1, 9), np.asarray(row, float),
                                                  np.zeros(len(row))) for p, row in enumerate(kl_rows)}
    return Measurement("reference", len(kl_rows[0]), 8, np.zeros(len(kl_rows[0])), probes)


def test_the_dtype_offset_is_the_mean_relative_offset_with_a_paired_interval():
    rng = np.random.default_rng(0)
    high = rng.uniform(0.5, 1.5, size=(3, 40))
    low = high * np.array([[1.01], [1.02], [1.03]])  # every probe 1-3% above float32, on every sequence
    offset = sensitivity.relative_offset(_table(low), _table(high), 300, 0)
    assert offset["mean_relative"] == pytest.approx(0.02) and offset["share_above"] == 1.0
    assert offset["ci"] == pytest.approx([0.02, 0.02])  # paired: the same sequences cancel exactly
    assert (offset["min_relative"], offset["max_relative"]) == pytest.approx((0.01, 0.03))
    noisy = high * (1 + rng.normal(0.02, 0.05, size=high.shape))
    offset = sensitivity.relative_offset(_table(noisy), _table(high), 300, 0)
    direct = np.mean(noisy.mean(1) / high.mean(1) - 1)
    assert offset["mean_relative"] == pytest.approx(direct) and offset["ci"][0] < direct < offset["ci"][1]


def test_dtype_measures_again_through_the_context_and_reports_flips(tiny):
    calls = []

    def remeasure(what, value):  # a stand-in for the runner's: the audit's own table, scaled
        calls.append((what, value))
        return _scaled(tiny.audit.measurement, 1.5)

    context = Context(**{**tiny.__dict__, "remeasure": remeasure})
    found = sensitivity.dtype_factor(context)
    assert calls == [("dtype", "bfloat16")]
    assert found["offset"]["mean_relative"] == pytest.approx(0.5)
    assert found["flips"] == []  # a common scale moves no set, rank or verdict


def _scaled(measurement, factor):
    probes = {p: ProbeStats(p, s.kl_per_seq * factor, s.nll_per_seq) for p, s in measurement.probes.items()}
    return Measurement(measurement.path, measurement.n_sequences, measurement.seq_len, measurement.base_nll_per_seq,
                       probes)


def test_factor_names_parse_and_an_unknown_one_is_named():
    assert parse_factors("rules, draws,size") == ("rules", "draws", "size")
    with pytest.raises(ValueError, match="unknown sensitivity factor 'beams': use rules, beam, draws, size, "):
        parse_factors("rules,beams")


def test_the_beam_factor_names_a_beam_only_where_the_audit_runs_one():
    context = Context.__new__(Context)
    context.prune_budget = ()
    assert sensitivity.beam_factor(context)["uses_beam"] is False
    context.prune_budget = ("interchange:beam:ppl:0.1:2", "replacement:greedy:ppl:0.1:2")
    found = sensitivity.beam_factor(context)
    assert found["uses_beam"] is True and found["budgets"] == ["interchange:beam:ppl:0.1:2"]


def test_a_bare_option_names_exactly_the_factors_that_measure_nothing():
    from pytest_swapkl.options import DEFAULT_SENSITIVITY

    assert parse_factors(DEFAULT_SENSITIVITY) == sensitivity.free_factors() == ("rules", "beam", "draws", "size")


def test_an_adaptive_table_skips_the_factors_that_read_whole_rows(tiny):
    measurement = tiny.audit.measurement
    probe = next(iter(measurement.probes))
    short = {**measurement.probes, probe: ProbeStats(probe, measurement[probe].kl_per_seq[:4],
                                                     measurement[probe].nll_per_seq[:4])}
    audit = type(tiny.audit)(**{**tiny.audit.__dict__, "measurement": Measurement(
        measurement.path, measurement.n_sequences, measurement.seq_len, measurement.base_nll_per_seq, short)})
    found = sensitivity_section(Context(**{**tiny.__dict__, "audit": audit}), ("rules", "draws", "size", "dtype"))
    assert all("adaptive audit" in found[name]["skipped"] for name in ("draws", "size", "dtype"))
    assert found["rules"]["rows"]
