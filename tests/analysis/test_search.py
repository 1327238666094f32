"""Searches for the set to remove: each against its definition, on a tiny real model through the engine."""

import itertools

import numpy as np
import pytest
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl.analysis import pruning, search
from pytest_swapkl.analysis.guides import measure_guides
from pytest_swapkl.analysis.objectives import Evaluator, Objective, ceiling, parse_max_cost
from pytest_swapkl.engine.probes import removal

N_LAYERS = 6
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(one_thread):
    model = tiny_model("gpt_neox", n_layers=N_LAYERS, seed=3)
    ids = random_ids(6, 16, seed=1)
    guides = measure_guides(model, ids, N_LAYERS, ["interchange", "removal", "block_influence", "angular", "none"])
    evaluators = {name: Evaluator(model, ids, Objective(name), N_LAYERS) for name in ("kl", "ppl")}
    return model, ids, guides, evaluators


def brute_force(model, ids, k, objective):
    sets = list(itertools.combinations(range(N_LAYERS), k))
    measurement = engine.measure(model, ids, [removal(s, N_LAYERS) for s in sets])
    cost = {s: (measurement.kl(removal(s, N_LAYERS)) if objective == "kl"
                else measurement[removal(s, N_LAYERS)].ppl) for s in sets}
    return min(sets, key=lambda s: (cost[s], s)), cost


@pytest.mark.parametrize("objective", ["kl", "ppl"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_exhaustive_is_the_optimum_of_every_set_measured_alone(setup, objective, k):
    model, ids, guides, evaluators = setup
    found = search.run_search("exhaustive", guides["none"], evaluators[objective], N_LAYERS, search.Settings(), k=k)
    best, cost = brute_force(model, ids, k, objective)
    assert found.layers == best
    assert found.cost == pytest.approx(cost[best], rel=1e-9)
    assert found.spend.evaluations == len(cost)
    # every other search can only be as cheap as the optimum
    for name in ("one-shot", "greedy", "beam", "evolutionary", "random"):
        other = search.run_search(name, guides["interchange"], evaluators[objective], N_LAYERS, search.Settings(), k=k)
        assert other.cost >= found.cost - 1e-12 and len(other.layers) == k


def test_greedy_is_sleb_and_beam_of_width_one_without_guide(setup):
    model, ids, guides, evaluators = setup
    sleb = pruning.sleb_sets(model, ids, N_LAYERS, 3)
    for k in (1, 2, 3):
        greedy = search.run_search("greedy", guides["interchange"], evaluators["kl"], N_LAYERS, search.Settings(), k=k)
        assert list(greedy.layers) == sleb[k - 1]
        # k steps, each over every remaining layer: N + (N-1) + ... evaluations, one measure call per step
        assert greedy.spend.evaluations == sum(N_LAYERS - step for step in range(k))
        assert greedy.spend.calls == k
        beam = search.beam(None, search._Run(evaluators["kl"], None), N_LAYERS, k, width=1)
        assert beam == greedy.layers


def test_beam_proposes_by_guide_and_keeps_by_objective(setup):
    _, _, guides, evaluators = setup
    guide, width = guides["removal"], 2
    found = search.run_search("beam", guide, evaluators["kl"], N_LAYERS, search.Settings(beam_width=width), k=2)
    # step 1: the w layers the guide ranks first; the objective keeps both; step 2: each proposes its w best
    first = guide.order(list(range(N_LAYERS)))[:width]
    proposals = {tuple(sorted((a, b))) for a in first
                 for b in guide.order([x for x in range(N_LAYERS) if x != a])[:width]}
    costs = dict(zip(proposals, evaluators["kl"].costs(list(proposals))))
    assert found.layers == min(proposals, key=lambda s: (costs[s], s))
    assert found.spend.calls == 2  # one measure call per beam step
    assert found.spend.evaluations == width + len(proposals)


def test_one_shot_reads_the_guide_and_none_reads_the_objective(setup):
    _, _, guides, evaluators = setup
    scores = guides["block_influence"].scores
    found = search.run_search("one-shot", guides["block_influence"], evaluators["kl"], N_LAYERS, search.Settings(), k=2)
    assert list(found.layers) == sorted(np.argsort(scores, kind="stable")[:2].tolist())
    assert found.spend.evaluations == 1
    none = search.run_search("one-shot", guides["none"], evaluators["kl"], N_LAYERS, search.Settings(), k=2)
    singles = evaluators["kl"].costs([(layer,) for layer in range(N_LAYERS)])
    assert list(none.layers) == sorted(np.argsort(singles, kind="stable")[:2].tolist())
    assert none.spend.evaluations == N_LAYERS
    angular = search.run_search("one-shot", guides["angular"], evaluators["kl"], N_LAYERS, search.Settings(), k=3)
    assert angular.layers[2] - angular.layers[0] == 2  # a block of consecutive layers


@pytest.mark.parametrize("name", ["greedy", "beam", "evolutionary", "random", "exhaustive"])
def test_evaluation_budget_is_never_exceeded(setup, name):
    _, _, guides, evaluators = setup
    settings = search.Settings(max_evaluations=9)
    if name == "exhaustive":
        with pytest.raises(search.SearchError, match="needs 20 evaluations"):
            search.run_search(name, guides["interchange"], evaluators["kl"], N_LAYERS, settings, k=3)
        return
    found = search.run_search(name, guides["interchange"], evaluators["kl"], N_LAYERS, settings, k=3)
    assert found.spend.evaluations <= 9
    assert len(found.layers) == 3 or found.stopped == "evaluations"


def test_evolutionary_is_seeded_and_never_worse_than_its_start(setup):
    _, _, guides, evaluators = setup
    runs = [search.run_search("evolutionary", guides["interchange"], evaluators["kl"], N_LAYERS,
                              search.Settings(seed=seed), k=3) for seed in (0, 0, 1)]
    assert runs[0].layers == runs[1].layers and runs[0].spend.evaluations == runs[1].spend.evaluations
    start = tuple(sorted(guides["interchange"].one_shot_rule(3)))
    assert runs[0].cost <= evaluators["kl"].costs([start])[0]


def test_cost_ceiling_removes_while_within_b(setup):
    _, _, guides, evaluators = setup
    singles = sorted(evaluators["kl"].costs([(layer,) for layer in range(N_LAYERS)]))
    best_two = search.run_search("exhaustive", guides["none"], evaluators["kl"], N_LAYERS, search.Settings(), k=2)
    ceiling_b = (singles[0] + best_two.cost) / 2 if best_two.cost > singles[0] else singles[0]
    found = search.run_search("exhaustive", guides["none"], evaluators["kl"], N_LAYERS, search.Settings(),
                              ceiling=ceiling_b)
    assert found.k == 1 and found.cost <= ceiling_b and found.stopped == "ceiling"
    nothing = search.run_search("greedy", guides["none"], evaluators["kl"], N_LAYERS, search.Settings(),
                                ceiling=singles[0] / 2)
    assert nothing.k == 0 and nothing.layers == ()


def test_relative_ceilings():
    assert parse_max_cost("10%") == (pytest.approx(0.1), True)
    assert parse_max_cost("0.25") == (0.25, False)
    with pytest.raises(Exception, match="--max-cost"):
        parse_max_cost("ten")


def test_relative_ceiling_of_kl_is_refused(setup):
    _, _, _, evaluators = setup
    with pytest.raises(Exception, match="relative to the full model's kl, which is 0"):
        ceiling((0.1, True), evaluators["kl"])
    assert ceiling((0.1, True), evaluators["ppl"]) == pytest.approx(1.1 * evaluators["ppl"].base_cost())
