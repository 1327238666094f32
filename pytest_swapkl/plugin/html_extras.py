"""With pytest-html active: each case's numbers as a text extra, and the audit's figures on its two
suite-level cases (`figures`): the pair figures (heatmaps, or R and I along depth) and the removal sets
at each budget on `rank_correlation`, the single-layer removal KL on `audit`.

Extras travel on the report, so under pytest-xdist the worker that ran the case draws them and the
controller's pytest-html writes them. matplotlib is imported only when a figure is drawn, once per run.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Optional

from .. import cases

FIGURES_OF = {cases.AUDIT: ("removal",), cases.RANK_CORRELATION: ("pairs", "ratio", "sets")}


def active(config: Any) -> bool:
    """pytest-html writes a page in this run (installed is not enough: its plugin loads in every run). Under xdist
    the workers see the option too, and they draw what the controller's pytest-html writes."""
    if not config.pluginmanager.hasplugin("html"):
        return False
    try:
        return bool(config.getoption("htmlpath"))
    except ValueError:
        return False


def figure_keys(name: str) -> tuple[str, ...]:
    return FIGURES_OF.get(name, ())


def drawer(document: dict) -> Callable[[], list]:
    """The audit's figures, drawn on the first call and kept."""
    drawn: Optional[list] = None

    def figures() -> list:
        nonlocal drawn
        if drawn is None:
            from ..report.figures import figures as draw

            pairs = [SimpleNamespace(i=p["i"], j=p["j"], replacement=p["replacement"], interchange=p["interchange"],
                                     log_ratio=p.get("log_ratio"), ci={k: tuple(v) for k, v in p["ci"].items()})
                     for p in document["pairs"]]
            removals = [SimpleNamespace(layer=r["layer"], kl=r["kl"]) for r in document["removal"]]
            budgets = [SimpleNamespace(**t) for t in document["summary"]["topk"]]
            drawn = draw(document["model"]["n_layers"], pairs, removals, budgets)
        return drawn

    return figures


def attach(item: Any, report: Any) -> None:
    """The call report's extras: the numbers block, and the figures this case shows."""
    from pytest_html import extras

    found = list(getattr(report, "extras", []))
    if item.swapkl_text:
        found.append(extras.text(item.swapkl_text, name="swapkl numbers"))
    keys = figure_keys(item.name)
    if keys and item.swapkl_figures is not None:
        found += [extras.png(figure.png, name=figure.caption) for figure in item.swapkl_figures() if figure.key in keys]
    report.extras = found
