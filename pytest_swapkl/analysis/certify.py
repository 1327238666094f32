"""The rank-range bound on Spearman's rho: is the verdict rho(R, I) >= min_spearman already decided from what is
known for sure about the order of the means?

Adaptive mode (analysis/population.py) knows, for each protocol and pair, ``below[a, b]``: pair b's mean is surely
below pair a's (from confidence sequences on paired differences). A pair's rank then lies between
1 + #(pairs surely below it) and n - #(pairs surely above it), and the bound takes the largest and smallest
sum of squared rank gaps those ranges allow. The verdict comes back as a ``Maybe``: whether it can still be
True, and whether it can still be False.

Issue 15's exact-verdict rules (pair verdicts, removal-set walks, the rule's relations) lived here too; adaptive
mode was redefined in issue 34 to decide about the population instead, nothing used them any more, and they went
with their tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Maybe:
    """A three-valued boolean per item: can it be True, can it be False (both: not decided yet)."""

    can_true: np.ndarray
    can_false: np.ndarray

    @classmethod
    def known(cls, values) -> "Maybe":
        values = np.asarray(values, dtype=bool)
        return cls(values.copy(), ~values)

    @property
    def decided(self) -> np.ndarray:
        return self.can_true != self.can_false

    @property
    def value(self) -> np.ndarray:
        """The decided value (meaningful where ``decided``)."""
        return self.can_true & ~self.can_false


@dataclass
class Knowledge:
    """What is surely known about one protocol's pairs (see the module docstring)."""

    values: np.ndarray  # the current estimates (only their number is read here)
    below: np.ndarray  # [a, b]: b's mean surely below a's
    full: np.ndarray  # measured on every sequence: with every item full the exact rho decides


RHO_ROUNDING = 1e-9  # far above the rounding of a Spearman of n <= 10^4 items, far below any tolerance


def rank_correlation_passes(r: Knowledge, i: Knowledge, min_spearman: float, exact_rho: Optional[float]) -> Maybe:
    """Spearman(R, I) >= min_spearman, decided from the range of ranks each pair can take.
    ``exact_rho``: the current Spearman, exact when every item is full."""
    n = len(r.values)
    if (r.full.all() and i.full.all()) or n < 2:
        return Maybe.known([exact_rho is None or exact_rho >= min_spearman])

    def ranks(k: Knowledge):
        return 1 + k.below.sum(1), n - k.below.sum(0)

    (r_low, r_high), (i_low, i_high) = ranks(r), ranks(i)
    largest = np.maximum(np.abs(r_high - i_low), np.abs(i_high - r_low)).astype(np.float64)
    smallest = np.maximum(0, np.maximum(r_low - i_high, i_low - r_high)).astype(np.float64)
    scale = 6 / (n * (n * n - 1))
    rho_lowest, rho_highest = 1 - scale * (largest ** 2).sum(), 1 - scale * (smallest ** 2).sum()
    # Within rounding of the minimum, the bound and the Spearman the rule computes may fall on either side of it
    # (0.9 here, 0.8999999999999998 there): undecided, so the exact rule decides once the items are full
    edge = RHO_ROUNDING
    return Maybe(np.array([rho_highest >= min_spearman - edge]), np.array([rho_lowest < min_spearman + edge]))
