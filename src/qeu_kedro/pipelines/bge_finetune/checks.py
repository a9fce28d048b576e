"""Minimum sizes of a fine-tuning run, checked right after the split, before anything is trained or written.

A pairs file of a few rows would train on a couple of pairs and report NDCG@10 = 1.0 on
one query (a corpus of fewer than 10 documents ranks every answer in the top 10), then
replace the shared fine-tuned model. ``bge_finetune.minimum`` sets how many training pairs,
test queries and corpus documents a run needs; fewer is a :class:`~qeu_kedro.validation.RawDataError`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from qeu_kedro.validation import fail

DATASET = "bge_pairs"
_WHAT_TO_DO = (
    "Use a larger pairs file, or lower bge_finetune.minimum.* in the parameters for a smoke test "
    "(its metrics then mean little)."
)


def corpus_size(pairs: pd.DataFrame, test: pd.DataFrame, params: dict[str, Any]) -> int:
    """Documents the retrieval corpus will hold: the distinct positives, capped by ``subset.max_corpus``
    (never below the test positives, which the corpus always keeps)."""
    distinct = int(pairs["positive"].nunique())
    cap = params["subset"]["max_corpus"]
    return min(distinct, max(int(cap), int(test["positive"].nunique()))) if cap else distinct


def check_split(
    pairs: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(train, test)`` unchanged when they meet ``params["minimum"]``; else fail naming the count.

    Without a ``minimum`` block (a node called directly, e.g. in a test) nothing is checked.
    """
    minimum = params.get("minimum")
    if not minimum:
        return train, test
    sizes = (
        ("anchor", "training pairs", len(train), minimum["train_pairs"], "train_pairs"),
        ("anchor", "test queries", len(test), minimum["test_queries"], "test_queries"),
        (
            "positive",
            "corpus documents (distinct positives)",
            corpus_size(pairs, test, params),
            minimum["corpus"],
            "corpus",
        ),
    )
    for column, what, n, least, key in sizes:
        if n < least:
            fail(
                DATASET,
                column,
                None,
                f"only {n} {what} after the split of {len(pairs)} pairs; at least {least} are needed "
                f"(bge_finetune.minimum.{key}) for a meaningful evaluation; nothing was trained or written",
                _WHAT_TO_DO,
            )
    return train, test
