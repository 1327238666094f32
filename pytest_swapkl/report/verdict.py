"""The one-sentence verdict of an audit and what it means for pruning, for every place that opens with it:
the HTML report, the Markdown report, the `--swapkl-summary` job summary and `swapkl audit`'s first line.

It is written from the cases' outcomes and numbers only (whatever read them: an audit document or a junit
file), so a report of a junit file and the plugin's summary of the same run say the same sentence.
No torch, no numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ..cases import RANK_CORRELATION, ci_keys, interval_keys, layer_set_label, touching_counts
from ..console import interval

if TYPE_CHECKING:
    from .junit import AuditReading


@dataclass(frozen=True)
class Disagreement:
    """A pair whose rank under R and under I differ beyond the tolerance."""

    label: str
    more_redundant_by: str  # the protocol that ranks the pair as more redundant (a lower distance rank)


@dataclass
class Outcomes:
    n_pairs: int
    disagreements: list = field(default_factory=list)  # [Disagreement]
    spearman: Optional[float] = None
    spearman_interval: Optional[tuple] = None  # (low, high) when the audit has one
    min_spearman: Optional[float] = None
    spearman_passed: Optional[bool] = None
    topk: list = field(default_factory=list)  # [(k, jaccard, replacement_layers, interchange_layers, passed)]
    cheaper_removal: Optional[str] = None  # from measured removals (prune_gap): "interchange-guided ... at k=2"
    touching: dict = field(default_factory=dict)  # {k: failing pairs with a layer in a removal set at budget <= k}
    confidence_sets: dict = field(default_factory=dict)  # {k: {protocol: tau-best layers}} (jointly 95%)


def removal_comparison(k: int, replacement: float, interchange: float, verdict: str, ratio: Optional[float],
                       low: Optional[float], high: Optional[float], adjusted: Optional[str] = None,
                       method: Optional[str] = None) -> str:
    """The paired held-out comparison of the two protocols' sets at budget k, as the verdict sentence states it
    (`verdict`: "replacement cheaper", "interchange cheaper", "equivalent" (within the equivalence margin) or
    "undecided"; "indistinguishable" in audit files before the equivalence test)."""
    interval = "" if ratio is None or low is None or high is None else (
        f", ratio R/I {ratio:.3g} [95% CI {low:.3g}, {high:.3g}]")
    if adjusted is not None and adjusted != verdict:  # the audit's comparisons adjusted together (multiplicity.py)
        interval += f"; after {method or 'adjustment'} across the pruning comparisons: {adjusted}"
    if verdict in ("equivalent", "undecided", "indistinguishable"):
        return (f"at k={k} the protocols' sets cost held-out KL {replacement:.4g} (replacement) and "
                f"{interchange:.4g} (interchange): {verdict}{interval}")
    cheaper, costlier = ("interchange", "replacement") if verdict == "interchange cheaper" else (
        "replacement", "interchange")
    return (f"{cheaper}-guided removal of {k} layers costs held-out KL {min(replacement, interchange):.4g} against "
            f"{max(replacement, interchange):.4g} for {costlier}-guided{interval}")


def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _spearman(outcomes: Outcomes) -> str:
    text = f"Spearman(R, I) = {_number(outcomes.spearman)}"
    if outcomes.spearman_interval is not None and None not in outcomes.spearman_interval \
            and outcomes.spearman is not None:
        text = f"Spearman(R, I) = {interval(outcomes.spearman, *outcomes.spearman_interval, digits=2)}"
    if outcomes.min_spearman is not None:
        text += f", minimum {outcomes.min_spearman:g}"
    return text


def sentence(outcomes: Outcomes) -> str:
    """One sentence: do the protocols agree, where not, and which layers a pruning plan may follow them on."""
    if outcomes.n_pairs == 0:
        return "The audit has no pairs, so it says nothing about which layers to prune."
    bad = outcomes.disagreements
    clause = _pruning_clause(outcomes)
    if not bad and outcomes.spearman_passed is not False and clause.startswith(DIFFERENT_SETS):
        # Ranked alike, removed differently: "agree" would contradict the clause after it
        return (f"Replacement and interchange rank each of the {outcomes.n_pairs} pairs alike within the tolerance "
                f"({_spearman(outcomes)}), but" + clause[1:] + ".")
    if not bad and outcomes.spearman_passed is not False:
        text = (f"Replacement and interchange agree on this model: each of the {outcomes.n_pairs} pairs is ranked "
                f"alike within the tolerance ({_spearman(outcomes)})")
    elif bad:
        where = ", ".join(d.label for d in bad[:6]) + (", ..." if len(bad) > 6 else "")
        by = " or ".join(sorted({d.more_redundant_by for d in bad}))
        overall = ", below its minimum" if outcomes.spearman_passed is False else ""
        text = (f"Replacement and interchange disagree on {len(bad)} of {outcomes.n_pairs} pairs ({where}"
                f"{_touching(outcomes)}), where "
                f"{by} calls the pair more redundant than the other protocol does ({_spearman(outcomes)}{overall}), "
                f"so for those layers trust neither ranking alone")
    else:
        text = (f"Replacement and interchange rank each pair alike within the tolerance but not the pairs as a whole "
                f"({_spearman(outcomes)}), so trust neither ranking alone on this model")
    return text + clause + "."


DIFFERENT_SETS = "; for pruning, at k="  # how the clause for differing removal sets starts


def _touching(outcomes: Outcomes) -> str:
    """'; 3 of them touch a removal set at k <= 4': the failures a pruning at the audit's budgets would meet."""
    if not outcomes.touching:
        return ""
    k = max(outcomes.touching)
    n = outcomes.touching[k]
    return f"; {n} of them touch{'es' if n == 1 else ''} a removal set at k <= {k}"


def _pruning_clause(outcomes: Outcomes) -> str:
    """What the removal sets say: the smallest budget where the two protocols would remove different layers."""
    if outcomes.cheaper_removal:
        return f"; the primary statistic, measured for real: {outcomes.cheaper_removal}"
    budgets = [b for b in outcomes.topk if b[2] is not None and b[3] is not None]
    judged = [b for b in budgets if b[4] is not None] or budgets
    differing = [b for b in judged if set(b[2]) != set(b[3])]
    if not judged:
        return ""
    if not differing:
        ks = ", ".join(str(b[0]) for b in judged)
        return f"; for pruning, both protocols remove the same layers at k = {ks}"
    k, jaccard, replacement, interchange, _ = differing[0]
    return (f"{DIFFERENT_SETS}{k} they would remove different layers (replacement "
            f"{layer_set_label(replacement)}, interchange {layer_set_label(interchange)}, Jaccard {_number(jaccard)}), "
            f"so measure the cost of the layers they do not share (--swapkl-prune-k={k}) before removing them")


def how_sure() -> str:
    """What the verdict's uncertainty rests on (said once under the sentence)."""
    return ("A pair disagrees only when its simultaneous rank intervals under the two protocols (jointly 95% over "
            "every pair and both protocols, Mogstad et al. 2024) lie further apart than the tolerance; pairs whose "
            "distances are both under the noise floor agree. So a disagreement is one the calibration text resolves.")


def budget_lines(outcomes: Outcomes) -> list[str]:
    """Per budget k: the two removal sets and their Jaccard."""
    lines = []
    for k, jaccard, replacement, interchange, passed in outcomes.topk:
        status = "" if passed is None else (" (passed)" if passed else " (failed)")
        sets = outcomes.confidence_sets.get(k) or {}
        confident = "" if not sets else (
            f"; confidence sets (jointly 95%): replacement {layer_set_label(sets.get('replacement'))}, "
            f"interchange {layer_set_label(sets.get('interchange'))}")
        lines.append(f"k={k}: replacement removes {layer_set_label(replacement)}, interchange removes "
                     f"{layer_set_label(interchange)}, Jaccard {_number(jaccard)}{status}{confident}")
    return lines


def disagreement(label: str, rank_replacement: Optional[float], rank_interchange: Optional[float]) -> Disagreement:
    """Rank 1 is the most redundant pair: the protocol with the lower rank calls it more redundant."""
    more = "replacement" if (rank_replacement or 0) < (rank_interchange or 0) else "interchange"
    return Disagreement(label, more)


def outcomes_of(audit: "AuditReading") -> Outcomes:
    """The verdict's inputs from the cases read back: their outcomes and their numbers."""
    correlation = audit.case(RANK_CORRELATION)
    props = correlation.properties if correlation is not None else {}
    bounds = interval_keys(list(props)).get("spearman")
    minimum = props.get("min_spearman")
    outcomes = Outcomes(
        n_pairs=len(audit.pairs), spearman=audit.spearman,
        spearman_interval=(props[bounds[0]], props[bounds[1]]) if bounds else None,
        min_spearman=minimum if isinstance(minimum, (int, float)) and not isinstance(minimum, bool) else None,
        spearman_passed=None if correlation is None else correlation.passed,
        disagreements=[disagreement(p.label, p.rank_replacement, p.rank_interchange)
                       for p in audit.pairs if p.outcome == "failed"])
    for t in audit.topk:
        judged = None if t.outcome == "not judged" else t.outcome == "passed"
        outcomes.topk.append((t.k, t.jaccard, t.replacement_layers, t.interchange_layers, judged))
        if t.confidence_sets:
            outcomes.confidence_sets[t.k] = t.confidence_sets
    sets = [(t.k, t.replacement_layers, t.interchange_layers) for t in audit.topk]
    outcomes.touching = touching_counts([(p.i, p.j) for p in audit.pairs if p.outcome == "failed"], sets)
    # The comparison the verdict states is the paired held-out one the prune_gap case judged
    keys = ("replacement_heldout_kl", "interchange_heldout_kl", "paired_verdict")
    gaps = [c.properties for c in audit.cases if c.name.startswith("prune_gap[")
            and all(isinstance(c.properties.get(key), (float, str)) for key in keys)]
    if gaps:
        last = max(gaps, key=lambda p: p.get("k") or 0)
        low, high = ci_keys("cost_ratio")
        outcomes.cheaper_removal = removal_comparison(
            last.get("k"), last[keys[0]], last[keys[1]], last[keys[2]], last.get("cost_ratio"), last.get(low),
            last.get(high), last.get("paired_verdict_adjusted"), last.get("multiplicity"))
    return outcomes


def sentence_of(audit: "AuditReading") -> str:
    """The verdict sentence of a read audit: what the report opens on, and the CLI audit's first line."""
    return sentence(outcomes_of(audit))
