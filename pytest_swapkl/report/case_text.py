"""A generated case's numbers as text, for the places where people read junit results.

GitLab's test report ignores <property> entries and shows `system-out` only for failed tests;
Jenkins shows `system-out`; the common GitHub Actions reporters show names, failure messages and
a job summary. So every case also carries its numbers as a short, stable block of plain text:
the outcome and the rule's sentence on the first line, then one `key = value` line per property,
with any low/high pair (`x_ci_low`/`x_ci_high`, `x_low`/`x_high`) folded into its quantity as an
interval, so an interval that a later release adds shows up here without this module naming it.

    swapkl::rank_correlation passed: Spearman(R, I) = 0.832 (Kendall 0.683) over 28 pairs; minimum 0.500
      spearman = 0.8325
      kendall = 0.6825
      n_pairs = 28

No torch, no numpy: the plugin loads this in every run.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .. import cases

# Which audit a case belongs to: the audit case's block names them; repeating them on every case is noise.
CONTEXT = frozenset(cases.CONTEXT_KEYS)
SENTENCE = "verdict"  # the pair rule's sentence: the block's first line says it already


def _stable(key: str) -> bool:
    """Keys that differ between two runs of one audit (where it was computed, a cache hit) stay out."""
    return not key.startswith("audit_") and key != SENTENCE


def value_text(value: Any) -> str:
    """A property value as the block writes it: 4 significant digits for floats, layer sets as {L03, L05}."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        return cases.layer_set_label(value)
    return " ".join(str(value).split())  # one line whatever the value holds


def number_lines(properties: Sequence[tuple[str, Any]], with_context: bool = False) -> list[str]:
    """One `key = value [low, high]` line per quantity, in the catalogue's order."""
    values = dict(properties)
    intervals = cases.interval_keys(list(values))
    ends = {key for pair in intervals.values() for key in pair}
    lines = []
    for key, value in properties:
        if key in ends or (key in CONTEXT and not with_context) or not _stable(key):
            continue
        text = f"{key} = {value_text(value)}"
        if key in intervals:
            low, high = intervals[key]
            text += f" [{value_text(values[low])}, {value_text(values[high])}]"
        lines.append(text)
    for base, (low, high) in intervals.items():  # an interval whose quantity has no property of its own
        if base not in values:
            lines.append(f"{base} = [{value_text(values[low])}, {value_text(values[high])}]")
    return lines


def case_block(nodeid: str, outcome: str, sentence: str, properties: Sequence[tuple[str, Any]]) -> str:
    """The system-out block: `NODEID OUTCOME: first line of the rule's sentence`, then the numbers."""
    first = sentence.strip().splitlines()[0] if sentence.strip() else ""
    header = f"{nodeid} {outcome}: {first}" if first else f"{nodeid} {outcome}"
    with_context = nodeid.endswith(cases.SUITE_SEPARATOR + cases.AUDIT)
    return "\n".join([header, *("  " + line for line in number_lines(properties, with_context))]) + "\n"


def failure_text(message: str, properties: Sequence[tuple[str, Any]]) -> str:
    """The failure message, then the case's numbers (with every interval the properties carry)."""
    lines = number_lines(properties)
    if not lines:
        return message
    return message.rstrip() + "\n  numbers (intervals in brackets):\n" + "\n".join("    " + line for line in lines)
