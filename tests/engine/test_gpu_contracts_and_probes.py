"""This session's engine additions on a real CUDA GPU, float32: position contracts with masks of padded prompts, and
the averaging and head probes, fast (compiled, stacked) against the reference, and against edited model copies."""

import numpy as np
import pytest
import torch
from test_averaging_and_heads import averaged_model, head_swapped_model
from test_gpu import compile_every_family, no_tf32  # noqa: F401  (autouse: the GPU tests' dynamo limit, no TF32)
from test_positions import padded, probes_of
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.engine.reference import model_log_probs

pytestmark = pytest.mark.gpu

FAMILIES = ["llama", "gpt_neox", "gemma3_text", "qwen3"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("positions, pads", [("all", "out"), ("last", "out"), ("last:3", "out"), ("all", "in")])
def test_position_contracts_fast_equals_reference_on_gpu(family, positions, pads):
    model = tiny_model(family).cuda()
    n = model.config.num_hidden_layers
    ids, mask = padded([11, 7, 4, 11, 9, 5], 11)
    kwargs = dict(attention_mask=mask, positions=positions, pads=pads)
    reference = engine.measure(model, ids, probes_of(n), path="reference", batch_size=2, **kwargs)
    fast = engine.measure(model, ids, probes_of(n), path="fast", batch_size=3, vocab_chunk=13, **kwargs)
    for probe in probes_of(n):
        # float32 on CUDA: equal to 1e-6 relative (gemma3_text's last position differed by 7.7e-7 of 1.70 nats)
        np.testing.assert_allclose(fast[probe].kl_per_seq, reference[probe].kl_per_seq, rtol=1e-6, atol=1e-6,
                                   err_msg=probe.name)


def kl_against(model, edited, ids):
    """Per-sequence KL of the edited copy's own forward against the model's, on the GPU."""
    with torch.no_grad():
        base = model_log_probs(model, ids)
        return (base.exp() * (base - model_log_probs(edited, ids))).sum(-1).mean(-1).cpu().numpy()


@pytest.mark.parametrize("family", FAMILIES)
def test_averaging_and_head_probes_on_gpu_equal_edited_copies(family):
    model = tiny_model(family).cuda()
    n = model.config.num_hidden_layers
    ids = random_ids(4, 12)
    cases = [(P.averaging(1, 2, n), averaged_model(model, 1, 2, 0.5)),
             (P.head(2, 0, 1, n), head_swapped_model(model, 2, 0, 1))]
    probes = [probe for probe, _ in cases]
    reference = engine.measure(model, ids, probes, path="reference", batch_size=2)
    fast = engine.measure(model, ids, probes, path="fast", batch_size=2, vocab_chunk=13)
    for probe, edited in cases:
        expected = kl_against(model, edited, ids.cuda())
        for result in (reference, fast):
            assert result[probe].kl_per_seq == pytest.approx(expected, abs=1e-5), probe.name
