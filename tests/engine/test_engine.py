"""The fast path equals the reference semantics (GUIDE section 1) on tiny random models, float32."""

import copy

import pytest
import torch
from tiny_models import ADAPTED_FAMILIES, FALLBACK_FAMILIES, random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.engine.adapters import NoLayerListError, find_layer_list
from pytest_swapkl.engine.reference import permuted_layers

KL_TOLERANCE = 1e-6


def every_probe(n_layers: int) -> list[P.Probe]:
    """All pairs in both replacement directions and interchange, every single and some multi-layer removals,
    identities, and orders that repeat, drop and reverse layers."""
    return P.audit_probes(P.parse_pairs("all", n_layers), n_layers) + [
        P.removal([0, n_layers - 1], n_layers),
        P.removal(range(1, n_layers), n_layers),
        P.identity(n_layers),
        P.replacement(1, 1, n_layers),
        P.interchange(2, 2, n_layers),
        P.layer_order(list(reversed(range(n_layers))), n_layers),
        P.layer_order([0, 1, 1, 2, 3, 3], n_layers),
        P.layer_order([0, 1], n_layers),
    ]


def assert_same(fast, reference, probes):
    assert fast.path == "fast" and reference.path == "reference"
    for probe in probes:
        assert fast.kl(probe) == pytest.approx(reference.kl(probe), abs=KL_TOLERANCE), probe.name
        assert fast[probe].kl_per_seq == pytest.approx(reference[probe].kl_per_seq, abs=KL_TOLERANCE), probe.name
        assert fast[probe].ppl == pytest.approx(reference[probe].ppl, rel=1e-5), probe.name
    assert fast.base_ppl == pytest.approx(reference.base_ppl, rel=1e-6)


@pytest.mark.parametrize("family", ADAPTED_FAMILIES)
def test_fast_path_equals_reference(family):
    model = tiny_model(family)
    probes = every_probe(model.config.num_hidden_layers)
    ids = random_ids(5, 24)
    reference = engine.measure(model, ids, probes, path="reference", batch_size=2)
    fast = engine.measure(model, ids, probes, path="fast", batch_size=2, vocab_chunk=13)  # 97 = 7 x 13 + 6
    assert_same(fast, reference, probes)
    # Stacked: several probes' states through one layer call (tests/engine/test_stacking.py has the rest).
    stacked = engine.measure(model, ids, probes, path="fast", batch_size=2, vocab_chunk=13, stack=5)
    assert stacked.plan["stack"] == 5
    assert_same(stacked, reference, probes)
    assert max(reference.kl(p) for p in probes) > 1e-3, "probes must actually change the model"
    for identity in probes[-6:-3]:
        assert fast.kl(identity) == 0.0 and reference.kl(identity) == 0.0
        assert fast[identity].ppl == fast.base_ppl


@pytest.mark.parametrize("family", ["llama", "gemma3_text"])
def test_batching_and_chunking_do_not_change_numbers(family):
    model = tiny_model(family)
    probes = every_probe(model.config.num_hidden_layers)
    ids = random_ids(5, 24)
    one = engine.measure(model, ids, probes, path="fast", batch_size=5, vocab_chunk=1 << 20)
    other = engine.measure(model, ids, probes, path="fast", batch_size=1, vocab_chunk=1)
    for probe in probes:
        assert one[probe].kl_per_seq == pytest.approx(other[probe].kl_per_seq, abs=KL_TOLERANCE)


@pytest.mark.parametrize("family", ADAPTED_FAMILIES + FALLBACK_FAMILIES)
def test_engine_leaves_model_unchanged(family):
    model = tiny_model(family)
    layers = find_layer_list(model)
    layer_list = getattr(*layers)
    before = copy.deepcopy(model.state_dict())
    config_before = model.config.to_dict()
    model.train()
    probes = P.audit_probes([(0, 2)], model.config.num_hidden_layers)
    engine.measure(model, random_ids(2, 8), probes, path="auto", notice=lambda _: None)
    assert model.training, "the caller's training flag comes back"
    assert getattr(*layers) is layer_list
    assert model.config.to_dict() == config_before
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_permuted_layers_restores_on_error():
    model = tiny_model("gemma3_text")
    owner, attr = find_layer_list(model)
    original, types = getattr(owner, attr), list(model.config.layer_types)
    with pytest.raises(RuntimeError, match="boom"):
        with permuted_layers(model, [3, 2]):
            assert len(getattr(owner, attr)) == 2 and model.config.layer_types == [types[3], types[2]]
            raise RuntimeError("boom")
    assert getattr(owner, attr) is original and model.config.layer_types == types
    assert model.config.num_hidden_layers == 4


@pytest.mark.parametrize("family", FALLBACK_FAMILIES)
def test_fallback_takes_reference_path_with_one_notice(family):
    model = tiny_model(family)
    probes = P.audit_probes(P.parse_pairs("adjacent", 4), 4)
    notices: list[str] = []
    result = engine.measure(model, random_ids(3, 16), probes, notice=notices.append)
    assert result.path == "reference"
    assert len(notices) == 1 and "slow reference path" in notices[0]
    with pytest.raises(engine.EngineError, match="no adapter"):
        engine.measure(model, random_ids(3, 16), probes, path="fast")


def test_missing_layer_list_says_how_to_register():
    class Config:
        model_type = "mystery"
        num_hidden_layers = 3

    class Mystery(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = Config()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(2)])

    with pytest.raises(NoLayerListError, match="entry-point group 'pytest_swapkl.adapters'"):
        engine.measure(Mystery(), random_ids(1, 4), [P.identity(3)])


def test_bad_arguments():
    model = tiny_model("llama")
    with pytest.raises(engine.EngineError, match="seq_len >= 2"):
        engine.measure(model, random_ids(2, 1), [P.identity(4)])
    with pytest.raises(engine.EngineError, match="unknown path"):
        engine.measure(model, random_ids(2, 4), [P.identity(4)], path="quick")


def test_memory_budget_sets_batch_size():
    model = tiny_model("llama")
    small = engine.plan_batch_size(model, 64, memory_budget=1 << 20)
    large = engine.plan_batch_size(model, 64, memory_budget=1 << 30)
    assert 1 <= small < large
    assert engine.plan_batch_size(model, 64, memory_budget=1) == 1


def test_layer_inputs_chain_through_the_layers():
    model = tiny_model("llama")
    ids = random_ids(3, 12)
    states = engine.layer_inputs(model, ids, batch_size=2)
    assert len(states) == model.config.num_hidden_layers + 1
    with torch.no_grad():
        hidden = model(ids, output_hidden_states=True).hidden_states
    for slot in range(model.config.num_hidden_layers):
        torch.testing.assert_close(states[slot], hidden[slot], rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype, bound", [(torch.float32, 1e-6), (torch.bfloat16, 1e-2)])
def test_noise_floor_is_at_the_rounding_level(dtype, bound):
    model = tiny_model("llama").to(dtype)
    result = engine.measure(model, random_ids(4, 16), [P.removal([1], 4)], path="fast", batch_size=4)
    assert 0.0 <= result.noise_floor <= bound
    print(f"{dtype}: noise floor {result.noise_floor:.2e}")


def test_probes_of_another_depth_are_refused():
    with pytest.raises(engine.EngineError, match="built for a different depth: this model has 4 layers"):
        engine.measure(tiny_model("llama"), random_ids(2, 8), [P.interchange(0, 5, 8)])
