"""The head recipe: attention head h of layer i computed with layer j's projections (the paper's App. D).

What a head is. Head h is query head h: its rows of the query projection, its key/value group's rows of the
key and value projections, and its columns of the output projection. Under grouped-query attention
(``num_key_value_heads < num_attention_heads``) G query heads share one key/value group, so copying layer
j's group into layer i would change the other G - 1 heads too, and copying only the query rows would make a
head that neither layer has (j's queries on i's keys). So `head(i<-j, h)` first *ungroups* layer i's
attention, exactly (each query head gets its own copy of its group's key/value rows, which is what
``repeat_kv`` computes anyway), then gives head h layer j's query, key, value and output slices: head h then
computes exactly what head h of layer j computes on the same input, and every other head of layer i is
unchanged. Per-layer pieces shared by all heads (the output bias, Qwen3's and Gemma 3's q/k norms) stay
layer i's, as in the paper's GPT-2 script, which kept c_proj's bias.

Families: separate ``q_proj``/``k_proj``/``v_proj`` and ``o_proj`` (llama, mistral, qwen2, qwen3, gemma2,
gemma3) or ``out_proj`` (opt), GPT-2's ``c_attn``/``c_proj`` and GPT-NeoX's per-head interleaved
``query_key_value``/``dense``. Phi-3's fused ``qkv_proj`` (grouped, one block of q then k then v) is refused
with a one-line error, as is any layout not listed here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import nn

from ..errors import InputError

SUPPORTED = "llama, mistral, qwen2, qwen3, gemma2, gemma3_text, opt, gpt2 and gpt_neox"


class HeadError(InputError):
    """A head probe this layer cannot run: an unsupported family, or a head out of range."""


def _repeat_blocks(rows: torch.Tensor, block: int, repeats: int) -> torch.Tensor:
    """Each block of ``block`` leading rows repeated ``repeats`` times in place: [g0, g0, g1, g1, ...]."""
    grouped = rows.reshape(rows.shape[0] // block, block, *rows.shape[1:])
    return grouped.repeat_interleave(repeats, dim=0).reshape(-1, *rows.shape[1:])


@dataclass
class _Separate:
    """Separate q/k/v/o ``nn.Linear`` projections (weights [out, in]): a head is a block of rows, o's columns."""

    attention: nn.Module
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear
    head_dim: int

    @property
    def n_heads(self) -> int:
        return self.q.weight.shape[0] // self.head_dim

    @property
    def n_groups(self) -> int:  # key/value groups
        return self.k.weight.shape[0] // self.head_dim

    def ungroup(self) -> None:
        """One key/value head per query head, in repeat_kv's order (query head h reads group h // G)."""
        repeats = self.n_heads // self.n_groups
        if repeats == 1:
            return
        for linear in (self.k, self.v):
            linear.weight = nn.Parameter(_repeat_blocks(linear.weight.data, self.head_dim, repeats))
            if linear.bias is not None:
                linear.bias = nn.Parameter(_repeat_blocks(linear.bias.data, self.head_dim, repeats))
            linear.out_features = linear.weight.shape[0]
        self.attention.num_key_value_groups = 1
        if hasattr(self.attention, "num_key_value_heads"):
            self.attention.num_key_value_heads = self.n_heads

    def take_head(self, head: int, donor: "_Separate") -> None:
        """Head ``head`` of this (ungrouped) attention takes the donor's slices of that query head."""
        rows = slice(head * self.head_dim, (head + 1) * self.head_dim)
        group = head // (donor.n_heads // donor.n_groups)
        group_rows = slice(group * self.head_dim, (group + 1) * self.head_dim)
        for mine, theirs, source_rows in ((self.q, donor.q, rows), (self.k, donor.k, group_rows),
                                          (self.v, donor.v, group_rows)):
            mine.weight[rows] = theirs.weight[source_rows]
            if mine.bias is not None:
                mine.bias[rows] = theirs.bias[source_rows]
        self.o.weight[:, rows] = donor.o.weight[:, rows]


@dataclass
class _Gpt2:
    """GPT-2's ``Conv1D`` projections (weights [in, out]): q|k|v columns of c_attn, rows of c_proj."""

    attention: nn.Module
    head_dim: int

    @property
    def n_heads(self) -> int:
        return self.attention.num_heads

    @property
    def n_groups(self) -> int:
        return self.n_heads

    def ungroup(self) -> None:
        pass

    def take_head(self, head: int, donor: "_Gpt2") -> None:
        width = self.n_heads * self.head_dim
        mine, theirs = self.attention, donor.attention
        for part in range(3):  # q, k, v
            columns = slice(part * width + head * self.head_dim, part * width + (head + 1) * self.head_dim)
            mine.c_attn.weight[:, columns] = theirs.c_attn.weight[:, columns]
            mine.c_attn.bias[columns] = theirs.c_attn.bias[columns]
        rows = slice(head * self.head_dim, (head + 1) * self.head_dim)
        mine.c_proj.weight[rows] = theirs.c_proj.weight[rows]


@dataclass
class _NeoX:
    """GPT-NeoX's fused ``query_key_value``: head h's q, k and v are one block of 3 * head_dim rows."""

    attention: nn.Module
    head_dim: int

    @property
    def n_heads(self) -> int:
        return self.attention.query_key_value.weight.shape[0] // (3 * self.head_dim)

    @property
    def n_groups(self) -> int:
        return self.n_heads

    def ungroup(self) -> None:
        pass

    def take_head(self, head: int, donor: "_NeoX") -> None:
        mine, theirs = self.attention, donor.attention
        rows = slice(head * 3 * self.head_dim, (head + 1) * 3 * self.head_dim)
        mine.query_key_value.weight[rows] = theirs.query_key_value.weight[rows]
        if mine.query_key_value.bias is not None:
            mine.query_key_value.bias[rows] = theirs.query_key_value.bias[rows]
        columns = slice(head * self.head_dim, (head + 1) * self.head_dim)
        mine.dense.weight[:, columns] = theirs.dense.weight[:, columns]


def layout_of(layer: nn.Module) -> Union[_Separate, _Gpt2, _NeoX]:
    """How this decoder layer's attention splits into heads, or a one-line HeadError for other layouts."""
    attention = getattr(layer, "self_attn", None)
    if attention is not None and all(hasattr(attention, name) for name in ("q_proj", "k_proj", "v_proj")):
        output = getattr(attention, "o_proj", None)
        output = getattr(attention, "out_proj", None) if output is None else output
        if output is not None:
            return _Separate(attention, attention.q_proj, attention.k_proj, attention.v_proj, output,
                             attention.head_dim)
    attention = getattr(layer, "attn", None)
    if attention is not None and hasattr(attention, "c_attn") and not getattr(attention, "is_cross_attention", False):
        return _Gpt2(attention, attention.head_dim)
    attention = getattr(layer, "attention", None)
    if attention is not None and hasattr(attention, "query_key_value") and hasattr(attention, "dense"):
        return _NeoX(attention, attention.head_size)
    fused = next((name for name, _ in layer.named_modules() if name.endswith(("query_key_value", "qkv_proj"))), None)
    what = f"fuses q/k/v in {fused}" if fused else "has no q/k/v/o projections this tool knows"
    raise HeadError(f"head probes: {type(layer).__name__} {what}; head probes support {SUPPORTED}")


def head_count(layer: nn.Module) -> int:
    """Query heads of a decoder layer (a one-line HeadError where head probes are not supported)."""
    return layout_of(layer).n_heads


def _checked(target: nn.Module, donor: nn.Module, head: int, names: tuple[str, str]):
    """Both layers' layouts, once the head is in range and the two split attention alike."""
    into, source = layout_of(target), layout_of(donor)
    if not 0 <= head < into.n_heads:
        raise HeadError(f"head {head} is out of range: {names[0]} has heads 0..{into.n_heads - 1}")
    if (into.n_heads, into.n_groups, into.head_dim) != (source.n_heads, source.n_groups, source.head_dim):
        raise HeadError(f"{names[0]} and {names[1]} split attention into heads differently: no head probe between them")
    return into, source


def check_head(layers: Sequence[nn.Module], target: int, donor: int, head: int) -> None:
    """Refuse, in one line, a head probe this model cannot run: before anything is measured."""
    if target == donor:
        raise HeadError(f"head({target}<-{donor},{head}): a layer with itself changes nothing; name two layers")
    _checked(layers[target], layers[donor], head, (f"layer {target}", f"layer {donor}"))


def head_swapped_layer(sources: Sequence[nn.Module], params: tuple[Union[int, float], ...]) -> nn.Module:
    """A copy of layer ``sources[0]`` whose head ``params[0]`` is layer ``sources[1]``'s (see the module text)."""
    target, donor = sources
    head = int(params[0])
    _checked(target, donor, head, ("the target layer", "the donor layer"))
    module = copy.deepcopy(target)
    into = layout_of(module)
    into.ungroup()
    with torch.no_grad():
        into.take_head(head, layout_of(donor))
    return module
