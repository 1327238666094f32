"""The `swapkl` command.

    swapkl audit MODEL [--data SOURCE] [--pairs SPEC] [--json PATH] ...   both protocols + removal, as a table
    swapkl trajectory CHECKPOINT [CHECKPOINT ...] [--json PATH] [--plot PNG]   gap statistics per checkpoint
    swapkl report JUNIT.xml [more.xml ...] [--markdown PATH] [--html PATH] [--baseline OLD.xml]   audit report
    swapkl prune MODEL --guide G --search S --objective O [--budgets K | --max-cost X] ...   guided layer removal
    swapkl heal PRUNED [--original MODEL] --data S --steps N [--save DIR] ...   LoRA healing, net recovery
    swapkl families                                                      model families with a fast path
    swapkl list [protocols|rules|guides|searches|objectives]             the registered names, with summaries
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from .. import __version__
from ..console import first_line
from ..engine.memory import keep_freed_memory
from ..engine.threads import wait_passively
from ..errors import InputError
from ..options import MODEL_HELP, add_to_argparse, audit_inputs
from ..safe_files import check_outputs
from .frontdoor import CommandParser, UsageError, run_main  # noqa: F401  (UsageError: part of this API)

keep_freed_memory()  # freed blocks reused, not faulted in again (engine/memory.py)
wait_passively()  # before anything imports torch: its OpenMP pool reads the policy once (engine/threads.py)


def _audit(args: argparse.Namespace) -> int:
    check_outputs([("--json", args.json)], audit_inputs(args), make_parents=True)  # before any work
    from .sharded import sharded_audit, under_torchrun

    if args.shard or under_torchrun():
        if args.sensitivity:
            raise InputError("--sensitivity: a sharded audit does not compute the sensitivity section; run the "
                             "audit without --shard (or leave out --sensitivity)")
        return sharded_audit(args)
    # Heavy imports only when an audit actually runs.
    from ..audit.runner import locate, run_audit
    from ..progress import Progress
    from .table import render_audit

    progress = Progress.for_stderr()
    journals: list = []  # removed once the JSON is written: a full disk then costs the file, not the measurement
    try:
        located = locate(args)
        document, audit, pruning = run_audit(args, progress=progress, located=located, kept_journals=journals)
        progress.note("writing the audit")
        _share_with_the_plugin(args, located, document)
    finally:
        progress.close()
    print(_verdict_line(document) + "\n")
    print(render_audit(document, audit))
    if pruning is not None:
        from ..analysis.pruning import render_table

        print("\n" + render_table(pruning))
    if args.json:
        from ..audit.results import write_json
        from ..safe_files import OutputError

        try:
            print(f"\naudit JSON written to {write_json(document, args.json)}")
        except OutputError as error:
            kept = f"; the measured results stay in {journals[0]}: a rerun takes them from there" if journals else ""
            raise OutputError(f"{error}{kept}") from None
    for journal in journals:
        journal.unlink(missing_ok=True)
    return 0


def _share_with_the_plugin(args: argparse.Namespace, located, document: dict) -> None:
    """Put an exact audit into the user's audit cache under the plugin's key (`plugin.cache.shared_directory`),
    so that ``pytest --swapkl-model=MODEL`` with the same settings reuses it instead of measuring again. An
    adaptive audit's key holds the plugin's tolerances, which `swapkl audit` does not take: it is not shared."""
    from ..console import print_notice
    from ..plugin.cache import AuditCache, key_for, shared_directory
    from ..settings import AuditSettings

    folder = shared_directory()
    if folder is None or AuditSettings.of(args).statistics.precision != "exact":
        return
    try:
        cache = AuditCache(folder, notice=print_notice)
        key = key_for(args, located, cache)
        cache.put(key, {**document, "cache_key": key})
    except (InputError, OSError) as error:  # the audit stands; only the plugin's reuse is lost
        print_notice(f"the audit is not kept for pytest --swapkl-model ({first_line(error)})")


def _verdict_line(document: dict) -> str:
    """The sentence `swapkl report` opens on for this audit (judged under the default tolerances, as the report
    judges an audit JSON without tolerance flags)."""
    from ..analysis.agreement import Tolerances
    from ..report.audit_json import read_document
    from ..report.verdict import sentence_of

    return "verdict: " + sentence_of(read_document(document, Tolerances(), "this audit"))


def _families(_: argparse.Namespace) -> int:
    # The static list and entry-point names: no torch, no transformers (tests/engine/test_adapters_and_startup.py).
    from ..engine.families import BUILT_IN_MODEL_TYPES, ENTRY_POINT_GROUP, installed_entry_points

    print("model_type values with a fast-path adapter:")
    for model_type in BUILT_IN_MODEL_TYPES:
        print(f"  {model_type}")
    others = installed_entry_points()
    if others:
        print(f"from other packages (entry-point group {ENTRY_POINT_GROUP!r}; their model_types show once loaded):")
        for name, package in others:
            print(f"  {name} (package {package})")
    print(f"others run on the reference path; add a family through the entry-point group {ENTRY_POINT_GROUP!r}")
    return 0


def _models(_: argparse.Namespace) -> int:
    from tabulate import tabulate

    from ..inputs.named_models import list_models

    rows = [["demo", "GPT-NeoX, 8 layers, trained by this project on the bundled corpus (docs/demo_model.md)",
             "MIT", "yes (bundled)"]]
    missing = []
    for model in list_models():
        rows.append([model["name"], model["description"], model["licence"], "yes" if model["installed"] else "no"])
        if not model["installed"]:
            missing.append(f"  {model['name']}: {model['install']}")
    print(tabulate(rows, headers=["MODEL", "what it is", "licence", "installed"]))
    if missing:
        print("\nto install:\n" + "\n".join(missing))
    return 0


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="swapkl", description="Replacement vs interchange layer-redundancy audits.")
    parser.add_argument("--version", action="version", version=f"pytest-swapkl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    audit = commands.add_parser("audit", help="run both protocols and removal on a model")
    audit.add_argument("model", help=MODEL_HELP)
    add_to_argparse(audit)
    audit.add_argument("--shard", default=None, metavar="I/N", help="measure only shard I of N (0 <= I < N) of the "
                       "audit's work units and write them to --json, for swapkl merge (job arrays, several hosts)")
    audit.add_argument("--unit-sequences", type=_positive, default=None, metavar="K", help="sequences per work unit "
                       "of a sharded audit (default: 8); part of the units' key")
    audit.set_defaults(run=_audit)
    commands.add_parser("families", help="list model families with a fast-path adapter").set_defaults(run=_families)
    commands.add_parser("models", help="list the named models (demo and real pretrained ones from the package "
                        "registry), their licences and whether they are installed").set_defaults(run=_models)
    from .baselines import add_baselines_arguments
    from .heal import add_heal_arguments
    from .listing import add_list_arguments
    from .merge import add_merge_arguments
    from .prune import add_prune_arguments
    from .report import add_report_arguments
    from .trajectory import add_trajectory_arguments

    add_list_arguments(commands.add_parser("list", help="list the registered protocols, pair-to-set rules, guides, "
                                           "searches and objectives with a one-line summary each"))
    add_merge_arguments(commands.add_parser("merge", help="merge the shards of one audit into its audit JSON"))
    add_report_arguments(commands.add_parser("report", help="an audit report (Markdown/HTML/JSON) from junit XML, "
                                             "audit JSON or guided-removal JSON"))
    add_baselines_arguments(commands.add_parser(
        "baselines", help="list the audits saved with pytest --swapkl-save NAME (machine, commit, Spearman)"))
    add_prune_arguments(commands.add_parser(
        "prune", help="guided layer removal: searches x guides x objectives, costs on held-out data"))
    add_heal_arguments(commands.add_parser(
        "heal", help="LoRA healing of a pruned model against the same fine-tuning of the original: net recovery"))
    add_trajectory_arguments(commands.add_parser(
        "trajectory", help="protocol-gap statistics over checkpoints (folders, or one hub id at --revisions)"))
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    return run_main(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
