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


def test_before_and_after_of_one_run_give_the_intervals_of_its_metrics_json(script):
    """The script sorted the queries by id as text before resampling; the pipeline resamples them in the order of
    its scores, so the same two files gave other intervals than metrics.json, which the docstring said they match."""
    from qeu_kedro.pipelines.bge_finetune.nodes import compare_scores

    rng = np.random.default_rng(4)
    ids = [f"q{i}" for i in rng.permutation(40)]  # the test split's order, not q0, q1, q10, ...
    before = pd.DataFrame(
        [
            {"query_id": q, "dim": dim} | dict.fromkeys(("ndcg@10", "mrr@10", "recall@1", "recall@10"), rng.uniform())
            for dim in (64, 32)
            for q in ids
        ]
    )
    after = before.assign(**{"ndcg@10": before["ndcg@10"] + rng.normal(0.05, 0.2, len(before))})
    statistics = {"n_resamples": 10_000, "confidence": 0.95, "seed": 0}  # conf/base's
    metrics = compare_scores(before, after, {"statistics": statistics})
    table = script.paired_table(before, after, ("before", "after"))
    for dim in ("64", "32"):
        c = metrics[dim]["ndcg@10"]
        assert f"| {c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['verdict']} |" in table
