"""A saved pruned model loads with from_pretrained and reproduces removal(S) measured on the full model."""

import json

import pytest
import torch
from tiny_models import random_ids, tiny_model
from transformers import AutoModelForCausalLM

from pytest_swapkl import engine
from pytest_swapkl.engine.probes import removal
from pytest_swapkl.engine.pruned import pruned_copy, save_pruned

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("family", ["gpt_neox", "llama", "gemma3_text"])
def test_saved_pruned_model_reproduces_the_removal_probe(family, tmp_path):
    model = tiny_model(family, n_layers=5, seed=1)
    ids = random_ids(3, 12, seed=2)
    removed = [1, 3]
    full = engine.measure(model, ids, [removal(removed, 5)], path="reference")
    folder = save_pruned(model, None, removed, tmp_path / "pruned", {"search": "test"})
    config = json.loads((folder / "config.json").read_text())
    assert config["num_hidden_layers"] == 3 and config["swapkl_pruning"]["removed"] == removed
    if family == "gemma3_text":  # every kept layer keeps its own attention type
        assert config["layer_types"] == [model.config.layer_types[layer] for layer in (0, 2, 4)]
    assert any(path.suffix == ".safetensors" for path in folder.iterdir())
    loaded = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
    alone = engine.measure(loaded, ids, [], path="reference")
    assert alone.base_nll_per_seq == pytest.approx(full[removal(removed, 5)].nll_per_seq, abs=1e-5)
    assert len(model.config.layer_types if family == "gemma3_text" else range(5)) == 5  # the original untouched


def test_pruned_copy_renumbers_the_cache_index_and_refuses_removing_everything():
    model = tiny_model("llama", n_layers=4)
    pruned = pruned_copy(model, [0])
    assert [layer.self_attn.layer_idx for layer in pruned.model.layers] == [0, 1, 2]
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="at least one must stay"):
        pruned_copy(model, [0, 1, 2, 3])


def test_every_saved_file_follows_the_umask(tmp_path):
    """Issue 37: the weights file came out 0600 (safetensors' private temporary) beside a 0644 config."""
    import os

    from pytest_swapkl.safe_files import umask

    folder = save_pruned(tiny_model("llama"), None, [1], tmp_path / "pruned")
    modes = {path.name: os.stat(path).st_mode & 0o777 for path in folder.iterdir()}
    assert "model.safetensors" in modes and set(modes.values()) == {0o666 & ~umask()}, modes
