"""Files anyone could have crafted, fed to the real command: hypothesis writes config.json, .npy, .jsonl and junit
files, and `python -m pytest_swapkl` runs on each in a subprocess under a memory limit (RLIMIT_AS) and a time
limit. Every run ends with exit 0, or exit 2 and one `swapkl: error:` line naming the problem; never a
traceback, a crash or a hang (docs/reliability.md, "Input files, fuzzed").

Each audit costs a few seconds (torch is imported every time), so the example counts are small; the run is
derandomized, so CI sees the same files every time. `SWAPKL_FUZZ_EXAMPLES=200` runs more locally.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytestmark = pytest.mark.slow

MEMORY_LIMIT = 3 << 30  # bytes of address space: an audit of the tiny model peaks near 1 GiB
TIME_LIMIT = 90  # seconds per run
SCALE = int(os.environ.get("SWAPKL_FUZZ_EXAMPLES", "0"))  # 0: the CI counts below


def examples(ci: int) -> settings:
    return settings(max_examples=SCALE or ci, deadline=None, derandomize=not SCALE, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def swapkl(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(cwd / "cache"), "HF_HUB_OFFLINE": "1",
           "SWAPKL_CACHE_DIR": str(cwd / "cache" / "gguf"), "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-m", "pytest_swapkl", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIME_LIMIT, preexec_fn=_limits)


def assert_result_or_one_line(result: subprocess.CompletedProcess, what: str) -> None:
    err = result.stderr
    context = f"{what}: exit {result.returncode}\n{err[-3000:]}"
    assert result.returncode in (0, 2), context  # not 1 (a crash), not -9/-11 (killed), not 137
    assert "Traceback" not in err and "MemoryError" not in err, context
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("swapkl: ") for line in lines), context  # notices and the error, nothing else
    errors = [line for line in lines if line.startswith("swapkl: error: ")]
    if result.returncode == 2:
        assert len(errors) == 1 and lines[-1] == errors[0], context
    else:
        assert errors == [], context


# --- a tiny checkpoint with a tokenizer, and the audit arguments --------------------------------------------------

AUDIT = ["--pairs", "0-1", "--bootstrap", "10", "--no-resume", "--seq-len", "8", "--tokens", "32"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    from tiny_models import VOCAB, tiny_model
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("fuzz")
    model = tiny_model("llama", n_layers=2)
    model.save_pretrained(root / "tiny")
    vocab = {"<eos>": 0, "<pad>": 1, "<unk>": 2, **{f"w{i}": i for i in range(3, VOCAB)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                            eos_token="<eos>").save_pretrained(root / "tiny")
    np.save(root / "ids.npy", np.arange(64).reshape(4, 16) % VOCAB)
    return root


# --- config.json ----------------------------------------------------------------------------------------------------

SIZE_KEYS = ["num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads",
             "vocab_size", "max_position_embeddings", "head_dim"]
OTHER_KEYS = ["model_type", "architectures", "tie_word_embeddings", "rope_theta", "rms_norm_eps", "torch_dtype",
              "layer_types", "rope_scaling", "bos_token_id", "pad_token_id", "hidden_act", "attention_bias"]
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.sampled_from([0, 1, 2, 3, 4, 64, 97]),
                         st.sampled_from([2**31, 2**40, 10**12, 10**30, -(2**63)]),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3)), max_leaves=8)


def damaged_text(draw, text: bytes, intact: int, longest_cut: int, word: tuple[bytes, bytes]) -> bytes:
    """The text as written (`intact` chances in intact + 3), cut short, behind a BOM, or with one word in latin-1."""
    damage = draw(st.sampled_from(["none"] * intact + ["truncated", "bom", "latin-1"]))
    if damage == "truncated":
        return text[: draw(st.integers(0, longest_cut))]
    if damage == "bom":
        return b"\xef\xbb\xbf" + text
    if damage == "latin-1":
        return text.replace(*word)
    return text


@st.composite
def config_files(draw) -> bytes:
    from tiny_models import family_config

    config = family_config("llama", n_layers=2).to_dict()
    for key in draw(st.lists(st.sampled_from(SIZE_KEYS + OTHER_KEYS), min_size=1, max_size=4, unique=True)):
        if draw(st.integers(0, 5)) == 0:
            config.pop(key, None)
        else:
            config[key] = draw(JSON_VALUES)
    text = json.dumps(config).encode()
    return damaged_text(draw, text, intact=3, longest_cut=len(text) - 1, word=(b'"llama"', b'"ll\xe9ma"'))


@examples(8)
@given(config=config_files())
def test_fuzzed_config_json(work, tmp_path, config):
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    for file in (work / "tiny").iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / "config.json").write_bytes(config)
    result = swapkl("audit", str(folder), "--data", str(work / "ids.npy"), *AUDIT, cwd=tmp_path)
    assert_result_or_one_line(result, f"config.json {config[:300]!r}")


# --- .npy ----------------------------------------------------------------------------------------------------------

DTYPES = [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64, np.float32, np.bool_]


@st.composite
def npy_files(draw) -> bytes:
    import io

    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.one_of(hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=20),  # mostly 2-D
                           hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=20),
                           hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=20)))
    array = draw(hnp.arrays(dtype, shape))
    if draw(st.booleans()) and array.dtype.kind in "iu":
        array = np.abs(array) % 97  # valid ids now and then, so some audits run to the end
    buffer = io.BytesIO()
    np.save(buffer, array)
    data = buffer.getvalue()
    damage = draw(st.sampled_from(["none", "none", "truncated", "header", "flipped"]))
    if damage == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "header":  # the shape the header claims, replaced
        claimed = draw(st.sampled_from(["(10**12, 16)", "(-1, 4)", "(2, 8)", "()", "(4, 16, 0)"]))
        data = data.replace(repr(array.shape).encode(), claimed.encode(), 1)
    elif damage == "flipped" and len(data) > 10:
        position = draw(st.integers(0, len(data) - 1))
        data = data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:]
    return data


@examples(6)
@given(data=npy_files())
def test_fuzzed_npy_data(work, tmp_path, data):
    (tmp_path / "ids.npy").write_bytes(data)
    result = swapkl("audit", str(work / "tiny"), "--data", "ids.npy", *AUDIT, cwd=tmp_path)
    assert_result_or_one_line(result, f".npy {data[:200]!r}")


# --- .jsonl --------------------------------------------------------------------------------------------------------

IDS = st.lists(st.one_of(st.integers(0, 96), st.integers(-(2**70), 2**70), st.sampled_from([2**63, -1, 97])),
               max_size=40)
RECORDS = st.one_of(
    st.fixed_dictionaries({"text": st.one_of(st.text(max_size=60), st.lists(st.sampled_from(["w5", "w7", "w9"]),
                                                                           max_size=40).map(" ".join))}),
    st.fixed_dictionaries({"input_ids": IDS}),
    st.fixed_dictionaries({"input_ids": JSON_VALUES}),
    JSON_VALUES,
)


@st.composite
def jsonl_files(draw) -> bytes:
    lines = [json.dumps(record).encode() for record in draw(st.lists(RECORDS, min_size=0, max_size=8))]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(
            [b"", b"   ", b"{not json", b'{"text": "caf\xe9"}', b"[" * 5000, b'{"text": "x"} trailing', b"\xff\xfe"])))
    data = b"\n".join(lines)
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data


@examples(6)
@given(data=jsonl_files())
def test_fuzzed_jsonl_data(work, tmp_path, data):
    (tmp_path / "data.jsonl").write_bytes(data)
    result = swapkl("audit", str(work / "tiny"), "--data", "data.jsonl", *AUDIT, cwd=tmp_path)
    assert_result_or_one_line(result, f".jsonl {data[:300]!r}")


# --- junit XML -----------------------------------------------------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from(["audit", "rank_correlation", "pair[L00-L01]", "pair[L01-L02]", "topk_jaccard[k=2]",
                     "prune[replacement-k1]", "prune_gap[k1]"]),
    st.builds(lambda i, j: f"pair[L{i:02d}-L{j:02d}]", st.integers(0, 10**7), st.integers(0, 10**7)),
    st.builds(lambda k: f"topk_jaccard[k={k}]", st.integers(-5, 10**9)),
    st.text(max_size=20),
)
KEYS = st.one_of(
    st.sampled_from(["i", "j", "k", "model", "data_sha256", "base_ppl", "noise_floor", "replacement", "interchange",
                     "log_ratio", "rank_replacement", "rank_gap", "spearman", "kendall", "n_pairs", "jaccard",
                     "replacement_layers", "interchange_layers", "removal_L00_kl", "removal_L01_kl",
                     "removal_L02_kl", "top2_jaccard", "top2_replacement_layers", "interchange_ci_low"]),
    st.builds(lambda n: f"removal_L{n:02d}_kl", st.integers(0, 10**6)),
    st.text(max_size=12),
)
VALUES = st.one_of(
    st.sampled_from(["0", "1", "2", "-3", "100000", "nan", "inf", "-inf", "None", "True", "[0, 1]", "[5]",
                     "[" * 2000, "(" + "1," * 1000 + ")", "9" * 5000, "1e309", "<script>x</script>", "a|b\nc"]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats().map(repr),
    st.text(max_size=30),
)


def _xml_text(text: str) -> str:
    from xml.sax.saxutils import quoteattr

    cleaned = "".join(c for c in text if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd"))
    return quoteattr(cleaned)


FIXTURE = Path(__file__).resolve().parent / "fixtures" / "junit" / "failing.xml"


@st.composite
def mutated_fixture(draw) -> bytes:
    """A real junit file of the plugin with a few property values (or names) replaced: renders reach the figures."""
    import re

    text = FIXTURE.read_text()
    values = list(re.finditer(r'(name|value)="([^"]*)"', text))
    for match in sorted(draw(st.lists(st.sampled_from(values), min_size=1, max_size=4, unique_by=lambda m: m.start())),
                        key=lambda m: -m.start()):
        text = text[:match.start(2)] + _xml_text(draw(VALUES))[1:-1] + text[match.end(2):]
    return text.encode()


@st.composite
def junit_files(draw) -> bytes:
    if draw(st.booleans()):
        return draw(mutated_fixture())
    cases = []
    for _ in range(draw(st.integers(0, 6))):
        properties = "".join(f"<property name={_xml_text(key)} value={_xml_text(value)} />"
                             for key, value in draw(st.lists(st.tuples(KEYS, VALUES), max_size=6)))
        outcome = draw(st.sampled_from(["", "", f"<failure message={_xml_text(draw(VALUES))} />", "<skipped />"]))
        classname = draw(st.sampled_from(["swapkl", "swapkl", "x.swapkl", "other"]))
        cases.append(f"<testcase classname=\"{classname}\" name={_xml_text(draw(NAMES))} "
                     f"time={_xml_text(draw(VALUES))}><properties>{properties}</properties>{outcome}</testcase>")
    suite = f"<testsuite name=\"pytest\" tests={_xml_text(draw(VALUES))}>{''.join(cases)}</testsuite>"
    root = draw(st.sampled_from(["<testsuites>{}</testsuites>", "{}"] * 3 + ["<other>{}</other>"])).format(suite)
    data = ('<?xml version="1.0" encoding="utf-8"?>' + root).encode()
    return damaged_text(draw, data, intact=5, longest_cut=len(data), word=(b"pytest", b"pyt\xe9st"))


@examples(12)
@given(data=junit_files())
def test_fuzzed_junit_report(tmp_path, data):
    (tmp_path / "audit.xml").write_bytes(data)
    result = swapkl("report", "audit.xml", "--markdown", "r.md", "--html", "r.html", "--json", "r.json",
                    cwd=tmp_path)
    assert_result_or_one_line(result, f"junit {data[:400]!r}")


# --- issue 35: GGUF metadata, shard JSON, saved baselines, tokenizer files ---------------------------------------

def mutated_json(draw, document) -> bytes:
    """A real document of swapkl with 1 to 3 values somewhere in its tree replaced by any JSON value (or removed),
    then possibly truncated, behind a BOM or with a latin-1 byte."""
    document = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, 3))):
        parent, key = None, None
        node = document
        while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)) > 0:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, draw(st.sampled_from(keys))
            node = node[key]
        if parent is None:
            continue
        if isinstance(parent, dict) and draw(st.integers(0, 4)) == 0:
            del parent[key]
        else:
            parent[key] = draw(JSON_VALUES)
    text = json.dumps(document).encode()
    return damaged_text(draw, text, intact=5, longest_cut=len(text) - 1, word=(b'"', b'"\xe9'))


@pytest.fixture(scope="module")
def made(work, tmp_path_factory):
    """Real files to mutate, written by swapkl itself: two shards of one audit, a saved baseline, a tiny GGUF."""
    from tiny_gguf import write_tiny_gguf

    from pytest_swapkl.audit import baselines

    root = tmp_path_factory.mktemp("made")
    for index in (0, 1):
        done = swapkl("audit", str(work / "tiny"), "--data", str(work / "ids.npy"), *AUDIT, "--shard", f"{index}/2",
                      "--json", f"half{index}.json", cwd=root)
        assert done.returncode == 0, done.stderr
    whole = swapkl("audit", str(work / "tiny"), "--data", str(work / "ids.npy"), *AUDIT, "--json", "whole.json",
                   cwd=root)
    assert whole.returncode == 0, whole.stderr
    record = baselines.save(root / "pytest-cache", "main", json.loads((root / "whole.json").read_text()), root)
    write_tiny_gguf(root / "tiny.gguf")
    return {"root": root, "baseline": json.loads(Path(record).read_text()),
            "shard": json.loads((root / "half0.json").read_text())}


@examples(6)
@given(data=st.data())
def test_fuzzed_shard_json(made, tmp_path, data):
    crafted = mutated_json(data.draw, made["shard"])
    (tmp_path / "half0.json").write_bytes(crafted)
    (tmp_path / "half1.json").write_bytes((made["root"] / "half1.json").read_bytes())
    result = swapkl("merge", "half0.json", "half1.json", "--json", "merged.json", cwd=tmp_path)
    assert_result_or_one_line(result, f"shard {crafted[:300]!r}")


@examples(6)
@given(data=st.data())
def test_fuzzed_saved_baseline(made, tmp_path, data):
    from pytest_swapkl.audit import baselines

    crafted = mutated_json(data.draw, made["baseline"])
    folder = baselines.folder(tmp_path / "pytest-cache")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.json").write_bytes(crafted)
    for flags in ((), ("--json",)):
        result = swapkl("baselines", "--cache-dir", str(tmp_path / "pytest-cache"), *flags, cwd=tmp_path)
        assert_result_or_one_line(result, f"baseline {crafted[:300]!r}")


TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json"]


@examples(6)
@given(data=st.data())
def test_fuzzed_tokenizer_files(work, tmp_path, data):
    """tokenizer.json or tokenizer_config.json with values replaced, truncated or damaged; text data, so the
    tokenizer is built and used."""
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    for file in (work / "tiny").iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    name = data.draw(st.sampled_from(TOKENIZER_FILES))
    crafted = mutated_json(data.draw, json.loads((work / "tiny" / name).read_text()))
    (folder / name).write_bytes(crafted)
    (tmp_path / "text.txt").write_text(" ".join(f"w{i % 90 + 3}" for i in range(400)))
    result = swapkl("audit", str(folder), "--data", "text.txt", *AUDIT, cwd=tmp_path)
    assert_result_or_one_line(result, f"{name} {crafted[:300]!r}")


GGUF_SIZES = st.sampled_from([0, 1, 2, 3, 63, 64, 65, 128, 262, 1000, 1 << 16, 1 << 20, 1 << 24, (1 << 32) - 1])


@st.composite
def gguf_claims(draw) -> dict:
    keys = ["block_count", "context_length", "embedding_length", "feed_forward_length", "head_count"]
    return {key: draw(GGUF_SIZES) for key in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3,
                                                             unique=True))}


@examples(4)
@given(claims=gguf_claims(), damage=st.sampled_from(["none", "none", "truncated", "flipped"]),
       where=st.integers(0, 4000))
def test_fuzzed_gguf_metadata(made, work, tmp_path, claims, damage, where):
    """Metadata numbers that lie about the tensors (any of 0 to 2**32-1), and files cut or with one byte flipped in
    the header: the GGUF is refused in one line naming it, before anything is dequantized, or it loads."""
    import tempfile

    from tiny_gguf import write_tiny_gguf

    here = Path(tempfile.mkdtemp(dir=tmp_path))  # its own cache: an entry left by another example says nothing
    file = write_tiny_gguf(here / "crafted.gguf", claims=claims)
    data = file.read_bytes()
    if damage == "truncated":
        data = data[:where]
    elif damage == "flipped":
        data = data[:where] + bytes([data[where] ^ 0xFF]) + data[where + 1:]
    file.write_bytes(data)
    result = swapkl("audit", str(file), "--data", str(work / "ids.npy"), *AUDIT, cwd=here)
    assert_result_or_one_line(result, f"GGUF claims {claims}, {damage} at {where}")
    assert result.returncode == 0 or not list((here / "cache" / "gguf").glob("*-transformers-*")), "entry left"
