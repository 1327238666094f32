"""The generated cases of one audit document, each with its rule and its properties, independent of pytest.

    for case in judged_cases(document, Tolerances()):
        passed, message = case.check()     # True / False, or None when there is nothing to judge

The plugin turns each into a test item (`plugin.items`); `swapkl report` judges an audit JSON with the same
rules (`report.audit_json`), so a report from the JSON and one from the junit file of the same audit agree.
Names and property keys come from the catalogue (`cases`); the rules from `agreement`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

from .. import cases
from .agreement import (
    Tolerances,
    failure_message,
    jaccard_passes,
    pair_verdicts,
    prune_gap_passes,
    prune_passes,
    spearman_passes,
)
from .merge_rule import merge_passes

Check = Callable[[], tuple[Optional[bool], str]]


@dataclass(frozen=True)
class JudgedCase:
    name: str
    check: Check
    properties: list  # [(key, value)], in the catalogue's order


def judged_cases(document: dict, tolerances: Tolerances, origin: str = "this process",
                 cache_hit: bool = False) -> list[JudgedCase]:
    """Every case the audit generates, in the order the plugin adds them (`cases.planned_cases`)."""
    found = [JudgedCase(cases.AUDIT, lambda: sanity_passes(document),
                        cases.audit_properties(document, origin, cache_hit))]
    n_pairs = len(document["pairs"])
    for pair, verdict in zip(document["pairs"], pair_verdicts(document, tolerances)):
        def check(pair=pair, verdict=verdict) -> tuple[bool, str]:
            if verdict.passed:
                return True, verdict.reason
            return False, failure_message(pair, verdict, n_pairs, document)

        found.append(JudgedCase(cases.pair_case(pair["i"], pair["j"]), check, cases.pair_properties(pair, verdict)))
    found.append(JudgedCase(cases.RANK_CORRELATION, lambda: spearman_passes(document, tolerances),
                            cases.rank_properties(document, tolerances.min_spearman)))
    for k in cases.budgets_within(tolerances.jaccard_k, document["model"]["n_layers"]):
        found.append(JudgedCase(cases.topk_case(k), lambda k=k: jaccard_passes(document, k, tolerances),
                                cases.topk_properties(document, k, tolerances.min_jaccard)))
    if "pruning" in document:
        found += _prune_cases(document, tolerances)
    found += [_prune_budget_case(document, record) for record in document.get("prune_budgets") or ()]
    found += [JudgedCase(cases.merge_case(pair["i"], pair["j"]), lambda pair=pair: merge_passes(pair),
                         cases.merge_properties(pair)) for pair in document["pairs"] if "averaging" in pair]
    return found


def _prune_cases(document: dict, tolerances: Tolerances) -> list[JudgedCase]:
    pruning, found = document["pruning"], []
    for budget in pruning["budgets"]:
        k = budget["k"]
        for method in pruning["methods"]:
            found.append(JudgedCase(
                cases.prune_case(method, k), lambda method=method, k=k: prune_passes(document, method, k, tolerances),
                cases.prune_properties(document, budget, method, tolerances.max_ppl_increase)))
        if cases.has_prune_gap(pruning["methods"]):
            found.append(JudgedCase(cases.prune_gap_case(k), lambda k=k: prune_gap_passes(document, k, tolerances),
                                    cases.prune_gap_properties(budget, tolerances.max_cost_factor, document)))
    return found


def _prune_budget_case(document: dict, record: dict) -> JudgedCase:
    """A --swapkl-prune-budget, judged by the fixture's own `PruneOutcome.require` on the audit's search."""
    from .budgets import outcome_from_record, parse_budget

    spec = parse_budget(record["spec"])

    def check() -> tuple[bool, str]:
        outcome = outcome_from_record(record)
        try:
            outcome.require(min_layers=spec.min_layers, strict=spec.strict)
        except AssertionError as error:
            return False, str(error)
        return True, outcome.describe()

    return JudgedCase(cases.prune_budget_case(spec.label), check, cases.prune_budget_properties(record, document))


def _hint(document: dict) -> str:
    """Another dtype helps only a model that runs in a narrower one (as engine.loop.ProbeFailed says)."""
    dtype = document["model"]["dtype"]
    if dtype == "float16":
        return "float16's range overflows easily: try --swapkl-dtype bfloat16 or float32"
    if dtype == "bfloat16":
        return "the model runs in bfloat16: try --swapkl-dtype float32, and check the weights"
    return f"the model runs in {dtype} already: check the weights (see the swapkl notices)"


def sanity_passes(document: dict) -> tuple[bool, str]:
    """Every distance finite and not below minus the noise floor: a NaN must never pass as 'agreement'."""
    floor = (document.get("noise_floor") or 0.0) + 1e-6
    values = [(f"pair {cases.pair_label(p['i'], p['j'])} {key}", p[key]) for p in document["pairs"]
              for key in ("replacement_ij", "replacement_ji", "interchange")]
    values += [(f"removal of layer {cases.layer_label(r['layer'])}", r["kl"]) for r in document["removal"]]
    values.append(("base perplexity", document["base"]["ppl"]))
    bad = [name for name, value in values if value is None or not math.isfinite(value) or value < -floor]
    if bad:
        return False, f"{len(bad)} distance(s) are NaN, infinite or negative, e.g. {bad[0]}: {_hint(document)}"
    return True, "all distances finite"
