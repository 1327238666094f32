"""`swapkl list`: the registered names of every extension point, one table (name, summary) per registry.

    swapkl list [protocols|rules|guides|searches|objectives|cases|contracts]     all of them without an argument

Each registry is read where its entries are registered; an unknown registry is a one-line error with the
closest names (exit 2). Reading the analysis registries imports no numpy or torch.
"""

from __future__ import annotations

import argparse
from typing import Callable

from ..registry import Registry

# name -> a loader of the registry (its module is imported only when listed); the summary titles its table
REGISTRIES: Registry[Callable[[], Registry]] = Registry("registry")


def _registry(name: str, title: str) -> Callable:
    def register(loader: Callable[[], Registry]) -> Callable[[], Registry]:
        return REGISTRIES.register(name, loader, title, __name__)
    return register


@_registry("protocols", "probe kinds an audit measures")
def _protocols() -> Registry:
    from ..engine.protocols import PROTOCOLS

    return PROTOCOLS


@_registry("rules", "pair-to-set rules, from pair distances to a removal set (swapkl prune --pair-rule)")
def _rules() -> Registry:
    from ..analysis.pair_rules import PAIR_RULES

    return PAIR_RULES


@_registry("guides", "per-layer scores that propose layers to a search (swapkl prune --guide)")
def _guides() -> Registry:
    from ..analysis.guides import GUIDES

    return GUIDES


@_registry("searches", "searches for the layer set to remove (swapkl prune --search)")
def _searches() -> Registry:
    from ..analysis.search import SEARCHES

    return SEARCHES


@_registry("objectives", "what a search minimises (swapkl prune --objective)")
def _objectives() -> Registry:
    from ..analysis.objectives import OBJECTIVES

    return OBJECTIVES


@_registry("cases", "kinds of test case the plugin generates (pytest --swapkl-model=...)")
def _cases() -> Registry:
    from ..case_kinds import CASE_KINDS

    return CASE_KINDS


@_registry("contracts", "the paper's measuring contracts as option presets (swapkl audit --contract)")
def _contracts() -> Registry:
    from ..contracts import CONTRACTS

    return CONTRACTS


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("registry", nargs="?", default=None, metavar="REGISTRY",
                        help=f"the registry to print: {', '.join(REGISTRIES)} (default: all of them)")
    parser.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    names = REGISTRIES.names() if args.registry is None else [args.registry]
    entries = [REGISTRIES.entry(name) for name in names]  # an unknown name fails before anything is printed
    print("\n\n".join(render(entry.name, entry.summary, entry.value()) for entry in entries))
    return 0


def render(name: str, title: str, registry: Registry) -> str:
    from tabulate import tabulate

    rows = [[entry.name, entry.summary] for entry in registry.entries()]
    return f"{name}: {title}\n" + tabulate(rows, headers=["name", "summary"], disable_numparse=True)
