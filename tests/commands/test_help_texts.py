"""Every face describes MODEL alike: a folder, a hub id, a .gguf file, the named real models and demo (issue 37)."""

import subprocess
import sys

import pytest

from pytest_swapkl.options import MODEL_HELP


@pytest.mark.parametrize("argv", [["-m", "pytest_swapkl", "audit", "--help"],
                                  ["-m", "pytest_swapkl", "prune", "--help"],
                                  ["-m", "pytest_swapkl", "heal", "--help"],
                                  ["-m", "pytest", "--help", "-p", "no:cacheprovider"]])
def test_every_help_names_every_kind_of_model(argv, tmp_path):
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    flat = " ".join(out.split())
    for kind in (".gguf file", "smollm2-135m", "gemma3-270m", "hub id", "'demo'"):
        assert kind in flat, (kind, argv)
    assert " ".join(MODEL_HELP.split()) in flat
