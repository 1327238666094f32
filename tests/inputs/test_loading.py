"""load_model on real checkpoint folders written in the test: local folders, a hub cache, and every bad input."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import VOCAB, family_config, random_ids, tiny_model
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSeq2SeqLM

from pytest_swapkl.inputs.loading import DEMO_MODEL_DIR, LoadedModel, LoadError, load_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"
IDS = random_ids(2, 12, seed=3)


def save_tokenizer(folder: Path) -> None:
    """A word-level tokenizer over the tiny models' vocabulary: 'w5 w7' -> [5, 7]."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<eos>": 0, "<pad>": 1, "<unk>": 2, **{f"w{i}": i for i in range(3, VOCAB)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                        eos_token="<eos>")
    tokenizer.save_pretrained(folder)


def save_checkpoint(folder: Path, family: str = "gpt_neox", tokenizer: bool = True) -> torch.nn.Module:
    model = tiny_model(family)
    model.save_pretrained(folder, safe_serialization=True)
    if tokenizer:
        save_tokenizer(folder)
    return model


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits.float()


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(folder, reference logits) of a tiny GPT-NeoX with tokenizer, saved as safetensors."""
    folder = tmp_path_factory.mktemp("ckpt") / "neox"
    model = save_checkpoint(folder)
    return folder, logits(model)


def copy_of(checkpoint, tmp_path: Path) -> Path:
    return Path(shutil.copytree(checkpoint[0], tmp_path / "copy"))


def one_line_error(spec, match: str, **kwargs) -> str:
    with pytest.raises(LoadError, match=match) as error:
        load_model(str(spec), notice=quiet, **kwargs)
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- loading what was saved -------------------------------------------------------------------------------

def test_local_folder_loads_the_same_model(checkpoint):
    folder, expected = checkpoint
    notices = []
    loaded = load_model(str(folder), notice=notices.append)
    assert isinstance(loaded, LoadedModel) and notices == []
    assert torch.allclose(logits(loaded.model), expected, atol=1e-5, rtol=0)
    assert not loaded.model.training
    assert (loaded.name, loaded.path, loaded.revision, loaded.commit) == (str(folder), str(folder), None, None)
    assert (loaded.architecture, loaded.n_layers, loaded.max_positions, loaded.vocab_size) == (
        "GPTNeoXForCausalLM", 4, 64, VOCAB)
    assert (loaded.dtype, loaded.device) == ("float32", "cpu")
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in loaded.model.parameters())
    assert loaded.tokenizer("w5 w7 w96")["input_ids"] == [5, 7, 96]


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen3"])
def test_other_families_round_trip(family, tmp_path):
    model = save_checkpoint(tmp_path / family, family, tokenizer=False)
    notices = []
    loaded = load_model(str(tmp_path / family), notice=notices.append)
    assert torch.allclose(logits(loaded.model), logits(model), atol=1e-5, rtol=0)
    assert loaded.n_layers == 4 and loaded.max_positions == 64 and loaded.vocab_size == VOCAB
    assert loaded.architecture == type(model).__name__
    assert loaded.tokenizer is None and len(notices) == 1 and "has no tokenizer" in notices[0]


def test_bfloat16_is_loaded_directly(checkpoint):
    loaded = load_model(str(checkpoint[0]), dtype="bfloat16", device="cpu", notice=quiet)
    assert loaded.dtype == "bfloat16"
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    assert torch.allclose(logits(loaded.model), checkpoint[1], atol=0.3, rtol=0)


def test_relative_and_home_paths(checkpoint, tmp_path, monkeypatch):
    copy = copy_of(checkpoint, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert load_model("./copy", notice=quiet).path == str(copy.resolve())
    assert load_model("copy", notice=quiet).name == "copy"
    assert load_model(copy, notice=quiet).name == str(copy)  # a Path works too
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_model("~/copy", notice=quiet).path == str(copy.resolve())


def test_revision_of_a_local_folder_is_ignored_with_a_notice(checkpoint):
    notices = []
    loaded = load_model(str(checkpoint[0]), revision="v1", notice=notices.append)
    assert loaded.revision is None and loaded.commit is None
    assert len(notices) == 1 and "--revision v1 ignored" in notices[0]


@pytest.mark.skipif(not (DEMO_MODEL_DIR / "config.json").is_file(), reason="the demo model is not built yet")
def test_demo_model():
    loaded = load_model("demo", notice=quiet)
    assert loaded.name == "demo" and Path(loaded.path) == DEMO_MODEL_DIR
    assert loaded.n_layers == loaded.model.config.num_hidden_layers
    assert loaded.tokenizer is not None and loaded.vocab_size >= len(loaded.tokenizer)
    ids = loaded.tokenizer("To be, or not to be", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.isfinite(loaded.model(input_ids=ids).logits).all()


def test_pickle_weights_need_allow_pickle(checkpoint, tmp_path):
    folder = copy_of(checkpoint, tmp_path)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    one_line_error(folder, r"holds only pickle weights \(pytorch_model\.bin\): pass --allow-pickle if you trust "
                   r"them, or convert them to safetensors$")
    loaded = load_model(str(folder), allow_pickle=True, notice=quiet)
    assert torch.allclose(logits(loaded.model), checkpoint[1], atol=1e-5, rtol=0)


def test_sharded_safetensors(checkpoint, tmp_path):
    folder = tmp_path / "sharded"
    tiny_model("gpt_neox").save_pretrained(folder, safe_serialization=True, max_shard_size="20KB")
    assert (folder / "model.safetensors.index.json").is_file()
    assert torch.allclose(logits(load_model(str(folder), notice=quiet).model), checkpoint[1], atol=1e-5, rtol=0)
    shard = sorted(folder.glob("model-*.safetensors"))[-1]
    shard.unlink()
    one_line_error(folder, rf"{shard.name} is missing \(model.safetensors.index.json names it\)")


# --- a hub checkpoint in the local Hugging Face cache ------------------------------------------------------

HUB_SCRIPT = """
import json, sys, torch
from pytest_swapkl.inputs.loading import LoadError, load_model

ids, expected = torch.load(sys.argv[1])
out = {}
for key, spec, revision, allow_pickle in [
        ("main", "owner/name", None, False), ("commit", "owner/name", sys.argv[2], False),
        ("branch", "owner/name", "main", False), ("uncached", "owner/missing", None, False),
        ("tag", "owner/name", "v9", False), ("no_weights", "owner/partial", None, False),
        ("no_weights_pickle", "owner/partial", None, True), ("pickle", "owner/pickled", None, False),
        ("pickle_allowed", "owner/pickled", None, True), ("corrupt", "owner/corrupt", None, False)]:
    notices = []
    try:
        loaded = load_model(spec, revision=revision, allow_pickle=allow_pickle, notice=notices.append)
    except LoadError as error:
        out[key] = {"error": str(error)}
        continue
    with torch.no_grad():
        diff = (loaded.model(input_ids=ids).logits - expected).abs().max().item()
    out[key] = dict(name=loaded.name, path=loaded.path, revision=loaded.revision, commit=loaded.commit,
                    n_layers=loaded.n_layers, diff=diff, notices=notices,
                    tokens=loaded.tokenizer("w5 w7")["input_ids"] if loaded.tokenizer else None)
print(json.dumps(out))
"""


def test_hub_id_from_the_offline_cache(checkpoint, tmp_path):
    """HF_HUB_OFFLINE and HF_HUB_CACHE are read when huggingface_hub is imported, so this runs in a new process."""
    cache = tmp_path / "hub"

    def cached_repo(name: str, files: dict) -> Path:
        """`files`: name -> source file, laid out as huggingface_hub caches them (refs/main -> snapshot)."""
        repo = cache / f"models--owner--{name}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(COMMIT)
        (repo / "snapshots" / COMMIT).mkdir(parents=True)
        for file, source in files.items():
            shutil.copy(source, repo / "snapshots" / COMMIT / file)
        return repo / "snapshots" / COMMIT

    folder = checkpoint[0]
    snapshot = cached_repo("name", {p.name: p for p in folder.iterdir()})
    cached_repo("partial", {"config.json": folder / "config.json"})  # weights not cached
    torch.save(load_file(folder / "model.safetensors"), tmp_path / "pytorch_model.bin")
    config = {"config.json": folder / "config.json"}
    cached_repo("pickled", {**config, "pytorch_model.bin": tmp_path / "pytorch_model.bin"})
    corrupt = cached_repo("corrupt", {**config, "model.safetensors": folder / "model.safetensors"})
    (corrupt / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:1000])
    torch.save((IDS, checkpoint[1]), tmp_path / "expected.pt")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    env.pop("TRANSFORMERS_CACHE", None)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(HUB_SCRIPT), str(tmp_path / "expected.pt"), COMMIT],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])

    for key, revision in [("main", None), ("commit", COMMIT), ("branch", "main")]:
        got = out[key]
        assert "error" not in got, got
        assert (got["name"], got["revision"], got["commit"]) == ("owner/name", revision, COMMIT)
        assert got["path"] == str(snapshot) and got["n_layers"] == 4 and got["diff"] < 1e-5
        assert got["tokens"] == [5, 7] and got["notices"] == []
    for key, spec, command in [("uncached", "owner/missing", "hf download owner/missing"),
                               ("tag", "owner/name", "hf download owner/name --revision v9")]:
        assert out[key]["error"] == (
            f"{spec} is not in the local Hugging Face cache and the hub cannot be reached (HF_HUB_OFFLINE=1): "
            f"download it once with `{command}` or pass a local folder")
    assert out["no_weights"]["error"].startswith("owner/partial is not in the local Hugging Face cache")
    assert out["no_weights_pickle"]["error"] == out["no_weights"]["error"]
    assert out["pickle"]["error"] == ("owner/pickled holds only pickle weights (pytorch_model.bin): pass "
                                      "--allow-pickle if you trust them, or convert them to safetensors")
    assert out["pickle_allowed"]["diff"] < 1e-5 and out["pickle_allowed"]["commit"] == COMMIT
    assert out["corrupt"]["error"] == ("owner/corrupt: model.safetensors is truncated or corrupt: re-download or "
                                       "re-save it")


# --- bad inputs, one line each -------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["/no/such/checkpoint", "./missing", "../missing/model", "~/swapkl-missing-model",
                                  "owner/name/extra", "exists/missing"])
def test_missing_paths(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "exists").mkdir()  # so `exists/missing` exists partially: a path, not a hub id
    one_line_error(spec, rf"^no such folder: {re.escape(spec)}: check the path")


def test_empty_spec():
    one_line_error("  ", r"^empty model spec: pass demo, a checkpoint folder or a hub id owner/name$")


def test_a_file_is_not_a_folder(checkpoint):
    one_line_error(checkpoint[0] / "config.json", "is a file, not a checkpoint folder: pass the folder")


def test_folder_without_config(checkpoint, tmp_path):
    folder = re.escape(str(tmp_path))
    one_line_error(tmp_path, rf"^{folder} is not a checkpoint folder \(no config.json\): pass the folder that holds")
    copy_of(checkpoint, tmp_path)
    one_line_error(tmp_path, r"is not a checkpoint folder \(no config.json\) \(found one in .*copy\)")


def test_folder_without_weights(checkpoint, tmp_path):
    folder = copy_of(checkpoint, tmp_path)
    (folder / "model.safetensors").unlink()
    one_line_error(folder, r"has config.json but no model weights \(no model.safetensors\): save the model")
    (folder / "consolidated.pth").write_bytes(b"not really")
    one_line_error(folder, r"no model weights \(no model.safetensors or pytorch_model.bin, only consolidated.pth\)",
                   allow_pickle=True)


@pytest.mark.parametrize("cut", ["half", "last byte"])
def test_truncated_safetensors(checkpoint, tmp_path, cut):
    folder = copy_of(checkpoint, tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if cut == "half" else data[:-1])
    one_line_error(folder, rf"^{re.escape(str(weights))} is truncated or corrupt: re-download or re-save it$")


def test_header_only_safetensors(checkpoint, tmp_path):
    folder = copy_of(checkpoint, tmp_path)
    (folder / "model.safetensors").write_bytes(b"\x05\x00")
    one_line_error(folder, r"model.safetensors is truncated or corrupt")


def test_missing_tensor_is_refused(checkpoint, tmp_path):
    folder = copy_of(checkpoint, tmp_path)
    tensors = load_file(folder / "model.safetensors")
    del tensors["embed_out.weight"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    one_line_error(folder, r"lacks weights for 1 tensor\(s\) of GPTNeoXForCausalLM \(e.g. (embed_out|lm_head).weight\)")


def test_corrupt_config_is_one_line(checkpoint, tmp_path):
    folder = copy_of(checkpoint, tmp_path)
    (folder / "config.json").write_text('{"model_type": "gpt_neox",\n  oops')
    one_line_error(folder, rf"^{folder}/config.json: malformed JSON in config.json \(Expecting property name .* at "
                   r"line 2 column 3\); fix config.json, or re-save the checkpoint with save_pretrained$")


def test_remote_code_needs_trust(checkpoint, tmp_path):
    folder = copy_of(checkpoint, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="swapkl_custom", architectures=["CustomForCausalLM"],
                  auto_map={"AutoConfig": "configuration_custom.CustomConfig",
                            "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"})
    (folder / "config.json").write_text(json.dumps(config))
    one_line_error(folder, r"needs code from its repository .*: pass --trust-remote-code if you trust the repository")


def test_bert_encoder_is_refused(tmp_path):
    config = AutoConfig.for_model("bert", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64)
    AutoModelForMaskedLM.from_config(config).save_pretrained(tmp_path / "bert", safe_serialization=True)
    one_line_error(tmp_path / "bert", r"is a BertForMaskedLM, not a decoder-only causal language model: swapkl "
                   r"audits causal LMs$")
    written = json.loads((tmp_path / "bert" / "config.json").read_text())
    del written["architectures"]  # bert is in transformers' causal-LM mapping (BertLMHeadModel)
    (tmp_path / "bert" / "config.json").write_text(json.dumps(written))
    one_line_error(tmp_path / "bert", r"is a bert encoder \(is_decoder is false\), not a decoder-only causal")


def test_base_model_without_head_is_refused(tmp_path):
    AutoModel.from_config(family_config("llama")).save_pretrained(tmp_path / "base", safe_serialization=True)
    one_line_error(tmp_path / "base", r"is a LlamaModel, not a decoder-only causal language model")


def test_encoder_decoder_is_refused(tmp_path):
    config = AutoConfig.for_model("t5", vocab_size=VOCAB, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    AutoModelForSeq2SeqLM.from_config(config).save_pretrained(tmp_path / "t5", safe_serialization=True)
    one_line_error(tmp_path / "t5", r"is a T5ForConditionalGeneration, not a decoder-only causal language model")


def test_no_layer_list(checkpoint, monkeypatch):
    from pytest_swapkl.engine import adapters

    def no_list(model):
        raise adapters.NoLayerListError("cannot find the decoder layer list of X: register an Adapter")

    monkeypatch.setattr(adapters, "find_layer_list", no_list)
    one_line_error(checkpoint[0], r"^cannot find the decoder layer list of X: register an Adapter$")


@pytest.mark.parametrize("kwargs, match", [
    (dict(dtype="int8"), r"^unknown dtype 'int8': use one of auto, float32, bfloat16, float16$"),
    (dict(device="tpu"), r"^unknown device 'tpu'"),
])
def test_bad_dtype_or_device(checkpoint, kwargs, match):
    one_line_error(checkpoint[0], match, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_on_a_machine_without_gpu(checkpoint):
    one_line_error(checkpoint[0], r"^device 'cuda' asked for, but this machine has no CUDA GPU: use --device cpu",
                   device="cuda")


def test_load_error_is_always_one_line():
    assert str(LoadError("first\n  second\r\nthird")) == "first second third"
    assert issubclass(LoadError, ValueError)


def test_importing_loading_does_not_import_torch(tmp_path):
    code = "import sys, pytest_swapkl.inputs.loading; print('torch' in sys.modules, 'transformers' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False"], result.stderr


@pytest.mark.parametrize("typed, meant", [("smollm2", "smollm2-135m"), ("Gemma3", "gemma3-270m"),
                                          ("gemma-270m", "gemma3-270m"), ("demoo", "demo")])
def test_a_misspelled_named_model_is_named_before_any_hub_call(typed, meant, monkeypatch):
    import pytest_swapkl.inputs.loading as loading

    monkeypatch.setattr(loading, "_locate_hub", lambda *args: pytest.fail("the hub was asked"))
    with pytest.raises(LoadError, match=rf"unknown model '{typed}': did you mean {re.escape(meant)}\?") as error:
        load_model(typed)
    assert "\n" not in str(error.value)


def test_a_bare_hub_name_unlike_any_named_model_still_goes_to_the_hub(monkeypatch):
    import pytest_swapkl.inputs.loading as loading

    class ReachedHub(Exception):
        pass

    def hub(spec, text, revision):
        raise ReachedHub(text)

    monkeypatch.setattr(loading, "_locate_hub", hub)
    with pytest.raises(ReachedHub, match="gpt2"):
        load_model("gpt2")


def test_a_missing_path_names_the_closest_existing_entries(tmp_path):
    (tmp_path / "ckpt-1").mkdir()
    with pytest.raises(LoadError, match=r"no such folder: .*ckpt1 \(did you mean .*ckpt-1\?\)"):
        load_model(str(tmp_path / "ckpt1"))


def test_dtype_auto_is_the_device_rule_and_the_record_says_so(checkpoint, tmp_path):
    """Issue 37: --dtype auto is bfloat16 on CUDA and float32 on the CPU, not the checkpoint's own dtype (as
    transformers' 'auto' would be); the record keeps the dtype used and where it came from."""
    from pytest_swapkl.audit.runner import model_record
    from pytest_swapkl.inputs.devices import AUTO_DTYPE_RULE
    from pytest_swapkl.options import OPTIONS

    folder = copy_of(checkpoint, tmp_path)  # saved again in bfloat16: its config says torch_dtype bfloat16
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).save_pretrained(folder)
    assert "bfloat16" in (folder / "config.json").read_text()
    auto = load_model(str(folder), dtype="auto", device="cpu", notice=quiet)
    assert auto.dtype == "float32" and auto.dtype_from == AUTO_DTYPE_RULE
    record = model_record(auto)
    assert record["dtype"] == "float32" and "float32 on the CPU" in record["dtype_from"]
    given = load_model(str(folder), dtype="bfloat16", device="cpu", notice=quiet)
    assert model_record(given)["dtype_from"] == "--dtype"
    help_text = next(option for option in OPTIONS if option.name == "dtype").help_text
    assert "bfloat16 on CUDA and float32 on the CPU" in help_text
    assert "not transformers' torch_dtype='auto'" in help_text
