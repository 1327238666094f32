"""The without-replacement confidence sequence: its coverage, measured by simulation, and its edge cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_swapkl.analysis.confidence import asymptotic_half_width, interval_path, mean_interval


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


def ever_missed_after(draws: np.ndarray, mean: float, alpha: float, first: int) -> float:
    """Share of runs (columns) in which the asymptotic sequence misses the mean at any t >= first."""
    t = np.arange(1, draws.shape[0] + 1)[:, None]
    running = np.cumsum(draws, 0) / t
    spread = np.sqrt(np.maximum(np.cumsum(draws ** 2, 0) / t - running ** 2, 0) * t / np.maximum(t - 1, 1))
    half = asymptotic_half_width(spread, t, alpha, planned=16)
    return float((np.abs(running - mean) > half)[first - 1:].any(0).mean())


@pytest.mark.parametrize("shape", ["log-normal", "gamma"])
def test_the_asymptotic_sequence_covers_skewed_means_once_samples_are_large(shape):
    """The population rule's confidence sequence (Waudby-Smith et al. 2024) by seeded simulation, 2000 runs of
    256 i.i.d. skewed draws: looked at from t = 64 on, it misses the mean in at most alpha of the runs. It is
    asymptotic: from t = 8 (adaptive mode's pilot) it misses more (log-normal sigma 0.5: 13% at alpha 0.05),
    which is why the replay measures the error of the whole rule (docs/decisions.md)."""
    rng = np.random.default_rng(3)
    if shape == "log-normal":
        draws, mean = rng.lognormal(0, 0.5, (256, 2000)), float(np.exp(0.125))
    else:
        draws, mean = rng.gamma(2.0, 1.0, (256, 2000)), 2.0
    for alpha in (0.2, 0.05):
        assert ever_missed_after(draws, mean, alpha, 64) <= alpha
    assert ever_missed_after(draws, mean, 0.05, 8) > 0.05  # the small-sample shortfall, stated above


def test_the_asymptotic_sequence_on_paired_differences_of_probes_sharing_hard_sequences():
    """What adaptive mode compares: two probes' per-sequence KLs with a shared log-normal factor (sd 0.3) and own
    ones (sd 0.2), means 1 and 1.2; their difference is covered at alpha from t = 16 on."""
    rng = np.random.default_rng(4)
    shared = np.exp(rng.normal(0, 0.3, (256, 2000)))
    a = shared * np.exp(rng.normal(0, 0.2, (256, 2000)))
    b = 1.2 * shared * np.exp(rng.normal(0, 0.2, (256, 2000)))
    mean = -0.2 * float(np.exp(0.3 ** 2 / 2 + 0.2 ** 2 / 2))
    for alpha in (0.2, 0.05):
        assert ever_missed_after(a - b, mean, alpha, 16) <= alpha
