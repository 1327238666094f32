"""Another held-out text is another audit: the cache key and the resume journal both change with its sha256."""

import argparse
from pathlib import Path

from pytest_swapkl.options import OPTIONS
from pytest_swapkl.plugin.cache import audit_key


def options(**changes):
    values = argparse.Namespace(**{o.name: o.default for o in OPTIONS}, model="demo")
    for name, value in changes.items():
        setattr(values, name, value)
    return values


def key(heldout_sha, **changes):
    return audit_key("checkpoint", "tokens", options(**changes), "float32", "cpu", {"torch": "x"}, heldout_sha)


def test_the_cache_key_holds_the_heldout_text_and_its_options():
    base = key("a" * 64, prune_k=2)
    assert key("a" * 64, prune_k=2) == base
    assert key("b" * 64, prune_k=2) != base  # other held-out ids
    assert key("a" * 64, prune_k=2, heldout="other.txt") != base  # the source the JSON records
    assert key("a" * 64, prune_k=2, heldout_tokens=4096) != base
    assert key("a" * 64, prune_k=2, noise_probes=0) != base  # the floor the document carries
    windowed = key("a" * 64, prune_k=2, heldout_window=64)  # the sliding-window evaluator changes every cost
    assert windowed != base
    assert key("a" * 64, prune_k=2, heldout_window=64, heldout_stride=32) == windowed  # the default: half
    assert key("a" * 64, prune_k=2, heldout_window=64, heldout_stride=16) != windowed
    assert key("a" * 64, prune_k=2, heldout_window=64, heldout_words=500) != windowed


def test_the_journal_is_another_file_for_another_heldout_text(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import pytest_swapkl.audit.runner as runner

    monkeypatch.setattr(runner, "model_record", lambda loaded: {"name": "demo"})
    monkeypatch.setattr(runner, "library_versions", lambda: {"torch": "x"})
    loaded = SimpleNamespace(path=str(tmp_path))
    calibration = SimpleNamespace(sha256="c" * 64)
    paths = []
    for sha in ("a" * 64, "b" * 64, None):
        heldout = None if sha is None else SimpleNamespace(sha256=sha)
        journal = runner.open_journal(options(), loaded, calibration, [], tmp_path, lambda _: None, heldout)
        paths.append(Path(journal.path))
        journal.close(finished=False)
    assert len(set(paths)) == 3
