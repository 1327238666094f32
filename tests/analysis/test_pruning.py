"""Pruning validation: chosen sets, their really measured cost, and the set rules."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl.analysis import paired, pruning, stats
from pytest_swapkl.analysis.audit import summarize
from pytest_swapkl.analysis.pair_rules import PAIR_RULES, SetRule, layer_min_scores
from pytest_swapkl.engine.probes import audit_probes, parse_pairs, removal
from pytest_swapkl.inputs.data import load_calibration
from pytest_swapkl.inputs.loading import load_model

EXACT = 1e-12
SINGLE_SHOT = [m for m in pruning.ALL_METHODS if m != "sleb"]


def audit_of(model, ids, pairs_spec, n_layers):
    pairs = parse_pairs(pairs_spec, n_layers)
    return summarize(engine.measure(model, ids, audit_probes(pairs, n_layers)), pairs, n_layers, n_resamples=50)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def demo(one_thread):
    loaded = load_model("demo", device="cpu")
    ids = load_calibration("demo", loaded.tokenizer, tokens=4096, seq_len=128, seed=0).input_ids
    calibration, heldout = ids[:16], ids[16:]  # disjoint chunks of the demo held-out split, in stream order
    audit = audit_of(loaded.model, calibration, "all", loaded.n_layers)
    result = pruning.validate_pruning(loaded.model, calibration, audit, max_k=4, heldout_ids=heldout)
    return loaded.model, calibration, heldout, audit, result


def test_measured_cost_equals_an_independent_measurement(demo):
    model, calibration, heldout, _, result = demo
    independent = {}
    for budget in result.budgets:
        for method, layers in budget.sets.items():
            cost = budget.costs[method]
            if tuple(layers) not in independent:
                probe = removal(layers, result.n_layers)
                independent[tuple(layers)] = (engine.measure(model, calibration, [probe])[probe],
                                              engine.measure(model, heldout, [probe])[probe])
            alone, alone_heldout = independent[tuple(layers)]
            assert cost.kl == pytest.approx(alone.kl, abs=EXACT, rel=0), (method, layers)
            assert cost.ppl == pytest.approx(alone.ppl, abs=EXACT, rel=0), (method, layers)
            assert cost.heldout_kl == pytest.approx(alone_heldout.kl, abs=EXACT, rel=0), (method, layers)
            assert cost.heldout_ppl == pytest.approx(alone_heldout.ppl, abs=EXACT, rel=0), (method, layers)


def test_sleb_first_step_is_the_best_single_removal(demo):
    _, _, _, audit, result = demo
    first = result.budgets[0]
    for method in SINGLE_SHOT:
        assert first.costs["sleb"].kl <= first.costs[method].kl, method
    best_single = min(audit.removals, key=lambda r: (r.kl.value, r.layer))
    assert first.sets["sleb"] == first.sets["removal"] == [best_single.layer]
    assert first.costs["sleb"].kl == pytest.approx(best_single.kl.value, abs=EXACT, rel=0)


def test_hidden_state_baselines_by_hand(demo):
    model, calibration, _, _, result = demo
    states = engine.layer_inputs(model, calibration)
    layer, start, k = 3, 2, 3

    def cosines(a, b):
        return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1).flatten()

    influence = pruning.block_influence(states)
    assert influence[layer] == pytest.approx(1 - cosines(states[layer], states[layer + 1]).mean().item(), abs=1e-9)
    angle = pruning.angular_distances(states, k)
    by_hand = (torch.arccos(cosines(states[start], states[start + k]).clamp(-1, 1)) / math.pi).mean().item()
    assert len(angle) == result.n_layers - k + 1
    assert angle[start] == pytest.approx(by_hand, abs=1e-9)
    for budget in result.budgets:
        assert budget.sets["block_influence"] == sorted(np.argsort(influence, kind="stable")[: budget.k].tolist())
        first = int(np.argmin(pruning.angular_distances(states, budget.k)))
        assert budget.sets["angular"] == list(range(first, first + budget.k))


def test_sets_jaccard_and_verdict_are_consistent(demo):
    result = demo[-1]
    assert result.methods == list(pruning.ALL_METHODS) and [b.k for b in result.budgets] == [1, 2, 3, 4]
    for budget in result.budgets:
        for method, layers in budget.sets.items():
            assert len(set(layers)) == budget.k and layers == sorted(layers), method
            assert all(0 <= layer < result.n_layers for layer in layers), method
        angular = budget.sets["angular"]
        assert angular == list(range(angular[0], angular[0] + budget.k))
        assert len(budget.jaccard) == len(pruning.ALL_METHODS) * (len(pruning.ALL_METHODS) - 1) // 2
        for (a, b), value in budget.jaccard.items():
            assert 0 <= value <= 1
            assert value == stats.jaccard(set(budget.sets[b]), set(budget.sets[a]))
    assert [v.k for v in result.verdict] == [1, 2, 3, 4]
    for verdict, budget in zip(result.verdict, result.budgets):
        kl_r, kl_i = budget.costs["replacement"].heldout_kl, budget.costs["interchange"].heldout_kl
        comparison = budget.comparisons[("replacement", "interchange")]
        assert (comparison.a, comparison.b) == (kl_r, kl_i)
        if budget.sets["replacement"] == budget.sets["interchange"]:
            assert verdict.safer == "same set" and verdict.factor == 1.0
        else:
            expected = {"A cheaper": "replacement", "B cheaper": "interchange"}.get(comparison.verdict,
                                                                                    comparison.verdict)
            assert verdict.safer == expected and expected in ("replacement", "interchange", "equivalent", "undecided")
            if expected in ("replacement", "interchange"):  # a verdict always names the lower held-out KL
                assert verdict.safer == ("replacement" if kl_r < kl_i else "interchange")
            assert verdict.factor == pytest.approx(max(kl_r, kl_i) / min(kl_r, kl_i), rel=1e-15)
            assert verdict.ratio_low <= verdict.ratio == kl_r / kl_i <= verdict.ratio_high
        for method, cost in budget.costs.items():  # every cost has its interval around it
            low, high = cost.heldout_kl_ci
            assert low <= cost.heldout_kl <= high, method
            assert cost.heldout_ppl_ci[0] <= cost.heldout_ppl <= cost.heldout_ppl_ci[1], method


def test_json_and_table(demo):
    result = demo[-1]
    document = json.loads(json.dumps(result.to_json(), allow_nan=False))["pruning"]
    assert document["methods"] == list(pruning.ALL_METHODS)
    budget = document["budgets"][1]
    assert budget["k"] == 2 and budget["sets"]["sleb"] == result.budgets[1].sets["sleb"]
    assert budget["kl"]["angular"] == result.budgets[1].costs["angular"].kl
    assert budget["heldout_ppl"]["removal"] == result.budgets[1].costs["removal"].heldout_ppl
    assert budget["jaccard"]["replacement|interchange"] == result.budgets[1].jaccard[("replacement", "interchange")]
    assert document["verdict"][0].keys() == {"k", "safer", "factor", "ratio", "ratio_ci", "safer_adjusted"}
    assert (document["equivalence_margin"], document["multiplicity"]) == (0.2, "holm")
    assert document["costs_on"] == "heldout" and document["n_heldout_sequences"] == 16
    assert budget["heldout_kl_ci"]["sleb"] == list(result.budgets[1].costs["sleb"].heldout_kl_ci)
    comparison = budget["comparisons"]["replacement|interchange"]
    assert comparison["verdict"] in paired.COST_VERDICTS and comparison["verdict_adjusted"] in paired.COST_VERDICTS
    assert comparison["p"] <= comparison["p_adjusted"] and comparison["equivalence_margin"] == 0.2
    table = pruning.render_table(result)
    assert "held-out ppl [95% CI]" in table and "replacement | interchange" in table
    assert "KL ratio R/I [95% CI]" in table and "after holm" in table and "margin 0.2" in table
    assert "Holm (family-wise)" in table


def test_every_verdict_recomputes_from_the_saved_per_sequence_costs(demo):
    """The JSON alone (per-sequence held-out KLs, bootstrap seed and size, margin, multiplicity) gives every paired
    comparison again: its verdict, p-values, interval and the adjusted verdicts of the whole table."""
    document = json.loads(json.dumps(demo[-1].to_json(), allow_nan=False))["pruning"]
    draws = document["bootstrap"]
    indices = stats.bootstrap_indices(document["n_heldout_sequences"], draws["n_resamples"], draws["seed"])
    saved, again = [], []
    for budget in document["budgets"]:
        per_sequence = budget["heldout_kl_per_sequence"]
        assert set(per_sequence) == set(budget["heldout_kl"]) == set(budget["heldout_nll_per_sequence"])
        for method, values in per_sequence.items():
            assert len(values) == document["n_heldout_sequences"]
            assert np.mean(values) == pytest.approx(budget["heldout_kl"][method], rel=1e-7)
        for pair, comparison in budget["comparisons"].items():
            a, b = pair.split("|")
            saved.append(comparison)
            again.append(paired.compare_costs(np.array(per_sequence[a]), np.array(per_sequence[b]), indices,
                                              margin=document["equivalence_margin"]))
    for comparison, recomputed in zip(saved, paired.adjusted_table(again, document["multiplicity"])):
        assert (recomputed.verdict, recomputed.verdict_adjusted) == (comparison["verdict"],
                                                                     comparison["verdict_adjusted"])
        assert recomputed.p == pytest.approx(comparison["p"], abs=1e-4)
        assert recomputed.p_adjusted == pytest.approx(comparison["p_adjusted"], abs=1e-3)
        assert recomputed.ratio_low == pytest.approx(comparison["ratio_low"], rel=1e-6)


def test_pair_rule_that_runs_out_has_no_set_on_a_tiny_model():
    model, ids = tiny_model("llama"), random_ids(4, 16)
    audit = audit_of(model, ids, "0-1,2-3", 4)
    result = pruning.validate_pruning(model, ids, audit, max_k=3, methods=["replacement", "interchange", "angular"],
                                      heldout_ids=random_ids(4, 16, seed=1))
    # Each pair removes at most one layer: two pairs never give three.
    assert result.budgets[2].sets["replacement"] is None and "replacement" not in result.budgets[2].costs
    assert ("replacement", "angular") not in result.budgets[2].jaccard and len(result.verdict) == 2
    assert ("replacement", "angular") not in result.budgets[2].comparisons
    document = result.to_json()["pruning"]
    assert document["budgets"][2]["sets"]["interchange"] is None
    assert "replacement" not in document["budgets"][2]["heldout_kl_ci"]


def test_bad_arguments_are_refused():
    model, ids = tiny_model("llama"), random_ids(2, 8)
    audit = audit_of(model, ids, "adjacent", 4)
    for kwargs in (dict(max_k=4), dict(max_k=0), dict(methods=["shortgpt"]), dict(methods=[]),
                   dict(pair_rule="first")):
        with pytest.raises(pruning.PruningError):
            pruning.validate_pruning(model, ids, audit, heldout_ids=ids, **kwargs)
    with pytest.raises(pruning.PruningError, match="the audit has 4 layers but the model has 6"):
        pruning.validate_pruning(tiny_model("llama", n_layers=6), ids, audit, heldout_ids=ids)
    for heldout in (None, ids[:1]):  # costs need held-out text, and two sequences for an interval
        with pytest.raises(pruning.PruningError, match="held-out text.*pass heldout_ids"):
            pruning.validate_pruning(model, ids, audit, max_k=1, heldout_ids=heldout)


def test_protocol_verdict_is_the_paired_test_on_heldout_costs():
    """Different sets: the verdict is the paired comparison's, never equality of two means; "same cost" needs the
    equivalence test (the ratio's 90% interval inside the margin), not equal KLs."""
    rng = np.random.default_rng(0)
    indices = stats.bootstrap_indices(40, 500, seed=0)
    shared = rng.gamma(2.0, 0.05, size=40)  # what both pruned models find hard: cancels in the paired difference

    def budget(r_seq, i_seq, r_set=(1, 2), i_set=(2, 3)):
        sets = {"replacement": list(r_set) if r_set else None, "interchange": list(i_set)}
        costs = {m: pruning.Cost(0.0, 1.0, float(x.mean()), 1.0) for m, x in
                 (("replacement", r_seq), ("interchange", i_seq)) if sets[m] is not None}
        per_sequence = {"replacement": r_seq, "interchange": i_seq}
        return pruning.Budget(2, sets, costs, {}, pruning.pairwise_comparisons(sets, per_sequence, indices))

    clearly = pruning.protocol_verdict(budget(shared * 1.5, shared))
    assert clearly.safer == "interchange" and clearly.ratio_low > 1.3 and clearly.ratio == pytest.approx(1.5)
    same_mean_different_sequences = shared[::-1].copy()  # equal means (a "tie" before), different per sequence
    tied = pruning.protocol_verdict(budget(shared, same_mean_different_sequences))
    assert tied.safer == "undecided" and tied.ratio_low < 1 / 1.2 and 1.2 < tied.ratio_high  # wider than the margin
    close = pruning.protocol_verdict(budget(shared * (1 + rng.normal(0, 0.01, 40)), shared))
    assert close.safer == "equivalent" and 1 / 1.2 < close.ratio_low < close.ratio_high < 1.2
    noisy = pruning.protocol_verdict(budget(shared + rng.normal(0, 0.05, 40).clip(-shared, None), shared))
    assert noisy.safer in ("undecided", "equivalent", "replacement", "interchange")
    assert pruning.protocol_verdict(budget(shared, shared, i_set=(1, 2))) == pruning.Verdict(
        2, "same set", 1.0, 1.0, 1.0, 1.0, "same set")
    assert pruning.protocol_verdict(budget(shared, shared, r_set=None)) is None
    # Stored in the other order (methods given as interchange first), the verdict reads the same.
    sets = {"interchange": [2, 3], "replacement": [1, 2]}
    other_order = pruning.Budget(2, sets, {}, {}, pruning.pairwise_comparisons(
        sets, {"replacement": shared * 1.5, "interchange": shared}, indices))
    flipped = pruning.protocol_verdict(other_order)
    assert (flipped.safer, flipped.ratio) == (clearly.safer, pytest.approx(clearly.ratio))
    # Percentiles interpolate between resamples, so 1 / (the bound of b / a) is the bound of a / b to rounding.
    assert flipped.ratio_low == pytest.approx(clearly.ratio_low, rel=1e-2)
    assert flipped.ratio_high == pytest.approx(clearly.ratio_high, rel=1e-2)



distances_on_all_pairs = st.integers(2, 9).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.floats(0, 1, allow_nan=False), min_size=n * (n - 1) // 2, max_size=n * (n - 1) // 2)))


@settings(max_examples=40, deadline=None)
@given(distances_on_all_pairs, st.sampled_from(PAIR_RULES.names()), st.integers(1, 8))
def test_pair_rules_on_synthetic_distances(case, rule, k):
    n, distances = case
    pairs = parse_pairs("all", n)
    removed = pruning.pair_rule_set(pairs, distances, k, rule)
    assert len(set(removed)) == len(removed) <= k and removed == sorted(removed)
    assert all(0 <= layer < n for layer in removed)
    assert set(pruning.pair_rule_set(pairs, distances, k - 1, rule)) <= set(removed), "budgets are nested"
    kept = set(range(n)) - set(removed)
    if rule == "later":
        assert removed == stats.removal_set(pairs, distances, k)
        assert all(any(j == layer and i in kept for i, j in pairs) for layer in removed)
    elif rule == "earlier":
        assert all(any(i == layer and j in kept for i, j in pairs) for layer in removed)
    elif rule == "layer_min":
        scores = layer_min_scores(pairs, distances)
        assert len(removed) == min(k, n)
        assert all(scores[a] <= scores[b] for a in removed for b in kept)
    else:  # min-partner, spacing 1: no two adjacent
        assert all(b - a > 1 for a, b in zip(removed, removed[1:]))


def paper_greedy_select(scores: dict, n: int, spacing: int) -> list:
    """The paper's Table 14 step 3 as its scripts write it (compression_sweep.greedy_select, bi_geometry_ablation
    with min_gap = spacing + 1): scan layers by ascending score, a stable sort of a layer-ordered dict."""
    selected = []
    for layer, _ in sorted(scores.items(), key=lambda item: item[1]):
        if all(abs(layer - other) > spacing for other in selected):
            selected.append(layer)
        if len(selected) == n:
            break
    return selected


@settings(max_examples=200, deadline=None)
@given(distances_on_all_pairs, st.integers(0, 3), st.integers(0, 3), st.integers(1, 8), st.booleans())
def test_min_partner_rule_keeps_spacing_nesting_and_boundaries(case, spacing, keep_boundary, k, adjacent):
    n, distances = case
    pairs = parse_pairs("all", n)
    if adjacent:  # the paper's scripts score layers by adjacent pairs only
        distances = [d for (i, j), d in zip(pairs, distances) if j == i + 1]
        pairs = [(i, j) for i, j in pairs if j == i + 1]
    rule = SetRule("min-partner", spacing, keep_boundary)
    removed = rule.choose(pairs, distances, k, n)
    assert len(removed) <= k and removed == sorted(set(removed))
    assert all(b - a > spacing for a, b in zip(removed, removed[1:])), "spacing"
    assert all(keep_boundary <= layer < n - keep_boundary for layer in removed), "boundary layers kept"
    assert set(rule.choose(pairs, distances, k - 1, n)) <= set(removed), "budgets are nested"
    assert rule.order(pairs, distances, k, n)[:k - 1] == rule.order(pairs, distances, k - 1, n)
    eligible = {layer: score for layer, score in layer_min_scores(pairs, distances).items()
                if keep_boundary <= layer < n - keep_boundary}
    assert removed == sorted(paper_greedy_select(dict(sorted(eligible.items())), k, spacing))
    if spacing == 0 and keep_boundary == 0:
        assert removed == pruning.pair_rule_set(pairs, distances, k, "layer_min")


def test_min_partner_on_the_papers_table_14_example():
    pairs = [(n, n + 1) for n in range(5)]
    # layer scores 0.5, 0.1, 0.1, 0.2, 0.2, 0.3: layer 1 first, 2 is its neighbour, then 3, then 5
    assert SetRule().choose(pairs, [0.5, 0.1, 0.4, 0.2, 0.3], 3, 6) == [1, 3, 5]
    assert SetRule("min-partner", 0).choose(pairs, [0.5, 0.1, 0.4, 0.2, 0.3], 3, 6) == [1, 2, 3]
    assert SetRule("min-partner", 1, 1).choose(pairs, [0.5, 0.1, 0.4, 0.2, 0.3], 3, 6) == [1, 3]  # 5 is the last
    assert SetRule("later").choose(pairs, [0.5, 0.1, 0.4, 0.2, 0.3], 2, 6) == [2, 4]
    assert SetRule().label == "min-partner (spacing 1)" and SetRule("later").label == "later"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=12), st.integers(1, 4))
def test_lowest_k_and_best_block_on_synthetic_scores(scores, k):
    lowest = pruning.lowest_k(dict(enumerate(scores)), k)
    assert len(lowest) == min(k, len(scores))
    assert max(scores[layer] for layer in lowest) <= min(
        [scores[layer] for layer in range(len(scores)) if layer not in lowest], default=math.inf)
    block = pruning.best_block(scores, k)
    assert block == list(range(block[0], block[0] + k)) and scores[block[0]] == min(scores)
