"""Calibration objectives of a pruning search and the evaluator that measures candidate sets through the engine.

An objective turns what ``engine.measure`` returns for ``removal(S)`` (per-sequence KL to the full model and
per-sequence NLL) into a cost, lower is better, and into per-unit numbers that paired resampling draws
from (sequences for KL and perplexity, items for accuracy):

| objective | ids | cost | units resampled |
| --- | --- | --- | --- |
| ``kl`` | text | mean KL(P_full ‖ P_pruned), nats per token | per-sequence KL |
| ``ppl`` | text | exp(mean next-token NLL): SLEB's own calibration objective | per-sequence NLL |
| ``accuracy`` | multiple-choice task (``inputs/tasks.py``) | error rate, 1 - accuracy | per-item error 0/1 |
| ``lm-eval:TASK`` | an lm-evaluation-harness task (``lm_eval_objective.py``) | error rate | per-document error |

Each is one registered ``ObjectiveKind`` (``OBJECTIVES``); numpy and torch load only when a cost is computed,
so ``swapkl prune --help`` and the budgets read the names cheaply.

Every candidate set is one ``removal(S)`` probe; all the sets of one request go into ONE ``engine.measure``
call, so they share the base pass and common prefixes (a beam step is one call). Sets already measured on
the same ids are taken from a cache instead of being measured again; each search still counts them as its
own evaluations (``Spend``), so the numbers say what a search costs when run alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from .. import engine  # cheap: engine's names load their modules (and torch) on first use
from ..engine.probes import count_layer_passes, removal
from ..errors import InputError
from ..registry import Registry

if TYPE_CHECKING:
    import numpy as np
    import torch

LayerSet = tuple[int, ...]


class ObjectiveError(InputError):
    pass


@dataclass(frozen=True)
class ObjectiveKind:
    """One objective: what it measures on, its per-unit numbers and how their mean becomes its cost."""

    reads: str  # "text" (the calibration ids), "task" (the bundled multiple-choice task), "harness" (lm-eval)
    units: Optional[Callable[[Any, Any, Any], Any]]  # (kl, nll per unit, task) -> units; None: its own evaluator
    unit_name: str
    exponentiated: bool = False  # cost = exp(mean units), a perplexity; otherwise the mean
    relative_to_accuracy: bool = False  # --max-cost X% is X% of the full model's accuracy lost, not a cost increase


OBJECTIVES: Registry[ObjectiveKind] = Registry("objective")


def entry_name(name: str) -> str:
    """The registered name of an objective: "lm-eval:hellaswag" is an "lm-eval:TASK"."""
    family, colon, _ = name.partition(":")
    return f"{family}:TASK" if colon else name


def objective_kind(name: str) -> ObjectiveKind:
    return OBJECTIVES.get(entry_name(name))


OBJECTIVES.register("kl", ObjectiveKind("text", lambda kl, nll, task: kl, "nats"),
                    "mean KL(P_full || P_pruned) in nats per token, on text", __name__)
OBJECTIVES.register("ppl", ObjectiveKind("text", lambda kl, nll, task: nll, "perplexity", exponentiated=True),
                    "perplexity exp(mean next-token NLL) on text: SLEB's own objective", __name__)
OBJECTIVES.register("accuracy", ObjectiveKind("task", lambda kl, nll, task: 1.0 - task.correct(nll), "error rate",
                                              relative_to_accuracy=True),
                    "error rate on the bundled multiple-choice task (calibration half; the other half held out)",
                    __name__)
OBJECTIVES.register("lm-eval:TASK", ObjectiveKind("harness", None, "error rate"),  # lm_eval_objective.py
                    "error rate of an lm-evaluation-harness task (its documents are not split: not held out)",
                    __name__)


@dataclass(frozen=True)
class Objective:
    name: str  # a registered objective: kl | ppl | accuracy
    task: Optional[Any] = None  # the accuracy objective's items: an inputs.tasks.ChoiceTask (analysis/ reads no input)

    @property
    def kind(self) -> ObjectiveKind:
        return objective_kind(self.name)

    def units(self, kl: np.ndarray, nll: np.ndarray) -> np.ndarray:
        return self.kind.units(kl, nll, self.task)

    def cost(self, units: np.ndarray) -> float:
        mean = float(units.mean())
        return math.exp(min(mean, 700.0)) if self.kind.exponentiated else mean

    def resampled_costs(self, units: np.ndarray, indices: np.ndarray) -> np.ndarray:
        import numpy as np

        means = units[indices].mean(axis=1)
        return np.exp(np.minimum(means, 700.0)) if self.kind.exponentiated else means

    @property
    def unit_name(self) -> str:
        return self.kind.unit_name


@dataclass
class Spend:
    """What one search run asked for: distinct sets evaluated, layer passes per sequence and in all, calls."""

    evaluations: int = 0
    layer_passes: int = 0  # fast-path layer passes over all sequences, base pass of every call included
    calls: int = 0
    requested: set = field(default_factory=set)

    def to_json(self) -> dict:
        return {"evaluations": self.evaluations, "layer_passes": self.layer_passes, "measure_calls": self.calls}


class Evaluator:
    """Costs of layer sets under one objective on one set of ids, measured through the engine and cached."""

    def __init__(self, model: torch.nn.Module, input_ids: torch.Tensor, objective: Objective, n_layers: int,
                 batch_size: Optional[int] = None, engine_options: Optional[dict] = None,
                 groups: Optional[Sequence[int]] = None):
        self.model, self.input_ids, self.objective, self.n_layers = model, input_ids, objective, n_layers
        self._groups = groups  # the document of each sequence, where the ids' source knows it
        self.batch_size, self.engine_options = batch_size, dict(engine_options or {})
        self.measured: dict[LayerSet, tuple[np.ndarray, np.ndarray]] = {}  # set -> (kl, nll) per sequence
        self.base_nll: Optional[np.ndarray] = None

    def costs(self, sets: Sequence[LayerSet], spend: Optional[Spend] = None) -> list[float]:
        """The cost of every set (sorted tuples), in ONE measure call for those not measured yet."""
        sets = [tuple(sorted(s)) for s in sets]
        missing = [s for s in dict.fromkeys(sets) if s not in self.measured]
        if missing or self.base_nll is None:
            self._measure(missing)
        if spend is not None:
            new = [s for s in dict.fromkeys(sets) if s not in spend.requested]
            if new:
                spend.requested.update(new)
                spend.evaluations += len(new)
                spend.calls += 1
                _, fast = count_layer_passes([removal(s, self.n_layers) for s in new], self.n_layers)
                spend.layer_passes += fast * self.n_units
        return [self.objective.cost(self.units(s)) for s in sets]

    @property
    def n_units(self) -> int:
        """The resampling units the costs average over (here, the sequences)."""
        return len(self.input_ids)

    def _measure(self, missing: list[LayerSet]) -> None:
        """The base units and those of every set in ``missing``, in one engine call."""
        probes = [removal(s, self.n_layers) for s in missing]
        measurement = engine.measure(self.model, self.input_ids, probes, batch_size=self.batch_size,
                                     notice=lambda _line: None, **self.engine_options)
        self.base_nll = measurement.base_nll_per_seq
        for layers, probe in zip(missing, probes):
            self.measured[layers] = (measurement[probe].kl_per_seq, measurement[probe].nll_per_seq)

    def units(self, layers: LayerSet) -> np.ndarray:
        layers = tuple(sorted(layers))
        if layers not in self.measured:
            self.costs([layers])
        kl, nll = self.measured[layers]
        return self.objective.units(kl, nll)

    def base_cost(self) -> float:
        """The full model's cost (0 for KL)."""
        return self.objective.cost(self.base_units())

    @property
    def groups(self) -> Optional[np.ndarray]:
        """The work of each unit where known (the bundled task's items, sequences given ``groups``), for a
        bootstrap by work; else None."""
        import numpy as np

        groups = getattr(self, "_groups", None)  # subclasses (windows, lm-eval) set none
        if groups is not None:
            return np.asarray(groups)
        return getattr(self.objective.task, "documents", None)

    def base_units(self) -> np.ndarray:
        import numpy as np

        if self.base_nll is None:
            self.costs([])
        return self.objective.units(np.zeros_like(self.base_nll), self.base_nll)


def parse_objectives(text: str) -> list[str]:
    names = [part.strip().lower() for part in str(text).split(",") if part.strip()]
    unknown = [n for n in names if entry_name(n) not in OBJECTIVES]
    if not names or unknown:
        *first, last = OBJECTIVES
        raise ObjectiveError(f"--objective {text!r}: use {', '.join(first)} or {last}, comma-separated")
    return list(dict.fromkeys(names))


def parse_max_cost(text: str) -> tuple[float, bool]:
    """'0.2' is an absolute cost in the objective's units; '10%' a relative increase over the full model's cost
    (for accuracy: a relative loss of 10% of the full model's accuracy)."""
    text = str(text).strip()
    relative = text.endswith("%")
    try:
        value = float(text[:-1] if relative else text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ObjectiveError(f"--max-cost {text!r}: write a finite number >= 0 (a cost) or a percentage (10%)")
    return (value / 100 if relative else value), relative


def ceiling(max_cost: tuple[float, bool], evaluator: Evaluator) -> float:
    """The absolute cost ceiling B of --max-cost for this objective."""
    value, relative = max_cost
    if not relative:
        return value
    base = evaluator.base_cost()
    if objective_kind(evaluator.objective.name).relative_to_accuracy:  # X% of the full model's accuracy may be lost
        return 1.0 - (1.0 - base) * (1.0 - value)
    if base <= 0:
        raise ObjectiveError(f"--max-cost {100 * value:g}% is relative to the full model's "
                             f"{evaluator.objective.name}, which is 0: give an absolute cost instead")
    return base * (1 + value)
