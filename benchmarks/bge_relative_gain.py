"""The relative NDCG@10 gain of a bge_finetune run per Matryoshka dimension, with its 95 % interval, read
against a target gain (issue 12's TMDB target: +10 % at the full dimension).

``metrics.json`` gives the relative gain as a point estimate beside the interval of the *difference*; a
target on the relative gain needs the interval of the ratio itself. This bootstraps it from the run's per-query
scores, the same resample for before and after (``qeu_kedro.stats.bootstrap_statistic_interval``: the
expanded percentile interval, 10,000 resamples, seed 0):

    python benchmarks/bge_relative_gain.py data/07_model_output/movielens/bge_finetune [--target 0.10]

The target reads "reached" when the whole interval is at or above it, "not reached" when the whole interval is
below it, and "not shown either way" otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from qeu_kedro.stats import bootstrap_statistic_interval

METRIC = "ndcg@10"


def relative_gains(before: pd.DataFrame, after: pd.DataFrame, target: float, n_resamples: int = 10_000) -> list[dict]:
    """Per dimension (largest first): the relative gain of ``after`` over ``before`` with its interval."""
    rows = []
    for dim in sorted(before["dim"].unique(), reverse=True):
        b = before[before["dim"] == dim].set_index("query_id")[METRIC]
        a = after[after["dim"] == dim].set_index("query_id")[METRIC]
        if set(a.index) != set(b.index):
            raise ValueError(f"dimension {dim}: the two runs scored different queries")
        x, y = b.to_numpy(np.float64), a.loc[b.index].to_numpy(np.float64)
        gain, low, high = bootstrap_statistic_interval(
            lambda i, x=x, y=y: y[i].mean() / x[i].mean() - 1.0, len(x), n_resamples=n_resamples
        )
        reading = "reached" if low >= target else "not reached" if high < target else "not shown either way"
        rows.append({"dim": int(dim), "n": len(x), "relative": gain, "ci_low": low, "ci_high": high, "target": reading})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the folder of scores_before.parquet and scores_after.parquet")
    parser.add_argument("--target", type=float, default=0.10, help="the relative gain to read the interval against")
    args = parser.parse_args(argv)
    before = pd.read_parquet(args.folder / "scores_before.parquet")
    after = pd.read_parquet(args.folder / "scores_after.parquet")
    print(f"| dim | n | relative {METRIC} gain [95 % interval] | target {args.target:+.0%} |")
    print("| ---: | ---: | ---: | --- |")
    for row in relative_gains(before, after, args.target):
        print(
            f"| {row['dim']} | {row['n']} | {row['relative']:+.1%} [{row['ci_low']:+.1%}, {row['ci_high']:+.1%}] "
            f"| {row['target']} |"
        )


if __name__ == "__main__":
    main()
