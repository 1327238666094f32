"""Pruning validation: do the protocols' layer choices hold when the layers are really removed?

Six methods each choose k layers to remove: the two swap protocols (replacement, interchange)
read through a pair rule, single-layer removal KL, ShortGPT's Block Influence, the angular
distance of Gromov et al. and SLEB's greedy search. Every chosen set is then removed for real
(``removal(S)`` probes) and its KL to the full model and perplexity are measured on held-out ids,
text no method chose on, with a paired-bootstrap interval; two methods' costs are compared by a paired
test on their per-sequence held-out KLs (``paired.compare_costs``: a direction, "equivalent" within the
equivalence margin, or "undecided"), the p-values adjusted across all budgets' comparisons (Holm by default,
multiplicity.py). The per-sequence held-out costs are saved with the bootstrap's seed and size, so every verdict
can be recomputed from the JSON. The calibration costs are kept beside them for contrast. docs/pruning.md states
every rule and source.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from tabulate import tabulate

from .. import engine
from ..cases import layer_set_label
from ..engine.adapters import find_layer_list
from ..engine.measurement import Measurement
from ..engine.probes import removal
from ..errors import InputError
from ..numerics import perplexity
from . import stats
from .audit import Audit
from .mean_interval import expanded_interval
from .multiplicity import DEFAULT_METHOD, NAMES
from .pair_rules import PAIR_RULES, SetRule, lowest_k
from .paired import (
    A_CHEAPER,
    B_CHEAPER,
    DEFAULT_EQUIVALENCE_MARGIN,
    CostComparison,
    adjusted_table,
    compare_costs,
    rounded,
)
from .sliding_window import WindowedHeldout

ALL_METHODS = ("replacement", "interchange", "removal", "block_influence", "angular", "sleb")
HIDDEN_STATE_METHODS = {"block_influence", "angular"}

LayerSet = list[int]


class PruningError(InputError):
    pass


# --- set rules: pure functions of scores --------------------------------------------------------


def pair_rule_set(pairs: Sequence[tuple[int, int]], distances: Sequence[float], k: int,
                  rule: Union[str, SetRule] = SetRule(), n_layers: Optional[int] = None) -> LayerSet:
    """The (at most) k layers a protocol removes, read from its pair distances by ``rule`` (a registered name,
    or a ``SetRule`` with its parameters; ``pair_rules.py``; smallest distance = most redundant). Fewer than k
    come back when the pairs run out (or, under min-partner, when the spacing leaves no layer)."""
    return SetRule.of(rule).choose(pairs, distances, k, n_layers)


def best_block(block_distances: Sequence[float], k: int) -> LayerSet:
    """The k consecutive layers starting where the block distance is smallest (the first such start on ties)."""
    start = int(np.argmin(block_distances))
    return list(range(start, start + k))


# --- hidden-state baselines ----------------------------------------------------------------------


def _token_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine of the two hidden states of every token, in float64 so that near-1 values keep their digits."""
    a, b = a.double(), b.double()
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def block_influence(states: Sequence[torch.Tensor]) -> np.ndarray:
    """ShortGPT's BI per layer l: 1 - mean over all tokens of cos(h_l, h_{l+1}).

    ``states`` is ``engine.layer_inputs``: the N+1 hidden states entering every slot, then the last output.
    """
    return np.array([1.0 - _token_cosines(states[layer], states[layer + 1]).mean().item()
                     for layer in range(len(states) - 1)])


def angular_distances(states: Sequence[torch.Tensor], k: int) -> np.ndarray:
    """Gromov et al.'s distance of each block of k layers, indexed by its first layer l = 0..N-k:
    mean over all tokens of arccos(cos(h_l, h_{l+k})) / pi. (The paper uses the last token only.)"""
    return np.array([
        (torch.arccos(_token_cosines(states[start], states[start + k]).clamp(-1.0, 1.0)) / math.pi).mean().item()
        for start in range(len(states) - k)
    ])


# --- SLEB ----------------------------------------------------------------------------------------


def sleb_sets(model: torch.nn.Module, input_ids: torch.Tensor, n_layers: int, max_k: int,
              batch_size: Optional[int] = None) -> list[LayerSet]:
    """SLEB's greedy search: at each step remove the one more layer whose removal, with those already
    removed, gives the lowest KL(full || pruned) on ``input_ids`` (ties by layer index). Sets for k = 1..max_k.

    ``input_ids`` are the calibration ids: the search's own objective. Its sets are then scored on held-out
    ids like every other method's, so SLEB is not judged on the number it minimised."""
    removed: LayerSet = []
    sets: list[LayerSet] = []
    for _ in range(max_k):
        candidates = {layer: removal(removed + [layer], n_layers) for layer in range(n_layers) if layer not in removed}
        # One call for all candidates: the trie shares the base pass and common prefixes.
        measurement = engine.measure(model, input_ids, list(candidates.values()), batch_size=batch_size)
        best = min(candidates, key=lambda layer: (measurement.kl(candidates[layer]), layer))
        removed.append(best)
        sets.append(sorted(removed))
    return sets


# --- choosing every method's sets ---------------------------------------------------------------


def choose_sets(model: torch.nn.Module, calibration_ids: torch.Tensor, audit: Audit, max_k: int,
                methods: Sequence[str], batch_size: Optional[int] = None,
                pair_rule: Union[str, SetRule, None] = None) -> dict[str, list[Optional[LayerSet]]]:
    """Per method, its set for k = 1..max_k; None where it has no k distinct layers (a pair rule ran out).
    The pair methods read their sets by ``pair_rule``, by default the audit's own (``audit.pair_rule``)."""
    n_layers = len(audit.removals)
    pair_rule = audit.pair_rule if pair_rule is None else SetRule.of(pair_rule)
    budgets = range(1, max_k + 1)
    pairs = [(p.i, p.j) for p in audit.pairs]
    influence, angular = _hidden_state_scores(model, calibration_ids, max_k, batch_size, methods)
    chosen: dict[str, list[Optional[LayerSet]]] = {}
    for method in methods:
        if method == "replacement":
            sets = [pair_rule_set(pairs, [p.replacement.value for p in audit.pairs], k, pair_rule, n_layers)
                    for k in budgets]
        elif method == "interchange":
            sets = [pair_rule_set(pairs, [p.interchange.value for p in audit.pairs], k, pair_rule, n_layers)
                    for k in budgets]
        elif method == "removal":
            removal_kl = {r.layer: r.kl.value for r in audit.removals}
            sets = [lowest_k(removal_kl, k) for k in budgets]
        elif method == "block_influence":
            sets = [lowest_k(dict(enumerate(influence)), k) for k in budgets]
        elif method == "angular":
            sets = [best_block(angular[k], k) for k in budgets]
        elif method == "sleb":
            sets = sleb_sets(model, calibration_ids, n_layers, max_k, batch_size)
        else:
            raise PruningError(f"unknown method {method!r}: choose from {', '.join(ALL_METHODS)}")
        chosen[method] = [layers if len(layers) == k else None for k, layers in zip(budgets, sets)]
    return chosen


def _hidden_state_scores(model: torch.nn.Module, calibration_ids: torch.Tensor, max_k: int,
                         batch_size: Optional[int], methods: Sequence[str]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Block influence per layer and angular distances per budget, or empty when no method needs them.
    Only these small arrays outlive the call: the hidden states of every slot are freed before SLEB runs."""
    if not HIDDEN_STATE_METHODS & set(methods):
        return np.empty(0), {}
    states = engine.layer_inputs(model, calibration_ids, batch_size)
    return block_influence(states), {k: angular_distances(states, k) for k in range(1, max_k + 1)}


# --- the result ----------------------------------------------------------------------------------


Interval = tuple[Optional[float], Optional[float]]


@dataclass(frozen=True)
class Cost:
    """What removing one set really costs: on the held-out ids (the cost), and on the calibration ids (what the
    methods chose on, kept for contrast)."""

    kl: float  # KL(full || pruned) on the calibration ids, nats per token
    ppl: float  # perplexity of the pruned model on the calibration ids
    heldout_kl: float  # the same on the held-out ids: the cost every verdict uses
    heldout_ppl: float
    heldout_kl_ci: Interval = (None, None)  # 95% bootstrap interval over held-out sequences
    heldout_ppl_ci: Interval = (None, None)


@dataclass(frozen=True)
class Budget:
    k: int
    sets: dict[str, Optional[LayerSet]]  # per method; None: no set of k layers
    costs: dict[str, Cost]  # per method that has a set
    jaccard: dict[tuple[str, str], float]  # (a, b) in method order, both with a set
    # (a, b) in method order, both with a set: paired test of their held-out KLs, the ratio a / b with its interval
    comparisons: dict[tuple[str, str], CostComparison] = field(default_factory=dict)
    # per method with a set: its held-out KL and NLL per sequence (or window), what the comparisons resample
    heldout_per_sequence: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """Replacement- against interchange-guided removal at one budget, on held-out KL, paired over sequences."""

    k: int
    safer: str  # "replacement", "interchange", "same set", "equivalent" (TOST within the margin) or "undecided"
    factor: Optional[float]  # held-out KL of the costlier / of the cheaper (>= 1); None when the cheaper KL is 0
    ratio: Optional[float] = None  # held-out KL replacement / interchange; None when interchange's is 0
    ratio_low: Optional[float] = None  # its 95% paired-bootstrap interval
    ratio_high: Optional[float] = None
    safer_adjusted: Optional[str] = None  # the same from the p-values adjusted across the comparisons' table

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "safer": self.safer, "factor": self.factor, "ratio": self.ratio,
                "ratio_ci": [self.ratio_low, self.ratio_high], "safer_adjusted": self.safer_adjusted}


@dataclass
class PruningResult:
    methods: list[str]
    n_layers: int
    pair_rule: SetRule
    base_ppl: float  # the full model on the calibration ids
    heldout_base_ppl: float  # the full model on the held-out ids: what the prune cases compare with
    budgets: list[Budget]
    verdict: list[Verdict]
    seconds: float = 0.0
    n_heldout: int = 0  # held-out sequences (or sliding windows) the costs and their intervals come from
    heldout_units: str = "sequences"  # what n_heldout counts: "sequences", or "windows" (--heldout-window)
    equivalence_margin: float = DEFAULT_EQUIVALENCE_MARGIN
    multiplicity: str = DEFAULT_METHOD  # how the comparisons' p-values are adjusted across all budgets
    n_resamples: int = 1000  # the paired bootstrap: stats.bootstrap_indices(n_heldout, n_resamples, seed)
    seed: int = 0
    bootstrap_unit: str = "sequence"  # what the paired resamples draw: "document" (heldout_groups) or "sequence"
    bootstrap_groups: Optional[list[int]] = None  # each held-out sequence's document, where drawn by document

    def to_json(self) -> dict[str, Any]:
        """The ``pruning`` section of the audit JSON."""
        return {"pruning": {
            "methods": self.methods,
            "n_layers": self.n_layers,
            "pair_rule": self.pair_rule.name,
            "rule": self.pair_rule.record(),  # the name with its parameters (spacing, kept boundary layers)
            "base_ppl": self.base_ppl,
            "heldout_base_ppl": self.heldout_base_ppl,
            "costs_on": "heldout",  # every verdict and prune case reads the heldout_* costs
            "n_heldout_sequences": self.n_heldout,
            "heldout_units": self.heldout_units,
            "bootstrap_unit": self.bootstrap_unit,
            "budgets": [_budget_json(budget) for budget in self.budgets],
            "verdict": [v.to_json() for v in self.verdict],
            # what recomputes every comparison from the per-sequence costs (docs/pruning.md, "Recomputing a verdict")
            "bootstrap": {"n_resamples": self.n_resamples, "seed": self.seed, "level": 0.95,
                          "groups": self.bootstrap_groups},
            "equivalence_margin": self.equivalence_margin,
            "multiplicity": self.multiplicity,
            "seconds": round(self.seconds, 3),
        }}


def _budget_json(budget: Budget) -> dict[str, Any]:
    def per_method(field: str) -> dict[str, Optional[float]]:
        return {method: getattr(cost, field) for method, cost in budget.costs.items()}

    return {"k": budget.k, "sets": budget.sets, "kl": per_method("kl"), "ppl": per_method("ppl"),
            "heldout_kl": per_method("heldout_kl"), "heldout_ppl": per_method("heldout_ppl"),
            "heldout_kl_ci": {m: list(c.heldout_kl_ci) for m, c in budget.costs.items()},
            "heldout_ppl_ci": {m: list(c.heldout_ppl_ci) for m, c in budget.costs.items()},
            "jaccard": {f"{a}|{b}": value for (a, b), value in budget.jaccard.items()},
            "comparisons": {f"{a}|{b}": comparison.to_json() for (a, b), comparison in budget.comparisons.items()},
            "heldout_kl_per_sequence": {m: rounded(u["kl"]) for m, u in budget.heldout_per_sequence.items()},
            "heldout_nll_per_sequence": {m: rounded(u["nll"]) for m, u in budget.heldout_per_sequence.items()}}


def pairwise_jaccard(sets: Mapping[str, Optional[LayerSet]]) -> dict[tuple[str, str], float]:
    named = [(method, set(layers)) for method, layers in sets.items() if layers is not None]
    return {(a, b): stats.jaccard(set_a, set_b)
            for n, (a, set_a) in enumerate(named) for b, set_b in named[n + 1:]}


def pairwise_comparisons(sets: Mapping[str, Optional[LayerSet]], per_sequence: Mapping[str, np.ndarray],
                         indices: np.ndarray, margin: float = DEFAULT_EQUIVALENCE_MARGIN
                         ) -> dict[tuple[str, str], CostComparison]:
    """Every two methods with a set, in method order: their held-out KLs compared on the same resamples."""
    named = [method for method, layers in sets.items() if layers is not None]
    return {(a, b): compare_costs(per_sequence[a], per_sequence[b], indices, margin=margin)
            for n, a in enumerate(named) for b in named[n + 1:]}


def adjust_budgets(budgets: list[Budget], method: str) -> list[Budget]:
    """One verdict table: every budget's comparisons, their p-values adjusted together (multiplicity.py)."""
    keys = [(n, pair) for n, budget in enumerate(budgets) for pair in budget.comparisons]
    adjusted = adjusted_table([budgets[n].comparisons[pair] for n, pair in keys], method)
    tables: list[dict] = [{} for _ in budgets]
    for (n, pair), comparison in zip(keys, adjusted):
        tables[n][pair] = comparison
    return [replace(budget, comparisons=table) for budget, table in zip(budgets, tables)]


def flipped(comparison: CostComparison) -> CostComparison:
    """B against A: the ratio b / a and its interval (the inverted bounds, swapped), the verdicts mirrored."""
    return comparison.flipped()


def comparison_of(budget: Budget, a: str, b: str) -> Optional[CostComparison]:
    """The paired comparison of methods a and b at this budget, whichever order it was stored in."""
    if (a, b) in budget.comparisons:
        return budget.comparisons[(a, b)]
    if (b, a) in budget.comparisons:
        return flipped(budget.comparisons[(b, a)])
    return None


def protocol_verdict(budget: Budget) -> Optional[Verdict]:
    """Which of replacement / interchange removed the cheaper set, by a paired test on held-out per-sequence
    KL (without a direction: "equivalent" within the margin, else "undecided"), with the ratio's interval."""
    if budget.sets.get("replacement") is None or budget.sets.get("interchange") is None:
        return None
    if budget.sets["replacement"] == budget.sets["interchange"]:
        return Verdict(budget.k, "same set", 1.0, 1.0, 1.0, 1.0, "same set")
    comparison = comparison_of(budget, "replacement", "interchange")
    def label(verdict: Optional[str]) -> Optional[str]:
        return {A_CHEAPER: "replacement", B_CHEAPER: "interchange"}.get(verdict, verdict)

    cheaper, costlier = sorted((comparison.a, comparison.b))
    factor = costlier / cheaper if cheaper > 0 else None
    return Verdict(budget.k, label(comparison.verdict), factor, comparison.ratio, comparison.ratio_low,
                   comparison.ratio_high, label(comparison.verdict_adjusted))


# --- measuring and the entry point ---------------------------------------------------------------


def _measure_sets(model: torch.nn.Module, input_ids: torch.Tensor, sets: Sequence[LayerSet], n_layers: int,
                  batch_size: Optional[int], progress: Optional[Callable[[int, int], None]] = None) -> Measurement:
    """Every distinct set in ONE call, so the trie shares the base pass and common prefixes."""
    probes = list(dict.fromkeys(removal(layers, n_layers) for layers in sets))
    return engine.measure(model, input_ids, probes, batch_size=batch_size, progress=progress)


def _cost(layers: LayerSet, n_layers: int, calibration: Measurement, heldout: Measurement,
          indices: np.ndarray) -> Cost:
    probe = removal(layers, n_layers)
    measured = heldout[probe]
    n = len(measured.kl_per_seq)
    kl_ci = expanded_interval(stats.bootstrap_means(measured.kl_per_seq, indices), n)
    # Perplexity is exp of the mean NLL, so its interval is exp of the mean NLL's (a monotone map).
    nll_low, nll_high = expanded_interval(stats.bootstrap_means(measured.nll_per_seq, indices), n)
    return Cost(calibration.kl(probe), calibration[probe].ppl, measured.kl, measured.ppl, kl_ci,
                (perplexity(nll_low), perplexity(nll_high)))


def _check_arguments(model: torch.nn.Module, audit: Audit, max_k: int, methods: Sequence[str]) -> int:
    owner, attribute = find_layer_list(model)
    n_layers = len(getattr(owner, attribute))
    if len(audit.removals) != n_layers:
        raise PruningError(f"the audit has {len(audit.removals)} layers but the model has {n_layers}: "
                           "pass the audit of this model")
    if not 1 <= max_k < n_layers:
        raise PruningError(f"max_k={max_k}: choose 1..{n_layers - 1} (at least one layer must stay)")
    unknown = [method for method in methods if method not in ALL_METHODS]
    if unknown or not methods:
        raise PruningError(f"unknown or no methods {unknown}: choose from {', '.join(ALL_METHODS)}")
    return n_layers


def validate_pruning(model: torch.nn.Module, calibration_ids: torch.Tensor, audit: Audit, max_k: int = 4,
                     methods: Sequence[str] = ALL_METHODS, *, heldout_ids: torch.Tensor,
                     batch_size: Optional[int] = None, pair_rule: Union[str, SetRule, None] = None,
                     n_resamples: int = 1000,
                     seed: int = 0, progress: Optional[Callable[[int, int], None]] = None,
                     attention_type: str = "layer", equivalence_margin: float = DEFAULT_EQUIVALENCE_MARGIN,
                     multiplicity: str = DEFAULT_METHOD,
                     heldout_groups: Optional[Sequence[int]] = None) -> PruningResult:
    """Choose each method's sets for k = 1..max_k on ``calibration_ids`` (the ids ``audit`` was measured on),
    remove them for real and measure their cost on ``heldout_ids`` (text none of them chose on; ``runner.
    heldout_for`` gives the audit's), with ``n_resamples`` paired bootstrap resamples of the held-out
    sequences drawn with ``seed``. The calibration costs are measured too, for contrast (``progress`` sees
    both measurements). ``heldout_ids`` may instead be a `sliding_window.WindowedHeldout` (``--heldout-window``):
    the held-out costs are then the sliding-window evaluator's, and its windows are the resampled units.
    Comparisons are "equivalent" within ``equivalence_margin`` (relative) and adjusted by ``multiplicity``.
    ``heldout_groups`` (the document of each held-out sequence, ``Calibration.documents``) makes the resamples
    draw whole documents (``stats.bootstrap_indices``): sequences of one work are not independent."""
    started = time.perf_counter()
    methods = list(dict.fromkeys(methods))
    if isinstance(pair_rule, str) and pair_rule not in PAIR_RULES:
        raise PruningError(f"unknown pair rule {pair_rule!r}: use one of {', '.join(PAIR_RULES)}")
    pair_rule = audit.pair_rule if pair_rule is None else SetRule.of(pair_rule)  # the audit's rule by default
    n_layers = _check_arguments(model, audit, max_k, methods)
    windowed = isinstance(heldout_ids, WindowedHeldout)
    units = "windows" if windowed else "sequences"
    if heldout_ids is None or (heldout_ids.n_sequences if windowed else heldout_ids.shape[0]) < 2:
        raise PruningError(f"pruning costs are measured on held-out text, and at least 2 held-out {units} are "
                           "needed for their intervals: pass heldout_ids (--heldout SOURCE, --heldout-tokens)")
    chosen = choose_sets(model, calibration_ids, audit, max_k, methods, batch_size, pair_rule)
    every_set = [layers for sets in chosen.values() for layers in sets if layers is not None]
    stages = _TwoStages(progress)
    calibration = _measure_sets(model, calibration_ids, every_set, n_layers, batch_size, stages.first)
    if windowed:
        probes = list(dict.fromkeys(removal(layers, n_layers) for layers in every_set))
        heldout = heldout_ids.measure(model, probes, attention_type, stages.then)
    else:
        heldout = _measure_sets(model, heldout_ids, every_set, n_layers, batch_size, stages.then)
    groups = None if windowed else heldout_groups
    # Shared by every cost (paired); by document where the held-out text knows its documents.
    indices = stats.bootstrap_indices(heldout.n_sequences, n_resamples, seed, groups=groups)
    budgets = []
    for k in range(1, max_k + 1):
        sets = {method: chosen[method][k - 1] for method in methods}
        with_set = {method: layers for method, layers in sets.items() if layers is not None}
        costs = {method: _cost(layers, n_layers, calibration, heldout, indices) for method, layers in with_set.items()}
        measured = {method: heldout[removal(layers, n_layers)] for method, layers in with_set.items()}
        per_sequence = {method: m.kl_per_seq for method, m in measured.items()}
        budgets.append(Budget(k, sets, costs, pairwise_jaccard(sets),
                              pairwise_comparisons(sets, per_sequence, indices, equivalence_margin),
                              {method: {"kl": m.kl_per_seq, "nll": m.nll_per_seq} for method, m in measured.items()}))
    budgets = adjust_budgets(budgets, multiplicity)
    verdict = [v for v in map(protocol_verdict, budgets) if v is not None]
    return PruningResult(methods, n_layers, pair_rule, calibration.base_ppl, heldout.base_ppl, budgets, verdict,
                         time.perf_counter() - started, heldout.n_sequences, units, equivalence_margin, multiplicity,
                         n_resamples, seed, "sequence" if groups is None else "document",
                         None if groups is None else [int(g) for g in groups])


class _TwoStages:
    """One progress count over the calibration and the held-out measurement."""

    def __init__(self, progress: Optional[Callable[[int, int], None]]):
        self.progress, self.total = progress, 0

    def first(self, done: int, total: int) -> None:
        self.total = total
        if self.progress:
            self.progress(done, 2 * total)  # the held-out set is about as large; corrected once it starts

    def then(self, done: int, total: int) -> None:
        if self.progress:
            self.progress(self.total + done, self.total + total)


# --- the table -----------------------------------------------------------------------------------


def _layers(layers: Optional[LayerSet]) -> str:
    return "-" if layers is None else layer_set_label(layers)


def render_table(result: PruningResult) -> str:
    """Sets and their measured cost per budget (held-out, with intervals; calibration for contrast), pairwise
    Jaccard, and the replacement-vs-interchange verdict of the paired test with the ratio's interval."""
    header = (f"pruning validation: {result.n_layers} layers, pair rule {result.pair_rule.label}; costs on "
              f"{result.n_heldout} held-out {result.heldout_units} (full model perplexity "
              f"{result.heldout_base_ppl:.3f}; calibration {result.base_ppl:.3f}), 95% paired-bootstrap intervals")
    rows = []
    for budget in result.budgets:
        for method, layers in budget.sets.items():
            cost = budget.costs.get(method)
            row = [budget.k, method, _layers(layers)]
            if cost is None:
                row += ["-"] * 4
            else:
                row += [f"{cost.heldout_kl:.4f} {_interval(cost.heldout_kl_ci, '.4f')}",
                        f"{cost.heldout_ppl:.3f} {_interval(cost.heldout_ppl_ci, '.2f')}",
                        f"{cost.kl:.4f}", f"{cost.ppl:.3f}"]
            rows.append(row)
    headers = ["k", "method", "removes", "held-out KL [95% CI]", "held-out ppl [95% CI]", "calib. KL", "calib. ppl"]
    costs = tabulate(rows, headers=headers, disable_numparse=True, colalign=["right", "left", "left"]
                     + ["right"] * (len(headers) - 3))
    method_pairs = list(dict.fromkeys(pair for budget in result.budgets for pair in budget.jaccard))
    jaccard = tabulate(
        [[f"{a} | {b}"] + [_optional(budget.jaccard.get((a, b)), ".2f") for budget in result.budgets]
         for a, b in method_pairs],
        headers=["Jaccard"] + [f"k={budget.k}" for budget in result.budgets],
        disable_numparse=True, colalign=["left"] + ["right"] * len(result.budgets),
    )
    verdict = tabulate(
        [[v.k, v.safer, v.safer_adjusted or "-", "-" if v.safer == "same set" else
          f"{_optional(v.ratio, '.2f')} {_interval((v.ratio_low, v.ratio_high), '.2f')}"] for v in result.verdict],
        headers=["k", "cheaper on held-out (paired test)", f"after {result.multiplicity}", "KL ratio R/I [95% CI]"],
        disable_numparse=True, colalign=["right", "left", "left", "right"],
    )
    note = (f"verdicts: a direction from the 95% interval of the difference, else equivalent when the 90% interval of "
            f"the ratio lies in [{1 / (1 + result.equivalence_margin):.3f}, {1 + result.equivalence_margin:.3f}] "
            f"(TOST, margin {result.equivalence_margin:g}), else undecided; adjusted across all "
            f"{sum(len(b.comparisons) for b in result.budgets)} comparisons by {NAMES[result.multiplicity]}")
    return "\n\n".join([header, costs, jaccard, verdict, note])


def _interval(bounds: Interval, spec: str) -> str:
    low, high = bounds
    return "[n/a]" if low is None or high is None else f"[{low:{spec}}, {high:{spec}}]"


def _optional(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)
