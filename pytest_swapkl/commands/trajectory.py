"""Protocol-gap statistics over a series of checkpoints (a training trajectory).

    swapkl trajectory CKPT [CKPT ...] [--labels a,b,...] [--json PATH] [--plot PATH] [audit options]
    swapkl trajectory EleutherAI/pythia-70m --revisions step1000,step8000,step143000   (one hub id; not --revision)

Each checkpoint gets a full `run_audit`; one model is loaded at a time and freed before the next.
The outputs (--json, --plot) are checked before the first audit and written atomically to exactly
the paths given; labels and model names are content, never file names.
No torch at import time: the audit machinery is imported when a series actually runs.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..console import print_notice
from ..errors import InputError
from ..options import audit_inputs
from ..safe_files import atomic_output, check_output, check_outputs
from .frontdoor import CommandParser, run_main

SCHEMA = "swapkl-trajectory/1"
DISTANCES = (1, 3)  # layer distances j - i of the median I/R columns
PRUNE_METHODS = ("replacement", "interchange")
TABLE_JACCARD_K = (2, 4)  # Jaccard budgets shown in the table and plot when the audit has them

Checkpoint = tuple[str, str, Optional[str]]  # (label, model spec, revision or None)


class TrajectoryError(InputError):
    """Bad trajectory input: a missing checkpoint, mismatched labels or revisions."""


# --- running the series --------------------------------------------------------------------------


def checkpoint_series(specs: Sequence[str], revisions: Optional[Sequence[str]] = None,
                      labels: Optional[Sequence[str]] = None) -> list[Checkpoint]:
    """(label, spec, revision) per checkpoint: one spec per folder/hub id, or one hub id at each revision."""
    specs = [str(spec) for spec in specs]
    if not specs:
        raise TrajectoryError("no checkpoints: pass at least one checkpoint folder or hub id")
    if revisions:
        if len(specs) != 1:
            raise TrajectoryError(f"--revisions takes a single hub id, got {len(specs)} checkpoints: "
                                  "pass one MODEL, or drop --revisions")
        entries = [(revision, specs[0], revision) for revision in revisions]
    else:
        entries = [(_default_label(spec), spec, None) for spec in specs]
    if labels:
        if len(labels) != len(entries):
            raise TrajectoryError(f"--labels has {len(labels)} labels for {len(entries)} checkpoints: "
                                  "give one label per checkpoint")
        entries = [(label, spec, revision) for label, (_, spec, revision) in zip(labels, entries)]
    return entries


def _default_label(spec: str) -> str:
    name = Path(spec.rstrip("/\\")).name
    return name or spec


def check_checkpoints(checkpoints: Sequence[Checkpoint]) -> None:
    """Fail before the first (long) audit when a checkpoint that is clearly a local path does not exist."""
    for label, spec, _ in checkpoints:
        text = os.path.expanduser(str(spec).strip())
        if text == "demo" or Path(text).is_dir():
            continue
        if Path(text).exists():
            raise TrajectoryError(f"checkpoint {label!r}: {spec} is a file, not a checkpoint folder")
        parts = text.split("/")
        hub_like = len(parts) == 2 and all(parts) and not text.startswith((".", "~")) and "\\" not in text
        if not hub_like:
            raise TrajectoryError(f"checkpoint {label!r}: no such folder: {spec}")


def series_estimate(finished: int, total: int, elapsed: float) -> str:
    """", 3 min 10 s elapsed, ~6 min 20 s left" before checkpoint ``finished + 1`` of ``total``: the mean time of
    the finished audits times the ones left (checkpoints of one series are audited alike); "" before the first."""
    if finished <= 0:
        return ""
    return f", {_duration(elapsed)} elapsed, ~{_duration(elapsed / finished * (total - finished))} left"


def _duration(seconds: float) -> str:
    from ..progress import duration

    return duration(seconds)


def audit_series(checkpoints: Sequence[Checkpoint], options: Any,
                 notice: Callable[[str], None] = print_notice,
                 progress: Optional[Callable[[str], Any]] = None,
                 clock: Callable[[], float] = time.monotonic) -> list[dict[str, Any]]:
    """Run `run_audit` on each checkpoint in order; one row per checkpoint:
    ``{"label", "model", "revision", "statistics", "document"}``. ``progress(label)`` gives each
    checkpoint's progress (a `progress.Progress`: called with (done, total), closed after its audit); each
    checkpoint's line says how many are done and, from the second on, the time elapsed and an estimate."""
    from ..audit.runner import model_from_options, run_audit

    checkpoints = [(str(label), str(spec), revision) for label, spec, revision in checkpoints]
    check_checkpoints(checkpoints)
    rows = []
    started = clock()
    for number, (label, spec, revision) in enumerate(checkpoints, 1):
        notice(f"trajectory {number}/{len(checkpoints)}: {label} ({spec}"
               + (f" @ {revision}" if revision else "") + ")"
               + series_estimate(number - 1, len(checkpoints), clock() - started))
        own = copy.copy(options)
        own.model, own.revision = spec, revision
        loaded = model_from_options(own, notice=notice)
        shown = progress(label) if progress is not None else None
        try:
            document, _, _ = run_audit(own, progress=shown, loaded=loaded, notice=notice)
        finally:
            if shown is not None:
                shown.close()
            del loaded
            _free_memory()
        rows.append({"label": label, "model": spec, "revision": revision,
                     "statistics": gap_statistics(document), "document": document})
    notice(f"trajectory: {len(rows)} checkpoints audited in {_duration(clock() - started)}")
    return rows


def _free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- statistics ----------------------------------------------------------------------------------


def median_ratio(document: dict[str, Any], distance: int) -> Optional[float]:
    """Median of I/R over the pairs with j - i == distance (pairs with R == 0 or missing values skipped)."""
    from ..numerics import ratio

    ratios = [ratio(pair["interchange"], pair["replacement"]) for pair in document.get("pairs", [])
              if pair["j"] - pair["i"] == distance and pair.get("interchange") is not None
              and pair.get("replacement") is not None]
    ratios = [value for value in ratios if value is not None]
    return float(statistics.median(ratios)) if ratios else None


def gap_statistics(document: dict[str, Any]) -> dict[str, Any]:
    """The protocol-gap statistics of one audit document (schema swapkl/1)."""
    summary = document.get("summary", {})
    result: dict[str, Any] = {
        "base_ppl": document.get("base", {}).get("ppl"),
        "median_ratio": {str(d): median_ratio(document, d) for d in DISTANCES},
        "spearman": summary.get("spearman"),
        "kendall": summary.get("kendall"),
        "jaccard": {str(t["k"]): t["jaccard"] for t in summary.get("topk", [])},
    }
    if document.get("pruning"):
        result["pruning"] = {
            # The costs on held-out text (--heldout), with their intervals; the calibration KL for contrast.
            str(budget["k"]): {method: {"kl": budget["heldout_kl"].get(method),
                                        "ppl": budget["heldout_ppl"].get(method),
                                        "kl_ci": budget["heldout_kl_ci"].get(method),
                                        "calibration_kl": budget["kl"].get(method)}
                               for method in PRUNE_METHODS if method in budget["kl"]}
            for budget in document["pruning"]["budgets"]
        }
    return result


def trajectory_document(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """JSON-ready: per-checkpoint statistics and each checkpoint's full audit document."""
    from .. import __version__

    return {
        "schema": SCHEMA,
        "swapkl": __version__,
        "checkpoints": [
            {"label": row["label"], "model": row["model"], "revision": row["revision"],
             "statistics": row["statistics"], "audit": row["document"]}
            for row in rows
        ],
    }


# --- table and plot ------------------------------------------------------------------------------


def _columns(rows: Sequence[dict[str, Any]]) -> list[tuple[str, Callable[[dict[str, Any]], Optional[float]], str]]:
    """(header, getter on a statistics dict, format) for every column that some row has."""
    columns = [
        ("base ppl", lambda s: s["base_ppl"], ".3f"),
        *[(f"median I/R d={d}", lambda s, d=d: s["median_ratio"].get(str(d)), ".3f") for d in DISTANCES],
        ("Spearman", lambda s: s["spearman"], ".3f"),
        ("Kendall", lambda s: s["kendall"], ".3f"),
    ]
    ks = sorted({int(k) for row in rows for k in row["statistics"]["jaccard"]})
    ks = [k for k in ks if k in TABLE_JACCARD_K] or ks  # the JSON keeps every k
    columns += [(f"Jaccard k={k}", lambda s, k=k: s["jaccard"].get(str(k)), ".2f") for k in ks]
    budgets = sorted({int(k) for row in rows for k in row["statistics"].get("pruning", {})})
    for k in budgets:
        for method, short in (("replacement", "R"), ("interchange", "I")):
            columns.append((f"prune KL k={k} ({short})",
                            lambda s, k=k, m=method: s.get("pruning", {}).get(str(k), {}).get(m, {}).get("kl"),
                            ".4f"))
    return columns


def render_trajectory(rows: Sequence[dict[str, Any]]) -> str:
    """One line per checkpoint; pruning columns (R: replacement-, I: interchange-guided) when audited."""
    from tabulate import tabulate

    columns = _columns(rows)
    table = [[row["label"]] + [_shown(get(row["statistics"]), spec) for _, get, spec in columns] for row in rows]
    return tabulate(table, headers=["checkpoint"] + [header for header, _, _ in columns], disable_numparse=True,
                    colalign=["left"] + ["right"] * len(columns))


def _shown(value: Optional[float], spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def plot_trajectory(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """A PNG: one panel per statistic, checkpoints on the x axis (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install matplotlib") from None
    target = check_output(path, make_parents=True)
    labels = [row["label"] for row in rows]
    x = list(range(len(rows)))
    columns = _columns(rows)
    panels = [
        ("perplexity", [c for c in columns if c[0] == "base ppl"]),
        ("median I/R", [c for c in columns if c[0].startswith("median I/R")]),
        ("rank agreement", [c for c in columns if c[0] in ("Spearman", "Kendall") or c[0].startswith("Jaccard")]),
        ("pruning KL", [c for c in columns if c[0].startswith("prune KL")]),
    ]
    panels = [(title, cols) for title, cols in panels if cols]
    figure, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 1.2 * len(rows) + 3), 2.6 * len(panels)),
                                sharex=True, squeeze=False)
    try:
        for axis, (title, cols) in zip(axes[:, 0], panels):
            for header, get, _ in cols:
                values = [get(row["statistics"]) for row in rows]
                axis.plot(x, [float("nan") if v is None else v for v in values], marker="o", label=header)
            axis.set_title(title, fontsize=10)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8, loc="best")
        axes[-1, 0].set_xticks(x)
        axes[-1, 0].set_xticklabels(labels, rotation=30, ha="right")
        axes[-1, 0].set_xlabel("checkpoint")
        figure.tight_layout()
        with atomic_output(target, binary=True, make_parents=True) as stream:  # the old plot or the new, never half
            figure.savefig(stream, dpi=100, format="png")
    finally:
        plt.close(figure)
    return target


# --- command line --------------------------------------------------------------------------------


def _list(text: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list, got {text!r}")
    return items


def add_trajectory_arguments(parser: argparse.ArgumentParser) -> None:
    from ..options import add_to_argparse

    parser.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                        help="checkpoint folders or hub ids, in trajectory order (with --revisions: one hub id)")
    parser.add_argument("--revisions", type=_list, default=None,
                        help="comma-separated hub revisions (e.g. step1000,step8000) of the single CHECKPOINT")
    parser.add_argument("--labels", type=_list, default=None, help="comma-separated labels, one per checkpoint")
    parser.add_argument("--plot", default=None, help="also write a PNG plot of the statistics")
    add_to_argparse(parser, exclude=("revision",))  # the audit options and --json; revisions are --revisions
    # Without this, argparse would read --revision as an abbreviation of --revisions.
    parser.add_argument("--revision", dest="single_revision", default=None, help=argparse.SUPPRESS)
    parser.set_defaults(run=run_trajectory)


def run_trajectory(args: argparse.Namespace) -> int:
    """The body of `swapkl trajectory`, given parsed arguments."""
    if args.single_revision is not None:
        raise TrajectoryError("swapkl trajectory takes --revisions REV[,REV...] (the revisions of one hub id), "
                              "not --revision: write --revisions " + args.single_revision)
    checkpoints = checkpoint_series(args.checkpoints, args.revisions, args.labels)
    if args.plot and not _has_matplotlib():  # fail before the audits, not after
        raise InputError("plotting needs matplotlib: pip install matplotlib")
    _check_outputs(args.json, args.plot, audit_inputs(args, [spec for _, spec, _ in checkpoints]))
    options = argparse.Namespace(**{k: v for k, v in vars(args).items()
                                    if k not in ("checkpoints", "revisions", "single_revision", "labels", "plot",
                                                 "run", "command")}, revision=None)
    from ..progress import Progress

    Progress.for_stderr()  # a bad SWAPKL_PROGRESS fails before the first audit
    rows = audit_series(checkpoints, options, progress=Progress.for_stderr)
    print(render_trajectory(rows))
    if args.json:
        from ..audit.results import write_json

        print(f"\ntrajectory JSON written to {write_json(trajectory_document(rows), args.json)}")
    if args.plot:
        print(f"trajectory plot written to {plot_trajectory(rows, args.plot)}")
    return 0


def _check_outputs(json_path: Optional[str], plot_path: Optional[str], inputs: list) -> None:
    """Before the (long) audits: each output can be written, --json and --plot are different files, and
    neither is (or lies inside) a checkpoint or the data."""
    check_outputs([("--plot", plot_path), ("--json", json_path)], inputs, make_parents=True)


def build_parser(parser_class: type = CommandParser) -> argparse.ArgumentParser:
    parser = parser_class(prog="swapkl trajectory",
                          description="Protocol-gap statistics (I/R, Spearman, Jaccard, pruning) per checkpoint.")
    add_trajectory_arguments(parser)
    return parser


def main_trajectory(argv: Optional[Sequence[str]] = None) -> int:
    """`swapkl trajectory ...` as a standalone entry point; input errors print one line and exit 2."""
    return run_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main_trajectory())
