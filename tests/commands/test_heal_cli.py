"""`swapkl heal`: LoRA healing of a pruned demo model against its control, the saved healed model, bad input."""

import json
import os
import sys

import numpy as np
import pytest

import pytest_swapkl
from pytest_swapkl import engine
from pytest_swapkl.analysis.net_recovery import net_recovery
from pytest_swapkl.commands.cli import main
from pytest_swapkl.inputs.data import load_calibration, load_heldout
from pytest_swapkl.inputs.loading import load_model

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ["--tokens", "1024", "--seq-len", "64", "--device", "cpu"]
DEMO = os.path.join(os.path.dirname(pytest_swapkl.__file__), "data", "demo_model")


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """The demo model with layer 4 removed, as swapkl prune saves it."""
    pytest.importorskip("peft")
    folder = tmp_path_factory.mktemp("heal") / "pruned"
    assert main(["prune", "demo", "--action", "remove", "--action-pairs", "3-4", "--save-pruned", str(folder),
                 *SMALL]) == 0
    return folder


def test_heal_json_and_the_healed_model_reloads_with_the_reported_cost(pruned, tmp_path, capsys):
    out, healed = tmp_path / "heal.json", tmp_path / "healed"
    assert main(["heal", str(pruned), "--data", "demo", "--steps", "4", "--save", str(healed), "--json", str(out),
                 *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "net recovery" in printed and "written to" in printed
    document = json.loads(out.read_text())
    assert document["schema"] == "swapkl-heal/1" and document["original"]["name"] == "demo"  # from the record
    assert document["model"]["n_layers"] == 7 and document["original"]["n_layers"] == 8
    recipe = document["recipe"]
    assert (recipe["rank"], recipe["alpha"], recipe["lr"], recipe["weight_decay"], recipe["steps"]) == \
        (16, 32.0, 2e-4, 0.01, 4)
    assert recipe["targets"] == ["attention.query_key_value", "attention.dense"]
    assert [len(document["training"][name]["losses"]) for name in ("pruned", "original")] == [4, 4]
    costs = document["costs"]
    assert set(costs) == {"original", "pruned", "healed_original", "healed_pruned"}
    assert costs["original"]["kl"] == 0 and costs["pruned"]["kl"] > 0
    for metric in ("ppl", "nll", "kl"):
        found = document["net_recovery"][metric]
        assert found["low"] <= found["value"] <= found["high"] and found["damage"] > 0
    before = costs["pruned"]["nll"] - costs["original"]["nll"]
    after = costs["healed_pruned"]["nll"] - costs["healed_original"]["nll"]
    assert document["net_recovery"]["nll"]["value"] == pytest.approx(1 - after / before)

    reloaded = load_model(str(healed), device="cpu")  # from_pretrained, no peft, no custom code
    assert reloaded.n_layers == 7 and not any("lora" in name for name, _ in reloaded.model.named_parameters())
    record = reloaded.model.config.swapkl_pruning
    assert record["removed"] == [4] and record["healing"]["steps"] == 4
    calibration = load_calibration("demo", reloaded.tokenizer, tokens=1024, seq_len=64, seed=0)
    held = load_heldout(None, calibration, reloaded.tokenizer, tokens=1024, seed=0)
    measured = engine.measure(reloaded.model, held.input_ids, [], path="reference")
    assert measured.base_nll_per_seq == pytest.approx(costs["healed_pruned"]["nll_per_seq"], abs=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["heal", "demo"], "not a pruned model"),
    (["heal", "PRUNED", "--save", "PRUNED"], "not an empty folder"),
    (["heal", "PRUNED", "--save", "DEMO/healed"], "an input of this run"),
    (["heal", "PRUNED", "--original", "PRUNED"], "name the model it was pruned from"),
])
def test_bad_heal_input_is_one_line_and_writes_nothing(argv, message, pruned, tmp_path, capsys):
    before = sorted(os.listdir(DEMO)), sorted(os.listdir(pruned))
    argv = [arg.replace("PRUNED", str(pruned)).replace("DEMO", DEMO) for arg in argv]
    assert main([*argv, "--steps", "1", "--json", str(tmp_path / "heal.json"), *SMALL]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("swapkl: error:") and message in error and "\n" not in error, error
    assert list(tmp_path.iterdir()) == [] and (sorted(os.listdir(DEMO)), sorted(os.listdir(pruned))) == before


def test_missing_peft_is_one_line(pruned, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft raises ImportError
    assert main(["heal", str(pruned), "--save", str(tmp_path / "healed"), *SMALL]) == 2
    error = capsys.readouterr().err.strip()
    assert "healing needs peft" in error and "pytest-swapkl[heal]" in error and "\n" not in error
    assert list(tmp_path.iterdir()) == []


def test_net_recovery_is_one_minus_the_gap_after_over_the_gap_before():
    rng = np.random.default_rng(0)
    original = rng.uniform(3, 4, 32)
    nll = {"original": original, "pruned": original + 0.2, "healed_original": original - 0.1,
           "healed_pruned": original - 0.05}
    found = net_recovery(nll, np.full(32, 0.04), np.full(32, 0.01))
    assert found["nll"]["value"] == pytest.approx(1 - 0.05 / 0.2)  # 75%: healing closed 0.15 of the 0.2 gap
    assert found["kl"]["value"] == pytest.approx(0.75) and found["kl"]["low"] == pytest.approx(0.75)
    ppl = {key: np.exp(values.mean()) for key, values in nll.items()}
    assert found["ppl"]["value"] == pytest.approx(1 - (ppl["healed_pruned"] - ppl["healed_original"])
                                                  / (ppl["pruned"] - ppl["original"]))
    same = net_recovery({**nll, "healed_pruned": original - 0.1}, np.full(32, 0.04), np.zeros(32))
    assert same["nll"]["value"] == pytest.approx(1) and same["kl"]["value"] == pytest.approx(1)


@pytest.mark.parametrize("family, expected", [
    ("llama", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"]),
    ("gpt2", ["attn.c_attn", "attn.c_proj"]),
])
def test_the_adapters_go_on_the_attention_projections(family, expected, tiny_model):
    from pytest_swapkl.engine.healing import attention_projections, target_modules

    model = tiny_model(family, n_layers=2)
    assert attention_projections(model) == expected
    assert len(target_modules(model, None)) == 2 * len(expected)
    assert not any(name.endswith("mlp.c_proj") for name in target_modules(model, None))
