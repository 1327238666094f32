"""The without-replacement confidence sequence: its coverage, measured by simulation, and its edge cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_swapkl.analysis.confidence import interval_path, mean_interval


def ever_missed(population: np.ndarray, alpha: float, rng: np.random.Generator, runs: int) -> float:
    """Share of random orders in which the interval misses the population mean at any time t."""
    draws = np.stack([rng.permutation(population) for _ in range(runs)], axis=1)  # one order per column
    low, high = interval_path(draws, len(population), alpha)
    mean = population.mean()
    return float(((low > mean + 1e-12) | (high < mean - 1e-12)).any(0).mean())


@pytest.mark.parametrize("shape", ["skewed", "two-valued"])
def test_the_interval_covers_the_mean_at_every_time_at_least_one_minus_alpha_of_the_time(shape):
    rng = np.random.default_rng(1)
    population = (rng.beta(0.5, 4, 60) if shape == "skewed" else (rng.random(60) < 0.1).astype(float))
    for alpha in (0.5, 0.2, 0.05):  # large ones too, so that a sequence that undercovers shows up in 2000 runs
        assert ever_missed(population, alpha, rng, 2000) <= alpha


def test_the_interval_is_the_mean_itself_once_every_number_is_drawn():
    population = np.random.default_rng(2).random(40)
    low, high = mean_interval(population, 40, 0.05)
    assert low[0] == pytest.approx(population.mean()) and high[0] == pytest.approx(population.mean())


def test_more_draws_never_widen_it_and_it_stays_in_the_unit_interval():
    draws = np.random.default_rng(3).random(50)
    low, high = interval_path(draws, 50, 0.05)
    assert np.all((0 <= low) & (low <= high) & (high <= 1))
    assert np.all(np.diff(high - low, axis=0) <= 1e-12)
    assert np.allclose([mean_interval(draws[:t], 50, 0.05)[0][0] for t in range(1, 51)], low[:, 0])


@settings(max_examples=60, deadline=None)
@given(value=st.floats(0, 1), n=st.integers(2, 80), data=st.data())
def test_a_constant_sequence_never_excludes_its_value_before_the_end(value, n, data):
    """A dead tie (every difference 0) is never resolved: the interval holds the value at every t < N."""
    t = data.draw(st.integers(1, n - 1))
    low, high = mean_interval(np.full(t, value), n, data.draw(st.sampled_from([0.5, 0.05, 1e-6])))
    assert low[0] <= value <= high[0]


def test_more_draws_than_the_population_is_an_error():
    with pytest.raises(ValueError, match="without replacement"):
        mean_interval(np.zeros(5), 4, 0.05)
