"""Nothing half-written on a full disk (issue 35), with a real full file system: each case mounts a 1 MiB tmpfs in
a private mount namespace (`unshare -rm`: no root needed where user namespaces are allowed; skipped where they are
not), fills it, runs a real command that writes there, and lists what the file system holds afterwards.

Every case ends in one line naming the path (exit 2 for `swapkl`, a usage error or a notice in pytest), and the
tmpfs holds the filler only: no torn file, no temporary one, no half model folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# $1: the mount point, $2: bytes left free, $3: where to list what the mount holds; the command follows.
SCRIPT = ('mount -t tmpfs -o size=1m tmpfs "$1" || exit 99; head -c $((1048576 - $2)) /dev/zero > "$1/filler" '
          '2>/dev/null; mount_point=$1; listing=$3; shift 3; "$@"; status=$?; '
          'find "$mount_point" -mindepth 1 -printf "%P\\n" | sort > "$listing"; exit $status')


def _can_mount() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _can_mount(), reason="needs a private mount namespace (unshare -rm) to mount tmpfs")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A tiny llama, calibration and held-out ids: a whole audit takes seconds."""
    from tiny_models import random_ids, tiny_model

    folder = tmp_path_factory.mktemp("work")
    tiny_model("llama", n_layers=2).save_pretrained(folder / "tiny")
    ids = random_ids(8, 16).numpy()
    np.save(folder / "ids.npy", ids[:4])
    np.save(folder / "held.npy", ids[4:])
    return folder


def on_full_disk(work: Path, tmp_path: Path, *command: str, free: int = 0, env: dict | None = None):
    """Run `command` (in `work`) with a full 1 MiB tmpfs at tmp_path/full (`free` bytes left); returns the finished
    process and the sorted names the tmpfs held after it."""
    mount, listing = tmp_path / "full", tmp_path / "listing.txt"
    mount.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", SCRIPT, "sh", str(mount), str(free), str(listing),
                           *command], cwd=work, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode != 99, done.stderr
    return done, listing.read_text().split()


def swapkl(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "pytest_swapkl", *arguments]


def test_an_audit_json_on_a_full_disk_is_one_line_and_the_measurement_stays_in_the_journal(work, tmp_path):
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    target = tmp_path / "full" / "audit.json"
    done, held = on_full_disk(work, tmp_path, *swapkl("audit", "tiny", "--data", "ids.npy", "--bootstrap", "10",
                                                      "--device", "cpu", "--json", str(target)), env=xdg)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"swapkl: error: cannot write {target}: No space left on device; the measured results "
                           f"stay in {tmp_path / 'xdg' / 'swapkl' / 'journal'}"), last
    assert "Traceback" not in done.stderr and held == ["filler"]  # no torn audit.json, no temporary file
    # With space again, the rerun takes every probe from the journal, then removes it.
    again = subprocess.run(swapkl("audit", "tiny", "--data", "ids.npy", "--bootstrap", "10", "--device", "cpu",
                                  "--json", str(tmp_path / "audit.json")), cwd=work, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **xdg}, timeout=300)
    assert again.returncode == 0 and "swapkl: resuming: " in again.stderr, again.stderr
    assert not list((tmp_path / "xdg" / "swapkl" / "journal").glob("*.jsonl"))


def test_a_pruned_model_on_a_full_disk_leaves_no_half_folder(work, tmp_path):
    """28 KB free: config.json fits, the weights do not (safetensors wraps the OSError in its own error type)."""
    target = tmp_path / "full" / "pruned"
    done, held = on_full_disk(work, tmp_path, *swapkl("prune", "tiny", "--data", "ids.npy", "--heldout", "held.npy",
                                                      "--layers", "1", "--save-pruned", str(target)), free=28_000,
                              env={"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (f"swapkl: error: cannot write the pruned model {target}: No space "
                                                    "left on device; free space there, or write it elsewhere")
    assert held == ["filler"]


def test_a_full_pytest_cache_folder_is_a_notice_naming_it_and_the_json_one_line(work, tmp_path):
    """The cache folder and --swapkl-json both on the full disk: a notice names the cache folder (it used to say
    "the swapkl cache folder"), the audit runs without it, and the JSON's failure is one usage-error line."""
    full = tmp_path / "full"
    done, held = on_full_disk(work, tmp_path, sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                              "-o", f"cache_dir={full / 'cache'}", "--swapkl-model=tiny", "--swapkl-data=ids.npy",
                              "--swapkl-bootstrap=10", f"--swapkl-json={full / 'a.json'}")
    assert done.returncode == 4, done.stdout + done.stderr
    assert (f"swapkl: cannot use {full / 'cache' / 'd' / 'swapkl'} as swapkl's cache folder (No space left on "
            "device): the audit runs without the cache") in done.stderr
    assert f"ERROR: swapkl: cannot write {full / 'a.json'}: No space left on device" in done.stderr
    assert "INTERNALERROR" not in done.stdout + done.stderr and held == ["filler"]


def test_a_journal_on_a_full_disk_costs_the_journal_not_the_audit(work, tmp_path):
    done, held = on_full_disk(work, tmp_path, *swapkl("audit", "tiny", "--data", "ids.npy", "--bootstrap", "10",
                                                      "--device", "cpu", "--json", str(tmp_path / "audit.json")),
                              env={"XDG_CACHE_HOME": str(tmp_path / "full")})
    assert done.returncode == 0, done.stderr
    assert f"resume journal at {tmp_path / 'full' / 'swapkl' / 'journal'}" in done.stderr or \
        f"the resume journal {tmp_path / 'full' / 'swapkl' / 'journal'}" in done.stderr, done.stderr
    assert (tmp_path / "audit.json").stat().st_size > 0
    assert held == ["filler", "swapkl", "swapkl/journal"]  # no empty or torn journal file left
