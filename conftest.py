"""The project's own test configuration (not the plugin's: users never load this file).

Markers, the GPU skip, and fixtures shared by tests/ and examples/: tiny random models
of every family (tests/tiny_models.py) and a one-thread torch for the 2-core CI machine.
"""

import os
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]  # end-to-end plugin runs in tests/pytester

sys.path.insert(0, str(Path(__file__).parent / "tests"))  # tiny_models

MARKERS = {
    "gpu": "needs a CUDA device (skipped without one)",
    "slow": "takes more than a few seconds on CPU",
    "real": "runs a real pretrained checkpoint installed from the package registry (skipped when not installed)",
}


def pytest_configure(config):
    for name, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _threads_per_worker()
    # The suite neither reads nor writes the user's audit cache (plugin/cache.py): a test measures what it means
    # to; tests/pytester/test_reuse_cli_audit.py names a folder of its own.
    os.environ.setdefault("SWAPKL_AUDIT_CACHE", "off")


def _threads_per_worker():
    """Each xdist worker takes its share of the cores (the plugin's own default, engine/threads.py: one each on the
    2-core test machine, where two workers of two threads oversubscribe it and run several times slower). The
    environment variable reaches the processes the tests start (swapkl, pytester subprocesses, torchrun) unless a
    test sets its own."""
    import torch

    from pytest_swapkl.engine.threads import chosen_threads

    threads = chosen_threads(None)[0]
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: the 2-core test machine is shared, and two threads per process
    oversubscribe it and run several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_model():
    """A factory: `tiny_model("llama", n_layers=4)` is a random float32 model of that family, built from a config."""
    from tiny_models import tiny_model as build

    return build
