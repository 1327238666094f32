"""Sharded audits with a real torchrun and the gloo backend on CPU: the ranks' merged JSON is the one a single
process writes; a rank killed with SIGKILL costs only its unfinished units, whatever the number of ranks of the
rerun; `swapkl merge` gives the same JSON from `--shard I/N` files and refuses shards of different audits."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pytest_swapkl.audit.sharding import NO_MODEL_NOISE
from pytest_swapkl.commands.cli import main

TIMING = ("seconds", "measure_seconds")  # what a sharded JSON may differ in
WORK = ["--data", "ids.npy", "--pairs", "all", "--bootstrap", "50", "--batch-size", "2", "--unit-sequences", "2"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from tiny_models import random_ids, tiny_model

    root = tmp_path_factory.mktemp("sharded")
    tiny_model("llama", n_layers=6).save_pretrained(root / "tiny")
    np.save(root / "ids.npy", random_ids(24, 32).numpy())
    return root


def manifest_size() -> int:
    """Work units of WORK on the 6-layer model: 12 ranges of 2 sequences times the probe groups."""
    from pytest_swapkl.engine.manifest import build_manifest
    from pytest_swapkl.engine.probes import audit_probes, parse_pairs

    return len(build_manifest(audit_probes(parse_pairs("all", 6), 6), 6, 24, 2))


UNITS = manifest_size()


def env(cache: Path) -> dict:
    return {**os.environ, "XDG_CACHE_HOME": str(cache), "OMP_NUM_THREADS": "1", "SWAPKL_PROGRESS": "off"}


def numbers(path: Path) -> dict:
    document = json.loads(path.read_text())
    return {key: value for key, value in document.items() if key not in TIMING}


def torchrun(folder: Path, ranks: int, out: str, cache: Path) -> subprocess.Popen:
    return subprocess.Popen([*TORCHRUN, "--nproc-per-node", str(ranks), "-m", "pytest_swapkl", "audit", "tiny", *WORK,
                             "--json", out], cwd=folder, env=env(cache), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> str:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    return stderr


def measured(stderr: str) -> tuple[int, int]:
    """(units measured, units in the manifest) summed over the ranks' one-line reports."""
    found = re.findall(r"shard \d+/\d+: \d+ of (\d+) work units, (\d+) measured", stderr)
    assert found, stderr[-3000:]
    return sum(int(count) for _, count in found), int(found[0][0])


def unit_files(cache: Path) -> int:
    return len(list((cache / "swapkl" / "units").glob("*/*.json")))


@pytest.fixture(scope="module")
def single_process(folder):
    """The audit of one plain `swapkl audit` process, no torchrun: what every sharded run must reproduce."""
    result = subprocess.run([sys.executable, "-m", "pytest_swapkl", "audit", "tiny", *WORK, "--no-resume",
                             "--json", "single.json"], cwd=folder, env=env(folder / "cache-single"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return numbers(folder / "single.json")


def test_two_torchrun_ranks_write_the_json_of_one_process(folder, single_process):
    stderr = finish(torchrun(folder, 2, "two-ranks.json", folder / "cache-two"))
    assert UNITS >= 24 and measured(stderr) == (UNITS, UNITS)  # every unit measured once, by one of the ranks
    assert numbers(folder / "two-ranks.json") == single_process


def rank_process(torchrun_pid: int, rank: int) -> int:
    """The pid of the worker of `rank` among torchrun's children."""
    for child in Path(f"/proc/{torchrun_pid}/task/{torchrun_pid}/children").read_text().split():
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(child)
    raise AssertionError(f"no rank {rank} among torchrun's children")


@pytest.mark.slow  # over 30 s on the 2-core machine: run by .ci/run's second command
def test_sigkill_of_one_rank_then_reruns_with_one_and_three_ranks_measure_only_the_missing_units(folder,
                                                                                                 single_process):
    cache = folder / "cache-killed"
    victim = torchrun(folder, 2, "killed.json", cache)
    deadline = time.monotonic() + 240
    while unit_files(cache) < 4 and time.monotonic() < deadline:  # some units finished, most not
        assert victim.poll() is None, "the audit finished before a rank could be killed: give it more work"
        time.sleep(0.02)
    os.kill(rank_process(victim.pid, 1), signal.SIGKILL)
    victim.communicate(timeout=120)
    assert victim.returncode != 0  # torchrun stops the other rank and fails
    assert not (folder / "killed.json").exists()
    finished = unit_files(cache)
    assert 4 <= finished < UNITS
    shutil.copytree(cache, folder / "cache-killed-copy")

    stderr = finish(torchrun(folder, 1, "rerun-one.json", cache))
    assert measured(stderr) == (UNITS - finished, UNITS)  # only what no rank finished
    assert numbers(folder / "rerun-one.json") == single_process

    stderr = finish(torchrun(folder, 3, "rerun-three.json", folder / "cache-killed-copy"))
    assert measured(stderr) == (UNITS - finished, UNITS)
    assert numbers(folder / "rerun-three.json") == single_process


def test_merge_of_shard_files_is_the_one_process_json_and_refuses_another_audit(folder, single_process, capsys,
                                                                                monkeypatch):
    monkeypatch.chdir(folder)
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache-shards"))
    monkeypatch.setenv("SWAPKL_PROGRESS", "off")
    for index in range(3):
        assert main(["audit", "tiny", *WORK, "--shard", f"{index}/3", "--json", f"shard{index}.json"]) == 0
    assert main(["merge", "shard0.json", "shard1.json", "shard2.json", "--json", "merged.json"]) == 0
    merged = numbers(folder / "merged.json")
    # swapkl merge loads no model, so it cannot measure the noise floor: null, saying why (torchrun's rank 0 does)
    assert merged.pop("noise_floor") is None and merged.pop("noise") == {"floor": None, "what": NO_MODEL_NOISE}
    assert merged == {key: value for key, value in single_process.items() if key not in ("noise", "noise_floor")}

    capsys.readouterr()
    assert main(["merge", "shard0.json", "shard1.json", "--json", "partial.json"]) == 2
    error = capsys.readouterr().err.strip()
    assert "work units are in none of the shards given" in error and "\n" not in error
    assert not (folder / "partial.json").exists()

    other = [*WORK[:WORK.index("--bootstrap")], "--bootstrap", "20", *WORK[WORK.index("--bootstrap") + 2:]]
    assert main(["audit", "tiny", *other, "--shard", "1/3", "--json", "other.json"]) == 0
    capsys.readouterr()
    assert main(["merge", "shard0.json", "other.json", "shard2.json", "--json", "mixed.json"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("swapkl: ") and "shards of different audits" in error and "\n" not in error
    assert not (folder / "mixed.json").exists()


def test_shard_needs_a_json_and_a_valid_spec(folder, capsys, monkeypatch):
    monkeypatch.chdir(folder)
    assert main(["audit", "tiny", *WORK, "--shard", "3/3", "--json", "x.json"]) == 2
    assert "--shard must be I/N with 0 <= I < N" in capsys.readouterr().err
    assert main(["audit", "tiny", *WORK, "--shard", "0/2"]) == 2
    assert "--shard I/N needs --json" in capsys.readouterr().err
    assert main(["audit", "tiny", *WORK, "--shard", "0/2", "--precision", "adaptive", "--json", "x.json"]) == 2
    assert "use --precision exact" in capsys.readouterr().err


@pytest.mark.parametrize("field, value, expected", [
    (("context", "n_sequences"), 10**12, "n_sequences is missing, of the wrong type or out of range"),
    (("context", "n_layers"), "6", "n_layers is missing, of the wrong type or out of range"),
    (("context", "settings", "seed"), -1, "settings.seed is missing"),
    (("context", "settings", "bootstrap"), 10**9, "settings.bootstrap is missing"),
    (("context", "replacement_reduce"), "median", "replacement_reduce is missing"),
    (("shard",), [3, 2], "shard is not [rank, world]"),
    (("context", "n_sequences"), 10**6, "claims 1000000 sequences in 500000 ranges, but the shards given hold"),
])
def test_merge_trusts_no_field_of_a_shard(folder, capsys, monkeypatch, field, value, expected):
    """Issue 35: a crafted shard field is a one-line refusal before anything is sized from it, never a traceback
    or gigabytes allocated from a 13 KB file."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache-crafted"))
    monkeypatch.setenv("SWAPKL_PROGRESS", "off")
    for index in range(2):
        if not (folder / f"half{index}.json").exists():
            assert main(["audit", "tiny", *WORK, "--shard", f"{index}/2", "--json", f"half{index}.json"]) == 0
    document = json.loads((folder / "half0.json").read_text())
    target = document
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    (folder / "crafted.json").write_text(json.dumps(document))
    capsys.readouterr()
    assert main(["merge", "crafted.json", "half1.json", "--json", "crafted-merged.json"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("swapkl: ") and expected in error and "\n" not in error, error
    assert not (folder / "crafted-merged.json").exists()


def test_conflicting_shards_are_refused_naming_both(folder, capsys, monkeypatch):
    """Two shards with the same unit but other numbers: which would win depended on the argument order."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache-conflict"))
    monkeypatch.setenv("SWAPKL_PROGRESS", "off")
    assert main(["audit", "tiny", *WORK, "--shard", "0/1", "--json", "whole.json"]) == 0
    document = json.loads((folder / "whole.json").read_text())
    key = next(iter(document["units"]))
    document["units"][key]["records"][0]["kl"][0] += 1e-3
    (folder / "altered.json").write_text(json.dumps(document))
    capsys.readouterr()
    assert main(["merge", "whole.json", "altered.json", "--json", "conflict.json"]) == 2
    error = capsys.readouterr().err.strip()
    assert f"whole.json and altered.json hold different numbers for one work unit ({key})" in error, error
    assert not (folder / "conflict.json").exists()
