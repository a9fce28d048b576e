"""benchmarks/bge_relative_gain.py: the interval of a relative gain, read against a target."""

import numpy as np
import pandas as pd

from tests.conftest import load_benchmark


def _scores(values: np.ndarray, dim: int = 384) -> pd.DataFrame:
    return pd.DataFrame({"query_id": [f"q{i}" for i in range(len(values))], "dim": dim, "ndcg@10": values})


def test_the_target_is_read_on_the_interval_of_the_relative_gain():
    gains = load_benchmark("bge_relative_gain")
    rng = np.random.default_rng(1)
    before = rng.uniform(0.2, 0.6, 400)
    clear = gains.relative_gains(_scores(before), _scores(before * 1.5), target=0.10, n_resamples=500)[0]
    # every query gains 50 %: every resample's ratio is 1.5, so the interval is that one point
    assert abs(clear["relative"] - 0.5) < 1e-12 and abs(clear["ci_low"] - 0.5) < 1e-12
    assert clear["target"] == "reached"
    # a noisy gain of about +10 %: its interval straddles the target
    noisy = before * 1.10 + rng.normal(0, 0.15, 400)
    row = gains.relative_gains(_scores(before), _scores(noisy), target=0.10, n_resamples=2000)[0]
    assert row["ci_low"] < 0.10 < row["ci_high"] and row["target"] == "not shown either way"
    same = gains.relative_gains(_scores(before), _scores(before), target=0.10, n_resamples=500)[0]
    assert same["relative"] == 0 and same["target"] == "not reached"


def test_queries_missing_from_one_run_are_refused():
    gains = load_benchmark("bge_relative_gain")
    before = _scores(np.full(10, 0.5))
    try:
        gains.relative_gains(before, before.iloc[:9], target=0.1, n_resamples=100)
    except ValueError as err:
        assert "different queries" in str(err)
    else:
        raise AssertionError("a run missing a query was accepted")
