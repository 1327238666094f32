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
