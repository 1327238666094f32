"""Two real pytest processes auditing the same key at the same time against one cache folder.

The per-key lock makes one compute while the other waits, then reads the entry the first wrote:
both pass, both report the same numbers, the audit is computed once and the entry is whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from junit_cases import case_properties

from pytest_swapkl.plugin.cache import AuditCache

SMALL = ["--swapkl-tokens=512", "--swapkl-seq-len=64", "--swapkl-bootstrap=100", "--swapkl-device=cpu"]


def audit_properties(junit: Path) -> dict[str, str]:
    return case_properties(junit)["audit"]


def test_two_processes_share_one_cache_without_computing_twice(tmp_path):
    cache_dir = tmp_path / "shared-cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on a 2-core machine: no oversubscription
    runs = {}
    for name in ("a", "b"):  # started back to back: both reach the lock while the audit is being computed
        folder = tmp_path / name
        folder.mkdir()
        argv = [sys.executable, "-m", "pytest", "--swapkl-model=demo", *SMALL, "-o", f"cache_dir={cache_dir}",
                f"--swapkl-json={folder / 'audit.json'}", f"--junitxml={folder / 'junit.xml'}", "-p", "no:xdist"]
        runs[name] = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
    outputs = {}
    for name, process in runs.items():
        try:
            outputs[name] = process.communicate(timeout=300)
        finally:
            process.kill()
    for name, process in runs.items():  # 1: some of the demo's cases fail at this size (the same in both runs)
        assert process.returncode in (0, 1), f"{name}:\n{outputs[name][0][-3000:]}\n{outputs[name][1][-3000:]}"
    assert runs["a"].returncode == runs["b"].returncode

    sources = sorted("cache hit" if "cache hit in" in out else "computed" for out, _ in outputs.values())
    assert sources == ["cache hit", "computed"], outputs  # computed once, then read from the cache
    [(_, waited)] = [output for output in outputs.values() if "cache hit in" in output[0]]
    assert "swapkl: waiting for another process computing audit" in waited  # it met the lock, not a finished entry
    assert sorted(audit_properties(tmp_path / name / "junit.xml")["audit_cache_hit"] for name in runs) == \
        ["False", "True"]

    documents = [json.loads((tmp_path / name / "audit.json").read_text()) for name in runs]
    assert documents[0] == documents[1]  # the same numbers, to the last digit

    folder = cache_dir / "d" / "swapkl"
    key = documents[0]["cache_key"]
    notices: list[str] = []
    assert AuditCache(folder, notice=notices.append).get(key) == documents[0] and notices == []
    assert sorted(p.name for p in folder.iterdir()) == \
        sorted([f"{key}.json", f"{key}.lock", "file-digests.json", "file-digests.lock", "journal"])  # no temporary file
    assert list((folder / "journal").iterdir()) == []  # the finished audit's resume journal is gone
    for out, err in outputs.values():
        assert "swapkl notices" not in out and "corrupt" not in err
