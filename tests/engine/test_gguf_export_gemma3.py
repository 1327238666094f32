"""Gemma 3 as GGUF: each action (remove, share, merge) read back by transformers' gguf_file= as the saved folder.

The tiny model holds only what a Gemma 3 GGUF states (the reader's defaults elsewhere: every sixth layer full, the
sliding layers' rope base 10000, query_pre_attn_scalar 256, no soft-capping) and bfloat16-born norm weights, as a
real checkpoint's: so 1 + w is exact in float32 and the round trip is bit for bit.
"""

import json

import numpy as np
import pytest
import torch
from tiny_models import SPECIAL_TOKENS, VOCAB, random_ids
from transformers import AutoConfig, AutoModelForCausalLM

from pytest_swapkl.commands.cli import main
from pytest_swapkl.engine.compress import acted_copy, action_costs
from pytest_swapkl.engine.gguf_export import GgufExportError, gguf_export_problem, write_gguf
from pytest_swapkl.engine.pruned import save_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _gemma3(n_layers: int = 7):
    """Layers S S S S S F S (the reader's pattern for 7), sliding window 5 so 12-token inputs exercise it."""
    torch.manual_seed(0)
    config = AutoConfig.for_model("gemma3_text", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=n_layers,
                                  num_attention_heads=4, num_key_value_heads=2, head_dim=8, intermediate_size=64,
                                  max_position_embeddings=64, sliding_window=5, tie_word_embeddings=False,
                                  **SPECIAL_TOKENS)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:  # Gemma's norms multiply by 1 + w: spread w around 0, bfloat16-born
                parameter.copy_(torch.randn(parameter.shape, generator=generator).mul(0.3).bfloat16().float())
            else:
                parameter.normal_(0.0, 0.15, generator=generator)
    return model.eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("action, pairs", [("remove", [(5, 6)]), ("share", [(0, 1)]), ("merge", [(5, 6)])])
def test_gemma3_gguf_reads_back_as_the_saved_folder(action, pairs, dtype, tmp_path):
    acted = acted_copy(_gemma3().to(dtype), action, pairs)
    folder = save_model(acted, None, tmp_path / "saved", {})
    path = write_gguf(acted, tmp_path / "saved.gguf")
    from gguf import GGUFReader

    fields = GGUFReader(path).fields
    depth = acted.config.num_hidden_layers
    assert int(fields["gemma3.block_count"].parts[-1][0]) == depth == (7 if action == "share" else 6)
    pattern = [bool(fields["gemma3.attention.sliding_window_pattern"].parts[index][0])
               for index in fields["gemma3.attention.sliding_window_pattern"].data]
    assert pattern == [kind == "sliding_attention" for kind in acted.config.layer_types]
    from_folder = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=dtype).eval()
    from_gguf = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name, attn_implementation="eager",
                                                     dtype=dtype).eval()
    assert from_gguf.config.layer_types == acted.config.layer_types
    assert from_gguf.config.rope_parameters == acted.config.rope_parameters
    for name, tensor in from_folder.state_dict().items():
        assert torch.equal(from_gguf.state_dict()[name], tensor), name
    ids = random_ids(2, 12, seed=4)
    with torch.no_grad():
        assert torch.equal(from_gguf(ids).logits, from_folder(ids).logits)


def test_gemma3_gguf_refuses_what_the_reader_would_change(tmp_path):
    moved = acted_copy(_gemma3(), "remove", [(2, 3)])  # the full layer moves to slot 4 of 6
    with pytest.raises(GgufExportError, match=r"sliding \(S\) and full \(F\) layers are SSSSFS, not every sixth"):
        write_gguf(moved, tmp_path / "moved.gguf")
    config = _gemma3().config
    config.final_logit_softcapping = 30.0
    assert "final_logit_softcapping is 30.0, but the GGUF reader would set None" in gguf_export_problem(config)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.slow
@pytest.mark.real
def test_real_gemma3_270m_pruned_gguf_reads_back(tmp_path):
    """Gemma-3-270M (the Q4_K_M GGUF package, dequantized to float32; full layers 5, 11, 17) with layer 17 removed:
    17 layers keep every sixth layer full, so the float32 GGUF reads back as the same model. (Removing layer 16
    instead moves the last full layer to slot 16, which the writer refuses.)"""
    from pytest_swapkl.inputs.named_models import NAMED_MODELS

    if not NAMED_MODELS["gemma3-270m"].installed():
        pytest.skip(f"gemma3-270m is not installed: {NAMED_MODELS['gemma3-270m'].install}")
    from pytest_swapkl.inputs.loading import load_model

    loaded = load_model("gemma3-270m", dtype="float32", device="cpu")
    acted = acted_copy(loaded.model, "remove", [(16, 17)])
    path = write_gguf(acted, tmp_path / "gemma-17.gguf")
    from_gguf = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name, dtype=torch.float32,
                                                     attn_implementation=acted.config._attn_implementation).eval()
    assert from_gguf.config.layer_types == acted.config.layer_types and len(from_gguf.model.layers) == 17
    mine = acted.state_dict()
    mismatched = [name for name, tensor in from_gguf.state_dict().items() if not torch.equal(mine[name], tensor)]
    assert mismatched == []
    ids = torch.randint(2, 1000, (1, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(from_gguf(ids).logits, acted(ids).logits)


def _prune_args(tmp_path):
    _gemma3().save_pretrained(tmp_path / "gemma3")
    ids = np.random.default_rng(0).integers(2, VOCAB, (16, 32))
    np.save(tmp_path / "ids.npy", ids[:8])
    np.save(tmp_path / "held.npy", ids[8:])
    return [str(tmp_path / "gemma3"), "--data", str(tmp_path / "ids.npy"), "--heldout", str(tmp_path / "held.npy"),
            "--tokens", "256", "--seq-len", "32", "--device", "cpu", "--dtype", "float32"]


def test_swapkl_prune_writes_a_gemma3_gguf_with_the_printed_cost(tmp_path, capsys):
    out = tmp_path / "pruned.gguf"
    assert main(["prune", *_prune_args(tmp_path), "--action", "merge", "--action-pairs", "5-6",
                 "--save-pruned", str(out), "--json", str(tmp_path / "prune.json")]) == 0
    assert "merge model (6 of 7 slots) written to" in capsys.readouterr().out
    costs = json.loads((tmp_path / "prune.json").read_text())["saved"]["costs"]["heldout"]
    full = AutoModelForCausalLM.from_pretrained(tmp_path / "gemma3", attn_implementation="eager",
                                                dtype=torch.float32).eval()
    reread = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=out.name, attn_implementation="eager",
                                                  dtype=torch.float32).eval()
    kl, nll = action_costs(full, reread, torch.from_numpy(np.load(tmp_path / "held.npy")))
    assert nll.numpy() == pytest.approx(costs["nll_per_seq"], abs=1e-5)
    assert kl.numpy() == pytest.approx(costs["kl_per_seq"], abs=1e-5)


def test_swapkl_prune_refuses_a_gemma3_gguf_it_cannot_state_before_loading(tmp_path, capsys, monkeypatch):
    import pytest_swapkl.audit.runner as runner

    def no_weights(*args, **kwargs):
        raise AssertionError("the weights were loaded")

    monkeypatch.setattr(runner, "model_from_options", no_weights)  # the acted config is checked from the pairs
    out = tmp_path / "moved.gguf"
    code = main(["prune", *_prune_args(tmp_path), "--action", "remove", "--action-pairs", "2-3",
                 "--save-pruned", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "layers are SSSSFS, not every sixth layer full" in lines[-1], lines
    assert not out.exists() and "Traceback" not in "\n".join(lines)
