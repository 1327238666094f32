"""An audit's settings, typed: one frozen dataclass per concern, built once from parsed options.

`options.py` declares and parses every option (CLI flags, `--swapkl-*` pytest options, ini keys) and
reports bad values in one line; :meth:`AuditSettings.of` turns the parsed options into these objects
once, filling what a face does not offer from the declared defaults, so nothing downstream needs a
``getattr(options, name, fallback)``. :func:`content_identity` is the one identity of an audit's
content that the resume journal, the plugin's cache and the shards all key on.
No torch here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Optional, Sequence

from .errors import InputError
from .options import OPTIONS

_DEFAULTS = {option.name: option.default for option in OPTIONS}


def _read(options: Any, name: str) -> Any:
    """The parsed value of option `name`, or its declared default where this face does not offer it."""
    return getattr(options, name, _DEFAULTS.get(name))


def _built(cls: type, options: Any) -> Any:
    return cls(**{field.name: _read(options, field.name) for field in fields(cls)})


@dataclass(frozen=True)
class InputSettings:
    """What the audit reads: the model and the calibration and held-out text, and where it runs."""

    model: Optional[str]
    revision: Optional[str]
    gguf_file: Optional[str]
    data: str
    heldout: Optional[str]
    heldout_tokens: Optional[int]
    heldout_window: Optional[int]  # None: the chunked evaluator (independent --seq-len sequences)
    heldout_stride: Optional[int]  # None: half the window
    heldout_words: Optional[int]
    tokens: int
    seq_len: int
    seed: int
    dtype: str
    device: str
    device_map: Optional[str]
    device_memory: Optional[str]
    allow_pickle: bool
    trust_remote_code: bool


    def heldout_evaluator(self) -> dict[str, Any]:
        """How held-out costs are measured: the chunked evaluator, or the sliding windows with their stride
        resolved. Options that shape windows without a window, or a stride beyond it, are one-line errors."""
        if self.heldout_window is None:
            if self.heldout_stride is not None or self.heldout_words is not None:
                flag = "--heldout-stride" if self.heldout_stride is not None else "--heldout-words"
                raise InputError(f"{flag} shapes the sliding-window evaluator: add --heldout-window W")
            return {"evaluator": "chunks", "tokens": self.heldout_tokens}
        stride = self.heldout_stride or max(self.heldout_window // 2, 1)
        if stride > self.heldout_window:
            raise InputError(f"--heldout-stride {stride} is longer than --heldout-window {self.heldout_window}: "
                             "tokens between windows would go unscored; use a stride of 1..W")
        return {"evaluator": "sliding-window", "window": self.heldout_window, "stride": stride,
                "words": self.heldout_words, "tokens": self.heldout_tokens}


@dataclass(frozen=True)
class EngineSettings:
    """How probes are measured. Every field but ``max_memory`` and ``threads`` can change a number in the last bits."""

    path: str = "auto"
    compile: str = "auto"
    batch_size: Optional[int] = None
    attention_type: str = "layer"
    max_memory: Optional[int] = None
    stack: Optional[int] = None
    threads: Optional[int] = None  # CPU threads (engine/threads.py); rounding aside, it changes no number
    positions: str = "all"  # the position contract (engine/reading.py)
    pads: str = "out"

    def measure_kwargs(self, batch_size: bool = True) -> dict[str, Any]:
        """The keyword arguments of `engine.measure` (and of everything that passes them on); ``batch_size=False``
        leaves the batch size out, for the searches and evaluators that take it as an argument of their own."""
        kwargs = {"path": self.path, "compile": self.compile, "attention_type": self.attention_type,
                  "memory_budget": self.max_memory, "stack": self.stack, "positions": self.positions,
                  "pads": self.pads}
        return {**kwargs, "batch_size": self.batch_size} if batch_size else kwargs

    def identity(self) -> dict[str, Any]:
        """What about the engine determines the numbers (a memory cap only changes the plan when no batch size
        is given, and the plan's batch size does not change a float32 number beyond the noise floor)."""
        return {"path": self.path, "compile": self.compile, "batch_size": self.batch_size,
                "attention_type": self.attention_type, "stack": self.stack, "positions": self.positions,
                "pads": self.pads}


@dataclass(frozen=True)
class StatisticsSettings:
    """How the numbers become intervals, ranks and verdicts."""

    replacement_reduce: str
    pair_rule: str  # with spacing and keep_boundary: how pair distances become removal sets (pair_rules.SetRule)
    spacing: int
    keep_boundary: int
    bootstrap: int
    seed: int
    precision: str
    adaptive_alpha: float
    noise_probes: int
    equivalence_margin: float = 0.20  # paired cost verdicts: TOST margin (relative) and p-value adjustment
    multiplicity: str = "holm"


@dataclass(frozen=True)
class PruningSettings:
    """The removal sets an audit validates on held-out text."""

    prune_k: int
    prune_methods: tuple[str, ...]
    prune_budget: tuple[str, ...]

    @property
    def reports_costs(self) -> bool:
        """Whether the audit measures a cost, which needs held-out text."""
        return bool(self.prune_k or self.prune_budget)


@dataclass(frozen=True)
class AuditSettings:
    inputs: InputSettings
    pairs: str
    engine: EngineSettings
    statistics: StatisticsSettings
    pruning: PruningSettings
    no_resume: bool
    averaging: bool = False  # the optional probe tables (audit/probe_tables.py)
    heads: Optional[str] = None
    contract: Optional[str] = None  # the preset the options came from (--contract); the options say the numbers
    sensitivity: tuple[str, ...] = ()  # --sensitivity's factors (analysis/sensitivity.py); () leaves it out

    @classmethod
    def of(cls, options: Any) -> "AuditSettings":
        """Settings from parsed options (an argparse namespace, the plugin's options); settings stay as they are."""
        if isinstance(options, cls):
            return options
        return cls(inputs=_built(InputSettings, options), pairs=_read(options, "pairs"),
                   engine=_built(EngineSettings, options), statistics=_built(StatisticsSettings, options),
                   pruning=PruningSettings(int(_read(options, "prune_k") or 0),
                                           tuple(_read(options, "prune_guides") or ()),
                                           tuple(_read(options, "prune_budget") or ())),
                   no_resume=bool(_read(options, "no_resume")), averaging=bool(_read(options, "averaging")),
                   heads=_read(options, "heads"), contract=_read(options, "contract"),
                   sensitivity=tuple(_read(options, "sensitivity") or ()))

    def identity(self) -> dict[str, Any]:
        """Every setting that determines an audit document's numbers (not where it runs or what it is called)."""
        inputs = self.inputs
        identity = {"pairs": self.pairs, "tokens": inputs.tokens, "seq_len": inputs.seq_len, "seed": inputs.seed,
                    "heldout": inputs.heldout, "heldout_tokens": inputs.heldout_tokens,
                    "engine": self.engine.identity(), "statistics": asdict(self.statistics),
                    "pruning": asdict(self.pruning), "averaging": self.averaging, "heads": self.heads}
        if self.sensitivity:  # a section of its own; without it, the identity stays as it was
            identity["sensitivity"] = list(self.sensitivity)
        if inputs.heldout_window is not None:  # windows change every cost; without them, the identity stays as it was
            identity["heldout_evaluator"] = inputs.heldout_evaluator()
        return identity


def content_identity(*, checkpoint: Any, tokens_sha256: str, probes: Sequence[Any], dtype: str, device_kind: str,
                     settings: dict[str, Any], versions: dict[str, str],
                     heldout_sha256: Optional[str] = None) -> str:
    """The sha256 (32 hex digits) of everything that determines a result: the checkpoint, the token ids, the
    probes, dtype, device kind (cuda:0 and cuda:3 give the same numbers), the settings that change numbers and
    the library versions. The journal, the cache and the shards each pass the settings their result depends on."""
    material = {
        "checkpoint": checkpoint,
        "tokens_sha256": tokens_sha256,
        "heldout_sha256": heldout_sha256,
        "probes": hashlib.sha256("\n".join(str(probe) for probe in probes).encode()).hexdigest(),
        "dtype": dtype,
        "device": device_kind,
        "settings": settings,
        "versions": versions,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:32]
