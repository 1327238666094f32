"""The terminal summary of the plugin's audit: model, data, most divergent pairs, suite statistics."""

from __future__ import annotations

from tabulate import tabulate

from ..analysis.agreement import Tolerances, pair_verdicts

DIVERGENT_SHOWN = 5


def summary_lines(record, tolerances: Tolerances) -> list[str]:
    document = record.document
    model, data, summary = document["model"], document["data"], document["summary"]
    source = "cache hit" if record.cache_hit else "computed"
    lines = [
        f"model  {model['name']} ({model['architecture']}, {model['n_layers']} layers, {model['dtype']}, "
        f"{model['device']})",
        f"data   {data['source']}: {data['n_sequences']} x {data['seq_len']} tokens, sha256 {data['sha256'][:12]}",
        f"audit  {len(document['pairs'])} pairs, base perplexity {_text(document['base']['ppl'])}, "
        f"{source} in {record.seconds:.1f} s",
    ]
    verdicts = sorted(zip(document["pairs"], pair_verdicts(document, tolerances)),
                      key=lambda row: -row[1].rank_gap)[:DIVERGENT_SHOWN]
    rows = [[f"L{p['i']:02d}-L{p['j']:02d}", _text(p['replacement'], ".4g"), _text(p['interchange'], ".4g"),
             f"{p['rank_replacement']:g}", f"{p['rank_interchange']:g}", f"{v.rank_gap:g}",
             "ok" if v.passed else "FAIL"] for p, v in verdicts]
    lines += ["", "most divergent pairs:"]
    lines += tabulate(rows, headers=["pair", "R", "I", "rank R", "rank I", "gap", ""]).splitlines()
    spearman, kendall = summary["spearman"], summary["kendall"]
    lines += ["", f"Spearman(R, I) = {_text(spearman)}   Kendall(R, I) = {_text(kendall)}   "
                  f"(minimum Spearman {tolerances.min_spearman})"]
    lines += [f"top-{t['k']}: replacement {t['replacement_layers']}  interchange {t['interchange_layers']}  "
              f"Jaccard {t['jaccard']:.2f}" for t in summary["topk"]]
    return lines


def _text(value, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)
