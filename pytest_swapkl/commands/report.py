"""`swapkl report`: an audit report (Markdown, one self-contained HTML page, JSON) from junit XML, audit JSON or
guided-removal JSON.

    swapkl report audit.xml [shard2.xml | audit.json | guided.json ...] [--markdown PATH] [--html PATH]
                  [--json PATH] [--baseline OLD.xml ...] [--fail-on-regression [--regression-tolerance X]]
                  [--rank-tolerance T --min-spearman S ...: how an audit JSON is judged, as the plugin's options]

Inputs are told apart by content (`report_inputs`): junit files and audit JSON documents are parts of one
audit; each guided-removal study gets its own section (a cost-ratio table and a figure per objective).

With no output path the Markdown goes to stdout. The HTML page embeds its figures as
base64 PNG (matplotlib, Agg backend) and loads nothing from the network; every value
from the junit file is escaped. Exit codes: 0, 1 when --fail-on-regression finds that
Spearman dropped by more than the tolerance, 2 for a one-line input error.
Output files are only the paths given (never a name taken from the junit content), checked
before anything is read, and each is written atomically: the whole new report, or the old file.
No torch; matplotlib is imported only for the HTML page.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import re
import sys
from dataclasses import asdict
from typing import Optional, Sequence

from ..analysis.reliability_text import RELIABILITY_FLOOR
from ..cases import RANK_CORRELATION, interval_keys, layer_label, layer_set_label
from ..console import interval, number, rank, signed
from ..errors import InputError
from ..options import TOLERANCE_OPTIONS, add_to_argparse
from ..report import guided, verdict
from ..report.comparison import DEFAULT_REGRESSION_TOLERANCE, Comparison, PairDelta, compare, comparison_lines
from ..report.figures import figures as draw
from ..report.figures import head_heatmap, removal_costs
from ..report.junit import AuditReading, Pair
from ..report.md_text import code_block, plain, table
from ..report.sensitivity import sensitivity_tables
from ..safe_files import check_outputs, write_text
from .frontdoor import CommandParser, run_main

# ---------------------------------------------------------------- shared pieces

def _fmt(value, digits: int = 4) -> str:
    """Floats with ``digits`` significant digits, decimals by magnitude (console.number); others as they are."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return number(value, digits) if math.isfinite(value) else str(value)
    return str(value)


def _signed_rank(value) -> str:
    if value is None:
        return "n/a"
    text = rank(value)
    return text if text.startswith("-") or text == "0" else "+" + text


def _rank(value) -> str:
    return rank(value)


def sorted_pairs(audit: AuditReading) -> list:
    """Pairs by divergence: largest rank gap first, then largest |ln(I/R)|."""
    def key(p: Pair):
        gap = p.rank_gap if p.rank_gap is not None else -1.0
        log_ratio = abs(p.log_ratio) if p.log_ratio is not None and math.isfinite(p.log_ratio) else -1.0
        return (-gap, -log_ratio, p.i, p.j)
    return sorted(audit.pairs, key=key)


def _suite_number(audit: AuditReading, key: str, value: Optional[float]) -> str:
    """A rank_correlation number with its interval when the case carries one (`KEY_ci_low`/`_high` or
    `KEY_low`/`_high`, whichever a release writes)."""
    case = audit.case(RANK_CORRELATION)
    props = case.properties if case is not None else {}
    bounds = interval_keys(list(props)).get(key)
    return _with_interval(value, (props[bounds[0]], props[bounds[1]]) if bounds else None)


def _reliability_rows(audit: AuditReading) -> list:
    """Split-half reliability of each protocol's ranking and the disattenuated Spearman, where the rank_correlation
    case carries them (audits since issue 34), flagged below intervals.RELIABILITY_FLOOR."""
    case = audit.case(RANK_CORRELATION)
    props = case.properties if case is not None else {}
    r, i = props.get("reliability_replacement"), props.get("reliability_interchange")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (r, i)):
        return []
    flag = f" (below {RELIABILITY_FLOOR:g}: rho attenuated)" if min(r, i) < RELIABILITY_FLOOR else ""
    rows = [("split-half reliability (R / I)", f"{r:.4f} / {i:.4f}{flag}")]
    corrected = props.get("spearman_disattenuated")
    if isinstance(corrected, (int, float)) and not isinstance(corrected, bool):
        rows.append(("Spearman, disattenuated", f"{corrected:.3f}"))
    return rows


def _summary_rows(audit: AuditReading) -> list:
    counts = audit.counts()
    rows = [("model", audit.model), ("data sha256", audit.data_sha256),
            ("dtype / device", f"{audit.dtype or 'n/a'} / {audit.device or 'n/a'}"),
            ("cases", f"{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
                      f"{counts['skipped']} skipped"),
            ("Spearman(R, I)", _suite_number(audit, "spearman", audit.spearman)),
            ("Kendall(R, I)", _suite_number(audit, "kendall", audit.kendall)),
            *_reliability_rows(audit),
            ("pairs", str(len(audit.pairs))), ("base perplexity", _fmt(audit.base_ppl)),
            ("noise floor", _fmt(audit.noise_floor) + (f" ({audit.noise_floor_measured_as})"
                                                       if audit.noise_floor_measured_as else ""))]
    if audit.heldout_source is not None:
        rows.append(("held-out text (costs)", f"{audit.heldout_source}, sha256 {(audit.heldout_sha256 or '')[:12]}"))
    if audit.replacement_reduce is not None:
        rows.append(("R (replacement distance)", f"{audit.replacement_reduce} of the two directions"))
    if audit.pair_rule is not None:
        rows.append(("removal sets read by", f"the {audit.pair_rule} rule"))
    for t in audit.topk:
        sets = (f"replacement {layer_set_label(t.replacement_layers)}, "
                f"interchange {layer_set_label(t.interchange_layers)}")
        stable = "".join(f", {protocol} set in {100 * share:.0f}% of resamples"
                         for protocol, share in t.stability.items() if share is not None)
        rows.append((f"top-{t.k} Jaccard", f"{_with_interval(t.jaccard, t.jaccard_ci)} ({sets}{stable})"))
        if t.confidence_sets:  # primary: the layers each protocol's top-k may hold, jointly 95% (tau-best)
            rows.append((f"top-{t.k} confidence sets", ", ".join(
                f"{protocol} {layer_set_label(layers)}" for protocol, layers in t.confidence_sets.items())))
    rows.append(("sources", ", ".join(audit.sources)))
    return rows


PAIR_HEADER = ("pair", "R [95% CI]", "I [95% CI]", "ln(I/R)", "rank R", "rank I", "gap", "tolerance", "result")


def _with_interval(value: Optional[float], bounds: Optional[tuple], digits: int = 3) -> str:
    """An estimate with its interval (`console.interval`: the ends always read apart)."""
    if value is not None and not isinstance(value, (int, float)):
        return _fmt(value)
    low, high = bounds if bounds is not None else (None, None)
    return interval(value, low, high, digits)


def _pair_row(p: Pair) -> tuple:
    return (p.label, _with_interval(p.replacement, p.ci.get("replacement")),
            _with_interval(p.interchange, p.ci.get("interchange")), signed(p.log_ratio),
            _rank(p.rank_replacement) + _rank_interval(p, "replacement"),
            _rank(p.rank_interchange) + _rank_interval(p, "interchange"), _rank(p.rank_gap), _rank(p.rank_tolerance),
            p.outcome)


def _rank_interval(p: Pair, protocol: str) -> str:
    """' (2-4)': the ranks a pair can take among the pairs the paired bootstrap cannot order."""
    low, high = p.rank_intervals.get(protocol, (None, None))
    if low is None or high is None:
        return ""
    return f" ({_rank(low)}-{_rank(high)})"


PRUNE_HEADER = ("k", "method", "removes", "held-out KL [95% CI]", "held-out ppl [95% CI]", "result")
PRUNE_GAP_HEADER = ("k", "paired verdict (held-out)", "adjusted (method)", "KL ratio R/I [95% CI]", "result")


def _cost_with_interval(value, bounds, digits: int = 4) -> str:
    """A cost or ratio with its interval, every number at the same precision (ratios of ~1 need it)."""
    return _with_interval(value, bounds, digits)


def _prune_row(c) -> tuple:
    return (str(c.k), c.method, layer_set_label(c.layers), _cost_with_interval(c.heldout_kl, c.heldout_kl_ci),
            _cost_with_interval(c.heldout_ppl, c.heldout_ppl_ci), c.outcome)


def _prune_gap_row(g) -> tuple:
    adjusted = "n/a" if g.paired_verdict_adjusted is None else f"{g.paired_verdict_adjusted} ({g.multiplicity})"
    return (str(g.k), g.paired_verdict or "n/a", adjusted, _cost_with_interval(g.cost_ratio, g.cost_ratio_ci, 3),
            g.outcome)


DELTA_HEADER = ("pair", "ΔR", "ΔI", "Δrank R", "Δrank I")


def _delta_row(d: PairDelta) -> tuple:
    return (d.label, signed(d.replacement), signed(d.interchange), _signed_rank(d.rank_replacement),
            _signed_rank(d.rank_interchange))


# ---------------------------------------------------------------- Markdown

_md, _md_code, _md_table = plain, code_block, table


def _title(audit: Optional[AuditReading], studies: Sequence) -> str:
    if audit is not None or not studies:
        return f"swapkl audit report: {(audit.model if audit else None) or 'unknown model'}"
    return f"swapkl guided removal: {', '.join(dict.fromkeys(study.model for study in studies))}"


def render_markdown(audit: Optional[AuditReading], comparison: Optional[Comparison] = None,
                    studies: Sequence = ()) -> str:
    """The audit (when there is one), then a section per guided-removal study."""
    lines = [] if audit is None else _audit_markdown(audit, comparison)
    if audit is None:
        lines += [f"# {_md(_title(audit, studies))}", ""]
    for study in studies:
        lines += _study_markdown(study)
    return "\n".join(lines)


def _study_markdown(study) -> list:
    lines = [f"## Guided removal: {_md(study.model)}, {study.n_layers} layers ({_md(os.path.basename(study.source))})",
             "",
             _md(f"{study.described}; from {study.source}."), "", _md(guided.MARKS), ""]
    for objective in study.objectives:
        lines += [f"### {_md(guided.objective_title(study, objective))}", ""]
        lines += _md_table(guided.cost_header(study), guided.cost_rows(study, objective)) + [""]
    return lines


def _merge_cells(merge) -> tuple:
    """The merge[Li-Lj] case beside its pair's averaging KL (analysis/merge_rule.py), or n/a where none ran."""
    if merge is None or merge.removed_layer is None:
        return ("n/a", "n/a", "n/a")
    low, high = merge.cost_ratio_ci
    interval = f" [{_fmt(low)}, {_fmt(high)}]" if low is not None else ""
    return (f"L{merge.removed_layer:02d}: {_fmt(merge.removal_kl)}", f"{_fmt(merge.cost_ratio)}{interval}",
            merge.outcome)


def _probe_table_markdown(audit: AuditReading) -> list:
    """The optional tables of an audit JSON: averaging per pair, and KL per head and pair (``--heads``)."""
    lines = []
    if audit.averaging:
        lines += ["## Averaging: both slots run the mean of the two layers' weights", ""]
        merges = {(m.i, m.j): m for m in audit.merges}
        lines += _md_table(("pair", "averaging KL", "95% CI", "merge case: removing instead", "KL ratio [95% CI]",
                            "outcome"),
                           [(f"{i}-{j}", _fmt(kl), "n/a" if not ci else f"[{_fmt(ci[0])}, {_fmt(ci[1])}]",
                             *_merge_cells(merges.get((i, j)))) for i, j, kl, ci in audit.averaging]) + [""]
    if audit.heads:
        pairs = sorted({(row["i"], row["j"]) for row in audit.heads})
        kl = {(row["i"], row["j"], row["head"]): row["kl"] for row in audit.heads}
        lines += ["## Heads: KL of head(i<-j, h), head h of layer i given layer j's slices", ""]
        lines += _md_table(("head", *(f"{i}<-{j}" for i, j in pairs)),
                           [(str(h), *(_fmt(kl.get((i, j, h))) for i, j in pairs))
                            for h in range(max(row["head"] for row in audit.heads) + 1)]) + [""]
    return lines


def _sensitivity_markdown(audit: AuditReading) -> list:
    """The audit JSON's sensitivity section (``swapkl audit --sensitivity``), a table per factor group."""
    lines = []
    for part in sensitivity_tables(audit.sensitivity):
        lines += [f"## {part.title}", ""] + _md_table(part.header, part.rows) + [""]
        lines += [_md(part.note), ""] if part.note else []
    return lines


def _audit_markdown(audit: AuditReading, comparison: Optional[Comparison]) -> list:
    lines = [f"# {_md(_title(audit, ()))}", "",
             f"**{_md(verdict.sentence(verdict.outcomes_of(audit)))}**", "", _md(verdict.how_sure()), ""]
    lines += _md_table(("", ""), _summary_rows(audit)) + [""]
    lines += ["## Pairs by divergence (largest rank gap first)", "",
              "R: replacement distance, I: interchange distance (nats of KL).", ""]
    lines += _md_table(PAIR_HEADER, [_pair_row(p) for p in sorted_pairs(audit)]) + [""]
    if audit.removals:
        lines += ["## Single-layer removal", ""]
        lines += _md_table(("layer", "KL"), [(layer_label(r.layer), _fmt(r.kl)) for r in audit.removals]) + [""]
    lines += _probe_table_markdown(audit)
    lines += _sensitivity_markdown(audit)
    if audit.prune_costs:
        lines += ["## Pruning: sets removed for real, costs on held-out text", ""]
        lines += _md_table(PRUNE_HEADER, [_prune_row(c) for c in audit.prune_costs]) + [""]
    if audit.prune_gaps:
        lines += _md_table(PRUNE_GAP_HEADER, [_prune_gap_row(g) for g in audit.prune_gaps]) + [""]
    failed = [c for c in audit.cases if c.outcome in ("failed", "error")]
    if failed:
        lines += ["## Failures", ""]
        for case in failed:
            lines += [f"### swapkl::{_md(case.name)}", ""] + _md_code(case.message) + [""]
    if comparison is not None:
        lines += ["## Against the baseline", ""] + [f"- {_md(line)}" for line in comparison_lines(comparison)] + [""]
        moved = comparison.most_changed()
        if moved:
            lines += ["Pairs that changed rank most:", ""]
            lines += _md_table(DELTA_HEADER, [_delta_row(d) for d in moved]) + [""]
        lines += ["All pairs:", ""] + _md_table(DELTA_HEADER, [_delta_row(d) for d in comparison.deltas]) + [""]
    return lines


# ---------------------------------------------------------------- verdict and figures

def figures(audit: AuditReading) -> list:
    """[Figure]: chosen by the pair set (`figures.figures`)."""
    heads = head_heatmap(audit.heads)
    return draw(audit.n_layers, audit.pairs, audit.removals, audit.topk) + ([heads] if heads else [])


def study_figures(study) -> list:
    """[Figure]: held-out cost against k per objective, the lines a reader can tell apart (`guided.figure_lines`)."""
    return [removal_costs(objective, guided.UNITS.get(objective, "cost"), study.budgets,
                          [(search, guide, guided.curve(study, objective, search, guide))
                           for search, guide in guided.figure_lines(study, objective)])
            for objective in study.objectives]


# ---------------------------------------------------------------- HTML

_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:1.5em auto;
padding:0 1em;color:#222;line-height:1.4}table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}.failed,.error{background:#fde2e2}.skipped{background:#f4f4d0}
.figs{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;max-width:760px}img{max-width:100%}
figcaption{font-size:.85em;color:#444}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}
.bad{color:#b00;font-weight:bold}.verdict{font-size:1.15em;font-weight:600;border-left:4px solid #36c;
padding:.4em .8em;background:#f3f6fc}.sure{color:#555;font-size:.9em}.scroll{overflow-x:auto}
.kv td{text-align:left;overflow-wrap:anywhere}.cells td{white-space:pre-line}p{overflow-wrap:anywhere}
.tok{white-space:nowrap}
@media (max-width:600px){body{margin:.5em auto;padding:0 .5em}table{font-size:.8em}td,th{padding:.2em .3em}
.figs{display:block}figure{overflow-x:auto;margin-bottom:1.2em}figure img{max-width:none;width:auto}}"""
# On a phone each figure keeps its drawn size (its ticks stay legible) and scrolls sideways in its own box; on a
# wide screen the figures sit side by side, scaled to fit.

# Flags, pair names and case names: a line may break around them, never inside (`_text`); longer ones may.
_TOKEN = re.compile(r"--[A-Za-z][\w.-]*(?:=[^\s,;)<&]+)?|\bL\d+-L\d+\b|swapkl::[^\s<&]+|\b\w+\[[^\]\s<&]*\]")
_LONGEST_TOKEN = 28


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _text(value) -> str:
    """Escaped text whose flags, pair names and case names do not break inside (the page on a 390 px screen)."""
    def kept(match: re.Match) -> str:
        token = match.group(0)
        return f'<span class="tok">{token}</span>' if len(token) <= _LONGEST_TOKEN else token

    return _TOKEN.sub(kept, _e(value))


def _html_table(header: Sequence[str], rows: Sequence[Sequence], row_class=None, table_class: str = "") -> str:
    opened = f'<table class="{_e(table_class)}">' if table_class else "<table>"
    parts = [opened + "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for index, row in enumerate(rows):
        cls = row_class(index) if row_class else ""
        attr = f' class="{_e(cls)}"' if cls else ""
        parts.append(f"<tr{attr}>" + "".join(f"<td>{_text(cell)}</td>" for cell in row) + "</tr>")
    return "".join(parts) + "</tbody></table>"


def _html_figures(figs: list) -> list:
    if not figs:
        return []
    return (["<div class=\"figs\">"]
            + [f'<figure><img alt="{_e(figure.caption)}" src="data:image/png;base64,{figure.png}">'
               f"<figcaption>{_e(figure.caption)}</figcaption></figure>" for figure in figs] + ["</div>"])


def render_html(audit: Optional[AuditReading], comparison: Optional[Comparison] = None, with_figures: bool = True,
                studies: Sequence = ()) -> str:
    """One page: the audit (when there is one), then a section per guided-removal study."""
    title = _title(audit, studies)
    body = [f"<h1>{_e(title)}</h1>"]
    if audit is not None:
        body += _audit_html(audit, comparison, with_figures)
    for study in studies:
        body += _study_html(study, with_figures)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _study_html(study, with_figures: bool) -> list:
    body = [f"<h2>Guided removal: {_e(study.model)}, {study.n_layers} layers ({_e(os.path.basename(study.source))})"
            "</h2>",
            f"<p>{_e(study.described)}; from {_e(study.source)}.</p>"]
    if with_figures:
        body += _html_figures(study_figures(study))
    body.append(f'<p class="sure">{_text(guided.MARKS)}</p>')
    for objective in study.objectives:
        body.append(f"<h3>{_e(guided.objective_title(study, objective))}</h3>")
        table = _html_table(guided.cost_header(study), guided.cost_rows(study, objective, "\n"),
                            table_class="cells")
        body.append(f'<div class="scroll">{table}</div>')  # a cell: its set, then its ratio below
    return body


def _audit_html(audit: AuditReading, comparison: Optional[Comparison], with_figures: bool) -> list:
    outcomes = verdict.outcomes_of(audit)
    body = [f'<p class="verdict">{_text(verdict.sentence(outcomes))}</p>',
            f'<p class="sure">{_text(verdict.how_sure())}</p>']
    if with_figures:
        body += _html_figures(figures(audit))
    summary = _summary_rows(audit)
    body.append("<h2>The audit in numbers</h2>")
    body.append('<table class="kv"><tbody>' + "".join(f"<tr><th>{_e(k)}</th><td>{_text(v)}</td></tr>"
                                                      for k, v in summary) + "</tbody></table>")
    pairs = sorted_pairs(audit)
    body.append("<h2>Pairs by divergence (largest rank gap first)</h2>"
                "<p>R: replacement distance, I: interchange distance (nats of KL).</p>")
    body.append('<div class="scroll">' + _html_table(PAIR_HEADER, [_pair_row(p) for p in pairs],
                                                      lambda k: pairs[k].outcome
                                                      if pairs[k].outcome != "passed" else "") + "</div>")
    if audit.removals:
        body.append("<h2>Single-layer removal</h2>")
        body.append(_html_table(("layer", "KL"), [(layer_label(r.layer), _fmt(r.kl)) for r in audit.removals]))
    for part in sensitivity_tables(audit.sensitivity):
        body.append(f"<h2>{_e(part.title)}</h2>")
        body.append('<div class="scroll">' + _html_table(part.header, part.rows) + "</div>")
        if part.note:
            body.append(f"<p>{_text(part.note)}</p>")
    if audit.prune_costs:
        body.append("<h2>Pruning: sets removed for real, costs on held-out text</h2>")
        body.append(_html_table(PRUNE_HEADER, [_prune_row(c) for c in audit.prune_costs]))
    if audit.prune_gaps:
        body.append(_html_table(PRUNE_GAP_HEADER, [_prune_gap_row(g) for g in audit.prune_gaps]))
    failed = [c for c in audit.cases if c.outcome in ("failed", "error")]
    if failed:
        body.append("<h2>Failures</h2>")
        for case in failed:
            body.append(f"<h3>swapkl::{_e(case.name)}</h3><pre>{_e(case.message)}</pre>")
    if comparison is not None:
        body.append("<h2>Against the baseline</h2><ul>")
        for line in comparison_lines(comparison):
            cls = ' class="bad"' if line.startswith("REGRESSION") else ""
            body.append(f"<li{cls}>{_text(line)}</li>")
        body.append("</ul>")
        moved = comparison.most_changed()
        if moved:
            body.append("<p>Pairs that changed rank most:</p>"
                        + _html_table(DELTA_HEADER, [_delta_row(d) for d in moved]))
        body.append("<details><summary>All pairs</summary>"
                    + _html_table(DELTA_HEADER, [_delta_row(d) for d in comparison.deltas]) + "</details>")
    return body


# ---------------------------------------------------------------- JSON

def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def render_json(audit: Optional[AuditReading], comparison: Optional[Comparison] = None, studies: Sequence = ()) -> str:
    document = {"schema": "swapkl-report/1", "audit": None if audit is None else asdict(audit),
                "counts": None if audit is None else audit.counts()}
    if studies:
        document["guided_removal"] = [asdict(study) for study in studies]
    if comparison is not None:
        document["baseline"] = dict(asdict(comparison), spearman_delta=comparison.spearman_delta,
                                    spearman_worse=comparison.spearman_worse, regression=comparison.regression)
    return json.dumps(_finite(document), indent=2, default=str)


# ---------------------------------------------------------------- CLI

def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text!r}")
    return value


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the `swapkl report` arguments on a (sub)parser; sets `run`."""
    parser.add_argument("junit", nargs="+", metavar="INPUT",
                        help="junit XML of one audit (pytest --junitxml) or its audit JSON (swapkl audit --json); "
                        "several are parts of one audit, merged; a guided-removal JSON (swapkl prune --json) adds "
                        "its own section. Told apart by content")
    parser.add_argument("--markdown", metavar="PATH", help="write the Markdown report here")
    parser.add_argument("--html", metavar="PATH", help="write a self-contained HTML page here")
    parser.add_argument("--json", metavar="PATH", help="write the parsed audit (and comparison) as JSON here")
    parser.add_argument("--baseline", nargs="+", metavar="OLD.xml", default=None,
                        help="junit XML or audit JSON of an earlier audit (shards allowed): per-pair deltas, "
                        "Spearman change")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit 1 when Spearman dropped by more than --regression-tolerance (needs --baseline)")
    parser.add_argument("--regression-tolerance", type=_tolerance, default=DEFAULT_REGRESSION_TOLERANCE,
                        metavar="X", help=f"allowed Spearman drop (default {DEFAULT_REGRESSION_TOLERANCE})")
    judging = parser.add_argument_group("how an audit JSON is judged (the plugin's --swapkl-* options of the same "
                                        "names; junit files carry their own outcomes)")
    add_to_argparse(judging, only=TOLERANCE_OPTIONS)
    parser.set_defaults(run=run_report)


def _check_outputs(args: argparse.Namespace) -> None:
    """Before reading anything: every output is a writable file name, no two outputs share a path, and no
    output would overwrite an input. One-line `InputError`s; nothing has been written yet."""
    inputs = [("a report input", path) for path in args.junit] + [("a baseline", path) for path in args.baseline or []]
    check_outputs([("--markdown", args.markdown), ("--html", args.html), ("--json", args.json)], inputs)


def _write(path: str, text: str) -> None:
    """Atomically: the file is the whole new report or, if anything fails, whatever it was before."""
    write_text(path, text)


def run_report(args: argparse.Namespace) -> int:
    """The body of `swapkl report`, given parsed arguments."""
    if args.fail_on_regression and not args.baseline:
        raise InputError("--fail-on-regression needs --baseline OLD.xml")
    _check_outputs(args)
    from ..analysis.agreement import tolerances_from  # numpy: only once a report is made
    from ..report.inputs import read_inputs

    tolerances = tolerances_from(args)
    given = read_inputs(args.junit, tolerances)
    audit, studies = given.audit, given.studies
    comparison = None
    if args.baseline:
        if audit is None:
            raise InputError("--baseline compares audits, but no junit file or audit JSON was given")
        old = read_inputs(args.baseline, tolerances).audit
        if old is None:
            raise InputError("--baseline: give the junit XML or audit JSON of the earlier audit, not a study")
        comparison = compare(audit, old, args.regression_tolerance)
        if args.fail_on_regression and comparison.regression is None:
            raise InputError("--fail-on-regression: Spearman is missing from the current audit or the baseline "
                             "(no rank_correlation case)")
    markdown = render_markdown(audit, comparison, studies)
    if args.markdown:
        _write(args.markdown, markdown + "\n")
    if args.html:
        _write(args.html, render_html(audit, comparison, studies=studies))
    if args.json:
        _write(args.json, render_json(audit, comparison, studies) + "\n")
    if not (args.markdown or args.html or args.json):
        print(markdown)
    else:
        for label, path in (("Markdown", args.markdown), ("HTML", args.html), ("JSON", args.json)):
            if path:
                print(f"{label} report written to {path}")
    if comparison is not None:
        print(f"swapkl: {comparison_lines(comparison)[2]}", file=sys.stderr)
    if args.fail_on_regression and comparison.regression:
        return 1
    return 0


def main_report(argv: Optional[Sequence[str]] = None) -> int:
    """`swapkl report ...` as a function: 0 ok, 1 regression (with --fail-on-regression), 2 input error."""
    def build_parser() -> CommandParser:
        parser = CommandParser(prog="swapkl report", description="Render an audit report from swapkl junit XML, audit "
                               "JSON or guided-removal JSON.")
        add_report_arguments(parser)
        return parser

    return run_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main_report())
