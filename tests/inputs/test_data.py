"""Calibration data: every source on local files, the chunking rule, the fingerprint, every error."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_swapkl.inputs.data import (
    DEMO_CORPUS_DIR,
    Calibration,
    DataError,
    load_calibration,
    load_heldout,
    token_sha256,
)

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a stitch in time saves nine and the early bird catches the worm",
    "all that glitters is not gold but the dog is brown",
    "to be or not to be that is the question",
]


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    """A word-level tokenizer built here (no download) with an eos token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({word for sentence in SENTENCES for word in sentence.split()})
    vocab = {"<unk>": 0, "<eos>": 1, **{word: i + 2 for i, word in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>")


@pytest.fixture
def offline_datasets(monkeypatch, tmp_path):
    """datasets offline, with its cache in tmp_path (it reads both at import, so patch the module too)."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets_cache")
    return datasets


def documents(n: int) -> list[str]:
    """n distinct-ish documents of a few sentences each."""
    return [" ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(3)) for i in range(n)]


def manual_stream(tokenizer, texts: list[str]) -> list[int]:
    """The token stream as the docs define it: documents joined by eos."""
    stream: list[int] = []
    for i, text in enumerate(texts):
        if i:
            stream.append(tokenizer.eos_token_id)
        stream += tokenizer(text, add_special_tokens=False)["input_ids"]
    return stream


def chunk_offsets(rows: torch.Tensor, stream: list[int]) -> list[int]:
    """The chunk index each row was cut from; fails if a row is not an aligned slice of the stream."""
    seq_len = rows.shape[1]
    chunks = [stream[k * seq_len : (k + 1) * seq_len] for k in range(len(stream) // seq_len)]
    offsets = []
    for row in rows.tolist():
        assert row in chunks, "a row is not a contiguous, aligned slice of the stream"
        offsets.append(chunks.index(row, offsets[-1] + 1 if offsets else 0))
    return offsets


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def check_calibration(calibration: Calibration, source: str, shape: tuple[int, int]) -> None:
    ids = calibration.input_ids
    assert ids.dtype == torch.int64 and ids.device.type == "cpu" and ids.is_contiguous()
    assert tuple(ids.shape) == shape
    assert (calibration.n_sequences, calibration.seq_len) == shape
    assert calibration.n_tokens == shape[0] * shape[1]
    assert calibration.source == source
    assert calibration.sha256 == token_sha256(ids)


def re_search(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def load_error(source: str, tokenizer=None, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        load_calibration(source, tokenizer, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message
    return message


# --- sources ----------------------------------------------------------------------------------


def test_txt_file_chunks_are_slices_of_the_stream(tmp_path, tokenizer):
    text = " ".join(documents(20))
    path = tmp_path / "one.txt"
    path.write_text(text)
    stream = manual_stream(tokenizer, [text])
    calibration = load_calibration(str(path), tokenizer, tokens=40, seq_len=8)
    check_calibration(calibration, str(path), (5, 8))
    offsets = chunk_offsets(calibration.input_ids, stream)
    assert offsets == sorted(offsets) and len(stream) // 8 > 5


def test_all_chunks_in_order_when_there_are_no_more_than_asked(tmp_path, tokenizer):
    path = tmp_path / "one.txt"
    path.write_text(SENTENCES[0] + " " + SENTENCES[1])  # 22 words
    stream = manual_stream(tokenizer, [path.read_text()])
    exact = load_calibration(str(path), tokenizer, tokens=24, seq_len=5, notice=pytest.fail)
    assert exact.input_ids.flatten().tolist() == stream[:20]  # 4 of 4 chunks; the 2-token tail dropped
    subset = load_calibration(str(path), tokenizer, tokens=15, seq_len=5, notice=pytest.fail)
    offsets = chunk_offsets(subset.input_ids, stream)
    assert len(offsets) == 3 and offsets == sorted(offsets)


def test_txt_folder_is_sorted_recursively_and_joined_with_eos(tmp_path, tokenizer):
    texts = documents(4)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text(texts[2])
    (tmp_path / "b" / "a.txt").write_text(texts[1])
    (tmp_path / "a.txt").write_text(texts[0])
    (tmp_path / "c.txt").write_text(texts[3])
    (tmp_path / "notes.md").write_text("not a document")
    stream = manual_stream(tokenizer, texts)
    seq_len = 6
    calibration = load_calibration(str(tmp_path), tokenizer, tokens=10_000, seq_len=seq_len, notice=lambda m: None)
    n = len(stream) // seq_len
    assert calibration.input_ids.flatten().tolist() == stream[: n * seq_len]
    assert tokenizer.eos_token_id in calibration.input_ids


def test_any_callable_with_the_tokenizer_signature(tmp_path, tokenizer):
    class OneStringAtATime:
        eos_token_id = tokenizer.eos_token_id

        def __call__(self, text, add_special_tokens):
            assert isinstance(text, str) and add_special_tokens is False
            return {"input_ids": tokenizer(text, add_special_tokens=False)["input_ids"]}

    for i, text in enumerate(documents(3)):
        (tmp_path / f"{i}.txt").write_text(text)
    plain = load_calibration(str(tmp_path), OneStringAtATime(), tokens=60, seq_len=6)
    assert plain.sha256 == load_calibration(str(tmp_path), tokenizer, tokens=60, seq_len=6).sha256


def test_jsonl_text(tmp_path, tokenizer):
    texts = documents(5)
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "meta": i}) for i, t in enumerate(texts)) + "\n\n  \n")
    stream = manual_stream(tokenizer, texts)
    calibration = load_calibration(str(path), tokenizer, tokens=1000, seq_len=7, notice=lambda m: None)
    assert calibration.input_ids.flatten().tolist() == stream[: len(stream) // 7 * 7]


def test_jsonl_input_ids_are_used_as_given_without_separator(tmp_path):
    path = write_jsonl(
        tmp_path / "ids.jsonl", [{"input_ids": [1, 2, 3]}, {"input_ids": []}, {"input_ids": [4, 5, 6, 7]}]
    )
    calibration = load_calibration(str(path), tokens=6, seq_len=3)  # no tokenizer needed
    check_calibration(calibration, str(path), (2, 3))
    assert calibration.input_ids.tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_pretokenized_array_is_used_exactly(tmp_path, suffix):
    array = np.arange(5 * 7, dtype=np.int32).reshape(5, 7)[::-1]  # not C-contiguous, not int64
    path = tmp_path / f"ids{suffix}"
    if suffix == ".npy":
        np.save(path, array)
    else:
        torch.save(torch.from_numpy(array.copy()), path)
    calibration = load_calibration(str(path), tokens=2, seq_len=3, seed=9, vocab_size=35, max_positions=7)
    check_calibration(calibration, str(path), (5, 7))
    assert calibration.input_ids.tolist() == array.tolist()
    assert calibration.sha256 == hashlib.sha256(np.ascontiguousarray(array, dtype="<i8").tobytes()).hexdigest()


def test_hf_local_folder_of_jsonl_files(tmp_path, tokenizer, offline_datasets):
    texts = documents(6)
    folder = tmp_path / "hub_like"
    folder.mkdir()
    write_jsonl(folder / "part.jsonl", [{"text": t} for t in texts])
    stream = manual_stream(tokenizer, texts)
    for spec in (f"hf:{folder}", f"hf:{folder}::train"):
        calibration = load_calibration(spec, tokenizer, tokens=1000, seq_len=9, notice=lambda m: None)
        check_calibration(calibration, spec, (len(stream) // 9, 9))
        assert calibration.input_ids.flatten().tolist() == stream[: len(stream) // 9 * 9]


def test_save_to_disk_dataset(tmp_path, tokenizer, offline_datasets):
    texts = documents(3)
    offline_datasets.Dataset.from_dict({"text": texts, "id": [0, 1, 2]}).save_to_disk(tmp_path / "saved")
    stream = manual_stream(tokenizer, texts)
    calibration = load_calibration(str(tmp_path / "saved"), tokenizer, tokens=1000, seq_len=4, notice=lambda m: None)
    assert calibration.input_ids.flatten().tolist() == stream[: len(stream) // 4 * 4]


def test_save_to_disk_dataset_dict_takes_validation_then_test_then_train(tmp_path, offline_datasets):
    Dataset, DatasetDict = offline_datasets.Dataset, offline_datasets.DatasetDict

    def split(first_id: int):
        return Dataset.from_dict({"input_ids": [[first_id, first_id + 1, first_id + 2]]})

    DatasetDict({"train": split(10), "validation": split(20), "test": split(30)}).save_to_disk(tmp_path / "all")
    DatasetDict({"train": split(10), "test": split(30)}).save_to_disk(tmp_path / "no_validation")
    DatasetDict({"train": split(10)}).save_to_disk(tmp_path / "train_only")
    for folder, first in (("all", 20), ("no_validation", 30), ("train_only", 10)):
        calibration = load_calibration(str(tmp_path / folder), tokens=3, seq_len=3)
        assert calibration.input_ids.tolist() == [[first, first + 1, first + 2]]


def test_demo_is_the_bundled_heldout_split(tokenizer):
    assert (DEMO_CORPUS_DIR / "heldout.txt.gz").is_file()
    with gzip.open(DEMO_CORPUS_DIR / "heldout.txt.gz", "rt", encoding="utf-8") as f:
        works = f.read().rstrip("\n").split("\n\n\n")
    stream = manual_stream(tokenizer, works)
    calibration = load_calibration("demo", tokenizer, tokens=512, seq_len=64)
    check_calibration(calibration, "demo", (8, 64))
    chunk_offsets(calibration.input_ids, stream)


# --- selection and fingerprint ----------------------------------------------------------------


def test_seed_decides_the_subset(tmp_path):
    path = write_jsonl(tmp_path / "ids.jsonl", [{"input_ids": list(range(1000))}])
    first = load_calibration(str(path), tokens=50, seq_len=10, seed=1)
    again = load_calibration(str(path), tokens=50, seq_len=10, seed=1)
    other = load_calibration(str(path), tokens=50, seq_len=10, seed=2)
    assert first.sha256 == again.sha256 and torch.equal(first.input_ids, again.input_ids)
    assert first.sha256 != other.sha256
    for calibration in (first, other):
        starts = calibration.input_ids[:, 0].tolist()
        assert starts == sorted(starts) and all(s % 10 == 0 for s in starts)


def test_token_sha256_is_of_little_endian_int64_in_c_order():
    ids = torch.tensor([[1, 2, 3], [4, 5, 70000]])
    expected = hashlib.sha256(np.array([[1, 2, 3], [4, 5, 70000]], dtype="<i8").tobytes()).hexdigest()
    assert token_sha256(ids) == expected
    assert token_sha256(ids.to(torch.int32)) == expected
    assert token_sha256(ids.t().contiguous().t()) == expected  # layout does not matter


def test_notice_when_fewer_chunks_than_asked(tmp_path, capsys):
    path = write_jsonl(tmp_path / "ids.jsonl", [{"input_ids": list(range(25))}])
    notices: list[str] = []
    calibration = load_calibration(str(path), tokens=100, seq_len=10, notice=notices.append)
    assert calibration.n_sequences == 2
    assert len(notices) == 1 and "\n" not in notices[0] and "fewer than the 100" in notices[0]
    load_calibration(str(path), tokens=100, seq_len=10)
    err = capsys.readouterr().err
    assert err.startswith("swapkl: ") and err.count("\n") == 1


@settings(max_examples=60, deadline=None)
@given(
    stream=st.lists(st.integers(0, 10**6), min_size=2, max_size=300, unique=True),
    cuts=st.lists(st.integers(0, 300), max_size=5),
    seq_len=st.integers(2, 40),
    extra_tokens=st.integers(0, 400),
    seed=st.integers(0, 2**32 - 1),
)
def test_chunks_are_aligned_non_overlapping_slices_in_order(stream, cuts, seq_len, extra_tokens, seed):
    tokens = seq_len + extra_tokens
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    docs = [{"input_ids": stream[a:b]} for a, b in zip(bounds, bounds[1:])]
    with tempfile.TemporaryDirectory() as folder:
        path = write_jsonl(Path(folder) / "ids.jsonl", docs)
        if len(stream) < seq_len:
            with pytest.raises(DataError, match="fewer than --seq-len"):
                load_calibration(str(path), tokens=tokens, seq_len=seq_len, seed=seed)
            return
        calibration = load_calibration(str(path), tokens=tokens, seq_len=seq_len, seed=seed, notice=lambda m: None)
    rows = calibration.input_ids
    available = len(stream) // seq_len
    assert rows.shape == (min(available, tokens // seq_len), seq_len)
    starts = [stream.index(row[0]) for row in rows.tolist()]  # ids are unique: the first locates the row
    assert all(s % seq_len == 0 for s in starts)  # aligned, hence non-overlapping
    assert starts == sorted(set(starts))  # distinct and in stream order
    for start, row in zip(starts, rows.tolist()):
        assert row == stream[start : start + seq_len]  # contiguous, no padding


# --- errors -----------------------------------------------------------------------------------


def test_missing_path(tmp_path):
    assert "does not exist" in load_error(str(tmp_path / "nope.txt"))


def test_unknown_extension(tmp_path):
    (tmp_path / "data.csv").write_text("a,b")
    assert re_search(
        r"unknown extension '\.csv': use \.txt, \.jsonl, \.npy or \.pt", load_error(str(tmp_path / "data.csv"))
    )


def test_empty_file_and_short_stream(tmp_path, tokenizer):
    (tmp_path / "empty.txt").write_text("")
    message = load_error(str(tmp_path / "empty.txt"), tokenizer, seq_len=4, tokens=8)
    assert message.endswith("has 0 tokens, fewer than --seq-len 4: use a longer file or a smaller --seq-len")
    (tmp_path / "short.txt").write_text("the quick brown")
    message = load_error(str(tmp_path / "short.txt"), tokenizer, seq_len=4, tokens=8)
    assert "has 3 tokens, fewer than --seq-len 4: use a longer file or a smaller --seq-len" in message


def test_empty_folder(tmp_path):
    assert "has no .txt files: put .txt files in it" in load_error(str(tmp_path))


def test_text_needs_a_tokenizer(tmp_path):
    (tmp_path / "a.txt").write_text(SENTENCES[0])
    assert "is text and needs a tokenizer: pass the model's tokenizer" in load_error(str(tmp_path / "a.txt"))
    assert "needs a tokenizer" in load_error("demo")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tokens": 100, "seq_len": 256}, r"--tokens 100 is fewer than --seq-len 256: ask for at least 256 tokens"),
        ({"seq_len": 1}, r"--seq-len 1 is too short: .* use --seq-len 2 or more"),
        ({"seq_len": 256, "max_positions": 128}, r"--seq-len 256 exceeds the model's maximum of 128 positions"),
    ],
)
def test_chunking_arguments(tokenizer, kwargs, message):
    with pytest.raises(DataError, match=message) as caught:
        load_calibration("demo", tokenizer, **kwargs)
    assert "\n" not in str(caught.value)


def test_array_longer_than_the_model_allows(tmp_path):
    np.save(tmp_path / "ids.npy", np.zeros((2, 300), dtype=np.int64))
    message = load_error(str(tmp_path / "ids.npy"), max_positions=256)
    assert "300 tokens, which exceeds the model's maximum of 256 positions" in message


@pytest.mark.parametrize("bad_id", [50, -1])
def test_ids_outside_the_vocabulary(tmp_path, bad_id):
    path = write_jsonl(tmp_path / "ids.jsonl", [{"input_ids": [1, 2, bad_id, 3]}])
    message = load_error(str(path), tokens=4, seq_len=2, vocab_size=50)
    assert message.startswith(
        f"token id {bad_id} in {path} is outside the model's vocabulary of 50: the data was tokenized for another model"
    )
    np.save(tmp_path / "ids.npy", np.array([[1, 2], [bad_id, 3]]))
    assert f"token id {bad_id} in" in load_error(str(tmp_path / "ids.npy"), vocab_size=50)


def test_ids_outside_the_vocabulary_are_found_outside_the_chosen_chunks(tmp_path):
    path = write_jsonl(tmp_path / "ids.jsonl", [{"input_ids": [1] * 100 + [99]}])
    assert "token id 99" in load_error(str(path), tokens=2, seq_len=2, vocab_size=50)


def test_hub_name_while_offline(offline_datasets):
    message = load_error("hf:swapkl-no-such-user/no-such-dataset")
    assert message.startswith("could not load hf:swapkl-no-such-user/no-such-dataset (")
    assert message.endswith(
        "use a local folder of data files (hf:/path/to/folder) "
        "or load it once with network access so that it is in the datasets cache"
    )


def test_dataset_without_text_or_input_ids(tmp_path, offline_datasets):
    offline_datasets.Dataset.from_dict({"body": ["x"]}).save_to_disk(tmp_path / "saved")
    assert "has no 'text' or 'input_ids' column (columns: body)" in load_error(str(tmp_path / "saved"))


def test_dataset_dict_without_a_known_split(tmp_path, offline_datasets):
    Dataset, DatasetDict = offline_datasets.Dataset, offline_datasets.DatasetDict
    DatasetDict({"extra": Dataset.from_dict({"text": ["x"]})}).save_to_disk(tmp_path / "saved")
    assert "has splits extra but none of validation, test, train" in load_error(str(tmp_path / "saved"))


def test_bad_hub_spec():
    assert "is not a datasets spec" in load_error("hf:a:b:c:d")
    assert "is not a datasets spec" in load_error("hf:")


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"text": "a b"}', "", "{not json"], r"line 3 is not JSON \(.*\): write one JSON object per line"),
        (
            ['{"text": "a b"}', '{"body": "x"}'],
            r"line 2 has no 'text' or 'input_ids' field: give every line one of them",
        ),
        (['["a", "b"]'], r"line 1 has no 'text' or 'input_ids' field"),
        (['{"input_ids": [1, "2"]}'], r"line 1 has an 'input_ids' field that is not a list of integers"),
        (['{"text": 5}'], r"line 1 has a 'text' field that is not a string"),
    ],
)
def test_bad_jsonl_lines(tmp_path, tokenizer, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    text = load_error(str(path), tokenizer, tokens=2, seq_len=2)
    assert str(path) in text and re_search(message, text)


@pytest.mark.parametrize(
    "array, message",
    [
        (
            np.zeros(6, dtype=np.int64),
            r"holds an array of shape \(6,\), not \[n_sequences, seq_len\]: save a 2-D array",
        ),
        (np.zeros((2, 3), dtype=np.float32), r"holds float32 values, not token ids: save an integer array"),
        (np.zeros((2, 1), dtype=np.int64), r"has sequences of 1 tokens: .*at least 2"),
        (np.zeros((0, 4), dtype=np.int64), r"holds no sequences"),
        (np.array([[object()]]), r"could not read .*: save the array with numpy\.save or torch\.save"),
    ],
)
def test_bad_npy(tmp_path, array, message):
    np.save(tmp_path / "ids.npy", array, allow_pickle=True)
    assert re_search(message, load_error(str(tmp_path / "ids.npy")))


def test_bad_pt(tmp_path):
    torch.save({"input_ids": torch.zeros(2, 3, dtype=torch.long)}, tmp_path / "dict.pt")
    assert "holds a dict, not an array: save a single tensor" in load_error(str(tmp_path / "dict.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    assert "could not read" in load_error(str(tmp_path / "junk.pt"))


# --- files anyone could have crafted: every read bounded, every number checked (docs/reliability.md) ----------


@pytest.mark.parametrize("name", ["pipe.txt", "pipe.npy", "pipe.jsonl", "pipe"])
def test_a_fifo_as_data_fails_at_once_in_one_line(tmp_path, name):
    import os
    import threading

    os.mkfifo(tmp_path / name)
    outcome: list = []
    reader = threading.Thread(target=lambda: outcome.append(load_error(str(tmp_path / name))), daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert outcome and "is a FIFO, not a regular file or folder (it would block or never end)" in outcome[0]


def test_a_txt_link_to_dev_zero_is_refused(tmp_path, tokenizer):
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    assert "is a character device, not a regular file" in load_error(str(tmp_path / "zero.txt"), tokenizer)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text(SENTENCES[0])
    (tmp_path / "docs" / "zero.txt").symlink_to("/dev/zero")  # in a folder: not a file, so not a document
    ids = load_calibration(str(tmp_path / "docs"), tokenizer, tokens=2, seq_len=2).input_ids
    assert ids.numel() > 0


def test_text_read_by_one_source_is_capped(tmp_path, tokenizer, monkeypatch):
    from pytest_swapkl.inputs import data

    monkeypatch.setattr(data, "MAX_TEXT_BYTES", 100)
    (tmp_path / "docs").mkdir()
    for n in range(3):  # 60 bytes each: the second file is within the cap, the third is not
        (tmp_path / "docs" / f"{n}.txt").write_text("x " * 30)
    message = load_error(str(tmp_path / "docs"), tokenizer, tokens=2, seq_len=2)
    assert message.startswith(f"calibration data {tmp_path / 'docs'} is over the 0 MiB of text one audit reads")
    (tmp_path / "big.jsonl").write_text(json.dumps({"text": "x " * 100}) + "\n")
    assert "of text one audit reads" in load_error(str(tmp_path / "big.jsonl"), tokenizer, tokens=2, seq_len=2)


def test_a_jsonl_line_that_is_not_utf8_names_the_line_and_byte(tmp_path, tokenizer):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"text": "the cat"}\n{"text": "caf\xe9"}\n')
    assert load_error(str(path), tokenizer, tokens=2, seq_len=2) == (
        f"{path}: line 2 is not UTF-8 text (invalid continuation byte at byte 33); save it as UTF-8")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9 ok")
    assert load_error(str(tmp_path / "latin.txt"), tokenizer) == (
        f"{tmp_path / 'latin.txt'}: the file is not UTF-8 text (invalid continuation byte at byte 3); save it as UTF-8")


def test_a_utf8_bom_is_accepted_as_the_json_readers_accept_it(tmp_path, tokenizer):
    records = [{"text": SENTENCES[0]}, {"input_ids": [3, 4, 5]}]
    plain = write_jsonl(tmp_path / "plain.jsonl", records)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    (tmp_path / "plain.txt").write_text(SENTENCES[1])
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + SENTENCES[1].encode())
    for a, b in (("plain.jsonl", "bom.jsonl"), ("plain.txt", "bom.txt")):
        ids = [load_calibration(str(tmp_path / name), tokenizer, tokens=4, seq_len=2).input_ids for name in (a, b)]
        assert torch.equal(*ids)


@pytest.mark.parametrize("bad_id", [2**63, 2**64, 2**70])
def test_a_jsonl_id_beyond_int64_is_named_as_written(tmp_path, bad_id):
    path = write_jsonl(tmp_path / "ids.jsonl", [{"input_ids": [1, 2, bad_id, 3]}])
    assert load_error(str(path), tokens=2, seq_len=2, vocab_size=97).startswith(
        f"token id {bad_id} in {path} line 1 is outside any model's vocabulary (ids are below 2**63)")


def test_uint64_ids_beyond_int64_and_an_npy_header_that_lies(tmp_path):
    np.save(tmp_path / "u.npy", np.array([[1, 2**63]], dtype=np.uint64))
    assert load_error(str(tmp_path / "u.npy")).startswith(f"token id {2**63} in {tmp_path / 'u.npy'} is outside")
    header = "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000, 16), }"
    header += " " * (117 - len(header)) + "\n"
    (tmp_path / "lies.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
                                        + header.encode() + b"\0" * 64)
    message = load_error(str(tmp_path / "lies.npy"))  # before numpy allocates 128 TB for it
    assert "is truncated or corrupt (its header claims shape (1000000000000, 16)" in message
    assert "but the file holds 64)" in message


# --- held-out ids: never a calibration chunk, cut like the calibration -----------------------------


def rows(ids: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(row) for row in ids.tolist()}


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 12), st.integers(0, 10_000))
def test_heldout_chunks_are_disjoint_from_the_calibration(tokenizer, corpus_file, n_wanted, seed):
    with_text = corpus_file
    calibration = load_calibration(str(with_text), tokenizer, tokens=n_wanted * 16, seq_len=16, seed=seed)
    heldout = load_heldout(None, calibration, tokenizer, tokens=n_wanted * 16, seed=seed, notice=lambda _: None)
    assert heldout.seq_len == calibration.seq_len
    assert not rows(heldout.input_ids) & rows(calibration.input_ids)
    assert heldout.source == f"{calibration.source} (held-out part)"
    # The calibration itself is unchanged by asking for a held-out part.
    again = load_calibration(str(with_text), tokenizer, tokens=n_wanted * 16, seq_len=16, seed=seed)
    assert again.sha256 == calibration.sha256


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    """One document of distinct ids, so every chunk's content tells where it was cut."""
    return write_jsonl(tmp_path_factory.mktemp("heldout") / "corpus.jsonl", [{"input_ids": list(range(2, 643))}])


def test_demo_heldout_is_the_rest_of_the_bundled_works(tokenizer):
    calibration = load_calibration("demo", tokenizer, tokens=64 * 32, seq_len=32)
    heldout = load_heldout(None, calibration, tokenizer, tokens=64 * 32)
    assert heldout.input_ids.shape == (64, 32)
    assert not rows(heldout.input_ids) & rows(calibration.input_ids)


def test_a_separate_source_is_loaded_like_calibration(tokenizer, corpus_file, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("\n".join(reversed(documents(30))), encoding="utf-8")
    calibration = load_calibration(str(corpus_file), tokenizer, tokens=4 * 16, seq_len=16)
    heldout = load_heldout(str(other), calibration, tokenizer, tokens=4 * 16)
    assert heldout.source == str(other) and heldout.input_ids.shape == (4, 16)


def test_the_calibration_itself_is_refused_as_heldout(tokenizer, tmp_path):
    ids = tmp_path / "ids.npy"
    np.save(ids, np.arange(64, dtype=np.int64).reshape(4, 16))
    calibration = load_calibration(str(ids), tokenizer)
    copy = tmp_path / "copy.npy"
    np.save(copy, np.arange(64, dtype=np.int64).reshape(4, 16))
    with pytest.raises(DataError, match="is the calibration data itself: pass other text with --heldout"):
        load_heldout(str(copy), calibration, tokenizer)
    with pytest.raises(DataError, match="pre-tokenized and used whole.*pass held-out text with --heldout"):
        load_heldout(None, calibration, tokenizer)


def test_a_source_used_whole_has_nothing_held_out(tokenizer, corpus_file):
    calibration = load_calibration(str(corpus_file), tokenizer, tokens=10**6, seq_len=16,
                                   notice=lambda _: None)
    with pytest.raises(DataError, match="used whole .* none of it is held out"):
        load_heldout(None, calibration, tokenizer, tokens=64)


def test_fewer_held_out_chunks_than_asked_are_all_used_with_a_notice(tokenizer, corpus_file):
    path = corpus_file
    everything = load_calibration(str(path), tokenizer, tokens=10**6, seq_len=16, notice=lambda _: None)
    calibration = load_calibration(str(path), tokenizer, tokens=(everything.n_sequences - 3) * 16, seq_len=16)
    notices: list[str] = []
    heldout = load_heldout(None, calibration, tokenizer, tokens=10 * 16, notice=notices.append)
    assert heldout.n_sequences == 3 and "holds out 3 sequences" in notices[0]


# --- issue 35: caps on decoded ids, not on bytes on disk --------------------------------------------------


def test_a_deflated_pt_file_is_capped_by_what_it_decompresses_to(tmp_path, monkeypatch):
    """torch.load reads deflated zip members: an 8 MB tensor of ids fits in a 9 KB file, and at scale a file far
    under MAX_ARRAY_BYTES decodes to far more. The members' sizes are read before torch is (cap lowered here)."""
    import zipfile

    from pytest_swapkl.inputs import data

    torch.save(torch.zeros(1000, 1000, dtype=torch.int64), tmp_path / "plain.pt")
    with zipfile.ZipFile(tmp_path / "plain.pt") as plain, \
            zipfile.ZipFile(tmp_path / "deflated.pt", "w", compression=zipfile.ZIP_DEFLATED) as deflated:
        for member in plain.infolist():
            deflated.writestr(member.filename, plain.read(member.filename))
    assert (tmp_path / "deflated.pt").stat().st_size < 20_000
    assert torch.load(tmp_path / "deflated.pt", weights_only=True).shape == (1000, 1000)  # torch reads it whole
    monkeypatch.setattr(data, "MAX_ARRAY_BYTES", 1 << 20)
    message = load_error(str(tmp_path / "deflated.pt"))
    assert message.startswith(f"{tmp_path / 'deflated.pt'} decompresses to 80") and "over the 1048576 byte" in message


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_small_dtype_ids_are_capped_by_count_not_bytes(tmp_path, monkeypatch, suffix):
    """2 GiB of uint8 ids pass a cap on bytes and become 16 GiB of int64: the cap counts ids (lowered here)."""
    from pytest_swapkl.inputs import data

    ids = np.ones((4, 500), dtype=np.uint8)
    path = tmp_path / f"ids{suffix}"
    np.save(path, ids) if suffix == ".npy" else torch.save(torch.from_numpy(ids), path)
    monkeypatch.setattr(data, "MAX_TOKEN_IDS", 1000)
    message = load_error(str(path))
    assert message == (f"{path} holds 2000 token ids (shape (4, 500)), over the 1000 one audit reads (they become "
                       "int64): save fewer sequences")
