"""Adaptive mode replayed on a recorded exact table (benchmarks/statistics/record_table.py), over many seeds: how
often any verdict differs from the exact audit's, and how many probe-sequences it measures.

Each seed draws its own order of the sequences, as an adaptive audit with that --seed would; the probes'
numbers are the recorded ones, so this is the adaptive audit of that model without the model. Also reads the
tables of benchmarks/study/agreement_measure.py (the study's GPU audits: per-sequence KLs of every protocol probe, no
NLL; the pair, rank and top-k cases read no NLL, so those tables replay every case but the pruning ones).

    python benchmarks/statistics/adaptive_replay.py benchmarks/results/adaptive/demo_all.npz --seeds 20
    python benchmarks/statistics/adaptive_replay.py benchmarks/results/study/gemma3-270m_all.npz --seeds 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_swapkl.analysis import adaptive, confidence  # noqa: E402
from pytest_swapkl.analysis.agreement import Tolerances  # noqa: E402
from pytest_swapkl.engine.measurement import Measurement, ProbeStats  # noqa: E402
from pytest_swapkl.engine.probes import audit_probes, interchange, removal, replacement  # noqa: E402


def load(path: Path):
    data = np.load(path)
    if "info" not in data:
        return _load_agreement_table(data)
    info = json.loads(str(data["info"]))
    pairs = [tuple(p) for p in info["pairs"]]
    probes = audit_probes(pairs, info["n_layers"])
    assert [p.name for p in probes] == info["probes"], "the table's probes are not this version's audit probes"
    table = {p: (data["kl"][k], data["nll"][k]) for k, p in enumerate(probes)}
    return info, pairs, table, data["base_nll"]


def _load_agreement_table(data):
    """benchmarks/study/agreement_measure.py's table: KLs by protocol ([pairs, sequences] each, removals [layers,
    sequences]); NLLs are not recorded there, so they are 0 (no replayed case reads them)."""
    n_layers, pairs = int(data["n_layers"]), [tuple(int(x) for x in p) for p in data["pairs"]]
    n_sequences = data["interchange"].shape[1]
    table, zeros = {}, np.zeros(n_sequences)
    for row, (i, j) in enumerate(pairs):
        table[replacement(i, j, n_layers)] = (data["replacement_ij"][row], zeros)
        table[replacement(j, i, n_layers)] = (data["replacement_ji"][row], zeros)
        table[interchange(i, j, n_layers)] = (data["interchange"][row], zeros)
    for layer in range(n_layers):
        table[removal([layer], n_layers)] = (data["removal"][layer], zeros)
    assert set(table) == set(audit_probes(pairs, n_layers)), "the table's probes are not this version's audit probes"
    info = {"model": str(data["model"]), "n_layers": n_layers, "pairs": pairs, "seq_len": int(data["seq_len"]),
            "device": str(data["device"]), "noise_floor": float(data["noise_floor"])}
    return info, pairs, table, zeros


def exact_measurement(table, base_nll, info) -> Measurement:
    n = len(base_nll)
    result = Measurement("fast", n, info["seq_len"], base_nll, {p: ProbeStats(p, kl, nll) for p, (kl, nll)
                                                                in table.items()})
    result.noise_floor = info["noise_floor"] or 0.0
    return result


def replay(table, base_nll, info, pairs, tests: adaptive.Tests, seed: int, n_resamples: int):
    n = len(base_nll)
    order = adaptive.permutation(n, seed)

    def measure_slice(probes, start, stop, progress):
        rows = order[start:stop]
        stats = {p: ProbeStats(p, table[p][0][rows], table[p][1][rows]) for p in probes if p in table}
        result = Measurement("fast", stop - start, info["seq_len"], base_nll[rows], stats)
        result.noise_floor = info["noise_floor"] or 0.0
        return result

    return adaptive.sample_adaptively(measure_slice, n, info["seq_len"], pairs, info["n_layers"], tests,
                                      n_resamples=n_resamples, seed=seed)


def width_table(table, pairs, n_layers: int, tests: adaptive.Tests, seed: int = 0) -> list[list]:
    """Why nothing settles early: per round, the median width of the per-probe confidence sequence (KL units,
    the audit's bound and alpha per sequence of numbers) against the median gap between neighbouring exact
    interchange means and the median exact KL: a rank verdict needs intervals about as narrow as the gaps."""
    n = len(next(iter(table.values()))[0])
    order, steps = adaptive.permutation(n, seed), adaptive.schedule(n)
    pilot = steps[0]
    mean_r = tests.replacement_reduce == "mean"
    alpha_each = tests.alpha / adaptive.series_count(len(table), len(pairs), n_layers, mean_r)
    means = np.array([kl.mean() for kl, _ in table.values()])
    swaps = np.sort([table[interchange(i, j, n_layers)][0].mean() for i, j in pairs])
    gap = float(np.median(np.diff(swaps))) if len(swaps) > 1 else float("nan")
    rows = []
    for t in [step for step in steps if step < n]:
        widths = []
        for kl, _ in table.values():
            drawn = kl[order]
            bound = tests.bound_factor * float(drawn[:pilot].max(initial=0.0))
            if bound <= 0 or t <= pilot:
                widths.append(np.inf)
                continue
            low, high = confidence.mean_interval(drawn[pilot:t] / bound, n - pilot, alpha_each)
            widths.append((n - pilot) * float(high[0] - low[0]) * bound / n)
        rows.append([t, n, f"{np.median(widths):.4g}", f"{gap:.4g}", f"{np.median(means):.4g}",
                     f"{np.median(widths) / gap:.0f}" if np.isfinite(np.median(widths)) else "inf"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=Path)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=adaptive.DEFAULT_ALPHA)
    parser.add_argument("--bound-factor", type=float, default=adaptive.DEFAULT_BOUND_FACTOR)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--prune-k", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args()
    info, pairs, table, base_nll = load(args.table)
    tests = adaptive.Tests(Tolerances(), prune_k=args.prune_k, alpha=args.alpha, bound_factor=args.bound_factor)
    n_layers = info["n_layers"]
    exact = adaptive.verdicts(exact_measurement(table, base_nll, info), pairs, n_layers, tests, args.bootstrap, 0)
    n_total = len(base_nll) * len(table)
    rows, side = [], None
    ratios = [float(kl.max() / max(kl[adaptive.permutation(len(base_nll), s)[:adaptive.schedule(len(base_nll))[0]]]
                                   .max(), 1e-300)) for s in range(args.seeds) for kl, _ in table.values()]
    for seed in range(args.seeds):
        result = replay(table, base_nll, info, pairs, tests, seed, args.bootstrap)
        exact_seed = exact if seed == 0 else adaptive.verdicts(exact_measurement(table, base_nll, info), pairs,
                                                               n_layers, tests, args.bootstrap, seed)
        got = adaptive.verdicts(result.measurement, pairs, n_layers, tests, args.bootstrap, seed)
        differing = [name for name in exact_seed if got.get(name) != exact_seed[name]]
        measured = sum(result.sequences.values())
        rows.append([seed, len(exact_seed), len(differing), f"{measured} / {n_total}", f"{n_total / measured:.2f}",
                     len(result.rounds), len(result.beyond_bound)])
        if seed == 0:
            rounds = [[r["sequences"], len(r["unsettled_tests"]), r["continuing_probes"]] for r in result.rounds]
            side = [[name, exact_seed[name], got[name], "yes" if got[name] == exact_seed[name] else "NO"]
                    for name in exact_seed]
    head = (f"{info['model']} ({len(pairs)} pairs, {len(base_nll)} sequences x {info['seq_len']} tokens, "
            f"{info['device']}), alpha {args.alpha:g}, bound factor {args.bound_factor:g}")
    text = (head + "\nseed 0, side by side:\n" + tabulate(side, headers=["generated test", "exact", "adaptive", "same"])
            + "\n\n" + tabulate(rows, headers=["seed", "tests", "verdicts differing",
                                               "probe-sequences adaptive / exact", "factor", "rounds",
                                               "probes beyond bound"])
            + f"\n\nruns with any verdict differing: {sum(1 for r in rows if r[2])} of {len(rows)}; "
              f"mean factor {np.mean([float(r[4]) for r in rows]):.2f}\n"
              f"largest per-sequence KL over the pilot's largest (per probe and seed): median "
              f"{np.median(ratios):.2f}, 99th percentile {np.percentile(ratios, 99):.2f}, max {max(ratios):.2f}; "
              f"share above the bound factor {np.mean(np.array(ratios) > args.bound_factor):.4f}\n")
    widths = width_table(table, pairs, n_layers, tests)
    text += ("\nrounds (seed 0)\n" + tabulate(rounds, headers=["sequences after the round", "tests unsettled",
                                                               "probes continuing"]) + "\n")
    text += ("\nwhy (seed 0): the confidence sequence of a probe's mean against the gaps its rank verdicts need\n"
             + tabulate(widths, headers=["sequences drawn", "of", "median interval width (KL)",
                                         "median gap between neighbouring exact I means", "median exact KL",
                                         "width / gap"]) + "\n")
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
