"""A/B of two alpaca_sft runs on the same held-out prompts: their trained answers compared prompt by prompt.

Each run writes ``before_after.csv`` (one row per held-out prompt, the measures of the answers
before and after training). Two runs of one environment hold out the same prompts, so their
``*_after`` columns are paired: the difference B - A of each measure that the pipeline compares
(every measure of the answers), with a 95 % paired bootstrap
interval and a verdict (the pipeline's own directions and statistics). With ``before`` as a third
argument the base model's answers are compared instead (runs that differ in generation settings).

Usage:
    python benchmarks/alpaca_sft_ab.py A/before_after.csv B/before_after.csv [after|before]
"""

from __future__ import annotations

import sys

import pandas as pd

from qeu_kedro.pipelines.alpaca_sft.evaluation import _paired, paired_change


def main(path_a: str, path_b: str, stage: str = "after", ngram: int = 4) -> None:
    a, b = pd.read_csv(path_a), pd.read_csv(path_b)
    if list(a["NO"]) != list(b["NO"]) or not (a["prompt"] == b["prompt"]).all():
        sys.exit("The two runs did not hold out the same prompts in the same order: they cannot be paired.")
    if stage not in ("after", "before"):
        sys.exit(f"The third argument is after or before, not {stage!r}.")
    answers = "trained answers" if stage == "after" else "base model's answers"
    print(f"| measure of the {answers} | A | B | B - A [95 % interval] | verdict for B |")
    print("| --- | ---: | ---: | ---: | --- |")
    settings = {"bootstrap_resamples": 10_000, "bootstrap_seed": 0}
    direction = {True: "higher is better", False: "lower is better", None: "neither is better"}
    missing = []
    for measure, higher in _paired({"ngram": ngram}).items():
        column = f"{measure}_{stage}"
        if column not in a or column not in b:  # a run made before the measure existed (answer_loss: 2026-12-07)
            missing.append(measure)
            continue
        c = paired_change(a[f"{measure}_{stage}"], b[f"{measure}_{stage}"], higher, settings)
        print(
            f"| {measure} ({direction[higher]}) | {c['before']:.4f} | {c['after']:.4f} | "
            f"{c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['verdict']} |"
        )
    print(f"\nn = {len(a)} held-out prompts, 10,000 resamples.")
    if missing:
        print(f"Not in both files (runs made before the measure existed), so not compared: {', '.join(missing)}.")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", help="before_after.csv of run A")
    parser.add_argument("run_b", help="before_after.csv of run B")
    parser.add_argument("stage", nargs="?", default="after", choices=["after", "before"], help="answers compared")
    args = parser.parse_args()
    main(args.run_a, args.run_b, args.stage)
