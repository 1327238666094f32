"""An audit against an earlier one: per-pair deltas and whether Spearman(R, I) regressed.

Used by `swapkl report --baseline` (junit files or audit JSON) and by `--swapkl-compare` (a saved baseline):
both hand it the one read model of an audit, `report.junit.AuditReading` (from junit XML by `read_junit`, from an
audit document by `audit_json.read_document`). No torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ..cases import pair_label
from ..console import number, signed

if TYPE_CHECKING:
    from .junit import AuditReading

DEFAULT_REGRESSION_TOLERANCE = 0.05


@dataclass
class PairDelta:
    i: int
    j: int
    replacement: Optional[float]
    interchange: Optional[float]
    rank_replacement: Optional[float]
    rank_interchange: Optional[float]

    @property
    def label(self) -> str:
        return pair_label(self.i, self.j)

    @property
    def rank_change(self) -> float:
        """The larger absolute rank move of the two protocols (0 when unknown)."""
        moves = [abs(d) for d in (self.rank_replacement, self.rank_interchange) if d is not None]
        return max(moves) if moves else 0.0


@dataclass
class Comparison:
    baseline_sources: list
    spearman_old: Optional[float]
    spearman_new: Optional[float]
    kendall_old: Optional[float]
    kendall_new: Optional[float]
    tolerance: float
    deltas: list = field(default_factory=list)  # [PairDelta] for pairs in both audits
    only_new: list = field(default_factory=list)  # pair labels only in the current audit
    only_old: list = field(default_factory=list)

    @property
    def spearman_delta(self) -> Optional[float]:
        if self.spearman_old is None or self.spearman_new is None:
            return None
        return self.spearman_new - self.spearman_old

    @property
    def spearman_worse(self) -> Optional[bool]:
        delta = self.spearman_delta
        return None if delta is None else delta < 0

    @property
    def regression(self) -> Optional[bool]:
        """True when Spearman dropped by more than the tolerance; None when either audit lacks it."""
        delta = self.spearman_delta
        return None if delta is None else delta < -self.tolerance

    def most_changed(self, n: int = 5) -> list:
        return sorted((d for d in self.deltas if d.rank_change > 0), key=lambda d: (-d.rank_change, d.i, d.j))[:n]


def _sub(new: Optional[float], old: Optional[float]) -> Optional[float]:
    return None if new is None or old is None else new - old


def compare(current: "AuditReading", baseline: "AuditReading",
            tolerance: float = DEFAULT_REGRESSION_TOLERANCE) -> Comparison:
    old = {(p.i, p.j): p for p in baseline.pairs}
    new = {(p.i, p.j): p for p in current.pairs}
    comparison = Comparison(baseline_sources=baseline.sources, spearman_old=baseline.spearman,
                            spearman_new=current.spearman, kendall_old=baseline.kendall,
                            kendall_new=current.kendall, tolerance=tolerance)
    for key in sorted(new.keys() & old.keys()):
        a, b = new[key], old[key]
        comparison.deltas.append(PairDelta(
            i=a.i, j=a.j, replacement=_sub(a.replacement, b.replacement),
            interchange=_sub(a.interchange, b.interchange),
            rank_replacement=_sub(a.rank_replacement, b.rank_replacement),
            rank_interchange=_sub(a.rank_interchange, b.rank_interchange)))
    comparison.only_new = [new[k].label for k in sorted(new.keys() - old.keys())]
    comparison.only_old = [old[k].label for k in sorted(old.keys() - new.keys())]
    return comparison


def _fmt(value) -> str:
    return number(value, 4) if isinstance(value, float) and math.isfinite(value) else "n/a" if value is None \
        else str(value)


def comparison_lines(c: Comparison) -> list:
    """What changed, one line each; the third says the verdict."""
    lines = [f"baseline: {', '.join(c.baseline_sources)}",
             f"Spearman {_fmt(c.spearman_old)} -> {_fmt(c.spearman_new)} ({signed(c.spearman_delta)})"]
    if c.regression is None:
        lines.append("Spearman is missing from one of the audits: no regression verdict")
    elif c.regression:
        lines.append(f"REGRESSION: Spearman dropped by more than the tolerance {c.tolerance:g}")
    elif c.spearman_worse:
        lines.append(f"Spearman got worse, within the tolerance {c.tolerance:g}")
    else:
        lines.append("Spearman did not get worse")
    if c.only_new:
        lines.append(f"pairs only in this audit: {', '.join(c.only_new)}")
    if c.only_old:
        lines.append(f"pairs only in the baseline: {', '.join(c.only_old)}")
    return lines
