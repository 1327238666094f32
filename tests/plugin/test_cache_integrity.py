"""The audit cache under damage: every broken entry is found, reported in one line, deleted and recomputed.

Most tests drive `AuditCache` and `SwapklSession._obtain` directly with a stand-in computation (milliseconds);
`test_real_run_reports_and_recomputes_a_damaged_entry` is one real pytest run of the plugin on the demo model.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

import pytest

from pytest_swapkl.audit import fingerprint as fingerprint_module
from pytest_swapkl.plugin.cache import FORMAT, AuditCache, document_checksum
from pytest_swapkl.plugin.session import SwapklSession

KEY = "0123456789abcdef0123456789abcdef"
CI = {"replacement_ij": [0.01, 0.2], "replacement_ji": [0.01, 0.3], "interchange": [0.01, None],
      "replacement": [0.01, 0.25]}
DOCUMENT = {  # a whole swapkl/1 audit document: an entry's fields are checked as strictly as its checksum
    "schema": "swapkl/1",
    "model": {"name": "demo", "n_layers": 4, "architecture": "GPTNeoXForCausalLM", "dtype": "float32",
              "device": "cpu"},
    "data": {"source": "demo", "n_sequences": 2, "seq_len": 8, "n_tokens": 16, "sha256": "ab" * 32},
    "settings": {"pairs": "adjacent"},
    "base": {"ppl": 49.028},
    "noise_floor": 1.5e-07,
    "pairs": [{"i": i, "j": i + 1, "replacement_ij": 0.1, "replacement_ji": 0.2, "replacement": 0.1 * (i + 1),
               "interchange": 0.02 / (i + 1), "ratio": 0.5, "log_ratio": -0.69, "rank_replacement": i + 1,
               "rank_interchange": 3 - i, "ci": CI}
              for i in range(3)],
    "removal": [{"layer": layer, "kl": 0.1, "ppl": 50.0, "ci": [0.05, 0.2]} for layer in range(4)],
    "summary": {"spearman": -1.0, "kendall": None, "topk": [{"k": 2, "jaccard": 0.0, "replacement_layers": [1, 2],
                                                             "interchange_layers": [2, 3]}]},
    "versions": {"swapkl": "0.1.0"},
}


def fresh(tmp_path: Path) -> tuple[AuditCache, list[str]]:
    notices: list[str] = []
    return AuditCache(tmp_path, notice=notices.append), notices


def written(tmp_path: Path) -> tuple[AuditCache, list[str], Path]:
    cache, notices = fresh(tmp_path)
    return cache, notices, cache.put(KEY, DOCUMENT)


def test_entry_round_trips_with_its_checksum(tmp_path):
    cache, notices, path = written(tmp_path)
    entry = json.loads(path.read_text())
    assert entry["format"] == FORMAT and entry["key"] == KEY
    assert entry["sha256"] == document_checksum(DOCUMENT) and entry["document"] == DOCUMENT
    assert cache.get(KEY) == DOCUMENT and notices == []
    assert [p.name for p in tmp_path.iterdir()] == [f"{KEY}.json"]  # no temporary file left


def _flip(data: bytes, position: int, bit: int = 0) -> bytes:
    return data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1:]


def _digit_in_document(data: bytes) -> int:
    return data.index(b'"ppl": ') + len(b'"ppl": ') + 1  # the 9 of 49.028: still a number after the flip


def _other_checksum(data: bytes) -> bytes:
    entry = json.loads(data)
    entry["sha256"] = document_checksum({**DOCUMENT, "noise_floor": 0.5})
    return json.dumps(entry).encode()


def _resealed(change):
    """The entry with `change` made to its document and the checksum recomputed: damage no checksum can see."""
    def damage(data: bytes) -> bytes:
        entry = json.loads(data)
        change(entry["document"])
        entry["sha256"] = document_checksum(entry["document"])
        return json.dumps(entry).encode()

    return damage


def _old_format(_: bytes) -> bytes:
    return json.dumps(DOCUMENT, indent=2).encode()  # what the cache stored before checksums


DAMAGE = {
    "truncated": (lambda data: data[: len(data) // 2], "is corrupt (truncated JSON"),
    "empty": (lambda data: b"", "is corrupt (truncated JSON"),
    "bit flipped": (lambda data: _flip(data, _digit_in_document(data)), "is corrupt (checksum mismatch)"),
    "wrong checksum": (_other_checksum, "is corrupt (checksum mismatch)"),
    "garbage": (lambda data: bytes(random.Random(0).randrange(256) for _ in range(500)), "is corrupt (cache entry is "
                "not UTF-8"),
    "not JSON": (lambda data: b"this is not JSON {", "is corrupt (malformed JSON"),
    "old format": (_old_format, "has an older format without a checksum"),
    "other key": (lambda data: data.replace(KEY.encode(), b"f" * 32), "is corrupt (written for another key)"),
    "deeply nested": (lambda data: b"[" * 100_000 + b"]" * 100_000, "is corrupt (cache entry is nested too deeply"),
    "not an object": (lambda data: b"[1, 2, 3]", "has an unknown format"),
    "field missing": (_resealed(lambda d: d["pairs"][0].pop("interchange")),
                      "is not a usable audit (pairs[0] lacks interchange)"),
    "field mistyped": (_resealed(lambda d: d["model"].update(n_layers="4")),
                       "is not a usable audit (model.n_layers is str, not int)"),
    "layer out of range": (_resealed(lambda d: d["pairs"][0].update(j=100000)),
                           "is not a usable audit (pairs[0] is not a pair of layers 0 <= i < j < 4)"),
    "removal missing": (_resealed(lambda d: d["removal"].pop()),
                        "is not a usable audit (removal does not list layers 0..3 once each)"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_entry_is_reported_in_one_line_deleted_and_missed(tmp_path, damage):
    cache, notices, path = written(tmp_path)
    change, expected = DAMAGE[damage]
    path.write_bytes(change(path.read_bytes()))
    assert cache.get(KEY) is None
    assert len(notices) == 1 and "\n" not in notices[0]
    assert notices[0].startswith(f"swapkl: cache entry {KEY} {expected}"), notices[0]
    assert notices[0].endswith(": recomputing")
    assert not path.exists()  # deleted: the next audit rewrites it
    assert cache.get(KEY) is None and len(notices) == 1  # a plain miss now, not reported again


def test_every_single_bit_flip_is_detected_or_harmless(tmp_path):
    """Flip each bit of a whole entry in turn: the cache never returns a document that differs from the one
    written. (A few flips are harmless by construction, e.g. 1e-05 -> 1E-05 is the same number.)"""
    cache, notices, path = written(tmp_path)
    small = {"schema": "swapkl/1", "pairs": [{"i": 0, "j": 1, "interchange": 0.0123, "replacement": 1e-05}]}
    path = cache.put(KEY, small)
    original = path.read_bytes()
    detected = 0
    for position in range(len(original)):
        for bit in range(8):
            path.write_bytes(_flip(original, position, bit))
            document = cache.get(KEY)
            assert document is None or document == small, (position, bit)
            detected += document is None
    assert detected >= 0.95 * 8 * len(original)
    assert all("\n" not in line for line in notices)


def test_unreadable_kinds_of_file_are_misses(tmp_path):
    cache, notices, path = written(tmp_path)
    path.unlink()
    os.mkfifo(path)  # would block a plain open(); refused instead
    assert cache.get(KEY) is None and "not a regular file" in notices[-1]
    path.unlink(missing_ok=True)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.json"
    outside.write_text("{}")
    path.symlink_to(outside)
    assert cache.get(KEY) is None
    assert outside.read_text() == "{}"  # the symlink is removed, never what it points to


def test_a_key_is_never_a_path(tmp_path):
    cache, _ = fresh(tmp_path)
    for key in ("../../etc/passwd", "a" * 31, KEY.upper(), KEY + "/x"):
        with pytest.raises(ValueError, match="not a cache key"):
            cache.put(key, DOCUMENT)
        with pytest.raises(ValueError, match="not a cache key"):
            cache.get(key)


# ---------------------------------------------------------------- the session: detect, recompute, rewrite

class Counting(SwapklSession):
    """`_obtain` with a stand-in key and computation, so that only the cache logic runs."""

    computed = 0

    def _locate(self, options):
        return None

    def _key(self, options, cache, located):
        return KEY

    def _compute(self, options, key, located):
        self.computed += 1
        time.sleep(getattr(options, "compute_seconds", 0.0))
        return {**DOCUMENT, "cache_key": key}


def options(**extra) -> argparse.Namespace:
    return argparse.Namespace(no_cache=False, cache_clear=False, **extra)


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_session_recomputes_and_rewrites_a_damaged_entry(tmp_path, damage, capsys):
    first = Counting(config=None, cache_dir=tmp_path)
    assert not first._obtain(options()).cache_hit
    path = tmp_path / f"{KEY}.json"
    path.write_bytes(DAMAGE[damage][0](path.read_bytes()))

    second = Counting(config=None, cache_dir=tmp_path)
    record = second._obtain(options())
    assert not record.cache_hit and second.computed == 1
    assert len(second.notices) == 1 and second.notices[0].endswith(": recomputing")
    assert capsys.readouterr().err.splitlines() == second.notices  # also on stderr, one line

    third = Counting(config=None, cache_dir=tmp_path)
    record = third._obtain(options())
    assert record.cache_hit and third.computed == 0 and third.notices == []
    assert record.document == {**DOCUMENT, "cache_key": KEY}


def test_unwritable_cache_costs_the_cache_not_the_audit(tmp_path, monkeypatch):
    def full_disk(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    session = Counting(config=None, cache_dir=tmp_path)
    record = session._obtain(options())
    assert not record.cache_hit and record.document["cache_key"] == KEY
    assert session.notices == [f"swapkl: cache entry {KEY} not written (cannot write {tmp_path / KEY}.json: "
                                "No space left on device): the audit is not cached"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{KEY}.lock"]  # no entry, no temporary file


def _obtain_in_child(directory: str, queue) -> None:
    session = Counting(config=None, cache_dir=Path(directory))
    record = session._obtain(options(compute_seconds=1.0))
    queue.put((record.cache_hit, session.computed, record.document))


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks")
def test_two_processes_on_one_key_compute_once(tmp_path):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_obtain_in_child, args=(str(tmp_path), queue)) for _ in range(2)]
    for child in children:
        child.start()
    results = sorted(queue.get(timeout=60) for _ in children)
    for child in children:
        child.join(timeout=60)
    assert [hit for hit, _, _ in results] == [False, True]  # one computed, the other waited and read it
    assert sum(computed for _, computed, _ in results) == 1
    assert results[0][2] == results[1][2]
    assert AuditCache(tmp_path).get(KEY) == results[0][2]


def test_the_lock_is_filelocks_and_a_held_lock_makes_the_audit_wait(tmp_path, capfd):
    """filelock (flock on POSIX, msvcrt on Windows): while another holder has KEY.lock the audit waits for it."""
    import threading

    from filelock import FileLock

    holder = FileLock(str(tmp_path / f"{KEY}.lock"), thread_local=False)
    holder.acquire()
    results = []
    worker = threading.Thread(target=lambda: results.append(Counting(config=None, cache_dir=tmp_path)
                                                            ._obtain(options())))
    worker.start()
    worker.join(timeout=1.0)
    assert worker.is_alive() and not results  # waiting for the holder
    holder.release()
    worker.join(timeout=30)
    assert len(results) == 1 and not results[0].cache_hit
    assert "waiting for another process computing audit" in capfd.readouterr().err


def test_a_file_system_without_locks_goes_on_without_the_lock(tmp_path, monkeypatch):
    import fcntl

    def no_locks(*_):
        raise OSError(37, "No locks available")  # ENOLCK, e.g. some NFS mounts

    monkeypatch.setattr(fcntl, "flock", no_locks)
    session = Counting(config=None, cache_dir=tmp_path)
    assert not session._obtain(options()).cache_hit
    assert session.notices == [f"swapkl: cannot lock {tmp_path / KEY}.lock (No locks available): "
                               "going on without the lock"]
    assert Counting(config=None, cache_dir=tmp_path)._obtain(options()).cache_hit


def test_a_planted_lock_symlink_is_not_followed(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-victim"
    (tmp_path / f"{KEY}.lock").symlink_to(outside)
    session = Counting(config=None, cache_dir=tmp_path)
    assert not session._obtain(options()).cache_hit
    assert not outside.exists()
    assert len(session.notices) == 1 and session.notices[0].startswith(f"swapkl: cannot lock {tmp_path / KEY}.lock")


# ---------------------------------------------------------------- file-digest memo

def test_memo_merges_concurrent_writers_and_survives_damage(tmp_path):
    one, notices = fresh(tmp_path)
    two, _ = fresh(tmp_path)
    first, second = one.load_memo(), two.load_memo()  # both read the empty memo, as two runs would
    first["a:1:1"] = "a" * 64
    second["b:1:1"] = "b" * 64
    one.save_memo(first)
    two.save_memo(second)  # merged: the first run's digest is kept
    assert one.load_memo() == {"a:1:1": "a" * 64, "b:1:1": "b" * 64}
    one.memo_path.write_text('{"a:1:1": "' + "a" * 40)  # truncated
    assert one.load_memo() == {}
    assert len(notices) == 1 and "file-digests.json is corrupt (truncated JSON" in notices[0]
    one.memo_path.write_text(json.dumps({"x": "../../etc", "y": 3, "z": "c" * 64}))
    assert one.load_memo() == {"z": "c" * 64}  # entries that are not sha256 digests are dropped


def test_checkpoint_fingerprint_is_stable_through_the_memo(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 100)
    cache, _ = fresh(tmp_path / "cache")
    (tmp_path / "cache").mkdir()
    memo = cache.load_memo()
    fingerprint = fingerprint_module.checkpoint_fingerprint(folder, memo)
    cache.save_memo(memo)
    assert fingerprint_module.checkpoint_fingerprint(folder, cache.load_memo()) == fingerprint


# ---------------------------------------------------------------- one real run of the plugin

SMALL = ["--swapkl-tokens=512", "--swapkl-seq-len=64", "--swapkl-bootstrap=100", "--swapkl-device=cpu"]


def test_real_run_reports_and_recomputes_a_damaged_entry(pytester, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the 2-core machine: one thread per process runs faster
    first = pytester.runpytest_subprocess("--swapkl-model=demo", *SMALL, "--swapkl-json=first.json")
    first.stdout.fnmatch_lines(["*computed in*"])
    folder = pytester.path / ".pytest_cache" / "d" / "swapkl"
    [entry] = [p for p in folder.glob("*.json") if p.name != "file-digests.json"]
    key = entry.stem
    entry.write_bytes(entry.read_bytes()[:-200])  # a run killed mid-write before atomic writes, a full disk...

    second = pytester.runpytest_subprocess("--swapkl-model=demo", *SMALL, "--swapkl-json=second.json")
    assert second.ret == first.ret and second.parseoutcomes() == first.parseoutcomes()  # the same cases, recomputed
    # where the cut lands decides whether the parser sees a truncated or a malformed document: both are corrupt
    notice = f"swapkl: cache entry {key} is corrupt (* JSON in cache entry (*)): recomputing"
    second.stdout.fnmatch_lines(["*swapkl notices*", notice, "*swapkl audit*", "*computed in*"])
    second.stderr.fnmatch_lines([notice])
    assert second.stdout.str().count(f"cache entry {key}") == 1  # one line in the summary
    notices: list[str] = []
    assert AuditCache(folder, notice=notices.append).get(key) is not None and notices == []  # rewritten whole
    one, two = (json.loads((pytester.path / name).read_text()) for name in ("first.json", "second.json"))
    assert {**one, "seconds": 0, "measure_seconds": 0} == {**two, "seconds": 0, "measure_seconds": 0}


@pytest.mark.parametrize("extra", [["--prune-k", "1", "--heldout", "HELDOUT"], ["--precision", "adaptive"]])
def test_real_documents_pass_the_field_check(tmp_path, tiny_model, capsys, extra):
    import numpy as np
    from tiny_models import random_ids

    from pytest_swapkl.audit.results import document_problem
    from pytest_swapkl.commands.cli import main

    tiny_model("llama", n_layers=3).save_pretrained(tmp_path / "tiny")
    np.save(tmp_path / "ids.npy", random_ids(4, 16).numpy())
    np.save(tmp_path / "heldout.npy", random_ids(4, 16, seed=1).numpy())  # pre-tokenized ids hold nothing out
    extra = [str(tmp_path / "heldout.npy") if arg == "HELDOUT" else arg for arg in extra]
    out = tmp_path / "audit.json"
    assert main(["audit", str(tmp_path / "tiny"), "--data", str(tmp_path / "ids.npy"), "--pairs", "all",
                 "--bootstrap", "20", "--no-resume", "--json", str(out), *extra]) == 0
    capsys.readouterr()
    assert document_problem(json.loads(out.read_text())) is None
