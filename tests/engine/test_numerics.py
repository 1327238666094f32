"""Bad numbers never pass silently: NaN or infinite logits fail the probe that made them, by name."""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tiny_models import random_ids, tiny_model

from pytest_swapkl import engine
from pytest_swapkl.engine.fastpath import _Compiled
from pytest_swapkl.engine.probes import identity, layer_order, replacement


def float16_model_that_overflows_when_layer_1_runs_twice():
    """Layer 1 adds 4e4 to the residual stream: once fits float16 (largest 65504), twice overflows to inf."""
    model = tiny_model("llama").to(torch.float16)

    def add_a_large_constant(module, args, output):
        if isinstance(output, tuple):
            return (output[0] + 4e4, *output[1:])
        return output + 4e4

    model.model.layers[1].register_forward_hook(add_a_large_constant)
    return model


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_overflowing_probe_fails_by_name_and_suggests_a_dtype(path):
    model = float16_model_that_overflows_when_layer_1_runs_twice()
    n = model.config.num_hidden_layers
    ids = random_ids(2, 16)
    fine = engine.measure(model, ids, [identity(n), replacement(0, 2, n)], path=path)  # layer 1 once: finite
    assert torch.isfinite(torch.tensor(fine.kl(replacement(0, 2, n))))
    twice = layer_order([0, 1, 1, 3], n)
    with pytest.raises(engine.ProbeFailed) as failure:
        engine.measure(model, ids, [replacement(0, 2, n), twice], path=path)
    message = str(failure.value)
    assert "layer_order(0,1,1,3)" in message or twice.name in message
    assert "bfloat16 or float32" in message and "\n" not in message


def test_nan_in_the_unchanged_model_is_named_as_such():
    model = tiny_model("llama")
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight[0, 0] = float("nan")
    n = model.config.num_hidden_layers
    with pytest.raises(engine.ProbeFailed, match="the unchanged model produced NaN"):
        engine.measure(model, random_ids(2, 16), [replacement(0, 1, n)])


def test_a_failing_compile_falls_back_to_eager_once_with_a_notice():
    def broken(*args):
        raise RuntimeError("no C compiler")

    notices = []
    step = _Compiled(broken, lambda x: x + 1, "the head + KL step", notices.append)
    assert step(1) == 2 and step(2) == 3
    assert len(notices) == 1 and "running it eagerly" in notices[0]


# --- extreme weights: a result or one named failure, on both paths and through the summary (issue 20) ----------

EXTREME_SCALES = [0.0, 1e-30, 1e-7, 1e7, 1e30, 1e38, float("inf"), float("-inf"), float("nan")]
WHERE = ["both layers' outputs", "one layer's output", "one weight", "the output head", "the embedding"]


def _scaled(where: str, scale: float, integers: bool, dtype: torch.dtype, seed: int):
    """A 2-layer tiny llama whose `where` weights are multiplied by `scale` (rounded to integers first: weights
    as an int32 checkpoint gives them), in `dtype`."""
    model = tiny_model("llama", seed=seed, n_layers=2)
    layers = model.model.layers
    chosen = {
        "both layers' outputs": [w for layer in layers
                                 for w in (layer.self_attn.o_proj.weight, layer.mlp.down_proj.weight)],
        "one layer's output": [layers[1].self_attn.o_proj.weight, layers[1].mlp.down_proj.weight],
        "one weight": [layers[0].mlp.down_proj.weight],
        "the output head": [model.lm_head.weight],
        "the embedding": [model.model.embed_tokens.weight],
    }[where]
    with torch.no_grad():
        for weight in chosen:
            if integers:
                weight.copy_(torch.round(weight * 20))
            if where == "one weight":
                weight[0, 0] = weight[0, 0] * scale if scale == scale else scale
            else:
                weight.mul_(scale)
    return model.to(dtype)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(scale=st.sampled_from(EXTREME_SCALES), where=st.sampled_from(WHERE), integers=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.float16]),
       path=st.sampled_from(["fast", "reference"]), seed=st.integers(0, 3))
@example(scale=0.0, where="both layers' outputs", integers=False, dtype=torch.bfloat16, path="fast", seed=0)
def test_extreme_weights_end_in_a_result_or_one_named_failure(scale, where, integers, dtype, path, seed):
    import json
    import warnings

    from pytest_swapkl.analysis.audit import summarize
    from pytest_swapkl.audit.results import audit_document
    from pytest_swapkl.engine.probes import audit_probes

    model = _scaled(where, scale, integers, dtype, seed)
    pairs = [(0, 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning (overflow in numpy) is a crash waiting to happen too
        try:
            measurement = engine.measure(model, random_ids(2, 8, seed), audit_probes(pairs, 2), path=path,
                                         notice=lambda line: None)
        except engine.ProbeFailed as failure:
            message = str(failure)
            assert "\n" not in message and "produced NaN or infinite logits" in message
            if dtype == torch.float32:
                assert "--dtype float32" not in message  # never the dtype it already runs in
            return
        audit = summarize(measurement, pairs, 2, n_resamples=20)
        document = audit_document(audit, {}, {}, {}, 0.0)
    json.dumps(document, allow_nan=False)  # every number finite or null
    for line in audit.notes:
        assert "\n" not in line
    pair = document["pairs"][0]
    assert pair["log_ratio"] is None or abs(pair["log_ratio"]) < 2000


def test_a_kl_that_rounds_below_zero_is_clipped_for_ratios_with_a_notice():
    """Two near-no-op layers (output projections times 1e-7) in bfloat16: R and I round to about 0, some below."""
    import numpy as np

    from pytest_swapkl.analysis.audit import summarize
    from pytest_swapkl.engine.measurement import Measurement, ProbeStats
    from pytest_swapkl.engine.probes import audit_probes

    probes = audit_probes([(0, 1)], 2)
    per_seq = {p.name: np.array([-2e-8, 1e-9]) if "replacement" in p.name else np.array([1e-9, 1e-9]) for p in probes}
    measurement = Measurement("fast", 2, 8, np.array([1.0, 1.0]),
                              {p: ProbeStats(p, per_seq[p.name], np.array([1500.0, 1.0])) for p in probes})
    audit = summarize(measurement, [(0, 1)], 2, n_resamples=20)
    pair = audit.pairs[0]
    assert pair.replacement.value < 0 and pair.ratio is None and pair.log_ratio is None  # R counts as 0: undefined
    assert any("below 0 by rounding" in line and "counted as 0 in I/R" in line for line in audit.notes)
    assert any("perplexity overflows" in line and "750.5" in line for line in audit.notes)
    assert audit.removals[0].ppl == float("inf")


def test_another_fold_replaces_the_chunked_sums_and_none_falls_back():
    """kl_and_nll's `fold` seam (the fused-kernel benchmark used it; deleted, read it at 33ed8b0): its four sums
    are what the KL and NLL are made of, and a fold that answers None leaves the chunked path's numbers untouched."""
    from pytest_swapkl.engine.divergence import Head, _chunked_sums, base_distribution, chunk_step, kl_and_nll

    generator = torch.Generator().manual_seed(0)
    head = Head(final=[], weight=torch.randn(300, 16, generator=generator), bias=None, transform=None, chunk=64)
    base = base_distribution(head, torch.randn(2, 5, 16, generator=generator))
    probes = torch.randn(3, 2, 5, 16, generator=generator)
    labels = torch.randint(0, 300, (2, 4), generator=generator)
    expected = kl_and_nll(head, base, probes, labels)
    torch.testing.assert_close(kl_and_nll(head, base, probes, labels, fold=lambda *args: None), expected,
                               rtol=0, atol=0)
    chunked = lambda head, prepared, base, labels: _chunked_sums(head, base, prepared, labels, chunk_step)  # noqa: E731
    torch.testing.assert_close(kl_and_nll(head, base, probes, labels, fold=chunked), expected, rtol=0, atol=0)
    shifted = lambda *args: tuple(  # noqa: E731
        value + 1 if index == 2 else value for index, value in enumerate(chunked(*args)))
    kl, nll = kl_and_nll(head, base, probes, labels, fold=shifted)  # sum_v p_v z_v one larger: KL one smaller
    torch.testing.assert_close(kl, expected[0] - 1, rtol=0, atol=1e-9)
    torch.testing.assert_close(nll, expected[1], rtol=0, atol=0)
