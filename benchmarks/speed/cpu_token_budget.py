"""What a CPU token budget buys on SmolLM2-135M, from the measured per-sequence table (64 x 512 tokens, H100).

    python benchmarks/speed/cpu_token_budget.py

For n sequences of 512 tokens: the median and largest 95% half-width of an adjacent pair's mean swap KL
(mean of R(i<-j), R(j<-i), I per sequence), relative to that mean (normal interval over sequences); and the
Spearman correlation of the 29 adjacent pairs' order between two disjoint draws of n sequences (mean of 200
draws), i.e. how reproducible the ranking is at that budget.
"""

import numpy as np
from scipy.stats import spearmanr

TABLE = "benchmarks/results/study/smollm2-135m_all.npz"


def main() -> None:
    table = np.load(TABLE)
    adjacent = np.flatnonzero(table["pairs"][:, 1] - table["pairs"][:, 0] == 1)
    score = (table["replacement_ij"] + table["replacement_ji"] + table["interchange"])[adjacent] / 3  # [pairs, seq]
    rng = np.random.default_rng(0)
    print(f"{TABLE}: {score.shape[0]} adjacent pairs x {score.shape[1]} sequences of {int(table['seq_len'])} tokens")
    print("sequences  tokens  median rel. half-width  largest  split-half Spearman")
    for n in (2, 4, 8, 16, 32):
        sample = score[:, :n]
        half = 1.96 * sample.std(1, ddof=1) / np.sqrt(n) / sample.mean(1)
        rhos = []
        for _ in range(200):
            order = rng.permutation(score.shape[1])
            rhos.append(spearmanr(score[:, order[:n]].mean(1), score[:, order[n:2 * n]].mean(1))[0])
        print(f"{n:9d} {n * 512:7d} {np.median(half):23.1%} {half.max():8.1%} {np.mean(rhos):20.3f}")


if __name__ == "__main__":
    main()
