"""Published comparisons re-read with the plain and the expanded percentile interval, side by side.

``qeu_kedro.stats`` reads its bootstrap intervals at Hesterberg's expanded tail since 2026-12-07 (the
plain 2.5 % tail is too narrow on few units: ``benchmarks/interval_coverage.py``). The runs recorded
before that used the plain tail. This script takes the per-unit outputs a run left behind and prints,
for every paired comparison the pipeline reports, the interval and verdict both ways, from the same
resamples (the plain one by reading them at 2.5 %), and marks the verdicts that change.

    python benchmarks/interval_recheck.py alpaca <run>/data/08_reporting/ja_instruct/alpaca_sft/before_after.csv
    python benchmarks/interval_recheck.py jrte <run>/data/07_model_output/jrte/jrte_sentiment

``alpaca``: every paired measure of ``before_after.csv`` (held-out prompts; the pipeline's 10,000
resamples, seed 0). ``jrte``: every Level 5 candidate and the baseline against Level 2, and Level 2
against Level 1, macro-F1 and accuracy on dev and test (the pipeline's 2,000 resamples, seed 0).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import qeu_kedro.stats as stats  # noqa: E402


@contextlib.contextmanager
def plain_tail() -> Iterator[None]:
    """The plain percentile interval: every resample set read at (1 - confidence) / 2."""
    expanded = stats.expanded_tail
    stats.expanded_tail = lambda n, confidence: (1.0 - confidence) / 2.0
    try:
        yield
    finally:
        stats.expanded_tail = expanded


def both(compare: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    with plain_tail():
        plain = compare()
    return plain, compare()


def _row(name: str, plain: dict[str, Any], expanded: dict[str, Any]) -> str:
    def cell(c: dict[str, Any]) -> str:
        return f"{c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"

    changed = "**changed**" if plain["verdict"] != expanded["verdict"] else ""
    return f"| {name} | {plain['n']} | {cell(plain)} | {plain['verdict']} | {cell(expanded)} | {expanded['verdict']} | {changed} |"


HEADER = [
    "| comparison | n | plain percentile [95 %] | verdict | expanded percentile [95 %] | verdict | |",
    "| --- | ---: | --- | --- | --- | --- | --- |",
]


def alpaca(path: Path) -> list[str]:
    from qeu_kedro.pipelines.alpaca_sft.evaluation import _paired, paired_change

    table = pd.read_csv(path, keep_default_na=False)
    settings = {"ngram": 4, "bootstrap_resamples": 10_000, "bootstrap_seed": 0}
    lines = [f"`{path}` ({len(table)} held-out prompts), after − before:", "", *HEADER]
    for measure, higher in _paired(settings).items():
        if f"{measure}_before" not in table:
            continue
        plain, expanded = both(
            lambda m=measure, h=higher: paired_change(table[f"{m}_before"], table[f"{m}_after"], h, settings)
        )
        lines.append(_row(measure, plain, expanded))
    return lines


def jrte(folder: Path) -> list[str]:
    from qeu_kedro.pipelines.jrte_sentiment.report import paired_comparison

    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(folder / f"{name}_predictions.csv", dtype=str, keep_default_na=False)

    level2 = read("level2")
    names = [c.removeprefix("p_") for c in level2.columns if c.startswith("p_")]
    task = {"classes": [{"value": i, "name": n} for i, n in enumerate(names)]}
    statistics = {"n_resamples": 2_000, "confidence": 0.95, "seed": 0}
    pairs = [("level1", "level2")] + [
        ("level2", run)
        for run in ("baseline", "decision_rule", "soft_labels", "weighted_soft_labels", "ensemble", "seed_ensemble")
        if (folder / f"{run}_predictions.csv").exists()
    ]
    lines = [f"`{folder}`: B − A, paired over sentences:", "", *HEADER]
    for a_name, b_name in pairs:
        a, b = (level2 if n == "level2" else read(n) for n in (a_name, b_name))
        for split in ("dev", "test"):
            if split not in set(a["split"]) or split not in set(b["split"]):
                continue
            plain, expanded = both(lambda a=a, b=b, s=split: paired_comparison(a, b, task, statistics, s))
            for key in ("macro_f1", "accuracy"):
                lines.append(_row(f"{b_name} − {a_name}, {split}, {key}", plain[key], expanded[key]))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["alpaca", "jrte"])
    parser.add_argument("paths", type=Path, nargs="+")
    args = parser.parse_args()
    for path in args.paths:
        print("\n".join(alpaca(path) if args.kind == "alpaca" else jrte(path)), end="\n\n")


if __name__ == "__main__":
    main()
