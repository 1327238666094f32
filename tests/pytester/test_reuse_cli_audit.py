"""Issue 37: `swapkl audit MODEL ...` then `pytest --swapkl-model=MODEL` with the same settings measures once: the
plugin takes the audit the command put in the user's audit cache (same content identity); other settings miss."""

import json
import sys

SMALL = ["--tokens=1024", "--seq-len=128", "--device=cpu", "--noise-probes=0"]


def test_the_plugin_reuses_the_audit_swapkl_audit_just_computed(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("SWAPKL_AUDIT_CACHE", str(tmp_path / "home-cache" / "swapkl" / "audits"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cli = pytester.run(sys.executable, "-m", "pytest_swapkl", "audit", "demo", *SMALL, "--json", "a.json")
    assert cli.ret == 0, cli.stderr.str()
    shared = list((tmp_path / "home-cache" / "swapkl" / "audits").glob("*.json"))
    assert len(shared) == 2, cli.stderr.str()[-2000:] + str(list((tmp_path).rglob("*")))  # entry, file digests
    written = json.loads((pytester.path / "a.json").read_text())
    entry = json.loads(next(path for path in shared if path.name != "file-digests.json").read_text())
    assert entry["document"]["pairs"] == written["pairs"] and entry["document"]["cache_key"] == entry["key"]

    same = pytester.runpytest_subprocess("--swapkl-model=demo", *[f"--swapkl-{arg[2:]}" for arg in SMALL], "-q")
    output = same.stdout.str() + same.stderr.str()
    assert same.ret in (0, 1), output
    assert "taken from the one swapkl audit computed" in output and "computing the audit" not in output
    assert "11 passed" in output  # the demo's cases, judged on the reused numbers

    other = pytester.runpytest_subprocess("--swapkl-model=demo", "--swapkl-tokens=2048", "--swapkl-seq-len=128",
                                          "--swapkl-device=cpu", "--swapkl-noise-probes=0", "-q")
    assert "computing the audit" in other.stdout.str() + other.stderr.str()
