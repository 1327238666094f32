import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]  # end-to-end plugin runs in tests/pytester

sys.path.insert(0, str(Path(__file__).parent))  # tiny_models


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
