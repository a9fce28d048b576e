"""bge_finetune nodes on tiny hand-made data (no training here: see test_training.py)."""

import math

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.pipelines.bge_finetune.nodes import (
    build_retrieval_task,
    evaluate_retrieval,
    make_pairs,
    matryoshka_dims,
    plot_ndcg,
    prepare_training_set,
    report_metrics,
    split_pairs,
)
from qeu_kedro.sample_data.pairs import make_pairs as make_sample_pairs
from qeu_kedro.validation import RawDataError

SOURCE = {"format": "table", "anchor_column": "anchor", "positive_column": "positive", "negative_column": "negative"}


def params(**overrides):
    p = {
        "source": dict(SOURCE),
        "split": {"by": "positive", "test_size": 0.25, "seed": 0},
        "subset": {"max_train_pairs": None, "max_test_queries": None, "max_corpus": None},
        "matryoshka_dims": "auto",
        "hard_negatives": {"use_negative_column": True, "mine": False},
        "evaluation": {"batch_size": 8},
        "show_progress": False,
    }
    p.update(overrides)
    return p


# ---------------------------------------------------------------- make_pairs


def test_make_pairs_renames_columns_adds_id_and_drops_repeated_anchors():
    raw = pd.DataFrame({"title": ["A", "B", "A", "C"], "overview": ["a", "b", "a2", "c"]})
    p = params(source={**SOURCE, "anchor_column": "title", "positive_column": "overview"})
    pairs = make_pairs(raw, p)
    assert list(pairs.columns) == ["id", "anchor", "positive"]
    assert pairs["anchor"].tolist() == ["A", "B", "C"]
    assert pairs["positive"].tolist() == ["a", "b", "c"]  # the first row of a repeated anchor is kept
    assert pairs["id"].tolist() == ["0", "1", "3"]


def test_make_pairs_keeps_a_negative_column_for_triplets():
    raw = pd.DataFrame({"id": [5, 6], "anchor": ["q1", "q2"], "positive": ["p1", "p2"], "negative": ["n1", "n2"]})
    pairs = make_pairs(raw, params())
    assert list(pairs.columns) == ["id", "anchor", "positive", "negative"]
    assert pairs["negative"].tolist() == ["n1", "n2"]


def test_make_pairs_fails_on_blank_text_unless_asked_to_drop_it():
    raw = pd.DataFrame({"anchor": ["q1", "q2", "q3"], "positive": ["p1", "  ", "p3"]})
    with pytest.raises(RawDataError, match=r"dataset 'bge_pairs', column 'positive', row 1 .*missing or blank"):
        make_pairs(raw, params())
    kept = make_pairs(raw, params(source={**SOURCE, "drop_incomplete": True}))
    assert kept["anchor"].tolist() == ["q1", "q3"]


def test_make_pairs_names_a_missing_column_and_the_parameter_to_set():
    with pytest.raises(RawDataError, match=r"'bge_pairs', column 'positive'.*positive_column"):
        make_pairs(pd.DataFrame({"anchor": ["q"], "text": ["t"]}), params())


def test_make_pairs_reads_squad_questions_and_paragraphs():
    squad = {
        "version": "1.1",
        "data": [
            {"title": "T", "paragraphs": [
                {"context": "Paragraph one.", "qas": [{"id": "a1", "question": "Q1?"}, {"id": "a2", "question": "Q2?"}]},
                {"context": "Paragraph two.", "qas": [{"id": "b1", "question": "Q3?"}]},
            ]}
        ],
    }
    pairs = make_pairs(squad, params(source={"format": "squad"}))
    assert pairs.to_dict("list") == {
        "id": ["a1", "a2", "b1"],
        "anchor": ["Q1?", "Q2?", "Q3?"],
        "positive": ["Paragraph one.", "Paragraph one.", "Paragraph two."],
    }
    with pytest.raises(RawDataError, match="SQuAD v1.1"):
        make_pairs({"articles": []}, params(source={"format": "squad"}))


# ---------------------------------------------------------------- split and task


def sample():
    return make_pairs(make_sample_pairs(n_pairs=120, seed=3), params())


def squad_like():
    # 5 questions per paragraph, as XQuAD
    rows = [(f"{i}-{j}", f"question {j} about {i}", f"paragraph {i}") for i in range(20) for j in range(5)]
    return pd.DataFrame(rows, columns=["id", "anchor", "positive"])


def test_split_by_positive_keeps_test_answers_out_of_training_and_is_seeded():
    pairs = squad_like()
    train, test = split_pairs(pairs, params())
    assert not set(train["positive"]) & set(test["positive"])
    assert not set(train["anchor"]) & set(test["anchor"])
    assert len(train) + len(test) == 100 and len(test) == 25
    again, _ = split_pairs(pairs, params())
    pd.testing.assert_frame_equal(train, again)


def test_split_by_pair_and_subset_caps():
    pairs = squad_like()
    p = params(split={"by": "pair", "test_size": 0.2, "seed": 1}, subset={"max_train_pairs": 30, "max_test_queries": 7})
    train, test = split_pairs(pairs, p)
    assert (len(train), len(test)) == (30, 7)
    assert not set(train["id"]) & set(test["id"])
    # the test set does not depend on the training cap: the split happens first
    _, test_full_train = split_pairs(pairs, params(split=p["split"], subset={"max_test_queries": 7}))
    pd.testing.assert_frame_equal(test, test_full_train)
    with pytest.raises(ValueError, match="split.by"):
        split_pairs(pairs, params(split={"by": "anchor", "test_size": 0.2, "seed": 1}))


def test_retrieval_task_queries_corpus_and_relevant():
    pairs = squad_like()
    _, test = split_pairs(pairs, params())
    task = build_retrieval_task(pairs, test, params())
    assert len(task["corpus"]) == 20  # all distinct positives, train and test
    assert len(task["queries"]) == len(test)
    for row in test.itertuples():
        (doc,) = task["relevant"][f"q{row.id}"]
        assert task["corpus"][doc] == row.positive
        assert task["queries"][f"q{row.id}"] == row.anchor
    capped = build_retrieval_task(pairs, test, params(subset={"max_corpus": 8}))
    assert len(capped["corpus"]) == 8
    assert set(test["positive"]) <= set(capped["corpus"].values())


def test_matryoshka_dims():
    assert matryoshka_dims(384, params()) == [384, 256, 128, 64, 32]
    assert matryoshka_dims(768, params()) == [768, 512, 256, 128, 64]
    assert matryoshka_dims(384, params(matryoshka_dims=[64, 384, 128])) == [384, 128, 64]
    with pytest.raises(ValueError, match="exceed the model's 384"):
        matryoshka_dims(384, params(matryoshka_dims=[768, 64]))


def test_prepare_training_set_pairs_or_given_triplets():
    pairs = pd.DataFrame({"id": ["1"], "anchor": ["q"], "positive": ["p"], "negative": ["n"]})
    assert list(prepare_training_set(pairs, None, params()).columns) == ["anchor", "positive", "negative"]
    no_neg = params(hard_negatives={"use_negative_column": False, "mine": False})
    assert list(prepare_training_set(pairs, None, no_neg).columns) == ["anchor", "positive"]


# ---------------------------------------------------------------- evaluation by hand


class HandMadeModel:
    """Stands in for a SentenceTransformer: fixed 4-d vectors, truncated like ``truncate_dim``."""

    def __init__(self, vectors):
        self.vectors = vectors

    def get_embedding_dimension(self):
        return 4

    def _encode(self, texts, truncate_dim=None, **_):
        import torch

        out = torch.tensor([self.vectors[t] for t in texts], dtype=torch.float32)
        return out[:, :truncate_dim] if truncate_dim else out

    encode_query = encode_document = _encode


VECTORS = {
    "doc 1": [1, 0, 0, 0],
    "doc 2": [0, 1, 0, 0],
    "doc 3": [0, 0, 1, 0],
    "doc 4": [0.1, 0.2, 0, 1],
    "query 1": [1, 0.1, 0, 0],
    "query 2": [0.5, 0.4, 0, 0],
    "query 3": [0.6, 0.5, 0.4, 0],
}


def test_evaluator_matches_ndcg_mrr_recall_computed_by_hand():
    pairs = pd.DataFrame({"id": ["1", "2", "3"], "anchor": ["query 1", "query 2", "query 3"], "positive": ["doc 1", "doc 2", "doc 3"]})
    corpus_pairs = pd.concat([pairs, pd.DataFrame({"id": ["4"], "anchor": ["unused"], "positive": ["doc 4"]})])
    task = build_retrieval_task(corpus_pairs, pairs, params())
    result = evaluate_retrieval(HandMadeModel(VECTORS), task, params(matryoshka_dims=[4, 2]))

    # 4 dims: cosine ranks of the relevant docs are 1, 2, 3 (doc 4 is far from every query)
    # 2 dims: doc 3 truncates to zero and doc 4 to (0.1, 0.2), close to queries 2 and 3: ranks 1, 3, 4
    for dim, ranks in (("4", [1, 2, 3]), ("2", [1, 3, 4])):
        ndcg = np.mean([1 / math.log2(r + 1) for r in ranks])  # one relevant doc: ideal DCG is 1
        mrr = np.mean([1 / r for r in ranks])
        assert result[dim]["ndcg@10"] == pytest.approx(ndcg)
        assert result[dim]["mrr@10"] == pytest.approx(mrr)
        assert result[dim]["recall@1"] == pytest.approx(1 / 3)
        assert result[dim]["recall@10"] == pytest.approx(1.0)
    assert result["4"]["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 0.5) / 3)
    assert result["2"]["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 4) / 3)


def test_report_and_plot():
    before = {"8": {"ndcg@10": 0.5, "mrr@10": 0.4, "recall@1": 0.3, "recall@10": 0.9},
              "4": {"ndcg@10": 0.4, "mrr@10": 0.3, "recall@1": 0.2, "recall@10": 0.8}}
    after = {"8": {**before["8"], "ndcg@10": 0.7}, "4": {**before["4"], "ndcg@10": 0.35}}
    log = {"n_train_rows": 10, "columns": ["anchor", "positive"], "steps": 2}
    task = {"queries": {"q1": "a"}, "corpus": {"d1": "x", "d2": "y"}, "relevant": {"q1": ["d1"]}}
    metrics = report_metrics(before, after, log, task, params())
    assert metrics["dims"] == [8, 4]
    assert metrics["ndcg@10_gain"] == {"8": pytest.approx(0.2), "4": pytest.approx(-0.05)}
    assert metrics["improved_at_every_dim"] is False
    assert metrics["data"] == {"n_test_queries": 1, "n_corpus": 2, "n_train_rows": 10, "triplets": False, "split_by": "positive"}
    fig = plot_ndcg(metrics)
    (ax,) = fig.axes
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[0.5, 0.4], [0.7, 0.35]]
