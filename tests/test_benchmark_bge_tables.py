"""benchmarks/bge_tables.py: every metric of a metrics.json with its paired difference, interval and verdict."""

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.pipelines.bge_finetune.nodes import REPORTED, report_metrics
from tests.conftest import load_benchmark
from tests.pipelines.bge_finetune.test_nodes import params


@pytest.fixture(scope="module")
def script():
    return load_benchmark("bge_tables")


def metrics() -> dict:
    """A metrics.json made by the pipeline's report_metrics; recall@1 is 0 before at every query (relative: null)."""
    rng = np.random.default_rng(0)
    ids = [f"q{i}" for i in range(30)]
    before = pd.DataFrame(
        [{"query_id": q, "dim": dim} | {m: float(rng.uniform()) for m in REPORTED} for dim in (64, 32) for q in ids]
    ).assign(**{"recall@1": 0.0})
    after = before.assign(**{m: (before[m] + rng.normal(0.1, 0.1, len(before))).clip(0, 1) for m in REPORTED})
    task = {"queries": dict.fromkeys(ids, "text"), "corpus": {f"d{i}": "text" for i in range(40)}}
    log = {"n_train_rows": 100, "columns": ["anchor", "positive"], "steps": 4, "runtime_s": 9.0, "validation": {}}
    return report_metrics(before, after, log, task, params())


def test_every_metric_is_printed_with_the_interval_and_verdict_of_metrics_json(script):
    m = metrics()
    assert m["comparison"]["32"]["recall@1"]["relative"] is None  # the case that crashed the table
    table = script.table(m, "run")
    for dim in ("64", "32"):
        for key, name in script.METRICS.items():
            c = m["comparison"][dim][key]
            relative = "n/a" if c["relative"] is None else f"{c['relative']:+.1%}"
            row = (
                f"| {dim} | {name} | {m['before'][dim][key]:.4f} | {m['after'][dim][key]:.4f} | "
                f"{c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {relative} | {c['verdict']} |"
            )
            assert row in table
    assert "| 32 | Recall@1 | 0.0000 |" in table and "| n/a |" in table
