"""jrte_sentiment: the paired bootstrap of macro-F1, from confusion counts against scikit-learn's ``f1_score``.

Every level's interval and every paired comparison in ``jrte_sentiment`` resamples the test sentences
(2,000 times in the pipeline, 10,000 in the benchmark tables) and scores macro-F1 on each resample.
``report.macro_f1_codes`` does that from confusion counts; before 2026-12-06 each resample called
scikit-learn's ``f1_score``. This times one paired comparison (macro-F1 of B minus A on the test split)
both ways, in one run on the same resamples, checks that they give the same interval, and prints the
ratio. Give it two prediction tables of the pipeline (the shipped sample's will do):

    kedro run --pipelines jrte_sentiment
    python benchmarks/jrte_bootstrap_speed.py data/07_model_output/jrte_sentiment/level1_predictions.csv \\
        data/07_model_output/jrte_sentiment/level2_predictions.csv --n-resamples 2000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from qeu_kedro.pipelines.jrte_sentiment.report import class_codes, macro_f1_codes  # noqa: E402
from qeu_kedro.stats import paired_bootstrap_statistic  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jrte_recipes import class_names  # noqa: E402  (its sibling script: the classes of a prediction table)


def paired_tables(a: pd.DataFrame, b: pd.DataFrame, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The split's true classes and A's and B's predicted classes, the same sentences in the same order."""
    # the classes: the p_<class> columns of either table (Level 1's table has none)
    with_classes = [t for t in (a, b) if any(c.startswith("p_") for c in t.columns)]
    if not with_classes:
        raise ValueError("neither table has p_<class> columns: pass a table the pipeline's predict node writes")
    names = class_names(with_classes[0])
    if any(class_names(t) != names for t in with_classes):
        raise ValueError(
            f"the two tables' p_<class> columns name different classes: {[class_names(t) for t in with_classes]}"
        )
    a = a[a["split"] == split].set_index("id")
    b = b[b["split"] == split].set_index("id")
    if set(a.index) != set(b.index):
        raise ValueError(f"the two tables do not hold the same {split} sentences")
    b = b.loc[a.index]
    return a["true"].to_numpy(), a["predicted"].to_numpy(), b["predicted"].to_numpy(), names


def time_both(a: pd.DataFrame, b: pd.DataFrame, split: str, boot: dict) -> dict:
    """Seconds for the paired comparison with each macro-F1, and both results (they must agree)."""
    from sklearn.metrics import f1_score

    true, pa, pb, names = paired_tables(a, b, split)
    t, ca, cb, k = class_codes(true, names), class_codes(pa, names), class_codes(pb, names), len(names)
    ways = {
        "scikit-learn f1_score": (
            lambda i: f1_score(true[i], pa[i], labels=names, average="macro", zero_division=0),
            lambda i: f1_score(true[i], pb[i], labels=names, average="macro", zero_division=0),
        ),
        "confusion counts (macro_f1_codes)": (
            lambda i: macro_f1_codes(t[i], ca[i], k),
            lambda i: macro_f1_codes(t[i], cb[i], k),
        ),
    }
    out = {}
    for name, (before, after) in ways.items():
        started = time.perf_counter()
        comparison = paired_bootstrap_statistic(before, after, len(true), **boot)
        out[name] = (time.perf_counter() - started, comparison)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--n-resamples", type=int, default=2_000)
    args = parser.parse_args()
    boot = {"n_resamples": args.n_resamples, "confidence": 0.95, "seed": 0}
    results = time_both(pd.read_csv(args.a), pd.read_csv(args.b), args.split, boot)
    (slow, c_slow), (fast, c_fast) = results.values()
    print(f"| macro-F1 per resample | seconds | B − A [95 % paired], {args.split}, {args.n_resamples:,} resamples |")
    print("| --- | ---: | --- |")
    for name, (seconds, c) in results.items():
        print(f"| {name} | {seconds:.2f} | {c.difference:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}] |")
    same = (c_slow.difference, c_slow.ci_low, c_slow.ci_high) == (c_fast.difference, c_fast.ci_low, c_fast.ci_high)
    print(
        f"\nRatio: confusion counts take {fast / slow:.3f} of scikit-learn's time ({slow / fast:.0f}x faster); "
        f"the same interval to the last bit: {same}"
    )


if __name__ == "__main__":
    main()
