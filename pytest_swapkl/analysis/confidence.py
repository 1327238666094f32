"""Anytime-valid confidence sequences for the mean of a finite population sampled without replacement.

Waudby-Smith & Ramdas, "Confidence sequences for sampling without replacement" (NeurIPS 2020,
arXiv:2006.04347), the predictable-plug-in empirical-Bernstein sequence (their Theorem 4): for values
y_1..y_t in [0, 1] drawn without replacement from N numbers with mean mu, let m_i = (N mu - S_{i-1}) /
(N - i + 1) be the mean of the numbers not yet drawn (so E[y_i | past] = m_i). For predictable
lambda_i in [0, 1), prod_i exp(lambda_i (y_i - m_i) - psi(lambda_i) (y_i - yhat_{i-1})^2), with
psi(l) = -log(1 - l) - l, is a nonnegative supermartingale, so by Ville's inequality it stays below 2/alpha
at every t with probability at least 1 - alpha/2. m_i is linear in mu, which turns that event into

    mu >= [sum lambda_i (y_i + S_{i-1} / (N - i + 1)) - log(2/alpha) - sum psi(lambda_i) v_i] / sum lambda_i w_i,

w_i = N / (N - i + 1), v_i = (y_i - yhat_{i-1})^2; the same for 1 - y gives the upper end. The interval holds
for every t at once (so it may be looked at after every slice, and sampling stopped on it), and it is
intersected with what the draws alone prove: mu lies between (S_t + 0 (N - t)) / N and (S_t + (N - t)) / N.
At t = N it is the population mean itself.

Pure numpy, vectorised over columns: every column is one sequence of draws.
"""

from __future__ import annotations

import math

import numpy as np

LAMBDA_CAP = 0.5  # the paper's c: keeps psi(lambda) finite and the bound tight for small t


def mean_interval(draws: np.ndarray, population: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per column of ``draws`` [t, columns], values in [0, 1] in the order drawn: a 1 - alpha
    confidence sequence for the mean of the ``population`` numbers the column was drawn from, at time t."""
    low, high = interval_path(draws, population, alpha)
    return low[-1], high[-1]


def interval_path(draws: np.ndarray, population: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) [t, columns]: the confidence sequence after each of the draws (row s: after s + 1)."""
    y = np.asarray(draws, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    t, columns = y.shape
    if t == 0:
        return np.zeros((1, columns)), np.ones((1, columns))
    if t > population:
        raise ValueError(f"{t} draws without replacement from a population of {population}")
    low = _lower(y, population, alpha / 2)
    high = 1 - _lower(1 - y, population, alpha / 2)
    total = np.cumsum(y, 0)
    unseen = population - np.arange(1, t + 1)[:, None]
    low = np.maximum(low, total / population)  # the unseen all 0 / all 1
    high = np.minimum(high, (total + unseen) / population)
    return np.clip(low, 0, 1), np.clip(high, 0, 1)


def asymptotic_half_width(std: np.ndarray, t: np.ndarray, alpha: float, planned: float) -> np.ndarray:
    """Half-width of the two-sided asymptotic confidence sequence for a mean of i.i.d. draws (Waudby-Smith,
    Arnold, Wu, Howard and Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences",
    Ann. Statist. 2024, Theorem 2.2, the Robbins normal mixture): after t draws with sample standard deviation
    std, the mean lies in  mean +- std * sqrt(2 (t r^2 + 1) / (t^2 r^2) * log(sqrt(t r^2 + 1) / alpha))  at every t
    at once with probability tending to 1 - alpha. r sets where it is tightest: near t = ``planned`` (their
    eq. for r). Valid for the text population (i.i.d. sequences), not only the finite calibration set."""
    t = np.asarray(t, dtype=np.float64)
    log_a = -2 * math.log(alpha)
    r2 = (log_a + math.log(log_a + 1)) / planned
    return np.asarray(std) * np.sqrt(2 * (t * r2 + 1) / (t * t * r2) * np.log(np.sqrt(t * r2 + 1) / alpha))


def _lower(y: np.ndarray, population: int, alpha: float) -> np.ndarray:
    """The running maximum of the lower bound after each draw (a running intersection is still a confidence
    sequence)."""
    t = y.shape[0]
    steps = np.arange(1, t + 1, dtype=np.float64)[:, None]
    totals = np.cumsum(y, 0)
    before = np.vstack([np.zeros((1, y.shape[1])), totals[:-1]])  # S_{i-1}
    mean_hat = (0.5 + totals) / (steps + 1)  # yhat_i
    mean_before = np.vstack([np.full((1, y.shape[1]), 0.5), mean_hat[:-1]])  # yhat_{i-1}
    var_hat = (0.25 + np.cumsum((y - mean_hat) ** 2, 0)) / (steps + 1)
    var_before = np.vstack([np.full((1, y.shape[1]), 0.25), var_hat[:-1]])
    log_term = math.log(1 / alpha)  # one side at alpha (the caller halves it)
    lam = np.minimum(np.sqrt(2 * log_term / (var_before * steps * np.log1p(steps))), LAMBDA_CAP)
    remaining = population - steps + 1  # N - i + 1
    weight = population / remaining
    penalty = (-np.log1p(-lam) - lam) * (y - mean_before) ** 2
    numerator = np.cumsum(lam * (y + before / remaining) - penalty, 0) - log_term
    bound = numerator / np.cumsum(lam * weight, 0)
    return np.maximum.accumulate(bound, 0)
