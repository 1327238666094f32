"""The statistical test behind each claim of the reproduction study (issue 34), read from the study's files.

Each function returns the numbers a claim row quotes and a verdict read from a test with a stated error rate, never
from a point estimate. The statistics are the package's: paired cost comparisons with TOST (analysis/paired.py),
Holm across a verdict table (analysis/multiplicity.py), simultaneous rank intervals (analysis/simultaneous_ranks.py)
and the audit's bootstrap (analysis/stats.py). Files written before per-sequence held-out costs were saved carry only
each comparison's 95% interval: their verdicts are read from that interval and say that they are unadjusted.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from pytest_swapkl.analysis import stats
from pytest_swapkl.analysis.multiplicity import adjust
from pytest_swapkl.analysis.paired import (
    A_CHEAPER,
    B_CHEAPER,
    EQUIVALENT,
    CostComparison,
    adjusted_table,
    compare_costs,
)
from pytest_swapkl.analysis.simultaneous_ranks import joint_rank_intervals
from pytest_swapkl.settings import StatisticsSettings

ALPHA = 0.05
# The tool's default equivalence margin (relative: "same cost" means the ratio lies in [1/1.1, 1.1]), unless a file
# records the margin it used.
MARGIN = StatisticsSettings.__dataclass_fields__["equivalence_margin"].default
# Below this many items an accuracy objective is read as noise (issue 34 asks for at least 1,000 or an lm-eval task).
MIN_ACCURACY_ITEMS = 1000
# Searches whose sets do not depend on the objective, or are drawn at random: left out of the objective test.
OBJECTIVE_BLIND = {"one-shot", "random"}
MAX_PERMUTATIONS = 20_000  # relabellings of the objective test: all of them up to this many, else a random sample


@dataclass(frozen=True)
class ProtocolTest:
    """Replacement- against interchange-guided removal at one budget: R / I held-out KL, paired over sequences."""

    k: int
    safer: str  # "replacement", "interchange", "equivalent", "undecided" or "same set", after the family's adjustment
    ratio: Optional[float]
    low: Optional[float]
    high: Optional[float]
    source: str  # how the verdict was reached: "recomputed", "file p-values" or "interval only"
    # the ratio's interval at 1 - ALPHA / (budgets compared), where per-sequence costs allow: "at some budget" claims
    # read it, so that picking the budget with the largest factor keeps the family-wise error at ALPHA (Bonferroni)
    family_low: Optional[float] = None
    family_high: Optional[float] = None


def protocol_tests(audit: dict) -> tuple[list[ProtocolTest], str]:
    """The one-shot verdicts of one audit as a family (Holm across its budgets), and the family's error rate.

    From per-sequence held-out costs where the file has them (recomputed with compare_costs on the file's own
    resamples, by document where it drew by document); else from the file's p-values; else (files before issue 34)
    from the stored 95% interval: a direction where it excludes 1, "equivalent" where it lies inside the margin (a
    conservative TOST: the 95% interval contains the 90% one), unadjusted."""
    pruning = audit["pruning"]
    margin = pruning.get("equivalence_margin", MARGIN)
    budgets = {b["k"]: b for b in pruning["budgets"]}
    rows, comparisons = [], []
    for v in pruning["verdict"]:
        budget = budgets[v["k"]]
        if v["safer"] == "same set" or budget["sets"]["replacement"] == budget["sets"]["interchange"]:
            rows.append(ProtocolTest(v["k"], "same set", 1.0, 1.0, 1.0, "same set"))
            comparisons.append(None)
            continue
        comparison, source = _comparison(budget, pruning, margin)
        comparisons.append(comparison)
        low, high = v.get("ratio_ci", [None, None])
        rows.append(ProtocolTest(v["k"], _interval_verdict(low, high, margin), v["ratio"], low, high, source))
    if all(t.safer == "same set" for t in rows):
        return rows, "no comparison (the same set at every budget)"
    if all(c is None for c in comparisons):
        return rows, f"each 95% interval alone (per comparison {ALPHA:.0%}, unadjusted: the file has no p-values)"
    adjusted = iter(adjusted_table([c for c in comparisons if c is not None], "holm", ALPHA))
    m = sum(c is not None for c in comparisons)
    label = {A_CHEAPER: "replacement", B_CHEAPER: "interchange"}
    for n, comparison in enumerate(comparisons):
        if comparison is not None:
            c = next(adjusted)
            wide = _comparison(budgets[rows[n].k], pruning, margin, 1 - ALPHA / m)[0]
            family = (wide.ratio_low, wide.ratio_high) if rows[n].source == "recomputed" else (None, None)
            rows[n] = ProtocolTest(rows[n].k, label.get(c.verdict_adjusted, c.verdict_adjusted), c.ratio,
                                   c.ratio_low, c.ratio_high, rows[n].source, *family)
    return rows, f"Holm across the {sum(c is not None for c in comparisons)} budgets (family-wise {ALPHA:.0%})"


def _comparison(budget: dict, pruning: dict, margin: float,
                level: float = 1 - ALPHA) -> tuple[Optional[CostComparison], str]:
    per_sequence = budget.get("heldout_kl_per_sequence") or {}
    if "replacement" in per_sequence and "interchange" in per_sequence:
        settings = pruning.get("bootstrap", {})
        r, i = (np.asarray(per_sequence[m], dtype=np.float64) for m in ("replacement", "interchange"))
        indices = stats.bootstrap_indices(len(r), settings.get("n_resamples", 1000), settings.get("seed", 0),
                                          groups=settings.get("groups"))
        return compare_costs(r, i, indices, level=level, margin=margin), "recomputed"
    stored = (budget.get("comparisons") or {}).get("replacement|interchange")
    if stored and stored.get("p") is not None:
        return CostComparison(stored["a"], stored["b"], stored["ratio"], stored["ratio_low"], stored["ratio_high"],
                              stored["verdict"], stored["p"], stored.get("p_equivalent"), margin), "file p-values"
    return None, "interval only"


def _interval_verdict(low: Optional[float], high: Optional[float], margin: float) -> str:
    if low is None or high is None:
        return "undecided"
    if high < 1:
        return "replacement"
    if low > 1:
        return "interchange"
    return EQUIVALENT if 1 / (1 + margin) <= low and high <= 1 + margin else "undecided"


def factor_interval(test: ProtocolTest) -> Optional[tuple[float, float]]:
    """How many times cheaper the safer protocol's set is, with the interval: R / I read the cheaper way up; the
    family-wise (Bonferroni) interval where the costs allowed one, else the comparison's own 95%."""
    low, high = (test.family_low, test.family_high) if test.family_low is not None else (test.low, test.high)
    if low is None or high is None or test.safer not in ("replacement", "interchange"):
        return None
    return (1 / high, 1 / low) if test.safer == "replacement" else (low, high)


def several_fold(tests: list[ProtocolTest], factor: float) -> tuple[str, str]:
    """Whether the safer protocol is at least ``factor`` times cheaper at some budget, read from the interval of the
    largest factor: above ``factor`` (holds), below (fails) or straddling it (undecided); and the largest threshold
    the evidence clears (the lower end of that interval), so a reader can see how near the convention it sits."""
    intervals = [(t, factor_interval(t)) for t in tests if factor_interval(t) is not None]
    if not intervals:
        return "fails", "no budget has a direction"
    test, (low, high) = max(intervals, key=lambda item: item[1][0])
    verdict = "holds" if low >= factor else "fails" if high < factor else "undecided"
    point = 1 / test.ratio if test.safer == "replacement" else test.ratio
    level = "Bonferroni over the budgets" if test.family_low is not None else "95%, unadjusted"
    return verdict, f"largest factor {test.safer} {point:.2f}x [{low:.2f}, {high:.2f}] ({level}) at k={test.k}"


# --- the audits' per-sequence distances (the *_all.npz files) -------------------------------------------------


@dataclass(frozen=True)
class Distances:
    pairs: np.ndarray  # [n_pairs, 2]
    r_samples: np.ndarray  # [n_resamples, n_pairs] bootstrap means of R (the audit's reduce of the two directions)
    i_samples: np.ndarray
    r: np.ndarray  # [n_pairs] estimates
    i: np.ndarray
    floor: float
    n_sequences: int


def distances(npz_path, reduce: str, n_resamples: int = 1000, seed: int = 0) -> Distances:
    """The audit's R and I with their bootstrap means, resampling sequences as the audit did (the npz files record no
    documents, so the draw is by sequence)."""
    z = np.load(npz_path)
    ij, ji, inter = (np.asarray(z[name], dtype=np.float64).T for name in ("replacement_ij", "replacement_ji",
                                                                         "interchange"))
    combine = np.maximum if reduce == "max" else lambda a, b: (a + b) / 2
    indices = stats.bootstrap_indices(len(ij), n_resamples, seed)
    r_samples = combine(stats.bootstrap_means(ij, indices), stats.bootstrap_means(ji, indices))
    return Distances(np.asarray(z["pairs"]), r_samples, stats.bootstrap_means(inter, indices),
                     combine(ij.mean(0), ji.mean(0)), inter.mean(0), float(z["noise_floor"]), len(ij))


def distance_trend(d: Distances) -> tuple[float, float, float]:
    """Spearman(layer distance, median I/R at that distance) with its 95% percentile interval over the audit's
    resamples: the appendix's "median I/R increases with distance" as one statistic with an interval."""
    from scipy.stats import spearmanr

    gaps = d.pairs[:, 1] - d.pairs[:, 0]
    levels = np.unique(gaps)

    def trend(r: np.ndarray, i: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(r > 0, i / r, np.nan)
        medians = [np.nanmedian(ratio[..., gaps == g], axis=-1) for g in levels]
        return float(spearmanr(levels, medians).statistic)

    point = trend(d.r, d.i)
    samples = np.array([trend(r, i) for r, i in zip(d.r_samples, d.i_samples)])
    low, high = stats.interval(samples[np.isfinite(samples)])
    return point, float(low), float(high)


def surely_different_topk(d: Distances, ks: list[int]) -> dict[int, list[int]]:
    """Per k, the layers surely in one protocol's top-k and surely out of the other's: a layer's min-partner score
    (its smallest distance to any partner) ranked with simultaneous intervals, jointly over both protocols and every
    k at 1 - ALPHA. A layer whose interval ends at or below k under one protocol and starts above k under the other
    shows that the two protocols' true top-k sets differ; an empty list means the data cannot tell them apart."""
    layers = sorted({int(x) for x in d.pairs.ravel()})
    touching = [np.flatnonzero((d.pairs == layer).any(axis=1)) for layer in layers]
    scores = [np.stack([s[:, c].min(axis=1) for c in touching], axis=1) for s in (d.r_samples, d.i_samples)]
    estimates = [np.array([v[c].min() for c in touching]) for v in (d.r, d.i)]
    (rank_r, rank_i) = joint_rank_intervals(scores, estimates, d.floor, ALPHA)
    found = {}
    for k in ks:
        in_r_out_i = (rank_r[:, 1] <= k) & (rank_i[:, 0] > k)
        in_i_out_r = (rank_i[:, 1] <= k) & (rank_r[:, 0] > k)
        found[k] = [layers[n] for n in np.flatnonzero(in_r_out_i | in_i_out_r)]
    return found


# --- guided removal: the objective against the search (the second paper) --------------------------------------


def objective_test(results: list[dict], objectives: tuple[str, ...], k: int) -> Optional[dict]:
    """Within-objective minus across-objective mean Jaccard of the objective-aware searches at budget k, with an exact
    permutation p-value: under "the objective does not matter" each search x guide's objective labels are
    exchangeable, so every relabelling within search x guide is equally likely (one-sided: within above across)."""
    runs = [r for r in results if r["k"] == k and r["objective"] in objectives and r["search"] not in OBJECTIVE_BLIND
            and r.get("layers")]
    combos = sorted({(r["search"], str(r["guide"])) for r in runs})
    by = {(r["search"], str(r["guide"]), r["objective"]): frozenset(r["layers"]) for r in runs}
    combos = [c for c in combos if all((*c, o) in by for o in objectives)]
    if len(combos) < 2:
        return None
    sets = [by[(*c, o)] for c in combos for o in objectives]  # run n: combo n // m, objective n % m
    m = len(objectives)
    jac = np.array([[stats.jaccard(set(a), set(b)) for b in sets] for a in sets])
    combo = np.repeat(np.arange(len(combos)), m)
    same_combo = combo[:, None] == combo[None, :]
    upper = np.triu(np.ones_like(jac, dtype=bool), 1)

    def statistic(labels: np.ndarray) -> float:
        same = labels[:, None] == labels[None, :]
        within = jac[upper & same & ~same_combo].mean()
        across = jac[upper & ~same & same_combo].mean()
        return float(within - across), float(within), float(across)

    observed = statistic(np.tile(np.arange(m), len(combos)))
    orders = list(itertools.permutations(range(m)))
    if len(orders) ** len(combos) <= MAX_PERMUTATIONS:  # every relabelling: the exact p-value
        choices = itertools.product(range(len(orders)), repeat=len(combos))
        extra = 0
    else:  # a random sample of relabellings, the observed one counted in (a valid Monte Carlo p-value)
        rng = np.random.default_rng(0)
        choices = (rng.integers(0, len(orders), len(combos)) for _ in range(MAX_PERMUTATIONS))
        extra = 1
    count = total = extra
    for choice in choices:
        labels = np.concatenate([orders[n] for n in choice])
        count += statistic(labels)[0] >= observed[0] - 1e-12
        total += 1
    low, high = _combo_bootstrap(jac, len(combos), m)
    return {"k": k, "difference": observed[0], "within": observed[1], "across": observed[2], "low": low,
            "high": high, "p": count / total, "n_combos": len(combos), "n_permutations": total - extra,
            "exact": not extra}


def _combo_bootstrap(jac: np.ndarray, n_combos: int, m: int, n_resamples: int = 1000) -> tuple[float, float]:
    """95% percentile interval of within - across mean Jaccard, resampling the search x guide runs (the units the
    paper's comparison generalises over) with replacement: a run drawn twice is never paired with itself."""
    block = jac.reshape(n_combos, m, n_combos, m)
    same_objective = np.einsum("aobo->ab", block) / m  # mean Jaccard of combos a, b under one objective
    np.fill_diagonal(same_objective, 0.0)
    across = np.array([block[a, :, a, :][np.triu_indices(m, 1)].mean() for a in range(n_combos)])
    rng = np.random.default_rng(0)
    weights = np.stack([np.bincount(rng.integers(0, n_combos, n_combos), minlength=n_combos)
                        for _ in range(n_resamples)]).astype(np.float64)
    pair_weights = weights[:, :, None] * weights[:, None, :]
    pair_weights[:, np.arange(n_combos), np.arange(n_combos)] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        within = (pair_weights * same_objective).sum((1, 2)) / pair_weights.sum((1, 2))
    differences = within - weights @ across / weights.sum(1)
    low, high = stats.interval(differences[np.isfinite(differences)])
    return float(low), float(high)


def holm(p_values: list[Optional[float]]) -> list[Optional[float]]:
    return adjust(p_values, "holm")


def correlation_test(rows: list[dict], threshold: float) -> tuple[str, str]:
    """Rank agreement of two objectives at every k against ``threshold`` (the suite's minimum Spearman): "agree" if
    every k's 95% interval lies above it, "disagree" if every one lies below (intersection-union tests: each at 5%,
    no adjustment needed for "at every k"), else "mixed"."""
    above = [r["low"] > threshold for r in rows]
    below = [r["high"] < threshold for r in rows]
    if all(above):
        return "agree", f"every k above {threshold}"
    if all(below):
        return "disagree", f"every k below {threshold}"
    return "mixed", f"{sum(above)} of {len(rows)} k above {threshold}, {sum(below)} below"


def finite(value) -> bool:
    return value is not None and math.isfinite(value)


def rank_cases(d: Distances, tolerance: float, top_layers: set[int]) -> dict:
    """The per-pair rank cases with simultaneous intervals (issue 34): a pair fails when its rank interval under R
    and under I, jointly over every pair and both protocols at 1 - ALPHA, lie more than ``tolerance`` x n_pairs
    ranks apart (agreement.interval_gaps, Tolerances.rank_slots: the tool's own gap and rounding). Also how many
    failing pairs touch a layer in ``top_layers`` (what pruning at the audited budgets would read)."""
    from pytest_swapkl.analysis.agreement import Tolerances, interval_gaps

    rank_r, rank_i = joint_rank_intervals([d.r_samples, d.i_samples], [d.r, d.i], d.floor, ALPHA)
    allowed = Tolerances(rank=tolerance).rank_slots(len(d.r))
    failing = np.flatnonzero(interval_gaps(rank_r, rank_i) > allowed)
    touching = [n for n in failing if {int(d.pairs[n, 0]), int(d.pairs[n, 1])} & top_layers]
    return {"n_pairs": len(d.r), "allowed": allowed, "failing": len(failing), "touching_top": len(touching)}
