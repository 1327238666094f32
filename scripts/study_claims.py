"""The reproduction study's per-claim tables, computed from the files the study wrote (issues 17 and 34).

Reads the audit documents, guided-removal and ceiling JSON under benchmarks/results/study/ and the trajectory
summary under benchmarks/results/trajectory/, and prints Markdown: the agreement statistics per model, the top-k
sets, the paired pruning verdicts, the guided beams against each other, the ceilings, the attention-type reading,
the trajectory at every saved checkpoint and one row per claim of the two papers: its statistical test, margin,
error rate, what was measured and the verdict that test gives (scripts/claim_tests.py), never a point estimate's.
Every verdict is computed here from the numbers, never typed, so docs/reproduction.md can quote this output and a
rerun of the study updates it; the first argument names another results folder (the same file names).

    PYTHONPATH=. python scripts/study_claims.py [STUDY_DIR] > benchmarks/results/study/claims.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import claim_tests  # scripts/: the test behind each claim
import numpy as np
import trajectory_stats  # scripts/: per-checkpoint tables and the trend over checkpoints

from pytest_swapkl.options import OPTIONS

MODELS = {"smollm2-135m": "SmolLM2-135M", "gemma3-270m": "Gemma-3-270M"}
# "Several-fold" read as at least 2x, and the "divergent regime" as every budget's paired verdict pointing one way
# with the largest factor's interval above it. A convention: each row quotes that interval, so where the reading
# would flip is in plain view (Gemma-3's largest factor sits below 2 with its whole interval).
DIVERGENT_FACTOR = 2.0
# The suite's defaults: the per-pair rank tolerance (a share of the pairs) and the minimum Spearman(R, I).
RANK_TOLERANCE = next(o.default for o in OPTIONS if o.name == "rank_tolerance")[0]
MIN_SPEARMAN = next(o.default for o in OPTIONS if o.name == "min_spearman")
FACTOR_RATE = ("the largest factor's interval, Bonferroni over the budgets where per-sequence costs allow (family-wise "
               "5%), else its own 95% (unadjusted)")


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
        "| model | k | replacement's set | interchange's set | held-out KL: R / I | verdict | ratio R/I [95%] | "
        "read from |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, audit in audits.items():
        budgets = {b["k"]: b for b in audit["pruning"]["budgets"]}
        family, rate = claim_tests.protocol_tests(audit)
        for t in family:
            b = budgets[t.k]
            kl = b["heldout_kl"]
            ratio = "-" if t.safer == "same set" else f"{t.ratio:.2f} {interval(t.low, t.high, digits=2)}"
            rows.append(
                f"| {name} | {t.k} | {layers(b['sets']['replacement'])} | {layers(b['sets']['interchange'])} | "
                f"{kl['replacement']:.3f} / {kl['interchange']:.3f} | {_safer(t.safer)} | {ratio} | "
                f"{t.source}; {rate} |"
            )
    return rows


def _safer(safer: str) -> str:
    return {"replacement": "replacement-guided safer", "interchange": "interchange-guided safer"}.get(safer, safer)


def divergent(family: list) -> tuple[str, str]:
    """The "divergent regime" of one model's one-shot verdicts (claim_tests.ProtocolTest, Holm-adjusted where the file
    allows): every budget's verdict a direction and the same one (intersection-union: no adjustment needed for
    "every"), and the largest factor's interval above DIVERGENT_FACTOR; "undecided" where that interval straddles it."""
    directions = {t.safer for t in family}
    one_way = len(directions) == 1 and directions <= {"replacement", "interchange"}
    reading, why = claim_tests.several_fold(family, DIVERGENT_FACTOR)
    if not one_way:
        return "not divergent", why
    return {"holds": "divergent", "undecided": "undecided"}.get(reading, "not divergent"), why


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
    """Every saved checkpoint of every seed: the across-seed mean of each gap statistic [95% t] and its change from
    init [95% t]; then the trend over all checkpoints (per seed: Spearman against the step with its exact
    permutation p; across seeds: mean Spearman [95% t] and the t-test p, Holm across the three statistics)."""
    names = list(trajectory_stats.GROWS_WHEN)
    tables = {name: trajectory_stats.checkpoint_table(summary["seeds"], name) for name in names}
    rows = ["| checkpoint | steps | " + " | ".join(f"{n} [95% t] / change from init [95% t]" for n in names) + " |",
            "| --- | --- |" + " --- |" * len(names)]
    for position in range(len(tables[names[0]])):
        first = tables[names[0]][position]
        label = "init" if position == 0 else "best" if position == len(tables[names[0]]) - 1 else first["steps"][0]
        cells = []
        for name in names:
            row = tables[name][position]
            cells.append(f"{row['value']['mean']:.3f} {interval(*row['value']['t_ci'])} / "
                         f"{row['change']['mean']:+.3f} {interval(*row['change']['t_ci'])}")
        rows.append(f"| {label} | {','.join(map(str, first['steps']))} | " + " | ".join(cells) + " |")
    trends = {name: trajectory_stats.trend(summary["seeds"], name) for name in names}
    adjusted = claim_tests.holm([trends[name]["p"] for name in names])
    rows += ["", "| statistic | gap grows when it goes | per seed: Spearman vs step (exact p) | across seeds: mean "
             "Spearman [95% t] | t-test p / Holm p | verdict (Holm, family-wise 5%) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, p_holm in zip(names, adjusted):
        t = trends[name]
        t["p_holm"] = p_holm
        t["verdict"] = _trend_verdict(t)
        across = t["across_seeds"]
        rows.append(
            f"| {name} | {t['grows_when']} | "
            + ", ".join(f"{s['spearman']:+.2f} ({s['p']:.3f})" for s in t["per_seed"])
            + f" | {across['mean']:+.3f} {interval(*across['t_ci'])} | {t['p']:.3f} / {p_holm:.3f} | {t['verdict']} |"
        )
    return rows, trends


def _trend_verdict(trend: dict) -> str:
    if trend["p_holm"] is None or trend["p_holm"] >= claim_tests.ALPHA:
        return "not distinguishable"
    rising = trend["across_seeds"]["mean"] > 0
    return "grows" if rising == (trend["grows_when"] == "up") else "shrinks"


TEST_HEAD = ["| claim (paper) | test | margin | error rate | measured here | model | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]


def _row(claim: str, test: str, margin: str, rate: str, measured: str, model: str, verdict: str) -> str:
    return f"| {claim} | {test} | {margin} | {rate} | {measured} | {model} | {verdict} |"


def _verdicts(tests: list) -> str:
    return ", ".join(f"k={t.k}: {_safer(t.safer)}" for t in tests)


def claim_rows(audits: dict, study: Path, beam_tally: dict, slot_same: Optional[bool], trends: dict,
               guided: dict) -> list[str]:
    """One row per claim and model: the test, its margin, its error rate, what was measured and the verdict the
    test gives (claim_tests.py). Rows whose old test was flawed say how the test changed (docs/reproduction.md)."""
    rows = list(TEST_HEAD)
    ks = {name: [t["k"] for t in audit["summary"]["topk"]] for name, audit in audits.items()}
    tests = {name: claim_tests.protocol_tests(audit) for name, audit in audits.items()}
    npz = {name: study / f"{name}_all.npz" for name in audits}
    dist = {name: claim_tests.distances(path, audits[name]["settings"].get("replacement_reduce", "mean"))
            for name, path in npz.items() if path.exists()}
    for name, audit in audits.items():
        sets_differ = sum(t.safer != "same set" for t in tests[name][0])
        if name in dist:
            surely = claim_tests.surely_different_topk(dist[name], ks[name])
            told = [k for k, found in surely.items() if found]
            measured = (f"one-shot sets differ at {sets_differ} of {len(tests[name][0])} budgets; layers surely in "
                        "one top-k and surely out of the other's: "
                        + ", ".join(f"k={k}: {layers(v) if v else '-'}" for k, v in surely.items()))
            verdict = f"holds (k = {', '.join(map(str, told))})" if told else "undecided (no k separates them)"
        else:
            measured, verdict = f"one-shot sets differ at {sets_differ} budgets (no per-sequence file)", "not tested"
        rows.append(_row("The protocols can disagree about which layers are safe to prune (No Free Swap)",
                         "simultaneous rank intervals of each layer's min-partner score (Mogstad et al.), both "
                         "protocols and every k jointly; bootstrap by sequence", "none",
                         "family-wise 5% (all layers, k and both protocols)", measured, name, verdict))
    for name, audit in audits.items():
        if name not in dist:
            continue
        spearman, (low, high) = audit["summary"]["spearman"], audit["summary"]["spearman_ci"]
        largest = audit["summary"]["topk"][-1]
        top = set(largest["replacement_layers"]) | set(largest["interchange_layers"])
        cases = claim_tests.rank_cases(dist[name], RANK_TOLERANCE, top)
        overall = "above" if low > MIN_SPEARMAN else "below" if high < MIN_SPEARMAN else "straddles"
        rows.append(_row(
            "The protocols rank the pairs differently (per-pair rank cases) yet alike overall (Spearman)",
            "per pair: simultaneous rank intervals of R and I (Mogstad et al.), bootstrap by sequence, a pair fails "
            f"when they lie more than {RANK_TOLERANCE:.0%} of the pairs apart (new row; tolerances.txt counts with "
            "per-pair 95% paired intervals, unadjusted over the n(n-1) comparisons); overall: Spearman's 95% "
            "interval against the suite's minimum",
            f"rank tolerance {RANK_TOLERANCE:.0%} ({cases['allowed']} ranks); Spearman {MIN_SPEARMAN}",
            "family-wise 5% over every pair and both protocols; Spearman 5%",
            f"{cases['failing']} of {cases['n_pairs']} pairs fail, {cases['touching_top']} of them touch a layer of "
            f"either protocol's top-{largest['k']} set {layers(sorted(top))}; Spearman {spearman:.3f} "
            f"{interval(low, high)} ({overall} {MIN_SPEARMAN})", name,
            f"{cases['failing']} pairs ranked apart ({cases['touching_top']} near the top-{largest['k']}); "
            f"overall {'alike' if overall == 'above' else 'not shown alike'}"))
    for name, audit in audits.items():
        family, rate = tests[name]
        inter = [t for t in family if t.safer == "interchange"]
        verdict, why = claim_tests.several_fold(inter, DIVERGENT_FACTOR)
        if not inter:
            verdict, why = "fails (interchange safer at no budget)", claim_tests.several_fold(family, 1.0)[1]
        rows.append(_row("Interchange-guided removal is several-fold safer than replacement-guided at the same "
                         "budgets (Qwen3-8B)", "paired bootstrap of held-out KL by sequence; direction and TOST per "
                         "budget; several-fold read from the factor's 95% interval against 2x",
                         f"TOST +-{_margin(audit):.0%}; factor 2.0", f"directions: {rate}; factor: {FACTOR_RATE}",
                         f"{_verdicts(family)}; interchange safer at {len(inter)}; {why}; guided beams: "
                         f"{_tally(beam_tally.get(name, []))}", name, verdict))
    for name, audit in audits.items():
        family, rate = tests[name]
        held, why = divergent(family)
        rows.append(_row('A model can be in a "divergent regime", especially when replacement distances are high',
                         "every budget's paired verdict the same way (intersection-union) and the largest factor's "
                         "95% interval above 2x; was: point factor >= 2.0 (Gemma-3's 1.91 sat beside it)",
                         "factor 2.0 (a convention: the lower end below says where the reading flips)",
                         f"directions: {rate}; factor: {FACTOR_RATE}",
                         f"{_verdicts(family)}; {why}; median R over all pairs "
                         f"{np.median([p['replacement'] for p in audit['pairs']]):.2f}", name, held))
    for name, audit in audits.items():
        family, rate = tests[name]
        d1 = audit["summary"]["ratio_by_distance"][0]
        lower = d1["ci"][1] < 1
        interchange_everywhere = all(t.safer == "interchange" for t in family)
        verdict = "holds" if lower and not interchange_everywhere else "fails" if lower else "not tested (no gap)"
        rows.append(_row("A metric gap need not map to a removal gap (Llama-3.1-8B: interchange KL lower, pruning "
                         "tied)", "median I/R at d=1: 95% bootstrap interval below 1; removal: the one-shot "
                         "verdicts not all interchange-safer", f"TOST +-{_margin(audit):.0%}", rate,
                         f"median I/R at d=1 {d1['median_ratio']:.2f} {interval(*d1['ci'], digits=2)}; "
                         f"{_verdicts(family)}", name, verdict))
    for name, audit in audits.items():
        if name not in dist:
            continue
        rho, low, high = claim_tests.distance_trend(dist[name])
        verdict = "holds" if low > 0 else "fails" if high < 0 else "undecided"
        rows.append(_row("The median I/R increases with layer distance (appendix, both positional-encoding "
                         "families)", "Spearman(distance, median I/R), 95% percentile interval over 1,000 "
                         "sequence resamples; was: point Spearman > 0.5", "none", "5% (one test per model)",
                         f"Spearman {rho:+.2f} {interval(low, high, digits=2)}", name, verdict))
    for name, trend in trends.items():
        across = trend["across_seeds"]
        rows.append(_row("The replacement-interchange gap grows from initialization to convergence (Pythia)",
                         "trend over every saved checkpoint: per seed Spearman of the statistic vs step; across "
                         "seeds one-sample t of the mean Spearman (3 seeds); was: init vs best only", "none",
                         "Holm across the 3 statistics (family-wise 5%)",
                         f"{name}: mean Spearman {across['mean']:+.3f} {interval(*across['t_ci'])}, p {trend['p']:.3f},"
                         f" Holm {trend['p_holm']:.3f}; gap grows when it goes {trend['grows_when']}",
                         "own GPT-NeoX, 12 layers, 3 seeds", trend["verdict"]))
    rows += _objective_rows(guided)
    if slot_same is not None:  # only where the slot reading's audit was run
        rows.append(_row("(Gemma-3) the attention-type reading of a moved layer changes the answer",
                         "exact comparison of the top-k sets, pruning sets and verdicts of the two readings (one "
                         "calibration draw)", "none", "none (no sampling test: a sensitivity reading)",
                         "see the attention-type table", "gemma3-270m",
                         "no change in sets or verdicts" if slot_same else "changes sets or verdicts"))
    rows += _ceiling_rows(study)
    return rows


def _margin(audit: dict) -> float:
    return audit["pruning"].get("equivalence_margin", claim_tests.MARGIN)


def _objective_rows(guided: dict) -> list[str]:
    """The second paper's two claims, with the tests issue 34 asked for: the objective-blind searches and random
    search left out of within/across, accuracy left out below 1,000 items, agreement judged against the suite's
    minimum Spearman rather than against 0."""
    threshold = MIN_SPEARMAN
    rows = []
    for name, doc in guided.items():
        items = doc.get("args", {}).get("items") or 0  # the task's items, half calibration and half held-out
        objectives = ("kl", "ppl", "accuracy") if items // 2 >= claim_tests.MIN_ACCURACY_ITEMS else ("kl", "ppl")
        results = doc["prune"]["results"]
        found = [t for k in sorted({r["k"] for r in results})
                 if (t := claim_tests.objective_test(results, objectives, k)) is not None]
        if found:
            above = [t["low"] > 0 for t in found]
            below = [t["high"] < 0 for t in found]
            verdict = "holds" if all(above) else "fails" if all(below) else \
                f"mixed (above 0 at {sum(above)}, below at {sum(below)} of {len(found)} k)" if any(above + below) \
                else "undecided (no k's interval excludes 0)"
            effect = claim_tests.holm([t["p"] for t in found])
            rows.append(_row(
                "The calibration objective decides which layers look redundant more than the search does "
                "(Rethinking Layer Redundancy): sets agree more within one objective than across objectives",
                f"mean Jaccard within minus across over the {found[0]['n_combos']} objective-aware search x guide "
                f"runs ({', '.join(objectives)}), 95% bootstrap over runs; beside it an exact permutation test of "
                "the objective labels; was: all 21 runs incl. one-shot and random, accuracy included whatever its "
                "item count, point means", "none",
                "each k at 5% (verdict needs every k: intersection-union); permutation p Holm across k",
                "; ".join(f"k={t['k']}: {t['within']:.2f} - {t['across']:.2f} = {t['difference']:+.2f} "
                          f"{interval(t['low'], t['high'], digits=2)}, Holm p {p:.3f}" for t, p in zip(found, effect)),
                name, verdict))
        spread = doc["prune"].get("spearman_ppl_accuracy") or []
        if spread:
            reading, why = claim_tests.correlation_test(spread, threshold)
            verdict = {"agree": "fails (they agree)", "disagree": "holds", "mixed": "undecided"}[reading]
            if items // 2 < claim_tests.MIN_ACCURACY_ITEMS:
                verdict += f"; accuracy on {items // 2} items is noisy, which lowers rho"
            rows.append(_row(
                "Perplexity and accuracy rankings of candidate sets often disagree",
                f"Spearman of ppl rank vs error rank over every k-set, 95% interval against the suite's minimum "
                f"Spearman {threshold}; was: against 0", f"rho {threshold}",
                "each k at 5% (every k: intersection-union)",
                ", ".join(f"k={s['k']}: {s['spearman']:+.2f} [{s['low']:+.2f}, {s['high']:+.2f}]" for s in spread)
                + f" ({why})", name, verdict))
    return rows


def _ceiling_rows(study: Path) -> list[str]:
    rows = []
    for name in MODELS:
        counts = []
        for ceiling in (10, 25, 50):
            doc = load(study / f"ceiling_{name}_{ceiling}.json")
            if doc is not None:
                found = {(r["search"], r["guide"]): r["k"] for r in doc["prune"]["results"]}
                counts.append((ceiling, found[("beam", "interchange")], found[("greedy", "-")]))
        if counts:
            fewer = sum(i < g for _, i, g in counts)
            rows.append(_row(
                "Under a perplexity budget the interchange-guided beam stops earlier than SLEB's greedy "
                "(\"interchange-beam stops at 6 layers\")", "count of layers removed within each calibration "
                "ceiling (one calibration draw)", "ceilings +10/25/50%", "none (a count on one draw, no sampling "
                "test)", "layers removed, interchange beam / SLEB: "
                + ", ".join(f"+{c}%: {i} / {g}" for c, i, g in counts), name,
                f"{'holds' if fewer else 'fails'} ({fewer} of {len(counts)} ceilings)"))
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
    parser.add_argument("study_dir", type=Path, nargs="?", help="results folder (default benchmarks/results/study)")
    parser.add_argument("--study", type=Path, default=Path("benchmarks/results/study"))
    parser.add_argument("--trajectory", type=Path, default=Path("benchmarks/results/trajectory/summary.json"))
    args = parser.parse_args()
    if args.study_dir is not None:
        args.study = args.study_dir
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
    slot_same = None
    if slot is not None and "gemma3-270m" in audits:
        rows, slot_same = slot_rows(audits["gemma3-270m"], slot)
        out += ["## Gemma-3-270M: a moved layer's attention type", "", *rows, ""]
    found = {}
    if trajectory is not None:
        rows, found = trajectory_rows(trajectory)
        out += ["## Training trajectory (own model, 3 seeds, every saved checkpoint)", "", *rows, ""]
    out += ["## One row per claim", "", *claim_rows(audits, args.study, tally, slot_same, found, guided), ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
