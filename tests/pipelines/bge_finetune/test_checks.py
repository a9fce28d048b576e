"""Minimum sizes of a fine-tuning run: a tiny pairs file stops at the split, before anything is trained."""

import pandas as pd
import pytest

from qeu_kedro.pipelines.bge_finetune.checks import check_split, corpus_size
from qeu_kedro.pipelines.bge_finetune.nodes import split_pairs
from qeu_kedro.validation import RawDataError

MINIMUM = {"train_pairs": 16, "test_queries": 10, "corpus": 20}


def pairs(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "anchor": [f"q{i}" for i in range(n)],
            "positive": [f"p{i}" for i in range(n)],
        }
    )


def params(**subset):
    return {
        "split": {"by": "pair", "test_size": 0.2, "seed": 0},
        "subset": {"max_train_pairs": None, "max_test_queries": None, "max_corpus": None, **subset},
        "minimum": dict(MINIMUM),
    }


def test_three_pairs_stop_at_the_split_naming_the_counts():
    with pytest.raises(
        RawDataError,
        match=r"dataset 'bge_pairs', column 'anchor'.*only 2 training pairs after the split of 3 pairs; "
        r"at least 16 are needed \(bge_finetune\.minimum\.train_pairs\)",
    ):
        split_pairs(pairs(3), params())


def test_too_few_test_queries_and_too_small_a_corpus_are_refused():
    with pytest.raises(RawDataError, match=r"only 8 test queries.*minimum\.test_queries"):
        split_pairs(pairs(40), params())
    with pytest.raises(RawDataError, match=r"only 15 corpus documents.*minimum\.corpus"):
        split_pairs(pairs(100), params(max_corpus=15, max_test_queries=12))


def test_enough_pairs_pass_unchanged_and_no_minimum_block_checks_nothing():
    train, test = split_pairs(pairs(100), params())
    assert (len(train), len(test)) == (80, 20)
    small_train, small_test = pairs(2), pairs(1)
    assert check_split(pairs(3), small_train, small_test, {"split": {}})[0] is small_train


def test_corpus_size_keeps_every_test_positive():
    all_pairs, test = pairs(100), pairs(30)
    assert corpus_size(all_pairs, test, params()) == 100
    assert corpus_size(all_pairs, test, params(max_corpus=50)) == 50
    assert corpus_size(all_pairs, test, params(max_corpus=10)) == 30
