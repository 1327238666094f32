"""--tokens where nothing sets it: 8192, but 2048 for a real model on the CPU (options.default_tokens)."""

import pytest

from pytest_swapkl import options as O
from pytest_swapkl.commands.cli import build_parser
from tests.test_fuzz_options import FakeConfig


@pytest.mark.parametrize("args, expected", [
    (["audit", "smollm2-135m", "--device", "cpu"], O.CPU_TOKENS),
    (["audit", "smollm2-135m", "--device", "cuda"], O.DEFAULT_TOKENS),
    (["audit", "demo", "--device", "cpu"], O.DEFAULT_TOKENS),  # the demo model is cheap enough for 8192
    (["audit", "smollm2-135m", "--device", "cpu", "--tokens", "8192"], 8192),  # given: it stands
    (["audit", "smollm2-135m", "--device", "cpu", "--contract", "masked-mean"], O.CPU_TOKENS),
])
def test_the_command_line_default_follows_the_device_and_model(args, expected):
    assert build_parser().parse_args(args).tokens == expected


def test_auto_device_is_the_cpu_where_cuda_is_missing(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert O.default_tokens("smollm2-135m", "auto") == O.CPU_TOKENS
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert O.default_tokens("smollm2-135m", "auto") == O.DEFAULT_TOKENS


def test_the_pytest_face_takes_the_same_default_and_lets_a_value_win():
    config = FakeConfig(options={"swapkl_model": "smollm2-135m", "swapkl_device": "cpu"})
    assert O.from_pytest(config).tokens == O.CPU_TOKENS
    config = FakeConfig(options={"swapkl_model": "smollm2-135m", "swapkl_device": "cpu"}, ini={"swapkl_tokens": "4096"})
    assert O.from_pytest(config).tokens == 4096
