"""The reproduction study's per-claim tables, computed from the files the study wrote (issue 17).

Reads the audit documents, guided-removal and ceiling JSON under benchmarks/results/study/ and the trajectory
summary under benchmarks/results/trajectory/, and prints Markdown: the agreement statistics per model, the top-k
sets, the paired pruning verdicts, the guided beams against each other, the ceilings, the attention-type reading,
the trajectory and one row per claim of the two papers with its verdict. Every verdict is computed here from the
numbers, never typed, so docs/reproduction.md can quote this output and a rerun of the study updates it.

    python scripts/study_claims.py > benchmarks/results/study/claims.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import numpy as np

MODELS = {"smollm2-135m": "SmolLM2-135M", "gemma3-270m": "Gemma-3-270M"}
# The study's reading of the paper's "divergent regime": the protocols' one-shot sets differ at every judged budget
# and the paired held-out cost ratio excludes 1 in the same direction at every one of them, by at least this factor
# at some budget ("several-fold" read as at least 2x).
DIVERGENT_FACTOR = 2.0
# The Jaccard means of the objective-vs-search claim carry no interval, so a difference counts only beyond this.
JACCARD_MARGIN = 0.05


def load(path: Path) -> Optional[dict]:
    return json.loads(path.read_text()) if path.exists() else None


def interval(low: Optional[float], high: Optional[float], digits: int = 3) -> str:
    return "-" if low is None or high is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def layers(values) -> str:
    return "{" + ", ".join(f"L{v:02d}" for v in values) + "}"


def agreement_rows(audits: dict) -> list[str]:
    rows = [
        "| model | pairs | tokens | Spearman(R, I) [95%] | Kendall [95%] | median I/R, d=1 [95%] | I < R at d=1 | "
        "median R, d=1 / all pairs | Spearman(distance, median I/R) | noise floor |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, audit in audits.items():
        s = audit["summary"]
        by_distance = s["ratio_by_distance"]
        d1 = by_distance[0]
        trend = _spearman([b["distance"] for b in by_distance], [b["median_ratio"] for b in by_distance])
        r_d1 = np.median([p["replacement"] for p in audit["pairs"] if p["j"] - p["i"] == 1])
        r_all = np.median([p["replacement"] for p in audit["pairs"]])
        rows.append(
            f"| {name} | {len(audit['pairs'])} | {audit['data']['n_sequences']} x {audit['data']['seq_len']} | "
            f"{s['spearman']:.3f} {interval(*s['spearman_ci'])} | {s['kendall']:.3f} {interval(*s['kendall_ci'])} | "
            f"{d1['median_ratio']:.2f} {interval(*d1['ci'], digits=2)} | {d1['share_interchange_below']:.0%} | "
            f"{r_d1:.2f} / {r_all:.2f} | {trend:+.2f} | {audit['noise_floor']:.4f} |"
        )
    return rows


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def topk_rows(audits: dict) -> list[str]:
    rows = [
        "| model | k | replacement's set | interchange's set | Jaccard [95%] | set recurs: R / I |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, audit in audits.items():
        for t in audit["summary"]["topk"]:
            rows.append(
                f"| {name} | {t['k']} | {layers(t['replacement_layers'])} | {layers(t['interchange_layers'])} | "
                f"{t['jaccard']:.2f} {interval(*t['jaccard_ci'], digits=2)} | "
                f"{t['stability']['replacement']:.0%} / {t['stability']['interchange']:.0%} |"
            )
    return rows


def verdict_rows(audits: dict) -> list[str]:
    rows = [
        "| model | k | replacement's set | interchange's set | held-out KL: R / I | verdict | ratio R/I [95%] |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, audit in audits.items():
        budgets = {b["k"]: b for b in audit["pruning"]["budgets"]}
        for v in audit["pruning"]["verdict"]:
            b = budgets[v["k"]]
            kl = b["heldout_kl"]
            ratio = "-" if v["safer"] == "same set" else f"{v['ratio']:.2f} {interval(*v['ratio_ci'], digits=2)}"
            rows.append(
                f"| {name} | {v['k']} | {layers(b['sets']['replacement'])} | {layers(b['sets']['interchange'])} | "
                f"{kl['replacement']:.3f} / {kl['interchange']:.3f} | {_safer(v['safer'])} | {ratio} |"
            )
    return rows


def _safer(safer: str) -> str:
    return {"replacement": "replacement-guided safer", "interchange": "interchange-guided safer"}.get(safer, safer)


def divergent(audit: dict) -> tuple[bool, str]:
    verdicts = audit["pruning"]["verdict"]
    directions = {v["safer"] for v in verdicts}
    factors = [max(v["ratio"], 1 / v["ratio"]) for v in verdicts if v["safer"] in ("replacement", "interchange")]
    largest = max(factors) if factors else 1.0
    one_way = len(directions) == 1 and directions <= {"replacement", "interchange"}
    held = one_way and largest >= DIVERGENT_FACTOR
    why = f"verdicts {', '.join(_safer(v['safer']) for v in verdicts)}; largest factor {largest:.2f}x"
    return held, why


def beam_rows(guided: dict) -> tuple[list[str], dict]:
    """The protocol-guided beams against each other, read through the exhaustive set: where one beam found the
    exhaustive set, the other's paired ratio to it is a paired comparison of the two beams."""
    rows = [
        "| model | objective | k | replacement-guided beam | interchange-guided beam | SLEB greedy | "
        "beams compared (paired, held-out) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    tally: dict = {}
    for name, doc in guided.items():
        results = doc["prune"]["results"]
        for objective in ("kl", "ppl"):
            for k in sorted({r["k"] for r in results if r["objective"] == objective}):
                pick = {(r["search"], r["guide"]): r for r in results if r["objective"] == objective and r["k"] == k}
                beam_r, beam_i, greedy = (
                    pick[("beam", "replacement")],
                    pick[("beam", "interchange")],
                    pick[("greedy", "-")] if ("greedy", "-") in pick else pick.get(("greedy", None)),
                )
                verdict = _beams(beam_r, beam_i, objective)
                tally.setdefault(name, []).append(verdict)
                rows.append(
                    f"| {name} | {objective} | {k} | {_cell(beam_r, objective)} | {_cell(beam_i, objective)} | "
                    f"{_cell(greedy, objective)} | {verdict} |"
                )
    return rows, tally


def _vs_best(result: dict, objective: str) -> dict:
    return result["heldout"]["vs_best"]


def _cell(result: Optional[dict], objective: str) -> str:
    if result is None:
        return "-"
    v = _vs_best(result, objective)
    if v["same_set"]:
        return f"{layers(result['layers'])} = exhaustive"
    return f"{layers(result['layers'])} {v['ratio']:.2f} {interval(v['ratio_low'], v['ratio_high'], digits=2)}"


def _beams(beam_r: dict, beam_i: dict, objective: str) -> str:
    if sorted(beam_r["layers"]) == sorted(beam_i["layers"]):
        return "same set"
    r, i = _vs_best(beam_r, objective), _vs_best(beam_i, objective)
    for this, other, label in ((r, i, "replacement"), (i, r, "interchange")):
        if this["same_set"]:  # the other's ratio to the exhaustive set is its ratio to this beam's set
            verdict = other.get("verdict_adjusted") or other["verdict"]  # adjusted across the file where recorded
            if verdict == "A cheaper":
                return (
                    f"{'interchange' if label == 'replacement' else 'replacement'}-guided safer, "
                    f"{1 / other['ratio']:.2f}x [{1 / other['ratio_high']:.2f}, {1 / other['ratio_low']:.2f}]"
                )
            if verdict == "B cheaper":
                return (
                    f"{label}-guided safer, {other['ratio']:.2f}x [{other['ratio_low']:.2f}, {other['ratio_high']:.2f}]"
                )
            return verdict  # equivalent or undecided ("indistinguishable" in files before the equivalence test)
    return "not compared (neither found the exhaustive set)"


def ceiling_rows(study: Path) -> list[str]:
    rows = [
        "| model | ceiling (calibration ppl) | search | guide | layers removed | set | calibration ppl | "
        "held-out ppl [95%] |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    found = False
    for name in MODELS:
        for ceiling in (10, 25, 50):
            doc = load(study / f"ceiling_{name}_{ceiling}.json")
            if doc is None:
                continue
            found = True
            for r in doc["prune"]["results"]:
                # nothing removable within the ceiling: the full model, whose held-out cost is the base's
                full = {"cost": doc["prune"]["base"]["ppl"]["heldout"], "low": None, "high": None}
                h = r["heldout"].get("ppl") or full
                rows.append(
                    f"| {name} | +{ceiling}% (<= {doc['settings']['ceilings']['ppl']:.1f}) | {r['search']} | "
                    f"{r['guide']} | {r['k']} | {layers(r['layers'])} | {r['cost']:.1f} | "
                    f"{h['cost']:.1f} {interval(h['low'], h['high'], digits=1)} |"
                )
    return rows if found else ["(not run: `scripts/paper_study.sh ceilings` writes ceiling_*.json)"]


def ceiling_summary(study: Path) -> list[str]:
    """One row per model and ceiling: how many layers each search x guide removed, with its held-out perplexity."""
    columns = [("one-shot", "replacement"), ("one-shot", "interchange"), ("beam", "replacement"),
               ("beam", "interchange"), ("beam", "block_influence"), ("beam", "angular"), ("greedy", "-")]
    heads = [f"{search} {guide}".replace(" -", " (SLEB)") for search, guide in columns]
    rows = ["| model | ceiling | " + " | ".join(heads) + " |", "| --- | --- |" + " --- |" * len(heads)]
    for name in MODELS:
        for ceiling in (10, 25, 50):
            doc = load(study / f"ceiling_{name}_{ceiling}.json")
            if doc is None:
                continue
            found = {(r["search"], r["guide"]): r for r in doc["prune"]["results"]}
            cells = []
            for key in columns:
                r = found.get(key)
                ppl = (r["heldout"].get("ppl") or {}).get("cost") if r else None
                cells.append("-" if r is None else f"{r['k']}" + (f" ({ppl:.1f})" if ppl is not None else ""))
            rows.append(f"| {name} | +{ceiling}% | " + " | ".join(cells) + " |")
    return rows


def slot_rows(layer: dict, slot: dict) -> tuple[list[str], bool]:
    same_topk = all(
        a["replacement_layers"] == b["replacement_layers"] and a["interchange_layers"] == b["interchange_layers"]
        for a, b in zip(layer["summary"]["topk"], slot["summary"]["topk"])
    )
    same_sets = all(
        a["sets"]["replacement"] == b["sets"]["replacement"] and a["sets"]["interchange"] == b["sets"]["interchange"]
        for a, b in zip(layer["pruning"]["budgets"], slot["pruning"]["budgets"])
    )
    same_verdicts = [a["safer"] for a in layer["pruning"]["verdict"]] == [
        b["safer"] for b in slot["pruning"]["verdict"]
    ]
    ranks_r = _spearman([p["replacement"] for p in layer["pairs"]], [p["replacement"] for p in slot["pairs"]])
    ranks_i = _spearman([p["interchange"] for p in layer["pairs"]], [p["interchange"] for p in slot["pairs"]])
    rows = [
        "| reading | Spearman(R, I) [95%] | median I/R, d=1 | top-k sets k=1..4 | pruning sets and verdicts k=1..4 |",
        "| --- | --- | --- | --- | --- |",
    ]
    same = ("same as layer" if same_topk else "differ", "same as layer" if same_sets and same_verdicts else "differ")
    readings = (("layer (own type)", layer, ("-", "-")), ("slot (the slot's type)", slot, same))
    for label, doc, (topk, pruning) in readings:
        s = doc["summary"]
        rows.append(
            f"| {label} | {s['spearman']:.3f} {interval(*s['spearman_ci'])} | "
            f"{s['ratio_by_distance'][0]['median_ratio']:.3f} | {topk} | {pruning} |"
        )
    rows.append("")
    rows.append(f"Spearman of the two readings' R over the pairs {ranks_r:.4f}, of their I {ranks_i:.4f}.")
    return rows, same_topk and same_sets and same_verdicts


def trajectory_rows(summary: dict) -> tuple[list[str], dict]:
    rows = [
        "| statistic | the paper's gap grows when it goes | init, mean of seeds | best, mean of seeds | "
        "change best - init [95% t] | seeds: grows / shrinks | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_row = {r["checkpoint"]: r for r in summary["rows"]}
    for stat, change in summary["init_to_best"].items():
        a, b, across = by_row["init"][stat], by_row["best"][stat], change["across_seeds"]
        rows.append(
            f"| {stat} | {change['grows_when']} | {a['mean']:.3f} | {b['mean']:.3f} | {across['mean']:+.3f} "
            f"{interval(*across['t_ci'])} | {change['seeds_grows']} / {change['seeds_shrinks']} of "
            f"{len(change['per_seed'])} | {change['verdict']} |"
        )
    return rows, summary["init_to_best"]


def claim_rows(
    audits: dict, study: Path, beam_tally: dict, slot_same: bool, trajectory: dict, guided: dict
) -> list[str]:
    rows = ["| claim (paper) | measured here | model | holds? |", "| --- | --- | --- | --- |"]
    for name, audit in audits.items():
        verdicts = audit["pruning"]["verdict"]
        sets_differ = sum(v["safer"] != "same set" for v in verdicts)
        jac = {t["k"]: t["jaccard"] for t in audit["summary"]["topk"]}
        rows.append(
            f"| The protocols can disagree about which layers are safe to prune (No Free Swap) | one-shot sets "
            f"differ at {sets_differ} of {len(verdicts)} budgets; top-k Jaccard "
            f"{', '.join(f'k={k}: {j:.2f}' for k, j in jac.items())} | {name} | "
            f"{'holds' if sets_differ else 'fails'} |"
        )
    for name, audit in audits.items():
        inter = [v for v in audit["pruning"]["verdict"] if v["safer"] == "interchange"]
        repl = [v for v in audit["pruning"]["verdict"] if v["safer"] == "replacement"]
        several = [v for v in inter if 1 / v["ratio"] >= DIVERGENT_FACTOR]
        rows.append(
            f"| Interchange-guided removal is several-fold safer than replacement-guided at the same budgets "
            f"(Qwen3-8B) | one-shot: interchange safer at {len(inter)}, replacement safer at {len(repl)} of "
            f"{len(audit['pruning']['verdict'])} budgets; guided beams: {_tally(beam_tally.get(name, []))} | "
            f"{name} | {'holds' if several else 'fails'} |"
        )
    for name, audit in audits.items():
        held, why = divergent(audit)
        rows.append(
            f'| A model can be in a "divergent regime", especially when replacement distances are high | '
            f"{why}; median R over all pairs {np.median([p['replacement'] for p in audit['pairs']]):.2f} | {name} | "
            f"{'divergent' if held else 'not divergent'} by the study's reading |"
        )
    for name, audit in audits.items():
        d1 = audit["summary"]["ratio_by_distance"][0]["median_ratio"]
        ties = [v for v in audit["pruning"]["verdict"] if v["safer"] == "same set"]
        flips = len({v["safer"] for v in audit["pruning"]["verdict"]} - {"same set"}) > 1
        opposite = all(v["safer"] == "replacement" for v in audit["pruning"]["verdict"])
        holds = d1 < 1 and (flips or opposite or ties)
        rows.append(
            f"| A metric gap need not map to a removal gap (Llama-3.1-8B: interchange KL lower, pruning tied) | "
            f"median I/R at d=1 {d1:.2f} (interchange lower); one-shot verdicts "
            f"{', '.join(_safer(v['safer']) for v in audit['pruning']['verdict'])} | {name} | "
            f"{'holds' if holds else 'fails'} |"
        )
    for name, audit in audits.items():
        meds = [b["median_ratio"] for b in audit["summary"]["ratio_by_distance"]]
        trend = _spearman(range(len(meds)), meds)
        rows.append(
            f"| The median I/R increases with layer distance (appendix, both positional-encoding families) | "
            f"Spearman(distance, median I/R) {trend:+.2f}; d=1 {meds[0]:.2f}, largest distance {meds[-1]:.2f} | "
            f"{name} | {'holds' if trend > 0.5 else 'fails'} |"
        )
    for stat, label in (
        ("median_ratio_d1", "median I/R at d=1"),
        ("log_mean_ratio", "ln(mean R / mean I), all pairs"),
        ("spearman", "Spearman(R, I)"),
    ):
        change = trajectory.get(stat)
        if change is None:
            continue
        across = change["across_seeds"]
        holds = {"grows": "holds", "shrinks": "fails"}.get(change["verdict"], "not distinguishable")
        rows.append(
            f"| The replacement-interchange gap grows from initialization to convergence (Pythia) | {label}: "
            f"change {across['mean']:+.3f} {interval(*across['t_ci'])} across seeds, the gap grows in "
            f"{change['seeds_grows']} of {len(change['per_seed'])} seeds | own GPT-NeoX, 12 layers, 3 seeds | "
            f"{holds} |"
        )
    for name, doc in guided.items():
        jac = {j["k"]: j for j in doc["prune"]["jaccard"]}
        spread = doc["prune"].get("spearman_ppl_accuracy") or []
        if not spread:
            continue
        pairs = [(j["within_objective"], j["across_objectives"]) for j in jac.values()]
        above = sum(w > a + JACCARD_MARGIN for w, a in pairs)
        verdict = "holds" if above == len(pairs) else ("fails" if above == 0 else "mixed")
        rows.append(
            f"| The calibration objective decides which layers look redundant more than the search does "
            f"(Rethinking Layer Redundancy): sets agree more within one objective than across objectives | "
            f"mean Jaccard within / across, per k: {', '.join(f'{w:.2f} / {a:.2f}' for w, a in pairs)} (point "
            f"estimates over 21 search x guide runs, no interval) | {name} | {verdict} (within above across by more "
            f"than {JACCARD_MARGIN} at {above} of {len(pairs)} k) |"
        )
        rho = [(s["k"], s["spearman"], s["low"], s["high"]) for s in spread]
        agree = all(low > 0 for _, _, low, _ in rho)
        rows.append(
            f"| Perplexity and accuracy rankings of candidate sets often disagree | Spearman of ppl rank vs error "
            f"rank over every k-set: {', '.join(f'k={k}: {r:+.2f} [{lo:+.2f}, {hi:+.2f}]' for k, r, lo, hi in rho)}"
            f" | {name} | {'fails: they agree (every interval above 0)' if agree else 'holds at some k'} |"
        )
    rows.append(
        f"| (Gemma-3) the attention-type reading of a moved layer changes the answer | see the attention-type table | "
        f"gemma3-270m | {'no change in sets or verdicts' if slot_same else 'changes sets or verdicts'} |"
    )
    for name in MODELS:
        counts = []
        for ceiling in (10, 25, 50):
            doc = load(study / f"ceiling_{name}_{ceiling}.json")
            if doc is not None:
                found = {(r["search"], r["guide"]): r["k"] for r in doc["prune"]["results"]}
                counts.append((ceiling, found[("beam", "interchange")], found[("greedy", "-")]))
        if counts:
            fewer = sum(i < g for _, i, g in counts)
            rows.append(
                "| Under a perplexity budget the interchange-guided beam stops earlier than SLEB's greedy "
                "(\"interchange-beam stops at 6 layers\") | layers removed, interchange beam / SLEB: "
                + ", ".join(f"+{c}%: {i} / {g}" for c, i, g in counts)
                + f" | {name} | {'holds' if fewer else 'fails'} ({fewer} of {len(counts)} ceilings) |"
            )
    return rows


def _tally(verdicts: list[str]) -> str:
    if not verdicts:
        return "not run"
    counts: dict = {}
    for v in verdicts:
        key = v.split(",")[0]
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key} {n}" for key, n in sorted(counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", type=Path, default=Path("benchmarks/results/study"))
    parser.add_argument("--trajectory", type=Path, default=Path("benchmarks/results/trajectory/summary.json"))
    args = parser.parse_args()
    audits = {name: load(args.study / f"{name}_audit.json") for name in MODELS}
    audits = {name: doc for name, doc in audits.items() if doc is not None}
    guided = {name: load(args.study / f"guided_{name}.json") for name in MODELS}
    guided = {name: doc for name, doc in guided.items() if doc is not None}
    guided_k4 = {name: load(args.study / f"guided_{name}-k4.json") for name in MODELS}
    beams_from = {name: guided_k4.get(name) or guided[name] for name in guided}
    slot = load(args.study / "gemma3-270m-slot_audit.json")
    trajectory = load(args.trajectory)

    out = [
        "# The reproduction study's numbers (`python scripts/study_claims.py`)",
        "",
        "## Agreement of the protocols, all pairs",
        "",
        *agreement_rows(audits),
        "",
        "## Top-k removal sets of the two protocols (the audit's reading: pair scores walked to a layer set)",
        "",
        *topk_rows(audits),
        "",
        "## Paired pruning verdicts of the one-shot sets, on held-out text",
        "",
        *verdict_rows(audits),
        "",
        "## Protocol-guided beams against each other (through the exhaustive set)",
        "",
    ]
    rows, tally = beam_rows(beams_from)
    out += [
        *rows,
        "",
        "## Under calibration-perplexity ceilings (the number removed is the outcome)",
        "",
        "Layers removed (held-out perplexity of the set):",
        "",
        *ceiling_summary(args.study),
        "",
        "Every run:",
        "",
        *ceiling_rows(args.study),
        "",
    ]
    slot_same = False
    if slot is not None and "gemma3-270m" in audits:
        rows, slot_same = slot_rows(audits["gemma3-270m"], slot)
        out += ["## Gemma-3-270M: a moved layer's attention type", "", *rows, ""]
    found = {}
    if trajectory is not None:
        rows, found = trajectory_rows(trajectory)
        out += ["## Training trajectory (own model, 3 seeds, init to the early-stopped best)", "", *rows, ""]
    out += ["## One row per claim", "", *claim_rows(audits, args.study, tally, slot_same, found, guided), ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
