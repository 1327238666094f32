"""The accuracy objective's split-half noise against the number of items, on one task: from the per-item error
table that ``accuracy_task_noise.py --save`` keeps (every k = 1, 2 removal set on every item), draw ``--items``
of the task's items at random, split them in two halves at random, and ask as that script does whether the
halves choose the same accuracy-optimal k-set, their Jaccard, and the Spearman of their per-set error rates.
The same works and sets at every size, so only the item count changes.

    python benchmarks/statistics/accuracy_split_half_size.py \
        benchmarks/results/heldout/accuracy_units/accuracy_units_2048.npz --items 128 256 512 1024 2048
"""

import argparse
import ast
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_swapkl.analysis import stats  # noqa: E402

SPLITS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path)
    parser.add_argument("--items", type=int, nargs="+", default=[128, 2048])
    args = parser.parse_args()
    saved = np.load(args.table)
    sets = [ast.literal_eval(str(s)) for s in saved["sets"]]
    errors = saved["errors"]  # [sets, items]
    rng = np.random.default_rng(0)
    for items in args.items:
        for k in sorted({len(s) for s in sets}):
            rows = np.array([n for n, s in enumerate(sets) if len(s) == k])
            same, jaccard, rhos = 0, [], []
            for _ in range(SPLITS):
                drawn = rng.choice(errors.shape[1], size=items, replace=False)
                a, b = errors[rows][:, drawn[: items // 2]].mean(1), errors[rows][:, drawn[items // 2:]].mean(1)
                x, y = set(sets[rows[np.argmin(a)]]), set(sets[rows[np.argmin(b)]])
                same += x == y
                jaccard.append(len(x & y) / len(x | y))
                rhos.append(stats.spearman(a, b))
            print(f"{items} items ({items // 2} a half), k={k}: same set {same / SPLITS:.3f}, mean Jaccard "
                  f"{np.mean(jaccard):.3f}, mean Spearman {np.nanmean(np.array(rhos, dtype=float)):.3f}")


if __name__ == "__main__":
    main()
