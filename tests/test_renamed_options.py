"""Issue 37: names that mean one thing. Old spellings still work on every face, each with a one-line notice:
`swapkl prune --layers` is `--budgets`; the audit's `--prune-methods` is `--prune-guides` (CLI, `--swapkl-*`, ini,
marker)."""

import pytest

from pytest_swapkl import options as O
from pytest_swapkl.commands.cli import UsageError, build_parser


@pytest.fixture(autouse=True)
def fresh_notices(monkeypatch):
    monkeypatch.setattr(O, "_NOTICED", set())


class Config:
    def __init__(self, options=None, ini=None):
        self.options, self.ini = options or {}, ini or {}

    def getoption(self, name):
        return self.options.get(name)

    def getini(self, name):
        return self.ini.get(name)


def test_swapkl_audit_reads_the_old_name_with_a_notice(capsys):
    args = build_parser().parse_args(["audit", "demo", "--prune-methods", "removal,sleb"])
    assert args.prune_guides == ("removal", "sleb")
    assert capsys.readouterr().err.strip() == ("swapkl: --prune-methods is now --prune-guides (the old name still "
                                               "works and will be kept for a while)")
    args = build_parser().parse_args(["audit", "demo", "--prune-guides", "removal"])
    assert args.prune_guides == ("removal",) and capsys.readouterr().err == ""


def test_swapkl_prune_budgets_and_the_old_layers(capsys):
    args = build_parser().parse_args(["prune", "demo", "--layers", "1,2"])
    assert args.budgets == "1,2"
    assert capsys.readouterr().err.strip() == ("swapkl: --layers is now --budgets (the old name still works and "
                                               "will be kept for a while)")
    assert build_parser().parse_args(["prune", "demo", "--budgets", "3"]).budgets == "3"
    with pytest.raises(UsageError, match="--max-cost: not allowed with argument --budgets/--layers"):
        build_parser().parse_args(["prune", "demo", "--layers", "1", "--max-cost", "1"])


@pytest.mark.parametrize("config, where", [
    (Config(options={"swapkl_prune_methods": "removal"}), "--swapkl-prune-methods is now --swapkl-prune-guides"),
    (Config(ini={"swapkl_prune_methods": "removal"}), "ini swapkl_prune_methods is now swapkl_prune_guides"),
])
def test_the_plugin_reads_old_flags_and_ini_keys_with_a_notice(config, where, capsys):
    assert O.from_pytest(config).prune_guides == ("removal",)
    assert capsys.readouterr().err.strip() == f"swapkl: {where} (the old name still works and will be kept for a while)"


def test_the_new_name_wins_and_markers_take_the_old_name(capsys):
    both = Config(options={"swapkl_prune_guides": "sleb", "swapkl_prune_methods": "removal"})
    assert O.from_pytest(both).prune_guides == ("sleb",)
    assert O.from_pytest(Config(), {"prune_methods": "angular"}).prune_guides == ("angular",)
    assert "swapkl option prune_methods= is now prune_guides=" in capsys.readouterr().err


def test_a_notice_is_said_once_per_process(capsys):
    for _ in range(3):
        O.from_pytest(Config(options={"swapkl_prune_methods": "removal"}))
    assert capsys.readouterr().err.count("is now") == 1


def test_pytest_declares_the_old_flag_and_ini_key():
    declared, ini = [], []

    class Group:
        def addoption(self, *flags, **kwargs):
            declared.extend(flags)

    class Parser:
        def getgroup(self, *args):
            return Group()

        def addini(self, name, *args, **kwargs):
            ini.append(name)

    O.add_to_pytest(Parser())
    assert {"--swapkl-prune-guides", "--swapkl-prune-methods"} <= set(declared)
    assert {"swapkl_prune_guides", "swapkl_prune_methods"} <= set(ini)
