"""Models placed across devices with accelerate (`--device-map`, `--device-memory`): the fast path replays each layer
on its own device and gives the reference path's numbers. On CPU the map is one device; on a GPU the test forces a
split between the GPU and the CPU (offloaded layers) with max_memory."""

import numpy as np
import pytest
import torch

from pytest_swapkl import engine
from pytest_swapkl.engine.probes import audit_probes, parse_pairs
from pytest_swapkl.errors import InputError
from pytest_swapkl.inputs.loading import load_model
from pytest_swapkl.inputs.placement import parse_device_memory, placement_kwargs


def test_device_memory_is_parsed_and_bad_specs_are_one_line_errors():
    assert parse_device_memory("0=20GiB, 1=70GiB,cpu=64GiB") == {0: "20GiB", 1: "70GiB", "cpu": "64GiB"}
    assert parse_device_memory("0=1000000") == {0: 1000000}
    for bad in ("gpu0=20GiB", "0=lots", "0"):
        with pytest.raises(InputError, match="DEVICE=SIZE pairs"):
            parse_device_memory(bad)
    with pytest.raises(InputError, match="--device-memory needs --device-map auto"):
        placement_kwargs(None, "0=20GiB", "auto")
    with pytest.raises(InputError, match="unknown --device-map"):
        placement_kwargs("everywhere", None, "auto")


def measure_both(loaded, ids):
    probes = audit_probes(parse_pairs("all", loaded.n_layers), loaded.n_layers)
    fast = engine.measure(loaded.model, ids, probes, path="fast", batch_size=2, compile="off")
    reference = engine.measure(loaded.model, ids, probes, path="reference", batch_size=2)
    return probes, fast, reference


def test_device_map_auto_on_cpu_gives_the_numbers_of_a_plain_load(tmp_path, tiny_model, one_thread):
    from tiny_models import random_ids

    tiny_model("llama", n_layers=4).save_pretrained(tmp_path / "tiny")
    ids = random_ids(4, 16)
    placed = load_model(str(tmp_path / "tiny"), device="cpu", device_map="auto", notice=lambda _: None)
    plain = load_model(str(tmp_path / "tiny"), device="cpu", notice=lambda _: None)
    assert placed.device == "cpu"  # accelerate plans one device on a machine without GPUs
    probes, fast, reference = measure_both(placed, ids)
    direct = engine.measure(plain.model, ids, probes, path="fast", batch_size=2, compile="off")
    for probe in probes:
        np.testing.assert_array_equal(fast[probe].kl_per_seq, direct[probe].kl_per_seq)
        np.testing.assert_allclose(fast[probe].kl_per_seq, reference[probe].kl_per_seq, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
def test_split_between_gpu_and_cpu_fast_path_equals_reference_in_float32(tmp_path):
    from tiny_models import family_config, random_ids
    from transformers import AutoModelForCausalLM

    config = family_config("llama", n_layers=8, hidden=256, heads=8, kv_heads=4, max_positions=128)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "model")
    # ~2.6 MB per layer in float32: 12 MB of GPU holds the embedding and a few layers, the rest goes to the CPU.
    loaded = load_model(str(tmp_path / "model"), dtype="float32", device_map="auto", device_memory="0=12MB,cpu=2GB",
                        notice=lambda _: None)
    where = set(map(str, loaded.model.hf_device_map.values()))
    assert where == {"0", "cpu"}, f"no split between the GPU and the CPU: {loaded.model.hf_device_map}"
    assert str(loaded.model.hf_device_map["lm_head"]) == "0"  # the head is pinned to the GPU
    ids = random_ids(4, 64)
    probes, fast, reference = measure_both(loaded, ids)
    for probe in probes:
        np.testing.assert_allclose(fast[probe].kl_per_seq, reference[probe].kl_per_seq, rtol=1e-3, atol=1e-6)
    for variant in ({"compile": "on"}, {"compile": "off", "stack": 1}, {"compile": "off", "stack": 8}):
        other = engine.measure(loaded.model, ids, probes, path="fast", batch_size=2, **variant)
        for probe in probes:  # compiled; depth-first; probes stacked across the devices' layers
            np.testing.assert_allclose(other[probe].kl_per_seq, reference[probe].kl_per_seq, rtol=1e-3, atol=1e-6)
