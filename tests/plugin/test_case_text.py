"""The text a generated case carries where reporters look: the system-out block and the failure message."""

from pytest_swapkl.report.case_text import case_block, failure_text, number_lines


def test_intervals_are_folded_into_their_quantity_whatever_their_names():
    properties = [("model", "demo"), ("spearman", 0.83251), ("spearman_low", 0.7), ("spearman_high", 0.91),
                  ("interchange", 0.0123456), ("interchange_ci_low", 0.011), ("interchange_ci_high", 0.0139),
                  ("jaccard_low", 0.2), ("jaccard_high", 0.6), ("layers", [5, 3]), ("audit_cache_hit", True)]
    assert number_lines(properties) == ["spearman = 0.8325 [0.7, 0.91]", "interchange = 0.01235 [0.011, 0.0139]",
                                        "layers = {L03, L05}", "jaccard = [0.2, 0.6]"]


def test_the_block_is_stable_and_names_the_case_first():
    block = case_block("swapkl::pair[L03-L04]", "passed", "rank gap 0 is within the tolerance 2\nmore",
                       [("model", "demo"), ("verdict", "rank gap 0 is within the tolerance 2"), ("rank_gap", 0),
                        ("audit_computed_in", "this process")])
    assert block == "swapkl::pair[L03-L04] passed: rank gap 0 is within the tolerance 2\n  rank_gap = 0\n"
    audit = case_block("swapkl::audit", "passed", "all distances finite", [("model", "demo"), ("base_ppl", 49.0)])
    assert "  model = demo\n" in audit  # which audit: said once, on the audit case


def test_a_failure_message_keeps_its_text_and_adds_every_interval():
    text = failure_text("Spearman(R, I) = 0.83; minimum 0.99", [("spearman", 0.83), ("spearman_ci_low", 0.7),
                                                                 ("spearman_ci_high", 0.9), ("min_spearman", 0.99)])
    assert text.startswith("Spearman(R, I) = 0.83; minimum 0.99\n")
    assert "    spearman = 0.83 [0.7, 0.9]\n    min_spearman = 0.99" in text
    assert "\n" not in case_block("swapkl::x", "passed", "", [("model", "a\nb")]).split("\n")[0]
