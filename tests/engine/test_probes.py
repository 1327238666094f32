import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_swapkl import probes as P


def test_probe_orders():
    assert P.replacement(1, 3, 5).order == (0, 1, 2, 1, 4)
    assert P.interchange(1, 3, 5).order == (0, 3, 2, 1, 4)
    assert P.removal([3, 1, 3], 5).order == (0, 2, 4)
    assert P.removal([1, 3], 5).name == "removal(1,3)"
    assert P.layer_order([0, 0, 1], 3).name == "order(0,0,1)"


def test_first_changed_slot():
    assert P.identity(4).first_changed_slot() is None
    assert P.replacement(2, 2, 4).first_changed_slot() is None
    assert P.replacement(1, 3, 4).first_changed_slot() == 3
    assert P.replacement(3, 1, 4).first_changed_slot() == 1
    assert P.removal([3], 4).first_changed_slot() == 3  # truncation: starts where the tail is dropped
    assert P.layer_order([0, 1, 2, 3, 3], 4).first_changed_slot() == 4


def test_pair_specs():
    assert P.parse_pairs("adjacent", 4) == [(0, 1), (1, 2), (2, 3)]
    assert len(P.parse_pairs("all", 12)) == 66
    assert P.parse_pairs("window:2", 4) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    assert P.parse_pairs(" 3-1, 0-2 ,1-3", 4) == [(1, 3), (0, 2)]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("0-9", "layer 9 is out of range"),
        ("2-2", "names one layer twice"),
        ("window:0", "window size must be at least 1"),
        ("neighbours", "is not understood"),
    ],
)
def test_bad_pair_specs(spec, message):
    with pytest.raises(P.SpecError, match=message):
        P.parse_pairs(spec, 4)


@given(st.text(max_size=30), st.integers(2, 40))
def test_any_pair_spec_parses_or_says_why(spec, n_layers):
    try:
        pairs = P.parse_pairs(spec, n_layers)
    except P.SpecError as error:
        assert "\n" not in str(error)
    else:
        assert all(0 <= i < j < n_layers for i, j in pairs)
        assert len(set(pairs)) == len(pairs)


@given(st.integers(2, 24), st.integers(1, 24))
def test_window_is_adjacent_at_one_and_all_at_depth(n_layers, k):
    window = P.parse_pairs(f"window:{k}", n_layers)
    assert all(j - i <= k for i, j in window)
    assert P.parse_pairs("window:1", n_layers) == P.parse_pairs("adjacent", n_layers)
    assert P.parse_pairs(f"window:{n_layers}", n_layers) == P.parse_pairs("all", n_layers)


def test_layer_pass_counts():
    n = 12
    probes = P.audit_probes(P.parse_pairs("all", n), n)
    reference, fast = P.count_layer_passes(probes, n)
    # 66 pairs x 3 probes of 12 layers + 12 removals of 11 layers + the base pass.
    assert reference == 66 * 3 * 12 + 12 * 11 + 12
    assert 1.9 < reference / fast < 2.1
