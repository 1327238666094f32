"""The sliding-window evaluator against a plain reference loop (model forward per window, labels -100 on the
context), the paper's window plan, and the held-out stream read from a local save_to_disk folder."""

import math

import numpy as np
import pytest
from tiny_models import random_ids, tiny_model
from window_reference import pruned_copy, reference_loop

from pytest_swapkl.analysis import stats
from pytest_swapkl.analysis.guided_removal import paired_ratio
from pytest_swapkl.analysis.objectives import Objective
from pytest_swapkl.analysis.sliding_window import WindowedEvaluator, WindowError, plan_windows, sliding_window_ppl
from pytest_swapkl.inputs.heldout_stream import PAPER_SOURCE, load_heldout_stream, paper_text

N_LAYERS = 4
pytestmark = pytest.mark.usefixtures("one_thread")


def paper_plan(n, window, stride):
    """wikitext_ppl.py's loop, verbatim in its arithmetic: (begin, end, target_len) per window."""
    plan, prev_end = [], 0
    for begin in range(0, n, stride):
        end = min(begin + window, n)
        plan.append((begin, end, end - prev_end))
        prev_end = end
        if end == n:
            break
    return plan


@pytest.mark.parametrize("n,window,stride", [(2, 2, 1), (10, 4, 2), (37, 8, 3), (64, 16, 16), (5, 16, 8),
                                             (1000, 1024, 512), (3000, 512, 256)])
def test_windows_score_every_token_once_as_the_paper_loop_labels_them(n, window, stride):
    windows = plan_windows(n, window, stride)
    scored = [t for w in windows for t in range(w.scored_from, w.end)]
    # each token once, in order; all but the first when windows overlap (with stride == window the first token of
    # each window has no context, as in the HF recipe)
    unscored = {0} if stride < window else {w.begin for w in windows}
    assert scored == [t for t in range(n) if t not in unscored]
    for w, (begin, end, target_len) in zip(windows, paper_plan(n, window, stride), strict=True):
        assert (w.begin, w.end) == (begin, end)
        # the paper's labels: the last target_len tokens of the chunk (HF drops the first label when it shifts)
        assert w.scored_from == max(end - target_len, begin + 1)


@pytest.mark.parametrize("window,stride", [(1, 1), (8, 9), (8, 0)])
def test_bad_window_is_one_line(window, stride):
    with pytest.raises(WindowError, match="--heldout-window"):
        plan_windows(100, window, stride)


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_windowed_costs_equal_the_plain_reference_loop(model_type):
    model = tiny_model(model_type, n_layers=N_LAYERS, seed=2)
    stream = random_ids(1, 90, seed=5)[0]
    window, stride = 16, 6
    ppl = WindowedEvaluator(model, stream, Objective("ppl"), N_LAYERS, window, stride)
    kl = WindowedEvaluator(model, stream, Objective("kl"), N_LAYERS, window, stride)
    base_nll, _ = reference_loop(model, stream, window, stride)
    tokens = len(stream) - 1
    assert ppl.base_cost() == pytest.approx(math.exp(base_nll.sum() / tokens), rel=1e-6)
    assert sliding_window_ppl(model, stream, window, stride) == pytest.approx(ppl.base_cost(), rel=1e-12)
    for layers in [(1,), (0, 2), (1, 2, 3)]:
        nll, divergence = reference_loop(pruned_copy(model, layers), stream, window, stride, base=model)
        assert ppl.costs([layers])[0] == pytest.approx(math.exp(nll.sum() / tokens), rel=1e-6)
        assert kl.costs([layers])[0] == pytest.approx(divergence.sum() / tokens, rel=1e-6)
        # per window: a unit is the window's sum scaled so that the units' mean is the token-weighted mean
        np.testing.assert_allclose(ppl.units(layers) * tokens / len(ppl.windows), nll, rtol=1e-6)


def test_windows_are_the_units_of_the_paired_verdicts():
    model = tiny_model("llama", n_layers=N_LAYERS, seed=2)
    stream = random_ids(1, 120, seed=6)[0]
    evaluator = WindowedEvaluator(model, stream, Objective("ppl"), N_LAYERS, 16, 8)
    assert len(evaluator.base_units()) == evaluator.n_units == len(evaluator.windows)
    indices = stats.bootstrap_indices(evaluator.n_units, 200, 0)
    a, b = evaluator.units((1,)), evaluator.units((0, 3))
    verdict = paired_ratio(evaluator.objective, a, b, indices)
    assert verdict["ratio"] == pytest.approx(evaluator.costs([(1,)])[0] / evaluator.costs([(0, 3)])[0], rel=1e-9)
    assert verdict["ratio_low"] <= verdict["ratio"] <= verdict["ratio_high"]


@pytest.fixture
def word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<eos>": 1, **{f"w{i}": i + 2 for i in range(40)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>")


def test_paper_text_joins_non_blank_rows_and_cuts_words():
    rows = [" = Title = \n", "", " \n", " w1 w2\n", " w3 w4 w5\n"]
    assert paper_text(rows, None) == " = Title = \n\n\n w1 w2\n\n\n w3 w4 w5\n"
    assert paper_text(rows, 4) == "= Title = w1"
    assert paper_text(rows, 100) == paper_text(rows, None)  # no cut: the text as joined


def test_stream_from_a_local_save_to_disk_folder(tmp_path, monkeypatch, word_tokenizer):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    rows = ["", " w1 w2 w3\n", " \n", " w4 w5\n", " w6 w7 w8 w9\n"]
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"text": rows})}).save_to_disk(tmp_path / "wikitext")
    stream = load_heldout_stream(str(tmp_path / "wikitext"), word_tokenizer, words=6, vocab_size=64)
    assert stream.input_ids.tolist() == [3, 4, 5, 6, 7, 8]  # w1..w6
    assert stream.record()["words"] == 6 and stream.n_tokens == 6
    whole = load_heldout_stream(str(tmp_path / "wikitext"), word_tokenizer, tokens=4)
    assert whole.input_ids.tolist() == [3, 4, 5, 6]
    assert PAPER_SOURCE == "hf:wikitext:wikitext-2-raw-v1:test"


def test_windows_of_one_shape_run_together_and_give_what_one_window_per_forward_gives(monkeypatch):
    from pytest_swapkl.analysis import sliding_window
    from pytest_swapkl.engine.probes import removal

    model = tiny_model("llama", n_layers=N_LAYERS, seed=2)
    stream = random_ids(1, 101, seed=7)[0]
    windows = plan_windows(len(stream), 16, 8)
    # the first window scores from its second token, the last is short: neither joins the middle ones
    assert [len(group) for group in sliding_window._batches(windows, 64)] == [1, len(windows) - 2, 1]
    probes = [removal((1,), N_LAYERS), removal((0, 2), N_LAYERS)]
    batched = sliding_window.window_measurement(model, stream, windows, probes)
    monkeypatch.setattr(sliding_window, "_MAX_LOG_PROB_VALUES", 1)  # one window per forward
    assert len(sliding_window._batches(windows, 64)) == len(windows)
    single = sliding_window.window_measurement(model, stream, windows, probes)
    np.testing.assert_allclose(batched.base_nll_per_seq, single.base_nll_per_seq, rtol=1e-6)
    for probe in probes:
        np.testing.assert_allclose(batched[probe].kl_per_seq, single[probe].kl_per_seq, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(batched[probe].nll_per_seq, single[probe].nll_per_seq, rtol=1e-6)
