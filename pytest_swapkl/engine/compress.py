"""Compression actions made real: a layer-pair set acted on in a copy of the model whose config says what it runs.

    pairs = pairs_for_layers([5, 9], n_layers=12)      # [(4, 5), (8, 9)]: each given-up layer with a kept partner
    acted = acted_copy(model, "share", pairs)           # slots 5 and 9 run copies of layers 4 and 8
    costs = action_costs(model, acted, input_ids)       # per-sequence KL(full || acted) and NLL, reference formulas

A pair ``(keep, give)`` names a layer that stays (``keep``) and one whose own weights go (``give``):

| action | slot ``keep`` runs | slot ``give`` | depth |
| --- | --- | --- | --- |
| ``remove`` | layer ``keep`` | dropped | N - k |
| ``share`` | layer ``keep`` | a real copy of layer ``keep`` (the paper's weight sharing, weight_sharing_test.py) | N |
| ``merge`` | the mean of ``keep`` and every ``give`` paired with it | dropped | N - k |

``merge`` is the paper's LaCo-style collapse (laco_sleb_baselines.py: slot a runs the average of layers a and b,
slot b removed), not LaCo's own RDSC sum of parameter differences; a group (``keep`` with several ``give``) is
one equal-weight mean, not a chain of pairwise averages. A slot keeps the attention type of the layer whose
weights it runs (``keep``: the anchor), as the guide's reference semantics do.

The saved config is rewritten with the slots: ``num_hidden_layers``, and every per-layer array (a list as long
as the layer count: ``layer_types``, Llama-4's ``no_rope_layers`` ...) read at each slot's source layer; layer
index lists (``mlp_only_layers``) renumbered; every attention module's ``layer_idx`` (the KV cache's index)
set to its slot. So ``from_pretrained`` builds the acted model with no custom code.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import InputError
from .adapters import find_layer_list

ACTIONS = ("remove", "share", "merge")
INDEX_LISTS = ("mlp_only_layers",)  # config lists of layer indices (not per-layer values): renumbered
# lists that are never per-layer, however long: token ids and labels
NOT_PER_LAYER = frozenset({"architectures", "bos_token_id", "eos_token_id", "pad_token_id", "bad_words_ids",
                           "suppress_tokens", "begin_suppress_tokens", "forced_decoder_ids"})


class ActionError(InputError, ValueError):
    """A pair set that the action cannot carry out (one line)."""


def pairs_for_layers(layers: Sequence[int], n_layers: int) -> list[tuple[int, int]]:
    """A searched set of layers to give up, as pairs: each with the nearest kept layer below it (the paper shares
    and merges adjacent pairs, the earlier layer kept), or above it where none is kept below."""
    given = set(int(layer) for layer in layers)
    kept = [layer for layer in range(n_layers) if layer not in given]
    if not kept:
        raise ActionError(f"cannot give up layers {sorted(given)} of {n_layers}: at least one must stay")
    pairs = []
    for layer in sorted(given):
        below = [k for k in kept if k < layer]
        pairs.append((below[-1] if below else min(kept), layer))
    return pairs


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """``KEEP-GIVE[,KEEP-GIVE...]`` as pairs of ints (checked against the model later, by ``check_pairs``)."""
    pairs = []
    for part in str(text).split(","):
        keep, dash, give = part.strip().partition("-")
        if not dash or not keep.strip().isdigit() or not give.strip().isdigit():
            raise ActionError(f"--action-pairs {text!r}: write KEEP-GIVE pairs of layer numbers, comma-separated "
                              "(e.g. 4-5,14-15)")
        pairs.append((int(keep), int(give)))
    return pairs


def check_pairs(action: str, pairs: Sequence[tuple[int, int]], n_layers: int) -> None:
    """One-line ``ActionError`` for a pair set the action cannot carry out."""
    if action not in ACTIONS:
        raise ActionError(f"--action {action!r}: use {', '.join(ACTIONS)}")
    if not pairs:
        raise ActionError(f"--action {action}: no pair to act on")
    for keep, give in pairs:
        for layer in (keep, give):
            if not 0 <= layer < n_layers:
                raise ActionError(f"--action {action} {keep}-{give}: layer {layer} is out of range (the model has "
                                  f"layers 0..{n_layers - 1})")
        if keep == give:
            raise ActionError(f"--action {action} {keep}-{give}: a layer cannot {action} with itself; name two "
                              "different layers")
    gives = [give for _, give in pairs]
    repeated = sorted({give for give in gives if gives.count(give) > 1})
    if repeated:
        raise ActionError(f"--action {action}: layer {repeated[0]} is given up twice; name it in one pair")
    both = sorted(set(gives) & {keep for keep, _ in pairs})
    if both:
        raise ActionError(f"--action {action}: layer {both[0]} is kept in one pair and given up in another; "
                          "pair it once")


def slot_sources(action: str, pairs: Sequence[tuple[int, int]], n_layers: int) -> list[int]:
    """The layer each slot of the acted model takes its weights (and attention type) from: the anchor layer."""
    given = {give: keep for keep, give in pairs}
    if action == "share":
        return [given.get(slot, slot) for slot in range(n_layers)]
    return [layer for layer in range(n_layers) if layer not in given]


def acted_copy(model: nn.Module, action: str, pairs: Sequence[tuple[int, int]]) -> nn.Module:
    """A deep copy of ``model`` with the action carried out on ``pairs``; the original is left as it was."""
    owner, attribute = find_layer_list(model)
    n_layers = len(getattr(owner, attribute))
    check_pairs(action, pairs, n_layers)
    sources = slot_sources(action, pairs, n_layers)
    acted = copy.deepcopy(model)
    owner, _ = find_layer_list(acted)
    layers = getattr(owner, attribute)
    if action == "merge":
        groups: dict[int, list[int]] = {}
        for keep, give in pairs:
            groups.setdefault(keep, [keep]).append(give)
        for keep, members in groups.items():
            _load_mean(layers[keep], [layers[member] for member in members])
    # a copy per slot (never one module at two slots): every saved tensor is its own, as safetensors requires
    slots = [layers[source] if sources.index(source) == slot else copy.deepcopy(layers[source])
             for slot, source in enumerate(sources)]
    setattr(owner, attribute, nn.ModuleList(slots))
    for config in {id(c): c for c in (owner.config, acted.config, _text_config(acted.config))}.values():
        rewrite_config(config, sources, n_layers)
    for slot, layer in enumerate(slots):  # attention modules index the KV cache by layer_idx
        for module in layer.modules():
            if hasattr(module, "layer_idx") and isinstance(module.layer_idx, int):
                module.layer_idx = slot
    return acted


def rewrite_config(config: Any, sources: Sequence[int], n_layers: int) -> None:
    """``config`` of a model whose slot k runs layer ``sources[k]`` of ``n_layers``: depth, per-layer arrays and
    layer index lists rewritten in place."""
    config.num_hidden_layers = len(sources)
    for key, value in list(vars(config).items()):
        if key.startswith("_") or key in NOT_PER_LAYER or not isinstance(value, (list, tuple)):
            continue
        if key in INDEX_LISTS:
            setattr(config, key, [slot for slot, source in enumerate(sources) if source in set(value)])
        elif len(value) == n_layers:
            setattr(config, key, type(value)(value[source] for source in sources))


def _load_mean(anchor: nn.Module, members: Sequence[nn.Module]) -> None:
    """``anchor``'s floating-point tensors set to the equal-weight mean of ``members``' (summed in float64)."""
    states = [member.state_dict() for member in members]
    merged = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            total = sum(state[key].double() for state in states)
            merged[key] = (total / len(states)).to(value.dtype)
        else:
            merged[key] = value
    anchor.load_state_dict(merged)


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


@torch.no_grad()
def action_costs(full: nn.Module, acted: nn.Module, input_ids: torch.Tensor,
                 batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence mean KL(full || acted) and the acted model's mean next-token NLL, by the reference formulas
    (both models' own forwards, float64 log-probabilities): what a reload of the saved model must reproduce."""
    from .divergence import kl_full, nll_from_log_probs
    from .reference import model_log_probs

    kls, nlls = [], []
    for start in range(0, len(input_ids), batch_size):
        batch = input_ids[start:start + batch_size].to(next(full.parameters()).device)
        base, probe = model_log_probs(full, batch), model_log_probs(acted, batch)
        kls.append(kl_full(base, probe).cpu())
        nlls.append(nll_from_log_probs(probe, batch[:, 1:]).cpu())
    return torch.cat(kls), torch.cat(nlls)
