"""What the generated cases read back into: one record per case of a kind, and the converters their readers share.

`swapkl report` reads a junit file into `report.junit.AuditReading`; each case kind's reader (registered in
`cases`) turns one case's properties into these records. A property value comes back from the text pytest
wrote, possibly altered by someone: every converter answers None for a value of the wrong type instead of
raising, and the readers check what a name and its properties both state. No torch, no numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from .case_kinds import pair_label
from .errors import InputError
from .limits import MAX_LAYERS


class JunitError(InputError):
    """A junit file that cannot be read as a swapkl audit."""


def altered(problem: str) -> JunitError:
    return JunitError(f"{problem}: the junit file was altered or not written by swapkl; regenerate it with "
                      "pytest --swapkl-model=... --junitxml=PATH")


def shown(value) -> str:
    """A value an error message quotes, cut short: an altered file may hold anything."""
    text = repr(value)
    return text if len(text) <= 40 else text[:30] + "..."


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class Pair:
    i: int
    j: int
    replacement_ij: Optional[float]
    replacement_ji: Optional[float]
    interchange: Optional[float]
    replacement: Optional[float]
    ratio: Optional[float]
    log_ratio: Optional[float]
    rank_replacement: Optional[float]
    rank_interchange: Optional[float]
    rank_gap: Optional[float]
    rank_tolerance: Optional[float]
    verdict: str
    ci: dict  # protocol name -> (low, high)
    outcome: str
    message: str
    rank_intervals: dict = field(default_factory=dict)  # protocol -> (low, high) ranks the verdict is taken on

    @property
    def label(self) -> str:
        return pair_label(self.i, self.j)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class Merge:
    """A merge[Li-Lj] case: averaging(i,j) against removing the cheaper of the two layers, paired over sequences."""

    i: int
    j: int
    averaging: Optional[float]
    averaging_ci: tuple
    removed_layer: Optional[int]
    removal_kl: Optional[float]
    cost_ratio: Optional[float]
    cost_ratio_ci: tuple
    paired_verdict: Optional[str]
    outcome: str

    @property
    def label(self) -> str:
        return pair_label(self.i, self.j)


@dataclass(frozen=True)
class Removal:
    layer: int
    kl: Optional[float]


@dataclass(frozen=True)
class PruneCost:
    """A prune[method-kK] case: one method's set removed for real, its cost on held-out text with the interval."""

    method: str
    k: int
    layers: Optional[list]
    heldout_kl: Optional[float]
    heldout_kl_ci: tuple  # (low, high)
    heldout_ppl: Optional[float]
    heldout_ppl_ci: tuple
    heldout_base_ppl: Optional[float]
    outcome: str


@dataclass(frozen=True)
class PruneGap:
    """A prune_gap[kK] case: the paired test of the two protocols' held-out costs and the ratio R/I's interval."""

    k: int
    paired_verdict: Optional[str]
    cost_ratio: Optional[float]
    cost_ratio_ci: tuple
    outcome: str
    paired_verdict_adjusted: Optional[str] = None  # across the audit's pruning comparisons, by `multiplicity`
    multiplicity: Optional[str] = None


NOT_JUDGED = "not judged"  # the outcome of a budget listed by the rank_correlation case without a case of its own


@dataclass(frozen=True)
class TopK:
    k: int
    jaccard: Optional[float]
    replacement_layers: Optional[list]
    interchange_layers: Optional[list]
    outcome: str
    jaccard_ci: tuple = (None, None)
    stability: dict = field(default_factory=dict)  # protocol -> share of resamples reproducing its set
    confidence_sets: dict = field(default_factory=dict)  # protocol -> its tau-best layers at k (jointly 95%)


# ---------------------------------------------------------------- converters


def number(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def integer(value) -> Optional[int]:
    as_number = number(value)
    return int(as_number) if as_number is not None and math.isfinite(as_number) else None


def text(value) -> Optional[str]:
    return None if value is None else str(value)


def interval(properties: dict, low_key: str, high_key: str) -> tuple:
    return number(properties.get(low_key)), number(properties.get(high_key))


def layer_list(value) -> Optional[list]:
    return list(value) if isinstance(value, (list, tuple)) else None


def layer_indices(value) -> Optional[list]:
    """A list of layer indices, or None for anything else (what a table shows as n/a)."""
    layers = layer_list(value)
    if layers is None or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < MAX_LAYERS
                                 for x in layers):
        return None
    return layers
