"""Every audit option, declared once: `swapkl audit` flags, `--swapkl-*` pytest options and ini keys.

No torch here: pytest imports this at start-up in every run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .errors import InputError


@dataclass(frozen=True)
class Option:
    name: str  # attribute name; CLI flag --name-with-dashes, pytest --swapkl-name-with-dashes, ini swapkl_name
    default: Any
    help: str
    kind: Callable[[str], Any] = str
    flag: bool = False  # a store_true switch
    choices: Optional[tuple[str, ...]] = None
    audit: bool = True  # also a `swapkl audit` flag (tolerances and cache control are pytest-only)

    @property
    def help_text(self) -> str:
        """Help for argparse, which expands %-formats in help strings."""
        return f"{self.help} (default: {_shown(self.default)})".replace("%", "%%")

    @property
    def cli_flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be a positive integer, got {value}")
    return value


def _fraction_or_count(text: str) -> tuple[float, bool]:
    """'25%' is a quarter of the pairs, '3' is three ranks: (value, is_fraction)."""
    text = str(text).strip()
    is_fraction = text.endswith("%")
    value = float(text.rstrip("%")) / (100 if is_fraction else 1)
    if value < 0:
        raise ValueError(f"must not be negative, got {text}")
    return value, is_fraction


def _optional_float(text: str) -> Optional[float]:
    return None if text.strip().lower() in ("", "none", "off") else float(text)


def _k_list(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(",") if part.strip())
    if not values or min(values) < 1:
        raise ValueError(f"must be a comma-separated list of budgets >= 1, got {text!r}")
    return values


def _method_list(text: str) -> tuple[str, ...]:
    known = ("replacement", "interchange", "removal", "block_influence", "angular", "sleb")
    methods = tuple(part.strip() for part in str(text).split(",") if part.strip())
    unknown = [m for m in methods if m not in known]
    if not methods or unknown:
        raise ValueError(f"must be a comma-separated list of {', '.join(known)}; got {text!r}")
    return methods


OPTIONS: tuple[Option, ...] = (
    Option("revision", None, "hub revision (branch, tag or commit) of the model"),
    Option("data", "demo", "calibration SOURCE: .txt file or folder, .jsonl, .npy/.pt ids, hf:NAME[:CONFIG][:SPLIT], "
           "a save_to_disk folder, or demo (the bundled corpus)"),
    Option("pairs", "adjacent", "layer pairs: adjacent | all | window:K | i-j,..."),
    Option("tokens", 8192, "calibration tokens", _positive_int),
    Option("seq_len", 256, "tokens per calibration sequence", _positive_int),
    Option("seed", 0, "seed for choosing chunks and for bootstrap draws", int),
    Option("dtype", "auto", "auto (bfloat16 on CUDA, float32 on CPU) | float32 | bfloat16 | float16"),
    Option("device", "auto", "auto | cpu | cuda | cuda:N"),
    Option("replacement_reduce", "mean", "how R combines replacement(i->j) and replacement(j->i)",
           choices=("mean", "max", "min")),
    Option("bootstrap", 1000, "bootstrap resamples for the 95% intervals", _positive_int),
    Option("path", "auto", "engine path", choices=("auto", "fast", "reference")),
    Option("batch_size", None, "sequences per batch (default: sized from memory)", _positive_int),
    Option("allow_pickle", False, "allow pickle (.bin) weights: only if you trust them", flag=True),
    Option("trust_remote_code", False, "run the checkpoint's own code: only if you trust it", flag=True),
    Option("rank_tolerance", (0.25, True), "per pair: allowed gap between ranks under R and I, as a share of the "
           "pairs (25%) or a number of ranks (3)", _fraction_or_count, audit=False),
    Option("log_ratio_tolerance", None, "per pair: allowed |ln(I/R)| (default: off)", _optional_float, audit=False),
    Option("min_spearman", 0.5, "suite: minimum Spearman(R, I)", float, audit=False),
    Option("min_jaccard", 0.33, "suite: minimum Jaccard of the two protocols' top-k removal sets", float, audit=False),
    Option("jaccard_k", (2, 4), "suite: budgets k of the Jaccard tests, comma-separated", _k_list, audit=False),
    Option("prune_k", 0, "pruning validation: remove each method's layer set for k = 1..K for real and measure it "
           "(0: off)", int),
    Option("prune_methods", ("replacement", "interchange"), "pruning validation: scoring methods, comma-separated "
           "(replacement, interchange, removal, block_influence, angular, sleb)", _method_list),
    Option("max_ppl_increase", 0.25, "prune cases: allowed perplexity increase of a method's set (0.25 = +25%)",
           float, audit=False),
    Option("max_cost_factor", 2.0, "prune cases: allowed ratio between the KL costs of the replacement- and "
           "interchange-guided sets at one budget", float, audit=False),
    Option("json", None, "also write the audit JSON (schema swapkl/1) to this path"),
    Option("cache_clear", False, "recompute the audit even if the cache has it", flag=True, audit=False),
    Option("no_cache", False, "neither read nor write the audit cache", flag=True, audit=False),
)


def add_to_argparse(parser: argparse.ArgumentParser) -> None:
    for option in OPTIONS:
        if not option.audit:
            continue
        if option.flag:
            parser.add_argument(option.cli_flag, action="store_true", help=option.help_text)
        else:
            parser.add_argument(option.cli_flag, default=option.default, type=_argparse_type(option),
                                choices=option.choices, help=option.help_text)


def _argparse_type(option: Option) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return option.kind(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def add_to_pytest(parser: Any) -> None:
    """Declare `--swapkl-*` options and `swapkl_*` ini keys; the values are parsed in `from_pytest`."""
    group = parser.getgroup("swapkl", "layer-redundancy audit (pytest-swapkl)")
    group.addoption("--swapkl-model", dest="swapkl_model", default=None,
                    help="checkpoint folder, hub id or 'demo': runs the audit and generates its tests")
    parser.addini("swapkl_model", "default for --swapkl-model", default=None)
    for option in OPTIONS:
        dest = f"swapkl_{option.name}"
        flag = "--swapkl-" + option.name.replace("_", "-")
        if option.flag:
            group.addoption(flag, dest=dest, action="store_true", default=None, help=option.help_text)
            parser.addini(dest, f"default for {flag}", type="bool", default=option.default)
        else:
            group.addoption(flag, dest=dest, default=None, choices=option.choices, help=option.help_text)
            parser.addini(dest, f"default for {flag}", default=None)


def _shown(value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], bool):
        return f"{100 * value[0]:g}%" if value[1] else f"{value[0]:g}"
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def from_pytest(config: Any, overrides: Optional[dict[str, Any]] = None) -> argparse.Namespace:
    """Options from the command line, else the ini file, else the default; `overrides` (a marker) win."""
    overrides = overrides or {}
    values: dict[str, Any] = {"model": overrides.get("model") or config.getoption("swapkl_model")
                              or config.getini("swapkl_model")}
    for option in OPTIONS:
        if option.name in overrides:
            values[option.name] = overrides[option.name]
            continue
        value = config.getoption(f"swapkl_{option.name}")
        if value is None:
            value = config.getini(f"swapkl_{option.name}")
        if value is None or value == "" or (option.flag and value is False and not option.default):
            values[option.name] = option.default
        elif option.flag:
            values[option.name] = bool(value)
        else:
            values[option.name] = _parse(option, value)
    return argparse.Namespace(**values)


def _parse(option: Option, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return option.kind(value)
    except ValueError as error:
        raise InputError(f"--swapkl-{option.name.replace('_', '-')} (ini swapkl_{option.name}) {error}") from None
