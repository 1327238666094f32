"""The replacement-vs-interchange pruning verdicts before and after issue 15, from audit JSON files.

    python benchmarks/pruning/pruning_verdicts.py AFTER.json [AFTER.json ...] [--before BEFORE.json ...]

An audit JSON written since issue 15 holds both sides: the calibration costs (`kl`) the old rule read, and the
held-out costs with the paired comparison the new rule reads. "Before" is recomputed from the calibration
costs by the old rule (the lower calibration KL is safer, by the factor of the two; a "tie" only where the two
KLs are exactly equal); "after" is the paired verdict on held-out per-sequence KLs with the ratio's 95%
interval. With --before (JSON files written by the code before issue 15, same settings), their own verdicts
are checked against the recomputed ones, so the "before" column is what that code printed.
"""

from __future__ import annotations

import argparse
import json
import sys

from tabulate import tabulate


def old_verdict(budget: dict) -> tuple[str, str]:
    sets, kl = budget["sets"], budget["kl"]
    if sets.get("replacement") is None or sets.get("interchange") is None:
        return "-", "-"
    if sets["replacement"] == sets["interchange"]:
        return "same set", "-"
    r, i = kl["replacement"], kl["interchange"]
    safer, other = (("replacement", "interchange") if r < i else ("interchange", "replacement"))
    label = "tie" if r == i else safer
    factor = kl[other] / kl[safer] if kl[safer] > 0 else float("inf")
    return label, f"{factor:.2f}"


def new_verdict(document: dict, k: int) -> tuple[str, str]:
    verdict = next((v for v in document["pruning"]["verdict"] if v["k"] == k), None)
    if verdict is None:
        return "-", "-"
    if verdict["safer"] == "same set":
        return "same set", "-"
    low, high = verdict["ratio_ci"]
    return verdict["safer"], f"{verdict['ratio']:.2f} [{low:.2f}, {high:.2f}]" if low is not None else "n/a"


def layers(values) -> str:
    return "-" if values is None else "{" + ", ".join(f"L{v:02d}" for v in values) + "}"


def rows(document: dict) -> list:
    out = []
    for budget in document["pruning"]["budgets"]:
        k = budget["k"]
        before, factor = old_verdict(budget)
        after, ratio = new_verdict(document, k)
        r, i = budget["kl"].get("replacement"), budget["kl"].get("interchange")
        hr, hi = budget["heldout_kl"].get("replacement"), budget["heldout_kl"].get("interchange")
        out.append([document["model"]["name"], k, layers(budget["sets"].get("replacement")),
                    layers(budget["sets"].get("interchange")), f"{r:.4f} / {i:.4f}", before, factor,
                    f"{hr:.4f} / {hi:.4f}", after, ratio])
    return out


def check_before(before: dict, after: dict) -> None:
    """The old code's own verdicts equal the ones recomputed here from the new JSON's calibration costs."""
    recomputed = {b["k"]: old_verdict(b)[0] for b in after["pruning"]["budgets"]}
    for verdict in before["pruning"]["verdict"]:
        if recomputed.get(verdict["k"]) != verdict["safer"]:
            sys.exit(f"{before['model']['name']} k={verdict['k']}: the old code said {verdict['safer']}, "
                     f"recomputed {recomputed.get(verdict['k'])}: the runs differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("after", nargs="+")
    parser.add_argument("--before", nargs="*", default=[])
    args = parser.parse_args()
    documents = [json.load(open(path)) for path in args.after]
    for path in args.before:
        before = json.load(open(path))
        match = next(d for d in documents if d["model"]["name"] == before["model"]["name"])
        check_before(before, match)
    table = [row for document in documents for row in rows(document)]
    print(tabulate(table, headers=["model", "k", "replacement removes", "interchange removes",
                                   "calib. KL R / I", "before: safer", "KL factor", "held-out KL R / I",
                                   "after: paired verdict", "ratio R/I [95% CI]"], disable_numparse=True))
    for document in documents:
        heldout, noise = document["heldout"], document.get("noise") or {}
        print(f"\n{document['model']['name']}: calibration {document['data']['n_sequences']} x "
              f"{document['data']['seq_len']} of {document['data']['source']}; held-out {heldout['n_sequences']} x "
              f"{heldout['seq_len']} of {heldout['source']} (sha256 {heldout['sha256'][:12]}); noise floor "
              f"{noise.get('floor')} ({noise.get('what')}, {noise.get('seconds')} s)")


if __name__ == "__main__":
    main()
