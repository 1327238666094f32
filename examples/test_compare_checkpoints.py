"""Compare two checkpoints (or two calibration sets) in one test with the `swapkl_audit_for` factory.

In a release pipeline, pass the candidate with --swapkl-model and name the last release here.
"""

LAST_RELEASE = "demo"  # e.g. "checkpoints/v1.3" or a hub id with revision=...


def test_protocol_gap_did_not_widen(swapkl_audit, swapkl_audit_for):
    last = swapkl_audit_for(model=LAST_RELEASE)
    assert swapkl_audit.spearman >= last.spearman - 0.1, (
        f"Spearman(R, I) fell from {last.spearman:.3f} to {swapkl_audit.spearman:.3f}")


def test_most_redundant_pair_is_stable_across_calibration_samples(swapkl_audit, swapkl_audit_for):
    other_sample = swapkl_audit_for(seed=1)
    assert other_sample.document["data"]["sha256"] != swapkl_audit.document["data"]["sha256"]
    assert other_sample.ranking("interchange")[0] == swapkl_audit.ranking("interchange")[0]
