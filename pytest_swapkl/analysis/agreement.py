"""Do replacement and interchange agree? The rules the plugin's generated tests assert.

Pure numpy on the audit document (schema swapkl/1): no torch, so they are cheap to
test with hypothesis on synthetic tables, and vectorised, so adaptive sampling can judge
hundreds of simulated audits per round.

Per pair, the rank gap is |rank under R - rank under I|, but ranks are only as sharp
as the data, and a rank reads every other pair at once. Every probe is measured on the same
sequences and resampled with the same bootstrap draws, so the audit gives each pair a
*simultaneous* rank interval under each protocol (Mogstad, Romano, Shaikh and Wilhelm 2024,
``simultaneous_ranks``): from the maximum studentized difference over all two pairs and both
protocols, the intervals hold for every pair and both protocols jointly at 95%. The gap is the
distance between a pair's R and I intervals: a pair fails only when even the most favourable
ranks the data allow leave the protocols further apart than the tolerance, so when every pair's
true ranks agree within the tolerance, all pair cases pass with probability at least 95%
(the older rule, one unadjusted 95% comparison per two pairs, let the tolerance alone decide how
many failed: docs/decisions.md). Pairs whose R and I are both under the measured noise floor agree.

``pair_outcomes`` judges whatever intervals it is given: the document's (``rank_interval``, now
simultaneous), or for documents and simulated audits without them, intervals from marginal overlap
(``rank_intervals``, the looser rule). ``paired_rank_intervals`` (one paired comparison at a time)
stays for the benchmarks that compare the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..cases import layer_set_label, pair_label, protocol_comparison, touched_budget, touching_counts
from ..console import rank
from . import paired
from .reliability_text import reliability_text


@dataclass(frozen=True)
class Tolerances:
    rank: float = 0.15  # per pair: allowed rank gap, in ranks, or a fraction of the number of pairs (below)
    rank_is_fraction: bool = True
    log_ratio: Optional[float] = None  # per pair: allowed |ln(I/R)|, off by default
    min_spearman: float = 0.5  # suite: Spearman(R, I) at least this
    min_jaccard: float = 0.33  # suite: top-k Jaccard at least this, for each k in jaccard_k
    jaccard_k: tuple[int, ...] = (2, 4)
    max_ppl_increase: float = 0.25  # prune cases: a method's set may raise perplexity by this much
    max_cost_factor: float = 1.2  # prune gap: replacement- vs interchange-guided KL at one budget

    def rank_slots(self, n_pairs: int) -> int:
        """The allowed rank gap in whole ranks (gaps are whole): a share of the pairs, or a count, rounded to the
        nearest rank, halves up (25% of 7 pairs = 1.75 -> 2; 25% of 6 = 1.5 -> 2; 25% of 5 = 1.25 -> 1)."""
        slots = self.rank * n_pairs if self.rank_is_fraction else self.rank
        return int(math.floor(slots + 0.5))


def tolerances_from(options) -> Tolerances:
    """The tolerances of parsed options (pytest's `--swapkl-*`, or `swapkl report`'s flags of the same names:
    `options.TOLERANCE_OPTIONS`)."""
    rank, rank_is_fraction = options.rank_tolerance
    return Tolerances(rank=rank, rank_is_fraction=rank_is_fraction, log_ratio=options.log_ratio_tolerance,
                      min_spearman=options.min_spearman, min_jaccard=options.min_jaccard,
                      jaccard_k=tuple(options.jaccard_k), max_ppl_increase=options.max_ppl_increase,
                      max_cost_factor=options.max_cost_factor)


@dataclass(frozen=True)
class PairVerdict:
    i: int
    j: int
    passed: bool
    rank_gap: int  # interval-aware gap in ranks
    allowed_gap: int
    reason: str  # why it passed or failed, one sentence


def paired_rank_intervals(samples: np.ndarray, values: np.ndarray, floor: float = 0.0,
                          level: float = 0.95) -> np.ndarray:
    """[..., n, 2] ranks (1 = most redundant) each item can take when items the paired bootstrap cannot order
    may swap: from 1 + the items surely below it to n - the items surely above it.

    samples: [..., n_resamples, n], column c holding item c's bootstrap means on resamples shared by every
    column (``stats.bootstrap_indices``); values: [..., n], the estimates. Leading axes are independent
    audits (adaptive sampling judges many simulated ones at once). Two items both at or under ``floor``
    are tied whatever their resamples say.
    """
    samples, values = np.asarray(samples, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if samples.ndim > 2:
        return np.stack([paired_rank_intervals(s, v, floor, level) for s, v in zip(samples, values)])
    return ranks_from_order(paired_order(samples, values, floor, level))


def ranks_from_order(matrix: np.ndarray) -> np.ndarray:
    """[n, 2] rank intervals from a ``paired_order`` matrix: 1 + the items surely below, n - the items surely above."""
    below = (matrix == paired.B_SMALLER).sum(1)  # row a, column b: B_SMALLER = b surely below a
    above = (matrix == paired.A_SMALLER).sum(1)
    return np.stack([below + 1, len(matrix) - above], axis=1)


def paired_order(samples: np.ndarray, values: np.ndarray, floor: float = 0.0, level: float = 0.95) -> np.ndarray:
    """``paired.order_matrix`` of [n_resamples, n] samples, with every two items under the floor tied."""
    matrix = paired.order_matrix(samples, level)
    under = np.asarray(values, dtype=np.float64) <= floor
    matrix[under[:, None] & under[None, :]] = paired.INDISTINGUISHABLE
    return matrix


def tie_counts(samples: np.ndarray, values: np.ndarray, lows: np.ndarray, highs: np.ndarray, floor: float = 0.0,
               level: float = 0.95, order: Optional[np.ndarray] = None) -> dict[str, int]:
    """Of the n(n-1)/2 comparisons between items: how many marginal-interval overlap calls tied, how many of
    those the paired bootstrap separates, and how many the paired bootstrap leaves tied. ``order``: the
    ``paired_order`` matrix of these samples when the caller has it already (it is the expensive part)."""
    lows, highs = np.asarray(lows, dtype=np.float64), np.asarray(highs, dtype=np.float64)
    upper = np.triu_indices(len(lows), k=1)
    overlap = ((lows[:, None] <= highs[None, :]) & (lows[None, :] <= highs[:, None]))[upper]
    if order is None:
        order = paired_order(samples, values, floor, level)
    tied = (order == paired.INDISTINGUISHABLE)[upper]
    return {"comparisons": int(len(overlap)), "overlap_tied": int(overlap.sum()),
            "overlap_tied_paired_separable": int((overlap & ~tied).sum()), "paired_tied": int(tied.sum())}


def rank_intervals(values: np.ndarray, lows: np.ndarray, highs: np.ndarray, floor: float) -> np.ndarray:
    """[..., n, 2] rank intervals from marginal intervals (two items tie when their 95% intervals overlap):
    the looser rule, for documents and simulated audits that carry no shared resamples."""
    values, lows, highs = (np.asarray(a, dtype=np.float64) for a in (values, lows, highs))
    other = ~np.eye(values.shape[-1], dtype=bool)
    under = values <= floor
    surely = (highs[..., None, :] < lows[..., :, None]) & ~under[..., :, None] & other
    possibly = ((lows[..., None, :] <= highs[..., :, None]) | (under[..., None, :] & under[..., :, None])) & other
    return np.stack([surely.sum(-1) + 1, possibly.sum(-1) + 1], axis=-1)


def interval_gaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between two [..., n, 2] rank intervals, item by item (0 where they meet)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.maximum(0, np.maximum(a[..., 0] - b[..., 1], b[..., 0] - a[..., 1]))


def rank_gaps(r: PairArrays, i: PairArrays, floor: float) -> np.ndarray:
    """Interval-aware gap between each pair's rank under R and under I, from marginal intervals."""
    return interval_gaps(rank_intervals(*r, floor), rank_intervals(*i, floor))


def pair_outcomes(r: PairArrays, i: PairArrays, floor: float, tolerances: Tolerances,
                  log_ratios: Optional[np.ndarray] = None, rank_r: Optional[np.ndarray] = None,
                  rank_i: Optional[np.ndarray] = None) -> tuple[np.ndarray, ...]:
    """Per pair: (passed, gap, reason code), vectorised, so adaptive sampling can judge many simulated audits.

    r and i are (values, lows, highs), each [..., n_pairs]: leading axes, if any, are independent audits
    judged at once. rank_r and rank_i are [..., n_pairs, 2] paired rank intervals (`paired_rank_intervals`
    of each protocol's bootstrap means on shared resamples); without them the intervals come from marginal
    overlap of (lows, highs) (`rank_intervals`), the looser rule. log_ratios ([..., n_pairs], NaN where
    undefined) default to ln(I/R) of the values. Returns three [..., n_pairs] arrays: passed (bool), gap
    (ranks between the R and I intervals) and the reason code, in order of precedence PASS_FLOOR,
    FAIL_RATIO, PASS_GAP, FAIL_GAP.
    """
    (rv, rl, rh), (iv, il, ih) = (tuple(np.asarray(a, dtype=np.float64) for a in x) for x in (r, i))
    if rank_r is None or rank_i is None:
        rank_r, rank_i = rank_intervals(rv, rl, rh, floor), rank_intervals(iv, il, ih, floor)
    gap = interval_gaps(rank_r, rank_i)
    allowed = tolerances.rank_slots(rv.shape[-1])
    reason = np.full(rv.shape, FAIL_GAP)
    reason[gap <= allowed] = PASS_GAP
    if tolerances.log_ratio is not None:
        if log_ratios is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_ratios = np.where((rv > 0) & (iv > 0), np.log(iv) - np.log(rv), np.nan)  # numerics.log_ratio
        log_ratios = np.asarray(log_ratios, dtype=np.float64)
        reason[~np.isnan(log_ratios) & (np.abs(log_ratios) > tolerances.log_ratio)] = FAIL_RATIO
    reason[(rv <= floor) & (iv <= floor)] = PASS_FLOOR
    return np.isin(reason, (PASS_FLOOR, PASS_GAP)), gap, reason


PairArrays = tuple  # (values, lows, highs), each a sequence over pairs
PASS_FLOOR, FAIL_RATIO, PASS_GAP, FAIL_GAP = range(4)  # reason codes: never stored, only turned into text


def pair_verdicts(document: dict, tolerances: Tolerances) -> list[PairVerdict]:
    pairs = document["pairs"]
    floor = document.get("noise_floor", 0.0) or 0.0
    allowed = tolerances.rank_slots(len(pairs))
    if not pairs:
        return []
    r = ([p["replacement"] for p in pairs], *zip(*(p["ci"]["replacement"] for p in pairs)))
    i = ([p["interchange"] for p in pairs], *zip(*(p["ci"]["interchange"] for p in pairs)))
    log_ratios = [np.nan if p.get("log_ratio") is None else p["log_ratio"] for p in pairs]
    rank_r = rank_i = None
    if all("rank_interval" in p for p in pairs):  # paired; older documents fall back to marginal overlap
        rank_r = np.array([p["rank_interval"]["replacement"] for p in pairs], dtype=np.float64)
        rank_i = np.array([p["rank_interval"]["interchange"] for p in pairs], dtype=np.float64)
    passed, gaps, reasons = pair_outcomes(r, i, floor, tolerances, log_ratios, rank_r, rank_i)
    return [PairVerdict(pair["i"], pair["j"], bool(ok), int(gap), allowed, _reason(pair, code, gap, allowed, floor,
                                                                                      tolerances))
            for pair, ok, gap, code in zip(pairs, passed, gaps, reasons)]


def _reason(pair: dict, code: int, gap: float, allowed: float, floor: float, tolerances: Tolerances) -> str:
    if code == PASS_FLOOR:
        return f"both distances are under the noise floor {floor:.2e}"
    if code == FAIL_RATIO:
        return (f"|ln(I/R)| = {abs(pair['log_ratio']):.2f} exceeds the tolerance {tolerances.log_ratio:.2f}")
    where = _rank_interval_text(pair)
    if code == PASS_GAP:
        return f"rank gap {gap:g} is within the tolerance {allowed}{where}"
    return f"rank gap {gap:g} exceeds the tolerance {allowed}{where}"


def _rank_interval_text(pair: dict) -> str:
    """' (ranks [a, b] under R, [c, d] under I)': the interval the decision is taken on."""
    if "rank_interval" not in pair:
        return ""
    (r_low, r_high), (i_low, i_high) = pair["rank_interval"]["replacement"], pair["rank_interval"]["interchange"]
    return f" (simultaneous 95% rank intervals {r_low:g}-{r_high:g} under R, {i_low:g}-{i_high:g} under I)"


def failure_message(pair: dict, verdict: PairVerdict, n_pairs: int, document: Optional[dict] = None) -> str:
    """What a failing pair case says: both distances with intervals, both ranks, the tolerance, whether a pruning
    at the audit's budgets would touch it, the meaning."""
    (r_low, r_high), (i_low, i_high) = pair["ci"]["replacement"], pair["ci"]["interchange"]
    safer, riskier = ("interchange", "replacement") if pair["rank_interchange"] > pair["rank_replacement"] else (
        "replacement", "interchange")
    return (
        f"{pair_label(pair['i'], pair['j'])}: the protocols disagree about how redundant this pair is.\n"
        f"  replacement R = {pair['replacement']:.4g} nats [95% CI {r_low:.4g}, {r_high:.4g}], "
        f"rank {rank(pair['rank_replacement'])} of {n_pairs}\n"
        f"  interchange I = {pair['interchange']:.4g} nats [95% CI {i_low:.4g}, {i_high:.4g}], "
        f"rank {rank(pair['rank_interchange'])} of {n_pairs}\n"
        f"  {verdict.reason} (interval-aware gap {verdict.rank_gap}, tolerance {verdict.allowed_gap}).\n"
        f"  {_touch_text(pair, document)}\n"
        f"  For pruning: {riskier} ranks this pair as more redundant than {safer} does, so a pruning plan "
        f"chosen by {riskier} would remove a layer here that {safer} says is doing distinct work; "
        f"measure the removal (swapkl_audit.removal_cost) before trusting either."
    )


def topk_sets(document: Optional[dict]) -> list[tuple[int, list, list]]:
    """(k, replacement layers, interchange layers) of every top-k budget of the document."""
    return [(t["k"], t["replacement_layers"], t["interchange_layers"])
            for t in ((document or {}).get("summary") or {}).get("topk") or ()]


def _touch_text(pair: dict, document: Optional[dict]) -> str:
    """Whether a pruning at the audit's budgets would remove either of the pair's layers."""
    sets = topk_sets(document)
    if not sets:
        return "Top-k: the audit has no removal sets to compare with."
    k = touched_budget(pair["i"], pair["j"], sets)
    if k is None:
        return (f"Top-k: no removal set at k <= {max(s[0] for s in sets)} holds either layer, so no pruning at "
                f"these budgets touches this pair.")
    _, replacement, interchange = next(s for s in sets if s[0] == k)
    removed = {pair["i"], pair["j"]} & (set(replacement or ()) | set(interchange or ()))
    return (f"Top-k: a pruning at k={k} would remove {layer_set_label(removed)} (either protocol's set), so this "
            f"disagreement matters for pruning.")


def failing_pairs_touching(document: dict, verdicts: list[PairVerdict]) -> tuple[int, dict[int, int]]:
    """(how many pair cases fail, {k: how many of those touch a removal set at a budget <= k})."""
    failing = [(v.i, v.j) for v in verdicts if not v.passed]
    return len(failing), touching_counts(failing, topk_sets(document))


def spearman_passes(document: dict, tolerances: Tolerances) -> tuple[bool, str]:
    rho = document["summary"]["spearman"]
    if rho is None:
        return True, "Spearman(R, I) is undefined (fewer than two distinct pairs): nothing to compare"
    verdict = rho >= tolerances.min_spearman
    summary = document["summary"]
    kendall = summary["kendall"]
    kendall_text = "n/a" if kendall is None else f"{kendall:.3f}{_ci_text(summary.get('kendall_ci'))}"
    return verdict, (f"Spearman(R, I) = {rho:.3f}{_ci_text(summary.get('spearman_ci'))} (Kendall {kendall_text}) "
                     f"over {len(document['pairs'])} pairs; minimum {tolerances.min_spearman:.3f} "
                     f"(on the estimate){reliability_text(summary)}")


def _ci_text(interval) -> str:
    """' [95% CI a, b]' for a [low, high] pair of numbers, '' where there is none."""
    if not interval or any(x is None for x in interval):
        return ""
    return f" [95% CI {interval[0]:.3f}, {interval[1]:.3f}]"


def jaccard_passes(document: dict, k: int, tolerances: Tolerances) -> tuple[bool, str]:
    entry = next((t for t in document["summary"]["topk"] if t["k"] == k), None)
    if entry is None:
        return True, f"no top-{k} sets: the model has too few layers"
    verdict = entry["jaccard"] >= tolerances.min_jaccard
    replacement, interchange = set(entry["replacement_layers"]), set(entry["interchange_layers"])
    stability = entry.get("stability")
    stable_text = "" if not stability else (
        f"; the sets recur in {100 * stability['replacement']:.0f}% (R) and {100 * stability['interchange']:.0f}% "
        f"(I) of resamples")
    text = (f"top-{k} removal sets: replacement {layer_set_label(replacement)}, interchange "
            f"{layer_set_label(interchange)}, Jaccard {entry['jaccard']:.3f}{_ci_text(entry.get('jaccard_ci'))}; "
            f"minimum {tolerances.min_jaccard:.3f} (on the estimate){stable_text}")
    if verdict:
        return True, text
    only_replacement, only_interchange = replacement - interchange, interchange - replacement
    return False, (
        f"{text}\n"
        f"  The protocols disagree about which {k} layers are redundant: only replacement would remove "
        f"{layer_set_label(only_replacement)}, only interchange {layer_set_label(only_interchange)}.\n"
        f"  For pruning: a {k}-layer plan chosen by either protocol alone removes a layer that the other would keep "
        f"as doing distinct work, so neither ranking supports it by itself; remove both sets for real and compare "
        f"their cost "
        f"(--swapkl-prune-k={k}, or swapkl_audit.removal_cost) before trusting either.")


def prune_passes(document: dict, method: str, k: int, tolerances: Tolerances) -> tuple[Optional[bool], str]:
    """Is the held-out perplexity of `method`'s k-layer set, removed for real, within the budget? None: no set.

    Asserts on the estimate, not the interval: the budget is a requirement on the pruned model's perplexity, and
    the held-out estimate is the best number for it; the interval is in the message and the properties."""
    pruning = document["pruning"]
    budget = next(b for b in pruning["budgets"] if b["k"] == k)
    layers, ppl = budget["sets"].get(method), budget["heldout_ppl"].get(method)
    base = pruning["heldout_base_ppl"]
    if layers is None:
        return None, f"{method} names no {k}-layer set on these pairs (its rule ran out of pairs)"
    if ppl is None or base is None:  # overflowed: numerics.perplexity, null in the JSON
        return False, (f"removing {method}'s choice {layers} for real: a perplexity is infinite (it overflowed; "
                       "see the notices): the weights or the dtype are broken")
    increase = ppl / base - 1
    low, high = (budget.get("heldout_ppl_ci") or {}).get(method) or (None, None)
    shown = "" if low is None or high is None else f" [95% CI {low:.3f}, {high:.3f}]"
    return increase <= tolerances.max_ppl_increase, (
        f"removing {method}'s choice {layer_set_label(layers)} for real: held-out perplexity {base:.3f} -> "
        f"{ppl:.3f}{shown} (+{100 * increase:.1f}%, KL {budget['heldout_kl'][method]:.4g} nats); "
        f"budget +{100 * tolerances.max_ppl_increase:g}% on the estimate")


def prune_gap_passes(document: dict, k: int, tolerances: Tolerances) -> tuple[Optional[bool], str]:
    """Do the replacement- and interchange-guided sets cost about the same when really removed (held-out KL)?

    Asserts on the interval: fails only when the 95% paired-bootstrap interval of the cost ratio lies wholly
    beyond the allowed factor (either way), so a failure means a gap the held-out text shows, not the noise of
    a ratio of two small KLs. Where the ratio has no interval (a cost of 0 on some resample), on the estimate."""
    budget = next(b for b in document["pruning"]["budgets"] if b["k"] == k)
    sets = budget["sets"]
    comparison = protocol_comparison(budget)
    if sets.get("replacement") is None or sets.get("interchange") is None or comparison is None:
        return None, f"no replacement- or interchange-guided {k}-layer set to compare"
    r, i = comparison["a"], comparison["b"]
    described = (f"k={k}: replacement removes {layer_set_label(sets['replacement'])} (held-out KL {r:.4g}), "
                 f"interchange removes {layer_set_label(sets['interchange'])} (held-out KL {i:.4g})")
    if sets["replacement"] == sets["interchange"]:
        return True, f"{described}: the same set"
    factor = tolerances.max_cost_factor
    low, high = comparison["ratio_low"], comparison["ratio_high"]
    margin = comparison.get("equivalence_margin")
    verdict = {"A cheaper": "replacement-guided removal is cheaper", "B cheaper": "interchange-guided removal is "
               "cheaper", "equivalent": f"they cost the same within the equivalence margin {margin}",
               "undecided": "the paired test decides neither a direction nor equivalence"}.get(
        comparison["verdict"], "the paired test cannot tell them apart")
    if low is not None and high is not None:
        passed = not (low > factor or high < 1 / factor)
        return passed, (f"{described}; ratio R/I {comparison['ratio']:.3g} [95% CI {low:.3g}, {high:.3g}]: "
                        f"{verdict}; fails when the interval lies wholly outside [{1 / factor:.3g}, {factor:g}]")
    cheaper, costlier = sorted((r, i))
    estimate = costlier / cheaper if cheaper > 0 else (1.0 if costlier == 0 else float("inf"))
    return estimate <= factor, (f"{described}; {verdict}; the ratio has no interval (a cost of 0), so the estimate "
                                f"{estimate:.3g}x is judged against the allowed factor {factor:g}")
