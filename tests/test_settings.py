"""Typed settings are built once from parsed options, and one content identity keys the journal, cache and shards."""

import argparse
from dataclasses import FrozenInstanceError, replace

import pytest

from pytest_swapkl.options import OPTIONS, add_to_argparse
from pytest_swapkl.plugin.cache import audit_key
from pytest_swapkl.settings import AuditSettings, EngineSettings, content_identity


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    add_to_argparse(parser)
    return parser.parse_args(["demo", *argv])


def test_settings_carry_every_parsed_value_and_fill_what_a_face_lacks():
    settings = AuditSettings.of(parsed("--pairs", "all", "--stack", "3", "--tokens", "512"))
    assert settings.pairs == "all" and settings.engine.stack == 3 and settings.inputs.tokens == 512
    assert AuditSettings.of(settings) is settings
    # A face without the pruning flags (the trajectory command, a fixture's namespace) gets the declared defaults.
    bare = AuditSettings.of(argparse.Namespace(model="demo", pairs="adjacent"))
    defaults = {option.name: option.default for option in OPTIONS}
    assert bare.pruning.prune_k == defaults["prune_k"] and bare.engine.path == defaults["path"]
    assert bare.inputs.tokens == defaults["tokens"] and not bare.pruning.reports_costs
    with pytest.raises(FrozenInstanceError):
        settings.pairs = "adjacent"


def test_engine_settings_are_the_one_source_of_measure_arguments():
    engine = EngineSettings(path="fast", compile="off", batch_size=4, attention_type="slot", max_memory=1 << 30,
                            stack=2)
    assert engine.measure_kwargs() == {"path": "fast", "compile": "off", "batch_size": 4, "attention_type": "slot",
                                       "memory_budget": 1 << 30, "stack": 2, "positions": "all", "pads": "out"}
    assert "batch_size" not in engine.measure_kwargs(batch_size=False)
    assert "max_memory" not in engine.identity(), "a memory cap changes the plan, not the numbers"


@pytest.mark.parametrize("change", [{"stack": 4}, {"attention_type": "slot"}, {"path": "reference"},
                                    {"batch_size": 3}, {"compile": "on"}])
def test_every_engine_setting_that_changes_numbers_changes_the_identity(change):
    base = dict(checkpoint="c" * 64, tokens_sha256="t" * 64, probes=["interchange(0,1)"], dtype="float32",
                device_kind="cpu", versions={"torch": "x"})
    engine = EngineSettings()
    before = content_identity(settings=engine.identity(), **base)
    after = content_identity(settings=replace(engine, **change).identity(), **base)
    assert before != after
    assert content_identity(settings=replace(engine, max_memory=1 << 20).identity(), **base) == before


def test_the_cache_key_follows_the_typed_settings():
    key = audit_key("c" * 64, "t" * 64, parsed(), "float32", "cpu", {"torch": "x"})
    assert key == audit_key("c" * 64, "t" * 64, parsed(), "float32", "cpu", {"torch": "x"})
    assert key != audit_key("c" * 64, "t" * 64, parsed("--stack", "2"), "float32", "cpu", {"torch": "x"})
    assert key != audit_key("c" * 64, "t" * 64, parsed("--pairs", "all"), "float32", "cpu", {"torch": "x"})
