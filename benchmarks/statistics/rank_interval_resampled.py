"""Coverage of the rank correlations' 95% intervals on truths resampled from the measured tables (issue 34).

    python benchmarks/statistics/rank_interval_resampled.py --replicates 1000 --kendall-replicates 200

The population of a truth is one audit table's sequences (per-sequence R in both directions and I, every pair):
benchmarks/results/agreement/demo_all.npz (28 pairs x 32 sequences), benchmarks/results/study/
smollm2-135m_all.npz (435 x 64) and gemma3-270m_all.npz (153 x 64). The truth is the rank correlation of the
population's own pair means (R reduced as the audit does, `stats.DEFAULT_REDUCE`). A replicate draws as many
sequences as the table has, with replacement, runs the audit's paired bootstrap on them (`--resamples` draws,
shared by every probe) and computes each interval; coverage = the share of replicates whose interval holds the
truth. Each table also comes "inflated": every per-sequence value's deviation from its pair's mean scaled by one
factor c (means, and so the truth, unchanged), c found by bisection so that the smaller of the two protocols'
split-half reliabilities (`intervals.split_half_reliability`) is 0.99. A coverage from t replicates has a
standard error of about sqrt(0.95 * 0.05 / t): 0.7 points at 1000, 1.5 at 200.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
from scipy.stats import norm
from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pytest_swapkl.analysis import intervals, stats  # noqa: E402

TABLES = {"demo": "benchmarks/results/agreement/demo_all.npz",
          "smollm2-135m": "benchmarks/results/study/smollm2-135m_all.npz",
          "gemma3-270m": "benchmarks/results/study/gemma3-270m_all.npz"}
STATISTICS = {"spearman": (stats.spearman, intervals.spearman_rows), "kendall": (stats.kendall, intervals.kendall_rows)}
REDUCE = stats.REDUCERS[stats.DEFAULT_REDUCE]
SAVED: dict = {}  # statistic -> [(estimate, resampled statistics)] of the current truth, for --save
METHODS = {  # each from (estimate, rows, resampled statistics, R and I resamples, R and I values)
    "rms": lambda est, rows, boot, rs, is_, rv, iv: intervals.rms_interval(est, boot, 0.95),
    "reflected": lambda est, rows, boot, rs, is_, rv, iv: intervals.basic_interval(est, boot, 0.95),
    "corrected": lambda est, rows, boot, rs, is_, rv, iv: intervals.corrected_interval(est, rows, rs, is_, rv, iv,
                                                                                      0.95),
    "percentile": lambda est, rows, boot, rs, is_, rv, iv: intervals._interval(boot, 0.95),
    "fisher": lambda est, rows, boot, rs, is_, rv, iv: fisher_interval(est, boot, 0.95),
    "normal": lambda est, rows, boot, rs, is_, rv, iv: normal_interval(est, boot, 0.95, False, False),
    "fisher centred": lambda est, rows, boot, rs, is_, rv, iv: normal_interval(est, boot, 0.95),
    "fisher normal": lambda est, rows, boot, rs, is_, rv, iv: normal_interval(est, boot, 0.95,
                                                                                      centred=False),
}


def fisher_interval(estimate: Optional[float], samples: np.ndarray, level: float,
                    ) -> tuple[Optional[float], Optional[float]]:
    """The reflected interval on Fisher's z scale: centre 2 z(est) - mean z(resamples), the resamples' z
    fluctuations as its half-widths, mapped back with tanh (so it stays inside (-1, 1))."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if estimate is None or len(samples) < 2:
        return None, None
    edge = 1 - 1e-12
    z, z_est = np.arctanh(np.clip(samples, -edge, edge)), np.arctanh(np.clip(estimate, -edge, edge))
    mean = z.mean()
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(z - mean, [tail, 100 - tail])
    centre = 2 * z_est - mean
    return float(np.tanh(centre - high)), float(np.tanh(centre - low))


def normal_interval(estimate: Optional[float], samples: np.ndarray, level: float, fisher: bool = True,
                    centred: bool = True) -> tuple[Optional[float], Optional[float]]:
    """estimate +- z sd(resamples), on Fisher's z scale (mapped back with tanh) unless ``fisher`` is False;
    ``centred`` moves the centre by the resamples' bias (2 z(est) - mean z(resamples))."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if estimate is None or len(samples) < 2:
        return None, None
    edge = 1 - 1e-12
    to, back = (np.arctanh, np.tanh) if fisher else (lambda x: x, lambda x: x)
    z, z_est = to(np.clip(samples, -edge, edge)), to(np.clip(estimate, -edge, edge))
    centre = 2 * z_est - z.mean() if centred else z_est
    half = norm.ppf(0.5 + level / 2) * z.std(ddof=1)
    return float(np.clip(back(centre - half), -1, 1)), float(np.clip(back(centre + half), -1, 1))


def load(name: str) -> np.ndarray:
    """[3, n_pairs, n_sequences]: R in both directions and I."""
    data = np.load(ROOT / TABLES[name])
    return np.stack([data["replacement_ij"], data["replacement_ji"], data["interchange"]])


def reliabilities(table: np.ndarray, splits: int = 200) -> tuple[float, float]:
    return (intervals.split_half_reliability(table[:2], REDUCE, splits),
            intervals.split_half_reliability(table[2:], splits=splits))


def inflated(table: np.ndarray, target: float = 0.99) -> tuple[np.ndarray, float]:
    """The table with every deviation from its pair's mean scaled by c, min reliability = target (bisection)."""
    means = table.mean(-1, keepdims=True)
    low, high = 1.0, 2.0
    while min(reliabilities(means + high * (table - means), 60)) > target:
        low, high = high, 2 * high
    for _ in range(25):
        middle = (low + high) / 2
        above = min(reliabilities(means + middle * (table - means), 60)) > target
        low, high = (middle, high) if above else (low, middle)
    c = (low + high) / 2
    return means + c * (table - means), c


def pair_values(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R and I from [3, ..., n_pairs] means."""
    return REDUCE(means[0], means[1]), means[2]


def replicate(table: np.ndarray, rng: np.random.Generator, resamples: int, seed: int, names) -> dict:
    n_seq = table.shape[-1]
    sample = table[:, :, rng.integers(0, n_seq, n_seq)]
    r_values, i_values = pair_values(sample.mean(-1))
    # The bootstrap means as one matrix product per probe: counts[b, s] / n_seq weights of the drawn sequences
    indices = stats.bootstrap_indices(n_seq, resamples, seed)
    weights = np.zeros((resamples, n_seq))
    np.add.at(weights, (np.repeat(np.arange(resamples), n_seq), indices.ravel()), 1.0 / n_seq)
    r_samples, i_samples = pair_values(np.einsum("ps,bs->pb", sample.reshape(-1, n_seq), weights)
                                       .reshape(3, -1, resamples).transpose(0, 2, 1))
    out = {}
    for name in names:
        estimate_of, rows = STATISTICS[name]
        estimate = estimate_of(r_values, i_values)
        boot = rows(r_samples, i_samples)
        out[name] = {method: call(estimate, rows, boot, r_samples, i_samples, r_values, i_values)
                     for method, call in METHODS.items()}
        SAVED.setdefault(name, []).append((estimate, boot.astype(np.float32)))
    return out


def coverage(table: np.ndarray, replicates: int, kendall_replicates: int, resamples: int, seed: int) -> dict:
    truth_r, truth_i = pair_values(table.mean(-1))
    truths = {name: STATISTICS[name][0](truth_r, truth_i) for name in STATISTICS}
    rng = np.random.default_rng(seed)
    hits = {(n, m): [] for n in STATISTICS for m in METHODS}
    widths = {(n, m): [] for n in STATISTICS for m in METHODS}
    for trial in range(replicates):
        names = [n for n in STATISTICS if n == "spearman" or trial < kendall_replicates]
        for name, by_method in replicate(table, rng, resamples, seed * 100_000 + trial, names).items():
            for method, (low, high) in by_method.items():
                hits[name, method].append(low is not None and low <= truths[name] <= high)
                widths[name, method].append(np.nan if low is None else high - low)
    return {"truth": truths,
            "coverage": {f"{n}/{m}": float(np.mean(v)) for (n, m), v in hits.items()},
            "width": {f"{n}/{m}": float(np.nanmean(widths[n, m])) for (n, m) in widths},
            "replicates": {n: replicates if n == "spearman" else min(replicates, kendall_replicates)
                           for n in STATISTICS}}


SHAPE = ("bias", "sd", "2.5% of est-truth", "97.5% of est-truth", "boot bias", "boot sd", "2.5% of boot-est",
         "97.5% of boot-est")


def shape(truth: float, estimates: np.ndarray, boots: np.ndarray) -> dict:
    """The estimate's bias, spread and 2.5/97.5% quantiles about the truth, and the same of the resamples about
    each estimate (averaged over the replicates): what a bootstrap interval assumes alike."""
    error, deviation = estimates - truth, boots - estimates[:, None]
    return dict(zip(SHAPE, map(float, (error.mean(), error.std(), *np.percentile(error, [2.5, 97.5]),
                                       deviation.mean(), boots.std(1).mean(),
                                       *np.percentile(deviation, [2.5, 97.5], axis=1).mean(1)))))


def rescore(folders: list[Path], tables, json_path: Path) -> None:
    """Each saved truth's coverage by every method that reads only the estimate and the resampled statistics."""
    methods = {m: call for m, call in METHODS.items() if m != "corrected"}
    results, rows = [], []
    for name in tables:
        measured = load(name)
        for version, (table, c) in (("measured", (measured, 1.0)), ("inflated", inflated(measured))):
            runs = [np.load(folder / f"{name}_{version}.npz") for folder in folders
                    if (folder / f"{name}_{version}.npz").exists()]
            saved = {key: np.concatenate([run[key] for run in runs]) if key != "truth" else runs[0][key]
                     for key in runs[0].files}
            rel_r, rel_i = reliabilities(table)
            result = {"table": name, "version": version, "noise_scale": c, "pairs": table.shape[1],
                      "sequences": table.shape[2], "reliability_replacement": rel_r, "reliability_interchange": rel_i,
                      "truth": {}, "replicates": {}, "coverage": {}, "width": {}}
            for k, statistic in enumerate(STATISTICS):
                truth, estimates = float(saved["truth"][k]), saved[f"{statistic}_estimate"]
                boots = saved[f"{statistic}_boot"].astype(np.float64)
                result["truth"][statistic], result["replicates"][statistic] = truth, len(estimates)
                result.setdefault("shape", {})[statistic] = shape(truth, estimates, boots)
                for method, call in methods.items():
                    found = np.array([call(e, None, b, None, None, None, None) for e, b in zip(estimates, boots)],
                                     dtype=np.float64)
                    result["coverage"][f"{statistic}/{method}"] = float(np.mean((found[:, 0] <= truth)
                                                                                & (truth <= found[:, 1])))
                    result["width"][f"{statistic}/{method}"] = float(np.mean(found[:, 1] - found[:, 0]))
            results.append(result)
            rows.append([name, version, f"{c:.2f}", f"{rel_r:.4f}", f"{rel_i:.4f}",
                         f"{result['truth']['spearman']:.4f}", f"{result['truth']['kendall']:.4f}",
                         result["replicates"]["spearman"], result["replicates"]["kendall"]]
                        + [f"{100 * result['coverage'][f'{n}/{m}']:.1f}% ({result['width'][f'{n}/{m}']:.4f})"
                           for n in STATISTICS for m in methods])
    print("\nwhy (Spearman): the estimates about the truth against the resamples about each estimate")
    print(tabulate([[r["table"], r["version"], *[r["shape"]["spearman"][key] for key in SHAPE]] for r in results],
                   headers=["table", "version", *SHAPE], floatfmt="+.4f"))
    print("\n95% intervals scored on the saved replicates; coverage % (mean width)")
    print(tabulate(rows, headers=["table", "version", "noise x", "rel R", "rel I", "true rho", "true tau", "n rho",
                                  "n tau"] + [f"{n} {m}" for n in STATISTICS for m in methods]))
    json_path.write_text(json.dumps({"command": sys.argv, "results": results}, indent=2) + "\n")


def cost() -> None:
    """Seconds of each interval and of both reliabilities on the SmolLM2 table (435 pairs x 64, 1000 resamples)."""
    table = load("smollm2-135m")
    indices = stats.bootstrap_indices(table.shape[-1], 1000, 0)
    r_samples, i_samples = pair_values(table[:, :, indices].mean(-1).transpose(0, 2, 1))
    r_values, i_values = pair_values(table.mean(-1))
    intervals.spearman_rows(r_samples[:5], i_samples[:5])  # scipy's import, not timed
    for name, (estimate_of, rows) in STATISTICS.items():
        estimate = estimate_of(r_values, i_values)
        rms = _best(lambda: intervals.rms_interval(estimate, rows(r_samples, i_samples), 0.95))
        corrected = _best(lambda: intervals.corrected_interval(estimate, rows, r_samples, i_samples, r_values,
                                                               i_values, 0.95))
        print(f"{name}: rms (resampled statistics + interval) {rms:.2f} s, corrected {corrected:.2f} s")
    print(f"split-half reliability, both protocols, 200 splits: {_best(lambda: reliabilities(table)):.2f} s")


def _best(call, repeats: int = 3) -> float:
    """Best of three: the CPU is shared."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--kendall-replicates", type=int, default=200, help="Kendall's tau is the costly part")
    parser.add_argument("--resamples", type=int, default=1000, help="the audit's default")
    parser.add_argument("--tables", nargs="*", default=list(TABLES))
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--rescore", nargs="*", help="score the intervals on the replicates --save runs kept in "
                        "these folders, pooled (every method but 'corrected', which needs the resampled R and I)")
    parser.add_argument("--cost", action="store_true", help="time the intervals on the SmolLM2 table, nothing else")
    parser.add_argument("--seed-offset", type=int, default=0, help="other replicates of the same truths")
    parser.add_argument("--save", help="a folder for each truth's replicates (estimates and resamples, .npz)")
    parser.add_argument("--json", default="benchmarks/results/intervals/rank_interval_resampled.json")
    args = parser.parse_args()
    for method in set(METHODS) - set(args.methods):
        del METHODS[method]
    print("command: python benchmarks/statistics/rank_interval_resampled.py " + " ".join(sys.argv[1:]))
    if args.cost:
        return cost()
    if args.rescore:
        return rescore([Path(folder) for folder in args.rescore], args.tables, ROOT / args.json)
    results, rows = [], []
    for name in args.tables:
        seed = list(TABLES).index(name) + args.seed_offset  # the same replicates whichever tables one run takes
        measured = load(name)
        for version, (table, c) in (("measured", (measured, 1.0)), ("inflated", inflated(measured))):
            start = time.perf_counter()
            rel_r, rel_i = reliabilities(table)
            result = {"table": name, "version": version, "noise_scale": c, "pairs": table.shape[1],
                      "sequences": table.shape[2], "reliability_replacement": rel_r, "reliability_interchange": rel_i,
                      **coverage(table, args.replicates, args.kendall_replicates, args.resamples, seed + 1),
                      "seconds": time.perf_counter() - start}
            results.append(result)
            if args.save:  # every replicate's estimate and resamples: other interval rules scored without a rerun
                np.savez_compressed(Path(args.save) / f"{name}_{version}.npz", truth=[result["truth"][n]
                                    for n in STATISTICS], **{f"{n}_estimate": [e for e, _ in SAVED.get(n, [])]
                                                             for n in STATISTICS},
                                    **{f"{n}_boot": np.array([b for _, b in SAVED.get(n, [])]) for n in STATISTICS})
            SAVED.clear()
            Path(ROOT / args.json).write_text(json.dumps({"command": sys.argv, "resamples": args.resamples,
                                                          "results": results}, indent=2) + "\n")
            rows.append([name, version, f"{c:.2f}", f"{rel_r:.4f}", f"{rel_i:.4f}",
                         f"{result['truth']['spearman']:.4f}", f"{result['truth']['kendall']:.4f}"]
                        + [f"{100 * result['coverage'][f'{n}/{m}']:.1f}% ({result['width'][f'{n}/{m}']:.4f})"
                           for n in STATISTICS for m in METHODS] + [f"{result['seconds']:.0f}"])
            print("  done:", rows[-1], flush=True)
    print(f"95% intervals, {args.resamples} resamples; {args.replicates} replicates per truth for Spearman, "
          f"{min(args.replicates, args.kendall_replicates)} for Kendall; coverage % (mean width)")
    print(tabulate(rows, headers=["table", "version", "noise x", "rel R", "rel I", "true rho", "true tau"]
                   + [f"{n} {m}" for n in STATISTICS for m in METHODS] + ["s"]))
    Path(ROOT / args.json).write_text(json.dumps({"command": sys.argv, "resamples": args.resamples,
                                                  "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
