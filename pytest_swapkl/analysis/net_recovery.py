"""Net recovery of healing: the share of the pruning-specific gap that healing closes beyond the control's own gain.

With O the original model, P the pruned one, and HO, HP the two after the same fine-tuning (the control and the
healed pruned model), every cost measured per held-out sequence:

    net recovery = 1 - gap(HO, HP) / gap(O, P)

    ppl   gap = ppl(HP) - ppl(HO), over ppl(P) - ppl(O)                      (the paper's Table of LoRA recovery)
    nll   gap = mean NLL(HP) - mean NLL(HO), over mean NLL(P) - mean NLL(O)  (the same on log-perplexity)
    kl    gap = mean KL(HO || HP), over mean KL(O || P)                      (the two models' distance, not a cost)

For ppl and nll this is ((P - HP) - (O - HO)) / (P - O): what healing removed from the pruned model less what the
same recipe gained on the original (domain adaptation), as a fraction of the damage. 1 is a pruned model as good
as the healed original; 0 is no better than domain adaptation alone; below 0 worse. The interval is the expanded
percentile interval (mean_interval.py) of the paired bootstrap: the same sequences resampled for all four models.
Pure numpy.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .mean_interval import expanded_interval

DRAWS = 2000


def net_recovery(nll: dict[str, np.ndarray], kl_damage: np.ndarray, kl_after: np.ndarray, *, seed: int = 0,
                 draws: int = DRAWS, level: float = 0.95) -> dict[str, dict]:
    """Net recovery in ppl, nll and kl with paired bootstrap intervals over sequences.

    ``nll`` holds per-sequence mean NLLs under the keys original, pruned, healed_original, healed_pruned;
    ``kl_damage`` is KL(O || P) and ``kl_after`` KL(HO || HP) per sequence."""
    costs = {key: np.asarray(nll[key], dtype=np.float64) for key in
             ("original", "pruned", "healed_original", "healed_pruned")}
    damage, after = np.asarray(kl_damage, dtype=np.float64), np.asarray(kl_after, dtype=np.float64)
    n = len(damage)
    if any(len(values) != n for values in (*costs.values(), after)):
        raise ValueError("every per-sequence cost must cover the same held-out sequences")
    rows = np.random.default_rng(seed).integers(0, n, size=(draws, n))
    means = {key: values[rows].mean(axis=1) for key, values in costs.items()}
    point = {key: values.mean()[None] for key, values in costs.items()}
    found = {}
    for metric in ("ppl", "nll"):
        transform = np.exp if metric == "ppl" else (lambda values: values)
        found[metric] = _summary(_ratio({key: transform(values) for key, values in point.items()})[0],
                                 _ratio({key: transform(values) for key, values in means.items()}), n, level)
        found[metric]["damage"] = float((transform(point["pruned"]) - transform(point["original"]))[0])
        found[metric]["gap_after"] = float((transform(point["healed_pruned"])
                                            - transform(point["healed_original"]))[0])
    found["kl"] = _summary(_fraction(after.mean(), damage.mean()),
                           1 - after[rows].mean(axis=1) / _nonzero(damage[rows].mean(axis=1)), n, level)
    found["kl"]["damage"], found["kl"]["gap_after"] = float(damage.mean()), float(after.mean())
    return found


def _ratio(costs: dict[str, np.ndarray]) -> np.ndarray:
    damage = costs["pruned"] - costs["original"]
    return 1 - (costs["healed_pruned"] - costs["healed_original"]) / _nonzero(damage)


def _fraction(after: float, damage: float) -> float:
    return float("nan") if damage == 0 else 1 - after / damage


def _nonzero(values: np.ndarray) -> np.ndarray:
    # a resample with no damage has no recovery to speak of: nan, left out of the interval
    return np.where(values == 0, np.nan, values)


def _summary(value: float, samples: np.ndarray, n: int, level: float) -> dict:
    samples = samples[np.isfinite(samples)]
    low: Optional[float] = None
    high: Optional[float] = None
    if len(samples) and n > 1:
        low, high = expanded_interval(samples, n, level)
    value = float(value)
    return {"value": value if np.isfinite(value) else None, "low": low, "high": high}
