"""The terminal summary of the plugin's audit: model, data, time, the primary pruning statistics (held-out cost ratio
of the two protocols' sets, top-k confidence sets), failing pairs and how many a pruning would touch, most divergent
pairs, suite statistics."""

from __future__ import annotations

from typing import Optional

from tabulate import tabulate

from ..analysis.agreement import Tolerances, failing_pairs_touching, pair_verdicts
from ..analysis.dtype_offset_text import offset_line
from ..analysis.reliability_text import reliability_text
from ..cases import layer_set_label, pair_label, protocol_comparison
from ..console import number, rank
from .terminal import audit_time

DIVERGENT_SHOWN = 5


def summary_lines(record, tolerances: Tolerances) -> list[str]:
    document = record.document
    model, data, summary = document["model"], document["data"], document["summary"]
    lines = [
        f"model  {model['name']} ({model['architecture']}, {model['n_layers']} layers, {model['dtype']}, "
        f"{model['device']})",
        f"data   {data['source']}: {data['n_sequences']} x {data['seq_len']} tokens, sha256 {data['sha256'][:12]}",
        f"audit  {len(document['pairs'])} pairs, base perplexity {_text(document['base']['ppl'])}",
        f"time   {audit_time(record)}, before the tests (pytest's time below leaves it out)",
    ]
    offset = offset_line(document.get("dtype_offset"))  # a reduced dtype's offset and how it moved the intervals
    lines += [f"dtype  {offset}"] if offset else []
    lines += ["", *primary_lines(document)]
    lines += ["", *divergent_pairs(document, tolerances)]
    spearman, kendall = summary["spearman"], summary["kendall"]
    lines += ["", f"Spearman(R, I) = {_text(spearman)}   Kendall(R, I) = {_text(kendall)}   "
                  f"(minimum Spearman {tolerances.min_spearman}){reliability_text(summary)}"]
    if summary["topk"] and summary["topk"][0].get("rule"):
        lines.append(f"removal sets by the {summary['topk'][0]['rule']} rule; R = "
                     f"{document['settings'].get('replacement_reduce', 'mean')} of the two replacement directions")
    lines += [f"top-{t['k']}: replacement {layer_set_label(t['replacement_layers'])}  "
              f"interchange {layer_set_label(t['interchange_layers'])}  Jaccard {t['jaccard']:.2f}"
              for t in summary["topk"]]
    return lines + probe_table_lines(document)


def probe_table_lines(document: dict, results: Optional[dict] = None) -> list[str]:
    """--swapkl-averaging's merge table and --swapkl-heads' head x pair table, where the audit measured them."""
    from ..report.probe_grid import head_grid, merge_rows

    lines = []
    headers, rows = merge_rows(document["pairs"], results or {})
    if rows:
        lines += ["", "averaging (both slots run the mean of the pair) against removing the cheaper layer:",
                  *tabulate(rows if results else [row[:-1] for row in rows], headers=headers if results else
                            headers[:-1], disable_numparse=True).splitlines()]
    if document.get("heads"):
        headers, rows = head_grid(document["heads"])
        lines += ["", "KL of head(i<-j, h): head h of layer i given layer j's query, key, value and output slices:",
                  *tabulate(rows, headers=headers, disable_numparse=True).splitlines()]
    return lines


def primary_lines(document: dict) -> list[str]:
    """What pruning reads, first: the held-out cost ratio R/I of the two protocols' removal sets with its paired
    interval (measured with --swapkl-prune-k), and each protocol's top-k confidence set (jointly 95%)."""
    lines = ["primary: held-out cost of the replacement- vs interchange-guided removal sets"]
    budgets = (document.get("pruning") or {}).get("budgets") or []
    measured = [(b["k"], protocol_comparison(b)) for b in budgets]
    measured = [(k, c) for k, c in measured if c is not None]
    if not measured:
        lines.append("  not measured: run with --swapkl-prune-k=K to remove both sets for real on held-out text")
    for k, c in measured:
        interval = "" if c["ratio_low"] is None or c["ratio_high"] is None else (
            f" [95% CI {c['ratio_low']:.3g}, {c['ratio_high']:.3g}]")
        ratio = "n/a" if c["ratio"] is None else f"{c['ratio']:.3g}"
        lines.append(f"  k={k}: ratio R/I {ratio}{interval} (held-out KL {c['a']:.4g} vs {c['b']:.4g})")
    sets = [t for t in document["summary"]["topk"] if t.get("confidence_set")]
    if sets:
        lines.append("primary: top-k confidence sets (layers that may be among the k best, jointly 95%)")
        lines += [f"  k={t['k']}: replacement {layer_set_label(t['confidence_set'].get('replacement'))}  "
                  f"interchange {layer_set_label(t['confidence_set'].get('interchange'))}" for t in sets]
    return lines


def divergent_pairs(document: dict, tolerances: Tolerances) -> list[str]:
    """How many pair cases fail and how many of those a pruning at the audit's budgets would touch; then the pairs
    whose ranks under R and I differ most (a gap of 0 is agreement, not divergence)."""
    all_verdicts = pair_verdicts(document, tolerances)
    failing, touching = failing_pairs_touching(document, all_verdicts)
    touched = ", ".join(f"{n} at k<={k}" for k, n in touching.items())
    head = [f"failing pairs: {failing} of {len(all_verdicts)} (simultaneous 95% rank intervals apart by more than the "
            f"tolerance)" + (f"; touching a top-k removal set: {touched}" if failing and touched else "")]
    verdicts = [(p, v) for p, v in zip(document["pairs"], all_verdicts) if v.rank_gap > 0]
    if not verdicts:
        return head + ["most divergent pairs: none (every pair's rank intervals under R and I meet)"]
    verdicts = sorted(verdicts, key=lambda row: -row[1].rank_gap)[:DIVERGENT_SHOWN]
    rows = [[pair_label(p["i"], p["j"]), number(p["replacement"], 4), number(p["interchange"], 4),
             rank(p["rank_replacement"]), rank(p["rank_interchange"]), rank(v.rank_gap), rank(v.allowed_gap),
             "ok" if v.passed else "FAIL"] for p, v in verdicts]
    table = tabulate(rows, headers=["pair", "R", "I", "rank R", "rank I", "gap", "tolerance", "verdict"],
                     disable_numparse=True, colalign=("left",) + ("decimal",) * 6 + ("left",))
    return head + ["most divergent pairs:", *table.splitlines()]


def _text(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
