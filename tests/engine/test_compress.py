"""Compression actions (remove, share, merge) saved as folders and GGUF files that reload with the measured costs."""

import json

import pytest
import torch
from tiny_models import SPECIAL_TOKENS, VOCAB, random_ids, tiny_model
from transformers import AutoConfig, AutoModelForCausalLM

from pytest_swapkl import engine
from pytest_swapkl.engine.compress import ActionError, acted_copy, action_costs, check_pairs, pairs_for_layers
from pytest_swapkl.engine.gguf_export import GgufExportError, write_gguf
from pytest_swapkl.engine.probes import layer_order, removal
from pytest_swapkl.engine.pruned import save_model

pytestmark = pytest.mark.usefixtures("one_thread")
PAIRS = [(0, 1), (2, 4)]  # KEEP-GIVE; the second pair spans a sliding and a full layer on gemma3


def _reload(folder, **kwargs):
    return AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32,
                                                **kwargs).eval()


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma3_text"])
@pytest.mark.parametrize("action", ["remove", "share", "merge"])
def test_saved_action_reloads_with_the_measured_cost(family, action, tmp_path):
    model = tiny_model(family, n_layers=5, seed=1)
    ids = random_ids(3, 12, seed=2)
    acted = acted_copy(model, action, PAIRS)
    kl, nll = action_costs(model, acted, ids)
    folder = save_model(acted, None, tmp_path / "saved", {"action": action})
    config = json.loads((folder / "config.json").read_text())
    sources = [0, 0, 2, 3, 2] if action == "share" else [0, 2, 3]
    assert config["num_hidden_layers"] == len(sources)
    if family != "llama":  # every slot runs with the attention type of the layer whose weights it holds
        assert config["layer_types"] == [model.config.layer_types[source] for source in sources]
    reloaded = _reload(folder)
    again_kl, again_nll = action_costs(model, reloaded, ids)
    assert again_kl.numpy() == pytest.approx(kl.numpy(), abs=1e-5)
    assert again_nll.numpy() == pytest.approx(nll.numpy(), abs=1e-5)
    assert [layer.self_attn.layer_idx for layer in reloaded.model.layers] == list(range(len(sources)))
    if action != "merge":  # remove and share are probes the engine measures: the same numbers
        probe = removal([1, 4], 5) if action == "remove" else layer_order(sources, 5)
        measured = engine.measure(model, ids, [probe], path="reference")[probe]
        assert measured.nll_per_seq == pytest.approx(nll.numpy(), abs=1e-5)
        assert measured.kl_per_seq == pytest.approx(kl.numpy(), abs=1e-5)
    assert len(model.model.layers) == 5  # the original untouched


def test_merge_runs_the_mean_of_the_pair_and_share_saves_real_copies(tmp_path):
    model = tiny_model("llama", n_layers=4, seed=3)
    merged = acted_copy(model, "merge", [(1, 2)])
    expected = (model.model.layers[1].mlp.up_proj.weight + model.model.layers[2].mlp.up_proj.weight) / 2
    assert torch.allclose(merged.model.layers[1].mlp.up_proj.weight, expected, atol=1e-7)
    shared = acted_copy(model, "share", [(1, 2)])
    assert shared.model.layers[1] is not shared.model.layers[2]  # safetensors refuses one tensor saved twice
    assert torch.equal(shared.model.layers[2].mlp.up_proj.weight, model.model.layers[1].mlp.up_proj.weight)
    save_model(shared, None, tmp_path / "shared", {})
    assert (tmp_path / "shared" / "model.safetensors").is_file()


def test_pairs_from_a_searched_set_take_the_nearest_kept_layer_below():
    assert pairs_for_layers([5, 6, 9], 12) == [(4, 5), (4, 6), (8, 9)]
    assert pairs_for_layers([0, 1], 4) == [(2, 0), (2, 1)]


@pytest.mark.parametrize("action, pairs, message", [
    ("merge", [(3, 3)], "cannot merge with itself"),
    ("share", [(0, 9)], "layer 9 is out of range"),
    ("share", [(0, 1), (2, 1)], "given up twice"),
    ("merge", [(0, 1), (1, 2)], "kept in one pair and given up in another"),
])
def test_bad_pairs_are_one_line(action, pairs, message):
    with pytest.raises(ActionError, match=message) as error:
        check_pairs(action, pairs, 4)
    assert "\n" not in str(error.value)


def _qwen2_full_attention():
    torch.manual_seed(0)
    config = AutoConfig.for_model("qwen2", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=5,
                                  num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                                  max_position_embeddings=64, tie_word_embeddings=False, **SPECIAL_TOKENS)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.normal_(1.0 if "norm" in name else 0.0, 0.15 if parameter.ndim >= 2 else 0.1)
    return model.eval()


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_gguf_reads_back_as_the_saved_folder(family, dtype, tmp_path):
    model = tiny_model("llama", n_layers=5, seed=1) if family == "llama" else _qwen2_full_attention()
    acted = acted_copy(model.to(dtype), "share", [(1, 2)]) if dtype == torch.float16 else \
        acted_copy(model, "merge", [(1, 2)])
    folder = save_model(acted, None, tmp_path / "saved", {})
    path = write_gguf(acted, tmp_path / "saved.gguf")
    from gguf import GGUFReader

    reader = GGUFReader(path)
    assert int(reader.fields[f"{family}.block_count"].parts[-1][0]) == acted.config.num_hidden_layers
    from_folder = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=dtype).eval()
    from_gguf = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name, attn_implementation="eager",
                                                     dtype=dtype).eval()
    assert from_gguf.config.num_hidden_layers == acted.config.num_hidden_layers
    for name, tensor in from_folder.state_dict().items():
        assert torch.equal(from_gguf.state_dict()[name], tensor), name
    ids = random_ids(2, 12, seed=4)
    with torch.no_grad():
        assert torch.equal(from_gguf(ids).logits, from_folder(ids).logits)


def test_gguf_refuses_what_it_cannot_state(tmp_path):
    with pytest.raises(GgufExportError, match="GGUF export supports llama, qwen2, gemma3_text, not gemma2"):
        write_gguf(tiny_model("gemma2"), tmp_path / "g.gguf")
    with pytest.raises(GgufExportError, match="gemma3 model's attn_logit_softcapping is 5.0"):
        write_gguf(tiny_model("gemma3_text"), tmp_path / "g.gguf")
    with pytest.raises(GgufExportError, match="sliding-window layers"):
        write_gguf(tiny_model("qwen2"), tmp_path / "q.gguf")
    assert list(tmp_path.iterdir()) == []  # nothing half-written
