"""Guides: per-layer scores that propose and order the layers a search removes (lower = more removable).

| guide | score of layer l | measured on |
| --- | --- | --- |
| ``replacement`` | smallest R (mean of both directions) of an adjacent pair containing l | engine, calibration text |
| ``interchange`` | smallest I of an adjacent pair containing l | engine, calibration text |
| ``removal`` | KL(full ‖ model without l) | engine, calibration text |
| ``block_influence`` | ShortGPT's 1 - mean cos(h_l, h_l+1) | hidden states, calibration text |
| ``angular`` | Gromov et al.'s arccos(cos(h_l, h_l+1)) / pi, mean over tokens | hidden states |
| ``none`` | the objective's own cost of removing l alone | the search's evaluator |

The one-shot sets of the pair guides can also be read by the audit's pair walks (``pair_rule``: ``later`` /
``earlier``, from ``analysis/pruning.py``), and ``angular``'s one-shot set is Gromov et al.'s best block
of k consecutive layers; every other one-shot set is the k lowest scores (ties by layer index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from .. import engine
from ..engine.probes import audit_probes, count_layer_passes, interchange, removal, replacement
from ..errors import InputError
from . import pruning

GUIDES = ("replacement", "interchange", "removal", "block_influence", "angular", "none")
PAIR_GUIDES = ("replacement", "interchange")
PAIR_RULES = ("layer_min", "later", "earlier")


class GuideError(InputError):
    pass


@dataclass
class Guide:
    name: str
    scores: Optional[np.ndarray]  # per layer; None for "none" until a search fills it from its objective
    one_shot_rule: Callable[[int], list[int]]  # k -> the guide's own set of k layers
    layer_passes: int = 0  # what measuring the scores cost (all sequences)

    def order(self, candidates: list[int]) -> list[int]:
        """Candidates from most to least removable; without scores (guide none) in index order."""
        if self.scores is None:
            return sorted(candidates)
        return sorted(candidates, key=lambda layer: (self.scores[layer], layer))


def parse_guides(text: str) -> list[str]:
    names = list(dict.fromkeys(part.strip().lower() for part in str(text).split(",") if part.strip()))
    unknown = [n for n in names if n not in GUIDES]
    if not names or unknown:
        raise GuideError(f"--guide {text!r}: use {', '.join(GUIDES)}, comma-separated")
    return names


def measure_guides(model: torch.nn.Module, input_ids: torch.Tensor, n_layers: int, names: list[str],
                   pair_rule: str = "layer_min", batch_size: Optional[int] = None,
                   engine_options: Optional[dict] = None) -> dict[str, Guide]:
    """Every named guide's scores, from at most one engine call and one hidden-state pass."""
    if pair_rule not in PAIR_RULES:
        raise GuideError(f"--pair-rule {pair_rule!r}: use one of {', '.join(PAIR_RULES)}")
    options = dict(engine_options or {})
    guides: dict[str, Guide] = {}
    pairs = [(i, i + 1) for i in range(n_layers - 1)]
    wants_probes = [n for n in names if n in PAIR_GUIDES + ("removal",)]
    if wants_probes:
        probes = audit_probes(pairs, n_layers) if set(wants_probes) & set(PAIR_GUIDES) else \
            [removal([layer], n_layers) for layer in range(n_layers)]
        measurement = engine.measure(model, input_ids, probes, batch_size=batch_size, notice=lambda _line: None,
                                     **options)
        passes = count_layer_passes(probes, n_layers)[1] * len(input_ids)
        distances = {
            "replacement": [(measurement.kl(replacement(i, j, n_layers)) + measurement.kl(replacement(j, i, n_layers)))
                            / 2 for i, j in pairs],
            "interchange": [measurement.kl(interchange(i, j, n_layers)) for i, j in pairs],
        } if set(wants_probes) & set(PAIR_GUIDES) else {}
        for name in wants_probes:
            if name == "removal":
                scores = np.array([measurement.kl(removal([layer], n_layers)) for layer in range(n_layers)])
                guides[name] = Guide(name, scores, _lowest(scores), passes)
            else:
                guides[name] = _pair_guide(name, pairs, distances[name], n_layers, pair_rule, passes)
    if {"block_influence", "angular"} & set(names):
        states = engine.layer_inputs(model, input_ids, batch_size)
        passes = n_layers * len(input_ids)
        if "block_influence" in names:
            scores = pruning.block_influence(states)
            guides["block_influence"] = Guide("block_influence", scores, _lowest(scores), passes)
        if "angular" in names:
            blocks = {k: pruning.angular_distances(states, k) for k in range(1, n_layers)}
            guides["angular"] = Guide("angular", blocks[1], lambda k: pruning.best_block(blocks[k], k), passes)
        del states
    if "none" in names:
        guides["none"] = Guide("none", None, lambda k: [])
    return {name: guides[name] for name in names}


def _lowest(scores: np.ndarray) -> Callable[[int], list[int]]:
    return lambda k: pruning.lowest_k(dict(enumerate(scores.tolist())), k)


def _pair_guide(name: str, pairs: list[tuple[int, int]], distances: list[float], n_layers: int, pair_rule: str,
                passes: int) -> Guide:
    per_layer = pruning.layer_min_scores(pairs, distances)
    scores = np.array([per_layer[layer] for layer in range(n_layers)])
    if pair_rule == "layer_min":
        rule = _lowest(scores)
    else:
        def rule(k: int) -> list[int]:
            return pruning.pair_rule_set(pairs, distances, k, pair_rule)
    return Guide(name, scores, rule, passes)
