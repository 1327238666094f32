"""Guided removal: every search x guide x objective for k = 1..K against the exhaustive search, on held-out data.

    python benchmarks/pruning/guided_removal.py --model demo --out benchmarks/results/guided_removal
    python benchmarks/pruning/guided_removal.py --model smollm2-135m --device cuda --objectives kl,ppl --out $OUT

Prints Markdown tables (and writes them to OUT/MODEL.md, the raw study to OUT/MODEL.json):

1. per objective: the held-out cost of each (search, guide)'s set as a ratio to the exhaustive set's at the same
   k, with the paired 95% interval of the ratio and the verdict after Holm across the file (= same set,
   ~ equivalent within the 10% margin, ? undecided, + dearer, - cheaper than the exhaustive set on held-out data,
   which can happen: the search ran on calibration data);
2. the evaluations (distinct sets measured) each search spent, and its layer passes;
3. the second paper's analyses: cross-objective matrix, Spearman of ppl vs accuracy ranks over every k-set,
   spread of held-out costs across searches, Jaccard within vs across objectives.

The searches choose on the calibration data (``--data`` chunks, the task's even items); held-out costs are
measured on the source's unused chunks and the task's odd items (``load_heldout``, ``ChoiceTask.half``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from tabulate import tabulate

from pytest_swapkl.analysis.guided_removal import Data, study
from pytest_swapkl.analysis.guides import GUIDES
from pytest_swapkl.analysis.search import SEARCHES, Settings
from pytest_swapkl.audit.results import json_ready
from pytest_swapkl.cases import layer_set_label
from pytest_swapkl.console import number
from pytest_swapkl.inputs.data import load_calibration, load_heldout
from pytest_swapkl.inputs.loading import load_model
from pytest_swapkl.inputs.tasks import bundled_task
from pytest_swapkl.report.guided import VERDICT_MARK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--data", default="demo")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--items", type=int, default=256, help="task items, half calibration, half held-out")
    parser.add_argument("--objectives", default="kl,ppl,accuracy")
    parser.add_argument("--guides", default=",".join(GUIDES))
    parser.add_argument("--searches", default=",".join(SEARCHES))
    parser.add_argument("--max-k", type=int, default=4)
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/guided_removal")
    parser.add_argument("--name", default=None, help="file name of OUT/NAME.md and .json (default: MODEL's stem)")
    args = parser.parse_args()
    objectives, guides, searches = (args.objectives.split(","), args.guides.split(","), args.searches.split(","))
    started = time.perf_counter()
    loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    calibration = load_calibration(args.data, loaded.tokenizer, tokens=args.tokens, seq_len=args.seq_len,
                                   seed=args.seed, vocab_size=loaded.vocab_size, max_positions=loaded.max_positions)
    heldout = load_heldout(None, calibration, loaded.tokenizer, tokens=args.tokens, seed=args.seed)
    data = Data(calibration.input_ids, heldout.input_ids)
    task = None
    if "accuracy" in objectives:
        task = bundled_task(loaded.tokenizer, items=args.items, seed=args.seed)
        data.task_calibration, data.task_heldout = task.half(0), task.half(1)
    result = study(loaded.model, data, loaded.n_layers, guides=guides, searches=searches, objectives=objectives,
                   budgets=list(range(1, args.max_k + 1)),
                   settings=Settings(beam_width=args.beam_width, seed=args.seed),
                   batch_size=args.batch_size, seed=args.seed)
    seconds = time.perf_counter() - started
    header = (f"{args.model} ({loaded.n_layers} layers, {loaded.dtype}, {loaded.device}), calibration "
              f"{calibration.n_sequences} x {calibration.seq_len} tokens of {args.data}, held-out "
              f"{heldout.n_sequences} x {heldout.seq_len}"
              + (f", task {task.n_items // 2} + {task.n_items - task.n_items // 2} items of {task.choices} choices "
                 f"(chance {task.chance:.2f})" if task else "")
              + f"; torch {torch.__version__}, {torch.get_num_threads()} threads, {seconds:.0f} s")
    tables = [header, *cost_tables(result, objectives, guides, searches, args.max_k),
              spend_table(result, objectives, guides, searches, args.max_k), *analysis_tables(result)]
    text = "\n\n".join(tables)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or Path(args.model).stem
    (out / f"{name}.md").write_text(text + "\n")
    document = {"model": args.model, "args": vars(args), "seconds": seconds, **result.to_json()}
    (out / f"{name}.json").write_text(json.dumps(json_ready(document), indent=1) + "\n")


def _rows(result, objective, guides, searches):
    for search in searches:
        for guide in (guides if SEARCHES.get(search).reads_guide else ["-"]):
            picked = [(f, h) for f, h in zip(result.found, result.heldout)
                      if f.objective == objective and f.search == search and f.guide == guide]
            if picked:
                yield search, guide, {f.k: (f, h) for f, h in picked}


def cost_tables(result, objectives, guides, searches, max_k) -> list[str]:
    tables = []
    for objective in objectives:
        base = result.base[objective]
        rows = []
        for search, guide, by_k in _rows(result, objective, guides, searches):
            row = [search, guide]
            for k in range(1, max_k + 1):
                f, h = by_k.get(k, (None, None))
                if f is None or not f.layers:
                    row.append("-")
                    continue
                versus = h.get("vs_best", {})
                if versus.get("same_set"):
                    cell = f"{layer_set_label(list(f.layers))} ="
                elif versus.get("ratio") is None:
                    cell = f"{layer_set_label(list(f.layers))} n/a"
                else:
                    interval = ("" if versus.get("ratio_low") is None else
                                f" [{versus['ratio_low']:.2f}, {versus['ratio_high']:.2f}]")
                    cell = (f"{layer_set_label(list(f.layers))} {versus['ratio']:.2f}{interval} "
                            f"{VERDICT_MARK[versus.get('verdict_adjusted') or versus['verdict']]}")
                row.append(cell)
            rows.append(row)
        best = ["exhaustive cost (held-out)", ""]
        for k in range(1, max_k + 1):
            found = [(f, h) for f, h in zip(result.found, result.heldout)
                     if f.objective == objective and f.search == "exhaustive" and f.k == k]
            best.append(number(found[0][1][objective]["cost"]) if found else "-")
        rows.append(best)
        title = (f"objective {objective} (full model: {number(base['calibration'])} calibration, "
                 f"{number(base['heldout'])} held-out): set, held-out cost / exhaustive set's held-out cost "
                 "[paired 95%], verdict")
        tables.append(title + "\n\n" + tabulate(rows, headers=["search", "guide"] + [f"k={k}" for k in
                                                                                      range(1, max_k + 1)],
                                                 tablefmt="github", disable_numparse=True))
    return tables


def spend_table(result, objectives, guides, searches, max_k) -> str:
    rows = []
    objective = objectives[0]
    for search, guide, by_k in _rows(result, objective, guides, searches):
        rows.append([search, guide] + [
            f"{by_k[k][0].spend.evaluations} / {by_k[k][0].spend.layer_passes}" if k in by_k else "-"
            for k in range(1, max_k + 1)])
    return (f"evaluations / layer passes (all sequences) per run, objective {objective} (a run for k starts from "
            "scratch; guide scores not included: guides' own passes are in the JSON)\n\n"
            + tabulate(rows, headers=["search", "guide"] + [f"k={k}" for k in range(1, max_k + 1)],
                       tablefmt="github", disable_numparse=True))


def analysis_tables(result) -> list[str]:
    analyses = result.analyses
    tables = []
    cross = analyses["cross_objective"]
    if cross:
        evaluated = list(cross[0]["evaluated"])
        tables.append("cross-objective matrix: mean held-out cost, under each column's objective, of the sets the "
                      "searches found under the row's objective\n\n" + tabulate(
                          [[row["k"], row["searched"], row["n_sets"]] + [number(row["evaluated"][b]) for b in evaluated]
                           for row in cross], headers=["k", "searched under", "sets"] + evaluated,
                          tablefmt="github", disable_numparse=True))
    if analyses.get("spearman_ppl_accuracy"):
        tables.append("Spearman of perplexity rank vs error-rate rank over every k-set (calibration data), 95% "
                      "interval from resampling sequences and items\n\n" + tabulate(
                          [[row["k"], row["n_sets"], _signed(row["spearman"]),
                            f"[{_signed(row['low'])}, {_signed(row['high'])}]"]
                           for row in analyses["spearman_ppl_accuracy"]],
                          headers=["k", "sets", "Spearman", "95%"], tablefmt="github", disable_numparse=True))
    tables.append("spread across searches (held-out cost of every search x guide's set, under its objective)\n\n"
                  + tabulate([[row["objective"], row["k"], row["n_sets"], row["distinct_sets"], number(row["min"]),
                               number(row["max"]), "n/a" if row["max_over_min"] is None
                               else f"{row['max_over_min']:.2f}"] for row in analyses["spread"]],
                             headers=["objective", "k", "runs", "distinct sets", "min", "max", "max / min"],
                             tablefmt="github", disable_numparse=True))
    tables.append("Jaccard: mean over pairs of sets found under one objective (any search, guide) vs the same "
                  "search and guide under two objectives\n\n" + tabulate(
                      [[row["k"], _share(row["within_objective"]), row["n_within"], _share(row["across_objectives"]),
                        row["n_across"]] for row in analyses["jaccard"]],
                      headers=["k", "within one objective", "pairs", "across objectives", "pairs"],
                      tablefmt="github", disable_numparse=True))
    return tables


def _signed(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.2f}"


def _share(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
