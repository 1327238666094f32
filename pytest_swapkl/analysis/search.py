"""Search algorithms for the layer set to remove, with three ways to stop (docs/pruning.md, "Guided removal").

Every search evaluates candidate sets through an ``objectives.Evaluator`` (engine ``removal(S)`` probes,
one measure call per step) and records what it spent (``objectives.Spend``).

- ``one-shot``: the guide's own k layers (``Guide.one_shot_rule``); no evaluation but the final set's.
  With guide ``none`` the scores are the objective's cost of each single removal (N evaluations).
- ``greedy``: SLEB (Song et al. 2024): k steps, each evaluates every remaining layer added to the set so far
  and keeps the cheapest under the objective (with ``ppl``, SLEB's own calibration-perplexity objective).
  It reads no guide.
- ``beam``: the protocol-guided beam of "No Free Swap". A state is a removed set; the beam holds the w
  cheapest. Per step every state proposes its w remaining layers with the lowest guide score (all
  remaining ones with guide ``none``), all proposals of the step are evaluated in ONE measure call, and the
  w cheapest distinct sets under the objective form the next beam. The guide proposes and orders, the
  objective keeps. With w = 1 and guide ``none`` it is exactly ``greedy``.
- ``paper-beam``: the beam of the paper's own scripts (``qwen3_beam_search.py``, ``matched_budget_*.py``).
  Step 1 evaluates the K single layers the guide scores lowest (its seeds; K = ``beam_seeds``, default the
  width W; the paper's Qwen3 run used K = 12, W = 3) and keeps the W cheapest; every later step extends each
  of the W states by EVERY remaining layer (not only the guide's choices), evaluates the distinct sets in
  one measure call and keeps the W cheapest. With an evaluation budget E it runs a step only if the step's
  most evaluations fit in what is left (K for the seeds, W * (N - s + 1) at step s, the paper's own
  conservative count) and otherwise returns the best set of the last step it ran: the paper's matched-budget
  rule (B = 50..800 evaluator calls).
- ``evolutionary``: EvoPress-style (Sieberling et al. 2025), seeded: the parent starts as the guide's
  one-shot set (random with ``none``); each generation makes ``offspring`` children by one swap (a removed
  layer back in, a kept one out) not tried before, evaluates them in one call, and keeps the cheapest of
  parent and children (elitist). Stops after ``generations``, after ``patience`` generations without
  improvement, or when the evaluation budget is spent. (EvoPress's multi-step selection on growing token
  counts is left out: the demo calibration is small enough to evaluate every child on all of it.)
- ``exhaustive``: every k-subset, in chunks of ``EXHAUSTIVE_CHUNK`` sets per call: the ground truth.
- ``random``: ``random_draws`` distinct seeded k-sets (or the evaluation budget), the cheapest kept;
  their median cost is the floor a search has to beat.

Each search is one registered ``SearchKind`` (``SEARCHES``, read by ``swapkl prune``, the budgets and the report's
figure); numpy is imported inside the two searches that draw at random, so reading the names stays cheap.

Stopping: ``k`` layers; a cost ceiling B (grow k from 1 while the objective's cost of the search's set stays
within B; the number removed is the outcome); at most E evaluated sets per run (a step is trimmed to what
is left, proposals in guide order, and the search returns its best set so far).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from ..errors import InputError
from ..registry import Registry
from .objectives import LayerSet, Spend

if TYPE_CHECKING:
    from .guides import Guide
    from .objectives import Evaluator

EXHAUSTIVE_CHUNK = 512


class SearchError(InputError):
    pass


class BudgetSpent(Exception):
    """The run's evaluation budget is used up; the search returns its best set so far."""


@dataclass
class Settings:
    beam_width: int = 4
    paper_beam_width: int = 3  # the paper's W
    beam_seeds: Optional[int] = None  # paper-beam's K seed layers (None: its width)
    max_evaluations: Optional[int] = None
    seed: int = 0
    offspring: int = 8
    generations: int = 16
    patience: int = 4
    random_draws: int = 16


@dataclass(frozen=True)
class SearchKind:
    """One search: how it finds a k-set, and whether it reads a guide."""

    find: Callable[["Guide", "_Run", int, int, Settings, dict], LayerSet]  # (guide, run, n_layers, k, settings, extra)
    reads_guide: bool
    # Which of its lines the report's figure draws: "always", "protocol guides", "scored guides" (any guide but
    # none) or "never" (table only), so a figure keeps to lines a reader can tell apart.
    figure: str


SEARCHES: Registry[SearchKind] = Registry("search")


def _search(name: str, summary: str, reads_guide: bool, figure: str) -> Callable:
    def register(find: Callable) -> Callable:
        SEARCHES.register(name, SearchKind(find, reads_guide, figure), summary, __name__)
        return find
    return register


@dataclass
class Found:
    search: str
    guide: str  # "-" for searches that read no guide
    objective: str
    k: int  # layers removed
    layers: LayerSet
    cost: float  # on the calibration ids, under the objective
    spend: Spend
    seconds: float
    stopped: str  # "k", "ceiling", "evaluations"
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"search": self.search, "guide": self.guide, "objective": self.objective, "k": self.k,
                "layers": list(self.layers), "cost": self.cost, **self.spend.to_json(),
                "seconds": round(self.seconds, 3), "stopped": self.stopped, **self.extra}


class _Run:
    """One search run: its evaluator, its spend, its evaluation budget."""

    def __init__(self, evaluator: Evaluator, max_evaluations: Optional[int]):
        self.evaluator, self.max_evaluations, self.spend = evaluator, max_evaluations, Spend()
        self.exhausted = False

    def costs(self, sets: list[LayerSet]) -> list[float]:
        sets = [tuple(sorted(s)) for s in sets]
        if self.max_evaluations is not None:
            new = [s for s in dict.fromkeys(sets) if s not in self.spend.requested]
            left = self.max_evaluations - self.spend.evaluations
            if len(new) > left:
                self.exhausted = True
                allowed = set(new[:max(left, 0)]) | self.spend.requested
                sets = [s for s in sets if s in allowed]
                if not sets:
                    raise BudgetSpent
        return self.evaluator.costs(sets, self.spend) if sets else []

    def scored(self, sets: list[LayerSet]) -> list[tuple[float, LayerSet]]:
        """(cost, set) of the sets the budget allows, cheapest first (ties by set)."""
        sets = list(dict.fromkeys(tuple(sorted(s)) for s in sets))
        self.costs(sets)
        kept = [s for s in sets if s in self.spend.requested]
        return sorted(zip(self.evaluator.costs(kept), kept))


def parse_searches(text: str) -> list[str]:
    names = list(dict.fromkeys(part.strip().lower() for part in str(text).split(",") if part.strip()))
    if not names or any(name not in SEARCHES for name in names):
        raise SearchError(f"--search {text!r}: use {', '.join(SEARCHES)}, comma-separated")
    return names


def run_search(name: str, guide: Guide, evaluator: Evaluator, n_layers: int, settings: Settings,
               k: Optional[int] = None, ceiling: Optional[float] = None) -> Found:
    """One search under one objective, stopped at k layers or at the cost ceiling B (exactly one given)."""
    if name not in SEARCHES:
        raise SearchError(f"--search {name!r}: use {', '.join(SEARCHES)}, comma-separated")
    kind = SEARCHES.get(name)
    if (k is None) == (ceiling is None):
        raise SearchError("give either a number of layers (--budgets) or a cost ceiling (--max-cost)")
    started = time.perf_counter()
    run = _Run(evaluator, settings.max_evaluations)
    extra: dict = {}
    if k is not None:
        if not 1 <= k < n_layers:
            raise SearchError(f"--layers {k}: choose 1..{n_layers - 1} (at least one layer must stay)")
        try:
            layers = _search_k(kind, guide, run, n_layers, k, settings, extra)
        except BudgetSpent:  # the budget allowed no set at all
            layers = ()
        stopped = "evaluations" if run.exhausted else "k"
    else:
        layers, stopped = (), "ceiling"
        for size in range(1, n_layers):
            try:
                candidate = _search_k(kind, guide, run, n_layers, size, settings, extra)
            except BudgetSpent:
                stopped = "evaluations"
                break
            if len(candidate) < size or run.costs([candidate])[0] > ceiling:
                stopped = "evaluations" if run.exhausted else "ceiling"
                break
            layers = candidate
            if run.exhausted:
                stopped = "evaluations"
                break
    cost = evaluator.costs([layers])[0] if layers else evaluator.base_cost()
    return Found(name, guide.name if kind.reads_guide else "-", evaluator.objective.name, len(layers), layers,
                 cost, run.spend, time.perf_counter() - started, stopped, extra)


def _search_k(kind: SearchKind, guide: Guide, run: _Run, n_layers: int, k: int, settings: Settings,
              extra: dict) -> LayerSet:
    try:
        return kind.find(guide, run, n_layers, k, settings, extra)
    except BudgetSpent:
        # The budget ran out first: the cheapest of the largest sets (at most k layers) evaluated so far.
        run.exhausted = True
        sizes = [len(s) for s in run.spend.requested if len(s) <= k]
        if not sizes:
            raise
        largest = [s for s in run.spend.requested if len(s) == max(sizes)]
        return min(largest, key=lambda s: (run.evaluator.costs([s])[0], s))


@_search("one-shot", "the guide's own k layers, no search; with guide none the k cheapest single removals",
         reads_guide=True, figure="scored guides")
def _one_shot(guide: Guide, run: _Run, n_layers: int, k: int, settings: Settings, extra: dict) -> LayerSet:
    return one_shot(guide, run, n_layers, k)


def one_shot(guide: Guide, run: _Run, n_layers: int, k: int) -> LayerSet:
    if guide.scores is None:  # guide none: score each layer by the objective's cost of removing it alone
        ranked = run.scored([(layer,) for layer in range(n_layers)])
        return tuple(sorted(layer for _, (layer,) in ranked[:k]))
    layers = tuple(sorted(guide.one_shot_rule(k)))
    if len(layers) == k:
        run.costs([layers])
    return layers


@_search("greedy", "SLEB: k steps, each adds the remaining layer whose removal is cheapest under the objective",
         reads_guide=False, figure="always")
def _greedy(guide: Guide, run: _Run, n_layers: int, k: int, settings: Settings, extra: dict) -> LayerSet:
    return beam(None, run, n_layers, k, width=1)


@_search("beam", "guided beam of width W: the guide proposes each state's W best layers, the objective keeps W sets",
         reads_guide=True, figure="protocol guides")
def _beam(guide: Guide, run: _Run, n_layers: int, k: int, settings: Settings, extra: dict) -> LayerSet:
    return beam(guide, run, n_layers, k, settings.beam_width)


def beam(guide: Optional[Guide], run: _Run, n_layers: int, k: int, width: int) -> LayerSet:
    """The beam of the module docstring; ``guide`` None or without scores proposes every remaining layer."""
    states: list[LayerSet] = [()]
    for _ in range(k):
        proposals: list[LayerSet] = []
        for state in states:
            remaining = [layer for layer in range(n_layers) if layer not in state]
            if guide is not None and guide.scores is not None:
                remaining = guide.order(remaining)[:width]
            proposals += [tuple(sorted(state + (layer,))) for layer in remaining]
        scored = run.scored(list(dict.fromkeys(proposals)))
        if not scored:
            raise BudgetSpent
        states = [layers for _, layers in scored[:width]]
        if run.exhausted:
            raise BudgetSpent
    return states[0]


@_search("paper-beam", "the paper's beam: the guide's K lowest layers seed it, each step tries every remaining layer, "
         "W sets kept", reads_guide=True, figure="protocol guides")
def _paper_beam(guide: Guide, run: _Run, n_layers: int, k: int, settings: Settings, extra: dict) -> LayerSet:
    width = settings.paper_beam_width
    return paper_beam(guide, run, n_layers, k, width, settings.beam_seeds or width)


def paper_beam(guide: Guide, run: _Run, n_layers: int, k: int, width: int, seeds: int) -> LayerSet:
    """The paper's seeded beam (module docstring); guide ``none`` seeds with every layer."""
    candidates = list(range(n_layers)) if guide.scores is None else guide.order(list(range(n_layers)))[:seeds]
    proposals = [(layer,) for layer in candidates]
    states: list[LayerSet] = []
    for step in range(1, k + 1):
        if step > 1:
            proposals = [tuple(sorted(state + (layer,))) for state in states
                         for layer in range(n_layers) if layer not in state]
        most = len(proposals) if step == 1 else width * (n_layers - step + 1)
        _check_step_fits(run, proposals, most)
        states = [layers for _, layers in run.scored(proposals)[:width]]
    return states[0]


def _check_step_fits(run: _Run, proposals: list[LayerSet], most: int) -> None:
    """The paper's budget rule: a step with anything new to evaluate runs only if its ``most`` evaluations fit."""
    if run.max_evaluations is None or all(tuple(sorted(p)) in run.spend.requested for p in proposals):
        return
    if run.spend.evaluations + most > run.max_evaluations:
        run.exhausted = True
        raise BudgetSpent


@_search("evolutionary", "EvoPress-style: from the guide's one-shot set, one-swap children, the cheapest kept",
         reads_guide=True, figure="never")
def _evolutionary(guide: Guide, run: _Run, n_layers: int, k: int, settings: Settings, extra: dict) -> LayerSet:
    return evolutionary(guide, run, n_layers, k, settings)


def evolutionary(guide: Guide, run: _Run, n_layers: int, k: int, settings: Settings) -> LayerSet:
    import numpy as np

    rng = np.random.default_rng([settings.seed, k])
    if guide.scores is not None:
        parent = tuple(sorted(guide.one_shot_rule(k)))
    else:
        parent = tuple(sorted(rng.choice(n_layers, size=k, replace=False).tolist()))
    parent_cost = run.costs([parent])[0]
    tried = {parent}
    stale = 0
    for _ in range(settings.generations):
        children = []
        for _ in range(50 * settings.offspring):
            if len(children) == settings.offspring:
                break
            out = int(rng.choice(parent))
            back = int(rng.choice([layer for layer in range(n_layers) if layer not in parent]))
            child = tuple(sorted(set(parent) - {out} | {back}))
            if child not in tried:
                tried.add(child)
                children.append(child)
        if not children:
            break
        scored = run.scored(children)
        if scored and scored[0][0] < parent_cost:
            parent_cost, parent = scored[0]
            stale = 0
        else:
            stale += 1
        if run.exhausted or stale >= settings.patience:
            break
    return parent


@_search("exhaustive", "every k-subset: the ground truth", reads_guide=False, figure="always")
def _exhaustive(guide: Guide, run: _Run, n_layers: int, k: int, settings: Settings, extra: dict) -> LayerSet:
    return exhaustive(run, n_layers, k, settings.max_evaluations)


def exhaustive(run: _Run, n_layers: int, k: int, max_evaluations: Optional[int]) -> LayerSet:
    total = math.comb(n_layers, k)
    if max_evaluations is not None and total > max_evaluations:
        raise SearchError(f"exhaustive search at k={k} needs {total} evaluations, more than --max-evaluations "
                          f"{max_evaluations}: raise it or use another search")
    best: Optional[tuple[float, LayerSet]] = None
    combos = itertools.combinations(range(n_layers), k)
    while True:
        chunk = list(itertools.islice(combos, EXHAUSTIVE_CHUNK))
        if not chunk:
            break
        scored = run.scored(chunk)
        if scored and (best is None or scored[0] < best):
            best = scored[0]
        if run.exhausted:
            break
    if best is None:
        raise BudgetSpent
    return best[1]


@_search("random", "the cheapest of seeded random k-sets; their median cost is the floor to beat",
         reads_guide=False, figure="always")
def _random(guide: Guide, run: _Run, n_layers: int, k: int, settings: Settings, extra: dict) -> LayerSet:
    return random_sets(run, n_layers, k, settings, extra)


def random_sets(run: _Run, n_layers: int, k: int, settings: Settings, extra: dict) -> LayerSet:
    import numpy as np

    rng = np.random.default_rng([settings.seed, k, 1])
    wanted = min(settings.max_evaluations or settings.random_draws, math.comb(n_layers, k))
    draws: dict[LayerSet, None] = {}
    while len(draws) < wanted:
        draws[tuple(sorted(rng.choice(n_layers, size=k, replace=False).tolist()))] = None
    scored = run.scored(list(draws))
    extra["random_median_cost"] = float(np.median([cost for cost, _ in scored]))
    return scored[0][1]
