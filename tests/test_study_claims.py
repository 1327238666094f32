"""scripts/study_claims.py: the rules that turn the study's numbers into verdicts (the divergent-regime reading,
the beams compared through the exhaustive set), and the whole script over the study files the repository holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import study_claims  # noqa: E402


def _audit(verdicts: list[tuple[str, float]]) -> dict:
    return {"pruning": {"verdict": [{"k": k + 1, "safer": safer, "ratio": ratio}
                                    for k, (safer, ratio) in enumerate(verdicts)]}}


@pytest.mark.parametrize("verdicts, divergent", [
    ([("replacement", 0.4), ("replacement", 0.6)], True),  # one way everywhere, 2.5x at k = 1
    ([("interchange", 2.2), ("interchange", 1.5)], True),
    ([("replacement", 0.52), ("replacement", 0.6)], False),  # one way, but 1.92x at most
    ([("replacement", 0.3), ("interchange", 1.2)], False),  # flips with k
    ([("replacement", 0.3), ("same set", 1.0)], False),  # a budget where the sets are the same
])
def test_divergent_regime_reading(verdicts, divergent):
    assert study_claims.divergent(_audit(verdicts))[0] is divergent


def _beam(layers: list[int], same_set: bool, verdict: str = "indistinguishable", ratio: float = 1.0) -> dict:
    return {"layers": layers, "heldout": {"vs_best": {"same_set": same_set, "verdict": verdict, "ratio": ratio,
                                                      "ratio_low": ratio * 0.95, "ratio_high": ratio * 1.05}}}


def test_beams_are_compared_through_the_exhaustive_set():
    optimum = _beam([8, 9], True)
    dearer = _beam([8, 15], False, "B cheaper", 1.35)  # B = the exhaustive set is cheaper
    cheaper = _beam([7, 15], False, "A cheaper", 0.8)  # cheaper on held-out text than the calibration optimum
    assert study_claims._beams(optimum, dearer, "kl").startswith("replacement-guided safer, 1.35x")
    assert study_claims._beams(dearer, optimum, "kl").startswith("interchange-guided safer, 1.35x")
    assert study_claims._beams(optimum, cheaper, "kl").startswith("interchange-guided safer, 1.25x")
    assert study_claims._beams(optimum, _beam([7, 9], False), "kl") == "indistinguishable"
    assert study_claims._beams(optimum, _beam([9, 8], True), "kl") == "same set"
    assert study_claims._beams(dearer, cheaper, "kl").startswith("not compared")


def test_the_script_reads_the_study_files(tmp_path):
    """Gemma-3-270M's study files (tests/fixtures/study: the audit, guided removal and ceilings, copied from
    benchmarks/results/study); the SmolLM2 files and the trajectory summary are absent and their rows left out."""
    study = ROOT / "tests" / "fixtures" / "study"
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "study_claims.py"), "--study", str(study),
                          "--trajectory", str(tmp_path / "no-trajectory.json")],
                         capture_output=True, text=True, check=True).stdout
    claims = out[out.index("## One row per claim"):]
    assert claims.count("| gemma3-270m |") >= 5 and "| smollm2-135m |" not in claims
    # Gemma-3's one-shot verdicts are all replacement-guided safer, at 0.52-0.61: not several-fold interchange
    assert "interchange safer at 0, replacement safer at 4 of 4 budgets" in claims
