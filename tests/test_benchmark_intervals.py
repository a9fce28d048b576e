"""benchmarks/interval_coverage.py and interval_recheck.py: the plain and the expanded interval side by side."""

import numpy as np
import pandas as pd
import pytest

import qeu_kedro.stats as stats
from tests.conftest import load_benchmark


def test_the_coverage_simulation_counts_false_verdicts_of_both_intervals():
    coverage = load_benchmark("interval_coverage")
    plain, expanded = coverage.false_verdict_rates("flips", 6, reps=300, resamples=500, seed=0)
    assert 0 <= expanded < plain <= 1  # the expanded interval is wider: it calls fewer non-differences
    plain_many, expanded_many = coverage.false_verdict_rates("normal", 100, reps=100, resamples=400, seed=1)
    assert abs(plain_many - expanded_many) <= 0.05  # on many units the two nearly agree


def test_the_recheck_reads_one_run_both_ways_and_marks_a_changed_verdict(tmp_path):
    recheck = load_benchmark("interval_recheck")
    n = 6
    table = pd.DataFrame(
        {
            "ended_by_itself_before": np.zeros(n),
            "ended_by_itself_after": [1.0, 1.0, 1.0, 0.0, 0.0, 0.0],  # 3 of 6: plain better, expanded not
            "chrf_before": np.arange(n, dtype=float),
            "chrf_after": np.arange(n, dtype=float),
        }
    )
    table.to_csv(tmp_path / "before_after.csv", index=False)
    lines = recheck.alpaca(tmp_path / "before_after.csv")
    ended = next(line for line in lines if line.startswith("| ended_by_itself"))
    assert "| better |" in ended and ended.rstrip().endswith("| **changed** |")
    assert "no evidence" in ended.split("| better |")[1]
    chrf = next(line for line in lines if line.startswith("| chrf"))
    assert "**changed**" not in chrf and chrf.count("no evidence") == 2
    assert stats.expanded_tail(6, 0.95) == pytest.approx(0.00243, abs=1e-5)  # the patch was undone
