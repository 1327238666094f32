"""`attention_type`: a moved layer keeps its own attention type ("layer") or takes its slot's ("slot").
Both readings: fast path equal to the reference semantics in float32, identity probes exactly 0."""

import pytest
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl import probes as P

MIXED = ["gemma2", "gemma3_text", "qwen2"]  # tiny configs that alternate sliding and full attention


@pytest.fixture(scope="module", autouse=True)
def _threads(one_thread):
    yield


def _probes(n: int) -> list:
    probes = P.audit_probes(P.parse_pairs("all", n), n)
    return probes + [P.identity(n), P.replacement(1, 1, n), P.interchange(2, 2, n)]


@pytest.mark.parametrize("family", MIXED)
@pytest.mark.parametrize("attention_type", ["layer", "slot"])
def test_fast_path_equals_reference_in_both_readings(family, attention_type):
    model = tiny_model(family, n_layers=4)
    ids = random_ids(3, 24)
    probes = _probes(4)
    fast = engine.measure(model, ids, probes, attention_type=attention_type)
    reference = engine.measure(model, ids, probes, path="reference", attention_type=attention_type)
    assert fast.path == "fast" and reference.path == "reference"
    assert max(abs(fast.kl(p) - reference.kl(p)) for p in probes) <= 1e-6
    assert fast.kl(P.identity(4)) == 0.0 and fast.kl(P.replacement(1, 1, 4)) == 0.0


@pytest.mark.parametrize("family", MIXED)
def test_the_readings_differ_only_where_a_layer_moves_between_types(family):
    model = tiny_model(family, n_layers=4)
    types = model.config.layer_types
    ids = random_ids(3, 24)
    across = P.interchange(0, 1, 4)  # layers 0 and 1 have different types in the tiny configs
    assert types[0] != types[1]
    layer = engine.measure(model, ids, [across, P.removal([3], 4)], attention_type="layer")
    slot = engine.measure(model, ids, [across, P.removal([3], 4)], attention_type="slot")
    assert abs(layer.kl(across) - slot.kl(across)) > 1e-4
    assert layer.kl(P.removal([3], 4)) == slot.kl(P.removal([3], 4))  # nothing moved: the same computation


def test_a_single_type_model_gives_the_same_numbers_in_both_readings():
    model = tiny_model("llama", n_layers=4)
    ids = random_ids(2, 16)
    probes = _probes(4)
    layer = engine.measure(model, ids, probes, attention_type="layer")
    slot = engine.measure(model, ids, probes, attention_type="slot")
    assert all(layer.kl(p) == slot.kl(p) for p in probes)


def test_an_unknown_reading_is_a_one_line_error():
    with pytest.raises(engine.EngineError, match="unknown attention type 'slots'"):
        engine.measure(tiny_model("llama"), random_ids(1, 8), [P.identity(4)], attention_type="slots")
