"""The averaging and head probes, exact against models whose weights were edited for real.

The reference here does not use the package's recipes: it deep-copies the model, writes the averaged weights
(or layer j's head slices, with layer i's grouped key/value heads first ungrouped by hand) into the copy, and
runs the copy's own forward. Both measuring paths must give its KL within 1e-5 in float32.
"""

import copy

import pytest
import torch
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.engine import fastpath, loop
from pytest_swapkl.engine.adapters import find_layer_list
from pytest_swapkl.engine.heads import HeadError, check_head, head_count
from pytest_swapkl.engine.protocols import SpecError
from pytest_swapkl.engine.reference import model_log_probs
from pytest_swapkl.engine.slots import Derived

TOLERANCE = 1e-5
AVERAGING_FAMILIES = ["gpt2", "gpt_neox", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3",
                      "opt"]
# The last six are grouped: 4 query heads in 2 key/value groups.
HEAD_FAMILIES = ["gpt2", "gpt_neox", "opt", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text"]


def layers_of(model):
    return getattr(*find_layer_list(model))


def averaged_model(model, i, j, weight):
    edited = copy.deepcopy(model)
    layers = layers_of(edited)
    with torch.no_grad():
        for (name, mine), theirs in zip(layers[i].named_parameters(), layers[j].parameters()):
            mean = mine * (1 - weight) + theirs * weight
            mine.copy_(mean)
            dict(layers[j].named_parameters())[name].copy_(mean)
    return edited


def head_swapped_model(model, i, j, head):
    """Layer i's head `head` given layer j's slices in a copy of the model, written out per family."""
    edited = copy.deepcopy(model)
    target, donor = layers_of(edited)[i], layers_of(model)[j]
    with torch.no_grad():
        if hasattr(target, "attn"):  # GPT-2: Conv1D weights are [in, out]; c_attn's columns are q | k | v
            mine, theirs = target.attn, donor.attn
            d, width = mine.head_dim, mine.embed_dim
            for start in (0, width, 2 * width):
                cols = slice(start + head * d, start + (head + 1) * d)
                mine.c_attn.weight[:, cols] = theirs.c_attn.weight[:, cols]
                mine.c_attn.bias[cols] = theirs.c_attn.bias[cols]
            mine.c_proj.weight[head * d:(head + 1) * d] = theirs.c_proj.weight[head * d:(head + 1) * d]
            return edited
        if hasattr(target, "attention"):  # GPT-NeoX: rows [q_h k_h v_h] per head, then dense's columns
            mine, theirs = target.attention, donor.attention
            d = mine.head_size
            rows = slice(3 * head * d, 3 * (head + 1) * d)
            mine.query_key_value.weight[rows] = theirs.query_key_value.weight[rows]
            mine.query_key_value.bias[rows] = theirs.query_key_value.bias[rows]
            mine.dense.weight[:, head * d:(head + 1) * d] = theirs.dense.weight[:, head * d:(head + 1) * d]
            return edited
        mine, theirs = target.self_attn, donor.self_attn
        d = mine.head_dim
        out_name = "o_proj" if hasattr(mine, "o_proj") else "out_proj"
        n_heads = mine.q_proj.weight.shape[0] // d
        repeats = n_heads // (mine.k_proj.weight.shape[0] // d)
        for name in ("k_proj", "v_proj"):  # ungroup: each query head its own copy of its group's rows
            linear = getattr(mine, name)
            weight = linear.weight.reshape(-1, d, linear.weight.shape[1])  # [groups, d, hidden]
            linear.weight = torch.nn.Parameter(weight.repeat_interleave(repeats, 0).reshape(-1, weight.shape[2]))
            if linear.bias is not None:
                bias = linear.bias.reshape(-1, d)
                linear.bias = torch.nn.Parameter(bias.repeat_interleave(repeats, 0).reshape(-1))
        mine.num_key_value_groups = 1
        rows, group = slice(head * d, (head + 1) * d), head // repeats
        group_rows = slice(group * d, (group + 1) * d)
        for name, source_rows in (("q_proj", rows), ("k_proj", group_rows), ("v_proj", group_rows)):
            getattr(mine, name).weight[rows] = getattr(theirs, name).weight[source_rows]
            if getattr(mine, name).bias is not None:
                getattr(mine, name).bias[rows] = getattr(theirs, name).bias[source_rows]
        getattr(mine, out_name).weight[:, rows] = getattr(theirs, out_name).weight[:, rows]
    return edited


def kl_against(model, edited, ids):
    with torch.no_grad():
        base = model_log_probs(model, ids)
        return (base.exp() * (base - model_log_probs(edited, ids))).sum(-1).mean(-1).numpy()


def assert_exact(model, probes_and_models, ids):
    probes = [probe for probe, _ in probes_and_models]
    reference = engine.measure(model, ids, probes, path="reference", batch_size=2)
    fast = engine.measure(model, ids, probes, path="fast", batch_size=2, vocab_chunk=13)
    for probe, edited in probes_and_models:
        expected = kl_against(model, edited, ids)
        assert expected.mean() > 1e-4, f"{probe.name} must change the model"
        for result in (reference, fast):
            assert result[probe].kl_per_seq == pytest.approx(expected, abs=TOLERANCE), probe.name


@pytest.mark.parametrize("family", AVERAGING_FAMILIES)
def test_averaging_equals_a_model_with_averaged_weights(family, one_thread):
    model = tiny_model(family)
    n = model.config.num_hidden_layers
    cases = [(P.averaging(1, 2, n), averaged_model(model, 1, 2, 0.5)),
             (P.averaging(0, 3, n, 0.25), averaged_model(model, 0, 3, 0.25))]
    assert_exact(model, cases, random_ids(3, 12))


@pytest.mark.parametrize("family", HEAD_FAMILIES)
def test_head_swap_equals_a_model_with_that_head_copied(family, one_thread):
    model = tiny_model(family)
    n = model.config.num_hidden_layers
    cases = [(P.head(2, 0, 1, n), head_swapped_model(model, 2, 0, 1)),
             (P.head(1, 3, 3, n), head_swapped_model(model, 1, 3, 3))]
    assert_exact(model, cases, random_ids(3, 12))


def test_a_gqa_head_swap_leaves_the_other_heads_of_its_group_alone(one_thread):
    """Head h of a grouped layer: copying the group's k/v rows into layer i (without ungrouping) would also
    change head h's group partner; the probe's module must differ from that and only in head h's output."""
    model = tiny_model("llama")
    layers = layers_of(model)
    from pytest_swapkl.engine.recipes import build

    module = build(Derived("head", (2, 0), (1,)), layers)
    attention, original = module.self_attn, layers[2].self_attn
    d = attention.head_dim
    assert attention.k_proj.weight.shape[0] == 4 * d, "ungrouped: one key head per query head"
    # Head 0 shares group 0 with head 1 in the original layer: its key rows are still layer 2's own.
    assert torch.equal(attention.k_proj.weight[:d], original.k_proj.weight[:d])
    assert torch.equal(attention.k_proj.weight[d:2 * d], layers[0].self_attn.k_proj.weight[:d])
    assert torch.equal(attention.q_proj.weight[:d], original.q_proj.weight[:d])
    assert torch.equal(attention.o_proj.weight[:, 2 * d:], original.o_proj.weight[:, 2 * d:])


def test_probes_that_share_a_derived_prefix_run_it_once(monkeypatch):
    model = tiny_model("qwen2")
    n = model.config.num_hidden_layers
    probes = [P.averaging(1, 3, n), P.layer_order([0, Derived("average", (1, 3), (0.5, 0.5)), 2], n),
              P.head(1, 0, 2, n), P.layer_order([0, Derived("head", (1, 0), (2,)), 3, 2], n), P.replacement(0, 1, n)]
    calls = []
    counting = fastpath.Kernels(layer_call=lambda layer, args, kwargs: calls.append(layer) or
                                fastpath._call_layer(layer, args, kwargs))
    monkeypatch.setattr(loop, "kernels", lambda *args: counting)
    engine.measure(model, random_ids(1, 8), probes, path="fast", batch_size=1)
    _, fast_passes = P.count_layer_passes(probes, n)
    assert len(calls) == fast_passes - n
    assert P.count_layer_passes(probes[:2], n)[1] - n == 3, "avg(1,3), 2 once for both; then avg(3,1)"
    assert P.count_layer_passes(probes[2:4], n)[1] - n == 5, "the head module once, then 2,3 and 3,2"


def test_names_and_bad_input_are_one_line():
    assert P.averaging(1, 2, 4).name == "averaging(1,2)"
    assert P.averaging(1, 2, 4, 0.25).name == "averaging(1,2;0.25)"
    assert P.head(2, 0, 3, 4).name == "head(2<-0,3)"
    with pytest.raises(SpecError, match="names one layer twice"):
        P.averaging(1, 1, 4)
    with pytest.raises(SpecError, match="names one layer twice"):
        P.head(2, 2, 0, 4)
    with pytest.raises(SpecError, match="outside 0..1"):
        P.averaging(0, 1, 4, 1.5)
    layers = layers_of(tiny_model("llama"))
    assert head_count(layers[0]) == 4
    with pytest.raises(HeadError, match=r"head 4 is out of range: layer 1 has heads 0..3"):
        check_head(layers, 1, 0, 4)
    with pytest.raises(HeadError, match="fuses q/k/v in self_attn.qkv_proj") as error:
        check_head(layers_of(tiny_model("phi3")), 1, 0, 0)
    assert "\n" not in str(error.value)
