"""The generated test cases: one per pair, the rank correlation, top-k Jaccard, and numerical sanity.

Each case evaluates a rule of `agreement` on the audit document (which cases, with which rule: `analysis.judged`,
shared with `swapkl report`) and carries its numbers as `user_properties`, which junit XML writes as <property>
entries; names and keys come from `cases`.
"""

from __future__ import annotations

from typing import Callable, Optional

import pytest

from .. import cases
from ..analysis.agreement import Tolerances
from ..analysis.judged import judged_cases
from ..report.case_text import case_block, failure_text
from . import html_extras, junit_output

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
    items = [SwapklItem.from_parent(parent, name=case.name, check=case.check, properties=case.properties)
             for case in judged_cases(document, tolerances, record.origin, record.cache_hit)]
    if baseline is not None:
        items.append(_baseline_item(parent, document, baseline, tolerances, regression_tolerance))
    if html_extras.active(parent.config):
        figures = html_extras.drawer(document)
        for item in items:
            item.swapkl_figures = figures
    return items


def _baseline_item(parent: SwapklCollector, document: dict, baseline: dict, tolerances: Tolerances,
                   tolerance: float) -> SwapklItem:
    """Did Spearman(R, I) drop against the saved baseline by more than the tolerance? (`swapkl report`'s rule)"""
    from ..report.audit_json import read_document
    from ..report.comparison import compare, comparison_lines

    name = baseline["name"]
    comparison = compare(read_document(document, tolerances, "this run"),
                         read_document(baseline["audit"], tolerances, f"baseline {name}"), tolerance)
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

    return SwapklItem.from_parent(parent, name=cases.baseline_case(name), check=check,
                                  properties=cases.baseline_properties(name, baseline, comparison, tolerance))


def planned_items(parent: SwapklCollector, names: list[str]) -> list[SwapklItem]:
    """The cases an audit would generate, by name only (--collect-only: listed, never run)."""
    def check() -> tuple[Optional[bool], str]:
        return None, "listed by --collect-only: nothing was measured"

    return [SwapklItem.from_parent(parent, name=name, check=check, properties=[]) for name in names]
