"""What a kind of generated case is, and the registry of them.

A `CaseKind` holds in one place what the plugin, adaptive mode and `swapkl report` need of a kind:

    PAIR_KIND = register_kind(CaseKind(                          # in `cases`, beside its properties
        "pair", "pair[{i}-{j}]", {"i": LAYER, "j": LAYER},
        summary="do replacement and interchange rank this pair alike?",
        properties=pair_properties,                              # writes the case's <property> entries
        read=_read_pair,                                         # reads them back into the report's model
        rule="pytest_swapkl.analysis.agreement:pair_verdicts"), __name__)
    PAIR_KIND.format(i=3, j=4) == "pair[L03-L04]";  parse_case("pair[L03-L04]") == CaseName("pair", i=3, j=4)

The name grammar is a template whose fields are `Param`s: each says how its text looks (a regular
expression), how to read it and how to write it, so one template both formats and parses. A kind's name
is its template's text before `[`, which is how `parse_case` finds the kind of a name. The built-in kinds
are registered at the end of `cases`, which writes their properties. The rule is named, not imported: it
lives in `analysis` or `comparison`, which import `cases` (and numpy). No torch, no numpy here: the plugin
loads this in every run.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from string import Formatter
from typing import Any, Callable, Mapping, Optional

from .registry import Registry


@dataclass(frozen=True)
class Param:
    """One field of a name template: its text's pattern, and how to read and write it."""

    pattern: str  # a regular expression without groups
    read: Callable[[str], Any] = str
    write: Callable[[Any], str] = str


# At most 6 digits: a name read back from a junit file never becomes a number of thousands of digits.
def layer_label(layer: int) -> str:
    """How every table, case and report names a layer: L05."""
    return f"L{layer:02d}"


def pair_label(i: int, j: int) -> str:
    return f"{layer_label(i)}-{layer_label(j)}"


COUNT = Param(r"\d{1,6}", int)
LAYER = Param(r"L\d{1,6}", lambda text: int(text[1:]), layer_label)
WORD = Param(r"[a-z_]+")

# read(audit, case, name): put the case's properties into the report's read model (`report.junit.AuditReading`)
Reader = Callable[[Any, Any, "CaseName"], None]


@dataclass(frozen=True)
class CaseKind:
    """A kind of generated case: its name grammar, the properties it writes, how they are read back, its rule."""

    name: str  # audit, pair, topk_jaccard, ...
    template: str  # "topk_jaccard[k={k}]": literal text and {fields}, one Param per field
    params: Mapping[str, Param] = field(default_factory=dict)
    summary: str = ""  # one line: the question the case answers
    properties: Optional[Callable[..., list]] = None  # writes [(key, value)], in the order junit shows them
    read: Optional[Reader] = None  # None: the case is kept as it is (`AuditReading.cases`), nothing more is read
    rule: str = ""  # "module:function" that judges it; named, so this layer imports no rule

    def __post_init__(self) -> None:
        fields = [name for _, name, _, _ in Formatter().parse(self.template) if name is not None]
        if sorted(fields) != sorted(self.params):
            raise ValueError(f"case kind {self.name}: template fields {fields} are not its params {list(self.params)}")
        if self.template != self.name and not self.template.startswith(self.name + "["):
            raise ValueError(f"case kind {self.name}: its template must be {self.name!r} or start {self.name + '['!r}")

    @cached_property
    def pattern(self) -> re.Pattern:
        regex = "".join(re.escape(text) + (f"(?P<{name}>{self.params[name].pattern})" if name is not None else "")
                        for text, name, _, _ in Formatter().parse(self.template))
        return re.compile(regex)

    def format(self, **values: Any) -> str:
        return "".join(text + (self.params[name].write(values[name]) if name is not None else "")
                       for text, name, _, _ in Formatter().parse(self.template))

    def parse(self, name: str) -> Optional["CaseName"]:
        match = self.pattern.fullmatch(name)
        if match is None:
            return None
        return CaseName(self.name, **{key: self.params[key].read(text) for key, text in match.groupdict().items()})

    def rule_function(self) -> Callable:
        """The callable `rule` names, imported on this call (never when the plugin loads)."""
        module, _, path = self.rule.partition(":")
        target: Any = importlib.import_module(module)
        for attribute in path.split("."):
            target = getattr(target, attribute)
        return target


@dataclass(frozen=True, init=False, repr=False)
class CaseName:
    """A generated case's name, parsed: its kind and that kind's parameters (`name.k`, `name.method`, ...)."""

    kind: str
    params: tuple  # ((parameter, value), ...), sorted by parameter

    def __init__(self, kind: str, **params: Any):
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "params", tuple(sorted(params.items())))

    def __getattr__(self, name: str) -> Any:
        for key, value in self.__dict__.get("params", ()):
            if key == name:
                return value
        raise AttributeError(f"case {self.kind} has no parameter {name!r}")

    def __str__(self) -> str:
        return CASE_KINDS.get(self.kind).format(**dict(self.params))

    def __repr__(self) -> str:
        return f"CaseName({', '.join([repr(self.kind), *(f'{key}={value!r}' for key, value in self.params)])})"


CASE_KINDS: Registry[CaseKind] = Registry("case kind", lazy=["pytest_swapkl.cases"])


def register_kind(kind: CaseKind, source: str) -> CaseKind:
    return CASE_KINDS.register(kind.name, kind, kind.summary, source)


def parse_case(name: str) -> Optional[CaseName]:
    """The parsed name, or None for a name no registered kind defines."""
    kind = name.partition("[")[0]
    return CASE_KINDS.get(kind).parse(name) if kind in CASE_KINDS else None
