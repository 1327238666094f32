"""The bundled corpus by works: the calibration's works (demo) and the held-out works (demo-heldout) are disjoint,
every row knows its work, and the old held-out chunks stay reachable with --heldout demo."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from pytest_swapkl.inputs.data import (
    DEMO_CORPUS_DIR,
    DEMO_HELDOUT_SOURCE,
    document_record,
    load_calibration,
    load_heldout,
)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(DEMO_CORPUS_DIR.parent / "demo_model"))


@pytest.fixture(scope="module")
def calibration(tokenizer):
    return load_calibration("demo", tokenizer, tokens=2048, seq_len=128, seed=0)


def file_works(name: str) -> list[str]:
    with gzip.open(DEMO_CORPUS_DIR / name, "rt", encoding="utf-8") as f:
        return f.read().rstrip("\n").split("\n\n\n")


def test_the_manifest_names_every_work_of_both_files_and_they_are_disjoint():
    manifest = json.loads((DEMO_CORPUS_DIR / "works.json").read_text())
    calibration, heldout = manifest["heldout.txt.gz"], manifest["heldout_works.txt.gz"]
    assert len(calibration) == len(file_works("heldout.txt.gz")) == 7
    assert len(heldout) == len(file_works("heldout_works.txt.gz")) >= 30
    assert not set(calibration) & set(heldout)
    train = "".join(file_works("train.txt.gz"))
    # No held-out work's opening line appears in the demo model's training text either.
    assert not any(work.split("\n", 1)[0] in train for work in file_works("heldout_works.txt.gz"))


def test_rows_know_their_work(tokenizer, calibration):
    assert len(calibration.documents) == calibration.n_sequences
    assert calibration.works[0] == "shakespeare/alls_well_that_ends_well"
    works = file_works("heldout.txt.gz")
    for row, document in zip(calibration.input_ids.numpy(), calibration.documents):
        ids = tokenizer(works[document], add_special_tokens=False)["input_ids"]
        middle = row[len(row) // 2: len(row) // 2 + 8].tolist()
        assert any(ids[i:i + 8] == middle for i in range(len(ids) - 7))  # the middle of the row is in its work


def test_the_default_heldout_of_demo_is_other_works(tokenizer, calibration):
    heldout = load_heldout(None, calibration, tokenizer, tokens=4096, seed=0)
    assert heldout.source == DEMO_HELDOUT_SOURCE and heldout.seq_len == calibration.seq_len
    record, own = document_record(heldout), document_record(calibration)
    assert record["bootstrap_unit"] == own["bootstrap_unit"] == "document"
    assert record["n_documents"] > 5 and all(work.startswith("kjv/") for work in record["documents"])
    assert not set(record["documents"]) & set(own["documents"])


def test_heldout_demo_keeps_the_calibrations_unused_chunks(tokenizer, calibration):
    old = load_heldout("demo", calibration, tokenizer, tokens=4096, seed=0)
    assert old.source == "demo (held-out part)"
    assert set(document_record(old)["documents"]) <= set(json.loads(
        (DEMO_CORPUS_DIR / "works.json").read_text())["heldout.txt.gz"])
    rows = {tuple(row) for row in calibration.input_ids.tolist()}
    assert not any(tuple(row) in rows for row in old.input_ids.tolist())


def test_arrays_have_no_documents_and_say_so(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, np.arange(20).reshape(4, 5))
    record = document_record(load_calibration(str(path)))
    assert record["bootstrap_unit"] == "sequence" and record["documents"] is None and record["why_sequences"]


def test_folder_documents_are_numbered(tmp_path, tokenizer):
    for n in range(3):
        (tmp_path / f"{n}.txt").write_text(" ".join(["word"] * 300) + f" {n}")
    calibration = load_calibration(str(tmp_path), tokenizer, tokens=512, seq_len=64)
    assert calibration.works is None and set(calibration.documents) <= {0, 1, 2}
    assert document_record(calibration)["documents"][0].startswith("document ")
