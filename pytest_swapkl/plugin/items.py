"""The generated test cases: one per pair, the rank correlation, top-k Jaccard, and numerical sanity.

Each case evaluates a rule of `agreement` on the audit document and carries its numbers as
`user_properties`, which junit XML writes as <property> entries; names and keys come from `cases`.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import pytest

from .. import cases
from ..analysis.agreement import (
    Tolerances,
    failure_message,
    jaccard_passes,
    pair_verdicts,
    prune_gap_passes,
    prune_passes,
    spearman_passes,
)
from . import html_extras, junit_output
from .case_text import case_block, failure_text

Check = Callable[[], tuple[bool, str]]


class SwapklFailure(AssertionError):
    pass


class SwapklItem(pytest.Item):
    def __init__(self, *, check: Check, properties: list[tuple[str, object]], **kwargs):
        super().__init__(**kwargs)
        self.check = check
        self.swapkl_properties = list(properties)
        self.swapkl_text = ""  # the system-out block, set when the case has run
        self.swapkl_figures: Optional[Callable[[], list]] = None  # the audit's figures, for pytest-html
        # Inside <testcase> only where the junit family allows it (xunit1); under xunit2 they go to the
        # suite's <properties> instead (junit_output), which is the only place that schema has for them.
        if junit_output.numbers_in_testcase(self.config):
            self.user_properties.extend(properties)

    def runtest(self) -> None:
        passed, message = self.check()
        outcome = "skipped" if passed is None else "passed" if passed else "failed"
        self.swapkl_text = case_block(self.nodeid, outcome, message, self.swapkl_properties)
        if passed is None:  # nothing to judge (e.g. a rule that names no set at this budget)
            pytest.skip(message)
        if not passed:
            raise SwapklFailure(message)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, SwapklFailure):
            return failure_text(str(excinfo.value), self.swapkl_properties)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return "swapkl", None, self.nodeid


class SwapklCollector(pytest.Collector):
    def collect(self):  # items are built from the audit document, not collected from files
        return []


def build_items(parent: SwapklCollector, record, tolerances: Tolerances, baseline: Optional[dict] = None,
                regression_tolerance: float = 0.05) -> list[SwapklItem]:
    """The generated cases of one audit, named and described by the catalogue (`cases`); `baseline` is a saved
    baseline record (`baselines.load`) for --swapkl-compare."""
    document = record.document
    items = [SwapklItem.from_parent(parent, name=cases.AUDIT, check=lambda: _sane(document),
                                    properties=cases.audit_properties(document, record.origin, record.cache_hit))]
    n_pairs = len(document["pairs"])
    for pair, verdict in zip(document["pairs"], pair_verdicts(document, tolerances)):
        def check(pair=pair, verdict=verdict) -> tuple[bool, str]:
            return verdict.passed, verdict.reason if verdict.passed else failure_message(pair, verdict, n_pairs)

        items.append(SwapklItem.from_parent(parent, name=cases.pair_case(pair["i"], pair["j"]), check=check,
                                            properties=cases.pair_properties(pair, verdict)))
    items.append(SwapklItem.from_parent(
        parent, name=cases.RANK_CORRELATION, check=lambda: spearman_passes(document, tolerances),
        properties=cases.rank_properties(document, tolerances.min_spearman)))
    for k in tolerances.jaccard_k:
        items.append(SwapklItem.from_parent(
            parent, name=cases.topk_case(k), check=lambda k=k: jaccard_passes(document, k, tolerances),
            properties=cases.topk_properties(document, k, tolerances.min_jaccard)))
    if "pruning" in document:
        items += _prune_items(parent, document, tolerances)
    items += [_prune_budget_item(parent, document, record) for record in document.get("prune_budgets") or ()]
    if baseline is not None:
        items.append(_baseline_item(parent, document, baseline, regression_tolerance))
    if html_extras.active(parent.config):
        figures = html_extras.drawer(document)
        for item in items:
            item.swapkl_figures = figures
    return items


def _baseline_item(parent: SwapklCollector, document: dict, baseline: dict, tolerance: float) -> SwapklItem:
    """Did Spearman(R, I) drop against the saved baseline by more than the tolerance? (`swapkl report`'s rule)"""
    from ..comparison import compare, comparison_lines, document_view

    name = baseline["name"]
    comparison = compare(document_view(document, "this run"), document_view(baseline["audit"], f"baseline {name}"),
                         tolerance)
    where = baseline.get("commit") or {}
    saved = (f"saved {baseline.get('saved_at')} on {(baseline.get('machine') or {}).get('node')}, commit "
             f"{(where.get('sha') or 'n/a')[:10]}{' (changed)' if where.get('dirty') else ''}")

    def check() -> tuple[Optional[bool], str]:
        lines = comparison_lines(comparison)
        text = f"against baseline {name} ({saved}): " + "; ".join(lines[1:])
        if comparison.regression is None:
            return None, text
        moved = comparison.most_changed(3)
        if moved:
            text += "; pairs that moved most: " + ", ".join(f"{d.label} ({d.rank_change:g} ranks)" for d in moved)
        return not comparison.regression, text

    properties = [("baseline", name), ("baseline_saved_at", baseline.get("saved_at")),
                  ("baseline_commit", where.get("sha")), ("spearman_baseline", comparison.spearman_old),
                  ("spearman", comparison.spearman_new), ("spearman_change", comparison.spearman_delta),
                  ("regression_tolerance", tolerance)]
    return SwapklItem.from_parent(parent, name=cases.baseline_case(name), check=check, properties=properties)


def planned_items(parent: SwapklCollector, names: list[str]) -> list[SwapklItem]:
    """The cases an audit would generate, by name only (--collect-only: listed, never run)."""
    def check() -> tuple[Optional[bool], str]:
        return None, "listed by --collect-only: nothing was measured"

    return [SwapklItem.from_parent(parent, name=name, check=check, properties=[]) for name in names]


def _prune_items(parent: SwapklCollector, document: dict, tolerances: Tolerances) -> list[SwapklItem]:
    pruning, items = document["pruning"], []
    for budget in pruning["budgets"]:
        k = budget["k"]
        for method in pruning["methods"]:
            items.append(SwapklItem.from_parent(
                parent, name=cases.prune_case(method, k),
                check=lambda method=method, k=k: prune_passes(document, method, k, tolerances),
                properties=cases.prune_properties(document, budget, method, tolerances.max_ppl_increase)))
        if cases.has_prune_gap(pruning["methods"]):
            items.append(SwapklItem.from_parent(
                parent, name=cases.prune_gap_case(k), check=lambda k=k: prune_gap_passes(document, k, tolerances),
                properties=cases.prune_gap_properties(budget, tolerances.max_cost_factor, document)))
    return items


def _prune_budget_item(parent: SwapklCollector, document: dict, record: dict) -> SwapklItem:
    """A --swapkl-prune-budget, judged by the fixture's own `PruneOutcome.require` on the audit's search."""
    from ..analysis.budgets import outcome_from_record, parse_budget

    spec = parse_budget(record["spec"])

    def check() -> tuple[bool, str]:
        outcome = outcome_from_record(record)
        try:
            outcome.require(min_layers=spec.min_layers, strict=spec.strict)
        except AssertionError as error:
            return False, str(error)
        return True, outcome.describe()

    return SwapklItem.from_parent(parent, name=cases.prune_budget_case(spec.label), check=check,
                                  properties=cases.prune_budget_properties(record, document))


def _hint(document: dict) -> str:
    """Another dtype helps only a model that runs in a narrower one (as engine.loop.ProbeFailed says)."""
    dtype = document["model"]["dtype"]
    if dtype == "float16":
        return "float16's range overflows easily: try --swapkl-dtype bfloat16 or float32"
    if dtype == "bfloat16":
        return "the model runs in bfloat16: try --swapkl-dtype float32, and check the weights"
    return f"the model runs in {dtype} already: check the weights (see the swapkl notices)"


def _sane(document: dict) -> tuple[bool, str]:
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
