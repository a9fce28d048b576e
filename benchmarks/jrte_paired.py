"""jrte_sentiment: two runs' predictions of the same sentences, compared sentence by sentence.

For a switch measured by running the pipeline twice (for example ``level2.average_last_epochs``,
checkpoint averaging, against Level 2 as committed), this prints each run's accuracy and macro-F1 on
dev and test with 95 % bootstrap intervals, and B minus A with a paired 95 % bootstrap interval
over the sentences and a verdict, in markdown for ``benchmarks/RESULTS_jrte.md``. The scores are
the pipeline's own (``report.classification_metrics`` and ``report.paired_comparison``: macro-F1
over the classes in the predictions' ``p_<class>`` columns).

    cp data/07_model_output/jrte/jrte_sentiment/level2_predictions.csv A.csv    # after the first run
    python benchmarks/jrte_paired.py A.csv data/07_model_output/jrte/jrte_sentiment/level2_predictions.csv \\
        --labels "Level 2" "Level 2, mean of the last 3 epochs"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from qeu_kedro.pipelines.jrte_sentiment.report import classification_metrics, paired_comparison  # noqa: E402


def _task(predictions: pd.DataFrame) -> dict:
    names = [c.removeprefix("p_") for c in predictions.columns if c.startswith("p_")]
    if not names:
        raise ValueError("the predictions have no p_<class> columns: pass the CSVs the pipeline's predict node writes")
    return {"classes": [{"value": i, "name": n} for i, n in enumerate(names)]}


def compare(a: pd.DataFrame, b: pd.DataFrame, labels: tuple[str, str], statistics: dict) -> str:
    """The markdown table: per split, each run's scores and B - A with its paired interval and verdict."""
    task = _task(a)
    if _task(b) != task:
        raise ValueError("the two runs' predictions have different classes")
    lines = [
        f"| split | measure | {labels[0]} [95 %] | {labels[1]} [95 %] | difference [95 % paired] | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for split in [s for s in ("dev", "test") if s in set(a["split"]) and s in set(b["split"])]:
        ma, mb = (classification_metrics(p, task, statistics, split) for p in (a, b))
        paired = paired_comparison(a, b, task, statistics, split)
        for key in ("accuracy", "macro_f1"):
            c = paired[key]
            lines.append(
                f"| {split} (n = {ma['n']}) | {key} | {ma[key]:.4f} [{ma[key + '_ci'][0]:.4f}, {ma[key + '_ci'][1]:.4f}] "
                f"| {mb[key]:.4f} [{mb[key + '_ci'][0]:.4f}, {mb[key + '_ci'][1]:.4f}] "
                f"| {c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['verdict']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="predictions CSV of run A (the reference)")
    parser.add_argument("b", type=Path, help="predictions CSV of run B")
    parser.add_argument("--labels", nargs=2, default=("A", "B"))
    parser.add_argument("--n-resamples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    statistics = {"n_resamples": args.n_resamples, "confidence": 0.95, "seed": args.seed}
    a, b = pd.read_csv(args.a), pd.read_csv(args.b)
    print(compare(a, b, tuple(args.labels), statistics))
    print(f"\nPaired bootstrap over sentences, {args.n_resamples:,} resamples (seed {args.seed}).")


if __name__ == "__main__":
    main()
