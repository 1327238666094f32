"""The bundled multiple-choice task: built as documented, answered by the lowest NLL."""

import numpy as np
import pytest

from pytest_swapkl.inputs.loading import load_model
from pytest_swapkl.inputs.tasks import TaskError, bundled_task, continuation_task


class Numbers:
    """A tokenizer of one id per number, and works of distinct numbers: every span says where it came from."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [int(word) for word in text.split()]}


WORKS = [" ".join(str(1000 * w + n) for n in range(400)) for w in range(1, 4)]


def test_items_are_context_true_continuation_and_spans_of_the_same_work():
    task = continuation_task(WORKS, Numbers(), items=30, choices=4, context=20, continuation=8, seed=2)
    assert task.input_ids.shape == (30 * 4, 28) and task.chance == 0.25
    rows = task.input_ids.numpy().reshape(30, 4, 28)
    for item, answer in enumerate(task.answers):
        assert (rows[item, :, :20] == rows[item, 0, :20]).all()  # one context for every choice
        true = rows[item, answer]
        work, start = true[0] // 1000, true[0] % 1000
        assert (true == 1000 * work + start + np.arange(28)).all()  # context + its true continuation
        for choice in range(4):
            if choice != answer:
                span = rows[item, choice, 20:]
                assert (span // 1000 == work).all()  # a distractor comes from the same work,
                assert (np.diff(span) == 1).all()  # is a contiguous span of it
                begin = span[0] % 1000
                assert begin + 8 <= start or begin >= start + 28  # and lies outside the item's window
    assert len(set(task.answers.tolist())) == 4  # the true choice is shuffled


def test_halves_split_the_items_and_the_lowest_nll_answers():
    task = continuation_task(WORKS, Numbers(), items=10, choices=3, context=10, continuation=5, seed=0)
    calibration, heldout = task.half(0), task.half(1)
    assert calibration.n_items == heldout.n_items == 5
    assert (calibration.input_ids.numpy() == task.input_ids.numpy().reshape(10, 3, -1)[0::2].reshape(15, -1)).all()
    nll = np.ones((5, 3))
    nll[np.arange(5), calibration.answers] = 0.5
    nll[0, (calibration.answers[0] + 1) % 3] = 0.5  # a tie counts against the model
    assert calibration.correct(nll.reshape(-1)).tolist() == [0, 1, 1, 1, 1]


def test_too_short_text_is_one_line_error():
    with pytest.raises(TaskError, match="no text long enough"):
        continuation_task(["1 2 3"], Numbers(), items=2)


def test_bundled_task_on_the_demo_model_beats_chance(one_thread):
    from pytest_swapkl import engine

    loaded = load_model("demo", device="cpu")
    task = bundled_task(loaded.tokenizer, items=40, seed=0)
    assert task.input_ids.shape == (160, 64)
    measurement = engine.measure(loaded.model, task.input_ids, [])
    accuracy = task.correct(measurement.base_nll_per_seq).mean()
    assert accuracy > 0.4  # chance is 0.25; measured 0.5-0.6 on the demo model
