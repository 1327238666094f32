"""Guided removal, the study: searches x guides x objectives x budgets, costs on held-out data, the second paper's
analyses (docs/pruning.md, "Guided removal").

``study`` runs every (objective, search, guide, budget) on the calibration data, then measures every set it
found on the held-out data under every objective (one engine call per held-out id set), and compares each
set with the exhaustive optimum of its (objective, k) by paired resampling of the held-out units:

- per set: held-out cost with its 95% interval, and ``vs_best``: the ratio of its held-out cost to the
  reference's (the exhaustive set of the same objective and k, else the cheapest held-out set found there)
  with the ratio's paired interval, its p-values and the verdict ("A cheaper" / "B cheaper", else "equivalent"
  within the equivalence margin, else "undecided"), and the verdict after adjusting every set's p-values across
  the file (Holm by default, multiplicity.py; a set that is its reference is left out of the family);
- ``heldout_units``: per objective, every found set's held-out cost per unit (sequence, window or item), with
  ``bootstrap`` (seed, resamples): every paired verdict can be recomputed from the file;
- ``cross_objective``: sets found under objective A (each search's), their mean held-out cost under B;
- ``spearman_ppl_accuracy``: per k, over every k-set measured under both ppl and accuracy on the
  calibration data, Spearman of the sets' perplexity ranks against their error-rate ranks, with a 95%
  interval from resampling sequences and items (the same draws for every set);
- ``spread``: per (objective, k), the held-out costs of the searches' sets: min, max, max/min;
- ``jaccard``: mean pairwise Jaccard of the sets found under one objective (across searches and guides)
  against that of the sets one (search, guide) found under two objectives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from . import paired, stats
from .guides import measure_guides
from .multiplicity import DEFAULT_METHOD
from .objectives import Evaluator, Objective, objective_kind
from .pair_rules import DEFAULT_PAIR_RULE
from .search import SEARCHES, Found, Settings, run_search

N_RESAMPLES = 1000


@dataclass
class Data:
    """The ids of one study: text for KL and ppl, the task halves for accuracy (either may be None)."""

    calibration: torch.Tensor
    heldout: torch.Tensor
    task_calibration: Optional[object] = None  # inputs.tasks.ChoiceTask
    task_heldout: Optional[object] = None
    # lm-eval:TASK objectives: one LmEvalEvaluator per task, used for the search AND the reported costs (the
    # harness's task documents are not split: its costs are not held out)
    lm_eval: dict = field(default_factory=dict)
    heldout_groups: Optional[Sequence[int]] = None  # the document of each held-out sequence (Calibration.documents)


@dataclass
class Study:
    n_layers: int
    found: list[Found]
    heldout: list[dict]  # per found set, in the order of ``found``
    base: dict  # the full model: calibration and held-out cost per objective
    analyses: dict
    guides: dict = field(default_factory=dict)
    verdicts: dict = field(default_factory=dict)  # the equivalence margin, multiplicity, bootstrap draws
    heldout_units: dict = field(default_factory=dict)  # per objective: per found set, its held-out cost per unit

    def to_json(self) -> dict:
        return {"prune": {"n_layers": self.n_layers, "base": self.base, "guides": self.guides,
                          "results": [{**f.to_json(), "heldout": h} for f, h in zip(self.found, self.heldout)],
                          "verdicts": self.verdicts, "heldout_units": self.heldout_units, **self.analyses}}


def evaluators(model, data: Data, objectives: list[str], n_layers: int, batch_size, engine_options,
               heldout: bool) -> dict[str, Evaluator]:
    """One evaluator per objective on the calibration (or held-out) ids; kl and ppl share their measurements."""
    ids = data.heldout if heldout else data.calibration
    task = data.task_heldout if heldout else data.task_calibration
    made: dict[str, Evaluator] = {}
    for name in objectives:
        reads = objective_kind(name).reads
        if reads == "harness":
            made[name] = data.lm_eval[name]
        elif reads == "task":
            made[name] = Evaluator(model, task.input_ids, Objective(name, task), n_layers, batch_size,
                                   engine_options)
        else:
            made[name] = Evaluator(model, ids, Objective(name), n_layers, batch_size, engine_options,
                                   groups=data.heldout_groups if heldout else None)
    if "kl" in made and "ppl" in made:
        made["ppl"].measured = made["kl"].measured  # the same probes on the same ids
    return made


def study(model, data: Data, n_layers: int, *, guides: list[str], searches: list[str], objectives: list[str],
          budgets: Optional[list[int]] = None, ceilings: Optional[dict[str, float]] = None,
          settings: Optional[Settings] = None, pair_rule: Any = DEFAULT_PAIR_RULE, batch_size: Optional[int] = None,
          engine_options: Optional[dict] = None, seed: int = 0, replacement_reduce: str = "max",
          calibration_evaluators: Optional[dict[str, Evaluator]] = None,
          heldout_evaluators: Optional[dict[str, Evaluator]] = None,
          progress: Optional[Callable[[int, int], None]] = None,
          note: Callable[[str], None] = lambda _line: None,
          equivalence_margin: float = paired.DEFAULT_EQUIVALENCE_MARGIN, multiplicity: str = DEFAULT_METHOD) -> Study:
    """Budgets (k values) or per-objective ceilings B (absolute costs); see the module docstring.
    ``progress(done, total)`` counts searches run; ``note`` hears each phase before and after them.
    ``heldout_evaluators`` replace the held-out evaluators of their objectives (the sliding-window evaluator).
    The vs_best verdicts use ``equivalence_margin`` and are adjusted across the file by ``multiplicity``."""
    settings = settings or Settings(seed=seed)
    note(f"measuring the guides ({', '.join(guides)}) on the calibration text")
    measured = measure_guides(model, data.calibration, n_layers, guides, pair_rule, batch_size, engine_options,
                              replacement_reduce)
    calibration = calibration_evaluators or evaluators(model, data, objectives, n_layers, batch_size,
                                                       engine_options, heldout=False)
    jobs = [(objective, search, guide, stop) for objective in objectives for search in searches
            for guide in (guides if SEARCHES.get(search).reads_guide else guides[:1])
            for stop in ([{"k": k} for k in budgets] if budgets else [{"ceiling": ceilings[objective]}])]
    note(f"{len(jobs)} searches (search x guide x objective x budget)")
    found: list[Found] = []
    for done, (objective, search, guide, stop) in enumerate(jobs):
        if progress:
            progress(done, len(jobs))
        found.append(run_search(search, measured[guide], calibration[objective], n_layers, settings, **stop))
    if progress:
        progress(len(jobs), len(jobs))
    held = {**evaluators(model, data, objectives, n_layers, batch_size, engine_options, heldout=True),
            **(heldout_evaluators or {})}
    sets = list(dict.fromkeys(f.layers for f in found if f.layers))
    note(f"held-out costs of the {len(sets)} sets found, and their paired intervals")
    for evaluator in held.values():
        evaluator.costs(sets)  # one call per held-out id set (kl and ppl share theirs)
    indices = {name: stats.bootstrap_indices(len(e.base_units()), N_RESAMPLES, seed, groups=e.groups)
               for name, e in held.items()}  # the task's items by their work
    reference = _references(found, held)
    heldout = adjusted_records([_heldout_record(f, held, indices, reference, equivalence_margin) for f in found],
                               multiplicity)
    base = {name: {"calibration": calibration[name].base_cost(), "heldout": held[name].base_cost()}
            for name in objectives}
    analyses = {
        "cross_objective": cross_objective(found, held),
        "spread": spread(found, held),
        "jaccard": jaccard_summary(found),
    }
    if "ppl" in calibration and "accuracy" in calibration:
        analyses["spearman_ppl_accuracy"] = spearman_ppl_accuracy(calibration["ppl"], calibration["accuracy"], seed)
    guide_record = {name: {"scores": None if g.scores is None else [float(x) for x in g.scores],
                           "layer_passes": g.layer_passes} for name, g in measured.items()}
    verdicts = {"equivalence_margin": equivalence_margin, "multiplicity": multiplicity, "level": 0.95,
                "bootstrap": {"n_resamples": N_RESAMPLES, "seed": seed}}
    return Study(n_layers, found, heldout, base, analyses, guide_record, verdicts, heldout_units(held, sets))


def heldout_units(held: dict[str, Evaluator], sets: list[tuple[int, ...]]) -> dict:
    """Per objective: what a unit is (its count) and every found set's held-out cost per unit, keyed by the set
    ("3,7"), 8 significant digits: what the intervals and paired verdicts resample."""
    return {name: {"n_units": len(evaluator.base_units()),
                   # the work of each unit where the resamples draw whole works (stats.bootstrap_indices groups=)
                   "groups": None if evaluator.groups is None else [int(g) for g in evaluator.groups],
                   "per_unit": {",".join(map(str, s)): paired.rounded(evaluator.units(s)) for s in sets}}
            for name, evaluator in held.items()}


def adjusted_records(records: list[dict], method: str) -> list[dict]:
    """The vs_best comparisons of every found set as one verdict table: their p-values adjusted together
    (paired.adjusted_table). A set that is its own reference compares nothing and stays out of the family."""
    family = [n for n, record in enumerate(records) if "vs_best" in record and not record["vs_best"]["same_set"]]
    comparisons = [paired.CostComparison(**{k: v for k, v in records[n]["vs_best"].items() if k in _COMPARED})
                   for n in family]
    for n, comparison in zip(family, paired.adjusted_table(comparisons, method)):
        records[n]["vs_best"].update(p_adjusted=comparison.p_adjusted,
                                     p_equivalent_adjusted=comparison.p_equivalent_adjusted,
                                     verdict_adjusted=comparison.verdict_adjusted)
    for record in records:
        if "vs_best" in record and record["vs_best"]["same_set"]:
            record["vs_best"].update(p_adjusted=None, p_equivalent_adjusted=None,
                                     verdict_adjusted=record["vs_best"]["verdict"])
    return records


_COMPARED = ("a", "b", "ratio", "ratio_low", "ratio_high", "verdict", "p", "p_equivalent")


def _references(found: list[Found], held: dict[str, Evaluator]) -> dict[tuple[str, int], tuple[int, ...]]:
    """Per (objective, k): the exhaustive set, else the set cheapest on the held-out data."""
    reference: dict[tuple[str, int], tuple[int, ...]] = {}
    for f in found:
        if f.search == "exhaustive" and f.layers:
            reference[(f.objective, f.k)] = f.layers
    for f in found:
        key = (f.objective, f.k)
        if f.layers and key not in reference:
            candidates = [g.layers for g in found if (g.objective, g.k) == key and g.layers]
            reference[key] = min(candidates, key=lambda s: (held[f.objective].costs([s])[0], s))
    return reference


def _heldout_record(f: Found, held: dict[str, Evaluator], indices: dict, reference: dict,
                    margin: float = paired.DEFAULT_EQUIVALENCE_MARGIN) -> dict:
    record: dict = {}
    if not f.layers:
        return record
    for name, evaluator in held.items():
        units = evaluator.units(f.layers)
        low, high = stats.interval(evaluator.objective.resampled_costs(units, indices[name]))
        record[name] = {"cost": evaluator.objective.cost(units), "low": low, "high": high}
    best = reference.get((f.objective, f.k))
    if best is not None:
        evaluator = held[f.objective]
        record["vs_best"] = {"reference": list(best), "same_set": best == f.layers,
                             **paired_ratio(evaluator.objective, evaluator.units(f.layers), evaluator.units(best),
                                            indices[f.objective], margin)}
    return record


def paired_ratio(objective: Objective, a: np.ndarray, b: np.ndarray, indices: np.ndarray,
                 margin: float = paired.DEFAULT_EQUIVALENCE_MARGIN) -> dict:
    """Cost of A / cost of B with the paired 95% interval of the ratio, its p-values and the verdict (held-out
    units; "equivalent" within ``margin``)."""
    if objective.name != "ppl":
        return paired.compare_costs(a, b, indices, margin=margin).to_json()
    # Perplexity: the ratio of two perplexities is exp(mean NLL_a - mean NLL_b), resampled on the same draws.
    compared = paired.compare_log_costs(a, b, indices, margin)
    return {**compared.to_json(), "a": objective.cost(a), "b": objective.cost(b)}


def cross_objective(found: list[Found], held: dict[str, Evaluator]) -> list[dict]:
    """Per (k, objective searched A, objective evaluated B): mean held-out cost under B of A's sets."""
    rows = []
    for k in sorted({f.k for f in found if f.layers}):
        for a in dict.fromkeys(f.objective for f in found):
            sets = [f.layers for f in found if f.objective == a and f.k == k and f.layers]
            if not sets:
                continue
            rows.append({"k": k, "searched": a, "n_sets": len(sets), "evaluated": {
                b: float(np.mean([held[b].costs([s])[0] for s in sets])) for b in held}})
    return rows


def spread(found: list[Found], held: dict[str, Evaluator]) -> list[dict]:
    rows = []
    for objective in dict.fromkeys(f.objective for f in found):
        for k in sorted({f.k for f in found if f.objective == objective and f.layers}):
            costs = [held[objective].costs([f.layers])[0] for f in found
                     if f.objective == objective and f.k == k and f.layers]
            low, high = min(costs), max(costs)
            rows.append({"objective": objective, "k": k, "n_sets": len(costs), "min": low, "max": high,
                         "max_over_min": high / low if low > 0 else None,
                         "distinct_sets": len({f.layers for f in found if f.objective == objective and f.k == k})})
    return rows


def jaccard_summary(found: list[Found]) -> list[dict]:
    """Per k: mean Jaccard within one objective (across searches and guides) and across objectives."""
    rows = []
    for k in sorted({f.k for f in found if f.layers}):
        at_k = [f for f in found if f.k == k and f.layers]
        within = [stats.jaccard(set(a.layers), set(b.layers)) for a, b in combinations(at_k, 2)
                  if a.objective == b.objective]
        across = [stats.jaccard(set(a.layers), set(b.layers)) for a, b in combinations(at_k, 2)
                  if a.objective != b.objective and (a.search, a.guide) == (b.search, b.guide)]
        rows.append({"k": k, "within_objective": float(np.mean(within)) if within else None,
                     "across_objectives": float(np.mean(across)) if across else None,
                     "n_within": len(within), "n_across": len(across)})
    return rows


def spearman_ppl_accuracy(ppl: Evaluator, accuracy: Evaluator, seed: int) -> list[dict]:
    """Per k, over the k-sets measured under both objectives (all of them after an exhaustive search)."""
    rows = []
    common = set(ppl.measured) & set(accuracy.measured)
    for k in sorted({len(s) for s in common}):
        sets = sorted(s for s in common if len(s) == k)
        if len(sets) < 3:
            continue
        nll = np.stack([ppl.units(s) for s in sets], axis=1)  # [sequences, sets]
        error = np.stack([accuracy.units(s) for s in sets], axis=1)  # [items, sets]
        rho = stats.spearman(nll.mean(axis=0), error.mean(axis=0))
        seq_draws = stats.bootstrap_indices(len(nll), N_RESAMPLES, seed)
        item_draws = stats.bootstrap_indices(len(error), N_RESAMPLES, seed + 1)
        resampled = [stats.spearman(nll[s].mean(axis=0), error[i].mean(axis=0)) for s, i in zip(seq_draws, item_draws)]
        resampled = [r for r in resampled if r is not None]
        low, high = stats.interval(np.array(resampled)) if resampled else (None, None)
        rows.append({"k": k, "n_sets": len(sets), "spearman": rho, "low": low, "high": high})
    return rows
