"""Position contracts (all, last, last:K) and right-padded prompts with an attention mask: the fast path equals
the reference, and a padded batch equals each prompt run alone, unpadded."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import VOCAB, tiny_model

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.engine.reading import Positions, PositionsError

FAMILIES = ["gpt2", "gpt_neox", "llama", "qwen3", "gemma3_text", "opt"]
PAD = 1


def padded(lengths: list[int], seq_len: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random prompts of the given lengths, right-padded with PAD, and their mask."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), seq_len), PAD)
    mask = torch.zeros(len(lengths), seq_len, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(2, VOCAB, (length,), generator=generator)
        mask[row, :length] = 1
    return ids, mask


def probes_of(n_layers: int) -> list[P.Probe]:
    return P.audit_probes(P.parse_pairs("all", n_layers), n_layers) + [P.identity(n_layers)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("positions", ["all", "last", "last:3"])
@pytest.mark.parametrize("pads", ["out", "in"])
@pytest.mark.parametrize("with_pads", [False, True])
def test_fast_equals_reference(one_thread, family, positions, pads, with_pads):
    model = tiny_model(family)
    n = model.config.num_hidden_layers
    ids, mask = padded([11, 7, 4, 11] if with_pads else [11, 11, 11], 11)
    kwargs = dict(attention_mask=mask if with_pads else None, positions=positions, pads=pads)
    reference = engine.measure(model, ids, probes_of(n), path="reference", batch_size=2, **kwargs)
    fast = engine.measure(model, ids, probes_of(n), path="fast", batch_size=2, vocab_chunk=13, **kwargs)
    stacked = engine.measure(model, ids, probes_of(n), path="fast", batch_size=3, vocab_chunk=40, stack=4, **kwargs)
    np.testing.assert_allclose(fast.base_nll_per_seq, reference.base_nll_per_seq, atol=1e-6)
    for probe in probes_of(n):
        for measured in (fast, stacked):
            np.testing.assert_allclose(measured[probe].kl_per_seq, reference[probe].kl_per_seq, atol=1e-6,
                                       err_msg=probe.name)
            np.testing.assert_allclose(measured[probe].nll_per_seq, reference[probe].nll_per_seq, atol=1e-6,
                                       err_msg=probe.name)
    assert fast.kl(probes_of(n)[-1]) == 0.0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("positions", ["all", "last", "last:2"])
def test_padded_batch_equals_each_prompt_alone(one_thread, family, positions):
    """Pads out: each prompt's KL and NLL are the ones it gets alone, unpadded (right padding, causal attention)."""
    model = tiny_model(family)
    n = model.config.num_hidden_layers
    lengths = [9, 3, 6]
    ids, mask = padded(lengths, 9, seed=1)
    probes = probes_of(n)
    together = engine.measure(model, ids, probes, path="fast", batch_size=3, attention_mask=mask, positions=positions)
    for row, length in enumerate(lengths):
        alone = engine.measure(model, ids[row:row + 1, :length], probes, path="reference", positions=positions)
        # float32 rounding of other shapes (a 9-token row with a mask against 3 tokens alone): 2e-6 relative seen
        for probe in probes:
            assert together[probe].kl_per_seq[row] == pytest.approx(alone[probe].kl_per_seq[0], rel=1e-5, abs=1e-6)
            assert together[probe].nll_per_seq[row] == pytest.approx(alone[probe].nll_per_seq[0], rel=1e-5, abs=1e-6)


def test_defaults_are_every_position_as_before(one_thread):
    """all + pads out on unpadded ids, a mask of ones, and pads in: the very numbers of the plain call."""
    model = tiny_model("llama")
    probes = probes_of(4)
    ids, mask = padded([10, 10], 10)
    plain = engine.measure(model, ids, probes, path="fast", batch_size=2)
    for kwargs in (dict(attention_mask=mask), dict(attention_mask=mask, pads="in"), dict(pads="in")):
        again = engine.measure(model, ids, probes, path="fast", batch_size=2, **kwargs)
        for probe in probes:
            assert np.array_equal(again[probe].kl_per_seq, plain[probe].kl_per_seq)


def test_last_reads_the_last_real_token_by_hand(one_thread):
    """last = KL of the final real position's next-token distribution, computed here from the model's logits."""
    model = tiny_model("gpt_neox")
    ids, mask = padded([8, 5], 8, seed=3)
    probe = P.interchange(1, 2, 4)
    measured = engine.measure(model, ids, [probe], path="fast", attention_mask=mask, positions="last")
    with torch.no_grad():
        for row, length in enumerate([8, 5]):
            base = torch.log_softmax(model(ids[row:row + 1, :length]).logits[0, -1].double(), -1)
            layers = model.gpt_neox.layers
            original = list(layers)
            layers[1], layers[2] = original[2], original[1]
            try:
                swapped = torch.log_softmax(model(ids[row:row + 1, :length]).logits[0, -1].double(), -1)
            finally:
                layers[1], layers[2] = original[1], original[2]
            expected = float((base.exp() * (base - swapped)).sum())
            assert abs(measured[probe].kl_per_seq[row] - expected) <= 1e-6


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(2, 12), min_size=1, max_size=4), k=st.integers(1, 2),
       pads=st.sampled_from(["out", "in"]), family=st.sampled_from(["llama", "gemma3_text", "gpt2"]),
       seed=st.integers(0, 2**16))
def test_any_lengths_fast_equals_reference(one_thread, lengths, k, pads, family, seed):
    model = tiny_model(family, seed=seed % 7, n_layers=3)
    ids, mask = padded(lengths, max(lengths), seed)
    probes = probes_of(3)
    for positions in ("all", f"last:{k}"):
        reference = engine.measure(model, ids, probes, path="reference", attention_mask=mask, positions=positions,
                                   pads=pads)
        fast = engine.measure(model, ids, probes, path="fast", vocab_chunk=17, attention_mask=mask,
                              positions=positions, pads=pads)
        for probe in probes:
            np.testing.assert_allclose(fast[probe].kl_per_seq, reference[probe].kl_per_seq, atol=1e-6)


@pytest.mark.parametrize("mask, positions, message", [
    (torch.ones(2, 5, dtype=torch.long), "all", "the attention mask has shape (2, 5)"),
    (torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 2, 0, 0, 0]]), "all", "values other than 0 and 1"),
    (torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]]), "all", "right-padded"),
    (torch.tensor([[1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]]), "all", "prompt 1 has 1 real token"),
    (torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]), "last:4", "last:4 reads beyond prompt 1"),
    (None, "last:7", "last:7 reads beyond prompt 0"),
    (None, "first", "unknown positions 'first'"),
    (None, "last:0", "unknown positions 'last:0'"),
])
def test_bad_masks_and_contracts_are_refused(mask, positions, message):
    ids = torch.randint(2, VOCAB, (2, 6))
    with pytest.raises(PositionsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        engine.measure(tiny_model("llama"), ids, probes_of(4), attention_mask=mask, positions=positions)


def test_unknown_pads_are_refused():
    with pytest.raises(PositionsError, match="unknown pads"):
        Positions("all", "maybe")
