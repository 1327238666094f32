"""How noisy the accuracy objective is on the demo model: the bundled multiple-choice task at its default
2048 items (drawn from the held-out works, demo-heldout) against the old 128 items (of the calibration's works).

Every removal set of k = 1 and 2 layers is measured on every item (exhaustive). Prints, per task:
- the full model's accuracy on the task's held-out half with its 95% interval (expanded percentile, i.i.d. over
  items and by work), and its width;
- split-half agreement of the accuracy-chosen removal sets: over random splits of the items into two halves,
  how often both halves choose the same k-set (lowest error rate, ties to the first set), and their mean Jaccard;
- split-half Spearman of the per-set error rates: over the same splits, the rank correlation of the two halves'
  error rates of every k-set (how reproducibly the objective orders the sets, not only its optimum).

    OMP_NUM_THREADS=1 python benchmarks/statistics/accuracy_task_noise.py [--save DIR]

``--save DIR`` keeps each task's per-item error table (sets x items) as an .npz, so the statistics can be
recomputed without the forward passes.
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_swapkl.analysis import stats  # noqa: E402
from pytest_swapkl.analysis.mean_interval import expanded_interval  # noqa: E402
from pytest_swapkl.analysis.objectives import Evaluator, Objective  # noqa: E402
from pytest_swapkl.inputs.loading import load_model  # noqa: E402
from pytest_swapkl.inputs.tasks import bundled_task  # noqa: E402

SPLITS, RESAMPLES, MAX_K = 200, 2000, 2


def chosen(errors: dict, items: np.ndarray, k: int) -> tuple:
    sets = [s for s in errors if len(s) == k]
    return min(sets, key=lambda s: errors[s][items].mean())


def report(name: str, task, model, n_layers: int, save: Path = None) -> None:
    started = time.perf_counter()
    evaluator = Evaluator(model, task.input_ids, Objective("accuracy", task), n_layers, batch_size=256)
    sets = [s for k in range(1, MAX_K + 1) for s in itertools.combinations(range(n_layers), k)]
    evaluator.costs(sets)
    errors = {s: evaluator.units(s) for s in sets}
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(save / f"accuracy_units_{task.n_items}.npz", sets=np.array([str(s) for s in sets]),
                            errors=np.stack([errors[s] for s in sets]), base=evaluator.base_units())
    correct = 1.0 - evaluator.base_units()
    held = np.arange(1, task.n_items, 2)  # the task's held-out half
    n = len(held)
    iid = stats.bootstrap_means(correct[held], stats.bootstrap_indices(n, RESAMPLES, 0))
    by_work = stats.bootstrap_means(correct[held], stats.bootstrap_indices(n, RESAMPLES, 0,
                                                                           groups=task.documents[held]))
    n_works = len(set(task.documents[held].tolist()))
    low, high = expanded_interval(iid, n)
    work_low, work_high = expanded_interval(by_work, n_works)
    print(f"{name}: {task.n_items} items from {len(set(task.documents.tolist()))} works; held-out half {n} items; "
          f"forwards {time.perf_counter() - started:.0f} s")
    print(f"  full model accuracy {correct[held].mean():.4f}  i.i.d. [{low:.4f}, {high:.4f}] width {high - low:.4f}"
          f"  by work ({n_works} works) [{work_low:.4f}, {work_high:.4f}] width {work_high - work_low:.4f}")
    rng = np.random.default_rng(0)
    for k in range(1, MAX_K + 1):
        same, jaccard, rhos = 0, [], []
        table = np.stack([errors[s] for s in sets if len(s) == k])  # [k-sets, items]
        for _ in range(SPLITS):
            order = rng.permutation(task.n_items)
            a, b = chosen(errors, order[::2], k), chosen(errors, order[1::2], k)
            same += a == b
            jaccard.append(len(set(a) & set(b)) / len(set(a) | set(b)))
            rhos.append(stats.spearman(table[:, order[::2]].mean(1), table[:, order[1::2]].mean(1)))
        own = chosen(errors, np.arange(0, task.n_items, 2), k), chosen(errors, held, k)
        print(f"  k={k}: {len([s for s in sets if len(s) == k])} sets; split halves choose the same set in "
              f"{same / SPLITS:.3f} of {SPLITS} random splits, mean Jaccard {np.mean(jaccard):.3f}, "
              f"mean Spearman of the halves' per-set error rates {np.nanmean(np.array(rhos, dtype=float)):.3f}; "
              f"the task's own halves choose {own[0]} and {own[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--save", type=Path, help="folder for each task's per-item error table (.npz)")
    args = parser.parse_args()
    loaded = load_model(args.model, device="cpu", dtype="float32")
    save = None if args.save is None else args.save / args.model
    report("old task (128 items, demo works)", bundled_task(loaded.tokenizer, items=128, source="demo"),
           loaded.model, loaded.n_layers, save)
    report("bundled task (default, demo-heldout works)", bundled_task(loaded.tokenizer), loaded.model,
           loaded.n_layers, save)


if __name__ == "__main__":
    main()
