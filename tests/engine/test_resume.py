"""Interrupted audits resume: a real `kill -9` of a running `swapkl audit`, then a rerun that measures only
what is missing and ends with the numbers of an uninterrupted run. Plus the journal's own defences."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pytest_swapkl.engine.journal import Journal

AUDIT = ["-m", "pytest_swapkl", "audit", "demo", "--pairs", "all", "--tokens", "4096", "--batch-size", "4"]
VOLATILE = ("seconds", "measure_seconds")


def run_audit(out: Path, cache: Path, *extra: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, *AUDIT, "--json", str(out), *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)


def numbers(path: Path) -> dict:
    document = json.loads(path.read_text())
    return {key: value for key, value in document.items() if key not in VOLATILE}


def journal_records(cache: Path) -> int:
    files = list((cache / "swapkl" / "journal").glob("*.jsonl"))
    return sum(len(f.read_text().splitlines()) - 1 for f in files) if files else 0


@pytest.mark.slow  # over 30 s on the 2-core machine: run by .ci/run's second command
def test_kill_minus_nine_mid_audit_then_resume_gives_identical_numbers(tmp_path):
    uninterrupted = run_audit(tmp_path / "whole.json", tmp_path / "cache-a")
    assert uninterrupted.wait(timeout=600) == 0, uninterrupted.stderr.read()
    assert journal_records(tmp_path / "cache-a") == 0  # a finished audit leaves no journal behind

    cache = tmp_path / "cache-b"
    victim = run_audit(tmp_path / "resumed.json", cache)
    deadline = time.monotonic() + 600
    while journal_records(cache) < 40 and time.monotonic() < deadline:  # wait until some probes are journaled
        assert victim.poll() is None, "the audit finished before it could be killed: give it more work"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    journaled = journal_records(cache)
    assert not (tmp_path / "resumed.json").exists()  # nothing half-written

    rerun = run_audit(tmp_path / "resumed.json", cache)
    assert rerun.wait(timeout=600) == 0
    stderr = rerun.stderr.read()
    resumed = int(stderr.split("resuming: ")[1].split()[0])
    assert 40 <= resumed <= journaled  # a torn last line, if any, is measured again
    assert numbers(tmp_path / "resumed.json") == numbers(tmp_path / "whole.json")
    assert journal_records(cache) == 0


def test_no_resume_measures_everything_afresh(tmp_path):
    journal_dir = tmp_path / "cache" / "swapkl" / "journal"
    journal_dir.mkdir(parents=True)
    audit = run_audit(tmp_path / "out.json", tmp_path / "cache", "--no-resume", "--pairs", "adjacent")
    assert audit.wait(timeout=600) == 0
    assert "resuming" not in audit.stderr.read()
    assert list(journal_dir.iterdir()) == []


def test_journal_ignores_torn_altered_and_foreign_lines(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal.open(path, {"audit": 1})
    journal.record("replacement(0->1)", 0, 2, [0.5, 0.25], [3.0, 3.5])
    journal.record("interchange(0,1)", 0, 2, [0.1, 0.2], [3.1, 3.2])
    journal.record("interchange(0,1)", 2, 4, [0.3, 0.4], [3.3, 3.4])
    journal.close(finished=False)
    lines = path.read_text().splitlines()
    altered = lines[1].replace("0.25", "0.26")  # a changed number fails the line's checksum
    path.write_text("\n".join([lines[0], altered, lines[2], lines[3][: len(lines[3]) // 2]]) + "\n")  # torn tail
    reopened = Journal.open(path, {"audit": 1})
    assert reopened.resumed == 1
    assert reopened.get("replacement(0->1)", 0, 2) is None
    kl, nll = reopened.get("interchange(0,1)", 0, 2)
    assert kl.tolist() == [0.1, 0.2] and nll.tolist() == [3.1, 3.2]
    assert reopened.get("interchange(0,1)", 0, 4) is None  # the torn segment is missing: never half a range
    reopened.record("interchange(0,1)", 2, 4, [0.3, 0.4], [3.3, 3.4])
    assert np.array_equal(reopened.get("interchange(0,1)", 0, 4)[0], [0.1, 0.2, 0.3, 0.4])  # segments join
    reopened.close(finished=False)
    assert Journal.open(path, {"audit": 2}).resumed == 0  # another audit's journal is never mixed in


def test_journal_fields_are_checked_as_strictly_as_checksums(tmp_path):
    """A line with a valid checksum but missing, mistyped, out-of-range or non-finite fields is ignored like a torn
    one: measured again, never a KeyError."""
    from pytest_swapkl.engine.journal import FORMAT, _digest

    def line(payload) -> str:
        return json.dumps({"payload": payload, "sha256": _digest(payload)})

    good = {"name": "interchange(0,1)", "start": 0, "stop": 2, "kl": [0.1, 0.2], "nll": [3.1, 3.2]}
    crafted = [
        {"name": "replacement(0->1)", "start": 0, "stop": 2},  # no numbers
        {**good, "name": 5},
        {**good, "start": True},
        {**good, "start": 2, "stop": 2, "kl": [], "nll": []},
        {**good, "start": -2, "stop": 0},
        {**good, "stop": 2**62, "kl": [0.1], "nll": [0.2]},
        {**good, "kl": [0.1, "0.2"]},
        {**good, "kl": [0.1, float("nan")]},
        {**good, "extra": 1},
        ["not", "a", "record"],
        "text",
    ]
    path = tmp_path / "j.jsonl"
    header = {"format": FORMAT, "identity": {"audit": 1}}
    path.write_text("\n".join([line(header), *map(line, crafted), line(good)]) + "\n")
    journal = Journal.open(path, {"audit": 1})
    assert journal.resumed == 1 and journal.get("interchange(0,1)", 0, 2)[0].tolist() == [0.1, 0.2]
    assert journal.get("replacement(0->1)", 0, 2) is None
    journal.close(finished=False)


def test_a_fifo_or_folder_in_place_of_the_journal_is_an_oserror_not_a_hang(tmp_path):
    """runner.open_journal turns the OSError into one notice and an audit without a journal."""
    import pytest

    os.mkfifo(tmp_path / "fifo.jsonl")
    (tmp_path / "folder.jsonl").mkdir()
    for name in ("fifo.jsonl", "folder.jsonl"):
        with pytest.raises(OSError, match="is not a regular file"):
            Journal.open(tmp_path / name, {"audit": 1})


def test_a_full_disk_stops_the_journal_not_the_audit(tmp_path):
    """Issue 35: the disk fills up in the middle of an audit: one notice, the audit's numbers, and a journal whose
    lines before the failure resume the next run."""
    from tiny_models import random_ids, tiny_model

    from pytest_swapkl import engine
    from pytest_swapkl import probes as P
    from pytest_swapkl.engine.journal import Journal

    model = tiny_model("llama")
    probes = P.audit_probes([(0, 1), (1, 2)], 4)
    ids = random_ids(4, 12)
    said = []
    journal = Journal.open(tmp_path / "j.jsonl", {"audit": 1}, said.append)
    real, writes = journal._stream, []

    class FillingDisk:
        def write(self, text):
            if len(writes) >= 5:
                raise OSError(28, "No space left on device")
            writes.append(text)
            return real.write(text)

        def flush(self):
            real.flush()

        def close(self):
            real.close()

    journal._stream = FillingDisk()
    measured = engine.measure(model, ids, probes, batch_size=2, journal=journal)
    journal.close(finished=False)
    expected = engine.measure(model, ids, probes, batch_size=2)
    assert all((measured[p].kl_per_seq == expected[p].kl_per_seq).all() for p in probes)
    assert said == [f"the resume journal {tmp_path / 'j.jsonl'} stopped (No space left on device): the results "
                    "measured before stay there for a resume; the audit goes on without keeping more"]
    resumed = Journal.open(tmp_path / "j.jsonl", {"audit": 1})
    assert resumed.resumed == 5
    resumed.close(finished=True)
