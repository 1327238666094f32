"""Guides: per-layer scores that propose and order the layers a search removes (lower = more removable).

| guide | score of layer l | measured on |
| --- | --- | --- |
| ``replacement`` | smallest R (both directions reduced, max by default) of an adjacent pair containing l | engine |
| ``interchange`` | smallest I of an adjacent pair containing l | engine, calibration text |
| ``removal`` | KL(full ‖ model without l) | engine, calibration text |
| ``block_influence`` | ShortGPT's 1 - mean cos(h_l, h_l+1) | hidden states, calibration text |
| ``angular`` | Gromov et al.'s arccos(cos(h_l, h_l+1)) / pi, mean over tokens | hidden states |
| ``none`` | the objective's own cost of removing l alone | the search's evaluator |

The one-shot sets of the pair guides are read by a pair rule (``pair_rule``, a ``pair_rules.SetRule``;
default the paper's min-partner with spacing 1), and ``angular``'s one-shot set is Gromov et al.'s best block
of k consecutive layers; every other one-shot set is the k lowest scores (ties by layer index).

Each guide is one registered ``GuideKind`` (``GUIDES``): what its scores are measured from and how they are
read from that measurement. ``measure_guides`` makes each measurement once for all the guides that read it.
numpy and torch load only when guides are measured, so the names are cheap to read (``swapkl prune --help``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from .. import engine  # cheap: engine's names load their modules (and torch) on first use
from ..engine.probes import audit_probes, count_layer_passes, interchange, removal, replacement
from ..errors import InputError
from ..registry import Registry
from .pair_rules import SetRule, layer_min_scores, lowest_k

if TYPE_CHECKING:
    import numpy as np
    import torch

# What a guide's scores are measured from; guides that read one source share its measurement.
PAIR_PROBES, REMOVAL_PROBES, HIDDEN_STATES, OBJECTIVE = "pair probes", "removal probes", "hidden states", "objective"


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


@dataclass
class Measured:
    """What the wanted guides read: the engine's measurement of their probes, the hidden states, the setting."""

    n_layers: int
    pairs: list[tuple[int, int]]
    pair_rule: SetRule
    replacement_reduce: str = "max"  # how the replacement guide's R combines both directions (stats.REDUCERS)
    measurement: Any = None  # engine.Measurement of the pair (or removal) probes
    states: Any = None  # engine.layer_inputs: the hidden state entering every slot, then the last output
    passes: dict = field(default_factory=dict)  # source -> layer passes it cost (all sequences)


@dataclass(frozen=True)
class GuideKind:
    """One guide: the source its scores are measured from, and how they are read from it."""

    reads: str  # PAIR_PROBES, REMOVAL_PROBES, HIDDEN_STATES or OBJECTIVE
    build: Callable[[str, Measured], Guide]

    @property
    def protocol(self) -> bool:
        """A swap protocol's guide (its scores read pair distances)."""
        return self.reads == PAIR_PROBES

    @property
    def scored(self) -> bool:
        """Has scores of its own (guide none borrows the search's objective)."""
        return self.reads != OBJECTIVE


GUIDES: Registry[GuideKind] = Registry("guide")


def _guide(name: str, reads: str, summary: str) -> Callable:
    def register(build: Callable[[str, Measured], Guide]) -> Callable:
        GUIDES.register(name, GuideKind(reads, build), summary, __name__)
        return build
    return register


def parse_guides(text: str) -> list[str]:
    names = list(dict.fromkeys(part.strip().lower() for part in str(text).split(",") if part.strip()))
    unknown = [n for n in names if n not in GUIDES]
    if not names or unknown:
        raise GuideError(f"--guide {text!r}: use {', '.join(GUIDES)}, comma-separated")
    return names


def measure_guides(model: torch.nn.Module, input_ids: torch.Tensor, n_layers: int, names: list[str],
                   pair_rule: Any = SetRule(), batch_size: Optional[int] = None,
                   engine_options: Optional[dict] = None, replacement_reduce: str = "max") -> dict[str, Guide]:
    """Every named guide's scores, from at most one engine call and one hidden-state pass. ``pair_rule``: a
    ``SetRule`` or a registered rule's name."""
    try:
        rule = SetRule.of(pair_rule)
    except ValueError as error:  # UnknownNameError included: one line naming the known rules
        raise GuideError(f"--pair-rule {pair_rule!r}: {error}") from None
    kinds = {name: GUIDES.get(name) for name in names}
    sources = {kind.reads for kind in kinds.values()}
    measured = Measured(n_layers, [(i, i + 1) for i in range(n_layers - 1)], rule, replacement_reduce)
    if sources & {PAIR_PROBES, REMOVAL_PROBES}:
        # the pair probes of an audit hold every single-layer removal too
        probes = audit_probes(measured.pairs, n_layers) if PAIR_PROBES in sources else \
            [removal([layer], n_layers) for layer in range(n_layers)]
        measured.measurement = engine.measure(model, input_ids, probes, batch_size=batch_size,
                                              notice=lambda _line: None, **dict(engine_options or {}))
        passes = count_layer_passes(probes, n_layers)[1] * len(input_ids)
        measured.passes.update({PAIR_PROBES: passes, REMOVAL_PROBES: passes})
    if HIDDEN_STATES in sources:
        measured.states = engine.layer_inputs(model, input_ids, batch_size)
        measured.passes[HIDDEN_STATES] = n_layers * len(input_ids)
    guides = {}
    for name, kind in kinds.items():
        guides[name] = kind.build(name, measured)
        guides[name].layer_passes = measured.passes.get(kind.reads, 0)
    measured.states = None  # free the hidden states before the searches run
    return guides


def _lowest(scores: np.ndarray) -> Callable[[int], list[int]]:
    return lambda k: lowest_k(dict(enumerate(scores.tolist())), k)


def _pair_guide(name: str, distances: list[float], measured: Measured) -> Guide:
    import numpy as np

    per_layer = layer_min_scores(measured.pairs, distances)
    scores = np.array([per_layer[layer] for layer in range(measured.n_layers)])
    rule, pairs, n = measured.pair_rule, measured.pairs, measured.n_layers  # not `measured`: it holds hidden states
    return Guide(name, scores, lambda k: rule.choose(pairs, distances, k, n))


@_guide("replacement", PAIR_PROBES, "smallest R (both directions reduced: max, Definition 1, unless "
        "--replacement-reduce says otherwise) of an adjacent pair containing the layer")
def _replacement(name: str, measured: Measured) -> Guide:
    from .stats import REDUCERS  # numpy: only when guides are measured

    kl, n, reduce = measured.measurement.kl, measured.n_layers, REDUCERS[measured.replacement_reduce]
    return _pair_guide(name, [float(reduce(kl(replacement(i, j, n)), kl(replacement(j, i, n))))
                              for i, j in measured.pairs], measured)


@_guide("interchange", PAIR_PROBES, "smallest I of an adjacent pair containing the layer")
def _interchange(name: str, measured: Measured) -> Guide:
    n = measured.n_layers
    return _pair_guide(name, [measured.measurement.kl(interchange(i, j, n)) for i, j in measured.pairs], measured)


@_guide("removal", REMOVAL_PROBES, "KL(full || model without the layer)")
def _removal(name: str, measured: Measured) -> Guide:
    import numpy as np

    n = measured.n_layers
    scores = np.array([measured.measurement.kl(removal([layer], n)) for layer in range(n)])
    return Guide(name, scores, _lowest(scores))


@_guide("block_influence", HIDDEN_STATES, "ShortGPT's Block Influence, 1 - mean cos(h_l, h_l+1)")
def _block_influence(name: str, measured: Measured) -> Guide:
    from . import pruning

    scores = pruning.block_influence(measured.states)
    return Guide(name, scores, _lowest(scores))


@_guide("angular", HIDDEN_STATES, "Gromov et al.'s angular distance arccos(cos(h_l, h_l+1)) / pi; one-shot: the "
        "best block of k consecutive layers")
def _angular(name: str, measured: Measured) -> Guide:
    from . import pruning

    blocks = {k: pruning.angular_distances(measured.states, k) for k in range(1, measured.n_layers)}
    return Guide(name, blocks[1], lambda k: pruning.best_block(blocks[k], k))


@_guide("none", OBJECTIVE, "no guide: the objective's own cost of removing each layer alone")
def _none(name: str, measured: Measured) -> Guide:
    return Guide(name, None, lambda k: [])
