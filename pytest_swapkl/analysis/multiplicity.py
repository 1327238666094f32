"""Multiplicity across one verdict table: Holm (family-wise error) by default, Benjamini-Hochberg (false discovery
rate) by option, or none (docs/decisions.md, "Multiplicity across a verdict table").

Each paired comparison of a table carries two p-values (paired.p_value and paired.equivalence_p_value); each of the
two families is adjusted on its own, and the adjusted verdict reads the adjusted p-values as the raw verdict reads
the raw ones (paired.cost_verdict). Pure Python: the report and the plugin use it.
"""

from __future__ import annotations

from typing import Optional, Sequence

METHODS = ("holm", "bh", "none")
DEFAULT_METHOD = "holm"
NAMES = {"holm": "Holm (family-wise)", "bh": "Benjamini-Hochberg (false discovery rate)", "none": "unadjusted"}


def adjust(p_values: Sequence[Optional[float]], method: str = DEFAULT_METHOD) -> list[Optional[float]]:
    """Adjusted p-values in the order given; None stays None and does not count in the family.

    holm: p_(i) * (m - i + 1) for the i-th smallest, made non-decreasing, capped at 1.
    bh: p_(i) * m / i, made non-increasing from the largest down, capped at 1."""
    if method not in METHODS:
        raise ValueError(f"unknown multiplicity method {method!r}: use one of {', '.join(METHODS)}")
    present = [n for n, p in enumerate(p_values) if p is not None]
    adjusted: list[Optional[float]] = [None] * len(p_values)
    if method == "none":
        for n in present:
            adjusted[n] = p_values[n]
        return adjusted
    order = sorted(present, key=lambda n: p_values[n])
    m = len(order)
    if method == "holm":
        running = 0.0
        for rank, n in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_values[n]))
            adjusted[n] = running
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):
            n = order[rank]
            running = min(running, m / (rank + 1) * p_values[n])
            adjusted[n] = min(1.0, running)
    return adjusted
