import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pytest_swapkl.inputs.devices import DeviceError, resolve_device, resolve_dtype


def test_auto_choices():
    device = resolve_device("auto")
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda", 0)) == torch.bfloat16
    assert resolve_dtype("BFloat16", torch.device("cpu")) == torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_says_so():
    with pytest.raises(DeviceError, match="no CUDA GPU: use --device cpu"):
        resolve_device("cuda")


@given(st.text(max_size=12))
def test_any_device_or_dtype_string_resolves_or_says_why(text):
    for resolve in (resolve_device, lambda s: resolve_dtype(s, torch.device("cpu"))):
        try:
            resolve(text)
        except DeviceError as error:
            assert "\n" not in str(error) and str(error).startswith(("unknown device", "unknown dtype", "device"))
