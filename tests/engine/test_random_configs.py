"""Property: for any small config of llama, gpt_neox or gemma2, the fast path equals the reference."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import VOCAB, tiny_model

from pytest_swapkl import engine
from pytest_swapkl import probes as P


@st.composite
def small_configs(draw):
    heads = draw(st.sampled_from([1, 2, 4]))
    return dict(
        n_layers=draw(st.integers(2, 8)),
        heads=heads,
        kv_heads=draw(st.sampled_from([k for k in (1, 2, 4) if heads % k == 0])),
        hidden=heads * draw(st.sampled_from([4, 8, 16])),
    )


@pytest.mark.parametrize("family", ["llama", "gpt_neox", "gemma2"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=small_configs(), seq_len=st.integers(2, 20), n_sequences=st.integers(1, 3),
       chunk=st.integers(1, VOCAB + 5), seed=st.integers(0, 2**16))
def test_fast_equals_reference_on_any_small_config(family, sizes, seq_len, n_sequences, chunk, seed):
    if family == "gpt_neox":
        sizes.pop("kv_heads")  # GPT-NeoX has no grouped-query attention
    model = tiny_model(family, seed=seed, **sizes)
    n = sizes["n_layers"]
    probes = P.audit_probes(P.parse_pairs("all", n), n) + [P.identity(n)]
    ids = torch.randint(0, VOCAB, (n_sequences, seq_len), generator=torch.Generator().manual_seed(seed))
    reference = engine.measure(model, ids, probes, path="reference", batch_size=2)
    fast = engine.measure(model, ids, probes, path="fast", batch_size=2, vocab_chunk=chunk)
    for probe in probes:
        assert abs(fast.kl(probe) - reference.kl(probe)) <= 1e-6, probe.name
    assert fast.kl(probes[-1]) == 0.0
