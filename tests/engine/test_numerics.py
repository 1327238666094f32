"""Bad numbers never pass silently: NaN or infinite logits fail the probe that made them, by name."""

import pytest
import torch
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
