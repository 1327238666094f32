"""`swapkl prune`: guided layer removal, searches x guides x objectives x budgets, costs on held-out data.

    swapkl prune MODEL [--data S] [--heldout S] --guide G[,G...] --search S[,S...] --objective O[,O...]
        [--budgets K[,K...] | --max-cost X]      (--budgets: layers removed; old name --layers)
        [--beam-width W] [--beam-seeds K] [--max-evaluations E] [--json PATH] [--save-pruned DIR|FILE.gguf]
        [--action remove|share|merge] [--action-pairs KEEP-GIVE[,KEEP-GIVE...]]
        [--heldout-window W [--heldout-stride S] [--heldout-words N]] [--heldout-tokens N]
        [--tokens N] [--seq-len L] [--seed S] [--dtype D] [--device D] [--batch-size B]

The searches choose on the calibration data (--data; the accuracy objective on the bundled task's calibration
items) and every set is then measured on held-out data (--heldout, default: the calibration source's unused
chunks; the task's held-out items) and compared with the exhaustive optimum by paired resampling.
Guides, searches and objectives are the registered ones (`swapkl list guides|searches|objectives`).
--action share or merge acts on pairs instead of removing layers: each layer of the found set with the kept layer
nearest below it, or the pairs --action-pairs names (then no search runs); engine/compress.py, docs/pruning.md
("Compression actions"). No torch at import time (docs/pruning.md, "Guided removal").
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..console import number
from ..errors import InputError
from ..options import MODEL_HELP, add_renamed_argument, add_to_argparse, audit_inputs
from ..safe_files import check_outputs

ACTIONS = ("remove", "share", "merge")  # engine/compress.py's, named here without importing torch

SHARED_OPTIONS = ("revision", "gguf_file", "data", "tokens", "seq_len", "seed", "dtype", "device", "path",
                  "attention_type", "batch_size", "allow_pickle", "trust_remote_code", "compile", "threads",
                  "replacement_reduce", "pair_rule", "spacing", "keep_boundary",
                  "heldout_tokens", "heldout_window", "heldout_stride", "heldout_words", "equivalence_margin",
                  "multiplicity")


class PruneError(InputError):
    pass


def add_prune_arguments(parser: argparse.ArgumentParser) -> None:
    # The registries' modules load numpy and torch only when they measure: reading their names here is cheap.
    from ..analysis.guides import GUIDES
    from ..analysis.objectives import OBJECTIVES
    from ..analysis.search import SEARCHES

    parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument("--heldout", default=None, help="held-out SOURCE for the reported costs (default: the "
                        "calibration source's unused chunks)")
    parser.add_argument("--guide", default="interchange", help=f"{', '.join(GUIDES)}; comma-separated (default: "
                        "interchange)")
    parser.add_argument("--search", default="beam", help=f"{', '.join(SEARCHES)}; comma-separated (default: beam)")
    *objectives, last = [f"{name} (the bundled multiple-choice task)" if name == "accuracy" else name
                         for name in OBJECTIVES]
    parser.add_argument("--objective", default="kl", help=f"{', '.join(objectives)} or {last}; comma-separated "
                        "(default: kl)")
    stop = parser.add_mutually_exclusive_group()
    add_renamed_argument(stop, "--budgets", "--layers", dest="budgets", default=None,
                         help="budgets k, comma-separated: remove k layers for each (default: 1,2,3,4); the audit's "
                              "--prune-k K means k = 1..K; --layers is the old name")
    stop.add_argument("--max-cost", default=None, help="cost ceiling B: remove while the objective's cost stays "
                      "within B (an absolute cost, or a relative increase such as 10%%)")
    parser.add_argument("--beam-width", type=_positive, default=None, help="beam width W (default: 4 for beam, 3 "
                        "for paper-beam, the paper's)")
    parser.add_argument("--beam-seeds", type=_positive, default=None, help="paper-beam: the guide's K lowest layers "
                        "seed the beam (default: the width; the paper's Qwen3 run used 12)")
    parser.add_argument("--max-evaluations", type=_positive, default=None, help="at most E evaluated sets per "
                        "search run, the evaluator-call budget B of the paper's matched-budget runs (default: no "
                        "limit; random search draws 16)")
    parser.add_argument("--items", type=_positive, default=2048, help="multiple-choice items of the bundled task "
                        "(drawn from the held-out works), half for calibration and half held out (default: 2048)")
    parser.add_argument("--lm-eval-path", default=None, help="folder of lm-evaluation-harness task YAML files for "
                        "--objective lm-eval:TASK (default: the harness's own tasks)")
    parser.add_argument("--lm-eval-limit", type=_positive, default=None, help="documents of the lm-eval task "
                        "(default: all)")
    parser.add_argument("--json", default=None, help="write the prune JSON to this path")
    parser.add_argument("--save-pruned", default=None, metavar="DIR", help="save the pruned model (config, "
                        "safetensors, tokenizer) of the one search/guide/objective/budget asked for; a path "
                        "ending in .gguf writes a GGUF file instead (llama, qwen2, gemma3_text)")
    parser.add_argument("--action", default="remove", choices=ACTIONS, help="what the saved model does with the "
                        "set: remove its layers, share (each slot runs its partner's weights: the kept layer "
                        "nearest below) or merge (the partner's slot runs the mean of both, the slot removed) "
                        "(default: remove)")
    parser.add_argument("--action-pairs", default=None, metavar="KEEP-GIVE,...", help="act on these layer pairs "
                        "instead of a search's set (no search runs): share: slot GIVE runs layer KEEP's weights; "
                        "merge: slot KEEP runs the mean of KEEP and GIVE, slot GIVE removed; remove: GIVE removed")
    add_to_argparse(parser, only=SHARED_OPTIONS)
    parser.set_defaults(run=run_prune)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _budgets(text: str | None) -> list[int]:
    if text is None:
        return [1, 2, 3, 4]
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        values = []
    if not values or values[0] < 1:
        raise PruneError(f"--budgets {text!r}: write budgets >= 1, comma-separated (e.g. 2,4)")
    return values


def _check_save_folder(args: argparse.Namespace) -> None:
    folder = Path(args.save_pruned)
    if _is_gguf(folder):
        check_outputs([("--save-pruned", folder)], audit_inputs(args), make_parents=True)
        return
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise PruneError(f"--save-pruned {folder}: it exists and is not an empty folder; name a new folder")
    check_outputs([("--save-pruned", folder / "config.json")], audit_inputs(args), make_parents=True)


def _is_gguf(path: Path) -> bool:
    return path.suffix.lower() == ".gguf"


def run_prune(args: argparse.Namespace) -> int:
    from ..analysis.guides import parse_guides
    from ..analysis.objectives import parse_max_cost, parse_objectives
    from ..analysis.search import parse_searches

    guides, objectives = parse_guides(args.guide), parse_objectives(args.objective)
    searches = parse_searches(args.search)
    budgets = None if args.max_cost is not None else _budgets(args.budgets)
    max_cost = parse_max_cost(args.max_cost) if args.max_cost is not None else None
    heldout_inputs = [("the held-out data (--heldout)", args.heldout)] if args.heldout else []
    from ..settings import AuditSettings

    AuditSettings.of(args).inputs.heldout_evaluator()  # window options that contradict each other: one line
    check_outputs([("--json", args.json)], audit_inputs(args) + heldout_inputs, make_parents=True)
    pairs = None
    if args.action_pairs is not None:
        from ..engine.compress import parse_pairs

        pairs = parse_pairs(args.action_pairs)
        if not args.save_pruned:
            raise PruneError("--action-pairs acts on a model to save: give --save-pruned DIR (or FILE.gguf)")
    elif args.action != "remove" and not args.save_pruned:
        raise PruneError(f"--action {args.action} acts on the model to save: give --save-pruned DIR (or FILE.gguf)")
    if args.save_pruned and pairs is not None:
        _check_save_folder(args)
    elif args.save_pruned:
        if len(guides) * len(searches) * len(objectives) * len(budgets or [0]) != 1:
            raise PruneError("--save-pruned saves one model: give one --guide, one --search, one --objective and "
                             "one budget (--budgets K or --max-cost X)")
        _check_save_folder(args)
    from ..engine.threads import cpu_threads

    with cpu_threads(AuditSettings.of(args).engine.threads):
        if pairs is not None:
            return _run_pairs(args, pairs)
        return _run(args, guides, searches, objectives, budgets, max_cost)


def _check_target(args, checkpoint) -> None:
    """Before any weights load: the pairs fit the model and a GGUF target can hold its family."""
    from ..engine.compress import check_pairs

    if args.action_pairs is not None:
        check_pairs(args.action, _pairs_of(args), checkpoint.n_layers)
    if args.save_pruned and _is_gguf(Path(args.save_pruned)):
        from ..engine.gguf_export import gguf_export_problem

        config = checkpoint.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        problem = gguf_export_problem(text)
        if problem is None and args.action_pairs is not None:  # the acted config (its layer pattern), from the pairs
            problem = gguf_export_problem(_acted_config(text, args.action, _pairs_of(args), checkpoint.n_layers))
        if problem:
            raise PruneError(f"--save-pruned {args.save_pruned}: {problem}")


def _acted_config(config, action: str, pairs: list, n_layers: int):
    """A copy of ``config`` as the action would rewrite it (engine.compress), with no weights loaded."""
    import copy

    from ..engine.compress import rewrite_config, slot_sources

    acted = copy.deepcopy(config)
    rewrite_config(acted, slot_sources(action, pairs, n_layers), n_layers)
    return acted


def _pairs_of(args) -> list:
    from ..engine.compress import parse_pairs

    return parse_pairs(args.action_pairs)


def _run_pairs(args, pairs) -> int:
    """--action-pairs: no search; the named pairs acted on, costed on calibration and held-out text, saved."""
    import time

    from ..audit.runner import data_record, locate, model_from_options, model_record
    from ..inputs.data import check_fits, load_heldout

    started = time.perf_counter()
    located = locate(args)
    _check_target(args, located.checkpoint)
    loaded = model_from_options(args, located.checkpoint)
    calibration = located.calibration
    check_fits(calibration, loaded.vocab_size, loaded.max_positions)
    heldout = load_heldout(args.heldout, calibration, loaded.tokenizer, tokens=args.tokens, seed=args.seed,
                           vocab_size=loaded.vocab_size, max_positions=loaded.max_positions)
    document = {"schema": "swapkl-prune/1", "model": model_record(loaded), "data": data_record(args.data, calibration),
                "heldout": data_record(heldout.source, heldout)}
    _act_and_save(args, loaded, pairs, {"pairs_from": "--action-pairs"}, calibration.input_ids, heldout.input_ids,
                  document)
    document["seconds"] = round(time.perf_counter() - started, 3)
    _write_document(args, document)
    return 0


def _write_document(args, document) -> None:
    if args.json:
        from ..audit.results import json_ready, write_json

        print(f"\nprune JSON written to {write_json(json_ready(document), args.json)}")


def _run(args, guides, searches, objectives, budgets, max_cost) -> int:
    import time

    from ..analysis.guided_removal import Data, evaluators, study
    from ..analysis.objectives import ceiling, objective_kind
    from ..analysis.pair_rules import SetRule
    from ..analysis.search import Settings
    from ..audit.runner import data_record, heldout_for, locate, model_from_options, model_record
    from ..inputs.data import check_fits, load_heldout
    from ..inputs.tasks import bundled_task
    from ..progress import Progress
    from ..settings import AuditSettings

    started = time.perf_counter()
    located = locate(args)
    if args.save_pruned:
        _check_target(args, located.checkpoint)
    loaded = model_from_options(args, located.checkpoint)
    calibration = located.calibration
    check_fits(calibration, loaded.vocab_size, loaded.max_positions)
    engine_options = AuditSettings.of(args).engine.measure_kwargs(batch_size=False)
    windowed = {}
    if args.heldout_window:
        held = heldout_for(args, calibration, loaded.tokenizer, loaded.vocab_size, loaded.max_positions)
        windowed = _windowed_evaluators(held, loaded, objectives, engine_options)
        heldout_record = held.record()
        data = Data(calibration.input_ids, held.input_ids[None])
    else:
        heldout = load_heldout(args.heldout, calibration, loaded.tokenizer, tokens=args.heldout_tokens or args.tokens,
                               seed=args.seed, vocab_size=loaded.vocab_size, max_positions=loaded.max_positions)
        heldout_record = data_record(heldout.source, heldout)
        data = Data(calibration.input_ids, heldout.input_ids, heldout_groups=heldout.documents)
    task = None
    reads = {name: objective_kind(name).reads for name in objectives}
    if "task" in reads.values():
        if loaded.tokenizer is None:
            raise PruneError(f"{args.model} has no tokenizer, which the accuracy objective's task needs")
        task = bundled_task(loaded.tokenizer, items=args.items, seed=args.seed)
        data.task_calibration, data.task_heldout = task.half(0), task.half(1)
    for name in objectives:
        if reads[name] == "harness":
            from ..analysis.lm_eval_objective import LmEvalEvaluator

            data.lm_eval[name] = LmEvalEvaluator(loaded.model, loaded.tokenizer, name[len("lm-eval:"):],
                                                 loaded.n_layers, include_path=args.lm_eval_path,
                                                 limit=args.lm_eval_limit)
    calibration_evaluators = evaluators(loaded.model, data, objectives, loaded.n_layers, args.batch_size,
                                        engine_options, heldout=False)
    ceilings = None
    if max_cost is not None:
        ceilings = {name: ceiling(max_cost, calibration_evaluators[name]) for name in objectives}
    settings = Settings(beam_width=args.beam_width or Settings.beam_width, beam_seeds=args.beam_seeds,
                        paper_beam_width=args.beam_width or Settings.paper_beam_width,
                        max_evaluations=args.max_evaluations, seed=args.seed)
    rule = SetRule(args.pair_rule, args.spacing, args.keep_boundary)
    progress = Progress.for_stderr(unit="searches")
    try:
        result = study(loaded.model, data, loaded.n_layers, guides=guides, searches=searches, objectives=objectives,
                       budgets=budgets, ceilings=ceilings, settings=settings, pair_rule=rule,
                       batch_size=args.batch_size, engine_options=engine_options, seed=args.seed,
                       replacement_reduce=args.replacement_reduce,
                       calibration_evaluators=calibration_evaluators, heldout_evaluators=windowed,
                       progress=progress, note=progress.note, equivalence_margin=args.equivalence_margin,
                       multiplicity=args.multiplicity)
    finally:
        progress.close()
    document = {"schema": "swapkl-prune/1", "model": model_record(loaded),
                "data": data_record(args.data, calibration),
                "heldout": heldout_record,
                "task": None if task is None else {"source": task.source, "items": task.n_items,
                                                   "choices": task.choices, "chance": task.chance,
                                                   "context": task.context, "continuation": task.continuation,
                                                   "works": task.record()["works"]},
                # "layers": the budgets k (the key kept from --layers, for readers of the JSON)
                "settings": {"guides": guides, "searches": searches, "objectives": objectives, "layers": budgets,
                             "max_cost": args.max_cost, "ceilings": ceilings, "beam_width": settings.beam_width,
                             "paper_beam_width": settings.paper_beam_width, "beam_seeds": args.beam_seeds,
                             "heldout_window": args.heldout_window, "heldout_stride": args.heldout_stride,
                             "heldout_words": args.heldout_words, "heldout_tokens": args.heldout_tokens,
                             "max_evaluations": args.max_evaluations, "pair_rule": rule.name,
                             "rule": rule.record(), "replacement_reduce": args.replacement_reduce,
                             "seed": args.seed},
                **result.to_json()}
    print(render(result, document))
    if args.save_pruned:
        _save(args, loaded, result, document, data)
    document["seconds"] = round(time.perf_counter() - started, 3)
    _write_document(args, document)
    return 0


def _windowed_evaluators(held, loaded, objectives, engine_options):
    """One sliding-window evaluator per text objective over the held-out windows (kl and ppl share their
    measurements)."""
    from ..analysis.objectives import Objective, objective_kind

    made = {name: held.evaluator(loaded.model, Objective(name), loaded.n_layers,
                                 engine_options.get("attention_type", "layer"))
            for name in objectives if objective_kind(name).reads == "text"}
    if not made:
        raise PruneError("--heldout-window measures text objectives (kl, ppl): add one with --objective")
    if "kl" in made and "ppl" in made:
        made["ppl"].measured = made["kl"].measured
    return made


def _save(args, loaded, result, document, data) -> None:
    from ..engine.compress import pairs_for_layers

    found = result.found[0]
    if not found.layers:
        raise PruneError("--save-pruned: the search removed no layer within the ceiling, so there is no pruned "
                         "model to save; raise --max-cost")
    record = {"search": found.search, "guide": found.guide, "objective": found.objective,
              "calibration_cost": found.cost, "heldout": result.heldout[0], "removed": list(found.layers)}
    pairs = pairs_for_layers(found.layers, loaded.n_layers)
    _act_and_save(args, loaded, pairs, record, data.calibration, data.heldout, document)


def _act_and_save(args, loaded, pairs, record, calibration_ids, heldout_ids, document) -> None:
    """The action carried out on a copy, its own cost measured (reference formulas, both texts), then saved: the
    folder (or GGUF file) reproduces the printed cost when loaded on its own."""
    from ..engine.compress import acted_copy, action_costs
    from ..engine.pruned import save_model

    acted = acted_copy(loaded.model, args.action, pairs)
    costs = {}
    for name, ids in (("calibration", calibration_ids), ("heldout", heldout_ids)):
        kl, nll = action_costs(loaded.model, acted, ids, batch_size=_batch(args.batch_size))
        costs[name] = _cost_summary(kl.numpy(), nll.numpy(), seed=args.seed)
    summaries = {name: {key: value for key, value in cost.items() if not key.endswith("_per_seq")}
                 for name, cost in costs.items()}
    gives = [give for _, give in pairs]
    record = {"removed": [] if args.action == "share" else gives, **record, "action": args.action,
              "pairs": [list(pair) for pair in pairs], "costs": summaries,
              "source": {"model": loaded.name, "path": loaded.path, "commit": loaded.commit}}  # swapkl heal's control
    target = Path(args.save_pruned)
    if _is_gguf(target):
        from ..engine.gguf_export import write_gguf

        written = write_gguf(acted, target)
    else:
        written = save_model(acted, loaded.tokenizer, target, record)
    document["saved"] = {"folder": os.fspath(written), "action": args.action, "removed": record["removed"],
                         "pairs": [list(pair) for pair in pairs], "costs": costs}
    held = costs["heldout"]
    depth = acted.config.num_hidden_layers
    print(f"\n{args.action} on pairs {', '.join(f'{keep}-{give}' for keep, give in pairs)} (KEEP-GIVE): held-out "
          f"KL {number(held['kl'])} [{number(held['kl_low'])}, {number(held['kl_high'])}], ppl {number(held['ppl'])}; "
          f"calibration KL {number(costs['calibration']['kl'])}, ppl {number(costs['calibration']['ppl'])}")
    print(f"{args.action} model ({depth} of {loaded.n_layers} slots) written to {written}")


def _batch(value) -> int:
    return value if isinstance(value, int) and value > 0 else 1


def _cost_summary(kl, nll, seed: int) -> dict:
    """Mean KL with its expanded bootstrap interval over sequences, and the perplexity of the acted model."""
    import numpy as np

    from ..analysis.mean_interval import expanded_interval
    from ..numerics import perplexity

    rng = np.random.default_rng(seed)
    draws = kl[rng.integers(0, len(kl), size=(1000, len(kl)))].mean(axis=1)
    low, high = expanded_interval(draws, len(kl))
    return {"kl": float(kl.mean()), "kl_low": low, "kl_high": high, "ppl": perplexity(float(nll.mean())),
            "nll_per_seq": [float(value) for value in nll], "kl_per_seq": [float(value) for value in kl]}


def render(result: Any, document: dict) -> str:
    """One table per objective: each found set, its calibration and held-out cost, its paired ratio to the
    exhaustive optimum (or, where no exhaustive search ran, the cheapest set found), evaluations and layer passes.
    Says only what was compared: a budget with one set found has nothing to compare it with."""
    from tabulate import tabulate

    from ..cases import layer_set_label

    parts = []
    model = document["model"]
    parts.append(f"guided removal: {model['name']} ({result.n_layers} layers), calibration "
                 f"{document['data']['n_sequences']} x {document['data']['seq_len']} tokens, held-out "
                 f"{_heldout_size(document['heldout'])}")
    exhaustive = any(found.search == "exhaustive" for found in result.found)
    verdicts = result.verdicts
    versus_header = (("vs exhaustive" if exhaustive else "vs cheapest found")
                     + f" (paired 95%; verdict, after {verdicts['multiplicity']} where it differs)")
    ceilings = document["settings"].get("ceilings") or {}
    for objective, base in result.base.items():
        rows, alone = [], False
        sets_per_budget: dict = {}
        for found in result.found:
            if found.objective == objective:
                sets_per_budget.setdefault(found.k, set()).add(tuple(found.layers))
        for found, held in zip(result.found, result.heldout):
            if found.objective != objective:
                continue
            cost = held.get(objective)
            compared = len(sets_per_budget.get(found.k, ())) > 1 or exhaustive
            alone = alone or not compared
            rows.append([found.k, found.search, found.guide, layer_set_label(list(found.layers)) if found.layers
                         else "-", number(found.cost),
                         "-" if cost is None else f"{number(cost['cost'])} [{number(cost['low'])}, "
                                                  f"{number(cost['high'])}]",
                         _ratio(held.get("vs_best"), verdicts["multiplicity"]) if compared else "-",
                         found.spend.evaluations,
                         found.spend.layer_passes])
        limit = ""
        if objective in ceilings:
            limit = (f"; ceiling {number(ceilings[objective])} ({document['settings']['max_cost']} of the full "
                     "model, on calibration text)")
        table = tabulate(rows, headers=["k", "search", "guide", "removes", "calibration", "held-out [95%]",
                                        versus_header, "evaluations", "layer passes"], disable_numparse=True)
        note = ("\n(-: one set found for this budget and no exhaustive search ran, so there is nothing to compare "
                "it with; add --search exhaustive or a second search)") if alone else ""
        note += (f"\n(verdicts: a direction from the 95% interval; else equivalent when the 90% interval of the ratio "
                 f"lies within the margin {verdicts['equivalence_margin']:g}, else undecided; p-values adjusted "
                 f"across the file's verdicts by {verdicts['multiplicity']})")
        parts.append(f"objective {objective}: full model {number(base['calibration'])} (calibration), "
                     f"{number(base['heldout'])} (held-out){limit}\n" + table + note)
    return "\n\n".join(parts)


def _heldout_size(heldout: dict) -> str:
    if heldout.get("evaluator") == "sliding-window":
        return (f"{heldout['n_tokens']} tokens in {heldout['windows']} sliding windows of {heldout['window']} "
                f"(stride {heldout['stride']})")
    return f"{heldout['n_sequences']} sequences"


def _ratio(versus: dict | None, multiplicity: str) -> str:
    if not versus or versus.get("ratio") is None:
        return "-"
    if versus.get("same_set"):
        return "same set"
    verdict = versus["verdict"]
    if versus.get("verdict_adjusted") not in (None, verdict):
        verdict += f", {multiplicity}: {versus['verdict_adjusted']}"
    if versus.get("ratio_low") is None:
        return f"{versus['ratio']:.3f} ({verdict})"
    return f"{versus['ratio']:.3f} [{versus['ratio_low']:.3f}, {versus['ratio_high']:.3f}] {verdict}"
