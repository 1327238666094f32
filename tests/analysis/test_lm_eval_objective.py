"""The lm-eval:TASK objective on the demo model, with a small local multiple-choice task defined here (offline)."""

import json

import numpy as np
import pytest

lm_eval = pytest.importorskip("lm_eval")

from pytest_swapkl.analysis import search  # noqa: E402
from pytest_swapkl.analysis.guides import measure_guides  # noqa: E402
from pytest_swapkl.analysis.lm_eval_objective import LmEvalEvaluator  # noqa: E402
from pytest_swapkl.inputs.loading import load_model  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]  # the harness imports for ~30 s

DOCS = [
    {"question": "To be, or not to", "choices": [" be", " sea", " king", " night"], "answer": 0},
    {"question": "O Romeo, Romeo, wherefore art thou", "choices": [" dog", " Romeo", " table", " seven"], "answer": 1},
    {"question": "Now is the winter of our", "choices": [" spoon", " green", " discontent", " fish"], "answer": 2},
    {"question": "All the world's a", "choices": [" carrot", " wheel", " nine", " stage"], "answer": 3},
    {"question": "A horse, a horse, my kingdom for a", "choices": [" horse", " cloud", " ear", " ink"], "answer": 0},
    {"question": "Friends, Romans,", "choices": [" lamps", " countrymen", " rivers", " bread"], "answer": 1},
]


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm_eval_task")
    data = folder / "docs.jsonl"
    data.write_text("".join(json.dumps(doc) + "\n" for doc in DOCS))
    (folder / "swapkl_quotes.yaml").write_text(f"""task: swapkl_quotes
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
""")
    return folder


def test_lm_eval_task_scores_the_pruned_model_and_restores_it(task_folder, one_thread):
    loaded = load_model("demo", device="cpu")
    evaluator = LmEvalEvaluator(loaded.model, loaded.tokenizer, "swapkl_quotes", loaded.n_layers,
                                include_path=str(task_folder), batch_size=6)
    base = evaluator.base_units()
    assert base.shape == (len(DOCS),) and set(np.unique(base)) <= {0.0, 1.0}
    [pruned] = evaluator.costs([(0, 1, 2, 3, 4, 5)])  # two layers left: a different model answers
    assert 0.0 <= pruned <= 1.0
    assert len(loaded.model.gpt_neox.layers) == 8 and loaded.model.config.num_hidden_layers == 8  # restored
    found = search.run_search("one-shot", measure_guides(loaded.model, _ids(loaded), 8, ["removal"])["removal"],
                              evaluator, 8, search.Settings(), k=1)
    assert found.objective == "lm-eval:swapkl_quotes" and found.spend.evaluations == 1


def _ids(loaded):
    from pytest_swapkl.inputs.data import load_calibration

    return load_calibration("demo", loaded.tokenizer, tokens=512, seq_len=64).input_ids
