"""Bootstrap intervals of a mean over few sequences that hold their level: the expanded percentile interval.

The plain percentile interval of a bootstrap mean is too narrow for small samples (it uses the plug-in
variance and normal quantiles): on skewed per-sequence costs like held-out KLs it held the true mean in
92.4-93.6% of 2000 simulated audits of 32 or 64 sequences where 95% was promised (docs/decisions.md).
Hesterberg's expanded percentile interval ("What teachers should know about the bootstrap", 2015) takes
the percentiles at the tail of a t with n - 1 degrees of freedom scaled by sqrt(n / (n - 1)), which brings
it to 93.2-94.4% there. Pure numpy and the standard library.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

_NORMAL = NormalDist()


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile, Cornish-Fisher expansion around the normal (error < 1e-4 for df >= 15, 3e-3 at 5)."""
    z = _NORMAL.inv_cdf(p)
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def expanded_tail(n: int, level: float = 0.95) -> float:
    """The lower tail probability at which the expanded interval reads the bootstrap distribution."""
    if n < 2:
        return (1 - level) / 2
    t = t_quantile(1 - (1 - level) / 2, n - 1) * math.sqrt(n / (n - 1))
    return _NORMAL.cdf(-t)


def expanded_interval(samples: np.ndarray, n: int, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` interval of a statistic of ``n`` sequences from its bootstrap ``samples``."""
    tail = 100 * expanded_tail(n, level)
    low, high = np.percentile(np.asarray(samples, dtype=np.float64), [tail, 100 - tail])
    return float(low), float(high)
