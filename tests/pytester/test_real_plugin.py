"""The plugin end to end on a real pretrained checkpoint: `pytest --swapkl-model=smollm2-135m` in an empty folder."""

import json

import pytest

from pytest_swapkl import cases
from pytest_swapkl.inputs.gguf import default_cache_root
from pytest_swapkl.inputs.named_models import NAMED_MODELS
from pytest_swapkl.report.junit import read_junit

GGUF_CACHE = default_cache_root()  # read at import, before pytester points HOME at its temporary folder


@pytest.mark.real
@pytest.mark.slow
def test_plugin_audits_smollm2_from_the_package_registry(pytester, monkeypatch):
    model = NAMED_MODELS["smollm2-135m"]
    if not model.installed():
        pytest.skip(f"smollm2-135m is not installed: {model.install}")
    monkeypatch.setenv("SWAPKL_CACHE_DIR", str(GGUF_CACHE))  # reuse the dequantized model, do not rebuild it
    result = pytester.runpytest_subprocess(
        "--swapkl-model=smollm2-135m", "--swapkl-tokens=256", "--swapkl-seq-len=64", "--swapkl-device=cpu",
        "--junitxml=audit.xml", "--swapkl-json=audit.json")
    assert result.ret in (0, 1), result.stdout.str() + result.stderr.str()  # 1: the protocols disagree somewhere
    document = json.loads((pytester.path / "audit.json").read_text())
    assert document["model"]["n_layers"] == 30 and document["model"]["architecture"] == "LlamaForCausalLM"
    assert document["model"]["weights"]["format"] == "gguf"
    assert document["model"]["weights"]["quantization"] == "Q4_1"
    audit = read_junit(pytester.path / "audit.xml")
    names = {case.name for case in audit.cases}
    assert {cases.pair_case(i, i + 1) for i in range(29)} <= names and cases.RANK_CORRELATION in names
    assert len(audit.removals) == 30 and all(r.kl > 0 for r in audit.removals)
    assert 1 < audit.base_ppl < 1000
