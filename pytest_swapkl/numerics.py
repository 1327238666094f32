"""How every number derived from a measurement behaves at 0, below 0 by rounding and at overflow: one place.

An audit measures for minutes, then turns KLs and NLLs into ratios, logs and perplexities. Those steps must
never end it with a math domain error or an overflow, so each edge has one rule here (docs/reliability.md,
"Numbers at the edges"):

- KL(base || probe): 0 is a distance like any other. Below 0 by rounding it is kept as measured in the
  document (the `audit` case judges it against the noise floor) and counts as 0 in ratios and logs, with a
  notice. NaN or infinity cannot come from the engine, which fails such a probe by name.
- I/R: undefined (None) where R is 0; 0 where I is 0; I or R below 0 counts as 0. Beyond the float range
  it is None, with a notice.
- ln(I/R): computed as ln I - ln R, finite for any two positive floats; undefined (None) where I or R is 0.
- perplexity exp(NLL): 1 at 0, just under 1 for an NLL rounded below 0. An NLL above ~709.78 nats
  overflows: the perplexity is infinite (null in JSON), with a notice naming the NLL.

`Notes` collects the notices of one summary, one line per kind of edge met. No numpy, no torch.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Optional

LARGEST_EXP_ARGUMENT = math.log(1.7976931348623157e308)  # ~709.78: exp of more overflows a float


def finite_or_none(value: Optional[float]) -> Optional[float]:
    """JSON has no NaN or infinity: a number that is not finite is undefined (null)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def distance(kl: float) -> float:
    """A measured KL as a distance for ratios and logs: rounding below 0 counts as 0 (NaN stays NaN)."""
    return max(float(kl), 0.0) if not math.isnan(kl) else math.nan


def log_ratio(interchange: float, replacement: float) -> Optional[float]:
    """ln(I/R) as ln I - ln R (no overflow); None where I or R is 0 (after rounding below 0 to 0), or not finite."""
    i, r = distance(interchange), distance(replacement)
    if not (math.isfinite(i) and math.isfinite(r)) or i == 0 or r == 0:
        return None
    return math.log(i) - math.log(r)


def ratio(interchange: float, replacement: float) -> Optional[float]:
    """I/R; None where R is 0 or below by rounding, where either is not finite, or where I/R overflows."""
    i, r = distance(interchange), distance(replacement)
    if not (math.isfinite(i) and math.isfinite(r)) or r == 0:
        return None
    if i == 0:
        return 0.0
    logged = math.log(i) - math.log(r)
    if logged >= LARGEST_EXP_ARGUMENT:
        return None
    value = math.exp(logged)
    # Below the smallest normal float the ratio keeps a few bits only (its log no longer matches ln(I/R)): 0
    return value if value >= sys.float_info.min else 0.0


def perplexity(mean_nll: float) -> float:
    """exp(mean NLL); infinite where that overflows a float (NaN stays NaN)."""
    mean_nll = float(mean_nll)
    if math.isnan(mean_nll):
        return math.nan
    return math.exp(mean_nll) if mean_nll < LARGEST_EXP_ARGUMENT else math.inf


@dataclass
class Notes:
    """What a summary met at the edges: one notice per kind, naming the worst case."""

    negative_kl: list[tuple[str, float]] = field(default_factory=list)  # (probe, measured KL below 0)
    ppl_overflow: list[tuple[str, float]] = field(default_factory=list)  # (what, mean NLL)
    ratio_overflow: list[str] = field(default_factory=list)  # pair labels

    def kl(self, name: str, value: float) -> float:
        if value < 0:
            self.negative_kl.append((name, value))
        return value

    def perplexity(self, name: str, mean_nll: float) -> float:
        value = perplexity(mean_nll)
        if math.isinf(value):
            self.ppl_overflow.append((name, float(mean_nll)))
        return value

    def ratio(self, label: str, interchange: float, replacement: float) -> Optional[float]:
        value = ratio(interchange, replacement)
        if value is None and log_ratio(interchange, replacement) is not None:
            self.ratio_overflow.append(label)
        return value

    def lines(self) -> list[str]:
        lines = []
        if self.negative_kl:
            name, value = min(self.negative_kl, key=lambda item: item[1])
            lines.append(f"{len(self.negative_kl)} KL value(s) below 0 by rounding (lowest {value:.3g} nats, "
                         f"{name}): kept as measured, counted as 0 in I/R and ln(I/R)")
        if self.ppl_overflow:
            name, nll = max(self.ppl_overflow, key=lambda item: item[1])
            lines.append(f"perplexity overflows for {len(self.ppl_overflow)} measurement(s) (mean NLL up to "
                         f"{nll:.4g} nats, {name}; exp of more than {LARGEST_EXP_ARGUMENT:.2f} is no float): "
                         "reported as infinite (null in JSON); check the weights")
        if self.ratio_overflow:
            lines.append(f"I/R is beyond the float range for {len(self.ratio_overflow)} pair(s) (e.g. "
                         f"{self.ratio_overflow[0]}): reported as null; ln(I/R) is kept")
        return lines
