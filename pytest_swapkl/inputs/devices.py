"""Device and dtype strings (`auto`, `cpu`, `cuda[:N]`; `auto`, `float32`, `bfloat16`, `float16`)."""

from __future__ import annotations

import re

import torch

from ..errors import InputError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_CHOICES = ("auto", *DTYPES)


class DeviceError(InputError):
    pass


def resolve_device(spec: str = "auto") -> torch.device:
    """`auto` is the first CUDA device when there is one, else the CPU."""
    text = spec.strip().lower()
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::([0-9]+))?", text)
    if not match:
        raise DeviceError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {spec!r} asked for, but this machine has no CUDA GPU: use --device cpu or auto")
    digits = (match.group(1) or "0").lstrip("0") or "0"
    count = torch.cuda.device_count()
    if len(digits) > 9 or int(digits) >= count:  # int() refuses more than 4300 digits
        raise DeviceError(f"device {spec!r} does not exist: this machine has {count} CUDA device(s), "
                          f"use cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", int(digits))


# What --dtype auto means, said in the help and recorded in the JSON beside the dtype it chose.
AUTO_DTYPE_RULE = ("auto: bfloat16 on CUDA, float32 on the CPU, whatever dtype the checkpoint was saved in "
                   "(unlike transformers' torch_dtype='auto', which loads the checkpoint's own dtype)")


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """`auto` is bfloat16 on CUDA and float32 on the CPU (`AUTO_DTYPE_RULE`)."""
    text = spec.strip().lower()
    if text == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if text not in DTYPES:
        raise DeviceError(f"unknown dtype {spec!r}: use one of {', '.join(DTYPE_CHOICES)}")
    return DTYPES[text]
