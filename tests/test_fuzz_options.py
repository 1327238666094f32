"""Every option parser, fuzzed: any text either parses to a valid value or fails with a one-line InputError
(or the ValueError that argparse and `from_pytest` turn into one) that names the input. Never a traceback,
never a silently wrong value.

Parsers: pair specs (`probes.parse_pairs`), data specs (`data._local_path`, `data._parse_hub_spec`,
`load_calibration` on missing paths), model specs (`loading._locate` on paths, `loading.LoadError`), device
and dtype strings (`devices`), the typed option converters (`options`), `options.from_pytest`, and, once
per parser kind, the `swapkl audit` command line and a real pytest run.
"""

from __future__ import annotations

import contextlib
import math
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_swapkl import options as O
from pytest_swapkl import probes as P
from pytest_swapkl.commands.cli import main
from pytest_swapkl.errors import InputError
from pytest_swapkl.inputs.data import DataError, _local_path, _parse_hub_spec, load_calibration
from pytest_swapkl.inputs.devices import DTYPES, DeviceError, resolve_device, resolve_dtype
from pytest_swapkl.inputs.loading import LoadError, _locate, _looks_like_path

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")  # where str.splitlines() splits
HUGE = "9" * 5000  # more digits than int() converts (4300)

# Text that looks like the real thing more often than st.text() alone: digits, separators, whitespace,
# line breaks, non-ASCII digits and letters, option words.
NEAR = st.text(alphabet=st.sampled_from(list("0123456789-,:% .eE+_xanifl\t\n\u2028\u0661\uff11\u0130")), max_size=24)
ANY_TEXT = st.one_of(st.text(), NEAR)


# --- what a good error looks like ------------------------------------------------------------------------


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message.strip(), f"{type(error).__name__} with an empty message"
    assert len(message.splitlines()) == 1, f"not one line: {message!r}"
    assert "Traceback" not in message
    return message


def _forms(text: str) -> set[str]:
    """How a message may show an input (as given, stripped, lowercased, quoted, with line breaks escaped or
    collapsed), cut to 20 characters since long inputs are shown cut short."""
    forms: set[str] = set()
    for t in {text, text.strip(), text.strip().lower()}:
        forms |= {t, repr(t)[1:-1], repr(t[:24])[1:-1], LINE_BREAK.sub(lambda m: repr(m.group())[1:-1], t),
                  re.sub(r"\s*[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+\s*", " ", t).strip()}
    return {form[:20] for form in forms}


def names(message: str, *texts: str) -> None:
    """The message names the offending input (or one of its parts)."""
    if not any(text.strip() for text in texts):  # blank: shown quoted, or called empty
        quoted = {repr(t) for text in texts for t in (text, text.strip())}
        assert "empty" in message or any(q in message for q in quoted), (message, texts)
        return
    assert any(form in message for text in texts if text.strip() for form in _forms(text)), (message, texts)


# --- pair specs ------------------------------------------------------------------------------------------


def _check_pairs(pairs: list[tuple[int, int]], n_layers: int) -> None:
    assert all(isinstance(i, int) and isinstance(j, int) and 0 <= i < j < n_layers for i, j in pairs)
    assert len(set(pairs)) == len(pairs)


@FAST
@given(spec=ANY_TEXT, n_layers=st.integers(-2, 48))
@example(spec="window:" + HUGE, n_layers=4)
@example(spec="0-" + HUGE, n_layers=4)
@example(spec="\u0661-\u0662", n_layers=4)  # Arabic-Indic digits
@example(spec="1-2\n", n_layers=4)
def test_any_pair_spec_parses_or_names_the_problem(spec, n_layers):
    try:
        pairs = P.parse_pairs(spec, n_layers)
    except P.SpecError as error:
        message = one_line(error)
        if n_layers >= 2:
            names(message, spec, *spec.strip().lower().split(","))
    else:
        assert n_layers >= 2
        _check_pairs(pairs, n_layers)
        assert pairs, "a spec that parses names at least one pair"
        # The syntax-only check the options run before the model loads never refuses a spec that parses.
        assert P.parse_pairs(spec, None) == []
        assert O._pair_spec(spec) == spec


@FAST
@given(spec=ANY_TEXT)
def test_syntax_check_agrees_with_the_full_parse(spec):
    """A spec the syntax check refuses is refused at every depth."""
    try:
        O._pair_spec(spec)
    except P.SpecError as error:
        names(one_line(error), spec, *spec.strip().lower().split(","))
        for n_layers in (2, 7, 64):
            with pytest.raises(P.SpecError):
                P.parse_pairs(spec, n_layers)


LAYER = st.one_of(st.integers(0, 40), st.integers(-3, -1), st.just(10**30), st.just(int("1" + "0" * 30)))
SPACE = st.sampled_from(["", " ", "  ", "\t", "\n"])


@FAST
@given(items=st.lists(st.tuples(LAYER, LAYER, SPACE, SPACE), min_size=1, max_size=8),
       n_layers=st.integers(2, 40), zeros=st.sampled_from(["", "0", "000"]))
def test_pair_lists_parse_exactly_as_written(items, n_layers, zeros):
    """Near-valid lists: out of range, reversed, duplicate, negative, huge layers, stray whitespace."""
    def written(layer: int) -> str:
        return str(layer) if layer < 0 else f"{zeros}{layer}"

    spec = ",".join(f"{before}{written(a)}{after}-{before}{written(b)}{after}" for a, b, before, after in items)
    expected: list[tuple[int, int]] = []
    problem = None
    for a, b, _, _ in items:
        if a < 0 or b < 0:
            problem = "is not understood"
            break
        if a == b:
            problem = "names one layer twice"
            break
        if max(a, b) >= n_layers:
            problem = f"layer {written(min(x for x in (a, b) if x >= n_layers))[:12]}"
            break
        pair = (min(a, b), max(a, b))
        if pair not in expected:
            expected.append(pair)
    if problem is None:
        assert P.parse_pairs(spec, n_layers) == expected
        _check_pairs(expected, n_layers)
    else:
        with pytest.raises(P.SpecError) as error:
            P.parse_pairs(spec, n_layers)
        message = one_line(error.value)
        assert problem in message and (not problem.startswith("layer") or "is out of range" in message), message


@FAST
@given(n_layers=st.integers(2, 48), k=st.one_of(st.integers(1, 60), st.just(10**30)),
       written=st.sampled_from(["window:{k}", " WINDOW:{k} ", "window:00{k}"]))
def test_window_gives_exactly_the_pairs_within_k(n_layers, k, written):
    pairs = P.parse_pairs(written.format(k=k), n_layers)
    assert pairs == [(i, j) for i in range(n_layers) for j in range(i + 1, n_layers) if j - i <= k]
    assert P.parse_pairs(" Adjacent ", n_layers) == P.parse_pairs("window:1", n_layers)
    assert P.parse_pairs("ALL", n_layers) == P.parse_pairs("window:" + HUGE, n_layers)
    with pytest.raises(P.SpecError, match="window size must be at least 1"):
        P.parse_pairs("window:" + "0" * 5000, n_layers)


# --- data specs ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_dir():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@FAST
@given(source=ANY_TEXT)
@example(source="x" * 5000)  # longer than a file name may be
@example(source="~no_such_user_swapkl/a.txt")
@example(source="")
@example(source="a\u2028b.txt")
def test_any_data_spec_is_a_source_or_names_the_problem(source, empty_dir):
    """Only the spec's parsing and existence checks: no file is read, nothing is downloaded."""
    with contextlib.chdir(empty_dir):
        try:
            path = _local_path(source)
        except DataError as error:
            names(one_line(error), source)
        else:
            assert (path is None) == (source == "demo" or source.startswith("hf:"))
            assert path is None or path.exists()
            assert source.strip(), "an empty spec is never the working directory"


@FAST
@given(name=ANY_TEXT, suffix=st.sampled_from(["", ".txt", ".jsonl", ".npy", ".pt", ".csv", "/"]))
@example(name=HUGE, suffix=".txt")
def test_missing_data_fails_in_one_line(name, suffix, empty_dir):
    source = f"{empty_dir}/nowhere/{name}{suffix}"  # under a missing folder: never exists, never read
    with pytest.raises(DataError) as error:
        load_calibration(source, tokenizer=None)
    message = one_line(error.value)
    assert "does not exist" in message or "is not a usable path" in message
    names(message, source)


@FAST
@given(rest=ANY_TEXT)
@example(rest="")
@example(rest="a:b:c:d")
@example(rest="wikitext::")
@example(rest="wikitext:wikitext-2-raw-v1:validation")
def test_hub_spec_parses_or_names_the_problem(rest):
    source = "hf:" + rest
    try:
        name, config, split = _parse_hub_spec(source)
    except DataError as error:
        names(one_line(error), source)
        assert not rest.split(":")[0] or rest.count(":") > 2
    else:
        parts = rest.split(":")
        assert name == parts[0] and name and ":" not in name
        assert config == (parts[1] if len(parts) > 1 and parts[1] else None)
        assert split == (parts[2] if len(parts) > 2 and parts[2] else "train")


# --- model specs -----------------------------------------------------------------------------------------


@FAST
@given(text=ANY_TEXT)
@example(text="a" * 5000 + "/b")
def test_path_check_of_model_specs_never_raises(text, empty_dir):
    with contextlib.chdir(empty_dir):
        assert _looks_like_path(text) in (True, False)


@FAST
@given(name=ANY_TEXT)
@example(name="x" * 5000)
def test_missing_model_folder_fails_in_one_line(name, empty_dir):
    spec = f"{empty_dir}/nowhere/{name}"  # a path: never goes to the hub
    with pytest.raises(LoadError) as error:
        _locate(spec, None)
    names(one_line(error.value), spec.strip())


@FAST
@given(text=st.text())
def test_load_errors_are_one_line_whatever_they_quote(text):
    one_line(LoadError(f"no such folder: {text}: check the path"))


# --- devices and dtypes ----------------------------------------------------------------------------------


@FAST
@given(spec=ANY_TEXT)
@example(spec="cuda:abc")
@example(spec="cuda:-1")
@example(spec="float8")
@example(spec="")
@example(spec="cuda:\u0661")
@example(spec="cuda:" + HUGE)
def test_any_device_or_dtype_resolves_or_names_the_problem(spec):
    try:
        device = resolve_device(spec)
    except DeviceError as error:
        names(one_line(error), spec)
    else:
        assert device.type in ("cpu", "cuda")
        assert spec.strip().lower() in ("auto", "cpu") or torch.cuda.is_available()
    try:
        dtype = resolve_dtype(spec, torch.device("cpu"))
    except DeviceError as error:
        names(one_line(error), spec)
    else:
        assert dtype in DTYPES.values()
        assert spec.strip().lower() in ("auto", *DTYPES)


@FAST
@given(index=st.one_of(st.integers(0, 5), st.integers(6, 10**30), st.just(HUGE), st.just("007"),
                       st.just("-1"), st.just("+1"), st.just("1.0"), st.just(" 1")))
def test_cuda_index_is_exact_or_refused(index):
    """The cuda:N branch as on a 2-GPU machine (only the parsing: no CUDA call is made)."""
    spec = f"cuda:{index}"
    with mock.patch.object(torch.cuda, "is_available", return_value=True), \
            mock.patch.object(torch.cuda, "device_count", return_value=2):
        try:
            device = resolve_device(spec)
        except DeviceError as error:
            message = one_line(error)
            names(message, spec)
            assert not (isinstance(index, int) and index < 2)
            assert "does not exist" in message or "unknown device" in message
        else:
            assert isinstance(index, (int, str)) and device == torch.device("cuda", int(index))
            assert int(index) < 2


# --- typed options ---------------------------------------------------------------------------------------


CONVERTERS = [O._positive_int, O._non_negative_int, O._seed, O._resamples, O._fraction_or_count,
              O._optional_float, O._correlation, O._share, O._non_negative, O._cost_factor, O._k_list,
              O._method_list, O._pair_spec, O._prune_budgets]


def _valid(converter, value) -> bool:
    """What a converter may return: finite numbers inside the option's range, and nothing else."""
    if converter in (O._positive_int, O._non_negative_int, O._seed, O._resamples):
        low = 0 if converter in (O._non_negative_int, O._seed) else 1
        return isinstance(value, int) and value >= low and (converter is not O._resamples or value <= 100_000)
    if converter is O._fraction_or_count:
        number, is_fraction = value
        return isinstance(is_fraction, bool) and math.isfinite(number) and number >= 0 and str(number)[0] != "-"
    if converter is O._optional_float:
        return value is None or (math.isfinite(value) and value >= 0)
    if converter in (O._correlation, O._share, O._non_negative, O._cost_factor):
        low, high = {O._correlation: (-1, 1), O._share: (0, 1), O._non_negative: (0, math.inf),
                     O._cost_factor: (1, math.inf)}[converter]
        return math.isfinite(value) and low <= value <= high
    if converter is O._k_list:
        return bool(value) and list(value) == sorted(set(value)) and min(value) >= 1
    if converter is O._method_list:
        return bool(value) and len(set(value)) == len(value)
    if converter is O._alpha:
        return math.isfinite(value) and 0 < value < 1
    if converter is O._memory_size:
        return isinstance(value, int) and 1 << 20 <= value <= 1 << 50
    if converter is O._stack:
        return value is None or (isinstance(value, int) and 1 <= value <= 4096)
    if converter is O._threads:
        return isinstance(value, int) and 1 <= value <= 4096
    if converter is O._prune_budgets:  # each budget as it writes itself back, once
        from pytest_swapkl.analysis.budgets import parse_budget

        return len(set(value)) == len(value) and all(str(parse_budget(budget)) == budget for budget in value)
    if converter is O._device_memory:
        return value is None or isinstance(value, (dict, str))
    if converter is O._window:
        return isinstance(value, int) and value >= 2
    if converter is O._margin:
        return math.isfinite(value) and value > 0
    if converter is O._sensitivity:  # factor names, each once
        return value is None or (isinstance(value, tuple) and len(set(value)) == len(value) and all(
            isinstance(name, str) for name in value))
    return isinstance(value, str)


@FAST
@given(converter=st.sampled_from(CONVERTERS), text=ANY_TEXT)
@example(converter=O._positive_int, text=HUGE)
@example(converter=O._k_list, text="2," + HUGE)
@example(converter=O._seed, text="-1")
@example(converter=O._resamples, text="10" + "0" * 30)
@example(converter=O._prune_budgets, text="interchange:beam:ppl:10%:4, -:greedy:kl:0.2:2:STRICT,")
@example(converter=O._prune_budgets, text="interchange:beam:ppl:10%:4,replacement:beam:ppl:1e400:4")
def test_any_text_converts_or_names_the_problem(converter, text):
    try:
        value = converter(text)
    except ValueError as error:  # argparse and from_pytest turn it into a one-line usage error
        names(one_line(error), text, *text.split(","))
    else:
        assert _valid(converter, value), (converter.__name__, text, value)


@pytest.mark.parametrize("text, expected", [
    ("25%", (0.25, True)), ("3", (3.0, False)), (" 5 %", (0.05, True)), ("-0", (0.0, False)), ("0%", (0.0, True)),
    ("nan%", None), ("nan", None), ("inf", None), ("1e309", None), ("%", None), ("5%%", None), ("-1", None),
    ("-inf%", None), ("", None), ("%5", None),
])
def test_rank_tolerance_examples(text, expected):
    if expected is None:
        with pytest.raises(ValueError, match="must be a share of the pairs") as error:
            O._fraction_or_count(text)
        names(one_line(error.value), text)
    else:
        value = O._fraction_or_count(text)
        assert value == expected and math.copysign(1, value[0]) == 1


@FAST
@given(number=st.floats(allow_nan=True, allow_infinity=True), percent=st.booleans(), space=SPACE)
def test_rank_tolerance_is_a_finite_share_or_count(number, percent, space):
    text = f"{space}{number!r}{space}{'%' if percent else ''}"
    if math.isfinite(number) and number >= 0:
        value, is_fraction = O._fraction_or_count(text)
        assert is_fraction is percent
        assert value == (number / 100 if percent else number) + 0.0
    else:
        with pytest.raises(ValueError):
            O._fraction_or_count(text)


@FAST
@given(converter=st.sampled_from([O._correlation, O._share, O._non_negative, O._cost_factor, O._optional_float]),
       number=st.floats(allow_nan=True, allow_infinity=True))
def test_thresholds_refuse_nan_infinities_and_values_out_of_range(converter, number):
    accepted = _valid(converter, number + 0.0) if math.isfinite(number) else False
    if accepted:
        assert converter(repr(number)) == number
    else:
        with pytest.raises(ValueError) as error:
            converter(repr(number))
        names(one_line(error.value), repr(number))


@FAST
@given(value=st.integers(-10**30, 10**30), space=SPACE, zeros=st.sampled_from(["", "00"]),
       converter=st.sampled_from([O._positive_int, O._non_negative_int, O._seed, O._resamples]))
def test_integers_are_exact_or_refused(value, space, zeros, converter):
    text = f"{space}{'-' if value < 0 else ''}{zeros}{abs(value)}{space}"
    if _valid(converter, value):
        assert converter(text) == value
    else:
        with pytest.raises(ValueError, match="must be") as error:
            converter(text)
        names(one_line(error.value), text)


@FAST
@given(budgets=st.lists(st.integers(-3, 10**20), max_size=6), space=SPACE)
def test_jaccard_budgets_are_sorted_unique_and_positive(budgets, space):
    text = ",".join(f"{space}{k}{space}" for k in budgets)
    if budgets and min(budgets) >= 1:
        assert O._k_list(text) == tuple(sorted(set(budgets)))
    else:
        with pytest.raises(ValueError, match="comma-separated list of budgets"):
            O._k_list(text)


METHODS = ["replacement", "interchange", "removal", "block_influence", "angular", "sleb"]


@FAST
@given(methods=st.lists(st.sampled_from([*METHODS, "Replacement", "SLEB", "random", ""]), max_size=6))
def test_prune_methods_are_known_and_unique(methods):
    text = ",".join(methods)
    wanted = [m.lower() for m in methods if m]
    if wanted and all(m in METHODS for m in wanted):
        assert O._method_list(text) == tuple(dict.fromkeys(wanted))
    else:
        with pytest.raises(ValueError, match="comma-separated list of replacement") as error:
            O._method_list(text)
        one_line(error.value)


# --- from_pytest: command line, ini and marker values ----------------------------------------------------


class FakeConfig:
    """`getoption` / `getini` as pytest answers them; ini bools are checked as pytest checks them."""

    def __init__(self, options: dict | None = None, ini: dict | None = None):
        self.options, self.ini = options or {}, ini or {}

    def getoption(self, name):
        return self.options.get(name)

    def getini(self, name):
        value = self.ini.get(name)
        option = next((o for o in O.OPTIONS if f"swapkl_{o.name}" == name), None)
        if option is None or not option.flag:
            return value
        if value is None:
            return option.default
        if value.lower() in ("y", "yes", "t", "true", "on", "1"):
            return True
        if value.lower() in ("n", "no", "f", "false", "off", "0"):
            return False
        raise ValueError(f"invalid truth value {value.lower()!r}")  # what pytest raises


VALUED = [o for o in O.OPTIONS if not o.flag]
FLAGS = [o for o in O.OPTIONS if o.flag]


@FAST
@given(option=st.sampled_from(VALUED), text=ANY_TEXT, from_ini=st.booleans())
@example(option=next(o for o in VALUED if o.name == "path"), text="bogus", from_ini=True)
@example(option=next(o for o in VALUED if o.name == "min_spearman"), text="nan", from_ini=False)
def test_pytest_values_convert_or_raise_a_one_line_input_error(option, text, from_ini):
    key = f"swapkl_{option.name}"
    config = FakeConfig(ini={key: text}) if from_ini else FakeConfig(options={key: text})
    try:
        values = O.from_pytest(config)
    except InputError as error:
        message = one_line(error)
        assert f"swapkl_{option.name}" in message and f"--swapkl-{option.name.replace('_', '-')}" in message
        names(message, text, *text.split(","))
    else:
        value = getattr(values, option.name)
        if text == "":
            assert value == option.default
        else:
            assert value == option.kind(text)
            assert option.choices is None or value in option.choices


@FEW
@given(option=st.sampled_from(FLAGS), text=ANY_TEXT)
def test_bad_ini_switch_is_a_one_line_input_error(option, text):
    try:
        values = O.from_pytest(FakeConfig(ini={f"swapkl_{option.name}": text}))
    except InputError as error:
        assert f"swapkl_{option.name}" in one_line(error)
    else:
        assert getattr(values, option.name) in (True, False)


OVERRIDE = st.one_of(st.text(max_size=12), NEAR, st.integers(-5, 10**6), st.floats(), st.booleans(), st.none(),
                     st.lists(st.integers(-2, 8), max_size=4), st.tuples(st.floats(), st.booleans()))


@FAST
@given(option=st.sampled_from(O.OPTIONS), value=OVERRIDE)
@example(option=next(o for o in O.OPTIONS if o.name == "rank_tolerance"), value=3)
@example(option=next(o for o in O.OPTIONS if o.name == "tokens"), value=1.5)
@example(option=next(o for o in O.OPTIONS if o.name == "min_spearman"), value=float("nan"))
@example(option=next(o for o in O.OPTIONS if o.name == "jaccard_k"), value=[4, 2, 2])
@example(option=next(o for o in O.OPTIONS if o.name == "threads"), value=1)
def test_marker_values_convert_like_the_command_line(option, value):
    try:
        values = O.from_pytest(FakeConfig(), {option.name: value})
    except InputError as error:
        assert f"swapkl option {option.name}=" in one_line(error)
        return
    parsed = vars(values)
    # What from_pytest returns converts to itself: every parsed value passes its own check again.
    again = vars(O.from_pytest(FakeConfig(), {k: v for k, v in parsed.items() if k != "model"}))
    assert again == parsed
    if not option.flag and parsed[option.name] is not None and option.kind is not str:
        assert option.kind is O._pair_spec or _valid(option.kind, parsed[option.name])


def test_unknown_marker_option_is_named():
    with pytest.raises(InputError, match="unknown swapkl option 'sede'") as error:
        O.from_pytest(FakeConfig(), {"sede": 1})
    one_line(error.value)


def test_defaults_pass_their_own_checks():
    for option in O.OPTIONS:
        if not option.flag and option.default is not None:
            assert O._parse(option, option.default, "default") == option.default, option.name


@pytest.mark.parametrize("value, expected", [(True, True), ("yes", True), ("false", False), (0, False), (1, True),
                                             ("maybe", None), (2, None), (0.5, None)])
def test_marker_switches_are_booleans(value, expected):
    if expected is None:
        with pytest.raises(InputError, match="swapkl option no_cache= .* must be true or false") as error:
            O.from_pytest(FakeConfig(), {"no_cache": value})
        one_line(error.value)
    else:
        assert O.from_pytest(FakeConfig(), {"no_cache": value}).no_cache is expected


# --- end to end: one case per parser kind ----------------------------------------------------------------


@pytest.mark.parametrize("argv, shown", [
    (["--pairs", "0-1,,2-3"], "0-1,,2-3"),
    (["--pairs", "window:x\n"], "window:x\\n"),
    (["--tokens", "1e309"], "1e309"),
    (["--seed", "-1"], "-1"),
    (["--bootstrap", HUGE], "5000 characters"),
    (["--prune-methods", "sleb,,oracle"], "sleb,,oracle"),
    (["--dtype", "float8"], "float8"),
    (["--device", "cuda:abc"], "cuda:abc"),
    (["--data", "{tmp}/no\nwhere.txt"], "no\\nwhere.txt"),
])
def test_swapkl_audit_fails_in_one_line(argv, shown, tmp_path, capsys, monkeypatch):
    if argv[0] == "--data":  # the data spec is read after the model: a stand-in for the demo model saves its load
        monkeypatch.setattr("pytest_swapkl.audit.runner.load_model", lambda *args, **kwargs: SimpleNamespace(
            tokenizer=None, vocab_size=2048, max_positions=512, n_layers=8))
    code = main(["audit", "demo", "--device", "cpu", *[arg.format(tmp=tmp_path) for arg in argv]])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len([line for line in lines if line.startswith("swapkl: error: ")]) == 1, captured.err
    assert lines[-1].startswith("swapkl: error: ") and shown in lines[-1], captured.err
    assert "Traceback" not in captured.err


def test_swapkl_audit_model_spec_fails_in_one_line(capsys):
    assert main(["audit", "x" * 5000]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a usable path" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, ini, message", [
    (["--swapkl-min-spearman=nan"], "", "*--swapkl-min-spearman (ini swapkl_min_spearman) must be a number from -1*"),
    ([], "swapkl_no_cache = maybe\n", "*ini swapkl_no_cache: invalid truth value 'maybe': write true or false*"),
])
def test_pytest_run_is_a_one_line_usage_error(pytester, argv, ini, message):
    pytester.makeini("[pytest]\n" + ini)
    result = pytester.runpytest_subprocess("--swapkl-model=demo", *argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert len([line for line in result.stderr.lines if line.strip()]) == 1, result.stderr.str()
    assert "Traceback" not in result.stderr.str()



def test_every_help_text_says_its_default_once():
    for option in O.OPTIONS:
        text = option.help_text.lower()
        assert text.count("default") <= 1, (option.name, text)
        assert not option.flag or "(default:" not in text, option.name  # a switch is off unless given
    batch = next(option for option in O.OPTIONS if option.name == "batch_size")
    assert batch.help_text == "sequences per batch (default: sized from memory)"
