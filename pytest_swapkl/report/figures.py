"""The audit's figures as PNG (matplotlib, Agg), for the HTML report and pytest-html's extras.

Chosen by the pair set, drawn so that small distances show:

    adjacent pairs      R and I along depth with their 95% intervals (a heatmap would be empty but
                        for its first off-diagonal)
    a few pairs         R and I per pair with intervals
    many pairs          heatmaps of R and I on one logarithmic colour scale (layer 0's large distances
                        would otherwise flatten every other cell into one colour), and ln(I/R)
    removals            the KL of removing each layer, on a logarithmic axis, and the layers each
                        protocol would remove at each budget k

Every figure comes with a caption and carries no title of its own (the caption says it once).
Inputs are duck-typed, so a junit file read back and an audit document both draw: pairs with
i, j, replacement, interchange, log_ratio and ci {name: (low, high)}; removals with layer, kl;
budgets with k, replacement_layers, interchange_layers. matplotlib is imported on the first call.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..errors import InputError


@dataclass(frozen=True)
class Figure:
    key: str  # pairs | ratio | removal | sets: which part of the audit it shows
    caption: str
    png: str  # base64


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise InputError("the figures need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(plt, figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _finite(value: Optional[float]) -> bool:
    return value is not None and math.isfinite(value)


def pair_set_kind(pairs: Sequence[Any], n_layers: int) -> str:
    """adjacent | few | many: which drawing the pairs call for."""
    if pairs and all(p.j == p.i + 1 for p in pairs):
        return "adjacent"
    return "few" if len(pairs) < max(2 * n_layers, 8) else "many"


def figures(n_layers: int, pairs: Sequence[Any], removals: Sequence[Any], budgets: Sequence[Any]) -> list[Figure]:
    plt = _pyplot()
    out: list[Figure] = []
    if pairs and n_layers:
        kind = pair_set_kind(pairs, n_layers)
        if kind == "many":
            out.append(Figure("pairs", "Replacement distance R (left) and interchange distance I (right) of every "
                              "pair, nats of KL, on one logarithmic colour scale; blank cells were not measured.",
                              _png(plt, _heatmaps(plt, pairs, n_layers))))
            out.append(Figure("ratio", "ln(I / R) per pair: blue where interchange finds the pair more redundant "
                              "than replacement does, red where less.", _png(plt, _ratio_map(plt, pairs, n_layers))))
        else:
            what = "along depth (adjacent pairs)" if kind == "adjacent" else "per measured pair"
            out.append(Figure("pairs", f"R and I {what}, nats of KL on a logarithmic axis, with 95% bootstrap "
                              "intervals; lower means the pair is more redundant.",
                              _png(plt, _pair_lines(plt, pairs, kind))))
    measured = [r for r in removals if _finite(r.kl)]
    if measured:
        out.append(Figure("removal", "KL of removing each single layer, nats on a logarithmic axis.",
                          _png(plt, _removal_bars(plt, measured))))
    chosen = [b for b in budgets if b.replacement_layers is not None and b.interchange_layers is not None]
    if chosen and n_layers:
        out.append(Figure("sets", "Layers each protocol would remove at each budget k: circles replacement, "
                          "squares interchange.", _png(plt, _removal_sets(plt, chosen, n_layers))))
    return out


def head_heatmap(heads: Sequence[dict]) -> Optional[Figure]:
    """The head x pair table of ``--heads`` (rows {i, j, head, kl}) as a heatmap, or None without rows."""
    rows = [row for row in heads if _finite(row.get("kl"))]
    if not rows:
        return None
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    pairs = sorted({(row["i"], row["j"]) for row in rows})
    n_heads = max(row["head"] for row in rows) + 1
    grid = [[float("nan")] * len(pairs) for _ in range(n_heads)]
    for row in rows:
        if row["kl"] > 0:  # 0 has no place on a log scale
            grid[row["head"]][pairs.index((row["i"], row["j"]))] = row["kl"]
    positive = [v for line in grid for v in line if math.isfinite(v)]
    low, high = (min(positive), max(positive)) if positive else (1e-6, 1.0)
    figure, ax = plt.subplots(figsize=(1.6 + 0.7 * len(pairs), 1.2 + 0.25 * n_heads), constrained_layout=True)
    image = ax.imshow(grid, cmap="viridis", norm=LogNorm(vmin=low, vmax=max(high, low * 10)), aspect="auto")
    ax.set_xticks(range(len(pairs)), [f"{i}<-{j}" for i, j in pairs])
    ax.set_xlabel("layer i <- layer j")
    ax.set_ylabel("head h of layer i")
    figure.colorbar(image, ax=ax, label="KL (nats)")
    return Figure("heads", "KL of head(i<-j, h): attention head h of layer i given layer j's query, key, value and "
                  "output slices, nats on a logarithmic colour scale.", _png(plt, figure))


def _grid(pairs: Sequence[Any], n: int, value) -> list:
    grid = [[float("nan")] * n for _ in range(n)]
    for p in pairs:
        v = value(p)
        if _finite(v):
            grid[p.i][p.j] = v
    return grid


def _heatmaps(plt, pairs: Sequence[Any], n: int):
    from matplotlib.colors import LogNorm

    grids = [_grid(pairs, n, lambda p: p.replacement), _grid(pairs, n, lambda p: p.interchange)]
    positive = [v for grid in grids for row in grid for v in row if math.isfinite(v) and v > 0]
    low, high = (min(positive), max(positive)) if positive else (1e-6, 1.0)
    norm = LogNorm(vmin=low, vmax=max(high, low * 10))
    figure, axes = plt.subplots(1, 2, figsize=(8.4, 3.8), constrained_layout=True)
    for ax, grid, label in zip(axes, grids, ("replacement R", "interchange I")):
        masked = [[v if v > 0 else float("nan") for v in row] for row in grid]  # 0 has no place on a log scale
        image = ax.imshow(masked, cmap="viridis", norm=norm, origin="upper")
        ax.set_xlabel("layer j")
        ax.set_ylabel("layer i")
        ax.text(0.02, 0.02, label, transform=ax.transAxes, fontsize=9)
    figure.colorbar(image, ax=list(axes), label="KL (nats)")
    return figure


def _ratio_map(plt, pairs: Sequence[Any], n: int):
    grid = _grid(pairs, n, lambda p: p.log_ratio)
    finite = [abs(v) for row in grid for v in row if math.isfinite(v)]
    bound = max(finite) if finite else 1.0
    figure, ax = plt.subplots(figsize=(4.6, 3.8), constrained_layout=True)
    image = ax.imshow(grid, cmap="coolwarm", vmin=-bound, vmax=bound, origin="upper")
    figure.colorbar(image, ax=ax, label="ln(I / R)")
    ax.set_xlabel("layer j")
    ax.set_ylabel("layer i")
    return figure


def _errors(values: list, intervals: list) -> list:
    """Bar lengths below and above each value (0 where the interval is missing)."""
    below, above = [], []
    for value, bounds in zip(values, intervals):
        if bounds is None or not all(_finite(b) for b in bounds) or not _finite(value):
            below.append(0.0)
            above.append(0.0)
        else:
            below.append(max(0.0, value - bounds[0]))
            above.append(max(0.0, bounds[1] - value))
    return [below, above]


def _pair_lines(plt, pairs: Sequence[Any], kind: str):
    figure, ax = plt.subplots(figsize=(6.4, 3.4), constrained_layout=True)
    xs = list(range(len(pairs)))
    for name, marker, offset in (("replacement", "o", -0.08), ("interchange", "s", 0.08)):
        values = [getattr(p, name) if _finite(getattr(p, name)) and getattr(p, name) > 0 else float("nan")
                  for p in pairs]
        ax.errorbar([x + offset for x in xs], values, yerr=_errors(values, [p.ci.get(name) for p in pairs]),
                    marker=marker, linestyle="-" if kind == "adjacent" else "none", capsize=3,
                    label=f"{name} {'R' if name == 'replacement' else 'I'}")
    ax.set_yscale("log")
    ax.set_xticks(xs, [f"{p.i}-{p.j}" for p in pairs], rotation=45 if len(pairs) > 12 else 0, fontsize=8)
    ax.set_xlabel("pair of layers i-j")
    ax.set_ylabel("KL (nats)")
    ax.grid(axis="y", alpha=0.25, which="major")
    ax.legend(fontsize=8)
    return figure


def _removal_bars(plt, removals: Sequence[Any]):
    figure, ax = plt.subplots(figsize=(6.4, 3.0), constrained_layout=True)
    layers = [r.layer for r in removals]
    ax.bar(layers, [r.kl if r.kl > 0 else float("nan") for r in removals], color="tab:gray")
    ax.set_yscale("log")
    _layer_ticks(ax, layers)
    ax.set_xlabel("removed layer")
    ax.set_ylabel("KL (nats)")
    ax.grid(axis="y", alpha=0.25, which="major")
    return figure


def _removal_sets(plt, budgets: Sequence[Any], n_layers: int):
    """One row per budget k; a marker where replacement (left of the layer) or interchange (right) removes it."""
    figure, ax = plt.subplots(figsize=(6.4, 0.9 + 0.45 * len(budgets)), constrained_layout=True)
    for row, budget in enumerate(budgets):
        ax.scatter([layer - 0.15 for layer in budget.replacement_layers], [row] * len(budget.replacement_layers),
                   marker="o", color="tab:blue", label="replacement" if row == 0 else None)
        ax.scatter([layer + 0.15 for layer in budget.interchange_layers], [row] * len(budget.interchange_layers),
                   marker="s", color="tab:orange", label="interchange" if row == 0 else None)
    ax.set_yticks(range(len(budgets)), [f"k={b.k}" for b in budgets])
    _layer_ticks(ax, list(range(n_layers)))
    ax.set_xticks(range(n_layers), minor=True)  # a grid line at every layer, labelled or not
    ax.set_xlim(-0.5, n_layers - 0.5)
    ax.set_ylim(len(budgets) - 0.5, -0.5)
    ax.set_xlabel("layer")
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return figure


# ---------------------------------------------------------------- guided removal

_GUIDE_COLOURS = {"replacement": "tab:blue", "interchange": "tab:orange", "removal": "tab:green",
                  "block_influence": "tab:purple", "angular": "tab:brown", "none": "tab:pink"}


def removal_costs(objective: str, unit: str, budgets: Sequence[int], curves: Sequence[tuple]) -> Figure:
    """Held-out cost against the budget k, one line per (search, guide, [(k, cost, low, high)]), 95% intervals as
    error bars: one-shot dashed and beam solid in the guide's colour, greedy, random and exhaustive in greys."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(7.4, 3.6), constrained_layout=True)
    values = []
    for n, (search, guide, points) in enumerate(curves):
        if not points:
            continue
        offset = (n - (len(curves) - 1) / 2) * 0.025  # side by side, so overlapping intervals stay readable
        ks, costs = [k + offset for k, *_ in points], [c for _, c, _, _ in points]
        errors = _errors(costs, [(low, high) for *_, low, high in points])
        style = _line_style(search, guide)
        ax.errorbar(ks, costs, yerr=errors, capsize=2, linewidth=style.pop("linewidth", 1.2),
                    label=search if guide == "-" else f"{search} ({guide})", **style)
        values += [c for c in costs if _finite(c) and c > 0]
    if values and max(values) / min(values) > 10:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):  # 0.2, 0.5, 1: not 2 x 10^-1
            axis(FuncFormatter(_one_two_five))
    ax.set_xticks(list(budgets))
    ax.set_xlabel("layers removed k")
    ax.set_ylabel(f"held-out {unit}")
    ax.grid(axis="y", alpha=0.25)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    caption = (f"Objective {objective}: held-out {unit} of the set each search removes at each budget k (chosen on "
               "calibration data), with 95% intervals; dashed one-shot and solid beam lines in the guide's colour, "
               "black exhaustive, grey greedy, dotted random. Every search and guide is in the table below.")
    return Figure(f"guided-{objective}", caption, _png(plt, figure))


def _one_two_five(value: float, _position=None) -> str:
    """A log axis's tick label at 1, 2 and 5 times a power of ten; the ticks between stay unlabelled."""
    if not value > 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if any(abs(mantissa - m) < 1e-6 for m in (1, 2, 5)) else ""


def _layer_ticks(ax, layers: Sequence[int]) -> None:
    """Every layer labelled up to 16 layers; beyond, every second (or fifth) one, so the labels never run together."""
    step = 1 if len(layers) <= 16 else 2 if len(layers) <= 40 else 5
    ax.set_xticks([layer for layer in layers if layer % step == 0])


def _line_style(search: str, guide: str) -> dict:
    if search == "exhaustive":
        return {"color": "black", "marker": "o", "linewidth": 2.0, "linestyle": "-"}
    if search == "greedy":
        return {"color": "0.45", "marker": "D", "linestyle": "-"}
    if search == "random":
        return {"color": "0.6", "marker": "x", "linestyle": ":"}
    colour = _GUIDE_COLOURS.get(guide, "tab:cyan")
    if search == "beam":
        return {"color": colour, "marker": "s", "linestyle": "-"}
    return {"color": colour, "marker": "^", "linestyle": "--", "linewidth": 0.9}
