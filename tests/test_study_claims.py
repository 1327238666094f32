"""scripts/study_claims.py and scripts/claim_tests.py: the tests that turn the study's numbers into verdicts (the
divergent-regime reading from intervals, the paired verdicts recomputed and adjusted across a table, the
objective test, the simultaneous top-k separation, the beams compared through the exhaustive set), and the whole
script over the study files the repository holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import claim_tests  # noqa: E402
import study_claims  # noqa: E402
from claim_tests import ProtocolTest  # noqa: E402


def _tests(rows: list[tuple[str, float, float, float]]) -> list[ProtocolTest]:
    return [ProtocolTest(k + 1, safer, ratio, low, high, "interval only") for k, (safer, ratio, low, high) in
            enumerate(rows)]


@pytest.mark.parametrize("rows, reading", [
    ([("replacement", 0.40, 0.38, 0.42), ("replacement", 0.6, 0.58, 0.62)], "divergent"),  # 2.38x-2.63x at k = 1
    ([("interchange", 2.2, 2.1, 2.3), ("interchange", 1.5, 1.4, 1.6)], "divergent"),
    ([("replacement", 0.52, 0.515, 0.535), ("replacement", 0.6, 0.58, 0.62)], "not divergent"),  # Gemma-3: 1.87-1.94x
    ([("replacement", 0.50, 0.48, 0.52), ("replacement", 0.6, 0.58, 0.62)], "undecided"),  # 1.92-2.08x: straddles 2
    ([("replacement", 0.3, 0.28, 0.32), ("interchange", 1.2, 1.1, 1.3)], "not divergent"),  # flips with k
    ([("replacement", 0.3, 0.28, 0.32), ("same set", 1.0, 1.0, 1.0)], "not divergent"),
])
def test_divergent_regime_is_read_from_the_interval_of_the_factor(rows, reading):
    assert study_claims.divergent(_tests(rows))[0] == reading


def _budget(k: int, r: np.ndarray, i: np.ndarray) -> dict:
    return {"k": k, "sets": {"replacement": [k], "interchange": [k + 10]},
            "heldout_kl_per_sequence": {"replacement": list(r), "interchange": list(i)}}


def test_protocol_verdicts_are_recomputed_from_per_sequence_costs_and_adjusted_by_holm():
    rng = np.random.default_rng(0)
    base = rng.gamma(4.0, 0.05, 64)
    cheaper = base * rng.normal(0.7, 0.02, 64)  # replacement's set clearly cheaper
    near = base * rng.normal(1.0, 0.02, 64)  # within the 10% margin: equivalent
    audit = {"pruning": {"budgets": [_budget(1, cheaper, base), _budget(2, near, base)],
                         "verdict": [{"k": 1, "safer": "?", "ratio": 0.7, "ratio_ci": [0.6, 0.8]},
                                     {"k": 2, "safer": "?", "ratio": 1.0, "ratio_ci": [0.9, 1.1]}],
                         "bootstrap": {"n_resamples": 500, "seed": 1}}}
    tests, rate = claim_tests.protocol_tests(audit)
    assert [t.safer for t in tests] == ["replacement", "equivalent"]
    assert {t.source for t in tests} == {"recomputed"} and rate.startswith("Holm across the 2 budgets")
    # "at some budget" claims read the Bonferroni interval (97.5% for two budgets): wider than each one's 95%
    assert tests[0].family_low < tests[0].low and tests[0].family_high > tests[0].high


def test_files_without_p_values_are_read_from_their_interval_and_say_so():
    audit = {"pruning": {"budgets": [{"k": 1, "sets": {"replacement": [1], "interchange": [2]}},
                                     {"k": 2, "sets": {"replacement": [1, 2], "interchange": [2, 3]}},
                                     {"k": 3, "sets": {"replacement": [1, 2, 3], "interchange": [2, 3, 4]}}],
                         "verdict": [{"k": 1, "safer": "replacement", "ratio": 0.5, "ratio_ci": [0.45, 0.55]},
                                     {"k": 2, "safer": "indistinguishable", "ratio": 1.0, "ratio_ci": [0.95, 1.05]},
                                     {"k": 3, "safer": "indistinguishable", "ratio": 1.0, "ratio_ci": [0.8, 1.2]}]}}
    tests, rate = claim_tests.protocol_tests(audit)
    assert [t.safer for t in tests] == ["replacement", "equivalent", "undecided"]  # never "tie" without TOST
    assert "unadjusted" in rate


def test_the_objective_test_leaves_out_objective_blind_searches():
    """Two objectives that pick different layers for every objective-aware search: within-objective agreement is
    complete, across none; one-shot runs (identical across objectives by construction) do not enter."""
    results = []
    for n, search in enumerate(["beam", "greedy", "evolutionary", "exhaustive", "one-shot"]):
        for objective, layers in (("kl", [1, 2]), ("ppl", [5, 6])):
            chosen = [9, 10] if search == "one-shot" else layers
            results.append({"search": search, "guide": "g", "objective": objective, "k": 2, "layers": chosen})
    found = claim_tests.objective_test(results, ("kl", "ppl"), 2)
    assert found["n_combos"] == 4 and found["within"] == 1.0 and found["across"] == 0.0
    assert found["exact"] and found["p"] == pytest.approx(2 / 16)  # the observed labels and their mirror image
    assert found["low"] > 0


def test_top_k_separation_needs_simultaneous_evidence():
    """Pair 0-1 is cheapest under replacement, pair 2-3 under interchange, far beyond the noise: by the min-partner
    score layers 0 and 1 are surely in replacement's top-2 and surely out of interchange's, and the other way round
    for 2 and 3. At k = 1 the two layers of the cheapest pair tie (one score), so no layer is surely in a top-1."""
    pairs = np.array([(0, 1), (1, 2), (2, 3)])
    r, i = np.array([0.1, 1.0, 2.0]), np.array([2.0, 1.0, 0.1])
    rng = np.random.default_rng(0)
    noise = lambda v: v + rng.normal(0, 0.01, (500, 3))  # noqa: E731
    d = claim_tests.Distances(pairs, noise(r), noise(i), r, i, 0.0, 64)
    assert claim_tests.surely_different_topk(d, [1, 2]) == {1: [], 2: [0, 1, 2, 3]}
    same = claim_tests.Distances(pairs, noise(r), noise(r), r, r, 0.0, 64)
    assert claim_tests.surely_different_topk(same, [1, 2]) == {1: [], 2: []}


def test_rank_cases_fail_only_pairs_whose_simultaneous_intervals_lie_apart():
    """Ten pairs ranked alike by both protocols except pair 0-1, cheapest under R and dearest under I."""
    pairs = np.array([(n, n + 1) for n in range(10)])
    r = np.arange(1.0, 11.0)
    i = r.copy()
    i[0] = 20.0
    rng = np.random.default_rng(0)
    d = claim_tests.Distances(pairs, r + rng.normal(0, 0.01, (400, 10)), i + rng.normal(0, 0.01, (400, 10)), r, i,
                              0.0, 64)
    cases = claim_tests.rank_cases(d, 0.10, {0})
    assert cases == {"n_pairs": 10, "allowed": 1, "failing": 1, "touching_top": 1}


def test_rank_agreement_is_judged_against_the_suites_minimum():
    rows = [{"k": 1, "low": 0.22, "high": 0.60}, {"k": 2, "low": 0.50, "high": 0.73}]
    assert claim_tests.correlation_test(rows, 0.5)[0] == "mixed"
    assert claim_tests.correlation_test([{"k": 1, "low": 0.6, "high": 0.9}], 0.5)[0] == "agree"
    assert claim_tests.correlation_test([{"k": 1, "low": 0.1, "high": 0.4}], 0.5)[0] == "disagree"


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
    benchmarks/results/study), named as the script's input folder; the SmolLM2 files, the per-sequence distances
    and the trajectory summary are absent and their rows left out or marked untested."""
    study = ROOT / "tests" / "fixtures" / "study"
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "study_claims.py"), str(study),
                          "--trajectory", str(tmp_path / "no-trajectory.json")],
                         capture_output=True, text=True, check=True).stdout
    claims = out[out.index("## One row per claim"):]
    assert claims.count("| gemma3-270m |") >= 5 and "| smollm2-135m |" not in claims
    assert "| claim (paper) | test | margin | error rate | measured here | model | verdict |" in claims
    # Gemma-3's one-shot verdicts are all replacement-guided safer, at 1.87-1.94x: not several-fold interchange,
    # and not divergent (the whole interval of the largest factor lies below 2)
    assert "interchange safer at 0;" in claims
    assert "largest factor replacement 1.91x [1.87, 1.94] (95%, unadjusted) at k=3" in claims
    assert "| not divergent |" in claims
