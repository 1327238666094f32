"""The catalogue of generated test cases: their names and the properties each carries.

This is the contract between the plugin (which writes the cases into junit XML), adaptive
mode (which predicts their verdicts) and `swapkl report` (which reads them back). Every
name and property key is spelled here and nowhere else:

    audit                    every number finite; base perplexity, noise floor, removal KLs
    pair[L03-L04]            do replacement and interchange rank this pair alike?
    rank_correlation         Spearman (and Kendall) of R and I over the pairs
    topk_jaccard[k=2]        do the two protocols remove the same layers at budget k?
    prune[interchange-k2]    that protocol's set, removed for real, within a perplexity budget
    prune_gap[k2]            do the two protocols' choices cost about the same?
    prune_budget[interchange-beam-ppl-10%-4]
                             a guided search removes at least 4 layers within +10% held-out ppl (--swapkl-prune-budget)
    baseline[main]           did Spearman(R, I) drop against a saved baseline? (--swapkl-compare)

No torch, no numpy: the plugin loads this in every pytest run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

CLASSNAME = "swapkl"  # the junit classname of every generated case
AUDIT = "audit"
RANK_CORRELATION = "rank_correlation"

CONTEXT_KEYS = ("model", "data_sha256", "dtype", "device")  # which audit a case belongs to
PAIR_KEYS = ("i", "j", "replacement_ij", "replacement_ji", "interchange", "replacement", "ratio", "log_ratio",
             "rank_replacement", "rank_interchange")
PROTOCOLS = ("replacement", "interchange")

# At most 6 digits: a name read back from a junit file never becomes a number of thousands of digits.
_PAIR = re.compile(r"^pair\[L(\d{1,6})-L(\d{1,6})\]$")
_TOPK = re.compile(r"^topk_jaccard\[k=(\d{1,6})\]$")
_PRUNE = re.compile(r"^prune\[([a-z_]+)-k(\d{1,6})\]$")
_PRUNE_GAP = re.compile(r"^prune_gap\[k(\d{1,6})\]$")
_PRUNE_BUDGET = re.compile(r"^prune_budget\[([A-Za-z0-9_.%+-]{1,120})\]$")
BASELINE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
_BASELINE = re.compile(r"^baseline\[([A-Za-z0-9_-][A-Za-z0-9._-]{0,63})\]$")
_REMOVAL_KEY = re.compile(r"^removal_L(\d{1,6})_kl$")
_TOPK_KEY = re.compile(r"^top(\d{1,6})_jaccard$")

Properties = list[tuple[str, Any]]


def layer_label(layer: int) -> str:
    """How every table, case and report names a layer: L05."""
    return f"L{layer:02d}"


def pair_label(i: int, j: int) -> str:
    return f"{layer_label(i)}-{layer_label(j)}"


def layer_set_label(layers: Optional[Sequence[int]]) -> str:
    """A set of layers: {L03, L05} ({} for none, n/a when there is no set)."""
    if layers is None:
        return "n/a"
    return "{" + ", ".join(layer_label(layer) for layer in sorted(layers)) + "}"


def budgets_within(budgets: Sequence[int], n_layers: int) -> list[int]:
    """The budgets k a model of `n_layers` has top-k sets for (one layer must stay): a case for another k could only
    pass vacuously, and the report refuses it as a budget outside the layers."""
    return [k for k in budgets if 1 <= k <= n_layers - 1]


# --- names ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseName:
    """A generated case's name, parsed: `kind` and the parameters that kind has."""

    kind: str  # audit | pair | rank_correlation | topk_jaccard | prune | prune_gap | prune_budget | baseline
    i: Optional[int] = None
    j: Optional[int] = None
    k: Optional[int] = None
    method: Optional[str] = None
    baseline: Optional[str] = None
    budget: Optional[str] = None  # a prune budget's label: interchange-beam-ppl-10%-4

    def __str__(self) -> str:
        if self.kind == "pair":
            return f"pair[{pair_label(self.i, self.j)}]"
        if self.kind == "topk_jaccard":
            return f"topk_jaccard[k={self.k}]"
        if self.kind == "prune":
            return f"prune[{self.method}-k{self.k}]"
        if self.kind == "prune_gap":
            return f"prune_gap[k{self.k}]"
        if self.kind == "prune_budget":
            return f"prune_budget[{self.budget}]"
        if self.kind == "baseline":
            return f"baseline[{self.baseline}]"
        return self.kind


def pair_case(i: int, j: int) -> str:
    return str(CaseName("pair", i=i, j=j))


def topk_case(k: int) -> str:
    return str(CaseName("topk_jaccard", k=k))


def prune_case(method: str, k: int) -> str:
    return str(CaseName("prune", k=k, method=method))


def prune_gap_case(k: int) -> str:
    return str(CaseName("prune_gap", k=k))


def prune_budget_case(label: str) -> str:
    """`label` as `analysis.budgets.BudgetSpec.label` writes it."""
    return str(CaseName("prune_budget", budget=label))


def baseline_case(name: str) -> str:
    return str(CaseName("baseline", baseline=name))


def planned_cases(pairs: Sequence[tuple[int, int]], jaccard_k: Sequence[int], prune_budgets: Sequence[int] = (),
                  prune_methods: Sequence[str] = (), baseline: Optional[str] = None,
                  budget_labels: Sequence[str] = ()) -> list[str]:
    """The names of the cases an audit with these settings generates, in the order the plugin adds them:
    what `--collect-only` lists without measuring; ``budget_labels`` are the --swapkl-prune-budget labels."""
    names = [AUDIT, *(pair_case(i, j) for i, j in pairs), RANK_CORRELATION, *(topk_case(k) for k in jaccard_k)]
    for k in prune_budgets:
        names += [prune_case(method, k) for method in prune_methods]
        if has_prune_gap(prune_methods):
            names.append(prune_gap_case(k))
    names += [prune_budget_case(label) for label in budget_labels]
    if baseline:
        names.append(baseline_case(baseline))
    return names


def parse_case(name: str) -> Optional[CaseName]:
    """The parsed name, or None for a name this catalogue does not define."""
    if name in (AUDIT, RANK_CORRELATION):
        return CaseName(name)
    if match := _PAIR.match(name):
        return CaseName("pair", i=int(match.group(1)), j=int(match.group(2)))
    if match := _TOPK.match(name):
        return CaseName("topk_jaccard", k=int(match.group(1)))
    if match := _PRUNE.match(name):
        return CaseName("prune", k=int(match.group(2)), method=match.group(1))
    if match := _PRUNE_GAP.match(name):
        return CaseName("prune_gap", k=int(match.group(1)))
    if match := _PRUNE_BUDGET.match(name):
        return CaseName("prune_budget", budget=match.group(1))
    if match := _BASELINE.match(name):
        return CaseName("baseline", baseline=match.group(1))
    return None


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
        ("min_spearman", min_spearman), ("asserts_on", "estimate")]
    properties += _ci_properties("spearman", summary.get("spearman_ci")) + _ci_properties("kendall",
                                                                                           summary.get("kendall_ci"))
    for entry in summary.get("ratio_by_distance", []):
        properties += [(f"median_ratio_d{entry['distance']}", entry["median_ratio"]),
                       *_ci_properties(f"median_ratio_d{entry['distance']}", entry["ci"])]
    for entry in summary["topk"]:  # every budget, so a report shows them whatever --swapkl-jaccard-k was
        keys = topk_keys(entry["k"])
        properties += [(keys["replacement_layers"], entry["replacement_layers"]),
                       (keys["interchange_layers"], entry["interchange_layers"]), (keys["jaccard"], entry["jaccard"])]
    return properties


def topk_properties(document: dict, k: int, min_jaccard: float) -> Properties:
    entry = next((t for t in document["summary"]["topk"] if t["k"] == k), {})
    properties = [("k", k), ("jaccard", entry.get("jaccard")), ("replacement_layers", entry.get("replacement_layers")),
                  ("interchange_layers", entry.get("interchange_layers")), ("min_jaccard", min_jaccard),
                  ("asserts_on", "estimate"), *_ci_properties("jaccard", entry.get("jaccard_ci"))]
    for protocol, share in entry.get("stability", {}).items():  # share of resamples reproducing the set
        properties.append((f"{protocol}_set_stability", share))
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
    return {"a": other["b"], "b": other["a"], "ratio": other["b"] / other["a"] if other["a"] > 0 else None,
            "ratio_low": low if high is not None else None, "ratio_high": high if low is not None else None,
            "verdict": mirror.get(other["verdict"], other["verdict"])}


# The paired test's verdict on replacement (A) against interchange (B), as the junit property names it.
PAIRED_VERDICTS = {"A cheaper": "replacement cheaper", "B cheaper": "interchange cheaper",
                   "indistinguishable": "indistinguishable"}


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
