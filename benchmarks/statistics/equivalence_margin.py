"""Which equivalence margin the demo model's held-out text can reach (issue 34: the default of --equivalence-margin).

Every removal set of k layers of the demo model (k = 1, 2) measured on the default held-out text (the demo
corpus's chunks the default calibration leaves: 32 sequences of 256 tokens, seed 0), then every two sets of one k
compared by `paired.compare_costs` (1000 paired resamples). Prints, per k and margin m, how many comparisons end
"A/B cheaper", "equivalent" or "undecided", and the median relative half-width of the 90% paired ratio interval
(the precision a TOST has to reach: "equivalent" needs the interval inside [1/(1+m), 1+m]).

    python benchmarks/statistics/equivalence_margin.py
"""

from itertools import combinations

import numpy as np
import torch

from pytest_swapkl import engine
from pytest_swapkl.analysis import paired, stats
from pytest_swapkl.engine.probes import removal
from pytest_swapkl.inputs.data import load_calibration, load_heldout
from pytest_swapkl.inputs.loading import load_model

MARGINS = (0.02, 0.05, 0.10, 0.20)

torch.set_num_threads(1)
loaded = load_model("demo", device="cpu")
calibration = load_calibration("demo", loaded.tokenizer, tokens=8192, seq_len=256, seed=0)
heldout = load_heldout(None, calibration, loaded.tokenizer, tokens=8192, seed=0).input_ids
n = loaded.n_layers
indices = stats.bootstrap_indices(heldout.shape[0], 1000, 0)
print(f"demo, {heldout.shape[0]} held-out sequences x {heldout.shape[1]} tokens")
print(f"{'k':>2} {'pairs':>5} {'margin':>6} {'cheaper':>7} {'equivalent':>10} {'undecided':>9} "
      f"{'median 90% half-width':>22} {'|ratio - 1| < margin':>21}")
for k in (1, 2):
    sets = [list(c) for c in combinations(range(n), k)]
    probes = [removal(s, n) for s in sets]
    measured = engine.measure(loaded.model, heldout, probes)
    kl = [np.asarray(measured[p].kl_per_seq, dtype=np.float64) for p in probes]
    pairs = list(combinations(range(len(sets)), 2))
    widths, near = [], {m: 0 for m in MARGINS}
    for a, b in pairs:
        ratios = kl[a][indices].mean(axis=1) / kl[b][indices].mean(axis=1)
        low, high = paired.expanded_interval(ratios, len(kl[a]), 0.90)
        widths.append((np.log(high) - np.log(low)) / 2)
        for m in MARGINS:
            near[m] += abs(np.log(kl[a].mean() / kl[b].mean())) < np.log(1 + m)
    for m in MARGINS:
        verdicts = [paired.compare_costs(kl[a], kl[b], indices, margin=m).verdict for a, b in pairs]
        cheaper = sum(v in (paired.A_CHEAPER, paired.B_CHEAPER) for v in verdicts)
        print(f"{k:>2} {len(pairs):>5} {m:>6.2f} {cheaper:>7} {verdicts.count('equivalent'):>10} "
              f"{verdicts.count('undecided'):>9} {np.expm1(np.median(widths)):>22.4f} {near[m]:>21}")
