"""The plugin's terminal summary and closing line, on a synthetic audit document (no model, no pytest run)."""

from pytest_swapkl.analysis.agreement import Tolerances
from pytest_swapkl.analysis.stats import average_ranks
from pytest_swapkl.plugin.session import AuditRecord
from pytest_swapkl.plugin.summary import summary_lines
from pytest_swapkl.plugin.terminal import audit_time


def document(r_values, i_values):
    rank_r, rank_i = average_ranks(r_values), average_ranks(i_values)
    pairs = [{"i": n, "j": n + 1, "replacement": r, "interchange": i, "rank_replacement": float(rank_r[n]),
              "rank_interchange": float(rank_i[n]), "log_ratio": None,
              "ci": {"replacement": [r, r], "interchange": [i, i]}} for n, (r, i) in enumerate(zip(r_values, i_values))]
    return {"model": {"name": "demo", "architecture": "GPTNeoXForCausalLM", "n_layers": len(pairs) + 1,
                      "dtype": "float32", "device": "cpu"},
            "data": {"source": "demo", "n_sequences": 8, "seq_len": 128, "sha256": "ab" * 32},
            "base": {"ppl": 49.0}, "noise_floor": 0.0, "pairs": pairs,
            "summary": {"spearman": 0.5, "kendall": 0.4,
                        "topk": [{"k": 2, "jaccard": 1 / 3, "replacement_layers": [5, 3],
                                  "interchange_layers": [4, 5]}]}}


def test_divergent_pairs_have_a_header_on_every_column_and_leave_out_agreeing_pairs():
    record = AuditRecord(document([0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.2, 0.3, 0.4, 0.1]), cache_hit=False,
                         seconds=520.04)
    lines = summary_lines(record, Tolerances(rank=1, rank_is_fraction=False))
    assert "time   audit computed in 520.0 s, before the tests (pytest's time below leaves it out)" in lines
    header = lines[lines.index("most divergent pairs:") + 1]
    assert header.split() == ["pair", "R", "I", "rank", "R", "rank", "I", "gap", "tolerance", "verdict"]
    rows = [line for line in lines if line.startswith("L0")]
    assert [row.split()[0] for row in rows] == ["L00-L01", "L04-L05"]  # the three pairs with gap 0 are left out
    assert rows[0].split() == ["L00-L01", "0.1000", "0.5000", "1", "5", "4", "1", "FAIL"]
    assert "top-2: replacement {L03, L05}  interchange {L04, L05}  Jaccard 0.33" in lines


def test_no_divergent_pair_is_said_in_a_line():
    record = AuditRecord(document([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]), cache_hit=True, seconds=4.0)
    lines = summary_lines(record, Tolerances())
    assert "most divergent pairs: none (every pair's rank intervals under R and I meet)" in lines
    assert audit_time(record) == "audit read from the cache: cache hit in 4.0 s"
