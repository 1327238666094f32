"""A checkpoint's weights must be what its config.json says, and its files what they claim to be: every mismatch,
crafted index and oversized number is a one-line LoadError before anything large is allocated (issue 20)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import tiny_model

from pytest_swapkl.inputs.loading import LoadError, load_model
from pytest_swapkl.inputs.weights import condensed, transformers_log


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny llamas of 2 and 4 layers, saved once."""
    root = tmp_path_factory.mktemp("ckpt")
    for n in (2, 4):
        tiny_model("llama", n_layers=n).save_pretrained(root / f"llama{n}")
    return root


def folder_of(saved: Path, tmp_path: Path, n: int = 2) -> Path:
    return Path(shutil.copytree(saved / f"llama{n}", tmp_path / "ckpt"))


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def load_error(folder: Path, notices: list | None = None) -> str:
    with pytest.raises(LoadError) as error:
        load_model(str(folder), notice=(notices if notices is not None else []).append)
    message = str(error.value)
    assert "\n" not in message and message.strip() == message
    return message


# --- the weights against config.json ---------------------------------------------------------------------

def test_a_config_of_2_layers_next_to_weights_of_4_fails(saved, tmp_path, capfd):
    folder = folder_of(saved, tmp_path, 4)
    shutil.copy(saved / "llama2" / "config.json", folder / "config.json")
    message = load_error(folder)
    assert message.startswith(f"{folder} holds 18 tensor(s) that config.json's LlamaForCausalLM has no place for "
                              "(e.g. model.layers.2.input_layernorm.weight, model.layers.2.mlp.down_proj.weight, "
                              "model.layers.2.mlp.gate_proj.weight, and 15 more) (config.json says 2 layers, the "
                              "weights have 4): the weights do not match config.json")
    assert "LOAD REPORT" not in capfd.readouterr().err  # transformers' table is not dumped on stderr


def test_a_config_of_4_layers_next_to_weights_of_2_fails(saved, tmp_path):
    folder = folder_of(saved, tmp_path, 2)
    shutil.copy(saved / "llama4" / "config.json", folder / "config.json")
    assert load_error(folder).startswith(f"{folder} lacks weights for 18 tensor(s) of LlamaForCausalLM (e.g. "
                                         "model.layers.2.input_layernorm.weight")


def test_extra_and_mis_shaped_tensors_fail_naming_them(saved, tmp_path):
    folder = folder_of(saved, tmp_path)
    tensors = load_file(folder / "model.safetensors")
    save_file({**tensors, "model.extra.weight": torch.zeros(3)}, folder / "model.safetensors",
              metadata={"format": "pt"})
    assert "holds 1 tensor(s) that config.json's LlamaForCausalLM has no place for (e.g. model.extra.weight)" \
        in load_error(folder)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    edit_config(folder, intermediate_size=72)  # 64 in the weights
    message = load_error(folder)
    assert message.startswith(f"{folder} holds 6 tensor(s) of another shape than config.json gives LlamaForCausalLM "
                              "(model.layers.0.mlp.down_proj.weight: [32, 64] in the file, [32, 72] in the model")


@pytest.mark.parametrize("key, value", [("num_hidden_layers", -1), ("num_hidden_layers", "2"),
                                        ("num_hidden_layers", True), ("num_hidden_layers", 10**6),
                                        ("hidden_size", 2**40), ("vocab_size", 0), ("num_attention_heads", 1.5),
                                        ("max_position_embeddings", 10**30)])
def test_numbers_in_config_json_are_checked_before_they_size_a_model(saved, tmp_path, key, value):
    folder = folder_of(saved, tmp_path)
    edit_config(folder, **{key: value})
    assert f"config.json: {key}={value!r} is not a whole number of " in load_error(folder)


def test_a_config_far_larger_than_its_weights_fails_before_allocating(saved, tmp_path):
    folder = folder_of(saved, tmp_path)
    edit_config(folder, hidden_size=65536, intermediate_size=200000, num_attention_heads=4, num_key_value_heads=2,
                vocab_size=1 << 20)  # each under its cap; together about 20 TB of float32
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = load_error(folder)
    assert "config.json describes a LlamaForCausalLM of " in message
    assert "but the weights files hold only 24,800 numbers" in message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB: nothing of that size


# --- what the folder's files are ---------------------------------------------------------------------------

@pytest.mark.parametrize("entry", ["../outside.safetensors", "/tmp/outside.safetensors", "sub/../../x.safetensors"])
def test_shard_index_entries_stay_inside_the_checkpoint_folder(saved, tmp_path, entry):
    folder = folder_of(saved, tmp_path)
    (folder / "model.safetensors").rename(tmp_path / "outside.safetensors")
    names = load_file(tmp_path / "outside.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {name: entry for name in names}}))
    assert f"names the weights file {entry!r}, outside the checkpoint folder: refused" in load_error(folder)


@pytest.mark.parametrize("name", ["tokenizer.json", "model.safetensors", "config.json"])
def test_a_fifo_or_device_in_the_checkpoint_folder_fails_at_once(saved, tmp_path, name):
    folder = folder_of(saved, tmp_path)
    (folder / name).unlink(missing_ok=True)
    if name == "config.json":
        (folder / name).symlink_to("/dev/zero")
    else:
        os.mkfifo(folder / name)
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(load_error(folder)), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert outcome, "loading blocked"
    kind = "a character device" if name == "config.json" else "a FIFO"
    assert outcome[0].startswith(f"{folder / name} is {kind}, not a regular file")


def test_a_safetensors_header_cannot_claim_more_than_the_file(saved, tmp_path):
    folder = folder_of(saved, tmp_path)
    data = bytearray((folder / "model.safetensors").read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    name = next(key for key in header if key != "__metadata__")
    header[name]["shape"] = [10**12, 10**12]  # its byte range no longer matches
    text = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(len(text).to_bytes(8, "little") + text + data[8 + header_len:])
    assert load_error(folder) == f"{folder / 'model.safetensors'} is truncated or corrupt: re-download or re-save it"


# --- transformers' load report ------------------------------------------------------------------------------

def test_the_load_report_is_caught_and_condensed_into_one_line(saved, tmp_path, capfd):
    from transformers import AutoModelForCausalLM

    folder = folder_of(saved, tmp_path, 4)
    shutil.copy(saved / "llama2" / "config.json", folder / "config.json")
    with transformers_log() as said:
        AutoModelForCausalLM.from_pretrained(str(folder))
    assert "LOAD REPORT" not in capfd.readouterr().err
    line = condensed(said, "ckpt")
    assert line.startswith(f"transformers, loading ckpt: LlamaForCausalLM LOAD REPORT from: {folder} (+")
    assert "\n" not in line and "\x1b" not in line
    assert condensed([], "ckpt") is None


def test_a_matching_checkpoint_still_loads_without_notices(saved, tmp_path):
    notices: list = []
    loaded = load_model(str(saved / "llama2"), notice=notices.append)
    assert loaded.n_layers == 2 and not [n for n in notices if n.startswith("transformers")]


# --- issue 35: what a config or a tokenizer file implies, checked before it is built ----------------------------

def test_a_position_count_under_its_cap_that_implies_gigabytes_of_buffers_fails_before_allocating(tmp_path):
    """GPT-J keeps a sin/cos table of n_positions x n_embd floats as a buffer, which no weights file holds, so the
    weights check cannot see it: n_positions = 2**26 (under MAX_POSITIONS) would allocate 16 GiB in from_pretrained."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("gptj", n_layer=1, n_embd=64, n_head=1, rotary_dim=64, vocab_size=256,
                                  n_positions=64)
    folder = tmp_path / "gptj"
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    edit_config(folder, n_positions=1 << 26)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = load_error(folder)
    assert message.startswith(f"{folder}: config.json describes a GPTJForCausalLM whose buffers (causal masks, "
                              "position tables) alone take 17,179,869,184 bytes, over the 4,294,967,296 byte limit "
                              "(n_positions=67108864): lower the position count in config.json")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB: nothing of that size


DEMO = Path(__file__).resolve().parents[2] / "pytest_swapkl" / "data" / "demo_model"


@pytest.mark.parametrize("name, content, problem", [
    ("tokenizer_config.json", b"[" * 100_000, "nested"),
    ("tokenizer_config.json", b'{"a": "\xff"}', "not UTF-8"),
    ("special_tokens_map.json", b"{", "truncated"),
    ("tokenizer.json", None, "over the 1000 byte limit"),
], ids=["config nested 100k deep", "config not UTF-8", "special tokens truncated", "tokenizer.json over the cap"])
def test_tokenizer_files_are_capped_and_read_by_the_guarded_reader(saved, tmp_path, monkeypatch, name, content,
                                                                   problem):
    """tokenizer_config.json used to be read whole with read_text; tokenizer.json went to `tokenizers` at any
    size. Each is now capped before they open it (MAX_TOKENIZER_BYTES, lowered here), and the small JSON files
    go through the guarded reader: one line naming the file."""
    from pytest_swapkl.inputs import weights

    folder = folder_of(saved, tmp_path)
    for file in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(DEMO / file, folder / file)
    if content is not None:
        (folder / name).write_bytes(content)
    monkeypatch.setattr(weights, "MAX_TOKENIZER_BYTES", 1000 if content is None else weights.MAX_TOKENIZER_BYTES)
    message = load_error(folder)
    assert message.startswith(f"{folder / name}: ") and problem in message
