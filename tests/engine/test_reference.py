"""The reference path itself equals a model rebuilt with its layers in the probe's order.

The rebuilt model is a fresh `from_config` model whose slot k is loaded with layer
order[k]'s weights and whose `layer_types` follow the modules: the definition in
GUIDE section 1, computed without any monkey-patching.
"""

import pytest
import torch
from tiny_models import FALLBACK_FAMILIES, random_ids, tiny_model
from transformers import AutoModelForCausalLM

from pytest_swapkl import probes as P
from pytest_swapkl.engine.adapters import find_layer_list
from pytest_swapkl.engine.reference import model_log_probs, permuted_layers


def rebuilt(model, order):
    config = model.config.__class__.from_dict(model.config.to_dict())
    config.num_hidden_layers = len(order)
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = [model.config.layer_types[m] for m in order]
    fresh = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32).eval()
    owner, attr = find_layer_list(model)
    prefix = next(name for name, module in model.named_modules() if module is getattr(owner, attr))
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith(prefix + "."):
            module, rest = key[len(prefix) + 1 :].split(".", 1)
            for slot, source in enumerate(order):
                if int(module) == source:
                    state[f"{prefix}.{slot}.{rest}"] = value
        else:
            state[key] = value
    fresh.load_state_dict(state, strict=True)
    return fresh


@pytest.mark.parametrize("family", ["gpt2", "opt", "qwen2", "gemma2", "gemma3_text", *FALLBACK_FAMILIES])
def test_reference_equals_rebuilt_model(family):
    model = tiny_model(family)
    n = model.config.num_hidden_layers
    ids = random_ids(2, 20)
    for probe in [P.replacement(0, 3, n), P.interchange(0, 1, n), P.removal([1], n), P.layer_order([3, 0, 0], n)]:
        with torch.no_grad(), permuted_layers(model, probe.order):
            patched = model_log_probs(model, ids)
        with torch.no_grad():
            expected = model_log_probs(rebuilt(model, probe.order), ids)
        torch.testing.assert_close(patched, expected, rtol=0, atol=1e-5, msg=probe.name)
