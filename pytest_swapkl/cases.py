"""The catalogue of generated test cases: their names, the properties each carries, and how they are read back.

This is the contract between the plugin (which writes the cases into junit XML), adaptive
mode (which predicts their verdicts) and `swapkl report` (which reads them back). Every
name and property key is spelled here and nowhere else; each kind is one `case_kinds.CaseKind`,
registered at the end of this module (`case_kinds.CASE_KINDS`):

    audit                    every number finite; base perplexity, noise floor, removal KLs
    pair[L03-L04]            do replacement and interchange rank this pair alike?
    rank_correlation         Spearman (and Kendall) of R and I over the pairs
    topk_jaccard[k=2]        do the two protocols remove the same layers at budget k?
    prune[interchange-k2]    that protocol's set, removed for real, within a perplexity budget
    prune_gap[k2]            do the two protocols' choices cost about the same?
    prune_budget[interchange-beam-ppl-10%-4]
                             a guided search removes at least 4 layers within +10% held-out ppl (--swapkl-prune-budget)
    baseline[main]           did Spearman(R, I) drop against a saved baseline? (--swapkl-compare)
    merge[L03-L04]           does merging the pair (averaging KL) cost no more than removing the cheaper layer?
                             (--swapkl-averaging)

No torch, no numpy: the plugin loads this in every pytest run.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence

from . import case_records as records
from .case_kinds import (
    COUNT,
    LAYER,
    WORD,
    CaseKind,
    CaseName,
    Param,
    layer_label,
    register_kind,
)
from .case_kinds import pair_label as pair_label  # part of this catalogue's interface
from .case_kinds import parse_case as parse_case

CLASSNAME = "swapkl"  # the junit classname of every generated case
AUDIT = "audit"
RANK_CORRELATION = "rank_correlation"

CONTEXT_KEYS = ("model", "data_sha256", "dtype", "device")  # which audit a case belongs to
PAIR_KEYS = ("i", "j", "replacement_ij", "replacement_ji", "interchange", "replacement", "ratio", "log_ratio",
             "rank_replacement", "rank_interchange")
PROTOCOLS = ("replacement", "interchange")

BASELINE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
_REMOVAL_KEY = re.compile(r"^removal_L(\d{1,6})_kl$")
_TOPK_KEY = re.compile(r"^top(\d{1,6})_jaccard$")

Properties = list[tuple[str, Any]]


def layer_set_label(layers: Optional[Sequence[int]]) -> str:
    """A set of layers: {L03, L05} ({} for none, n/a when there is no set)."""
    if layers is None:
        return "n/a"
    return "{" + ", ".join(layer_label(layer) for layer in sorted(layers)) + "}"


def touched_budget(i: int, j: int, sets: Sequence[tuple[int, Any, Any]]) -> Optional[int]:
    """The smallest budget k at which a pruning by either protocol would remove layer i or j (its pair "touches
    the top-k"), None when no budget's set holds either. sets: (k, replacement layers, interchange layers)."""
    touched = [k for k, replacement, interchange in sets if {i, j} & (set(replacement or ()) | set(interchange or ()))]
    return min(touched, default=None)


def touching_counts(failing: Sequence[tuple[int, int]], sets: Sequence[tuple[int, Any, Any]]) -> dict[int, int]:
    """{k: how many of the failing pairs (i, j) touch a removal set at a budget of k or fewer}, for every k."""
    smallest = [touched_budget(i, j, sets) for i, j in failing]
    return {k: sum(1 for m in smallest if m is not None and m <= k) for k, _, _ in sorted(sets, key=lambda s: s[0])}


def budgets_within(budgets: Sequence[int], n_layers: int) -> list[int]:
    """The budgets k a model of `n_layers` has top-k sets for (one layer must stay): a case for another k could only
    pass vacuously, and the report refuses it as a budget outside the layers."""
    return [k for k in budgets if 1 <= k <= n_layers - 1]


# --- names (each kind's grammar is registered with it, at the end) ------------------------------------------


def pair_case(i: int, j: int) -> str:
    return PAIR_KIND.format(i=i, j=j)


def topk_case(k: int) -> str:
    return TOPK_KIND.format(k=k)


def prune_case(method: str, k: int) -> str:
    return PRUNE_KIND.format(method=method, k=k)


def prune_gap_case(k: int) -> str:
    return PRUNE_GAP_KIND.format(k=k)


def prune_budget_case(label: str) -> str:
    """`label` as `analysis.budgets.BudgetSpec.label` writes it."""
    return PRUNE_BUDGET_KIND.format(budget=label)


def baseline_case(name: str) -> str:
    return BASELINE_KIND.format(baseline=name)


def merge_case(i: int, j: int) -> str:
    return MERGE_KIND.format(i=i, j=j)


def planned_cases(pairs: Sequence[tuple[int, int]], jaccard_k: Sequence[int], prune_budgets: Sequence[int] = (),
                  prune_methods: Sequence[str] = (), baseline: Optional[str] = None,
                  budget_labels: Sequence[str] = (), merge_pairs: Sequence[tuple[int, int]] = ()) -> list[str]:
    """The names of the cases an audit with these settings generates, in the order the plugin adds them:
    what `--collect-only` lists without measuring; ``budget_labels`` are the --swapkl-prune-budget labels,
    ``merge_pairs`` the pairs of --swapkl-averaging."""
    names = [AUDIT, *(pair_case(i, j) for i, j in pairs), RANK_CORRELATION, *(topk_case(k) for k in jaccard_k)]
    for k in prune_budgets:
        names += [prune_case(method, k) for method in prune_methods]
        if has_prune_gap(prune_methods):
            names.append(prune_gap_case(k))
    names += [prune_budget_case(label) for label in budget_labels]
    names += [merge_case(i, j) for i, j in merge_pairs]
    if baseline:
        names.append(baseline_case(baseline))
    return names


# --- property keys ---------------------------------------------------------------------------------------


def removal_key(layer: int) -> str:
    return f"removal_{layer_label(layer)}_kl"


def parse_removal_key(key: str) -> Optional[int]:
    match = _REMOVAL_KEY.match(key)
    return int(match.group(1)) if match else None


def topk_keys(k: int) -> dict[str, str]:
    """Keys of one budget's removal sets on the rank_correlation case (every budget, judged or not)."""
    return {"jaccard": f"top{k}_jaccard", "replacement_layers": f"top{k}_replacement_layers",
            "interchange_layers": f"top{k}_interchange_layers"}


def parse_topk_key(key: str) -> Optional[int]:
    match = _TOPK_KEY.match(key)
    return int(match.group(1)) if match else None


def ci_keys(name: str) -> tuple[str, str]:
    return f"{name}_ci_low", f"{name}_ci_high"


def ci_names(properties: dict) -> list[str]:
    """The quantities that have an interval among these properties."""
    return [key[: -len("_ci_low")] for key in properties if key.endswith("_ci_low")]


# --- the properties each case carries, from the audit document -------------------------------------------


def context_properties(document: dict) -> Properties:
    return [("model", document["model"]["name"]), ("data_sha256", document["data"]["sha256"]),
            ("dtype", document["model"]["dtype"]), ("device", document["model"]["device"])]


def audit_properties(document: dict, origin: str, cache_hit: bool) -> Properties:
    return context_properties(document) + [
        ("base_ppl", document["base"]["ppl"]), ("noise_floor", document["noise_floor"]),
        ("noise_floor_measured_as", (document.get("noise") or {}).get("what", "not measured")),
        ("audit_computed_in", origin), ("audit_cache_hit", cache_hit),
    ] + [(removal_key(r["layer"]), r["kl"]) for r in document["removal"]] + (
        heldout_properties(document) if document.get("heldout") else [])


def whole(value: Any) -> Any:
    """A rank as data: 3 for a whole rank (junit would write 3.0), 2.5 for a tie averaged over two places."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


RANK_KEYS = ("rank_replacement", "rank_interchange")


def pair_properties(pair: dict, verdict: Any) -> Properties:
    """`verdict` is an `agreement.PairVerdict` (rank_gap, allowed_gap, reason)."""
    properties = [(key, whole(pair[key]) if key in RANK_KEYS else pair[key]) for key in PAIR_KEYS]
    for name, (low, high) in pair["ci"].items():
        low_key, high_key = ci_keys(name)
        properties += [(low_key, low), (high_key, high)]
    for protocol, (low, high) in pair.get("rank_interval", {}).items():  # the interval the verdict is taken on
        properties += [(f"rank_{protocol}_interval_low", whole(low)), (f"rank_{protocol}_interval_high", whole(high))]
    return properties + [("rank_gap", whole(verdict.rank_gap)), ("rank_tolerance", whole(verdict.allowed_gap)),
                         ("asserts_on", "interval"), ("verdict", verdict.reason)]


def _ci_properties(name: str, interval: Any) -> Properties:
    """name_ci_low / name_ci_high where the document has the [low, high] interval."""
    if not interval:
        return []
    low_key, high_key = ci_keys(name)
    return [(low_key, interval[0]), (high_key, interval[1])]


def rank_properties(document: dict, min_spearman: float) -> Properties:
    summary = document["summary"]
    properties = context_properties(document) + [
        ("spearman", summary["spearman"]), ("kendall", summary["kendall"]), ("n_pairs", len(document["pairs"])),
        ("min_spearman", min_spearman), ("asserts_on", "estimate"), *conventions(document)]
    properties += _ci_properties("spearman", summary.get("spearman_ci")) + _ci_properties("kendall",
                                                                                           summary.get("kendall_ci"))
    reliability = summary.get("reliability") or {}  # split-half, each protocol (intervals.split_half_reliability)
    properties += [(f"reliability_{name}", reliability[name]) for name in ("replacement", "interchange")
                   if reliability.get(name) is not None]
    if summary.get("spearman_disattenuated") is not None:
        properties.append(("spearman_disattenuated", summary["spearman_disattenuated"]))
    for entry in summary.get("ratio_by_distance", []):
        properties += [(f"median_ratio_d{entry['distance']}", entry["median_ratio"]),
                       *_ci_properties(f"median_ratio_d{entry['distance']}", entry["ci"])]
    for entry in summary["topk"]:  # every budget, so a report shows them whatever --swapkl-jaccard-k was
        keys = topk_keys(entry["k"])
        properties += [(keys["replacement_layers"], entry["replacement_layers"]),
                       (keys["interchange_layers"], entry["interchange_layers"]), (keys["jaccard"], entry["jaccard"]),
                       *_ci_properties(keys["jaccard"], entry.get("jaccard_ci"))]  # every Jaccard with its interval
    return properties


def conventions(document: dict) -> Properties:
    """How R combines the two replacement directions and which rule read the removal sets (an older audit: none)."""
    topk = document["summary"].get("topk") or [{}]
    return [(key, value) for key, value in (("replacement_reduce", document.get("settings", {}).get(
        "replacement_reduce")), ("pair_rule", topk[0].get("rule"))) if value is not None]


def topk_properties(document: dict, k: int, min_jaccard: float) -> Properties:
    entry = next((t for t in document["summary"]["topk"] if t["k"] == k), {})
    properties = [("k", k), ("jaccard", entry.get("jaccard")), ("replacement_layers", entry.get("replacement_layers")),
                  ("interchange_layers", entry.get("interchange_layers")), ("pair_rule", entry.get("rule")),
                  ("min_jaccard", min_jaccard),
                  ("asserts_on", "estimate"), *_ci_properties("jaccard", entry.get("jaccard_ci"))]
    for protocol, share in entry.get("stability", {}).items():  # share of resamples reproducing the set
        properties.append((f"{protocol}_set_stability", share))
    for protocol, layers in entry.get("confidence_set", {}).items():  # tau-best: jointly 95% (simultaneous_ranks)
        properties.append((f"{protocol}_confidence_set", layers))
    return properties


def prune_properties(document: dict, budget: dict, method: str, max_ppl_increase: float) -> Properties:
    """The held-out cost of one method's set (what the case asserts on: the estimate) with its interval, and the
    calibration cost for contrast."""
    pruning = document["pruning"]
    kl_low, kl_high = (budget.get("heldout_kl_ci") or {}).get(method) or (None, None)
    ppl_low, ppl_high = (budget.get("heldout_ppl_ci") or {}).get(method) or (None, None)
    return [("method", method), ("k", budget["k"]), ("layers", budget["sets"].get(method)),
            ("heldout_kl", budget.get("heldout_kl", {}).get(method)), (ci_keys("heldout_kl")[0], kl_low),
            (ci_keys("heldout_kl")[1], kl_high), ("heldout_ppl", budget.get("heldout_ppl", {}).get(method)),
            (ci_keys("heldout_ppl")[0], ppl_low), (ci_keys("heldout_ppl")[1], ppl_high),
            ("heldout_base_ppl", pruning.get("heldout_base_ppl")), ("kl", budget["kl"].get(method)),
            ("ppl", budget["ppl"].get(method)), ("base_ppl", pruning["base_ppl"]),
            ("max_ppl_increase", max_ppl_increase), ("asserts_on", "estimate")] + heldout_properties(document)


def prune_gap_properties(budget: dict, max_cost_factor: float, document: Optional[dict] = None) -> Properties:
    """Both protocols' held-out costs, the paired verdict and the ratio R/I with its interval (what the case
    asserts on), and the calibration costs for contrast."""
    comparison = protocol_comparison(budget) or {}
    return [("k", budget["k"]), ("replacement_heldout_kl", comparison.get("a")),
            ("interchange_heldout_kl", comparison.get("b")), ("paired_verdict", PAIRED_VERDICTS.get(
                comparison.get("verdict"), comparison.get("verdict"))),
            ("cost_ratio", comparison.get("ratio")), (ci_keys("cost_ratio")[0], comparison.get("ratio_low")),
            (ci_keys("cost_ratio")[1], comparison.get("ratio_high")),
            ("paired_p", comparison.get("p")), ("equivalence_margin", comparison.get("equivalence_margin")),
            ("paired_verdict_adjusted", PAIRED_VERDICTS.get(comparison.get("verdict_adjusted"),
                                                            comparison.get("verdict_adjusted"))),
            ("paired_p_adjusted", comparison.get("p_adjusted")),
            ("multiplicity", ((document or {}).get("pruning") or {}).get("multiplicity")),
            ("replacement_kl", budget["kl"].get("replacement")), ("interchange_kl", budget["kl"].get("interchange")),
            ("max_cost_factor", max_cost_factor), ("asserts_on", "interval")] + (
        heldout_properties(document) if document is not None else [])


def prune_budget_properties(record: dict, document: dict) -> Properties:
    """One ``--swapkl-prune-budget`` (a `budgets.outcome_record`): the set, its held-out cost with its interval
    against the held-out ceiling (what the case asserts on: the estimate, or with strict the interval's upper end),
    the paired ratio to the full model with its interval, and the calibration cost for contrast."""
    outcome = record["outcome"]
    heldout, versus = outcome.get("heldout") or {}, outcome.get("versus_full") or {}
    return [("budget", record["spec"]), ("guide", outcome["guide"]), ("search", outcome["search"]),
            ("objective", outcome["objective"]), ("max_cost", outcome["max_cost"]),
            ("min_layers", record["min_layers"]), ("strict", record["strict"]), ("layers", outcome["layers"]),
            ("k", len(outcome["layers"])), ("ceiling", outcome["ceiling"]),
            ("calibration_cost", outcome["calibration_cost"]), ("heldout_cost", heldout.get("cost")),
            (ci_keys("heldout_cost")[0], heldout.get("low")), (ci_keys("heldout_cost")[1], heldout.get("high")),
            ("heldout_base_cost", outcome["heldout_base"]), ("heldout_ceiling", outcome["heldout_ceiling"]),
            ("ratio_to_full", versus.get("ratio")), (ci_keys("ratio_to_full")[0], versus.get("ratio_low")),
            (ci_keys("ratio_to_full")[1], versus.get("ratio_high")),
            ("asserts_on", "interval" if record["strict"] else "estimate")] + heldout_properties(document)


def protocol_comparison(budget: dict) -> Optional[dict]:
    """The paired held-out comparison of the replacement- and interchange-guided sets, as replacement / interchange
    (`a` replacement, `b` interchange), or None without both sets."""
    comparisons = budget.get("comparisons") or {}
    if "replacement|interchange" in comparisons:
        return comparisons["replacement|interchange"]
    other = comparisons.get("interchange|replacement")
    if other is None:
        return None
    inverse = lambda x: None if x is None or x <= 0 else 1 / x  # noqa: E731
    mirror = {"A cheaper": "B cheaper", "B cheaper": "A cheaper"}
    low, high = inverse(other["ratio_high"]), inverse(other["ratio_low"])
    adjusted = other.get("verdict_adjusted")
    return {**other, "a": other["b"], "b": other["a"], "ratio": other["b"] / other["a"] if other["a"] > 0 else None,
            "ratio_low": low if high is not None else None, "ratio_high": high if low is not None else None,
            "verdict": mirror.get(other["verdict"], other["verdict"]),
            "verdict_adjusted": mirror.get(adjusted, adjusted)}


def merge_properties(pair: dict) -> Properties:
    """averaging(i,j) with its interval, the cheaper layer's removal and the paired ratio with its interval (what
    the case asserts on: analysis/merge_rule.py)."""
    comparison = pair.get("merge_vs_removal") or {}
    return [("i", pair["i"]), ("j", pair["j"]), ("averaging", pair.get("averaging")),
            *_ci_properties("averaging", pair.get("averaging_ci")),
            ("removed_layer", comparison.get("removed_layer")), ("removal_kl", comparison.get("b")),
            ("paired_verdict", comparison.get("verdict")), ("cost_ratio", comparison.get("ratio")),
            (ci_keys("cost_ratio")[0], comparison.get("ratio_low")),
            (ci_keys("cost_ratio")[1], comparison.get("ratio_high")), ("asserts_on", "interval")]


# The paired test's verdict on replacement (A) against interchange (B), as the junit property names it
# ("indistinguishable": what audit JSONs before the equivalence test said, for reading them).
PAIRED_VERDICTS = {"A cheaper": "replacement cheaper", "B cheaper": "interchange cheaper",
                   "equivalent": "equivalent", "undecided": "undecided", "indistinguishable": "indistinguishable"}


def heldout_properties(document: dict) -> Properties:
    """Which held-out text the costs were measured on."""
    heldout = document.get("heldout") or {}
    return [("heldout_source", heldout.get("source")), ("heldout_sha256", heldout.get("sha256")),
            ("heldout_n_sequences", heldout.get("n_sequences"))]


def has_prune_gap(methods: Sequence[str]) -> bool:
    """A prune_gap case exists at each budget when both protocols were pruned."""
    return set(PROTOCOLS) <= set(methods)


# --- numbers as suite properties (junit_family=xunit2) ------------------------------------------------------

# xunit2 allows <properties> on a <testsuite> only: there each case's numbers are `swapkl::CASE::KEY`.
SUITE_SEPARATOR = "::"


def suite_property(case: str, key: str) -> str:
    return f"{CLASSNAME}{SUITE_SEPARATOR}{case}{SUITE_SEPARATOR}{key}"


def parse_suite_property(name: str) -> Optional[tuple[str, str]]:
    """(case, key) of a suite property written by `suite_property`, else None."""
    parts = name.split(SUITE_SEPARATOR)
    if len(parts) != 3 or parts[0] != CLASSNAME or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def interval_keys(keys: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Every quantity with a low/high pair among `keys` (`x_ci_low`/`x_ci_high` or `x_low`/`x_high`), so an
    interval a later release adds is shown without this code knowing its name."""
    present, found = set(keys), {}
    for key in keys:
        for low_end, high_end in (("_ci_low", "_ci_high"), ("_low", "_high")):
            if key.endswith(low_end):
                base = key[: -len(low_end)]
                if base and base + high_end in present and base not in found:
                    found[base] = (key, base + high_end)
                break
    return found


def baseline_properties(name: str, baseline: dict, comparison: Any, tolerance: float) -> Properties:
    """A --swapkl-compare case: the saved baseline (`baselines.load`) and `comparison.compare`'s Spearman change."""
    return [("baseline", name), ("baseline_saved_at", baseline.get("saved_at")),
            ("baseline_commit", (baseline.get("commit") or {}).get("sha")),
            ("spearman_baseline", comparison.spearman_old), ("spearman", comparison.spearman_new),
            ("spearman_change", comparison.spearman_delta), ("regression_tolerance", tolerance)]


# --- the kinds: each one's grammar, properties, junit reading and rule ----------------------------------------
# A reader puts one case's properties into `report.junit.AuditReading` (`audit`), the model `swapkl report`
# shows; the audit sorts its lists once every case is read.


def _read_heldout(audit: Any, p: dict) -> None:
    if audit.heldout_source is None:
        audit.heldout_source = records.text(p.get("heldout_source"))
        audit.heldout_sha256 = records.text(p.get("heldout_sha256"))


def _read_audit(audit: Any, case: Any, name: CaseName) -> None:
    p = case.properties
    audit.base_ppl = records.number(p.get("base_ppl"))
    audit.noise_floor = records.number(p.get("noise_floor"))
    audit.noise_floor_measured_as = records.text(p.get("noise_floor_measured_as"))
    for key, value in p.items():
        layer = parse_removal_key(key)
        if layer is not None:
            audit.removals.append(records.Removal(layer=layer, kl=records.number(value)))
    _read_heldout(audit, p)


AUDIT_KIND = register_kind(CaseKind(
    AUDIT, AUDIT, summary="every number finite; base perplexity, noise floor, removal KLs",
    properties=audit_properties, read=_read_audit, rule="pytest_swapkl.analysis.judged:sanity_passes"), __name__)


def _read_pair(audit: Any, case: Any, name: CaseName) -> None:
    p, number = case.properties, records.number
    ci = {quantity: records.interval(p, *ci_keys(quantity)) for quantity in ci_names(p)}
    for key, from_name in (("i", name.i), ("j", name.j)):
        if key in p and p[key] is not None and records.integer(p[key]) != from_name:
            raise records.altered(f"case {case.name} has the property {key}={records.shown(p[key])}, "
                                  f"but its name says {from_name}")
    audit.pairs.append(records.Pair(
        i=name.i, j=name.j,
        replacement_ij=number(p.get("replacement_ij")), replacement_ji=number(p.get("replacement_ji")),
        interchange=number(p.get("interchange")), replacement=number(p.get("replacement")),
        ratio=number(p.get("ratio")), log_ratio=number(p.get("log_ratio")),
        rank_replacement=number(p.get("rank_replacement")), rank_interchange=number(p.get("rank_interchange")),
        rank_gap=number(p.get("rank_gap")), rank_tolerance=number(p.get("rank_tolerance")),
        verdict=str(p.get("verdict") or ""), ci=ci, outcome=case.outcome, message=case.message,
        rank_intervals={protocol: records.interval(p, f"rank_{protocol}_interval_low",
                                                   f"rank_{protocol}_interval_high")
                        for protocol in PROTOCOLS if f"rank_{protocol}_interval_low" in p}))


PAIR_KIND = register_kind(CaseKind(
    "pair", "pair[{i}-{j}]", {"i": LAYER, "j": LAYER}, "do replacement and interchange rank this pair alike?",
    pair_properties, _read_pair, "pytest_swapkl.analysis.agreement:pair_verdicts"), __name__)


def _short_text(value: Any) -> Optional[str]:
    """A recorded convention's text, if it is one short line (a junit file is input: nothing else is shown)."""
    return value if isinstance(value, str) and len(value) <= 200 and value.isprintable() else None


def _read_rank_correlation(audit: Any, case: Any, name: CaseName) -> None:
    """Also every budget's sets (`topk_keys`); a budget with a topk_jaccard case of its own keeps that one."""
    p = case.properties
    audit.spearman = records.number(p.get("spearman"))
    audit.kendall = records.number(p.get("kendall"))
    audit.spearman_ci = records.interval(p, *ci_keys("spearman"))
    audit.kendall_ci = records.interval(p, *ci_keys("kendall"))
    audit.n_pairs = records.integer(p.get("n_pairs"))
    audit.replacement_reduce = _short_text(p.get("replacement_reduce"))
    audit.pair_rule = _short_text(p.get("pair_rule"))
    for key in p:
        k = parse_topk_key(key)
        if k is not None:
            keys = topk_keys(k)
            audit.topk.append(records.TopK(
                k=k, jaccard=records.number(p[key]), replacement_layers=records.layer_list(
                    p.get(keys["replacement_layers"])),
                interchange_layers=records.layer_list(p.get(keys["interchange_layers"])),
                jaccard_ci=records.interval(p, *ci_keys(keys["jaccard"])), outcome=records.NOT_JUDGED))


RANK_CORRELATION_KIND = register_kind(CaseKind(
    RANK_CORRELATION, RANK_CORRELATION, summary="Spearman (and Kendall) of R and I over the pairs",
    properties=rank_properties, read=_read_rank_correlation,
    rule="pytest_swapkl.analysis.agreement:spearman_passes"), __name__)


def _read_topk(audit: Any, case: Any, name: CaseName) -> None:
    p = case.properties
    audit.topk.append(records.TopK(
        k=records.integer(p.get("k")) or 0, jaccard=records.number(p.get("jaccard")),
        replacement_layers=records.layer_list(p.get("replacement_layers")),
        interchange_layers=records.layer_list(p.get("interchange_layers")), outcome=case.outcome,
        jaccard_ci=records.interval(p, *ci_keys("jaccard")),
        stability={protocol: records.number(p[f"{protocol}_set_stability"]) for protocol in PROTOCOLS
                   if f"{protocol}_set_stability" in p},
        confidence_sets={protocol: records.layer_indices(p[f"{protocol}_confidence_set"]) for protocol in PROTOCOLS
                         if f"{protocol}_confidence_set" in p}))


TOPK_KIND = register_kind(CaseKind(
    "topk_jaccard", "topk_jaccard[k={k}]", {"k": COUNT}, "do the two protocols remove the same layers at budget k?",
    topk_properties, _read_topk, "pytest_swapkl.analysis.agreement:jaccard_passes"), __name__)


def _read_prune(audit: Any, case: Any, name: CaseName) -> None:
    p = case.properties
    audit.prune_costs.append(records.PruneCost(
        method=name.method, k=name.k, layers=records.layer_indices(p.get("layers")),
        heldout_kl=records.number(p.get("heldout_kl")), heldout_kl_ci=records.interval(p, *ci_keys("heldout_kl")),
        heldout_ppl=records.number(p.get("heldout_ppl")), heldout_ppl_ci=records.interval(p, *ci_keys("heldout_ppl")),
        heldout_base_ppl=records.number(p.get("heldout_base_ppl")), outcome=case.outcome))
    _read_heldout(audit, p)


PRUNE_KIND = register_kind(CaseKind(
    "prune", "prune[{method}-k{k}]", {"method": WORD, "k": COUNT},
    "that protocol's set, removed for real, within a perplexity budget", prune_properties, _read_prune,
    "pytest_swapkl.analysis.agreement:prune_passes"), __name__)


def _read_prune_gap(audit: Any, case: Any, name: CaseName) -> None:
    p = case.properties
    audit.prune_gaps.append(records.PruneGap(
        k=name.k, paired_verdict=records.text(p.get("paired_verdict")), cost_ratio=records.number(p.get("cost_ratio")),
        cost_ratio_ci=records.interval(p, *ci_keys("cost_ratio")), outcome=case.outcome,
        paired_verdict_adjusted=records.text(p.get("paired_verdict_adjusted")),
        multiplicity=records.text(p.get("multiplicity"))))
    _read_heldout(audit, p)


PRUNE_GAP_KIND = register_kind(CaseKind(
    "prune_gap", "prune_gap[k{k}]", {"k": COUNT}, "do the two protocols' choices cost about the same?",
    prune_gap_properties, _read_prune_gap, "pytest_swapkl.analysis.agreement:prune_gap_passes"), __name__)

# The two kinds below are kept as cases (`AuditReading.cases`) with nothing more to read.

PRUNE_BUDGET_KIND = register_kind(CaseKind(
    "prune_budget", "prune_budget[{budget}]", {"budget": Param(r"[A-Za-z0-9_.%+-]{1,120}")},
    "a guided search removes at least N layers within a held-out cost (--swapkl-prune-budget)",
    prune_budget_properties, rule="pytest_swapkl.analysis.budgets:PruneOutcome.require"), __name__)

BASELINE_KIND = register_kind(CaseKind(
    "baseline", "baseline[{baseline}]", {"baseline": Param(BASELINE_NAME.pattern)},
    "did Spearman(R, I) drop against a saved baseline? (--swapkl-compare)", baseline_properties,
    rule="pytest_swapkl.report.comparison:compare"), __name__)


def _read_merge(audit: Any, case: Any, name: CaseName) -> None:
    p, number = case.properties, records.number
    audit.merges.append(records.Merge(
        i=name.i, j=name.j, averaging=number(p.get("averaging")),
        averaging_ci=records.interval(p, *ci_keys("averaging")),
        removed_layer=records.integer(p.get("removed_layer")), removal_kl=number(p.get("removal_kl")),
        cost_ratio=number(p.get("cost_ratio")), cost_ratio_ci=records.interval(p, *ci_keys("cost_ratio")),
        paired_verdict=records.text(p.get("paired_verdict")), outcome=case.outcome))
    audit.averaging.append((name.i, name.j, audit.merges[-1].averaging, list(audit.merges[-1].averaging_ci)))


MERGE_KIND = register_kind(CaseKind(
    "merge", "merge[{i}-{j}]", {"i": LAYER, "j": LAYER},
    "does merging the pair (averaging KL) cost no more than removing the cheaper of its layers?",
    merge_properties, _read_merge, "pytest_swapkl.analysis.merge_rule:merge_passes"), __name__)
