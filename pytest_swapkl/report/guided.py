"""A guided-removal study (`swapkl prune --json`, `benchmarks/pruning/guided_removal.py`) as `swapkl report` input.

    study = read_study(document, "guided.json")    # GuidedStudy, or a one-line JunitError
    cost_rows(study, "kl")                          # search x guide rows, one cell per budget k

Both writers put the study under ``prune`` (n_layers, base, results: one entry per search x guide x objective x
k with its set and held-out costs, ``vs_best`` the paired comparison with the exhaustive set, its p-values and
its verdict adjusted across the file; ``verdicts`` the equivalence margin, the adjustment and the bootstrap draws;
``heldout_units`` every set's held-out cost per unit, from which each verdict recomputes); they differ in
the header (a model record and ``schema: swapkl-prune/1``, or a model string and the script's ``args``).
Every field the report reads is checked before use, so a damaged file is an input error, not a traceback.
No torch, no numpy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from ..cases import layer_set_label
from ..console import number
from ..limits import MAX_LAYERS
from .junit import JunitError

# The paired test's verdict on a set (A) against the exhaustive set (B), as guided_*.md marks it ("indistinguishable":
# files written before the equivalence test).
VERDICT_MARK = {"A cheaper": "-", "B cheaper": "+", "equivalent": "~", "undecided": "?", "indistinguishable": "~"}
MARKS = ("= the exhaustive set itself, ~ equivalent to it (within the margin), ? undecided, + dearer, - cheaper on "
         "held-out data (the searches chose on calibration data)")
MULTIPLICITY = ("holm", "bh", "none")  # analysis/multiplicity.METHODS, named here without importing numpy
UNITS = {"kl": "KL (nats)", "ppl": "perplexity", "accuracy": "error rate"}
FIX = "pass the JSON written by swapkl prune --json or benchmarks/pruning/guided_removal.py"
# Names of searches, guides and objectives (lm-eval:TASK too): plain words, so a figure's legend never meets
# matplotlib's $...$ mathtext or a name of thousands of characters from a crafted file.
NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_LINES = 16  # lines in one figure: more would be a legend nobody reads


@dataclass(frozen=True)
class Run:
    """One search x guide x objective x k: the set it removed and that set's held-out costs."""

    search: str
    guide: str
    objective: str
    k: int
    layers: Optional[list]
    heldout: dict  # objective -> {cost, low, high}; vs_best: {ratio, ratio_low, ratio_high, verdict, same_set}


@dataclass(frozen=True)
class GuidedStudy:
    source: str
    model: str
    n_layers: int
    base: dict  # objective -> {calibration, heldout}
    runs: list
    described: str  # where the costs come from, one line
    verdicts: Optional[dict] = None  # equivalence_margin, multiplicity, bootstrap; None in files before them

    @property
    def objectives(self) -> list:
        return list(dict.fromkeys(run.objective for run in self.runs))

    @property
    def budgets(self) -> list:
        return sorted({run.k for run in self.runs})

    def lines(self, objective: str) -> list:
        """(search, guide) in the order the study ran them."""
        return list(dict.fromkeys((r.search, r.guide) for r in self.runs if r.objective == objective))

    def run(self, objective: str, search: str, guide: str, k: int) -> Optional[Run]:
        return next((r for r in self.runs if (r.objective, r.search, r.guide, r.k) == (objective, search, guide, k)),
                    None)


def is_study(document: Any) -> bool:
    """Does this JSON look like a guided-removal study (whatever else it lacks)?"""
    return isinstance(document, dict) and isinstance(document.get("prune"), dict) and "results" in document["prune"]


def _bad(path: str, what: str) -> JunitError:
    return JunitError(f"{path}: not a readable guided-removal study ({what}); {FIX}")


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _run(entry: Any, n_layers: int, path: str, index: int) -> Run:
    where = f"prune.results[{index}]"
    if not isinstance(entry, dict):
        raise _bad(path, f"{where} is not an object")
    for key in ("search", "guide", "objective"):
        if not isinstance(entry.get(key), str) or not NAME.fullmatch(entry[key]):
            raise _bad(path, f"{where}.{key} is not a name of letters, digits and _.:- (at most 64)")
    k = entry.get("k")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k < n_layers:
        raise _bad(path, f"{where}.k is not a budget 1..{n_layers - 1}")
    layers = entry.get("layers")
    if layers is not None and (not isinstance(layers, list) or len(layers) > k or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n_layers for x in layers)):
        raise _bad(path, f"{where}.layers is not at most {k} of layers 0..{n_layers - 1}")
    heldout = entry.get("heldout") or {}
    if not isinstance(heldout, dict) or not all(isinstance(v, dict) for v in heldout.values()):
        raise _bad(path, f"{where}.heldout is not an object of objects")
    if "vs_best" in heldout:
        _check_comparison(heldout["vs_best"], path, f"{where}.heldout.vs_best")
    return Run(entry["search"], entry["guide"], entry["objective"], k, layers, heldout)


def _check_comparison(versus: dict, path: str, where: str) -> None:
    """A vs_best record: its verdicts known words, its p-values probabilities (or absent, in older files)."""
    for key in ("verdict", "verdict_adjusted"):
        if key in versus and versus[key] is not None and versus[key] not in VERDICT_MARK:
            raise _bad(path, f"{where}.{key} is not one of {', '.join(VERDICT_MARK)}")
    for key in ("p", "p_equivalent", "p_adjusted", "p_equivalent_adjusted"):
        value = versus.get(key)
        if value is not None and not (_number(value) is not None and 0 <= value <= 1):
            raise _bad(path, f"{where}.{key} is not a probability")
    if versus.get("equivalence_margin") is not None and not (_number(versus["equivalence_margin"]) or 0) > 0:
        raise _bad(path, f"{where}.equivalence_margin is not a positive number")


def _verdicts(prune: dict, path: str) -> Optional[dict]:
    """prune.verdicts (margin, adjustment, bootstrap draws), checked; None in files written before it."""
    verdicts = prune.get("verdicts")
    if verdicts is None:
        return None
    draws = verdicts.get("bootstrap") if isinstance(verdicts, dict) else None
    if (not isinstance(draws, dict) or not (_number(verdicts.get("equivalence_margin")) or 0) > 0
            or verdicts.get("multiplicity") not in MULTIPLICITY
            or not all(isinstance(draws.get(key), int) and not isinstance(draws.get(key), bool) and draws[key] >= 0
                       for key in ("n_resamples", "seed"))):
        raise _bad(path, "prune.verdicts is not {equivalence_margin > 0, multiplicity: holm|bh|none, bootstrap: "
                         "{n_resamples, seed}}")
    return verdicts


def _check_units(prune: dict, path: str) -> None:
    """prune.heldout_units: per objective, n_units and per set ("3,7") a list of n_units numbers."""
    units = prune.get("heldout_units")
    if units is None:
        return
    if not isinstance(units, dict):
        raise _bad(path, "prune.heldout_units is not an object")
    for objective, record in units.items():
        where = f"prune.heldout_units.{objective}"
        n = record.get("n_units") if isinstance(record, dict) else None
        per_unit = record.get("per_unit") if isinstance(record, dict) else None
        if not isinstance(n, int) or isinstance(n, bool) or n < 1 or not isinstance(per_unit, dict):
            raise _bad(path, f"{where} is not {{n_units, per_unit}}")
        groups = record.get("groups")
        if groups is not None and (not isinstance(groups, list) or len(groups) != n or not all(
                isinstance(g, int) and not isinstance(g, bool) and 0 <= g < 2**31 for g in groups)):
            raise _bad(path, f"{where}.groups is not {n} document numbers (one per unit)")
        for label, values in per_unit.items():
            if not re.fullmatch(r"\d{1,4}(,\d{1,4})*", label) or not isinstance(values, list) or len(values) != n \
                    or not all(_number(v) is not None for v in values):
                raise _bad(path, f"{where}.per_unit[{label[:20]!r}] is not {n} numbers of a set like \"3,7\"")


def read_study(document: dict, path: str) -> GuidedStudy:
    prune = document["prune"]
    n_layers = prune.get("n_layers")
    if not isinstance(n_layers, int) or isinstance(n_layers, bool) or not 2 <= n_layers <= MAX_LAYERS:
        raise _bad(path, f"prune.n_layers is not a layer count 2..{MAX_LAYERS}")
    results, base = prune.get("results"), prune.get("base")
    if not isinstance(results, list) or not results:
        raise _bad(path, "prune.results is not a non-empty list")
    if not isinstance(base, dict) or not all(isinstance(v, dict) for v in base.values()):
        raise _bad(path, "prune.base is not an object of objects")
    runs = [_run(entry, n_layers, path, index) for index, entry in enumerate(results)]
    verdicts = _verdicts(prune, path)
    _check_units(prune, path)
    model = document.get("model")
    name = model.get("name") if isinstance(model, dict) else model
    return GuidedStudy(source=path, model=str(name or "unknown model"), n_layers=n_layers, base=base, runs=runs,
                       described=_described(document), verdicts=verdicts)


def _described(document: dict) -> str:
    """Calibration and held-out sizes, from either writer's header."""
    args, data, heldout = document.get("args"), document.get("data"), document.get("heldout")
    if isinstance(data, dict) and isinstance(heldout, dict):  # swapkl prune --json
        text = (f"calibration {data.get('n_sequences')} x {data.get('seq_len')} tokens of {data.get('source')}, "
                + (f"held-out {heldout.get('n_tokens')} tokens of {heldout.get('source')} in sliding windows of "
                   f"{heldout.get('window')} (stride {heldout.get('stride')})"
                   if heldout.get("evaluator") == "sliding-window" else
                   f"held-out {heldout.get('n_sequences')} x {heldout.get('seq_len')} of {heldout.get('source')}"))
    elif isinstance(args, dict):  # benchmarks/pruning/guided_removal.py
        text = (f"calibration {args.get('tokens')} tokens of {args.get('data')} in sequences of {args.get('seq_len')}, "
                f"held-out as many unused ones, task {args.get('items')} items (half held out)")
    else:
        text = "calibration and held-out data not recorded"
    seconds = _number(document.get("seconds"))
    return text + (f"; {seconds:.0f} s" if seconds is not None else "")


# ---------------------------------------------------------------- the table

def ratio_cell(run: Optional[Run], between: str = " ") -> str:
    """`{L08, L09} 1.35 [1.30, 1.40] +`: the set, its held-out cost over the exhaustive set's, the paired 95%
    interval of that ratio and the verdict (as guided_*.md writes it); `between` separates the set from the rest
    (a line break on the HTML page, whose cells are narrower)."""
    if run is None or not run.layers:
        return "-"
    versus = run.heldout.get("vs_best") or {}
    chosen = layer_set_label(run.layers)
    ratio = _number(versus.get("ratio"))
    if versus.get("same_set"):
        return f"{chosen} ="
    if ratio is None:
        return f"{chosen} n/a"
    low, high = _number(versus.get("ratio_low")), _number(versus.get("ratio_high"))
    interval = "" if low is None or high is None else f" [{low:.2f}, {high:.2f}]"
    # the verdict after the file's adjustment (objective_title names it); files before it carry the raw one
    verdict = versus.get("verdict_adjusted") or versus.get("verdict")
    return f"{chosen}{between}{ratio:.2f}{interval} {VERDICT_MARK.get(verdict, '(unknown verdict)')}"


def cost(run: Optional[Run], objective: str) -> tuple:
    """(cost, low, high) of the run's set on held-out data under `objective`, None where missing."""
    held = (run.heldout.get(objective) if run is not None else None) or {}
    return tuple(_number(held.get(key)) for key in ("cost", "low", "high"))


def cost_header(study: GuidedStudy) -> tuple:
    return ("search", "guide", *(f"k={k}" for k in study.budgets))


def cost_rows(study: GuidedStudy, objective: str, between: str = " ") -> list:
    rows = [(search, guide, *(ratio_cell(study.run(objective, search, guide, k), between) for k in study.budgets))
            for search, guide in study.lines(objective)]
    exhaustive = [number(cost(study.run(objective, "exhaustive", "-", k), objective)[0]) for k in study.budgets]
    return rows + [("exhaustive cost (held-out)", "", *exhaustive)]


def objective_title(study: GuidedStudy, objective: str) -> str:
    base = study.base.get(objective) or {}
    return (f"objective {objective} (full model: {number(_number(base.get('calibration')))} calibration, "
            f"{number(_number(base.get('heldout')))} held-out): set, held-out cost / exhaustive set's held-out cost "
            f"[paired 95%], verdict{verdict_rule(study)}")


def verdict_rule(study: GuidedStudy) -> str:
    """How the marks were decided: the margin of "equivalent" and the adjustment across the file."""
    if study.verdicts is None:
        return " (unadjusted; a file before the equivalence test: ~ there means indistinguishable)"
    names = {"holm": "Holm (family-wise)", "bh": "Benjamini-Hochberg", "none": "no adjustment"}
    return (f" ({names[study.verdicts['multiplicity']]} across the file's verdicts, equivalence margin "
            f"{study.verdicts['equivalence_margin']:g})")


# ---------------------------------------------------------------- the figure's lines

def figure_lines(study: GuidedStudy, objective: str) -> list:
    """The (search, guide) lines a reader can tell apart, as each registered search says (`SearchKind.figure`):
    greedy, beam guided by each protocol, one-shot of each guide, random and exhaustive (the others are in the
    table)."""
    return [line for line in study.lines(objective) if _drawn(*line)][:MAX_LINES]


def _drawn(search: str, guide: str) -> bool:
    from ..analysis.guides import GUIDES
    from ..analysis.search import SEARCHES

    if search not in SEARCHES:  # a study written by another version: its table still shows the line
        return False
    figure = SEARCHES.get(search).figure
    kind = GUIDES.get(guide) if guide in GUIDES else None
    if figure == "protocol guides":
        return kind is not None and kind.protocol
    if figure == "scored guides":
        return kind is None or kind.scored
    return figure == "always"


def curve(study: GuidedStudy, objective: str, search: str, guide: str) -> list:
    """[(k, cost, low, high)] of one line, budgets without a set left out."""
    points = []
    for k in study.budgets:
        run = study.run(objective, search, guide, k)
        value, low, high = cost(run, objective)
        if run is not None and run.layers and value is not None:
            points.append((k, value, low, high))
    return points
