"""benchmarks/bge_recipes_paired.py: recipes compared query by query, and several seeds of one recipe averaged."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def script():
    return load_benchmark("bge_recipes_paired")


def scores(values: dict[int, list[float]], seed: int = 0) -> pd.DataFrame:
    """One run's per-query table: ``values[dim]`` holds the NDCG@10 of queries 0..n-1 (rows shuffled)."""
    rows = [
        {"query_id": f"q{i}", "dim": dim, "ndcg@10": v, "mrr@10": v, "recall@1": v, "recall@10": v}
        for dim, column in values.items()
        for i, v in enumerate(column)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_the_mean_over_seeds_is_taken_query_by_query(script):
    a = scores({64: [0.0, 1.0, 0.5], 32: [0.2, 0.4, 0.6]}, seed=1)
    b = scores({64: [1.0, 0.0, 0.5], 32: [0.4, 0.4, 0.0]}, seed=2)
    mean = script.mean_over_runs([a, b]).set_index(["query_id", "dim"])["ndcg@10"]
    assert mean[("q0", 64)] == 0.5 and mean[("q1", 64)] == 0.5 and mean[("q2", 64)] == 0.5
    assert mean[("q0", 32)] == pytest.approx(0.3) and mean[("q2", 32)] == pytest.approx(0.3)


def test_runs_of_other_queries_are_not_averaged(script):
    a = scores({64: [0.1, 0.2, 0.3]})
    b = scores({64: [0.1, 0.2, 0.3, 0.4]})
    with pytest.raises(SystemExit, match="same split parameters"):
        script.mean_over_runs([a, b])


def test_identical_runs_differ_by_zero_and_a_constructed_gain_is_better(script):
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 0.8, 200)
    same = script.paired_table(scores({64: list(base)}), scores({64: list(base)}, seed=3), ("A", "B"))
    assert "+0.0000 [+0.0000, +0.0000] | no evidence" in same
    gained = script.paired_table(scores({64: list(base)}), scores({64: list(base + 0.1)}), ("A", "B"))
    assert "+0.1000 [+0.1000, +0.1000] | better" in gained
