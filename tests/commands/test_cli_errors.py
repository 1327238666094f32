"""Bad input to `swapkl audit`: a one-line error naming the problem and the fix, exit code 2, no traceback,
no JSON left behind. `python tests/test_cli_errors.py` prints these cases as the table in docs/errors.md."""

from __future__ import annotations

import json
import os
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


def _tiny_ids(tmp) -> str:
    np.save(tmp / "ids.npy", np.arange(32).reshape(2, 16) % 90)
    return str(tmp / "ids.npy")


def config_and_weights_disagree(tmp):
    folder = _saved_tiny(tmp)  # 4 layers
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 2}))
    return ["audit", str(folder), "--data", _tiny_ids(tmp)], "(config.json says 2 layers, the weights have 4)"


def shard_outside_the_folder(tmp):
    folder = _saved_tiny(tmp)
    (folder / "model.safetensors").rename(tmp / "elsewhere.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"lm_head.weight":
                                                                                    "../elsewhere.safetensors"}}))
    return ["audit", str(folder)], "outside the checkpoint folder: refused"


def config_number_too_large(tmp):
    folder = _saved_tiny(tmp)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 10**9}))
    return ["audit", str(folder)], "num_hidden_layers=1000000000 is not a whole number of layers from 1 to 1024"


def inf_weight_in_float32(tmp):
    from safetensors.torch import load_file, save_file

    folder = _saved_tiny(tmp)
    tensors = load_file(folder / "model.safetensors")
    tensors["model.layers.0.mlp.down_proj.weight"][0, 0] = float("inf")
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return (["audit", str(folder), "--data", _tiny_ids(tmp), "--dtype", "float32"],
            "the weights hold NaN or infinite values (e.g. model.layers.0.mlp.down_proj.weight)")


def fifo_as_data(tmp):
    os.mkfifo(tmp / "pipe.txt")
    return ["audit", "demo", "--data", str(tmp / "pipe.txt")], "is a FIFO, not a regular file or folder"


def jsonl_line_not_utf8(tmp):
    (tmp / "mixed.jsonl").write_bytes(b'{"text": "the cat"}\n{"text": "caf\xe9"}\n')
    return ["audit", "demo", "--data", str(tmp / "mixed.jsonl")], "line 2 is not UTF-8 text (invalid continuation"


def jsonl_id_beyond_int64(tmp):
    (tmp / "ids.jsonl").write_text(json.dumps({"input_ids": [5, 2**63, 7]}) + "\n")
    return ["audit", "demo", "--data", str(tmp / "ids.jsonl")], f"token id {2**63} in"


def npy_header_claims_too_much(tmp):
    header = "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000, 16), }"
    header += " " * (117 - len(header)) + "\n"
    (tmp / "ids.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
                                  + b"\0" * 64)
    return ["audit", "demo", "--data", str(tmp / "ids.npy")], "is truncated or corrupt (its header claims shape"


def garbage_rope_parameters(tmp):
    """Issue 35: transformers took a negative rotary base and ended in NaN logits blamed on the weights."""
    folder = _saved_tiny(tmp)
    config = json.loads((folder / "config.json").read_text())
    config["rope_scaling"] = {"rope_type": "linear", "factor": -2.0}
    (folder / "config.json").write_text(json.dumps(config))
    return ["audit", str(folder)], "factor=-2.0 must be a finite number above 0 (a rotary-embedding parameter)"


def absurd_max_memory(tmp):
    return ["audit", "demo", "--max-memory", "1e300GiB"], "must be a memory size from 1MiB to 1PiB"


def misspelled_named_model(tmp):
    return ["audit", "smollm2"], "unknown model 'smollm2': did you mean smollm2-135m?"


def bootstrap_beyond_memory(tmp):
    """Refused before the measurement, not after it (issue 35): resamples x sequences over the cap."""
    return (["audit", "demo", "--bootstrap", "100000", "--tokens", "100000", "--seq-len", "64"],
            "--bootstrap 100000 with 1562 sequences or probes needs")


CASES: list[Case] = [garbage_rope_parameters, absurd_max_memory, misspelled_named_model, bootstrap_beyond_memory,
                     missing_path,
                     folder_without_weights, encoder_model, pickle_only, truncated_safetensors,
                     config_and_weights_disagree, shard_outside_the_folder, config_number_too_large,
                     inf_weight_in_float32, empty_data, short_data, fifo_as_data, jsonl_line_not_utf8,
                     jsonl_id_beyond_int64, npy_header_claims_too_much, seq_len_too_long, ids_outside_vocabulary,
                     pair_out_of_range, bad_pair_spec, unknown_dtype, unknown_device, cuda_without_gpu,
                     non_positive_tokens]


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
