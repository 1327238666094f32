"""`swapkl list`: one table (name, summary) per registry; an unknown registry is a one-line error."""

import pytest

from pytest_swapkl.analysis.search import SEARCHES
from pytest_swapkl.commands.cli import main


def test_list_searches_prints_each_name_with_its_summary(capsys):
    assert main(["list", "searches"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "searches: searches for the layer set to remove (swapkl prune --search)"
    assert lines[1].split() == ["name", "summary"]
    rows = lines[3:]
    assert [row.split()[0] for row in rows] == SEARCHES.names()
    assert all(row.endswith(entry.summary) for row, entry in zip(rows, SEARCHES.entries()))


@pytest.mark.parametrize("registry, first", [("rules", "min-partner"), ("guides", "replacement"),
                                             ("objectives", "kl")])
def test_list_prints_the_other_analysis_registries(registry, first, capsys):
    assert main(["list", registry]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{registry}: ") and out.splitlines()[3].split()[0] == first


def test_list_protocols_and_all_of_them(capsys):
    protocols = pytest.importorskip("pytest_swapkl.engine.protocols").PROTOCOLS
    assert main(["list", "protocols"]) == 0
    rows = capsys.readouterr().out.splitlines()[3:]
    assert [row.split()[0] for row in rows] == protocols.names()
    assert main(["list"]) == 0
    titles = [line.split(":")[0] for line in capsys.readouterr().out.split("\n\n")]
    assert titles == ["protocols", "rules", "guides", "searches", "objectives", "cases", "contracts"]


def test_an_unknown_registry_is_one_line_with_the_closest_name(capsys):
    assert main(["list", "serches"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == ("swapkl: error: unknown registry 'serches': did you mean searches? choose from "
                                    "protocols, rules, guides, searches, objectives, cases, contracts "
                                    "(`swapkl list` prints them)")
