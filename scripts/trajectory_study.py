"""Training-trajectory study: does the replacement-interchange gap grow from initialisation to convergence?

Trains the project's own GPT-NeoX model (Pythia-style; 12 layers, width 512 by default) on the bundled
corpus's train split once per seed, evaluates held-out perplexity every --eval-every steps on a fixed set
of held-out sequences, and stops early when it stops improving (--patience evaluations without a relative
improvement of --min-delta over the best), keeping the best checkpoint as the seed's last one. Log-spaced
checkpoints (0, 16, 32, 64, ... below the best step) and the best one are audited with `run_audit` (all
pairs, float32), and the gap statistics are compared across checkpoints and seeds (trajectory_stats.py).

The work comes in resumable units (one seed's training, paused and resumed within it; one checkpoint's
audit; the summary). Each invocation does whatever is not done yet and stops itself before --time-budget
seconds, so the same command, repeated, finishes the study:

    python scripts/trajectory_study.py --seeds 0,1,2 --out runs/trajectory --time-budget 540
    # exit 0: done (runs/trajectory/summary.json, summary.md); exit 75: stopped for time, run it again

CPU smoke run (seconds, not a result): --layers 4 --width 64 --steps 60 --eval-every 10 --patience 2
--batch-size 8 --seq-len 128 --eval-tokens 4096 --audit-tokens 1024 --device cpu. See docs/trajectory.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # trajectory_stats beside this script

import trajectory_stats  # noqa: E402

from pytest_swapkl.analysis.stats import bootstrap_indices  # noqa: E402
from pytest_swapkl.audit.results import write_json  # noqa: E402  (atomic: a killed part never leaves half a file)

SCHEMA = "swapkl-trajectory-study/1"
PAUSED = 75  # exit status when the time budget ran out before the study was done (EX_TEMPFAIL)
_WORK_SEPARATOR = "\n\n\n"  # between works in the bundled corpus (scripts/build_demo_corpus.py)


class StudyError(Exception):
    """Bad input the user can fix: printed as one line, exit status 2."""


# --- the plan: options and the files they lead to ------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/trajectory"))
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds, at least 3")
    parser.add_argument("--part", choices=("all", "train", "audit", "summary"), default="all",
                        help="do only this part (of the seeds given); default: whatever is left")
    parser.add_argument("--time-budget", type=float, default=540.0,
                        help="seconds this invocation may run; it stops itself before (exit 75), rerun to go on")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--steps", type=int, default=2000, help="most training steps (the cosine schedule's length)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=50, help="steps between held-out evaluations")
    parser.add_argument("--patience", type=int, default=6, help="evaluations without improvement before stopping")
    parser.add_argument("--min-delta", type=float, default=0.002,
                        help="relative held-out perplexity improvement that counts as one (0.002 = 0.2%%)")
    parser.add_argument("--eval-tokens", type=int, default=65536, help="held-out tokens of the early-stopping set")
    parser.add_argument("--audit-tokens", type=int, default=8192, help="held-out calibration tokens of each audit")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of every interval")
    parser.add_argument("--prune-k", type=int, default=0,
                        help="pruning validation up to k layers on each seed's best checkpoint (default off)")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    try:
        args.seeds = sorted({int(seed) for seed in args.seeds.split(",") if seed.strip()})
    except ValueError:
        raise StudyError(f"--seeds {args.seeds!r} is not a comma-separated list of integers: write e.g. 0,1,2")
    if args.part in ("all", "summary") and len(args.seeds) < 3:
        raise StudyError(f"--seeds names {len(args.seeds)} seed(s): an interval across seeds needs at least 3, "
                         "e.g. --seeds 0,1,2")
    for name in ("layers", "width", "steps", "batch_size", "seq_len", "eval_every", "patience", "eval_tokens",
                 "audit_tokens", "bootstrap"):
        if getattr(args, name) < 1:
            raise StudyError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.width % 64:
        raise StudyError(f"--width {args.width} is not a multiple of 64 (heads of 64): use e.g. 64, 256 or 512")
    if args.layers < 3:
        raise StudyError(f"--layers {args.layers}: an audit of pairs needs at least 3 layers")
    return args


def settings_record(args: argparse.Namespace) -> dict:
    """What decides the study's numbers: a rerun with other settings must not mix with these outputs."""
    keys = ("layers", "width", "steps", "batch_size", "seq_len", "lr", "warmup", "eval_every", "patience",
            "min_delta", "eval_tokens", "audit_tokens", "bootstrap", "prune_k")
    return {key: getattr(args, key) for key in keys}


def check_settings(args: argparse.Namespace) -> None:
    """The first invocation records the settings; later ones must match them (or use another --out)."""
    path = args.out / "settings.json"
    wanted = settings_record(args)
    if path.exists():
        found = json.loads(path.read_text())
        changed = sorted(key for key in wanted if found.get(key) != wanted[key])
        if changed:
            raise StudyError(f"{args.out} holds a study with other settings ({', '.join(changed)}): "
                             "pass the same options, or another --out")
    else:
        write_json(wanted, path)


def seed_dir(args: argparse.Namespace, seed: int) -> Path:
    return args.out / f"seed{seed}"


def checkpoint_dir(args: argparse.Namespace, seed: int) -> Path:
    return args.out / "checkpoints" / f"seed{seed}"


def log_spaced_steps(limit: int) -> list[int]:
    """0, 16, 32, 64, ... doubling, every one at most `limit`."""
    steps, step = [0], 16
    while step <= limit:
        steps.append(step)
        step *= 2
    return steps


# --- data: one tokenization, four disjoint sets ---------------------------------------------------


def tokenizer():
    from transformers import AutoTokenizer

    from pytest_swapkl.inputs.loading import DEMO_MODEL_DIR

    return AutoTokenizer.from_pretrained(DEMO_MODEL_DIR)


def token_stream(tok, path: Path) -> np.ndarray:
    """Works separated by end-of-text, as the demo model was trained and as `demo` calibration reads them."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        works = f.read().rstrip("\n").split(_WORK_SEPARATOR)
    ids: list[int] = []
    for encoded in tok(works, add_special_tokens=False)["input_ids"]:
        ids += encoded + [tok.eos_token_id]
    return np.array(ids, dtype=np.int64)


def prepare_data(args: argparse.Namespace) -> dict:
    """Tokenize once: the train stream, and the held-out split cut into seq_len chunks, shuffled with a fixed
    seed and dealt into three disjoint sets: the early-stopping set, the audits' calibration and the pruning
    costs. The audits run on the same calibration sequences at every checkpoint and seed, so checkpoints
    can be compared on shared resamples."""
    import torch

    from pytest_swapkl.inputs.data import DEMO_CORPUS_DIR, token_sha256

    folder = args.out / "data"
    record_path = folder / "split.json"
    if record_path.exists():
        return json.loads(record_path.read_text())
    tok = tokenizer()
    tok.model_max_length = 1 << 40  # whole works are tokenized into one stream, then cut: no length warning
    folder.mkdir(parents=True, exist_ok=True)
    train = token_stream(tok, DEMO_CORPUS_DIR / "train.txt.gz")
    heldout = token_stream(tok, DEMO_CORPUS_DIR / "heldout.txt.gz")
    chunks = heldout[: len(heldout) // args.seq_len * args.seq_len].reshape(-1, args.seq_len)
    chunks = chunks[np.random.default_rng(0).permutation(len(chunks))]
    n_audit, n_eval = args.audit_tokens // args.seq_len, args.eval_tokens // args.seq_len
    wanted = 2 * n_audit + n_eval
    if min(n_audit, n_eval) < 2 or wanted > len(chunks):
        raise StudyError(f"the held-out split has {len(chunks)} sequences of {args.seq_len} tokens; "
                         f"--audit-tokens and --eval-tokens ask for 2 x {n_audit} + {n_eval} (at least 2 each): "
                         "lower them or --seq-len")
    sets = {"calibration": chunks[:n_audit], "costs": chunks[n_audit:2 * n_audit],
            "validation": chunks[2 * n_audit:wanted]}
    np.save(folder / "train.npy", train)
    record = {"train_tokens": int(len(train)), "heldout_tokens": int(len(heldout)), "seq_len": args.seq_len,
              "vocab_size": len(tok), "eos_token_id": tok.eos_token_id}
    for name, ids in sets.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(ids))
        record[name] = {"path": f"data/{name}.npy", "n_sequences": int(len(ids)),
                        "sha256": token_sha256(torch.from_numpy(np.ascontiguousarray(ids)))}
    write_json(record, record_path)
    return record


# --- training: resumable, early-stopped on held-out perplexity ------------------------------------


def build_model(args: argparse.Namespace, data: dict):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    config = GPTNeoXConfig(vocab_size=data["vocab_size"], hidden_size=args.width, num_hidden_layers=args.layers,
                           num_attention_heads=args.width // 64, intermediate_size=4 * args.width,
                           max_position_embeddings=max(512, args.seq_len), bos_token_id=data["eos_token_id"],
                           eos_token_id=data["eos_token_id"], tie_word_embeddings=False)
    return GPTNeoXForCausalLM(config)


def learning_rate(args: argparse.Namespace, step: int) -> float:
    """Linear warm-up, cosine to 10% over --steps (the same schedule whether or not training stops early)."""
    cosine = 0.5 * (1 + math.cos(math.pi * step / args.steps))
    return args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * cosine)


def heldout_ppl(model, validation, device, batch_size: int) -> float:
    """Perplexity over every next-token position of the early-stopping set (equal-length sequences)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(validation), batch_size):
            batch = validation[start:start + batch_size].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = model(input_ids=batch, labels=batch).loss
            positions = batch.shape[0] * (batch.shape[1] - 1)
            total, count = total + float(loss) * positions, count + positions
    model.train()
    return math.exp(total / count)


def early_stopping(history: list[dict], patience: int, min_delta: float) -> tuple[dict, bool]:
    """The best evaluation so far (lowest held-out perplexity) and whether to stop: stop once `patience`
    evaluations in a row brought no progress, where progress means a perplexity below the last one that made
    progress by more than the share `min_delta`. Small gains still move the best, never the patience."""
    best = reference = history[0]
    since = 0
    for entry in history[1:]:
        if entry["heldout_ppl"] < best["heldout_ppl"]:
            best = entry
        if entry["heldout_ppl"] < reference["heldout_ppl"] * (1 - min_delta):
            reference, since = entry, 0
        else:
            since += 1
    return best, since >= patience


class Clock:
    """This invocation's time budget; units ask before they start whether they still fit."""

    def __init__(self, budget: float):
        self.started, self.budget = time.perf_counter(), budget

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.started)


def train_seed(args: argparse.Namespace, seed: int, data: dict, clock: Clock) -> bool:
    """Train (or go on training) one seed; True when it is finished, False when paused for time."""
    import torch

    done_path = seed_dir(args, seed) / "training.json"
    if done_path.exists():
        return True
    folder = checkpoint_dir(args, seed)
    state_path = folder / "train_state.pt"
    device = torch.device(args.device)
    torch.manual_seed(seed)
    model = build_model(args, data).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    generator = torch.Generator().manual_seed(seed)
    chunks = torch.from_numpy(np.load(args.out / "data" / "train.npy"))
    chunks = chunks[: len(chunks) // args.seq_len * args.seq_len].view(-1, args.seq_len)
    validation = torch.from_numpy(np.load(args.out / data["validation"]["path"]))
    state = {"step": 0, "history": [], "best": None, "best_weights": None, "log": [], "seconds": 0.0}
    if not state_path.exists():  # a fresh start: drop what a killed run (no pause, no state) left behind
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    if state_path.exists():  # a paused run: every number and random state as it was
        saved = torch.load(state_path, map_location="cpu", weights_only=True)  # our own file, still no pickle code
        model.load_state_dict(saved.pop("model"))
        optimizer.load_state_dict(saved.pop("optimizer"))
        generator.set_state(saved.pop("generator"))
        state = saved
        print(f"seed {seed}: resuming at step {state['step']}", flush=True)
    log_steps = set(log_spaced_steps(args.steps))
    resumed_at = time.perf_counter() - state["seconds"]
    model.train()
    stop_reason = None
    while True:
        step = state["step"]
        if clock.left() < 30:  # room for writing the state and the process's exit
            state["seconds"] = time.perf_counter() - resumed_at
            partial = state_path.with_suffix(".partial")  # a kill while saving leaves the last state whole
            torch.save({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state()}, partial)
            partial.replace(state_path)
            print(f"seed {seed}: paused at step {step} for the time budget", flush=True)
            return False
        if step in log_steps and not (folder / f"step{step}").exists():
            model.save_pretrained(folder / f"step{step}")
        if step % args.eval_every == 0:
            ppl = heldout_ppl(model, validation, device, args.batch_size)
            state["history"].append({"step": step, "heldout_ppl": ppl})
            best, stop = early_stopping(state["history"], args.patience, args.min_delta)
            if best["step"] == step:
                state["best_weights"] = {name: tensor.detach().to("cpu", copy=True)
                                         for name, tensor in model.state_dict().items()}
            state["best"] = best
            print(f"seed {seed} step {step}: held-out ppl {ppl:.3f} (best {best['heldout_ppl']:.3f} "
                  f"at step {best['step']})", flush=True)
            if stop:
                stop_reason = "patience"
                break
        if step >= args.steps:
            stop_reason = "max_steps"
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, step)
        batch = chunks[torch.randint(0, len(chunks), (args.batch_size,), generator=generator)].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0:
            state["log"].append({"step": step, "train_loss": float(loss.detach())})
        state["step"] = step + 1
    seconds = time.perf_counter() - resumed_at
    model.load_state_dict(state["best_weights"])
    model.save_pretrained(folder / "best")
    tok = tokenizer()  # every audited folder is a complete checkpoint: weights, config and tokenizer
    for name in ["best"] + [f"step{step}" for step in sorted(log_steps)]:
        if (folder / name).exists():
            tok.save_pretrained(folder / name)
    write_json(training_record(args, seed, state, stop_reason, seconds, model), done_path)
    state_path.unlink(missing_ok=True)
    return True


def training_record(args, seed: int, state: dict, stop_reason: str, seconds: float, model) -> dict:
    best, history = state["best"], state["history"]
    last = history[-1]
    return {
        "seed": seed,
        "config": model.config.to_dict(),
        "tokens_per_step": args.batch_size * args.seq_len,
        "history": history,
        "train_log": state["log"],
        "best_step": best["step"],
        "best_heldout_ppl": best["heldout_ppl"],
        "stopped_at": last["step"],
        "convergence": {
            "rule": (f"stop when {args.patience} consecutive held-out evaluations (every {args.eval_every} steps) "
                     f"bring no relative improvement of {args.min_delta:g}; keep the lowest-perplexity one"),
            "reason": stop_reason,
            "converged": stop_reason == "patience",
            "evaluations_after_best": sum(entry["step"] > best["step"] for entry in history),
            "ppl_rise_after_best": last["heldout_ppl"] / best["heldout_ppl"] - 1,  # >= 0: the best is the lowest
        },
        "train_seconds": seconds,
    }


# --- audits: one checkpoint per unit ---------------------------------------------------------------


def audited_steps(training: dict) -> list[int]:
    """The log-spaced steps before the best one, then the best: the last audited checkpoint is the best."""
    best = training["best_step"]
    return [step for step in log_spaced_steps(best) if step < best] + [best]


def audit_options(args: argparse.Namespace, folder: Path, data: dict, prune_k: int) -> argparse.Namespace:
    from pytest_swapkl.options import OPTIONS

    options = argparse.Namespace(**{option.name: option.default for option in OPTIONS})
    options.model, options.pairs, options.device, options.dtype = str(folder), "all", args.device, "float32"
    options.data = str(args.out / data["calibration"]["path"])  # pre-tokenized: used exactly as given
    options.tokens, options.seq_len, options.bootstrap = args.audit_tokens, args.seq_len, args.bootstrap
    options.prune_k = prune_k
    if prune_k:
        options.heldout = str(args.out / data["costs"]["path"])
        options.prune_methods = ("replacement", "interchange", "removal", "block_influence", "angular", "sleb")
    return options


def audit_checkpoint(args: argparse.Namespace, seed: int, step: int, best: int, data: dict) -> dict:
    """Audit one checkpoint; keep the full document beside the checkpoints and a reduced record for the study."""
    from pytest_swapkl.audit.runner import run_audit

    folder = checkpoint_dir(args, seed) / ("best" if step == best else f"step{step}")
    if step == best and not folder.exists():
        raise StudyError(f"{folder} is missing: the training of seed {seed} did not finish here; "
                         f"remove {seed_dir(args, seed)} and rerun")
    options = audit_options(args, folder, data, args.prune_k if step == best else 0)
    document, audit, _ = run_audit(options, journal_dir=args.out / "journal")
    pairs = [(p.i, p.j) for p in audit.pairs]
    r_seq, i_seq = per_sequence_distances(audit, pairs, document["model"]["n_layers"])
    np.savez(checkpoint_dir(args, seed) / f"distances_step{step}.npz", r=r_seq, i=i_seq,
             distances=np.array([j - i for i, j in pairs]))
    write_json(document, checkpoint_dir(args, seed) / f"audit_step{step}.json")
    return reduced_record(args, document, step, best, r_seq, i_seq, pairs)


def per_sequence_distances(audit, pairs: list[tuple[int, int]], n_layers: int) -> tuple[np.ndarray, np.ndarray]:
    """R (both replacement directions, reduced as the audit reduces them) and I per sequence: [n_seq, n_pairs]."""
    from pytest_swapkl.analysis import stats
    from pytest_swapkl.engine.probes import interchange, replacement

    measurement = audit.measurement
    reduce = stats.REDUCERS[audit.replacement_reduce]
    r = [reduce(measurement[replacement(i, j, n_layers)].kl_per_seq,
                measurement[replacement(j, i, n_layers)].kl_per_seq) for i, j in pairs]
    i_ = [measurement[interchange(i, j, n_layers)].kl_per_seq for i, j in pairs]
    return np.stack(r, axis=1).astype(np.float64), np.stack(i_, axis=1).astype(np.float64)


def reduced_record(args, document: dict, step: int, best: int, r_seq, i_seq, pairs) -> dict:
    """The numbers the study needs from one audit, with their intervals."""
    summary = document["summary"]
    draws = bootstrap_indices(len(r_seq), args.bootstrap, 0)
    distances = np.array([j - i for i, j in pairs])
    record = {
        "step": step,
        "best": step == best,
        "tokens_seen": step * args.batch_size * args.seq_len,
        "base_ppl": document["base"]["ppl"],
        "n_sequences": document["data"]["n_sequences"],
        "n_pairs": len(pairs),
        "median_ratio_by_distance": [{"distance": d["distance"], "value": d["median_ratio"], "ci": d["ci"]}
                                     for d in summary["ratio_by_distance"]],
        "spearman_audit": {"value": summary["spearman"], "ci": summary["spearman_ci"]},
        "kendall": {"value": summary["kendall"], "ci": summary["kendall_ci"]},
        "jaccard": [{"k": t["k"], "value": t["jaccard"], "ci": t.get("jaccard_ci")} for t in summary["topk"]],
        **trajectory_stats.checkpoint_gaps(r_seq, i_seq, distances, draws),
        "audit_seconds": document["seconds"],
    }
    if document.get("pruning"):
        record["pruning"] = document["pruning"]["budgets"]
    return record


def audit_seed(args: argparse.Namespace, seed: int, data: dict, clock: Clock, estimate: list[float]) -> bool:
    """Audit every checkpoint of a trained seed not audited yet; False when paused for time."""
    training_path = seed_dir(args, seed) / "training.json"
    if not training_path.exists():
        return False
    training = json.loads(training_path.read_text())
    best = training["best_step"]
    for step in audited_steps(training):
        path = seed_dir(args, seed) / f"audit_step{step}.json"
        if path.exists():
            continue
        if clock.left() < estimate[-1] + 15:  # the last audit's time, padded (the first guess: compiling)
            print(f"seed {seed}: audit of step {step} left for the next run (time budget)", flush=True)
            return False
        started = time.perf_counter()
        record = audit_checkpoint(args, seed, step, best, data)
        estimate.append(1.5 * (time.perf_counter() - started))
        write_json(record, path)
        print(f"seed {seed}: audited step {step}: base ppl {record['base_ppl']:.2f}, "
              f"ln(mean R/mean I) {record['log_mean_ratio']['value']}", flush=True)
    return True


# --- across checkpoints and seeds -------------------------------------------------------------------


def seed_result(args: argparse.Namespace, seed: int) -> dict:
    """One seed's audited checkpoints and its paired change of each gap statistic from init to best."""
    training = json.loads((seed_dir(args, seed) / "training.json").read_text())
    steps = audited_steps(training)
    records = [json.loads((seed_dir(args, seed) / f"audit_step{step}.json").read_text()) for step in steps]
    first, last = (np.load(checkpoint_dir(args, seed) / f"distances_step{step}.npz") for step in (0, steps[-1]))
    draws = bootstrap_indices(len(first["r"]), args.bootstrap, 0)
    change = trajectory_stats.paired_change((first["r"], first["i"]), (last["r"], last["i"]), first["distances"],
                                            draws)
    return {"seed": seed, "best_step": training["best_step"], "best_heldout_ppl": training["best_heldout_ppl"],
            "stopped_at": training["stopped_at"], "convergence": training["convergence"],
            "train_seconds": training["train_seconds"], "heldout_history": training["history"],
            "checkpoints": records, "change_init_to_best": change}


ROW_STATISTICS = {  # summary column -> how to read it from a reduced record
    "base_ppl": lambda r: r["base_ppl"],
    "median_ratio_d1": lambda r: r["median_ratio_d1"]["value"],
    "spearman": lambda r: r["spearman"]["value"],
    "kendall": lambda r: r["kendall"]["value"],
    "log_mean_ratio": lambda r: r["log_mean_ratio"]["value"],
    "mean_r": lambda r: r["mean_r"]["value"],
    "mean_i": lambda r: r["mean_i"]["value"],
    "jaccard_kmax": lambda r: r["jaccard"][-1]["value"],  # the largest k audited (4 for 12 layers)
}


def summarize_study(args: argparse.Namespace, data: dict) -> dict:
    seeds = [seed_result(args, seed) for seed in args.seeds]
    labels = ["init"] + [str(step) for step in sorted({r["step"] for s in seeds for r in s["checkpoints"]
                                                       if 0 < r["step"] and not r["best"]})] + ["best"]
    rows = []
    for label in labels:
        found = [pick(seed, label) for seed in seeds]
        found = [r for r in found if r is not None]
        rows.append({"checkpoint": label, "steps": [r["step"] for r in found],
                     **{name: trajectory_stats.across_seeds([get(r) for r in found])
                        for name, get in ROW_STATISTICS.items()}})
    changes = {}
    for name, direction in trajectory_stats.GROWS_WHEN.items():
        per_seed = [s["change_init_to_best"][name] for s in seeds]
        spread = trajectory_stats.across_seeds([c["change"] for c in per_seed])
        changes[name] = {"grows_when": direction, "per_seed": per_seed, "across_seeds": spread,
                         "verdict": trajectory_stats.verdict(*spread["t_ci"], direction),
                         "seeds_grows": sum(c["verdict"] == "grows" for c in per_seed),
                         "seeds_shrinks": sum(c["verdict"] == "shrinks" for c in per_seed)}
    return {
        "schema": SCHEMA,
        "settings": settings_record(args),
        "data": data,
        "tokens_per_step": args.batch_size * args.seq_len,
        "intervals": {
            "per_checkpoint": "95% paired bootstrap over the audit's calibration sequences: means and ln(mean R / "
                              "mean I) expanded percentile, Spearman reflected (basic), medians I/R and Jaccard "
                              "percentile (the audit's own)",
            "init_to_best_per_seed": "95% basic bootstrap interval of the change, on resamples shared by the two "
                                     "checkpoints (the same calibration sequences)",
            "across_seeds": "95% Student t interval of the seeds' mean (n - 1 degrees of freedom); min and max too",
        },
        "convergence": [{"seed": s["seed"], "best_step": s["best_step"], "stopped_at": s["stopped_at"],
                         **s["convergence"]} for s in seeds],
        "rows": rows,
        "init_to_best": changes,
        "seeds": [{key: s[key] for key in ("seed", "best_step", "best_heldout_ppl", "train_seconds",
                                           "heldout_history", "checkpoints")}
                  for s in seeds],
    }


def pick(seed: dict, label: str):
    records = seed["checkpoints"]
    if label == "init":
        return records[0]
    if label == "best":
        return records[-1]
    return next((r for r in records if r["step"] == int(label) and not r["best"]), None)


def markdown(summary: dict) -> str:
    """The across-seed table and the init-to-best verdicts as Markdown."""
    n_seeds = len(summary["seeds"])
    jaccard_k = summary["seeds"][0]["checkpoints"][0]["jaccard"][-1]["k"]
    lines = [f"# Trajectory study: {n_seeds} seeds, {summary['settings']['layers']} layers x "
             f"width {summary['settings']['width']}", "",
             "Across-seed mean [95% t interval] (n seeds); `best` = each seed's early-stopped checkpoint.", "",
             "| checkpoint | steps | base ppl | median I/R d=1 | Spearman(R,I) | Kendall | ln(mean R/mean I) | "
             f"Jaccard k={jaccard_k} |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in summary["rows"]:
        cells = [cell(row[name]) for name in ("base_ppl", "median_ratio_d1", "spearman", "kendall",
                                              "log_mean_ratio", "jaccard_kmax")]
        lines.append(f"| {row['checkpoint']} | {','.join(map(str, row['steps']))} | " + " | ".join(cells) + " |")
    lines += ["", "## Does the gap grow from init to best?", "",
              "Per seed: change best - init [95% paired bootstrap interval] and its verdict; across seeds: mean "
              "[95% t interval].", "",
              "| statistic | gap grows when it goes | " + " | ".join(f"seed {s['seed']}" for s in summary["seeds"])
              + " | across seeds | verdict |", "| --- | --- | " + "--- | " * n_seeds + "--- | --- |"]
    for name, change in summary["init_to_best"].items():
        per_seed = [f"{number(c['change'])} [{number(c['ci'][0])}, {number(c['ci'][1])}] {c['verdict']}"
                    for c in change["per_seed"]]
        lines.append(f"| {name} | {change['grows_when']} | " + " | ".join(per_seed)
                     + f" | {cell(change['across_seeds'])} | {change['verdict']} "
                     f"({change['seeds_grows']} of {n_seeds} seeds grow) |")
    lines += ["", "## Convergence", "", "| seed | best step | stopped at | reason | held-out ppl rise after best |",
              "| --- | --- | --- | --- | --- |"]
    for entry, seed in zip(summary["convergence"], summary["seeds"]):
        lines.append(f"| {entry['seed']} | {entry['best_step']} (ppl {seed['best_heldout_ppl']:.2f}) | "
                     f"{entry['stopped_at']} | {entry['reason']} | {100 * entry['ppl_rise_after_best']:.1f}% |")
    lines += ["", f"Rule: {summary['convergence'][0]['rule']}.", ""]
    return "\n".join(lines)


def number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def cell(spread: dict) -> str:
    low, high = spread["t_ci"]
    interval = f" [{number(low)}, {number(high)}]" if low is not None else ""
    return f"{number(spread['mean'])}{interval} ({spread['n']})"


# --- the driver ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    clock = Clock(args.time_budget)
    args.out.mkdir(parents=True, exist_ok=True)
    check_settings(args)
    data = prepare_data(args)
    estimate = [90.0 if args.device.startswith("cuda") else 20.0]  # the first audit compiles on CUDA
    done = True
    for seed in args.seeds:
        if args.part in ("all", "train") and not train_seed(args, seed, data, clock):
            return paused()
        if args.part in ("all", "audit"):
            done = audit_seed(args, seed, data, clock, estimate) and done
            if clock.left() < 30:
                return paused()
    if args.part in ("all", "summary"):
        missing = [seed for seed in args.seeds if not seed_complete(args, seed)]
        if missing:
            if args.part == "summary":
                raise StudyError(f"seeds {missing} are not trained and audited yet: run without --part first")
            return paused()
        summary = summarize_study(args, data)
        write_json(summary, args.out / "summary.json")
        (args.out / "summary.md").write_text(markdown(summary))
        print(markdown(summary))
    elif not done:
        return paused()
    return 0


def seed_complete(args: argparse.Namespace, seed: int) -> bool:
    path = seed_dir(args, seed) / "training.json"
    if not path.exists():
        return False
    steps = audited_steps(json.loads(path.read_text()))
    return all((seed_dir(args, seed) / f"audit_step{step}.json").exists() for step in steps)


def paused() -> int:
    print("trajectory study: stopped before the time budget ran out; run the same command again to go on",
          flush=True)
    return PAUSED


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        return run(args)
    except StudyError as error:
        print(f"trajectory_study: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the package's one-line input errors (a checkpoint, the data), not its bugs
        from pytest_swapkl.errors import InputError

        if not isinstance(error, InputError):
            raise
        print(f"trajectory_study: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
