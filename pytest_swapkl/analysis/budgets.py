"""Budgets a user asserts about a pruning search, with the held-out intervals in the failure message.

    outcome = swapkl_audit.prune(guide="interchange", search="beam", objective="ppl", max_cost="10%")
    outcome.require(min_layers=4)  # "the interchange-guided beam removes at least 4 layers within +10% ppl"

The search grows its set while the objective's cost on the calibration data stays within the ceiling B; the
requirement then holds when it removed at least ``min_layers`` layers AND the set's held-out cost is within the
held-out ceiling (the same B, or for a relative "10%" 10% over the full model's held-out cost; its point
estimate, or with ``strict=True`` the upper end of its 95% interval). The message always gives the
held-out cost with its interval and the paired ratio to the full model with its interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..cases import layer_set_label
from ..console import number


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
                  seed: int = 0, batch_size: Optional[int] = None, engine_options: Optional[dict] = None
                  ) -> PruneOutcome:
    """One search under the ceiling ``max_cost`` ("10%" or an absolute cost), measured on the held-out ids."""
    from . import stats
    from .guided_removal import Data, evaluators, paired_ratio
    from .guides import measure_guides
    from .objectives import ceiling, parse_max_cost
    from .search import Settings, run_search

    data = Data(calibration_ids, heldout_ids, *(task.half(0), task.half(1)) if task is not None else (None, None))
    bound = parse_max_cost(max_cost)
    calibration = evaluators(model, data, [objective], n_layers, batch_size, engine_options, heldout=False)[objective]
    held = evaluators(model, data, [objective], n_layers, batch_size, engine_options, heldout=True)[objective]
    guides = measure_guides(model, calibration_ids, n_layers, [guide], batch_size=batch_size,
                            engine_options=engine_options)
    found = run_search(search, guides[guide], calibration, n_layers,
                       Settings(beam_width=beam_width, max_evaluations=max_evaluations, seed=seed),
                       ceiling=ceiling(bound, calibration))
    heldout = versus = None
    if found.layers:
        units, indices = held.units(found.layers), stats.bootstrap_indices(len(held.base_units()), 1000, seed)
        low, high = stats.interval(held.objective.resampled_costs(units, indices))
        heldout = {"cost": held.objective.cost(units), "low": low, "high": high}
        versus = None if objective == "kl" else paired_ratio(held.objective, units, held.base_units(), indices)
    return PruneOutcome(search, found.guide, objective, found.layers, max_cost, ceiling(bound, calibration),
                        found.cost, heldout, held.base_cost(), ceiling(bound, held), versus)
