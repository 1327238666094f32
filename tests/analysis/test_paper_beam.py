"""paper-beam against the paper's own loops (qwen3_beam_search.beam_search, matched_budget_*.beam_search_capped),
transcribed with their eval counting, on costs with interactions between layers."""

import itertools

import numpy as np
import pytest

from pytest_swapkl.analysis import search
from pytest_swapkl.analysis.guides import Guide
from pytest_swapkl.analysis.objectives import Evaluator, Objective, Spend

N = 9


class TableEvaluator(Evaluator):
    """Costs of every set from a fixed random table (no model): what the search sees, nothing else."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        single, pair = rng.random(N), rng.random((N, N))
        self.table = {s: float(sum(single[i] for i in s) + sum(pair[i, j] for i, j in itertools.combinations(s, 2)))
                      for k in range(N) for s in itertools.combinations(range(N), k)}
        self.objective, self.n_layers = Objective("kl"), N

    def costs(self, sets, spend: Spend = None):
        sets = [tuple(sorted(s)) for s in sets]
        if spend is not None:
            new = [s for s in dict.fromkeys(sets) if s not in spend.requested]
            spend.requested.update(new)
            spend.evaluations += len(new)
            spend.calls += bool(new)
        return [self.table[s] for s in sets]

    def base_cost(self):
        return 0.0


def paper_beam_search(cost, scores, beam_width, seed_k, max_n, eval_budget=None):
    """The paper's loop (beam_search_capped; without a budget, beam_search): best set per step, eval count."""
    cache, count, history = {}, 0, {}

    def eval_skip(skip):
        nonlocal count
        if skip not in cache:
            cache[skip] = cost[tuple(sorted(skip))]
            count += 1
        return cache[skip]

    seeds = [layer for layer, _ in sorted(enumerate(scores), key=lambda x: x[1])[:seed_k]]
    if eval_budget is not None and len(seeds) > eval_budget:
        return history, count
    beams = sorted(((frozenset({layer}), eval_skip(frozenset({layer}))) for layer in seeds), key=lambda x: x[1])
    history[1] = beams[0]
    beams = beams[:beam_width]
    for step in range(2, max_n + 1):
        if eval_budget is not None and count + beam_width * (N - step + 1) > eval_budget:
            break
        candidates = {}
        for skip, _ in beams:
            for layer in range(N):
                if layer not in skip and skip | {layer} not in candidates:
                    candidates[skip | {layer}] = eval_skip(skip | {layer})
        beams = sorted(candidates.items(), key=lambda x: x[1])[:beam_width]
        history[step] = beams[0]
    return history, count


def guide_of(seed):
    scores = np.random.default_rng(seed + 100).permutation(N).astype(float)  # distinct: one order
    return Guide("interchange", scores, lambda k: sorted(np.argsort(scores)[:k].tolist()))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("width,seeds", [(3, 3), (3, 6), (1, 4), (2, N)])
def test_paper_beam_is_the_papers_loop(seed, width, seeds):
    evaluator, guide = TableEvaluator(seed), guide_of(seed)
    settings = search.Settings(paper_beam_width=width, beam_seeds=seeds)
    for k in range(1, 5):
        found = search.run_search("paper-beam", guide, evaluator, N, settings, k=k)
        history, count = paper_beam_search(evaluator.table, guide.scores, width, seeds, k)
        assert found.layers == tuple(sorted(history[k][0]))
        assert found.spend.evaluations == count  # distinct sets, as the paper's cache counts them
        assert found.stopped == "k"


@pytest.mark.parametrize("budget", [2, 3, 10, 20, 30, 40, 60, 200])
def test_budget_stops_where_the_papers_matched_budget_loop_stops(budget):
    evaluator, guide = TableEvaluator(7), guide_of(7)
    settings = search.Settings(paper_beam_width=2, beam_seeds=3, max_evaluations=budget)
    found = search.run_search("paper-beam", guide, evaluator, N, settings, k=5)
    history, count = paper_beam_search(evaluator.table, guide.scores, 2, 3, 5, eval_budget=budget)
    assert found.spend.evaluations == count <= budget
    if history:
        deepest = max(history)
        assert found.layers == tuple(sorted(history[deepest][0]))
        assert found.stopped == ("k" if deepest == 5 else "evaluations")
    else:
        assert found.layers == () and found.stopped == "evaluations"


def test_defaults_are_width_three_seeded_by_as_many_layers_and_each_step_tries_every_layer():
    evaluator, guide = TableEvaluator(1), guide_of(1)
    found = search.run_search("paper-beam", guide, evaluator, N, search.Settings(), k=2)
    history, count = paper_beam_search(evaluator.table, guide.scores, 3, 3, 2)
    assert found.layers == tuple(sorted(history[2][0]))
    # 3 seeds, then 3 states x (N - 1) layers less the pairs two states share
    assert found.spend.evaluations == count == 3 + 3 * (N - 1) - 3
    assert "paper-beam" in search.SEARCHES and search.SEARCHES.get("paper-beam").reads_guide


def test_ceiling_grows_k_on_cached_steps():
    evaluator, guide = TableEvaluator(2), guide_of(2)
    alone = search.run_search("paper-beam", guide, evaluator, N, search.Settings(), k=3)
    grown = search.run_search("paper-beam", guide, evaluator, N, search.Settings(), ceiling=alone.cost)
    assert grown.k >= 3  # the ceiling admits the 3-set; steps 1..3 come from the cache
    assert grown.spend.evaluations >= alone.spend.evaluations
