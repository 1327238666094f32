"""Budgets a user asserts about a pruning search, with the held-out intervals in the failure message.

    outcome = swapkl_audit.prune(guide="interchange", search="beam", objective="ppl", max_cost="10%")
    outcome.require(min_layers=4)  # "the interchange-guided beam removes at least 4 layers within +10% ppl"

The search grows its set while the objective's cost on the calibration data stays within the ceiling B; the
requirement then holds when it removed at least ``min_layers`` layers AND the set's held-out cost is within the
held-out ceiling (the same B, or for a relative "10%" 10% over the full model's held-out cost; its point
estimate, or with ``strict=True`` the upper end of its 95% interval). The message always gives the
held-out cost with its interval and the paired ratio to the full model with its interval.

The plugin generates the same assertion from ``--swapkl-prune-budget GUIDE:SEARCH:OBJECTIVE:MAX_COST:MIN_LAYERS``
(`BudgetSpec`): the audit runs `runner.budget_outcome` once per budget and stores `outcome_record` in its
document; the case rebuilds the outcome (`outcome_from_record`) and judges it with `PruneOutcome.require`.

No torch or numpy at import, nor when a budget is parsed: the option parser reads `parse_budget` when pytest
starts, and the names come from the registries (`search.SEARCHES`, `guides.GUIDES`, `objectives.OBJECTIVES`),
whose modules load numpy and torch only when they measure.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Optional

from ..cases import layer_set_label
from ..console import number
from .guides import GUIDES
from .objectives import OBJECTIVES
from .search import SEARCHES

NO_GUIDE = "-"  # the guide field of a search that reads none
BUDGET_GRAMMAR = "GUIDE:SEARCH:OBJECTIVE:MAX_COST:MIN_LAYERS[:strict], e.g. interchange:beam:ppl:10%:4"


class BudgetError(ValueError):
    pass


@dataclass(frozen=True)
class BudgetSpec:
    """One ``--swapkl-prune-budget``: "the GUIDE-guided SEARCH removes at least MIN_LAYERS layers within
    MAX_COST of OBJECTIVE" (``strict``: the held-out cost's upper 95% end must be within, not its estimate)."""

    guide: str  # a guide name, or "-" for a search that reads none
    search: str
    objective: str
    max_cost: str  # as written, once checked: "10%" relative, "0.2" absolute
    min_layers: int
    strict: bool = False

    def __str__(self) -> str:
        return ":".join([self.guide, self.search, self.objective, self.max_cost, str(self.min_layers)]
                        + ["strict"] * self.strict)

    @property
    def label(self) -> str:
        """The case parameter: interchange-beam-ppl-10%-4 (the spec with - for :; greedy-kl-0.2-2 unguided)."""
        text = str(self)
        return (text[len(NO_GUIDE) + 1:] if self.guide == NO_GUIDE else text).replace(":", "-")

    @property
    def guide_name(self) -> str:
        """What `guides.measure_guides` is asked for ("none" for a search that reads no guide)."""
        return "none" if self.guide == NO_GUIDE else self.guide


def _shown(text: str) -> str:
    """The input as a message shows it: quoted, on one line, long inputs cut short (as options.py does)."""
    return repr(text) if len(text) <= 40 else f"{text[:24]!r}... ({len(text)} characters)"


def _refuse(text: str, problem: str) -> BudgetError:
    return BudgetError(f"budget {_shown(text)}: {problem}; write {BUDGET_GRAMMAR}")


def _one_of(value: str, known: list[str], what: str, text: str) -> str:
    if value not in known:
        raise _refuse(text, f"{what} {_shown(value)} is not one of {', '.join(known)}")
    return value


def _budget_objectives() -> list[str]:
    """The registered objectives a budget can name: its fields are split on ":", so not lm-eval:TASK."""
    return [name for name in OBJECTIVES if ":" not in name]


def parse_budget(text: str) -> BudgetSpec:
    """A budget from its text, or a one-line BudgetError that names the field and the fix."""
    text = str(text).strip()
    fields = [part.strip() for part in text.split(":")]
    strict = len(fields) == 6 and fields[5].lower() == "strict"
    if len(fields) == 6 and not strict:
        raise _refuse(text, f"its sixth field {_shown(fields[5])} is not strict")
    if len(fields) not in (5, 6):
        raise _refuse(text, f"it has {len(fields)} field{'s' * (len(fields) != 1)}, not 5")
    guide, search, objective = (field.lower() for field in fields[:3])
    _one_of(search, SEARCHES.names(), "search", text)
    if SEARCHES.get(search).reads_guide:
        _one_of(guide, GUIDES.names(), "guide", text)
    elif guide not in (NO_GUIDE, "none"):
        raise _refuse(text, f"search {search} reads no guide, so the guide field must be {NO_GUIDE}, not "
                            f"{_shown(fields[0])}")
    else:
        guide = NO_GUIDE
    _one_of(objective, _budget_objectives(), "objective", text)
    max_cost = fields[3].replace(" ", "")
    try:
        value = float(max_cost[:-1] if max_cost.endswith("%") else max_cost)
    except ValueError:
        value = math.nan
    if not max_cost.isascii() or not math.isfinite(value) or value < 0:
        raise _refuse(text, f"max cost {_shown(fields[3])} is not a finite number >= 0 (a cost) or a percentage "
                            "(10%)")
    if not (fields[4].isascii() and fields[4].isdigit() and len(fields[4]) <= 6 and int(fields[4]) >= 1):
        raise _refuse(text, f"min layers {_shown(fields[4])} is not a whole number >= 1")
    return BudgetSpec(guide, search, objective, max_cost, int(fields[4]), strict)


@dataclass(frozen=True)
class PruneOutcome:
    search: str
    guide: str
    objective: str
    layers: tuple[int, ...]
    max_cost: str  # as the user wrote it: "10%", "0.2"
    ceiling: float  # the absolute B on the calibration data
    calibration_cost: float
    heldout: Optional[dict]  # {"cost", "low", "high"} under the objective, None when nothing was removed
    heldout_base: float  # the full model's held-out cost
    heldout_ceiling: float  # B on the held-out data: the same B, or for "10%" 10% over the held-out full model
    versus_full: Optional[dict]  # paired ratio to the full model (guided_removal.paired_ratio), None for kl
    # the set's and the full model's held-out cost per unit with the bootstrap draws: heldout and versus_full recompute
    # from them (None in files before them, or when nothing was removed)
    heldout_units: Optional[dict] = None

    @property
    def k(self) -> int:
        return len(self.layers)

    def describe(self) -> str:
        who = self.search if self.guide == "-" else f"{self.guide}-guided {self.search}"
        text = (f"{who} removed {self.k} layer{'s' * (self.k != 1)} {layer_set_label(list(self.layers))} within "
                f"{self.objective} {self.max_cost} (ceiling B = {number(self.ceiling)} on the calibration data, "
                f"its cost there {number(self.calibration_cost)})")
        if self.heldout is not None:
            text += (f"; held-out {self.objective} {number(self.heldout['cost'])} [95% {number(self.heldout['low'])}, "
                     f"{number(self.heldout['high'])}], full model {number(self.heldout_base)}")
        ratio = self.versus_full or {}
        if ratio.get("ratio") is not None and ratio.get("ratio_low") is not None:
            text += (f", ratio to the full model {ratio['ratio']:.3f} [paired 95% {ratio['ratio_low']:.3f}, "
                     f"{ratio['ratio_high']:.3f}]")
        return text

    def failures(self, min_layers: int, strict: bool = False) -> list[str]:
        problems = []
        if self.k < min_layers:
            problems.append(f"asked for at least {min_layers} layers")
        if self.heldout is not None:
            held = self.heldout["high"] if strict else self.heldout["cost"]
            if held > self.heldout_ceiling:
                problems.append(f"held-out {self.objective} {'(upper 95%) ' * strict}{number(held)} is above "
                                f"its ceiling {number(self.heldout_ceiling)}")
        return problems

    def require(self, min_layers: int, strict: bool = False) -> "PruneOutcome":
        problems = self.failures(min_layers, strict)
        if problems:
            raise AssertionError(f"{self.describe()}: {'; '.join(problems)}")
        return self


def prune_outcome(model, n_layers: int, calibration_ids, heldout_ids, task, *, guide: str, search: str,
                  objective: str, max_cost: str, beam_width: int = 4, max_evaluations: Optional[int] = None,
                  seed: int = 0, batch_size: Optional[int] = None, engine_options: Optional[dict] = None,
                  heldout_groups=None) -> PruneOutcome:
    """One search under the ceiling ``max_cost`` ("10%" or an absolute cost), measured on the held-out ids (or, for
    a text objective, by the sliding windows of a `sliding_window.WindowedHeldout`). ``heldout_groups``, the
    document of each held-out sequence, makes the held-out intervals resample documents."""
    from . import stats
    from .guided_removal import Data, evaluators, paired_ratio
    from .guides import measure_guides
    from .objectives import Objective, ceiling, objective_kind, parse_max_cost
    from .paired import rounded
    from .search import Settings, run_search
    from .sliding_window import WindowedHeldout

    windows = heldout_ids if isinstance(heldout_ids, WindowedHeldout) else None
    if windows is not None:
        heldout_ids = windows.input_ids[None]
    data = Data(calibration_ids, heldout_ids, *(task.half(0), task.half(1)) if task is not None else (None, None),
                heldout_groups=None if windows is not None else heldout_groups)
    bound = parse_max_cost(max_cost)
    calibration = evaluators(model, data, [objective], n_layers, batch_size, engine_options, heldout=False)[objective]
    if windows is not None and objective_kind(objective).reads == "text":
        held = windows.evaluator(model, Objective(objective), n_layers,
                                 (engine_options or {}).get("attention_type", "layer"))
    else:
        held = evaluators(model, data, [objective], n_layers, batch_size, engine_options, heldout=True)[objective]
    guides = measure_guides(model, calibration_ids, n_layers, [guide], batch_size=batch_size,
                            engine_options=engine_options)
    found = run_search(search, guides[guide], calibration, n_layers,
                       Settings(beam_width=beam_width, max_evaluations=max_evaluations, seed=seed),
                       ceiling=ceiling(bound, calibration))
    heldout = versus = per_unit = None
    if found.layers:
        units = held.units(found.layers)
        indices = stats.bootstrap_indices(len(units), 1000, seed, groups=held.groups)  # items by their work
        low, high = stats.interval(held.objective.resampled_costs(units, indices))
        heldout = {"cost": held.objective.cost(units), "low": low, "high": high}
        versus = None if objective == "kl" else paired_ratio(held.objective, units, held.base_units(), indices)
        per_unit = {"set": rounded(units), "full": rounded(held.base_units()),
                    "bootstrap": {"n_resamples": 1000, "seed": seed}}
    return PruneOutcome(search, found.guide, objective, found.layers, max_cost, ceiling(bound, calibration),
                        found.cost, heldout, held.base_cost(), ceiling(bound, held), versus, per_unit)


def outcome_record(spec: BudgetSpec, outcome: PruneOutcome) -> dict:
    """One budget's entry in the audit JSON's ``prune_budgets``: the spec, the outcome and its verdict."""
    problems = outcome.failures(spec.min_layers, spec.strict)
    return {"spec": str(spec), "min_layers": spec.min_layers, "strict": spec.strict, "passed": not problems,
            "problems": problems, "outcome": {**asdict(outcome), "layers": list(outcome.layers)}}


def outcome_from_record(record: dict) -> PruneOutcome:
    """The outcome `outcome_record` stored, to judge and describe as the fixture does."""
    stored = record["outcome"]
    values = {field.name: stored.get(field.name) for field in dataclasses.fields(PruneOutcome)}
    return PruneOutcome(**{**values, "layers": tuple(values["layers"])})
