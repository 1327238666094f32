"""Probes as data: a probe kind defined here, in the tests alone, runs on every path exactly.

`blend(i->j; w)`: slot j runs a module whose weights are layer j's moved a fraction w toward layer i's. It
is registered only in this file (a protocol and a recipe), and nothing in the package knows it: the fast
path, the reference path, stacking and the trie's prefix sharing must all understand it from its slots.
"""

import copy

import pytest
import torch
from tiny_models import ADAPTED_FAMILIES, random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.engine import fastpath, loop
from pytest_swapkl.engine.adapters import find_layer_list
from pytest_swapkl.engine.protocols import PROTOCOLS, ProbeKind, check_layer, register_protocol
from pytest_swapkl.engine.recipes import RECIPES, register_recipe
from pytest_swapkl.engine.reference import model_log_probs
from pytest_swapkl.engine.slots import Derived
from pytest_swapkl.registry import DuplicateNameError, UnknownNameError

KL_TOLERANCE = 1e-6


def blended(sources, params):
    """Layer sources[0] with every floating weight moved params[0] of the way toward sources[1]'s."""
    (weight,) = params
    module = copy.deepcopy(sources[0])
    other = sources[1].state_dict()
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                tensor.mul_(1 - weight).add_(other[name], alpha=weight)
    return module


def blend_slots(args, n_layers):
    i, j, weight = args
    check_layer(i, n_layers)
    check_layer(j, n_layers)
    order = list(range(n_layers))
    order[j] = Derived("test-blend", (j, i), (weight,))
    return order


@pytest.fixture
def blend_kind():
    register_recipe("test-blend", blended, "layer j's weights moved toward layer i's", __name__)
    register_protocol(ProbeKind("test-blend", "slot j runs layer j blended toward layer i", blend_slots,
                                lambda args: f"test-blend({args[0]}->{args[1]};{args[2]})"), __name__)
    yield lambda i, j, w, n: P.make_probe("test-blend", (i, j, w), n)
    PROTOCOLS.unregister("test-blend")
    RECIPES.unregister("test-blend")


def probes_with_blends(blend, n):
    return [
        blend(0, 2, 0.5, n), blend(3, 1, 0.25, n), blend(1, 1, 0.5, n),
        P.replacement(0, 2, n), P.interchange(1, 3, n), P.removal([2], n),
        # Two orders that agree on their first derived slot: the trie runs it once for both.
        P.layer_order([0, Derived("test-blend", (1, 0), (0.5,)), 3, 2], n),
        P.layer_order([0, Derived("test-blend", (1, 0), (0.5,)), 2], n),
    ]


@pytest.mark.parametrize("family", ADAPTED_FAMILIES)
def test_a_kind_defined_in_the_tests_runs_exactly_on_every_path(family, blend_kind, one_thread):
    model = tiny_model(family)
    n = model.config.num_hidden_layers
    probes = probes_with_blends(blend_kind, n)
    ids = random_ids(3, 16)
    reference = engine.measure(model, ids, probes, path="reference", batch_size=2)
    fast = engine.measure(model, ids, probes, path="fast", batch_size=2, vocab_chunk=13)
    stacked = engine.measure(model, ids, probes, path="fast", batch_size=2, vocab_chunk=13, stack=4)
    for probe in probes:
        for result in (fast, stacked):
            assert result[probe].kl_per_seq == pytest.approx(reference[probe].kl_per_seq, abs=KL_TOLERANCE), probe.name
            assert result[probe].ppl == pytest.approx(reference[probe].ppl, rel=1e-5), probe.name
    assert reference.kl(probes[0]) > 1e-4, "a blend must change the model"
    assert reference.kl(probes[2]) == 0.0, "blending a layer with itself changes nothing"


def test_reference_blend_is_a_model_with_those_weights(blend_kind):
    """The reference path's derived module equals editing a copy of the model's weights for real."""
    model = tiny_model("gemma3_text")
    n = model.config.num_hidden_layers
    probe = blend_kind(3, 0, 0.3, n)
    edited = copy.deepcopy(model)
    layers = getattr(*find_layer_list(edited))
    with torch.no_grad():
        for (name, mine), theirs in zip(layers[0].state_dict().items(), layers[3].state_dict().values()):
            if mine.is_floating_point():
                mine.mul_(0.7).add_(theirs, alpha=0.3)
    ids = random_ids(2, 16)
    with torch.no_grad():
        expected = (model_log_probs(model, ids).exp() * (model_log_probs(model, ids) - model_log_probs(edited, ids)))
    measured = engine.measure(model, ids, [probe], path="reference")
    assert measured[probe].kl_per_seq == pytest.approx(expected.sum(-1).mean(-1).numpy(), abs=KL_TOLERANCE)


def test_probes_that_share_a_derived_prefix_run_it_once(blend_kind, monkeypatch):
    model = tiny_model("llama")
    n = model.config.num_hidden_layers
    probes = probes_with_blends(blend_kind, n)
    calls = []
    counting = fastpath.Kernels(layer_call=lambda layer, args, kwargs: calls.append(layer) or
                                fastpath._call_layer(layer, args, kwargs))
    monkeypatch.setattr(loop, "kernels", lambda *args: counting)
    engine.measure(model, random_ids(1, 8), probes, path="fast", batch_size=1)
    _, fast_passes = P.count_layer_passes(probes, n)
    assert len(calls) == fast_passes - n  # the base pass runs through the model's own forward, not replays
    shared = P.count_layer_passes(probes[-2:], n)[1] - n
    assert shared == 4, "slot 1's derived module runs once for both orders, then 3 and 2 for one, 2 for the other"


def test_names_are_unique_and_unknown_ones_say_what_exists(blend_kind):
    with pytest.raises(DuplicateNameError, match="'replacement' is registered twice"):
        register_protocol(ProbeKind("replacement", "another", blend_slots, str), "a third-party package")
    with pytest.raises(UnknownNameError, match="did you mean interchange"):
        P.make_probe("interchang", (0, 1), 4)
    assert P.make_probe("test-blend", (0, 1, 0.5), 4).name == "test-blend(0->1;0.5)"
    assert {"replacement", "interchange", "removal", "order", "test-blend"} <= set(PROTOCOLS.names())
