"""Contracts (`--contract NAME`): presets of declared options, parsed by each option's converter; an option given
explicitly wins over the contract, and the contract over the default, on both faces."""

import pytest

from pytest_swapkl import options as O
from pytest_swapkl.commands.cli import build_parser, main
from pytest_swapkl.contracts import CONTRACTS
from tests.test_fuzz_options import FakeConfig

DECLARED = {option.name: option for option in O.OPTIONS}


@pytest.mark.parametrize("name", CONTRACTS.names())
def test_every_contract_sets_declared_options_to_values_they_accept(name):
    contract = CONTRACTS.get(name)
    assert contract.values, name
    for option, value in contract.values.items():
        assert option in DECLARED, f"contract {name} sets {option}, which no option declares"
        O._parse(DECLARED[option], value, f"contract {name}")  # raises a one-line InputError if refused


def test_the_contract_fills_what_the_command_line_left_out():
    parsed = build_parser().parse_args(["audit", "demo", "--contract", "masked-mean", "--pairs", "adjacent"])
    assert parsed.pairs == "adjacent"  # given explicitly: the user's choice stands
    assert parsed.dtype == "bfloat16" and parsed.seq_len == 128  # left out: the contract's
    assert parsed.tokens == DECLARED["tokens"].default  # the contract says nothing: the default
    assert not hasattr(parsed, "_swapkl_given")  # the bookkeeping does not leak into the settings


def test_without_a_contract_every_left_out_option_is_its_default():
    parsed = build_parser().parse_args(["audit", "demo"])
    for name, option in DECLARED.items():
        if hasattr(parsed, name):
            assert getattr(parsed, name) == option.default, name


def test_an_explicit_default_value_still_wins_over_the_contract():
    parsed = build_parser().parse_args(["audit", "demo", "--contract", "masked-mean", "--dtype", "auto"])
    assert parsed.dtype == "auto"


def test_the_pytest_face_reads_the_contract_from_the_ini_file_and_lets_the_command_line_win():
    config = FakeConfig(options={"swapkl_seq_len": "64"}, ini={"swapkl_contract": "masked-mean"})
    parsed = O.from_pytest(config)
    assert parsed.contract == "masked-mean"
    assert parsed.seq_len == 64 and parsed.dtype == "bfloat16" and parsed.pairs == "window:3"


def test_a_marker_override_wins_over_the_contract():
    config = FakeConfig(options={"swapkl_contract": "masked-mean"})
    assert O.from_pytest(config, {"pairs": "all"}).pairs == "all"


def test_a_misspelled_contract_is_one_line_with_the_closest_name(capsys):
    assert main(["audit", "demo", "--contract", "masked-men"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown contract 'masked-men': did you mean masked-mean?" in err


def test_swapkl_list_contracts_names_the_paper_experiment_of_each(capsys):
    assert main(["list", "contracts"]) == 0
    out = capsys.readouterr().out
    for entry in CONTRACTS.entries():
        assert entry.name in out
    assert "tab:top_pairs" in out and "--positions last" in out


def test_a_prompt_contract_on_chunked_text_is_one_line_and_exit_2(capsys):
    assert main(["audit", "demo", "--contract", "last-token", "--data", "demo"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--contract last-token measures prompts one by one" in err
    assert "--data prompts:FILE" in err


def test_an_evaluation_contract_reads_any_data():
    from pytest_swapkl.contracts import check_data_fits

    check_data_fits("matched-eval", "demo")  # no error: it sets only the held-out evaluator and the rule
    check_data_fits(None, "demo")
