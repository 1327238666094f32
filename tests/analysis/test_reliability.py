"""Split-half reliability, Spearman-Brown, the disattenuated Spearman and their JSON/summary fields."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_swapkl.analysis import intervals, stats
from pytest_swapkl.analysis.reliability_text import reliability_text


def test_two_sequences_give_the_stepped_up_rho_of_the_one_split():
    # Pairs ordered 1 2 3 by the first sequence and 1 3 2 by the second: rho = 1 - 6 * 2 / (3 * 8) = 0.5,
    # stepped up to the full length 2 * 0.5 / 1.5 = 2/3 (both ways of splitting give the same rho).
    table = np.array([[1.0, 1.0], [2.0, 3.0], [3.0, 2.0]])
    assert intervals.split_half_reliability([table]) == pytest.approx(2 / 3)


def test_a_reversed_second_half_reads_minus_one():
    # rho = -1 on the only split; 2r / (1 + r) is undefined there and the clip reads -1
    table = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert intervals.split_half_reliability([table]) == -1.0


def test_spearman_brown_by_hand_and_its_clip():
    assert intervals.spearman_brown(0.5) == pytest.approx(2 / 3)
    assert intervals.spearman_brown(0.98) == pytest.approx(1.96 / 1.98)
    assert intervals.spearman_brown(0.0) == 0.0
    assert intervals.spearman_brown(-1 / 3) == -1.0
    assert intervals.spearman_brown(-0.9) == -1.0
    assert intervals.spearman_brown(1.0) == 1.0


def test_r_is_read_from_both_directions_with_the_audits_reduction():
    # The max of the two directions orders the pairs 1 2 3 on both sequences; either direction alone does not
    ij = np.array([[1.0, 1.0], [5.0, 1.0], [3.0, 3.0]])
    ji = np.array([[1.0, 1.0], [1.0, 5.0], [6.0, 6.0]])
    assert intervals.split_half_reliability([ij, ji], np.maximum) == 1.0
    assert intervals.split_half_reliability([ij]) < 1.0


def test_undefined_cases_are_none():
    assert intervals.split_half_reliability([np.ones((4, 6))]) is None  # constant halves: no rho
    assert intervals.split_half_reliability([np.arange(4.0)[:, None]]) is None  # one sequence
    assert intervals.split_half_reliability([np.ones((1, 6))]) is None  # one pair


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(2, 40), st.integers(0, 2**16))
def test_perfectly_reliable_data_give_one(n_pairs, n_seq, seed):
    # Every sequence orders the pairs alike (a shared per-sequence scale on distinct means): reliability 1
    rng = np.random.default_rng(seed)
    means = np.cumsum(rng.uniform(0.1, 1.0, n_pairs))
    table = means[:, None] * rng.uniform(0.5, 2.0, n_seq)[None]
    assert intervals.split_half_reliability([table], splits=20, seed=seed) == 1.0


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 20), st.integers(2, 20), st.integers(0, 2**16), st.floats(0.0, 10.0))
def test_reliability_is_in_minus_one_one_and_none_only_when_undefined(n_pairs, n_seq, seed, noise):
    rng = np.random.default_rng(seed)
    table = np.round(np.arange(n_pairs)[:, None] + noise * rng.normal(size=(n_pairs, n_seq)), 1)  # ties too
    value = intervals.split_half_reliability([table], splits=10, seed=seed)
    assert value is None or -1.0 <= value <= 1.0


def test_disattenuated_by_hand():
    assert intervals.disattenuated(0.9, 0.81, 1.0) == pytest.approx(1.0)
    assert intervals.disattenuated(0.6, 0.9, 0.8) == pytest.approx(0.6 / math.sqrt(0.72))
    assert intervals.disattenuated(0.5, 0.64, 0.25) == 1.0  # 1.25 clipped
    assert intervals.disattenuated(-0.5, 0.64, 0.25) == -1.0
    assert intervals.disattenuated(0.7, 1.0, 1.0) == 0.7  # perfectly reliable: no correction
    for missing in ((None, 0.9, 0.9), (0.5, None, 0.9), (0.5, 0.9, 0.0), (0.5, -0.2, 0.9)):
        assert intervals.disattenuated(*missing) is None


@settings(max_examples=60, deadline=None)
@given(st.floats(-1, 1), st.floats(0.01, 1), st.floats(0.01, 1))
def test_disattenuated_stays_a_correlation_and_moves_away_from_zero(rho, rel_a, rel_b):
    value = intervals.disattenuated(rho, rel_a, rel_b)
    assert -1.0 <= value <= 1.0 and abs(value) >= abs(rho) - 1e-12 and value * rho >= 0


def test_the_flag_is_below_the_floor():
    assert intervals.unreliable(0.985, 0.999) and intervals.unreliable(None, 0.5)
    assert not intervals.unreliable(0.99, 0.999) and not intervals.unreliable(None, None)


def test_the_summary_fields_and_text():
    rng = np.random.default_rng(0)
    means = np.linspace(1, 2, 12)
    ij = means[:, None] * rng.gamma(20, 1 / 20, (12, 16))
    ji, i_table = ij * 1.1, means[:, None] * rng.gamma(2, 1 / 2, (12, 16))
    rho = stats.spearman(np.maximum(ij, ji).mean(1), i_table.mean(1))
    result = intervals.add_reliability(intervals.SuiteIntervals(), [ij, ji], i_table, np.maximum, rho)
    record = intervals.reliability_record(result)
    assert record["reliability"]["floor"] == 0.99
    assert record["reliability"]["below_floor"] == (min(result.reliability_replacement,
                                                        result.reliability_interchange) < 0.99)
    assert record["spearman_disattenuated"] == pytest.approx(
        intervals.disattenuated(rho, result.reliability_replacement, result.reliability_interchange))
    text = reliability_text(record)
    assert text.startswith(f"; split-half reliability R {result.reliability_replacement:.4f}")
    assert ("below 0.99" in text) == record["reliability"]["below_floor"]
    assert reliability_text({}) == ""  # documents written before these fields


def test_summarize_reads_r_from_both_directions_with_its_reduction():
    from pytest_swapkl.analysis.audit import summarize
    from pytest_swapkl.engine.measurement import Measurement, ProbeStats
    from pytest_swapkl.engine.probes import audit_probes, interchange, parse_pairs, replacement

    rng = np.random.default_rng(1)
    pairs = parse_pairs("all", 5)
    per_probe = {p: ProbeStats(p, rng.gamma(2.0, 0.05, 16), rng.normal(3, 0.1, 16)) for p in audit_probes(pairs, 5)}
    measurement = Measurement("fast", 16, 32, rng.normal(3, 0.1, 16), per_probe)
    audit = summarize(measurement, pairs, 5, "max", n_resamples=50, seed=0)
    table = {name: np.stack([measurement[probe(i, j, 5)].kl_per_seq for i, j in pairs])
             for name, probe in (("ij", replacement), ("ji", lambda i, j, n: replacement(j, i, n)),
                                 ("i", interchange))}
    assert audit.intervals.reliability_replacement == intervals.split_half_reliability([table["ij"], table["ji"]],
                                                                                       np.maximum)
    assert audit.intervals.reliability_interchange == intervals.split_half_reliability([table["i"]])
    assert audit.intervals.spearman_disattenuated == intervals.disattenuated(
        audit.spearman, audit.intervals.reliability_replacement, audit.intervals.reliability_interchange)


def test_the_rank_correlation_case_and_the_report_carry_the_reliabilities():
    import json
    from pathlib import Path
    from types import SimpleNamespace

    from pytest_swapkl.cases import rank_properties
    from pytest_swapkl.commands.report import _reliability_rows

    document = json.loads((Path(__file__).parents[1] / "fixtures/study/gemma3-270m_audit.json").read_text())
    document["summary"].update({"spearman_disattenuated": 0.9046, "reliability": {
        "replacement": 0.985, "interchange": 0.9999, "floor": 0.99, "below_floor": True}})
    props = dict(rank_properties(document, 0.5))
    assert props["reliability_replacement"] == 0.985 and props["spearman_disattenuated"] == 0.9046
    audit = SimpleNamespace(case=lambda name: SimpleNamespace(properties=props))
    assert _reliability_rows(audit) == [("split-half reliability (R / I)", "0.9850 / 0.9999 (below 0.99: rho "
                                         "attenuated)"), ("Spearman, disattenuated", "0.905")]
    assert _reliability_rows(SimpleNamespace(case=lambda name: None)) == []  # older files: no rows
