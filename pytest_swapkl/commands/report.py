"""`swapkl report`: an audit report (Markdown, one self-contained HTML page, JSON) from junit XML.

    swapkl report audit.xml [shard2.xml ...] [--markdown PATH] [--html PATH] [--json PATH]
                  [--baseline OLD.xml ...] [--fail-on-regression [--regression-tolerance X]]

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
import base64
import html
import io
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

from ..cases import layer_label, layer_set_label, pair_label
from ..console import number, rank
from ..errors import InputError
from ..safe_files import check_outputs, write_text
from .frontdoor import CommandParser, run_main
from .junit import JunitAudit, Pair, read_junit

DEFAULT_REGRESSION_TOLERANCE = 0.05


# ---------------------------------------------------------------- baseline comparison

@dataclass
class PairDelta:
    i: int
    j: int
    replacement: Optional[float]
    interchange: Optional[float]
    rank_replacement: Optional[float]
    rank_interchange: Optional[float]

    @property
    def label(self) -> str:
        return pair_label(self.i, self.j)

    @property
    def rank_change(self) -> float:
        """The larger absolute rank move of the two protocols (0 when unknown)."""
        moves = [abs(d) for d in (self.rank_replacement, self.rank_interchange) if d is not None]
        return max(moves) if moves else 0.0


@dataclass
class Comparison:
    baseline_sources: list
    spearman_old: Optional[float]
    spearman_new: Optional[float]
    kendall_old: Optional[float]
    kendall_new: Optional[float]
    tolerance: float
    deltas: list = field(default_factory=list)  # [PairDelta] for pairs in both audits
    only_new: list = field(default_factory=list)  # pair labels only in the current audit
    only_old: list = field(default_factory=list)

    @property
    def spearman_delta(self) -> Optional[float]:
        if self.spearman_old is None or self.spearman_new is None:
            return None
        return self.spearman_new - self.spearman_old

    @property
    def spearman_worse(self) -> Optional[bool]:
        delta = self.spearman_delta
        return None if delta is None else delta < 0

    @property
    def regression(self) -> Optional[bool]:
        """True when Spearman dropped by more than the tolerance; None when either audit lacks it."""
        delta = self.spearman_delta
        return None if delta is None else delta < -self.tolerance

    def most_changed(self, n: int = 5) -> list:
        return sorted((d for d in self.deltas if d.rank_change > 0), key=lambda d: (-d.rank_change, d.i, d.j))[:n]


def _sub(new: Optional[float], old: Optional[float]) -> Optional[float]:
    return None if new is None or old is None else new - old


def compare(current: JunitAudit, baseline: JunitAudit, tolerance: float = DEFAULT_REGRESSION_TOLERANCE) -> Comparison:
    old = {(p.i, p.j): p for p in baseline.pairs}
    new = {(p.i, p.j): p for p in current.pairs}
    comparison = Comparison(baseline_sources=baseline.sources, spearman_old=baseline.spearman,
                            spearman_new=current.spearman, kendall_old=baseline.kendall,
                            kendall_new=current.kendall, tolerance=tolerance)
    for key in sorted(new.keys() & old.keys()):
        a, b = new[key], old[key]
        comparison.deltas.append(PairDelta(
            i=a.i, j=a.j, replacement=_sub(a.replacement, b.replacement),
            interchange=_sub(a.interchange, b.interchange),
            rank_replacement=_sub(a.rank_replacement, b.rank_replacement),
            rank_interchange=_sub(a.rank_interchange, b.rank_interchange)))
    comparison.only_new = [new[k].label for k in sorted(new.keys() - old.keys())]
    comparison.only_old = [old[k].label for k in sorted(old.keys() - new.keys())]
    return comparison


# ---------------------------------------------------------------- shared pieces

def _fmt(value, digits: int = 4) -> str:
    """Floats with ``digits`` significant digits, decimals by magnitude (console.number); others as they are."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return number(value, digits) if math.isfinite(value) else str(value)
    return str(value)


def _signed(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    text = number(value, digits)
    return text if text.startswith("-") or text == "0" else "+" + text


def _signed_rank(value) -> str:
    if value is None:
        return "n/a"
    text = rank(value)
    return text if text.startswith("-") or text == "0" else "+" + text


def _rank(value) -> str:
    return rank(value)


def sorted_pairs(audit: JunitAudit) -> list:
    """Pairs by divergence: largest rank gap first, then largest |ln(I/R)|."""
    def key(p: Pair):
        gap = p.rank_gap if p.rank_gap is not None else -1.0
        log_ratio = abs(p.log_ratio) if p.log_ratio is not None and math.isfinite(p.log_ratio) else -1.0
        return (-gap, -log_ratio, p.i, p.j)
    return sorted(audit.pairs, key=key)


def _summary_rows(audit: JunitAudit) -> list:
    counts = audit.counts()
    rows = [("model", audit.model), ("data sha256", audit.data_sha256),
            ("dtype / device", f"{audit.dtype or 'n/a'} / {audit.device or 'n/a'}"),
            ("cases", f"{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
                      f"{counts['skipped']} skipped"),
            ("Spearman(R, I)", _fmt(audit.spearman)), ("Kendall(R, I)", _fmt(audit.kendall)),
            ("pairs", str(len(audit.pairs))), ("base perplexity", _fmt(audit.base_ppl)),
            ("noise floor", _fmt(audit.noise_floor) + (f" ({audit.noise_floor_measured_as})"
                                                       if audit.noise_floor_measured_as else ""))]
    if audit.heldout_source is not None:
        rows.append(("held-out text (costs)", f"{audit.heldout_source}, sha256 {(audit.heldout_sha256 or '')[:12]}"))
    for t in audit.topk:
        sets = (f"replacement {layer_set_label(t.replacement_layers)}, "
                f"interchange {layer_set_label(t.interchange_layers)}")
        rows.append((f"top-{t.k} Jaccard", f"{_fmt(t.jaccard, 3)} ({sets})"))
    rows.append(("sources", ", ".join(audit.sources)))
    return rows


PAIR_HEADER = ("pair", "R", "I", "ln(I/R)", "rank R", "rank I", "gap", "tolerance", "result")


def _pair_row(p: Pair) -> tuple:
    return (p.label, _fmt(p.replacement), _fmt(p.interchange), _signed(p.log_ratio), _rank(p.rank_replacement),
            _rank(p.rank_interchange), _rank(p.rank_gap), _rank(p.rank_tolerance), p.outcome)


PRUNE_HEADER = ("k", "method", "removes", "held-out KL [95% CI]", "held-out ppl [95% CI]", "result")
PRUNE_GAP_HEADER = ("k", "paired verdict (held-out)", "KL ratio R/I [95% CI]", "result")


def _with_interval(value, bounds, digits: int = 4) -> str:
    low, high = bounds
    shown = _fmt(value, digits)
    return shown if low is None or high is None else f"{shown} [{_fmt(low, digits)}, {_fmt(high, digits)}]"


def _prune_row(c) -> tuple:
    return (str(c.k), c.method, layer_set_label(c.layers), _with_interval(c.heldout_kl, c.heldout_kl_ci),
            _with_interval(c.heldout_ppl, c.heldout_ppl_ci), c.outcome)


def _prune_gap_row(g) -> tuple:
    return (str(g.k), g.paired_verdict or "n/a", _with_interval(g.cost_ratio, g.cost_ratio_ci, 3), g.outcome)


DELTA_HEADER = ("pair", "ΔR", "ΔI", "Δrank R", "Δrank I")


def _delta_row(d: PairDelta) -> tuple:
    return (d.label, _signed(d.replacement), _signed(d.interchange), _signed_rank(d.rank_replacement),
            _signed_rank(d.rank_interchange))


def _comparison_lines(c: Comparison) -> list:
    lines = [f"baseline: {', '.join(c.baseline_sources)}",
             f"Spearman {_fmt(c.spearman_old)} -> {_fmt(c.spearman_new)} ({_signed(c.spearman_delta)})"]
    if c.regression is None:
        lines.append("Spearman is missing from one of the audits: no regression verdict")
    elif c.regression:
        lines.append(f"REGRESSION: Spearman dropped by more than the tolerance {c.tolerance:g}")
    elif c.spearman_worse:
        lines.append(f"Spearman got worse, within the tolerance {c.tolerance:g}")
    else:
        lines.append("Spearman did not get worse")
    if c.only_new:
        lines.append(f"pairs only in this audit: {', '.join(c.only_new)}")
    if c.only_old:
        lines.append(f"pairs only in the baseline: {', '.join(c.only_old)}")
    return lines


# ---------------------------------------------------------------- Markdown

# Every ASCII punctuation mark that opens Markdown or HTML syntax inline (emphasis, code, links and images (their
# "(" needs the "]" before it), raw HTML, entities, table cells, strikethrough, headings, mentions, math); CommonMark
# lets a backslash make any of them a plain character.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&!~#@$])")
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


def _md(text) -> str:
    """A value on one line of Markdown, as plain text: junit values are anyone's, and reports are posted to merge
    requests, so no value may open a link, an image, HTML or a table cell."""
    return _MD_SPECIAL.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))


def _md_code(text: str) -> list:
    """A fenced block that no backtick run inside `text` can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


def _md_table(header: Sequence[str], rows: Sequence[Sequence]) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return lines


def render_markdown(audit: JunitAudit, comparison: Optional[Comparison] = None) -> str:
    lines = [f"# swapkl audit report: {_md(audit.model or 'unknown model')}", ""]
    lines += _md_table(("", ""), _summary_rows(audit)) + [""]
    lines += ["## Pairs by divergence (largest rank gap first)", "",
              "R: replacement distance, I: interchange distance (nats of KL).", ""]
    lines += _md_table(PAIR_HEADER, [_pair_row(p) for p in sorted_pairs(audit)]) + [""]
    if audit.removals:
        lines += ["## Single-layer removal", ""]
        lines += _md_table(("layer", "KL"), [(layer_label(r.layer), _fmt(r.kl)) for r in audit.removals]) + [""]
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
        lines += ["## Against the baseline", ""] + [f"- {_md(line)}" for line in _comparison_lines(comparison)] + [""]
        moved = comparison.most_changed()
        if moved:
            lines += ["Pairs that changed rank most:", ""]
            lines += _md_table(DELTA_HEADER, [_delta_row(d) for d in moved]) + [""]
        lines += ["All pairs:", ""] + _md_table(DELTA_HEADER, [_delta_row(d) for d in comparison.deltas]) + [""]
    return "\n".join(lines)


# ---------------------------------------------------------------- figures

def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _nan(value: Optional[float]) -> float:
    return float("nan") if value is None else value


def figures(audit: JunitAudit) -> list:
    """[(title, base64 PNG)]: heatmaps of R, I and ln(I/R), R and I along depth, removal KL, removal sets."""
    try:
        import matplotlib
    except ImportError:
        raise InputError("the HTML report needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out, n = [], audit.n_layers
    if audit.pairs and n:
        nan = float("nan")
        for title, value, cmap in (
                ("replacement distance R (nats)", lambda p: p.replacement, "viridis"),
                ("interchange distance I (nats)", lambda p: p.interchange, "viridis"),
                ("ln(I / R)", lambda p: p.log_ratio, "coolwarm")):
            grid = [[nan] * n for _ in range(n)]
            for p in audit.pairs:
                v = value(p)
                grid[p.i][p.j] = nan if v is None else v
            fig, ax = plt.subplots(figsize=(4.6, 3.8))
            kwargs = {}
            if cmap == "coolwarm":
                finite = [abs(v) for row in grid for v in row if math.isfinite(v)]
                bound = max(finite) if finite else 1.0
                kwargs = {"vmin": -bound, "vmax": bound}
            image = ax.imshow(grid, cmap=cmap, origin="upper", **kwargs)
            fig.colorbar(image, ax=ax)
            ax.set_xlabel("layer j")
            ax.set_ylabel("layer i")
            ax.set_title(title)
            out.append((title, _png(fig)))
            plt.close(fig)
        adjacent = [p for p in audit.pairs if p.j == p.i + 1]
        if adjacent:
            fig, ax = plt.subplots(figsize=(5.5, 3.2))
            xs = [p.i + 0.5 for p in adjacent]
            ax.plot(xs, [_nan(p.replacement) for p in adjacent], "o-", label="replacement R")
            ax.plot(xs, [_nan(p.interchange) for p in adjacent], "s-", label="interchange I")
            ax.set_xlabel("adjacent pair (between layers i and i+1)")
            ax.set_ylabel("KL (nats)")
            ax.set_title("R and I along depth")
            ax.legend()
            out.append(("R and I along depth (adjacent pairs)", _png(fig)))
            plt.close(fig)
    if audit.removals:
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        ax.bar([r.layer for r in audit.removals], [r.kl if r.kl is not None else 0.0 for r in audit.removals])
        ax.set_xlabel("removed layer")
        ax.set_ylabel("KL (nats)")
        ax.set_title("single-layer removal")
        out.append(("removal KL per layer", _png(fig)))
        plt.close(fig)
    budgets = [t for t in audit.topk if t.replacement_layers is not None and t.interchange_layers is not None]
    if budgets and n:
        out.append(("layers each protocol would remove at each budget k", _png(_removal_sets_figure(plt, budgets, n))))
    return out


def _removal_sets_figure(plt, budgets: list, n_layers: int):
    """One row per budget k; a marker where replacement (left half) or interchange (right half) removes a layer."""
    fig, ax = plt.subplots(figsize=(5.5, 0.6 + 0.45 * len(budgets)))
    for row, budget in enumerate(budgets):
        ax.scatter([layer - 0.15 for layer in budget.replacement_layers], [row] * len(budget.replacement_layers),
                   marker="o", color="tab:blue", label="replacement" if row == 0 else None)
        ax.scatter([layer + 0.15 for layer in budget.interchange_layers], [row] * len(budget.interchange_layers),
                   marker="s", color="tab:orange", label="interchange" if row == 0 else None)
    ax.set_yticks(range(len(budgets)), [f"k={b.k}" for b in budgets])
    ax.set_xticks(range(n_layers))
    ax.set_xlim(-0.5, n_layers - 0.5)
    ax.set_ylim(len(budgets) - 0.5, -0.5)
    ax.set_xlabel("layer")
    ax.set_title("layers removed at budget k")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- HTML

_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:1.5em auto;
padding:0 1em;color:#222;line-height:1.4}table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}.failed,.error{background:#fde2e2}.skipped{background:#f4f4d0}
.figs{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}img{max-width:100%}pre{background:#f6f6f6;
padding:.6em;overflow-x:auto;white-space:pre-wrap}.bad{color:#b00;font-weight:bold}"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _html_table(header: Sequence[str], rows: Sequence[Sequence], row_class=None) -> str:
    parts = ["<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for index, row in enumerate(rows):
        cls = row_class(index) if row_class else ""
        attr = f' class="{_e(cls)}"' if cls else ""
        parts.append(f"<tr{attr}>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>")
    return "".join(parts) + "</tbody></table>"


def render_html(audit: JunitAudit, comparison: Optional[Comparison] = None, with_figures: bool = True) -> str:
    title = f"swapkl audit report: {audit.model or 'unknown model'}"
    body = [f"<h1>{_e(title)}</h1>"]
    summary = _summary_rows(audit)
    body.append("<table><tbody>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in summary)
                + "</tbody></table>")
    if with_figures:
        figs = figures(audit)
        if figs:
            body.append("<h2>Figures</h2><div class=\"figs\">")
            for caption, data in figs:
                body.append(f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{_e(caption)}</figcaption></figure>")
            body.append("</div>")
    pairs = sorted_pairs(audit)
    body.append("<h2>Pairs by divergence (largest rank gap first)</h2>"
                "<p>R: replacement distance, I: interchange distance (nats of KL).</p>")
    body.append(_html_table(PAIR_HEADER, [_pair_row(p) for p in pairs], lambda k: pairs[k].outcome
                            if pairs[k].outcome != "passed" else ""))
    if audit.removals:
        body.append("<h2>Single-layer removal</h2>")
        body.append(_html_table(("layer", "KL"), [(layer_label(r.layer), _fmt(r.kl)) for r in audit.removals]))
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
        for line in _comparison_lines(comparison):
            cls = ' class="bad"' if line.startswith("REGRESSION") else ""
            body.append(f"<li{cls}>{_e(line)}</li>")
        body.append("</ul>")
        moved = comparison.most_changed()
        if moved:
            body.append("<p>Pairs that changed rank most:</p>"
                        + _html_table(DELTA_HEADER, [_delta_row(d) for d in moved]))
        body.append("<details><summary>All pairs</summary>"
                    + _html_table(DELTA_HEADER, [_delta_row(d) for d in comparison.deltas]) + "</details>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# ---------------------------------------------------------------- JSON

def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def render_json(audit: JunitAudit, comparison: Optional[Comparison] = None) -> str:
    document = {"schema": "swapkl-report/1", "audit": asdict(audit), "counts": audit.counts()}
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
    parser.add_argument("junit", nargs="+", metavar="JUNIT.xml",
                        help="junit XML of one audit (pytest --junitxml); several files are shards, merged")
    parser.add_argument("--markdown", metavar="PATH", help="write the Markdown report here")
    parser.add_argument("--html", metavar="PATH", help="write a self-contained HTML page here")
    parser.add_argument("--json", metavar="PATH", help="write the parsed audit (and comparison) as JSON here")
    parser.add_argument("--baseline", nargs="+", metavar="OLD.xml", default=None,
                        help="junit XML of an earlier audit (shards allowed): per-pair deltas, Spearman change")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit 1 when Spearman dropped by more than --regression-tolerance (needs --baseline)")
    parser.add_argument("--regression-tolerance", type=_tolerance, default=DEFAULT_REGRESSION_TOLERANCE,
                        metavar="X", help=f"allowed Spearman drop (default {DEFAULT_REGRESSION_TOLERANCE})")
    parser.set_defaults(run=run_report)


def _check_outputs(args: argparse.Namespace) -> None:
    """Before reading anything: every output is a writable file name, no two outputs share a path, and no
    output would overwrite an input. One-line `InputError`s; nothing has been written yet."""
    inputs = [("a junit input", path) for path in args.junit] + [("a baseline", path) for path in args.baseline or []]
    check_outputs([("--markdown", args.markdown), ("--html", args.html), ("--json", args.json)], inputs)


def _write(path: str, text: str) -> None:
    """Atomically: the file is the whole new report or, if anything fails, whatever it was before."""
    write_text(path, text)


def run_report(args: argparse.Namespace) -> int:
    """The body of `swapkl report`, given parsed arguments."""
    if args.fail_on_regression and not args.baseline:
        raise InputError("--fail-on-regression needs --baseline OLD.xml")
    _check_outputs(args)
    audit = read_junit(args.junit)
    comparison = None
    if args.baseline:
        comparison = compare(audit, read_junit(args.baseline), args.regression_tolerance)
        if args.fail_on_regression and comparison.regression is None:
            raise InputError("--fail-on-regression: Spearman is missing from the current audit or the baseline "
                             "(no rank_correlation case)")
    markdown = render_markdown(audit, comparison)
    if args.markdown:
        _write(args.markdown, markdown + "\n")
    if args.html:
        _write(args.html, render_html(audit, comparison))
    if args.json:
        _write(args.json, render_json(audit, comparison) + "\n")
    if not (args.markdown or args.html or args.json):
        print(markdown)
    else:
        for label, path in (("Markdown", args.markdown), ("HTML", args.html), ("JSON", args.json)):
            if path:
                print(f"{label} report written to {path}")
    if comparison is not None:
        print(f"swapkl: {_comparison_lines(comparison)[2]}", file=sys.stderr)
    if args.fail_on_regression and comparison.regression:
        return 1
    return 0


def main_report(argv: Optional[Sequence[str]] = None) -> int:
    """`swapkl report ...` as a function: 0 ok, 1 regression (with --fail-on-regression), 2 input error."""
    def build_parser() -> CommandParser:
        parser = CommandParser(prog="swapkl report", description="Render an audit report from swapkl junit XML.")
        add_report_arguments(parser)
        return parser

    return run_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main_report())
