"""The plugin under hostile conditions, in a real pytest process: outputs checked before the audit, a cache folder
that is not a folder, and cache entries whose checksum is right but whose fields are not. Exit 4 (usage error)
with one line, never INTERNALERROR."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

SMALL = ["--swapkl-data=ids.npy", "--swapkl-bootstrap=10", "-p", "no:randomly"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Built once, before any pytester snapshot of sys.modules (torch must not be imported inside one)."""
    from tiny_models import random_ids, tiny_model

    folder = tmp_path_factory.mktemp("saved")
    tiny_model("llama", n_layers=2).save_pretrained(folder / "tiny")
    np.save(folder / "ids.npy", random_ids(4, 16).numpy())
    return folder


@pytest.fixture
def tiny(saved, pytester):
    shutil.copytree(saved, pytester.path, dirs_exist_ok=True)
    return pytester.path


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.lines if line.strip()]


@pytest.mark.parametrize("target, expected", [
    ("ids.npy", "--swapkl-json ids.npy is the calibration data (--data), an input of this run"),
    ("tiny/config.json", "--swapkl-json tiny/config.json is inside the model (MODEL)"),
    ("audit.xml", "--swapkl-json and --junitxml both write audit.xml"),
])
def test_swapkl_json_never_overwrites_an_input(pytester, tiny, target, expected):
    before = (tiny / "ids.npy").read_bytes(), (tiny / "tiny" / "config.json").read_bytes()
    result = pytester.runpytest_subprocess("--swapkl-model=tiny", *SMALL, f"--swapkl-json={target}",
                                           "--junitxml=audit.xml")
    assert result.ret == 4
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: swapkl: {expected}"), lines
    assert "no tokenizer" not in result.stderr.str()  # refused before the model was located
    assert ((tiny / "ids.npy").read_bytes(), (tiny / "tiny" / "config.json").read_bytes()) == before


@pytest.mark.parametrize("flags, expected", [
    (["--junitxml=tiny/config.json"], "--junitxml tiny/config.json is inside the model (MODEL)"),
    (["--junitxml=ids.npy"], "--junitxml ids.npy is the calibration data (--data), an input of this run"),
    (["--swapkl-summary=fifo"], "cannot write fifo: it is a FIFO, not a regular file"),
])
def test_every_output_of_the_run_is_checked_against_its_inputs(pytester, tiny, flags, expected):
    """pytest's own --junitxml too (it once overwrote a model's config.json), and the summary (a FIFO hung)."""
    os.mkfifo(tiny / "fifo")
    before = (tiny / "ids.npy").read_bytes(), (tiny / "tiny" / "config.json").read_bytes()
    result = pytester.runpytest_subprocess("--swapkl-model=tiny", *SMALL, *flags, timeout=120)
    assert result.ret == 4
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: swapkl: {expected}"), lines
    assert ((tiny / "ids.npy").read_bytes(), (tiny / "tiny" / "config.json").read_bytes()) == before


def test_a_given_audit_json_is_an_input_too(pytester, tiny):
    (tiny / "audit.json").write_text('{"schema": "swapkl/1"}')
    for flag in ("--junitxml=audit.json", "--swapkl-summary=audit.json"):
        result = pytester.runpytest_subprocess("--swapkl-audit-json=audit.json", flag, timeout=120)
        assert result.ret == 4
        assert error_lines(result)[0].startswith(f"ERROR: swapkl: {flag.split('=')[0]} audit.json is "
                                                 "--swapkl-audit-json, an input of this run"), error_lines(result)
        assert (tiny / "audit.json").read_text() == '{"schema": "swapkl/1"}'


def test_a_file_where_the_cache_folder_should_be_is_a_usage_error(pytester, tiny):
    (tiny / ".pytest_cache" / "d").mkdir(parents=True)
    (tiny / ".pytest_cache" / "d" / "swapkl").write_text("not a folder")
    result = pytester.runpytest_subprocess("--swapkl-model=tiny", *SMALL)
    assert result.ret == 4
    lines = error_lines(result)
    assert len(lines) == 1 and "INTERNALERROR" not in result.stdout.str() + result.stderr.str(), lines
    assert lines[0].startswith("ERROR: swapkl: cannot use ") and "swapkl" in lines[0]
    assert lines[0].endswith("remove or rename what is in its place, or run with -p no:cacheprovider")


def test_a_given_audit_json_cannot_size_figures_beyond_the_layer_cap(pytester):
    """Issue 35: --swapkl-audit-json had no layer cap (pytest-html figures are n x n grids)."""
    import json

    from pytest_swapkl.limits import MAX_LAYERS

    n = MAX_LAYERS + 1
    document = {"schema": "swapkl/1", "model": {"n_layers": n, "name": "m", "architecture": "a", "dtype": "float32",
                                                 "device": "cpu"},
                "removal": [{"layer": k, "kl": 0.1, "ppl": 2.0} for k in range(n)]}
    (pytester.path / "huge.json").write_text(json.dumps(document))
    result = pytester.runpytest_subprocess("--swapkl-audit-json=huge.json", timeout=120)
    assert result.ret == 4
    assert f"model.n_layers is not between 1 and {MAX_LAYERS}" in error_lines(result)[0], error_lines(result)
