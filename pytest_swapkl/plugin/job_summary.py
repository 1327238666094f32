"""`--swapkl-summary PATH`: the run as Markdown for `$GITHUB_STEP_SUMMARY` and merge-request comments.

The verdict sentence first (`verdict.sentence`), then the suite numbers with every interval the
audit carries, the most divergent pairs with their intervals, the removal sets at each budget (and
the measured removals when `--swapkl-prune-k` ran), and the failed cases. Every value goes through
`md_text`, so a model name or message cannot open HTML, a link or a table cell. Appends to the file
when it exists, as GitHub's step summary expects from several steps.
"""

from __future__ import annotations

from typing import Any

from .. import cases
from ..analysis.agreement import Tolerances, pair_verdicts
from ..console import interval
from ..limits import MAX_JSON_BYTES
from ..report import md_text, verdict
from ..report.case_text import value_text
from ..safe_files import append_text

DIVERGENT_SHOWN = 8


def _interval(value: Any, bounds: Any) -> str:
    if bounds is None or None in tuple(bounds) or not isinstance(value, (int, float)):
        return value_text(value)
    return interval(value, bounds[0], bounds[1], 4)


def outcomes_of(document: dict, tolerances: Tolerances, results: dict) -> verdict.Outcomes:
    """The verdict's inputs from the audit document and the cases' outcomes of this run."""
    summary, pairs = document["summary"], document["pairs"]
    bad = [verdict.disagreement(cases.pair_label(p["i"], p["j"]), p["rank_replacement"], p["rank_interchange"])
           for p, v in zip(pairs, pair_verdicts(document, tolerances)) if not v.passed]
    props = dict(cases.rank_properties(document, tolerances.min_spearman))
    interval = cases.interval_keys(list(props)).get("spearman")
    rank_outcome = results.get(cases.RANK_CORRELATION)
    out = verdict.Outcomes(
        n_pairs=len(pairs), disagreements=bad, spearman=summary["spearman"], min_spearman=tolerances.min_spearman,
        spearman_interval=(props[interval[0]], props[interval[1]]) if interval else None,
        spearman_passed=None if rank_outcome is None else rank_outcome == "passed")
    for entry in summary["topk"]:
        outcome = results.get(cases.topk_case(entry["k"]))
        out.topk.append((entry["k"], entry["jaccard"], entry["replacement_layers"], entry["interchange_layers"],
                         None if outcome is None else outcome == "passed"))
    out.cheaper_removal = _cheaper_removal(document)
    return out


def _cheaper_removal(document: dict) -> str:
    """The paired held-out verdict of the protocols' sets at the largest budget both named, when pruning ran."""
    budgets = [b for b in (document.get("pruning") or {}).get("budgets", []) if cases.protocol_comparison(b)]
    if not budgets:
        return ""
    budget = budgets[-1]
    comparison = cases.protocol_comparison(budget)
    return verdict.removal_comparison(budget["k"], comparison["a"], comparison["b"],
                                      cases.PAIRED_VERDICTS[comparison["verdict"]], comparison["ratio"],
                                      comparison["ratio_low"], comparison["ratio_high"],
                                      cases.PAIRED_VERDICTS.get(comparison.get("verdict_adjusted")),
                                      document["pruning"].get("multiplicity"))


def render(document: dict, tolerances: Tolerances, results: dict) -> str:
    model, data = document["model"], document["data"]
    counts = {name: list(results.values()).count(name) for name in ("passed", "failed", "error", "skipped")}
    outcomes = outcomes_of(document, tolerances, results)
    lines = [f"## swapkl audit: {md_text.plain(model['name'])}", "",
             f"**{md_text.plain(verdict.sentence(outcomes))}**", "", md_text.plain(verdict.how_sure()), "",
             md_text.plain(f"{counts['passed']} cases passed, {counts['failed']} failed, {counts['error']} errors, "
                           f"{counts['skipped']} skipped; {model['architecture']}, {model['n_layers']} layers, "
                           f"{model['dtype']} on {model['device']}; {data['n_tokens']} tokens of {data['source']}."),
             "", "### Suite numbers", ""]
    lines += md_text.table(("quantity", "value [95% interval]", "rule", "result"), _suite_rows(document, tolerances,
                                                                                               results))
    lines += ["", "### Most divergent pairs", "",
              md_text.plain("R: replacement distance, I: interchange distance, in nats of KL; rank 1 is the most "
                            "redundant pair."), ""]
    lines += md_text.table(("pair", "R [95% CI]", "I [95% CI]", "rank R", "rank I", "gap", "tolerance", "result"),
                           _divergent_rows(document, tolerances, results))
    lines += ["", "### Removal sets", ""] + [f"- {md_text.plain(line)}" for line in verdict.budget_lines(outcomes)]
    lines += _pruning_lines(document) + _probe_table_sections(document, results)
    failed = [name for name, outcome in results.items() if outcome in ("failed", "error")]
    if failed:
        lines += ["", "### Failed cases", ""] + [f"- {md_text.plain('swapkl::' + name)}" for name in failed]
    baseline = next((name for name in results if name.startswith("baseline[")), None)
    if baseline:
        lines += ["", "### Against the saved baseline", "", f"- {md_text.plain(baseline)}: {results[baseline]}"]
    return "\n".join(lines) + "\n"


def _probe_table_sections(document: dict, results: dict) -> list:
    """--swapkl-averaging's merge cases and --swapkl-heads' head x pair table, where the audit measured them."""
    from ..report.probe_grid import head_grid, merge_rows

    lines = []
    headers, rows = merge_rows(document["pairs"], results)
    if rows:
        lines += ["", "### Averaging against removal", "",
                  md_text.plain("averaging(i,j): both slots run the mean of the two layers' weights; a merge case "
                                "fails when removing the cheaper layer costs less (paired over sequences)."), ""]
        lines += md_text.table(headers, rows)
    if document.get("heads"):
        headers, rows = head_grid(document["heads"])
        lines += ["", "### Heads", "", md_text.plain("KL of head(i<-j, h), in nats: head h of layer i given layer "
                                                     "j's query, key, value and output slices."), ""]
        lines += md_text.table(headers, rows)
    return lines


def _suite_rows(document: dict, tolerances: Tolerances, results: dict) -> list:
    summary = document["summary"]
    props = dict(cases.rank_properties(document, tolerances.min_spearman))
    intervals = cases.interval_keys(list(props))

    def with_interval(key: str, value: Any) -> str:
        bounds = intervals.get(key)
        return _interval(value, (props[bounds[0]], props[bounds[1]]) if bounds else None)

    rank_result = results.get(cases.RANK_CORRELATION, "not run")
    rows = [("Spearman(R, I)", with_interval("spearman", summary["spearman"]), f">= {tolerances.min_spearman:g}",
             rank_result),
            ("Kendall(R, I)", with_interval("kendall", summary["kendall"]), "", "")]
    for entry in summary["topk"]:
        key = cases.topk_keys(entry["k"])["jaccard"]
        judged = entry["k"] in tolerances.jaccard_k
        rows.append((f"top-{entry['k']} Jaccard", with_interval(key, entry["jaccard"]),
                     f">= {tolerances.min_jaccard:g}" if judged else "not judged",
                     results.get(cases.topk_case(entry["k"]), "") if judged else ""))
    conventions = dict(cases.conventions(document))
    if "replacement_reduce" in conventions:
        rows.append(("R (replacement distance)", f"{conventions['replacement_reduce']} of both directions", "", ""))
    if "pair_rule" in conventions:
        rows.append(("removal sets read by", conventions["pair_rule"], "", ""))
    rows += [("base perplexity", value_text(document["base"]["ppl"]), "", results.get(cases.AUDIT, "")),
             ("noise floor (nats)", value_text(document.get("noise_floor")), "", "")]
    return rows


def _divergent_rows(document: dict, tolerances: Tolerances, results: dict) -> list:
    rows = []
    ranked = sorted(zip(document["pairs"], pair_verdicts(document, tolerances)),
                    key=lambda row: (-row[1].rank_gap, row[0]["i"], row[0]["j"]))
    for pair, v in ranked[:DIVERGENT_SHOWN]:
        name = cases.pair_case(pair["i"], pair["j"])
        rows.append((cases.pair_label(pair["i"], pair["j"]),
                     _interval(pair["replacement"], pair["ci"].get("replacement")),
                     _interval(pair["interchange"], pair["ci"].get("interchange")),
                     value_text(cases.whole(pair["rank_replacement"])),
                     value_text(cases.whole(pair["rank_interchange"])), str(v.rank_gap), str(v.allowed_gap),
                     results.get(name, "deselected")))
    return rows


def _pruning_lines(document: dict) -> list:
    pruning = document.get("pruning")
    if not pruning:
        return []
    rows = []
    for budget in pruning["budgets"]:
        for method in pruning["methods"]:
            low, high = (budget.get("heldout_kl_ci") or {}).get(method) or (None, None)
            rows.append((str(budget["k"]), method, cases.layer_set_label(budget["sets"].get(method)),
                         value_text(budget["heldout_kl"].get(method)),
                         "" if low is None else f"[{value_text(low)}, {value_text(high)}]",
                         value_text(budget["heldout_ppl"].get(method))))
    heldout = (document.get("heldout") or {}).get("source", "held-out text")
    return ["", md_text.plain(f"Removed for real, measured on {heldout} (base perplexity "
                              f"{value_text(pruning['heldout_base_ppl'])}):"), ""] + \
        md_text.table(("k", "method", "layers", "held-out KL", "95% CI", "perplexity"), rows)


def write(path: str, text: str) -> None:
    """Append (GitHub's step summary collects several steps' text in one file), atomically: a full disk leaves the
    file as it was. GitHub shows at most 1 MiB of a step summary; a file beyond 64 MiB is no summary."""
    append_text(path, text, max_bytes=MAX_JSON_BYTES)
