"""Every audit option, declared once: `swapkl audit` flags, `--swapkl-*` pytest options and ini keys.

No torch here: pytest imports this at start-up in every run.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .contracts import contract_values
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
    shown: Optional[str] = None  # how help names the default, where the value itself says little (None)
    repeated: bool = False  # the pytest flag may be given again and the ini value hold several lines
    aliases: tuple[str, ...] = ()  # old names, still read on every face with a one-line notice (`renamed`)
    bare: Optional[str] = None  # the value of the flag given without one (argparse nargs="?"), where it may be

    @property
    def help_text(self) -> str:
        """Help for argparse, which expands %-formats in help strings; the default is said once, here (a switch
        is off unless given, which needs no saying)."""
        if self.flag:
            return self.help.replace("%", "%%")
        default = self.shown if self.shown is not None else _shown(self.default)
        return f"{self.help} (default: {default})".replace("%", "%%")

    @property
    def cli_flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def alias_flags(self) -> list[str]:
        return ["--" + alias.replace("_", "-") for alias in self.aliases]


_NOTICED: set[str] = set()


def renamed(old: str, new: str) -> None:
    """The one-line notice for an old spelling (once per process): it still works, and the new one is named."""
    if old not in _NOTICED:
        _NOTICED.add(old)
        from .console import print_notice

        print_notice(f"{old} is now {new} (the old name still works and will be kept for a while)")


def _quoted(text: str) -> str:
    """The input as a message shows it: quoted, on one line, long inputs cut short."""
    return repr(text) if len(text) <= 40 else f"{text[:24]!r}... ({len(text)} characters)"


def _integer(text: str, minimum: int, what: str, maximum: Optional[int] = None) -> int:
    text = str(text).strip()
    try:
        value = int(text)
    except ValueError:  # not an integer, or more digits than int() converts
        raise ValueError(f"must be {what}, got {_quoted(text)}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"must be {what}, got {text if len(text) <= 40 else _quoted(text)}")
    return value


def _positions(text: str) -> str:
    """all, last or last:K (K >= 1): the positions each sequence's KL averages (engine/reading.py)."""
    text = str(text).strip()
    head, _, k = text.partition(":")
    if text in ("all", "last") or (head == "last" and k.isdigit() and int(k) >= 1 and len(k) <= 9):
        return text
    raise ValueError(f"must be all, last or last:K with K >= 1, got {_quoted(text)}")


def _positive_int(text: str) -> int:
    return _integer(text, 1, "a positive integer")


def _window(text: str) -> int:
    return _integer(text, 2, "an integer >= 2 (tokens per window)")


def _non_negative_int(text: str) -> int:
    return _integer(text, 0, "an integer >= 0")


_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 1000**2, "mib": 1 << 20,
               "g": 1 << 30, "gb": 1000**3, "gib": 1 << 30, "t": 1 << 40, "tb": 1000**4, "tib": 1 << 40}


_MAX_MEMORY = 1 << 50  # 1 PiB: beyond any machine, and far inside what an int and a float hold


def _memory_size(text: str) -> int:
    """Bytes from '40GiB', '512MiB', '8G' (binary), '1.5GB' (decimal) or a plain number of bytes."""
    text = str(text).strip()
    number = text.rstrip("kKmMgGtTiIbB ")
    unit = text[len(number):].strip().lower()
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    size = value * _SIZE_UNITS.get(unit, math.nan)
    if unit not in _SIZE_UNITS or not math.isfinite(size) or not 1 << 20 <= size <= _MAX_MEMORY:
        raise ValueError(f"must be a memory size from 1MiB to 1PiB such as 40GiB, 512MiB or 8G, got {_quoted(text)}")
    return int(size)


def _stack(text: str) -> Optional[int]:
    if str(text).strip().lower() == "auto":
        return None
    return _integer(text, 1, "auto or a positive integer (probes per layer call)", maximum=4096)


def _threads(text: str) -> int:
    return _integer(text, 1, "a positive integer (CPU threads)", maximum=4096)


def _seed(text: str) -> int:
    return _integer(text, 0, "an integer >= 0 (numpy takes no negative seeds)")


def _resamples(text: str) -> int:
    return _integer(text, 1, "an integer from 1 to 100000 (resamples held in memory at once)", maximum=100_000)


def _finite(text: str) -> Optional[float]:
    """The number ``text`` names; None when it names none, or NaN or an infinity."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value + 0.0 if math.isfinite(value) else None  # + 0.0: -0 becomes 0


def _number_in(text: str, low: float, high: float, what: str) -> float:
    value = _finite(str(text))
    if value is None or not low <= value <= high:
        raise ValueError(f"must be {what}, got {_quoted(str(text))}")
    return value


def _alpha(text: str) -> float:
    value = _number_in(text, 0.0, 1.0, "a probability between 0 and 1 (an error level such as 0.05)")
    if not 0 < value < 1:
        raise ValueError(f"must be a probability between 0 and 1, exclusive, got {_quoted(str(text))}")
    return value


def _margin(text: str) -> float:
    value = _number_in(text, 0.0, math.inf, "a relative margin > 0, e.g. 0.1 (costs within 10% are the same)")
    if value <= 0:
        raise ValueError(f"must be a relative margin > 0, e.g. 0.1, got {_quoted(str(text))}")
    return value


def _correlation(text: str) -> float:
    return _number_in(text, -1.0, 1.0, "a number from -1 to 1 (a rank correlation)")


def _share(text: str) -> float:
    return _number_in(text, 0.0, 1.0, "a number from 0 to 1 (a Jaccard index)")


def _non_negative(text: str) -> float:
    return _number_in(text, 0.0, math.inf, "a finite number >= 0")


def _cost_factor(text: str) -> float:
    return _number_in(text, 1.0, math.inf, "a finite number >= 1 (a ratio of two KL costs)")


def _baseline_name(text: str) -> str:
    """A saved baseline's name: it becomes a file name and a case name, so letters, digits and ._- only."""
    from .cases import BASELINE_NAME

    if not BASELINE_NAME.fullmatch(text):
        raise ValueError(f"must be 1-64 letters, digits, '.', '_' or '-' (not starting with '.'), got {_quoted(text)}")
    return text


def _fraction_or_count(text: str) -> tuple[float, bool]:
    """'25%' is a quarter of the pairs, '3' is three ranks: (value, is_fraction)."""
    text = str(text).strip()
    is_fraction = text.endswith("%")
    value = _finite(text[:-1] if is_fraction else text)
    if value is None or value < 0:
        raise ValueError(f"must be a share of the pairs (25%) or a number of ranks (3), finite and >= 0; "
                         f"got {_quoted(text)}")
    return value / (100 if is_fraction else 1), is_fraction


def _optional_float(text: str) -> Optional[float]:
    """A tolerance >= 0, or None for ''/none/off."""
    if str(text).strip().lower() in ("", "none", "off"):
        return None
    return _number_in(text, 0.0, math.inf, "a finite number >= 0, or off")


def _source(text: str) -> str:
    """A data SOURCE as given; an empty one names nothing (a typo'd path fails where it is read, in one line)."""
    text = str(text)
    if not text.strip():
        raise ValueError("must name a SOURCE (a .txt file or folder, .jsonl, .npy/.pt, hf:NAME, or demo), got ''")
    return text


def _pair_spec(text: str) -> str:
    """The spec as given, once its syntax is checked: a typo fails before the model loads (ranges need it)."""
    from .engine.probes import parse_pairs

    parse_pairs(text, None)
    return text


def _head_spec(text: str) -> str:
    """The spec as given, once its syntax is checked (layer and head ranges need the model's config)."""
    from .engine.head_spec import parse_head_spec

    parse_head_spec(text, None)
    return text


def _device_memory(text: str) -> str:
    """The spec as given, once its syntax is checked (accelerate reads it when the model loads)."""
    from .inputs.placement import parse_device_memory

    try:
        parse_device_memory(text)
    except InputError:
        raise ValueError(f"must be DEVICE=SIZE pairs such as 0=20GiB,cpu=64GiB (DEVICE a GPU index or cpu), "
                         f"got {_quoted(str(text))}") from None
    return text


def _k_list(text: str) -> tuple[int, ...]:
    what = "a comma-separated list of budgets >= 1 (e.g. 2,4)"
    values = {_integer(part, 1, what) for part in str(text).split(",") if part.strip()}
    if not values:
        raise ValueError(f"must be {what}, got {_quoted(str(text))}")
    return tuple(sorted(values))


def _method_list(text: str) -> tuple[str, ...]:
    known = ("replacement", "interchange", "removal", "block_influence", "angular", "sleb")
    methods = tuple(dict.fromkeys(part.strip().lower() for part in str(text).split(",") if part.strip()))
    unknown = [m for m in methods if m not in known]
    if not methods or unknown:
        raise ValueError(f"must be a comma-separated list of {', '.join(known)}; got {_quoted(str(text))}")
    return methods


def _contract_name(text: str) -> str:
    """A registered contract's name (`contracts.CONTRACTS`); an unknown one names the closest."""
    from .contracts import CONTRACTS
    from .registry import UnknownNameError

    try:
        CONTRACTS.get(str(text).strip())
    except UnknownNameError as error:
        raise ValueError(str(error)) from None
    return str(text).strip()


def _pair_rule(text: str) -> str:
    from .analysis.pair_rules import PAIR_RULES  # pure Python, no numpy

    name = str(text).strip().lower()
    if name not in PAIR_RULES:
        raise ValueError(f"must be one of {', '.join(PAIR_RULES)}; got {_quoted(str(text))}")
    return name


def _sensitivity(text: str) -> tuple[str, ...]:
    from .analysis.sensitivity import parse_factors  # numpy: imported only when the option is given

    return parse_factors(text)


DEFAULT_TOKENS = 8192
# A real model on the CPU: on SmolLM2-135M 2,048 tokens order the adjacent pairs with split-half Spearman 0.977
# and know a pair's distance to +-11% (median; docs/benchmarks.md, "What a CPU token budget buys").
CPU_TOKENS = 2048
DEFAULT_SENSITIVITY = "rules,beam,draws,size"  # what a bare --sensitivity asks for: the factors that measure nothing


def _prune_budgets(text: str) -> tuple[str, ...]:
    """Budgets GUIDE:SEARCH:OBJECTIVE:MAX_COST:MIN_LAYERS[:strict], comma-separated, each as `budgets.BudgetSpec`
    writes it back (checked, lowercased; repeats dropped)."""
    from .analysis.budgets import parse_budget

    return tuple(dict.fromkeys(str(parse_budget(part)) for part in str(text).split(",") if part.strip()))


OPTIONS: tuple[Option, ...] = (
    Option("revision", None, "hub revision (branch, tag or commit) of the model"),
    Option("gguf_file", None, "which .gguf file of a MODEL folder that holds several"),
    Option("data", "demo", "calibration SOURCE: .txt file or folder, .jsonl, .npy/.pt ids, hf:NAME[:CONFIG][:SPLIT], "
           "a save_to_disk folder, or demo (the bundled corpus)"),
    Option("heldout", None, "held-out SOURCE on which every reported cost (the pruning validation, the "
           "prune cases, removal_cost) is measured, never the calibration itself: any form --data takes",
           _source, shown="for demo, other works than the calibration's (demo-heldout; --heldout demo: the "
           "calibration's unused chunks); for other sources, the chunks the calibration did not use"),
    Option("heldout_tokens", None, "held-out tokens: cut into --seq-len sequences like the calibration, or with "
           "--heldout-window the first N tokens of the held-out stream", _positive_int,
           shown="as many as --tokens; with --heldout-window and a --heldout text of its own, all of it"),
    Option("heldout_window", None, "measure held-out costs (removal costs, prune cases, removal_cost) by the "
           "sliding-window perplexity evaluator: windows of W tokens over one held-out stream, each scoring only "
           "the tokens the previous one did not (the paper: 1024 on GPT-2, 512 on the 8B models)", _window,
           shown="none: independent --seq-len sequences"),
    Option("heldout_stride", None, "with --heldout-window: a window every S tokens (1..W)", _positive_int,
           shown="half the window"),
    Option("heldout_words", None, "with --heldout-window: the first N whitespace-separated words of the --heldout "
           "text, as the paper cuts WikiText-2 test (5000 or 20000 words)", _positive_int, shown="all"),
    Option("contract", None, "a preset of the paper's measuring contract (positions, pads, replacement direction, "
           "pairs, dtype, pair rule, held-out evaluator) for one experiment family; options given explicitly win "
           "(`swapkl list contracts`)", _contract_name, shown="none"),
    Option("pairs", "adjacent", "layer pairs: adjacent | all | window:K | i-j,...", _pair_spec),
    Option("averaging", False, "also measure averaging(i,j) per pair: slots i and j both run one module with the "
           "mean of the two layers' weights (the JSON's pairs[].averaging)", flag=True),
    Option("heads", None, "head tables: for each pair i-j of this spec, head(i<-j,h) for every attention head h of "
           "layer i, or for the heads a pair names after a colon (3-4:0+5,7-8; a run 3-4:0..3); the JSON's heads; "
           "docs/probes.md says what a head is under grouped-query attention", _head_spec, shown="off"),
    Option("tokens", DEFAULT_TOKENS, "calibration tokens", _positive_int,
           shown=f"{DEFAULT_TOKENS}; {CPU_TOKENS} on the CPU for a model other than the demo"),
    Option("seq_len", 256, "tokens per calibration sequence", _positive_int),
    Option("seed", 0, "seed for choosing chunks and for bootstrap draws", _seed),
    Option("dtype", "auto", "auto | float32 | bfloat16 | float16; auto is bfloat16 on CUDA and float32 on the CPU, "
           "whatever dtype the checkpoint was saved in (not transformers' torch_dtype='auto'); the audit JSON "
           "records the dtype used and model.dtype_from"),
    Option("device", "auto", "auto | cpu | cuda | cuda:N"),
    Option("device_map", None, "place a model larger than one GPU across devices with accelerate (layers on the CPU "
           "are offloaded to the first GPU)", choices=("auto", "balanced", "balanced_low_0", "sequential"),
           shown="off: one device"),
    Option("device_memory", None, "with --device-map: what accelerate may place per device, e.g. "
           "0=70GiB,1=70GiB,cpu=200GiB", _device_memory),
    Option("replacement_reduce", "max", "how R combines replacement(i->j) (slot j runs layer i) and "
           "replacement(j->i) (slot i runs layer j): max (the paper's Definition 1), mean, min, or one direction, "
           "ij or ji (ji is the paper's one-direction 'slot a runs layer b' for the pair a<b)",
           choices=("max", "mean", "min", "ij", "ji")),
    Option("pair_rule", "min-partner", "how a protocol's pair distances become the layers it would remove: "
           "min-partner (the paper's Table 14: each layer scored by its smallest distance to a partner, lowest "
           "first, none within --spacing of another), later, earlier, layer_min (`swapkl list rules`)", _pair_rule),
    Option("spacing", 1, "min-partner: no two removed layers within this many slots (1: none adjacent; 0: no "
           "constraint)", _non_negative_int),
    Option("keep_boundary", 0, "min-partner: never remove the first N or the last N layers", _non_negative_int,
           shown="0 = none kept"),
    Option("bootstrap", 1000, "bootstrap resamples for the 95% intervals", _resamples),
    Option("path", "auto", "engine path", choices=("auto", "fast", "reference")),
    Option("attention_type", "layer", "a moved layer keeps its own attention type (layer: its sliding or full mask "
           "and rotary embedding) or takes its new slot's (slot); the same where a model has one type",
           choices=("layer", "slot")),
    Option("positions", "all", "positions each sequence's KL reads: all, last (the last real token's next-token "
           "distribution) or last:K (the last K real tokens); docs/contracts.md", _positions),
    Option("pads", "out", "padded prompts (data prompts:FILE): pads left out of the average (out) or run as "
           "ordinary tokens and averaged in (in, as the paper's trajectory script)", choices=("out", "in")),
    Option("batch_size", None, "sequences per batch", _positive_int, shown="sized from memory"),
    Option("max_memory", None, "cap on the memory the batch plan sizes itself to, e.g. 40GiB, for a shared GPU",
           _memory_size, shown="half the free GPU memory; 192MiB of batch on CPU"),
    Option("stack", None, "probes sent through one layer call on the fast path: auto (as many as a saturating "
           "matrix product needs on CUDA, 1 on CPU) or a number", _stack, shown="auto"),
    Option("allow_pickle", False, "allow pickle (.bin) weights: only if you trust them", flag=True),
    Option("trust_remote_code", False, "run the checkpoint's own code: only if you trust it", flag=True),
    Option("rank_tolerance", (0.15, True), "per pair: allowed gap between ranks under R and I, as a share of the "
           "pairs (15%: chosen on the demo and random models, docs/decisions.md) or a number of ranks (3), rounded to "
           "whole ranks, halves up", _fraction_or_count, audit=False),
    Option("log_ratio_tolerance", None, "per pair: allowed |ln(I/R)|", _optional_float, audit=False, shown="off"),
    Option("min_spearman", 0.5, "suite: minimum Spearman(R, I)", _correlation, audit=False),
    Option("min_jaccard", 0.33, "suite: minimum Jaccard of the two protocols' top-k removal sets", _share, audit=False),
    Option("jaccard_k", (2, 4), "suite: budgets k of the Jaccard tests, comma-separated", _k_list, audit=False),
    Option("prune_k", 0, "pruning validation: remove each guide's layer set for every budget k = 1..K (k: layers "
           "removed, as in swapkl prune --budgets) for real and measure it",
           _non_negative_int, shown="0 = off"),
    Option("prune_guides", ("replacement", "interchange"), "pruning validation: the guides that pick each k's layer "
           "set, comma-separated (replacement, interchange, removal, block_influence, angular, sleb); old name "
           "prune_methods", _method_list, aliases=("prune_methods",)),
    Option("max_ppl_increase", 0.25, "prune cases: allowed perplexity increase of a method's set (0.25 = +25%)",
           _non_negative, audit=False),
    Option("equivalence_margin", 0.20, "paired cost verdicts: two costs are 'equivalent' when the 90% paired interval "
           "of their ratio lies inside [1/(1+M), 1+M] (TOST at 5%), else without a direction 'undecided' (0.20: the "
           "smallest margin reachable on the demo and random models at 8,192 tokens, docs/decisions.md)", _margin),
    Option("multiplicity", "holm", "paired cost verdicts: p-value adjustment across each verdict table (the pruning "
           "comparisons, a prune file's vs-best verdicts): holm (family-wise), bh (Benjamini-Hochberg, false discovery "
           "rate) or none", choices=("holm", "bh", "none")),
    Option("max_cost_factor", 1.2, "prune cases: allowed ratio between the KL costs of the replacement- and "
           "interchange-guided sets at one budget (1.2: what noise alone reaches in 97.5% of same-protocol splits on "
           "the demo and random models, docs/decisions.md)", _cost_factor, audit=False),
    Option("prune_budget", (), "prune budget cases: GUIDE:SEARCH:OBJECTIVE:MAX_COST:MIN_LAYERS[:strict], e.g. "
           "interchange:beam:ppl:10%:4 (the interchange-guided beam removes at least 4 layers within +10% held-out "
           "perplexity); repeat the flag, or one per line in the ini, for several (docs/pruning.md)",
           _prune_budgets, audit=False, shown="none", repeated=True),
    Option("noise_probes", 8, "noise floor: this many of the audit's smallest-KL probes are measured again on 4 of "
           "its sequences by the reference semantics in a wider dtype (float32 for bfloat16/float16, float64 for "
           "float32), and the floor is the largest difference; 0 = not measured (the floor is then null and no pair "
           "passes by it)", _non_negative_int),
    Option("precision", "exact", "exact: every probe on every sequence; adaptive: every probe on a random first "
           "slice, then more sequences (in a seeded random order) only for the probes an unsettled population "
           "verdict rests on (each protocol's top-k sets, the Spearman threshold); settled verdicts are the text "
           "population's up to adaptive_alpha, per-pair cases are not certified (docs/decisions.md)",
           choices=("exact", "adaptive")),
    Option("adaptive_alpha", 0.05, "adaptive precision: the allowed chance that any verdict reported as settled "
           "differs from the text population's", _alpha),
    Option("threads", None, "CPU threads torch uses", _threads,
           shown="the idle cores: the 1-minute load average subtracted, under xdist the cores divided among the "
                 "workers; OMP_NUM_THREADS where set"),
    Option("compile", "auto", "torch.compile the fast path's layers and head + KL step: auto (on CUDA), on, off",
           choices=("auto", "on", "off")),
    Option("no_resume", False, "measure everything afresh; by default finished probes are journaled so that a killed "
           "audit resumes where it stopped", flag=True),
    Option("sensitivity", None, "add a sensitivity section: how each verdict moves with the conventions, for the "
           "factors named, comma-separated: rules, beam, draws, size (free: they reuse the measured table) and dtype, "
           "seq-len (they measure again); given bare: " + DEFAULT_SENSITIVITY + " (docs/sensitivity.md)",
           _sensitivity, shown="off", bare=DEFAULT_SENSITIVITY),
    Option("json", None, "also write the audit JSON (schema swapkl/1) to this path"),
    Option("audit_json", None, "generate the tests from this audit JSON instead of computing the audit (e.g. the "
           "output of swapkl merge, or of a torchrun audit); --swapkl-model is then not needed", audit=False,
           shown="none: compute"),
    Option("summary", None, "pytest: append a Markdown summary of the run (verdict, suite numbers with intervals, "
           "most divergent pairs, removal sets) to this path, e.g. $GITHUB_STEP_SUMMARY", audit=False),
    Option("save", None, "pytest: store this audit as the baseline NAME (with machine and commit) under pytest's "
           "cache; `swapkl baselines` lists them", _baseline_name, audit=False),
    Option("compare", None, "pytest: compare with the saved baseline NAME; its case fails when Spearman(R, I) "
           "dropped by more than --swapkl-regression-tolerance", _baseline_name, audit=False),
    Option("regression_tolerance", 0.05, "pytest: allowed Spearman drop against --swapkl-compare's baseline",
           _non_negative, audit=False),
    Option("cache_clear", False, "recompute the audit even if the cache has it", flag=True, audit=False),
    Option("no_cache", False, "neither read nor write the audit cache", flag=True, audit=False),
)


# MODEL, said once for every face (swapkl audit, swapkl prune, pytest --swapkl-model)
MODEL_HELP = ("a checkpoint folder, a hub id (owner/name), a .gguf file, a named real model installed from the package "
              "registry (smollm2-135m, gemma3-270m; `swapkl models` lists them) or 'demo', the bundled model")

# The options that set the agreement rules' tolerances (`agreement.tolerances_from`): pytest's, and `swapkl report`'s
# for an audit JSON, which it judges as the plugin would.
TOLERANCE_OPTIONS = ("rank_tolerance", "log_ratio_tolerance", "min_spearman", "min_jaccard", "jaccard_k",
                     "max_ppl_increase", "max_cost_factor")


def audit_inputs(options: Any, models: Optional[list[str]] = None) -> list[tuple[str, Optional[str]]]:
    """What an audit of `options` reads, as the output check names it: MODEL (or each of `models`) and --data.

    Specs as given; `safe_files.check_outputs` keeps those that are local paths. `demo` is the bundled model and
    corpus, `hf:PATH` a local datasets folder when PATH exists."""
    package = os.path.dirname(os.path.abspath(__file__))
    found: list[tuple[str, Optional[str]]] = []
    for model in models if models is not None else [options.model]:
        found.append(("the model (MODEL)", os.path.join(package, "data", "demo_model") if model == "demo" else model))
    found.append(("the calibration data (--data)", _source_path(options.data, package)))
    heldout = getattr(options, "heldout", None)
    if heldout is not None:
        found.append(("the held-out data (--heldout)", _source_path(heldout, package)))
    return found


def _source_path(source: Any, package: str) -> Any:
    """Where a SOURCE spec lies on disk, if anywhere: demo is the bundled corpus, hf:PATH a local folder."""
    if source == "demo":
        return os.path.join(package, "data", "corpus")
    if isinstance(source, str) and source.startswith("hf:"):
        return source[len("hf:"):].split(":")[0]
    return source


def add_to_argparse(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = (),
                    only: Optional[tuple[str, ...]] = None) -> None:
    """The audit options as flags of `parser` (``only``: exactly these, e.g. the ones `swapkl prune` shares, or the
    tolerances `swapkl report` judges an audit JSON with)."""
    for option in OPTIONS:
        wanted = option.audit if only is None else option.name in only
        if not wanted or option.name in exclude:
            continue
        if option.flag:
            parser.add_argument(option.cli_flag, action="store_true", help=option.help_text)
        else:  # _Given records that the user chose the value, so that a contract fills only the rest
            bare = {} if option.bare is None else {"nargs": "?", "const": option.bare}  # argparse types a str const
            parser.add_argument(option.cli_flag, *option.alias_flags, default=option.default,
                                type=_argparse_type(option), choices=option.choices, help=option.help_text,
                                action=_Given, **bare)


_GIVEN = "_swapkl_given"  # the namespace attribute naming the options given on the command line


class _Given(argparse.Action):
    """Store the value and remember that the command line gave it."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        if option_string is not None and option_string != self.option_strings[0]:  # an old name (Option.aliases)
            renamed(option_string, self.option_strings[0])
        setattr(namespace, self.dest, values)
        setattr(namespace, _GIVEN, getattr(namespace, _GIVEN, frozenset()) | {self.dest})


def add_renamed_argument(parser: Any, flag: str, *old_flags: str, **kwargs: Any) -> None:
    """A command's own flag that had other names: the old ones still parse, with `renamed`'s notice."""
    parser.add_argument(flag, *old_flags, action=_Given, **kwargs)


def resolve_defaults(namespace: argparse.Namespace) -> argparse.Namespace:
    """Every option the command line left out takes its contract's value (--contract), where it sets one."""
    given = vars(namespace).pop(_GIVEN, frozenset())
    contract = getattr(namespace, "contract", None)
    declared = {option.name: option for option in OPTIONS}
    preset = contract_values(contract)
    for name, value in preset.items():
        if hasattr(namespace, name) and name not in given:
            setattr(namespace, name, _parse(declared[name], value,
                                            f"--contract {contract} sets --{name.replace('_', '-')}:"))
    if hasattr(namespace, "tokens") and "tokens" not in given and "tokens" not in preset:
        namespace.tokens = default_tokens(getattr(namespace, "model", None), getattr(namespace, "device", "auto"))
    return namespace


def default_tokens(model: Any, device: Any) -> int:
    """--tokens where nothing sets it: 8192, but ``CPU_TOKENS`` for a model other than the bundled demo on the
    CPU, where 8192 tokens of SmolLM2-135M's adjacent pairs take about 25 minutes of two cores."""
    if model in (None, "demo"):
        return DEFAULT_TOKENS
    if device in (None, "auto"):
        import torch  # only here: the CLI imports torch for the audit anyway

        on_cpu = not torch.cuda.is_available()
    else:
        on_cpu = str(device) == "cpu"
    return CPU_TOKENS if on_cpu else DEFAULT_TOKENS


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
                    help=f"MODEL: {MODEL_HELP}; runs the audit and generates its tests")
    parser.addini("swapkl_model", "default for --swapkl-model", default=None)
    for option in OPTIONS:
        dest = f"swapkl_{option.name}"
        flag = "--swapkl-" + option.name.replace("_", "-")
        if option.flag:
            group.addoption(flag, dest=dest, action="store_true", default=None, help=option.help_text)
            parser.addini(dest, f"default for {flag}", type="bool", default=option.default)
        elif option.repeated:
            group.addoption(flag, dest=dest, action="append", default=None, help=option.help_text)
            parser.addini(dest, f"default for {flag}, one per line", type="linelist", default=[])
        else:
            bare = {} if option.bare is None else {"nargs": "?", "const": option.bare}
            group.addoption(flag, dest=dest, default=None, choices=option.choices, help=option.help_text, **bare)
            parser.addini(dest, f"default for {flag}", default=None)
        for alias in option.aliases:  # read by `_pytest_value`, with a notice
            group.addoption("--swapkl-" + alias.replace("_", "-"), dest=f"swapkl_{alias}", default=None,
                            help=f"old name of {flag}")
            parser.addini(f"swapkl_{alias}", f"old name of swapkl_{option.name}", default=None)


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], bool):
        return f"{100 * value[0]:g}%" if value[1] else f"{value[0]:g}"
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def from_pytest(config: Any, overrides: Optional[dict[str, Any]] = None) -> argparse.Namespace:
    """Options from the command line, else the ini file, else the default; `overrides` (a marker) win.

    Every value goes through its option's converter, overrides too; a bad one raises a one-line InputError.
    """
    import pytest  # loaded already: only the plugin calls this

    overrides = _new_names(overrides or {})
    unknown = sorted(set(overrides) - {"model"} - {option.name for option in OPTIONS})
    if unknown:
        raise InputError(f"unknown swapkl option {', '.join(map(repr, unknown))} in a marker or swapkl_audit_for: "
                         f"use model or one of {', '.join(option.name for option in OPTIONS)}")
    values: dict[str, Any] = {"model": overrides.get("model") or config.getoption("swapkl_model")
                              or config.getini("swapkl_model")}
    contract = _given(config, overrides, next(option for option in OPTIONS if option.name == "contract"))
    preset = contract_values(contract)
    defaulted = set()
    for option in OPTIONS:
        flag = "--swapkl-" + option.name.replace("_", "-")
        if option.name in overrides:
            value, where = overrides[option.name], f"swapkl option {option.name}= (marker or swapkl_audit_for)"
        else:
            value, where = _pytest_value(config, option, pytest.UsageError)
        empty = isinstance(value, (str, list, tuple)) and len(value) == 0
        if (value is None or empty) and option.name in preset:
            values[option.name] = _parse(option, preset[option.name], f"--swapkl-contract {contract} sets {flag}:")
        elif value is None or empty or (option.flag and value is False and not option.default):
            values[option.name] = option.default
            defaulted.add(option.name)
        elif option.flag:
            values[option.name] = _switch(value, where)
        else:
            values[option.name] = _parse(option, value, where)
    if "tokens" in defaulted:
        values["tokens"] = default_tokens(values["model"], values.get("device"))
    return argparse.Namespace(**values)


def _new_names(overrides: dict[str, Any]) -> dict[str, Any]:
    """A marker's or swapkl_audit_for's options with old names (Option.aliases) under their new ones."""
    old_names = {alias: option.name for option in OPTIONS for alias in option.aliases}
    for old in set(overrides) & set(old_names):
        renamed(f"swapkl option {old}=", f"{old_names[old]}=")
        overrides = {**{k: v for k, v in overrides.items() if k != old}, old_names[old]: overrides[old]}
    return overrides


def _pytest_value(config: Any, option: Option, usage_error: type) -> tuple[Any, str]:
    """One option's raw value and where it came from: its --swapkl- flag, an old flag, the ini key, an old ini key
    (an old name gives a notice); None where none gives it."""
    flag = "--swapkl-" + option.name.replace("_", "-")
    value = config.getoption(f"swapkl_{option.name}")
    if value is not None:
        return value, f"{flag} (ini swapkl_{option.name})"
    for alias in option.aliases:
        value = config.getoption(f"swapkl_{alias}")
        if value is not None:
            old = "--swapkl-" + alias.replace("_", "-")
            renamed(old, flag)
            return value, old
    try:
        value = config.getini(f"swapkl_{option.name}")
    except (ValueError, usage_error) as error:  # pytest's check of a bool ini value
        raise InputError(f"ini swapkl_{option.name}: {error}: write true or false") from None
    if value is None or value == "":
        for alias in option.aliases:
            old_value = config.getini(f"swapkl_{alias}")
            if old_value:
                renamed(f"ini swapkl_{alias}", f"swapkl_{option.name}")
                return old_value, f"ini swapkl_{alias}"
    return value, f"{flag} (ini swapkl_{option.name})"


def _given(config: Any, overrides: dict[str, Any], option: Option) -> Any:
    """One option's value from a marker, the command line or the ini file, parsed; None where none gives it."""
    flag = "--swapkl-" + option.name.replace("_", "-")
    value, where = overrides.get(option.name), f"swapkl option {option.name}= (marker or swapkl_audit_for)"
    if value is None:
        value = config.getoption(f"swapkl_{option.name}") or config.getini(f"swapkl_{option.name}")
        where = f"{flag} (ini swapkl_{option.name})"
    return _parse(option, value, where) if value else None


def _switch(value: Any, where: str) -> bool:
    """A store_true option's value: a bool from pytest, or true/false (yes/no, 1/0) from a marker."""
    words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise InputError(f"{where} must be true or false, got {_quoted(str(value))}")


def _parse(option: Option, value: Any, where: str) -> Any:
    """A value from the command line, an ini file or a marker, converted as `swapkl audit` converts it."""
    if option.repeated and isinstance(value, (list, tuple)):  # each flag or ini line on its own
        return tuple(dict.fromkeys(part for item in value for part in _parse(option, item, where)))
    if option.kind is _fraction_or_count and isinstance(value, tuple) and len(value) == 2 \
            and isinstance(value[1], bool):  # already parsed, e.g. (0.25, True)
        _parse(option, repr(value[0]), where)  # a finite number >= 0
        return float(value[0]) + 0.0, value[1]
    if isinstance(value, str):
        text = value
    elif isinstance(value, os.PathLike):
        text = os.fspath(value)
    elif isinstance(value, (list, tuple)):
        text = ",".join(map(str, value))
    else:  # numbers as Python writes them: repr keeps every digit of a float
        text = repr(value)
    try:
        parsed = option.kind(text)
    except ValueError as error:
        raise InputError(f"{where} {error}") from None
    if option.choices and parsed not in option.choices:
        raise InputError(f"{where} must be one of {', '.join(option.choices)}, got {_quoted(str(parsed))}")
    return parsed
