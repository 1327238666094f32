"""The real pretrained checkpoints (SmolLM2-135M, Gemma-3-270M, GGUF from the package registry), in float32 on CPU:
the fast path equals the reference semantics on every adjacent pair, every removal and a sample of non-adjacent
pairs, and identity probes give exactly 0. Skipped when the model's package is not installed."""

import random

import pytest

from pytest_swapkl import engine
from pytest_swapkl import probes as P
from pytest_swapkl.inputs.data import load_calibration
from pytest_swapkl.inputs.named_models import NAMED_MODELS

TOLERANCE = 1e-6  # nats, absolute, on per-probe mean KL


def _installed(name: str) -> bool:
    return NAMED_MODELS[name].installed()


@pytest.fixture(scope="module", params=["smollm2-135m", "gemma3-270m"])
def real(request, one_thread):
    if not _installed(request.param):
        pytest.skip(f"{request.param} is not installed: {NAMED_MODELS[request.param].install}")
    from pytest_swapkl.inputs.loading import load_model

    loaded = load_model(request.param, dtype="float32", device="cpu")
    calibration = load_calibration("demo", loaded.tokenizer, tokens=64, seq_len=32, seed=0,
                                   vocab_size=loaded.vocab_size, max_positions=loaded.max_positions)
    return loaded, calibration.input_ids


def _probes(n: int) -> list:
    adjacent = P.audit_probes(P.parse_pairs("adjacent", n), n)  # both replacements, interchange, every removal
    others = random.Random(0).sample([(i, j) for i in range(n) for j in range(i + 2, n)], 4)
    sample = [probe for i, j in others for probe in (P.replacement(i, j, n), P.replacement(j, i, n),
                                                      P.interchange(i, j, n))]
    return adjacent + sample + [P.identity(n), P.replacement(3, 3, n), P.interchange(5, 5, n)]


@pytest.mark.real
@pytest.mark.slow
def test_fast_path_equals_reference_on_a_real_model(real):
    loaded, ids = real
    probes = _probes(loaded.n_layers)
    fast = engine.measure(loaded.model, ids, probes, compile="off")
    reference = engine.measure(loaded.model, ids, probes, path="reference")
    assert fast.path == "fast" and reference.path == "reference"
    worst = max(probes, key=lambda p: abs(fast.kl(p) - reference.kl(p)))
    assert abs(fast.kl(worst) - reference.kl(worst)) <= TOLERANCE, (worst.name, fast.kl(worst), reference.kl(worst))
    assert abs(fast.base_ppl - reference.base_ppl) <= 1e-6 * reference.base_ppl
    for identity in probes[-3:]:
        assert fast.kl(identity) == 0.0 and reference.kl(identity) == 0.0


@pytest.mark.real
def test_a_real_model_is_a_pretrained_one(real):
    """Held-out perplexity far below a random model's (about the vocabulary size, 49k and 262k here): the weights
    are the trained ones. (Two 32-token sequences of the held-out text: about 100 for SmolLM2, 240 for Gemma.)"""
    loaded, ids = real
    result = engine.measure(loaded.model, ids, [P.identity(loaded.n_layers)])
    assert result.base_ppl < 1000 < loaded.vocab_size / 40
    assert loaded.weights["format"] == "gguf" and loaded.weights["quantization"] in ("Q4_1", "Q4_K_M")
