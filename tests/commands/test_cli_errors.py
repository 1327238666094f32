"""Bad input to `swapkl audit`: a one-line error naming the problem and the fix, exit code 2, no traceback,
no JSON left behind. `python tests/test_cli_errors.py` prints these cases as the table in docs/errors.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from tiny_models import tiny_model
from transformers import BertConfig, BertForMaskedLM

from pytest_swapkl.commands.cli import main

Case = Callable[[Path], tuple[list[str], str]]  # builds files under tmp, returns (argv, expected message part)


def _saved_tiny(tmp: Path, safe: bool = True) -> Path:
    folder = tmp / "tiny"
    tiny_model("llama").save_pretrained(folder, safe_serialization=safe)
    return folder


def missing_path(tmp):
    return ["audit", str(tmp / "nowhere")], "no such folder"


def folder_without_weights(tmp):
    folder = _saved_tiny(tmp)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    return ["audit", str(folder)], "no model weights"


def encoder_model(tmp):
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32)
    BertForMaskedLM(config).save_pretrained(tmp / "bert")
    return ["audit", str(tmp / "bert")], "not a decoder-only causal language model"


def pickle_only(tmp):
    folder = tmp / "pickled"
    model = tiny_model("llama")
    folder.mkdir()
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return ["audit", str(folder)], "--allow-pickle"


def truncated_safetensors(tmp):
    folder = _saved_tiny(tmp)
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return ["audit", str(folder)], "truncated or corrupt"


def empty_data(tmp):
    (tmp / "empty.txt").write_text("")
    return ["audit", "demo", "--data", str(tmp / "empty.txt")], "empty"


def short_data(tmp):
    (tmp / "short.txt").write_text("To be, or not to be.")
    return ["audit", "demo", "--data", str(tmp / "short.txt")], "fewer than --seq-len"


def seq_len_too_long(tmp):
    return ["audit", "demo", "--seq-len", "4096"], "exceeds the model's maximum of 512 positions"


def ids_outside_vocabulary(tmp):
    np.save(tmp / "ids.npy", np.full((2, 16), 5000, dtype=np.int64))
    return ["audit", "demo", "--data", str(tmp / "ids.npy")], "outside the model's vocabulary of 2048"


def pair_out_of_range(tmp):
    return ["audit", "demo", "--pairs", "0-9"], "layer 9 is out of range"


def unknown_dtype(tmp):
    return ["audit", "demo", "--dtype", "float8"], "unknown dtype 'float8'"


def unknown_device(tmp):
    return ["audit", "demo", "--device", "tpu"], "unknown device 'tpu'"


def cuda_without_gpu(tmp):
    return ["audit", "demo", "--device", "cuda"], "no CUDA GPU"


def bad_pair_spec(tmp):
    return ["audit", "demo", "--pairs", "neighbours"], "is not understood"


def non_positive_tokens(tmp):
    return ["audit", "demo", "--tokens", "0"], "--tokens: must be a positive integer, got 0"


CASES: list[Case] = [missing_path, folder_without_weights, encoder_model, pickle_only, truncated_safetensors,
                     empty_data, short_data, seq_len_too_long, ids_outside_vocabulary, pair_out_of_range,
                     bad_pair_spec, unknown_dtype, unknown_device, cuda_without_gpu, non_positive_tokens]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_bad_input_fails_in_one_line(case, tmp_path, capsys):
    if case is cuda_without_gpu and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv, expected = case(tmp_path)
    output = tmp_path / "out" / "audit.json"
    code = main([*argv, "--json", str(output)])
    captured = capsys.readouterr()
    message = captured.err.strip().splitlines()
    assert code == 2
    assert message[-1].startswith("swapkl: error: ") and expected in message[-1], captured.err
    assert not [line for line in message if line.startswith("swapkl: error")][1:], "exactly one error line"
    assert "Traceback" not in captured.err
    assert not output.exists() and not output.parent.exists() or not any(output.parent.iterdir())


def test_real_process_exit_code_and_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pytest_swapkl", "audit", str(tmp_path / "nowhere")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("swapkl: error: no such folder")


def error_table() -> str:
    import contextlib
    import io
    import tempfile

    rows = ["| bad input | what `swapkl audit` prints (exit code 2) |", "| --- | --- |"]
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            argv, _ = case(Path(tmp))
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
            line = stderr.getvalue().strip().splitlines()[-1].replace(tmp, "TMP")
            line = line.replace("|", "\\|")  # a pipe would end the table cell
            rows.append(f"| {case.__name__.replace('_', ' ')} | `{line}` (exit {code}) |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(error_table())
