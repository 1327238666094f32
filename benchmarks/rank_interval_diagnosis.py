"""Why the rank correlations' intervals are not calibrated everywhere: the estimate's bias and spread against what
the paired bootstrap sees, over benchmarks/rank_interval_coverage.py's 16 truths (same generator, same truths).

Per truth and statistic, over `--trials` simulated audits:
- bias: mean(estimate) - truth; the bootstrap's own estimate of it: mean(resample statistic - estimate);
- sd(est): the estimate's spread over audits; boot sd: the mean spread of its resamples within one audit;
- SIMEX (tried, not adopted): resample deviations scaled by sqrt(lambda), lambda = 0.5, 1, 2, give the statistic at
  1 + lambda times the noise; a quadratic in the noise through those three means and the estimate, evaluated at 0,
  is the centre; "SIMEX bias" and "sd(SIMEX)" are that centre's. Its spread estimate (var = c1 - c2 from the
  resamples' variance c1 lambda + c2 lambda^2 at each level) is "SIMEX sd-hat".

With --coverage, instead: the coverage of the interval centre +- 1.96 x gain x sd-hat, where gain is how much the
centre moves with the estimate (w0 + sum_k w_k slope_k: the extrapolation weights and each level's slope on the
estimate, measured on 100 resamples used as data, 5 inner draws each) -- the SIMEX counterpart of
`intervals.corrected_interval`, tried and not adopted (docs/decisions.md).

    python benchmarks/rank_interval_diagnosis.py --trials 60
    python benchmarks/rank_interval_diagnosis.py --coverage --trials 100 --large-trials 40
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "analysis"))

from rank_interval_coverage import CONFIGS, STATISTICS, truth  # noqa: E402
from test_intervals import _audit  # noqa: E402

LAMBDAS = np.array([0.5, 1.0, 2.0])
NOISE = np.r_[1.0, 1 + LAMBDAS]  # the estimate's own noise, then each level's
TO_ZERO = np.linalg.pinv(np.vander(NOISE, 3))[-1]  # weights on (estimate, level means) of the quadratic at 0


def simex(estimate: float, rows, r_samples, i_samples, r_values, i_values) -> tuple[float, float]:
    """(centre, sd-hat) of the extrapolation to zero noise."""
    deviations_r, deviations_i = r_samples - r_values, i_samples - i_values
    means, variances = [], []
    for lam in LAMBDAS:
        values = rows(r_values + np.sqrt(lam) * deviations_r, i_values + np.sqrt(lam) * deviations_i)
        values = values[np.isfinite(values)]
        means.append(values.mean())
        variances.append(values.var(ddof=1))
    noise = np.r_[1.0, 1 + LAMBDAS]
    centre = float(np.polyval(np.polyfit(noise, np.r_[estimate, means], 2), 0.0))
    c1, c2 = np.linalg.lstsq(np.c_[LAMBDAS, LAMBDAS ** 2], np.array(variances), rcond=None)[0]
    return centre, float(np.sqrt(max(c1 - c2, 0.0)))


def gain_interval(estimate: float, rows, r_samples, i_samples, r_values, i_values, outer: int = 100,
                  inner: int = 5, seed: int = 0, z: float = 1.959964) -> tuple[float, float, float]:
    """(low, high, gain): the SIMEX centre +- z x gain x sd-hat."""
    centre, sd_hat = simex(estimate, rows, r_samples, i_samples, r_values, i_values)
    deviations_r, deviations_i = r_samples - r_values, i_samples - i_values
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(r_samples), min(outer, len(r_samples)), replace=False)
    added = rng.integers(0, len(r_samples), size=(len(picked), inner))
    outer_values = rows(r_samples[picked], i_samples[picked])
    slopes = []
    for lam in LAMBDAS:
        r_inner = r_samples[picked][:, None] + np.sqrt(lam) * deviations_r[added]
        i_inner = i_samples[picked][:, None] + np.sqrt(lam) * deviations_i[added]
        n_pairs = r_samples.shape[1]
        means = np.nanmean(rows(r_inner.reshape(-1, n_pairs), i_inner.reshape(-1, n_pairs))
                           .reshape(len(picked), inner), 1)
        ok = np.isfinite(means) & np.isfinite(outer_values)
        usable = ok.sum() > 3 and np.ptp(outer_values[ok]) > 0
        slopes.append(np.polyfit(outer_values[ok], means[ok], 1)[0] if usable else 1.0)
    gain = float(abs(TO_ZERO[0] + TO_ZERO[1:] @ np.array(slopes)))
    return max(-1.0, centre - z * gain * sd_hat), min(1.0, centre + z * gain * sd_hat), gain


def coverage(trials: int, large_trials: int, resamples: int) -> None:
    rows = []
    for n_pairs, n_seq, noise, disagreement, seed in CONFIGS:
        mu_r, mu_i = truth(n_pairs, disagreement, seed)
        count = trials if n_pairs < 153 else large_trials
        row = [n_pairs, n_seq, noise, disagreement, count]
        for estimate_of, statistic_rows in STATISTICS.values():
            rng = np.random.default_rng(100 + seed)
            true_value = estimate_of(mu_r, mu_i)
            covered, width, gains = 0, 0.0, []
            for trial in range(count):
                r, i, r_samples, i_samples = _audit(mu_r, mu_i, rng, n_seq=n_seq, own=noise, resamples=resamples,
                                                    seed=trial)
                low, high, gain = gain_interval(estimate_of(r.mean(1), i.mean(1)), statistic_rows, r_samples,
                                                i_samples, r.mean(1), i.mean(1))
                covered += low <= true_value <= high
                width += high - low
                gains.append(gain)
            row.append(f"{100 * covered / count:.1f}% ({width / count:.3f}, gain {np.mean(gains):.2f})")
        rows.append(row)
        print(" ".join(str(x) for x in rows[-1]), file=sys.stderr, flush=True)
    print(f"python benchmarks/rank_interval_diagnosis.py --coverage --trials {trials} --large-trials {large_trials}"
          f" --resamples {resamples}")
    print("coverage of the 95% SIMEX + gain interval (mean width, mean gain)")
    print(tabulate(rows, headers=["pairs", "seqs", "noise", "disagr.", "trials", "Spearman", "Kendall"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--resamples", type=int, default=300)
    parser.add_argument("--coverage", action="store_true", help="the SIMEX + gain interval's coverage instead")
    parser.add_argument("--large-trials", type=int, default=40, help="--coverage: trials at 153 pairs and more")
    args = parser.parse_args()
    if args.coverage:
        coverage(args.trials, args.large_trials, args.resamples)
        return
    rows = []
    for n_pairs, n_seq, noise, disagreement, seed in CONFIGS:
        mu_r, mu_i = truth(n_pairs, disagreement, seed)
        for name, (estimate_of, statistic_rows) in STATISTICS.items():
            rng = np.random.default_rng(100 + seed)
            true_value = estimate_of(mu_r, mu_i)
            estimates, boot_bias, boot_sd, centres, sd_hats = [], [], [], [], []
            for trial in range(args.trials):
                r, i, r_samples, i_samples = _audit(mu_r, mu_i, rng, n_seq=n_seq, own=noise,
                                                    resamples=args.resamples, seed=trial)
                estimate = estimate_of(r.mean(1), i.mean(1))
                samples = statistic_rows(r_samples, i_samples)
                samples = samples[np.isfinite(samples)]
                centre, sd_hat = simex(estimate, statistic_rows, r_samples, i_samples, r.mean(1), i.mean(1))
                estimates.append(estimate)
                boot_bias.append(samples.mean() - estimate)
                boot_sd.append(samples.std())
                centres.append(centre)
                sd_hats.append(sd_hat)
            estimates, centres = np.array(estimates), np.array(centres)
            rows.append([n_pairs, n_seq, noise, disagreement, name, f"{true_value:.3f}",
                         f"{estimates.mean() - true_value:+.4f}", f"{np.mean(boot_bias):+.4f}",
                         f"{estimates.std():.4f}", f"{np.mean(boot_sd):.4f}",
                         f"{np.mean(boot_sd) / estimates.std():.2f}",
                         f"{centres.mean() - true_value:+.4f}", f"{centres.std():.4f}", f"{np.mean(sd_hats):.4f}"])
            print(" ".join(str(x) for x in rows[-1]), file=sys.stderr, flush=True)
    print(f"python benchmarks/rank_interval_diagnosis.py --trials {args.trials} --resamples {args.resamples}")
    print(tabulate(rows, headers=["pairs", "seqs", "noise", "disagr.", "statistic", "truth", "bias",
                                  "bootstrap's bias", "sd(est)", "boot sd", "boot sd / sd(est)", "SIMEX bias",
                                  "sd(SIMEX)", "SIMEX sd-hat"]))


if __name__ == "__main__":
    main()
