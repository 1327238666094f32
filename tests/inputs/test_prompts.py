"""prompts:FILE: one prompt per line or per jsonl record, right-padded with a mask; bad contracts exit 2."""

import json
import os
import subprocess
import sys

import pytest
import torch

from pytest_swapkl.inputs.data import load_calibration
from pytest_swapkl.inputs.prompts import PromptError


class Letters:
    """A tokenizer of one id per character (no BOS), enough to see lengths and padding."""

    bos_token_id = None
    eos_token_id = 3
    pad_token_id = 1

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [10 + (ord(c) % 50) for c in text]}


def test_text_prompts_are_lines_right_padded(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("abcd\n\nxy\nhello world\n")
    calibration = load_calibration(f"prompts:{path}", Letters(), seq_len=8)
    assert calibration.input_ids.shape == (3, 8)  # the blank line is no prompt; "hello world" cut to 8
    assert calibration.attention_mask.tolist() == [[1] * 4 + [0] * 4, [1] * 2 + [0] * 6, [1] * 8]
    assert calibration.input_ids[1, 2:].tolist() == [1] * 6  # the tokenizer's pad id
    assert calibration.n_tokens == 14


def test_jsonl_prompts_of_ids_keep_their_lengths(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps({"input_ids": ids}) for ids in ([5, 6, 7], [8, 9], [5, 6, 7, 8, 9])))
    calibration = load_calibration(f"prompts:{path}", None, seq_len=16)
    assert calibration.attention_mask.sum(1).tolist() == [3, 2, 5]
    assert calibration.input_ids[1].tolist() == [8, 9, 0, 0, 0]  # no tokenizer: pad id 0
    same_ids_other_mask = load_calibration(f"prompts:{path}", None, seq_len=4)
    assert same_ids_other_mask.sha256 != calibration.sha256


def test_pads_in_pads_every_prompt_to_seq_len_as_the_paper_does(tmp_path):
    # --pads in reads the pads, so their number is part of the contract (padding="max_length" in the paper)
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps({"input_ids": ids}) for ids in ([5, 6, 7], [8, 9])))
    calibration = load_calibration(f"prompts:{path}", None, seq_len=6, pad_to_seq_len=True)
    assert calibration.input_ids.tolist() == [[5, 6, 7, 0, 0, 0], [8, 9, 0, 0, 0, 0]]
    assert calibration.attention_mask.sum(1).tolist() == [3, 2]


@pytest.mark.parametrize("text, message", [("a\nbc\n", "prompt 0 has 1 token"), ("\n\n", "holds no prompts")])
def test_bad_prompt_files_are_refused(tmp_path, text, message):
    path = tmp_path / "p.txt"
    path.write_text(text)
    with pytest.raises(PromptError, match=message):
        load_calibration(f"prompts:{path}", Letters(), seq_len=8)


def test_prompts_need_a_txt_or_jsonl_file(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("ab\n")
    with pytest.raises(PromptError, match="a .txt file"):
        load_calibration(f"prompts:{path}", Letters(), seq_len=8)


@pytest.mark.parametrize("flags, message", [
    (["--positions", "last:40"], "last:40 reads beyond prompt"),
    (["--positions", "first"], "must be all, last or last:K"),
    (["--pads", "maybe"], "invalid choice"),
])
def test_bad_contracts_exit_2_in_one_line(tmp_path, flags, message):
    path = tmp_path / "p.txt"
    path.write_text("The quick brown fox jumps over the lazy dog.\nA short one.\n")
    result = subprocess.run([sys.executable, "-m", "pytest_swapkl", "audit", "demo", "--data", f"prompts:{path}",
                             "--pairs", "0-1", "--noise-probes", "0", *flags], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_pads_in_without_pads_is_fine(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps({"input_ids": ids}) for ids in ([5, 6, 7], [8, 9, 10])))
    calibration = load_calibration(f"prompts:{path}", None, seq_len=16)
    assert bool(calibration.attention_mask.all()) and isinstance(calibration.attention_mask, torch.Tensor)


def test_npy_prompts_are_rows_right_padded_with_the_pad_id(tmp_path):
    import numpy as np

    path = tmp_path / "ids.npy"
    np.save(path, np.array([[5, 6, 7, 1, 1], [8, 9, 1, 1, 1], [5, 1, 6, 7, 8]]))  # Letters' pad id is 1
    calibration = load_calibration(f"prompts:{path}", Letters(), seq_len=8)
    assert calibration.attention_mask.sum(1).tolist() == [3, 2, 5]  # a pad id inside a prompt stays a token
    assert calibration.input_ids[1].tolist() == [8, 9, 1, 1, 1]
    fixed = load_calibration(f"prompts:{path}", Letters(), seq_len=8, pad_to_seq_len=True)
    assert fixed.input_ids.shape == (3, 8) and fixed.sha256 != calibration.sha256
