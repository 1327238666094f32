"""Adaptive mode's population verdicts (analysis/population.py) replayed on a recorded 64-sequence table of the
study (benchmarks/study/agreement_measure.py's per-sequence KLs of every protocol probe): how many fewer protocol
probe-sequences than exact mode, and how often a settled verdict is wrong.

Two replays, both printed as tables:
  * orders: the table itself, each seed a random order of its sequences (what an adaptive audit with that --seed
    measures); a verdict is compared with the same verdict read from every sequence of the table;
  * populations: the error rate against a known truth. Each population is the table's sequences resampled with
    replacement (as many as the table has), its truth the population's column means; the audit draws its
    sequences i.i.d. from that population (again as many as the table has), so that even the whole sample is not
    the population. An error: any settled verdict that differs from the truth (family-wise, per population).

    python benchmarks/statistics/adaptive_population_replay.py benchmarks/results/study/smollm2-135m_all.npz \
        --orders 200 --populations 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_swapkl.analysis import population  # noqa: E402


def load(path: Path) -> tuple[population.ProbeRows, np.ndarray]:
    data = np.load(path)
    pairs = [tuple(int(x) for x in p) for p in data["pairs"]]
    rows = population.ProbeRows(pairs, int(data["n_layers"]))
    table = np.vstack([data["replacement_ij"], data["replacement_ji"], data["interchange"], data["removal"]])
    return rows, table.astype(np.float64)


def replay(decisions: population.Decisions, draw: np.ndarray, truth: dict, pilot: int) -> dict:
    judgement, counts, rounds = population.run(decisions, draw, pilot=pilot)
    wrong = [name for name, settled in judgement.settled.items()
             if settled and judgement.estimates[name] != truth[name]]
    other_set = [name for name in truth if judgement.estimates[name] != truth[name]]
    return {"measured": int(counts.sum()), "wrong": wrong, "other": other_set,
            "unsettled": sum(1 for settled in judgement.settled.values() if not settled)}


def _order_run(job) -> dict:
    decisions, table, truth, seed, pilot = job
    order = np.random.default_rng([seed, 1]).permutation(table.shape[1])
    return replay(decisions, table[:, order], truth, pilot)


def _population_run(job) -> dict:
    decisions, table, seed, pilot = job
    n_probes, n_sequences = table.shape
    rng = np.random.default_rng([seed, 2])
    members = table[:, rng.integers(0, n_sequences, n_sequences)]  # the population
    known = decisions.estimates(members, np.full(n_probes, n_sequences))  # its truth
    draw = members[:, rng.integers(0, n_sequences, n_sequences)]  # the audit's i.i.d. sample of it
    return replay(decisions, draw, known, pilot)


def summary(label: str, results: list[dict], exact: int, alpha: float) -> list:
    measured = np.array([r["measured"] for r in results])
    errors = sum(1 for r in results if r["wrong"])
    return [label, len(results), f"{exact / measured.mean():.2f}", f"{exact / measured.max():.2f}",
            f"{np.mean([r['unsettled'] for r in results]):.2f}", sum(1 for r in results if r["other"]),
            f"{errors} ({errors / len(results):.4f})", alpha]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--populations", type=int, default=1000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--pilot", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    args = parser.parse_args()
    rows, table = load(args.table)
    n_sequences = table.shape[1]
    decisions = population.Decisions(rows, alpha=args.alpha)
    exact = rows.n_probes * n_sequences
    started = time.perf_counter()
    truth = decisions.estimates(table, np.full(rows.n_probes, n_sequences))
    with Pool(args.jobs) as pool:  # each run is seeded by its index: the same tables for any --jobs
        orders = pool.map(_order_run, [(decisions, table, truth, seed, args.pilot) for seed in range(args.orders)])
        resampled = []
        for result in pool.imap(_population_run, [(decisions, table, seed, args.pilot)
                                                  for seed in range(args.populations)]):
            resampled.append(result)
            if len(resampled) % 100 == 0:  # a running tally on stderr, for a run cut short
                wrong = sum(1 for r in resampled if r["wrong"])
                measured = np.mean([r["measured"] for r in resampled])
                print(f"{len(resampled)} populations: {wrong} with a settled verdict wrong, "
                      f"{exact / measured:.2f}x fewer", file=sys.stderr, flush=True)
    print(f"{args.table.name}: {rows.n_pairs} pairs, {rows.n_layers} layers, {n_sequences} sequences; "
          f"{rows.n_probes} protocol probes, exact = {exact} probe-sequences; pilot {args.pilot}, alpha {args.alpha}")
    print(tabulate([summary(label, runs, exact, args.alpha) for label, runs in
                    (("orders of the table", orders), ("resampled populations", resampled)) if runs],
                   headers=["replay", "runs", "fewer (mean)", "fewer (worst)", "unsettled verdicts (mean)",
                            "runs reporting another verdict", "runs with a settled verdict wrong", "alpha"]))
    wrong = {}
    for r in resampled:
        for name in r["wrong"]:
            wrong[name] = wrong.get(name, 0) + 1
    print("settled-but-wrong verdicts by name (populations):", wrong or "none")
    print(f"time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
