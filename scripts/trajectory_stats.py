"""Statistics of the training-trajectory study (scripts/trajectory_study.py): the protocol gap of one
checkpoint, its change between two checkpoints of one seed, and its spread across seeds.

Every checkpoint of the study is audited on the same calibration sequences, so two checkpoints of one seed
can be compared on shared resamples: resample b draws the same sequences for both, and the change of a gap
statistic is computed on each resample (a paired bootstrap across checkpoints, sharper than asking whether
two separate intervals overlap). Across seeds there are only a few independent runs: a Student t interval of
the seeds' mean, with its min and max beside it. numpy and scipy only.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from pytest_swapkl.analysis.intervals import basic_interval, spearman_rows
from pytest_swapkl.analysis.mean_interval import expanded_interval

LEVEL = 0.95
# Gap statistics and the direction in which "the replacement-interchange gap grows" moves each one.
GROWS_WHEN = {
    "log_mean_ratio": "up",  # ln(mean R / mean I): interchange ever cheaper than replacement
    "median_ratio_d1": "down",  # median I/R of adjacent pairs: swapping neighbours ever cheaper than standing in
    "spearman": "down",  # Spearman(R, I) over the pairs: the two protocols rank the pairs ever more differently
}


def gap_metric(name: str, r: np.ndarray, i: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """A gap statistic of pair distances r, i ([..., n_pairs], e.g. one row per resample): one value per row."""
    r, i = np.atleast_2d(r), np.atleast_2d(i)
    if name == "log_mean_ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(r.mean(-1) / i.mean(-1))
    if name == "median_ratio_d1":
        adjacent = distances == 1
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(r[:, adjacent] > 0, i[:, adjacent] / r[:, adjacent], np.nan)
        return nanmedian_rows(ratios)
    if name == "spearman":
        return spearman_rows(r, i)
    raise ValueError(f"unknown gap statistic {name!r}")


def nanmedian_rows(values: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN; NaN (without numpy's warning) for a row with nothing left."""
    result = np.full(len(values), np.nan)
    usable = ~np.isnan(values).all(axis=1) if values.size else np.zeros(len(values), dtype=bool)
    if usable.any():
        result[usable] = np.nanmedian(values[usable], axis=1)
    return result


def resampled(per_sequence: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """[n_resamples, n_pairs] bootstrap means of per-sequence pair distances [n_sequences, n_pairs]."""
    return per_sequence[indices].mean(axis=1)


def checkpoint_gaps(r_seq: np.ndarray, i_seq: np.ndarray, distances: np.ndarray, indices: np.ndarray) -> dict:
    """Mean R, mean I and each gap statistic of one checkpoint, each with its 95% bootstrap interval.

    Means and their log ratio take the expanded percentile interval (analysis/mean_interval.py: plain
    percentiles undercover on few sequences); the rank correlation the reflected one, as the audit does."""
    n = len(r_seq)
    r_boot, i_boot = resampled(r_seq, indices), resampled(i_seq, indices)
    r_mean, i_mean = r_seq.mean(axis=0), i_seq.mean(axis=0)
    result = {
        "mean_r": _with_interval(float(r_mean.mean()), expanded_interval(r_boot.mean(-1), n)),
        "mean_i": _with_interval(float(i_mean.mean()), expanded_interval(i_boot.mean(-1), n)),
    }
    for name in GROWS_WHEN:
        estimate = _finite(gap_metric(name, r_mean, i_mean, distances)[0])
        samples = gap_metric(name, r_boot, i_boot, distances)
        samples = samples[np.isfinite(samples)]
        if estimate is None or not len(samples):
            result[name] = {"value": estimate, "ci": [None, None]}
        elif name == "spearman":
            result[name] = _with_interval(estimate, basic_interval(estimate, samples, LEVEL))
        else:
            result[name] = _with_interval(estimate, expanded_interval(samples, n))
    return result


def paired_change(first: tuple[np.ndarray, np.ndarray], last: tuple[np.ndarray, np.ndarray],
                  distances: np.ndarray, indices: np.ndarray) -> dict:
    """Each gap statistic's change last - first between two checkpoints measured on the same sequences, with
    the basic (reflected) bootstrap interval over shared resamples, and whether that says the gap grew."""
    result = {}
    first_boot = [resampled(x, indices) for x in first]
    last_boot = [resampled(x, indices) for x in last]
    for name, direction in GROWS_WHEN.items():
        point = (gap_metric(name, last[0].mean(0), last[1].mean(0), distances)
                 - gap_metric(name, first[0].mean(0), first[1].mean(0), distances))[0]
        samples = gap_metric(name, *last_boot, distances) - gap_metric(name, *first_boot, distances)
        samples = samples[np.isfinite(samples)]
        if not np.isfinite(point) or not len(samples):
            result[name] = {"change": None, "ci": [None, None], "verdict": "undefined"}
            continue
        low, high = basic_interval(float(point), samples, LEVEL, bounds=(-math.inf, math.inf))
        result[name] = {"change": float(point), "ci": [low, high], "verdict": verdict(low, high, direction)}
    return result


def verdict(low: Optional[float], high: Optional[float], direction: str) -> str:
    """'grows' / 'shrinks' when the interval of a change excludes 0 on that side, else 'not distinguishable'."""
    if low is None or high is None:
        return "undefined"
    up, down = low > 0, high < 0
    if direction == "down":
        up, down = down, up
    return "grows" if up else "shrinks" if down else "not distinguishable"


def across_seeds(values: Sequence[Optional[float]]) -> dict:
    """Mean of per-seed values with a 95% Student t interval (n - 1 degrees of freedom), min, max and n.

    With three seeds the t quantile is 4.30: the interval is wide, as it should be for three runs."""
    from scipy.stats import t

    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = len(finite)
    if n == 0:
        return {"n": 0, "mean": None, "t_ci": [None, None], "min": None, "max": None}
    mean = float(finite.mean())
    if n < 2:
        interval = [None, None]
    else:
        half = float(t.ppf(1 - (1 - LEVEL) / 2, n - 1) * finite.std(ddof=1) / math.sqrt(n))
        interval = [mean - half, mean + half]
    return {"n": n, "mean": mean, "t_ci": interval, "min": float(finite.min()), "max": float(finite.max())}


def _with_interval(value: float, interval: tuple[float, float]) -> dict:
    return {"value": _finite(value), "ci": [_finite(interval[0]), _finite(interval[1])]}


def _finite(value) -> Optional[float]:
    value = None if value is None else float(value)
    return value if value is not None and math.isfinite(value) else None



# --- every saved checkpoint, not the endpoints (issue 34) ----------------------------------------------------


def checkpoint_values(seeds: Sequence[dict], name: str) -> list[list[tuple[int, float]]]:
    """Per seed, (step, value of gap statistic ``name``) at every audited checkpoint in step order (summary.json's
    ``seeds[].checkpoints``; the best checkpoint is the last)."""
    return [[(c["step"], c[name]["value"]) for c in sorted(seed["checkpoints"], key=lambda c: c["step"])
             if c[name]["value"] is not None] for seed in seeds]


def exact_spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman of x and y with its exact two-sided permutation p-value (every ordering of y: 8 checkpoints are
    40,320), so a seed's trend over few checkpoints has a p-value that needs no large-sample approximation."""
    from itertools import permutations

    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    scale = math.sqrt((rx ** 2).sum() * (ry ** 2).sum())
    if scale == 0:
        return float("nan"), 1.0
    observed = float(rx @ ry / scale)
    if len(x) > 9:  # 10! orderings is too many: the t approximation
        from scipy.stats import spearmanr

        return observed, float(spearmanr(x, y).pvalue)
    orderings = np.array(list(permutations(ry)))
    values = orderings @ rx / scale
    return observed, float(np.mean(np.abs(values) >= abs(observed) - 1e-12))


def trend(seeds: Sequence[dict], name: str) -> dict:
    """The trend of one gap statistic over every checkpoint: per seed, Spearman of the statistic against the step
    (the same as against log step: ranks only) with its exact permutation p-value; across seeds, the mean Spearman
    with its Student t interval and the two-sided one-sample t p-value of "mean Spearman = 0"."""
    from scipy.stats import t as student

    per_seed = []
    for values in checkpoint_values(seeds, name):
        rho, p = exact_spearman([s for s, _ in values], [v for _, v in values])
        per_seed.append({"spearman": rho, "p": p, "n_checkpoints": len(values)})
    across = across_seeds([s["spearman"] for s in per_seed])
    p = None
    if across["n"] >= 2:
        rhos = np.array([s["spearman"] for s in per_seed if math.isfinite(s["spearman"])])
        spread = rhos.std(ddof=1)
        p = 0.0 if spread == 0 else float(2 * student.sf(abs(rhos.mean()) / (spread / math.sqrt(len(rhos))),
                                                            len(rhos) - 1))
    return {"statistic": name, "grows_when": GROWS_WHEN[name], "per_seed": per_seed, "across_seeds": across, "p": p}


def checkpoint_table(seeds: Sequence[dict], name: str) -> list[dict]:
    """Per checkpoint position (init, each log-spaced step, best): the statistic's across-seed mean with its t
    interval, and its change from init with its t interval (each seed's change on its own checkpoints)."""
    series = checkpoint_values(seeds, name)
    rows = []
    for position in range(min(len(s) for s in series)):
        steps = [s[position][0] for s in series]
        values = [s[position][1] for s in series]
        changes = [s[position][1] - s[0][1] for s in series]
        rows.append({"steps": steps, "value": across_seeds(values), "change": across_seeds(changes)})
    return rows
