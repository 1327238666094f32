"""The reproduction study's I/R claims, recomputed from its audit documents: the share of pairs with I < R and
the median I/R at each layer distance per checkpoint, and at how many checkpoints the top-k sets differ.

    python benchmarks/study/reproduction_ratio_check.py benchmarks/results/reproduction_audits.json
"""

import json
import sys

import numpy as np

documents = json.load(open(sys.argv[1]))["documents"]
items = documents.items() if isinstance(documents, dict) else ((d["model"]["name"], d) for d in documents)
differ = {}
for name, document in items:
    pairs = document["pairs"]
    r = np.array([p["replacement"] for p in pairs])
    i = np.array([p["interchange"] for p in pairs])
    d = np.array([p["j"] - p["i"] for p in pairs])
    medians = " ".join(f"d{k}={np.median(i[d == k] / r[d == k]):.2f}" for k in sorted(set(d)))
    print(f"{name}: I<R in {100 * np.mean(i < r):.0f}% of {len(pairs)} pairs; median I/R {medians}")
    for entry in document["summary"]["topk"]:
        differ.setdefault(entry["k"], []).append(entry["jaccard"] < 1)
for k, flags in sorted(differ.items()):
    print(f"k={k}: sets differ at {sum(flags)} of {len(flags)} checkpoints")
