"""Two bge_finetune recipes compared query by query: NDCG@10 of recipe B minus recipe A at every dimension.

Each run of ``bge_finetune`` overwrites ``data/07_model_output/<prefix>bge_finetune/scores_after.parquet``
(one row per test query and dimension). Copy that file aside after each run, then compare two copies:

    python benchmarks/bge_recipes_paired.py A_scores_after.parquet B_scores_after.parquet --labels A B

B may be several files: runs of one recipe with different training seeds. Their per-query scores are
then averaged over the runs (the recipe's mean over seeds), and that mean is compared with A. A may be
``scores_before.parquet`` (the base model) to ask what the recipe gains on average:

    python benchmarks/bge_recipes_paired.py s42/scores_before.parquet s42/scores_after.parquet \
        s7/scores_after.parquet --labels base "recipe, mean of 2 seeds"

Both runs must have scored the same test queries (the same split parameters); the script refuses
otherwise. The interval is the paired bootstrap of ``qeu_kedro.stats`` with conf/base's statistics (10,000
resamples of the queries, seed 0, the same for every dimension) over the queries in A's order, as the pipeline's
``compare_scores`` takes them: A = ``scores_before.parquet`` and B = that run's ``scores_after.parquet`` give
``metrics.json``'s intervals to the last digit (a test checks this).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from qeu_kedro.stats import paired_bootstrap  # noqa: E402


def paired_table(a: pd.DataFrame, b: pd.DataFrame, labels: tuple[str, str], metric: str = "ndcg@10") -> str:
    """Markdown rows: per dimension, A's and B's mean, B - A with its 95 % interval and the verdict."""
    joined = a.merge(b, on=["query_id", "dim"], suffixes=("_a", "_b"), validate="one_to_one")
    if len(joined) != len(a) or len(joined) != len(b):
        raise SystemExit(
            f"the two runs did not score the same (query, dim) rows: {len(a)} and {len(b)}, {len(joined)} shared. "
            "Compare runs made with the same split parameters."
        )
    lines = [
        f"| dim | {metric} {labels[0]} | {metric} {labels[1]} | {labels[1]} minus {labels[0]} [95 % interval] | verdict |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    for dim in sorted(joined["dim"].unique(), reverse=True):
        rows = joined[joined["dim"] == dim]  # A's query order, as compare_scores keeps the before table's
        c = paired_bootstrap(rows[f"{metric}_a"].to_numpy(), rows[f"{metric}_b"].to_numpy(), seed=0)
        lines.append(
            f"| {dim} | {c.before:.4f} | {c.after:.4f} | {c.difference:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}] "
            f"| {c.verdict} |"
        )
    n = joined["query_id"].nunique()
    return "\n".join([*lines, "", f"n = {n} test queries, paired bootstrap over queries (10,000 resamples)."])


def mean_over_runs(runs: list[pd.DataFrame]) -> pd.DataFrame:
    """The per-(query, dim) mean of several runs' scores; the runs must have scored the same rows."""
    keys = ["query_id", "dim"]
    first = runs[0].sort_values(keys).reset_index(drop=True)
    for i, run in enumerate(runs[1:], start=2):
        run = run.sort_values(keys).reset_index(drop=True)
        if not run[keys].equals(first[keys]):
            raise SystemExit(
                f"run {i} of B did not score the same (query, dim) rows as run 1; "
                "average only runs made with the same split parameters."
            )
    stacked = pd.concat(runs, ignore_index=True)
    return stacked.groupby(keys, as_index=False).mean(numeric_only=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="scores_after.parquet of recipe A (the reference)")
    parser.add_argument(
        "b", type=Path, nargs="+", help="scores_after.parquet of recipe B; several: seeds of B, averaged per query"
    )
    parser.add_argument("--labels", nargs=2, default=("A", "B"))
    parser.add_argument("--metric", default="ndcg@10", choices=["ndcg@10", "mrr@10", "recall@1", "recall@10"])
    args = parser.parse_args()
    b = mean_over_runs([pd.read_parquet(path) for path in args.b])
    print(paired_table(pd.read_parquet(args.a), b, tuple(args.labels), args.metric))


if __name__ == "__main__":
    main()
