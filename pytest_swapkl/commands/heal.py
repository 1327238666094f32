"""`swapkl heal`: LoRA healing of a pruned model against the same fine-tuning of the original, net recovery.

    swapkl heal PRUNED [--original MODEL] [--data S] [--heldout S] [--steps N] [--rank R] [--alpha A] [--lr X]
        [--weight-decay X] [--train-batch-size B] [--targets M[,M...]] [--save DIR] [--json PATH]
        [--tokens N] [--seq-len L] [--seed S] [--dtype D] [--device D] [--batch-size B]

PRUNED is a model that `swapkl prune --save-pruned DIR` wrote (its config's ``swapkl_pruning`` record); the
original is the record's source model unless --original names it. Both are fine-tuned with the same recipe and
seed on --data (engine/healing.py: the paper's LoRA recipe by default), and every model is measured on the
held-out text (--heldout, default the unused chunks of --data) by the reference formulas; the net recovery
(analysis/net_recovery.py, docs/pruning.md "Healing") is printed with its paired bootstrap interval. --save
writes the healed pruned model, adapters merged, as a folder `from_pretrained` loads with no custom code.
No torch at import time.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..console import number
from ..errors import InputError
from ..options import MODEL_HELP, add_to_argparse, audit_inputs
from ..safe_files import check_outputs

SHARED_OPTIONS = ("data", "tokens", "seq_len", "seed", "dtype", "device", "batch_size", "allow_pickle",
                  "trust_remote_code", "threads", "heldout_tokens")
MODELS = ("original", "pruned", "healed_original", "healed_pruned")


class HealError(InputError):
    pass


def add_heal_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="PRUNED", help="a pruned model saved by swapkl prune --save-pruned DIR "
                        f"(its config records the pruning); {MODEL_HELP}")
    parser.add_argument("--original", default=None, metavar="MODEL", help="the unpruned model: the control's "
                        "(default: the source model the pruning record names)")
    parser.add_argument("--heldout", default=None, help="held-out SOURCE for every reported cost (default: the "
                        "unused chunks of --data)")
    parser.add_argument("--steps", type=_positive, default=200, help="training steps for each model (default: 200, "
                        "the paper's)")
    parser.add_argument("--rank", type=_positive, default=16, help="LoRA rank (default: 16)")
    parser.add_argument("--alpha", type=float, default=32.0, help="LoRA alpha; the update is scaled by "
                        "alpha/rank (default: 32)")
    parser.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (default: 2e-4)")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default: 0.01)")
    parser.add_argument("--train-batch-size", type=_positive, default=1, help="training sequences per step, "
                        "drawn at random with replacement (default: 1, the paper's)")
    parser.add_argument("--targets", default=None, metavar="M[,M...]", help="modules the adapters go on, by name "
                        "or name ending (default: the attention projections of every layer: q_proj, k_proj, "
                        "v_proj, o_proj; query_key_value, dense for gpt_neox)")
    parser.add_argument("--save", default=None, metavar="DIR", help="save the healed pruned model, adapters "
                        "merged (config, safetensors, tokenizer), to this new or empty folder")
    parser.add_argument("--json", default=None, help="write the heal JSON to this path")
    add_to_argparse(parser, only=SHARED_OPTIONS)
    parser.set_defaults(run=run_heal)


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _check_outputs(args, original: str | None) -> None:
    """--save (a new or empty folder) and --json: never an input of the run, checked before any work."""
    models = [args.model] + ([original] if original else [])
    inputs = audit_inputs(args, models=models)
    if args.heldout:
        inputs.append(("the held-out data (--heldout)", args.heldout))
    outputs = [("--json", args.json)]
    if args.save:
        folder = Path(args.save)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise HealError(f"--save {folder}: it exists and is not an empty folder; name a new folder")
        outputs.append(("--save", folder / "config.json"))
    check_outputs(outputs, inputs, make_parents=True)


def pruning_record(config, spec: str) -> dict:
    """The ``swapkl_pruning`` record of a pruned model's config, or a one-line refusal."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    record = getattr(config, "swapkl_pruning", None) or getattr(text, "swapkl_pruning", None)
    if not isinstance(record, dict):
        raise HealError(f"{spec} is not a pruned model (its config has no swapkl_pruning record): heal a model "
                        "saved by swapkl prune --save-pruned DIR")
    return record


def original_of(args, record: dict) -> str:
    if args.original:
        return args.original
    source = record.get("source") or {}  # swapkl prune records the model it read: its folder, and the name given
    if source.get("model") == "demo":
        return "demo"
    if source.get("path") and os.path.isdir(source["path"]):
        return source["path"]
    if source.get("model"):
        return source["model"]
    raise HealError(f"{args.model}: its pruning record does not name the original model; give --original MODEL")


def _check_original(record: dict, pruned_layers: int, original_layers: int, original: str) -> None:
    """The original must be the model the record's pairs were cut from: its depth less the removed layers."""
    pairs = record.get("pairs") or []
    removed = len(record.get("removed") or [])
    expected = original_layers - (0 if record.get("action") == "share" else removed)
    beyond = [layer for pair in pairs for layer in pair if layer >= original_layers]
    if beyond or expected != pruned_layers:
        raise HealError(f"--original {original} has {original_layers} layers, which the pruning record "
                        f"({record.get('action', 'remove')} {record.get('removed')}) does not turn into the pruned "
                        f"model's {pruned_layers}: name the model it was pruned from")


def run_heal(args: argparse.Namespace) -> int:
    from ..engine.healing import Recipe, load_peft

    recipe = Recipe(rank=args.rank, alpha=args.alpha, lr=args.lr, weight_decay=args.weight_decay, steps=args.steps,
                    batch_size=args.train_batch_size,
                    targets=tuple(part.strip() for part in args.targets.split(",") if part.strip())
                    if args.targets else None)
    _check_outputs(args, args.original)
    load_peft()  # before any model loads: a missing extra is one line, not a traceback after minutes
    from ..audit.runner import locate

    located = locate(args)
    record = pruning_record(located.checkpoint.config, args.model)
    original = original_of(args, record)
    _check_outputs(args, original)
    from ..engine.threads import cpu_threads
    from ..settings import AuditSettings

    with cpu_threads(AuditSettings.of(args).engine.threads):
        return _run(args, located, record, original, recipe)


def _run(args, located, record, original, recipe) -> int:
    import time

    import numpy as np

    from ..analysis.net_recovery import net_recovery
    from ..audit.runner import data_record, heldout_for, locate, model_from_options, model_record
    from ..engine.compress import action_costs
    from ..engine.healing import attention_projections, heal
    from ..inputs.data import check_fits
    from ..progress import Progress

    started = time.perf_counter()
    pruned = model_from_options(args, located.checkpoint)
    original_args = argparse.Namespace(**{**vars(args), "model": original})
    base = model_from_options(original_args, locate(original_args).checkpoint)
    _check_original(record, pruned.n_layers, base.n_layers, original)
    calibration = located.calibration
    check_fits(calibration, pruned.vocab_size, pruned.max_positions)
    held = heldout_for(args, calibration, pruned.tokenizer, pruned.vocab_size, pruned.max_positions)
    batch = args.batch_size if isinstance(args.batch_size, int) and args.batch_size > 0 else 1

    def costs(model):  # per held-out sequence: KL(original || model) and the model's NLL
        kl, nll = action_costs(base.model, model, held.input_ids, batch_size=batch)
        return kl.numpy(), nll.numpy()

    measured = {"original": costs(base.model), "pruned": costs(pruned.model)}
    display = Progress.for_stderr(unit="steps")
    healed, losses = {}, {}
    for name, model, label in (("pruned", pruned.model, "healing the pruned model"),
                               ("original", base.model, "healing the original (the control)")):
        progress = display.stage(label, unit="steps")
        try:
            healed[name], losses[name] = heal(model, calibration.input_ids, recipe, seed=args.seed,
                                              progress=progress)
        finally:
            progress.close()
    measured["healed_original"] = costs(healed["original"])
    measured["healed_pruned"] = costs(healed["pruned"])
    kl_after, _ = action_costs(healed["original"], healed["pruned"], held.input_ids, batch_size=batch)
    recovery = net_recovery({name: measured[name][1] for name in MODELS}, measured["pruned"][0], kl_after.numpy(),
                            seed=args.seed)
    document = {"schema": "swapkl-heal/1", "model": model_record(pruned), "original": model_record(base),
                "pruning": record, "data": data_record(args.data, calibration),
                "heldout": data_record(held.source, held),
                "recipe": {**recipe.record(), "targets": list(recipe.targets or attention_projections(pruned.model)),
                           "seed": args.seed},
                "training": {name: {"first_loss": values[0], "last_loss": values[-1], "losses": values}
                             for name, values in losses.items()},
                "costs": {name: _cost(*measured[name]) for name in MODELS},
                "kl_healed_pair": {"kl": float(np.mean(kl_after.numpy())),
                                   "kl_per_seq": [float(value) for value in kl_after.numpy()]},
                "net_recovery": recovery}
    print(render(document))
    if args.save:
        from ..engine.pruned import save_model

        healing = {"original": original, "data": args.data, "steps": recipe.steps, "seed": args.seed,
                   "recipe": document["recipe"], "heldout": {key: document["costs"]["healed_pruned"][key]
                                                             for key in ("nll", "ppl", "kl")},
                   "net_recovery": {metric: recovery[metric]["value"] for metric in recovery}}
        written = save_model(healed["pruned"], pruned.tokenizer, args.save, {**record, "healing": healing})
        document["saved"] = {"folder": os.fspath(written)}
        print(f"healed model ({pruned.n_layers} layers, adapters merged) written to {written}")
    document["seconds"] = round(time.perf_counter() - started, 3)
    if args.json:
        from ..audit.results import json_ready, write_json

        print(f"heal JSON written to {write_json(json_ready(document), args.json)}")
    return 0


def _cost(kl, nll) -> dict:
    from ..numerics import perplexity

    return {"nll": float(nll.mean()), "ppl": perplexity(float(nll.mean())), "kl": float(kl.mean()),
            "nll_per_seq": [float(value) for value in nll], "kl_per_seq": [float(value) for value in kl]}


def render(document: dict) -> str:
    from tabulate import tabulate

    costs, recovery = document["costs"], document["net_recovery"]
    rows = [[name.replace("_", " "), layers, number(costs[name]["ppl"]), number(costs[name]["nll"]),
             number(costs[name]["kl"])]
            for name, layers in (("original", document["original"]["n_layers"]),
                                 ("pruned", document["model"]["n_layers"]),
                                 ("healed_original", document["original"]["n_layers"]),
                                 ("healed_pruned", document["model"]["n_layers"]))]
    table = tabulate(rows, headers=["model", "layers", "ppl", "nll", "KL vs original"], disable_numparse=True)
    lines = [f"healing {document['model']['name']} ({document['recipe']['steps']} steps, rank "
             f"{document['recipe']['rank']}, alpha {number(document['recipe']['alpha'])}; control: "
             f"{document['original']['name']}), held-out {document['heldout']['n_sequences']} x "
             f"{document['heldout']['seq_len']} tokens", table, "net recovery (1 - gap after / gap before, paired "
             "95% interval over held-out sequences):"]
    for metric, what in (("ppl", "perplexity (the paper's)"), ("nll", "mean NLL"), ("kl", "KL between the pair")):
        found = recovery[metric]
        interval = "" if found["low"] is None else f" [{_percent(found['low'])}, {_percent(found['high'])}]"
        lines.append(f"  {what}: {_percent(found['value'])}{interval}")
    return "\n".join(lines)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
