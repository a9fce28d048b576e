"""jrte_sentiment: two recipes, each trained with the same several seeds, compared sentence by sentence.

One run per recipe says little here: the seed alone moves Level 2's test macro-F1 by 0.02 to 0.04
(``benchmarks/RESULTS_jrte.md``). Given each recipe's prediction tables for the same seeds, in the
same order (seed ``k`` of A is paired with seed ``k`` of B), this prints for dev and test, in markdown
for ``benchmarks/RESULTS_jrte.md``:

- each seed: A's and B's macro-F1 and accuracy, and B minus A with a paired 95 % bootstrap interval
  over the sentences and a verdict;
- the mean over the seeds: B minus A of the seed-mean scores, every seed scored on the same resample
  of sentences. Its interval covers which sentences were drawn, **not** which seeds were: with a few
  seeds it is narrower than the recipes' true uncertainty, and the table says so;
- the seed ensembles (each recipe's mean class probabilities over its seeds, as the pipeline's
  ``average_runs``), B's minus A's, and both recipes' models in one ensemble minus A's ensemble.

Macro-F1 is over the classes of the tables' ``p_<class>`` columns (the pipeline's: every configured
class counts, an absent one scores 0), from confusion counts (the pipeline's ``report.macro_f1_codes``,
tested against scikit-learn's ``f1_score``), so 10,000 resamples take seconds.

    python benchmarks/jrte_recipes.py --a A_seed42.csv A_seed1.csv --b B_seed42.csv B_seed1.csv \\
        --seeds 42 1 --labels "first token" "mean pooling"
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from qeu_kedro.pipelines.jrte_sentiment.report import class_codes, macro_f1_codes  # noqa: E402
from qeu_kedro.stats import paired_bootstrap_statistic  # noqa: E402

Stat = Callable[[np.ndarray], float]


def class_names(predictions: pd.DataFrame) -> list[str]:
    names = [c.removeprefix("p_") for c in predictions.columns if c.startswith("p_")]
    if not names:
        raise ValueError("the predictions have no p_<class> columns: pass the CSVs the pipeline's predict node writes")
    return names


def aligned(tables: list[pd.DataFrame], split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The split's true classes (codes), every table's predicted classes (codes, tables x sentences) and class
    probabilities (tables x sentences x classes), and the class names; sentences in the order of their ids."""
    names = class_names(tables[0])
    first = tables[0][tables[0]["split"] == split].sort_values("id").reset_index(drop=True)
    probs, predicted = [], []
    for k, table in enumerate(tables):
        if class_names(table) != names:
            raise ValueError(f"table {k} has classes {class_names(table)}, the first has {names}")
        part = table[table["split"] == split].sort_values("id").reset_index(drop=True)
        if not part["id"].equals(first["id"]) or not part["true"].equals(first["true"]):
            raise ValueError(f"table {k} does not hold the same {split} sentences (ids and true classes) as the first")
        probs.append(part[[f"p_{n}" for n in names]].to_numpy(dtype=np.float64))
        predicted.append(part["predicted"])
    unknown = sorted(set(first["true"]).union(*map(set, predicted)) - set(names))
    if unknown:
        raise ValueError(f"classes {unknown} are not among the p_<class> columns {names}")
    true = class_codes(first["true"], names)
    return true, np.stack([class_codes(p, names) for p in predicted]), np.stack(probs), names


def statistics(true: np.ndarray, preds: list[np.ndarray], k: int) -> dict[str, Stat]:
    """Seed-mean macro-F1 and accuracy of the given predictions, as functions of a resample's indices."""
    return {
        "macro_f1": lambda i: float(np.mean([macro_f1_codes(true[i], p[i], k) for p in preds])),
        "accuracy": lambda i: float(np.mean([(true[i] == p[i]).mean() for p in preds])),
    }


def _row(label: str, true: np.ndarray, a: list[np.ndarray], b: list[np.ndarray], k: int, boot: dict) -> str:
    sa, sb = statistics(true, a, k), statistics(true, b, k)
    cells = [label]
    for key in ("macro_f1", "accuracy"):
        c = paired_bootstrap_statistic(sa[key], sb[key], len(true), **boot)
        cells += [
            f"{c.before:.4f}",
            f"{c.after:.4f}",
            f"{c.difference:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}]",
            c.verdict,
        ]
    return "| " + " | ".join(cells) + " |"


def compare(a: list[pd.DataFrame], b: list[pd.DataFrame], seeds: list[str], labels: tuple[str, str], boot: dict) -> str:
    """The markdown tables, one per split that every table holds (dev, test)."""
    if not (len(a) == len(b) == len(seeds)) or not seeds:
        raise ValueError(f"one table per seed on each side: {len(a)} (A), {len(b)} (B), {len(seeds)} seeds")
    out = []
    splits = [s for s in ("dev", "test") if all(s in set(t["split"]) for t in a + b)]
    for split in splits:
        true, predicted, probs, names = aligned(a + b, split)
        k = len(names)
        pa, pb = list(predicted[: len(a)]), list(predicted[len(a) :])
        ens_a, ens_b = probs[: len(a)].mean(0).argmax(1), probs[len(a) :].mean(0).argmax(1)
        both = probs.mean(0).argmax(1)
        out += [
            f"**{split}** (n = {len(true)}): A = {labels[0]}, B = {labels[1]}",
            "",
            "| seeds | A macro-F1 | B macro-F1 | B − A [95 % paired] | verdict "
            "| A accuracy | B accuracy | B − A [95 % paired] | verdict |",
            "| --- | ---: | ---: | --- | --- | ---: | ---: | --- | --- |",
        ]
        out += [_row(f"seed {s}", true, [x], [y], k, boot) for s, x, y in zip(seeds, pa, pb, strict=True)]
        if len(seeds) > 1:
            out += [
                _row(f"mean of the {len(seeds)} seeds ¹", true, pa, pb, k, boot),
                _row(f"seed ensembles ({len(seeds)} models each)", true, [ens_a], [ens_b], k, boot),
                _row(
                    f"both recipes' {2 * len(seeds)} models in one ensemble (B) − A's ensemble",
                    true,
                    [ens_a],
                    [both],
                    k,
                    boot,
                ),
            ]
        out.append("")
    out.append(
        f"Paired bootstrap over sentences, {boot['n_resamples']:,} resamples (seed {boot['seed']}), the same resample "
        "for A and B."
        + (
            " ¹ Every seed is scored on the same resample: the interval covers the sentences drawn, not the seeds "
            f"(only {len(seeds)} were trained), so it understates how much a recipe's mean moves with other seeds."
            if len(seeds) > 1
            else ""
        )
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, nargs="+", required=True, help="recipe A's predictions CSVs, one per seed")
    parser.add_argument("--b", type=Path, nargs="+", required=True, help="recipe B's, the same seeds in the same order")
    parser.add_argument("--seeds", nargs="+", required=True, help="the seeds' names, in the same order")
    parser.add_argument("--labels", nargs=2, default=("A", "B"))
    parser.add_argument("--n-resamples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    boot = {"n_resamples": args.n_resamples, "confidence": 0.95, "seed": args.seed}
    a, b = [pd.read_csv(p) for p in args.a], [pd.read_csv(p) for p in args.b]
    print(compare(a, b, args.seeds, tuple(args.labels), boot))


if __name__ == "__main__":
    main()
