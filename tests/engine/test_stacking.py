"""Probes stacked into one layer call give the numbers of the depth-first walk and of the reference, in float32.

Stacking concatenates several probes' states of one batch along the batch axis and tiles every recorded
argument whose first axis is the batch; these tests force it on CPU (where the plan would not stack), on
both attention-type readings and any stack height; tests/engine/test_engine.py compares the stacked path with
the reference on every family with an adapter, so a family whose layers take an argument the tiling misses
fails there rather than on a GPU.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine import KL_TOLERANCE
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.engine.plan import plan_batches


@pytest.mark.parametrize("attention_type", ["layer", "slot"])
def test_stacking_keeps_each_reading_of_attention_types(attention_type):
    model = tiny_model("gemma3_text", n_layers=6)
    n = model.config.num_hidden_layers
    probes = P.audit_probes(P.parse_pairs("all", n), n)
    ids = random_ids(3, 24)
    walked = engine.measure(model, ids, probes, path="fast", batch_size=3, attention_type=attention_type)
    stacked = engine.measure(model, ids, probes, path="fast", batch_size=3, attention_type=attention_type, stack=7)
    for probe in probes:
        assert stacked.kl(probe) == pytest.approx(walked.kl(probe), abs=KL_TOLERANCE), probe.name


@settings(max_examples=12, deadline=None)
@given(stack=st.integers(2, 40), batch_size=st.integers(1, 3), seed=st.integers(0, 1000))
def test_any_stack_and_batch_give_the_depth_first_numbers(stack, batch_size, seed):
    model = tiny_model("llama", n_layers=5, seed=seed % 3)
    n = model.config.num_hidden_layers
    probes = P.audit_probes(P.parse_pairs("all", n), n) + [P.removal([0, 2, 4], n), P.identity(n)]
    ids = random_ids(3, 12, seed=seed)
    walked = engine.measure(model, ids, probes, path="fast", batch_size=batch_size)
    stacked = engine.measure(model, ids, probes, path="fast", batch_size=batch_size, stack=stack)
    for probe in probes:
        assert stacked[probe].kl_per_seq == pytest.approx(walked[probe].kl_per_seq, abs=KL_TOLERANCE), probe.name
        assert stacked[probe].nll_per_seq == pytest.approx(walked[probe].nll_per_seq, abs=1e-6), probe.name


def test_cpu_plan_is_the_depth_first_walk_with_the_cpu_budget():
    model = tiny_model("llama")
    plan = plan_batches(model, 64, 1000)
    assert plan.stack == 1 and plan.budget_source == "cpu default"
    assert plan_batches(model, 64, 3).batch_size == 3  # never more sequences than there are
    capped = plan_batches(model, 64, 1000, memory_budget=1 << 20)
    assert capped.batch_size < plan.batch_size and capped.budget_source == "--max-memory"


def test_the_measurement_records_its_plan():
    model = tiny_model("llama")
    n = model.config.num_hidden_layers
    result = engine.measure(model, random_ids(2, 12), [P.removal([1], n)], path="fast")
    assert result.plan["batch_size"] == 2 and result.plan["stack"] == 1
    assert result.plan["layer_flop_per_token"] > 0 and result.peak_memory is None  # no CUDA here


def test_a_stack_below_one_is_refused():
    model = tiny_model("llama")
    with pytest.raises(engine.EngineError, match="stack must be at least 1"):
        engine.measure(model, random_ids(2, 12), [P.removal([1], 4)], stack=0)

