"""numerics.py: the one set of rules for KL, I/R, ln(I/R) and perplexity at 0, below 0 by rounding and at overflow."""

import math

from hypothesis import example, given
from hypothesis import strategies as st

from pytest_swapkl import numerics

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


def test_the_edges_of_each_rule():
    assert numerics.log_ratio(0.5, -1e-9) is None and numerics.ratio(0.5, -1e-9) is None  # R rounded below 0
    assert numerics.log_ratio(-1e-9, 0.5) is None and numerics.ratio(-1e-9, 0.5) == 0.0  # I rounded below 0
    assert numerics.log_ratio(1e300, 1e-300) == math.log(1e300) - math.log(1e-300)  # finite where I/R is not
    assert numerics.ratio(1e300, 1e-300) is None
    assert numerics.ratio(0.0, 0.0) is None and numerics.log_ratio(0.0, 0.0) is None
    assert numerics.perplexity(0.0) == 1.0 and numerics.perplexity(-1e-12) < 1.0
    assert numerics.perplexity(709.0) == math.exp(709.0) and numerics.perplexity(710.0) == math.inf
    assert math.isnan(numerics.perplexity(math.nan)) and numerics.finite_or_none(math.inf) is None


@given(ANY_FLOAT, ANY_FLOAT)
@example(5e-324, 0.375)  # a subnormal ratio keeps a few bits: it is 0, not a number whose log is off by 0.1
def test_no_pair_of_floats_raises_and_answers_are_finite_or_none(interchange, replacement):
    for value in (numerics.ratio(interchange, replacement), numerics.log_ratio(interchange, replacement)):
        assert value is None or math.isfinite(value)
    ratio, log_ratio = numerics.ratio(interchange, replacement), numerics.log_ratio(interchange, replacement)
    if ratio and log_ratio is not None:
        assert math.isclose(math.log(ratio), log_ratio, rel_tol=1e-9, abs_tol=1e-9)


@given(ANY_FLOAT)
def test_perplexity_never_raises(nll):
    value = numerics.perplexity(nll)
    assert math.isnan(value) or value >= 0


def test_notes_are_one_line_per_kind_naming_the_worst():
    notes = numerics.Notes()
    notes.kl("R of L00-L01", -1e-8)
    notes.kl("I of L00-L01", -3e-8)
    notes.kl("I of L01-L02", 0.5)
    assert notes.perplexity("removal(1)", 800.0) == math.inf
    notes.perplexity("the unchanged model", 900.0)
    assert notes.ratio("L00-L01", 1e300, 1e-300) is None
    lines = notes.lines()
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert lines[0].startswith("2 KL value(s) below 0 by rounding (lowest -3e-08 nats, I of L00-L01)")
    assert lines[1].startswith("perplexity overflows for 2 measurement(s) (mean NLL up to 900 nats, the unchanged")
    assert lines[2].startswith("I/R is beyond the float range for 1 pair(s) (e.g. L00-L01)")


def test_the_audit_case_suggests_another_dtype_only_where_one_helps():
    from pytest_swapkl.analysis.judged import sanity_passes as _sane

    document = {"model": {"dtype": "float32"}, "noise_floor": 0.0, "pairs": [], "removal": [], "base": {"ppl": None}}
    passed, message = _sane(document)  # an overflowed perplexity is null in the JSON
    assert not passed and "e.g. base perplexity: the model runs in float32 already: check the weights" in message
    assert "--swapkl-dtype" not in message
    document["model"]["dtype"] = "float16"
    assert "try --swapkl-dtype bfloat16 or float32" in _sane(document)[1]
