"""bge_finetune nodes on tiny hand-made data (no training here: see test_training.py)."""

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from qeu_kedro.pipelines.bge_finetune.nodes import (
    VALIDATION_METRIC,
    build_retrieval_task,
    compare_scores,
    evaluate_retrieval,
    make_pairs,
    matryoshka_dims,
    mean_scores,
    plot_ndcg,
    prepare_training_set,
    report_metrics,
    soup_seeds,
    split_pairs,
    split_validation,
)
from qeu_kedro.sample_data.pairs import make_pairs as make_sample_pairs
from qeu_kedro.validation import RawDataError
from qeu_kedro.weights import average_state_dicts
from tests.conftest import REPO

SOURCE = {
    "format": "table",
    "anchor_column": "anchor",
    "positive_column": "positive",
    "negative_column": "negative",
    "id_column": None,
    "drop_incomplete": False,
}


def params(**overrides):
    p = {
        "source": dict(SOURCE),
        "split": {"by": "positive", "test_size": 0.25, "seed": 0},
        "subset": {"max_train_pairs": None, "max_test_queries": None, "max_corpus": None},
        "matryoshka_dims": "auto",
        "hard_negatives": {"use_negative_column": True, "mine": False},
        "evaluation": {"batch_size": 8},
        "validation": {
            "fraction": 0.0,
            "eval_steps": None,
            "early_stopping_patience": None,
            "keep_base_if_better": True,
        },
        "loss": {"name": "mnrl", "mini_batch_size": 8, "matryoshka_weights": None},
        "prompts": {"query": "", "document": ""},
        "statistics": {"n_resamples": 2000, "confidence": 0.95, "seed": 0},
        "labels": {"model": "test model", "data": "test pairs"},
        "show_progress_bar": False,
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


def test_make_pairs_refuses_a_header_line_repeated_inside_the_file():
    """TMDB read with usecols [id, title, overview], two exports joined: the second header line became the pair
    'title' -> 'overview' (every column is text, and the renames hid the names the row repeats)."""
    raw = pd.DataFrame({"id": ["1", "id", "2"], "overview": ["a", "overview", "b"], "title": ["A", "title", "B"]})
    p = params(source={**SOURCE, "anchor_column": "title", "positive_column": "overview", "id_column": "id"})
    with pytest.raises(RawDataError, match=r"dataset 'bge_pairs', row 1 .*the row repeats the header line"):
        make_pairs(raw, p)


def test_make_pairs_keeps_a_negative_column_for_triplets():
    raw = pd.DataFrame({"id": [5, 6], "anchor": ["q1", "q2"], "positive": ["p1", "p2"], "negative": ["n1", "n2"]})
    pairs = make_pairs(raw, params())
    assert list(pairs.columns) == ["id", "anchor", "positive", "negative"]
    assert pairs["negative"].tolist() == ["n1", "n2"]


def test_a_negative_column_the_run_does_not_use_is_neither_checked_nor_trained_on():
    """use_negative_column: false, or negative_column: null: a column named 'negative' is dropped before the
    checks, so its blank cells neither refuse the file nor (drop_incomplete) drop pairs from test and validation."""
    raw = pd.DataFrame(
        {
            "anchor": [f"q{i}" for i in range(6)],
            "positive": [f"p{i}" for i in range(6)],
            "negative": ["n0", None, "n2", None, None, "n5"],
        }
    )
    unused = {"use_negative_column": False, "mine": False}
    assert list(make_pairs(raw, params(hard_negatives=unused)).columns) == ["id", "anchor", "positive"]
    dropping = params(hard_negatives=unused, source={**SOURCE, "drop_incomplete": True})
    assert len(make_pairs(raw, dropping)) == 6
    full = raw.assign(negative=[f"n{i}" for i in range(6)])
    no_column = params(source={**SOURCE, "negative_column": None})
    pairs = make_pairs(full, no_column)
    assert list(pairs.columns) == ["id", "anchor", "positive"]
    assert list(prepare_training_set(pairs, None, no_column).columns) == ["anchor", "positive"]
    # a negative_column of another name trains on that column, never on the one called 'negative'
    other = params(source={**SOURCE, "negative_column": "hard"})
    assert list(make_pairs(full, other).columns) == ["id", "anchor", "positive"]  # no 'hard' column: pairs
    with pytest.raises(RawDataError, match=r"column 'negative'.*negative_column is 'hard'.*collide"):
        make_pairs(full.assign(hard="h"), other)


@pytest.mark.parametrize("own", ["positive", "anchor"])
def test_a_triplet_whose_negative_is_its_own_positive_or_anchor_is_refused(own):
    raw = pd.DataFrame({"anchor": ["q1", "q2", "q3"], "positive": ["p1", "p2", "p3"], "negative": ["n1", "n2", "x"]})
    raw.loc[2, "negative"] = raw.loc[2, own] + " "  # equal once whitespace is ignored
    with pytest.raises(RawDataError, match=rf"column 'negative', row 2 .*pair with id '2' is its own {own}"):
        make_pairs(raw, params())
    assert len(make_pairs(raw, params(hard_negatives={"use_negative_column": False, "mine": False}))) == 3


def test_positives_written_differently_only_in_unicode_form_or_whitespace_are_one_document():
    """split.by: positive grouped exact strings: the same paragraph in NFD or with a trailing space was a second
    group, on the other side of the split, and a second corpus entry next to the test query's own answer."""
    import unicodedata

    docs = [f"Café number {i} serves crème brûlée." for i in range(30)]
    rows = []
    for i, d in enumerate(docs):
        rows += [(f"question {i} a", d), (f"question {i} b", unicodedata.normalize("NFD", d))]
        rows += [(f"question {i} c", d + " "), (f"question  {i} a ", d.replace(" ", "  "))]  # a repeated anchor
    p = params(split={"by": "positive", "test_size": 0.25, "seed": 0})
    pairs = make_pairs(pd.DataFrame(rows, columns=["anchor", "positive"]), p)
    assert len(pairs) == 90  # the 4th anchor of each document repeats the 1st up to whitespace: dropped
    assert set(pairs["positive"]) == set(docs)  # the first spelling of each document
    train, test = split_pairs(pairs, p)
    assert not set(train["positive"]) & set(test["positive"])
    corpus = list(build_retrieval_task(pairs, test, p)["corpus"].values())
    assert len(corpus) == 30 == len({unicodedata.normalize("NFC", c).strip() for c in corpus})


def test_input_of_the_other_format_is_named_with_the_setting_to_change():
    squad = {"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q"}]}]}]}
    with pytest.raises(RawDataError, match=r"'bge_pairs'.*source.format is 'table'.*dict.*Set source.format: squad"):
        make_pairs(squad, params())
    table = pd.DataFrame({"anchor": ["q"], "positive": ["p"]})
    with pytest.raises(RawDataError, match=r"'bge_pairs'.*source.format is 'squad'.*Set source.format: table"):
        make_pairs(table, params(source={**SOURCE, "format": "squad"}))


@pytest.mark.parametrize(
    ("source", "column", "key"),
    [
        ({"id_column": "package"}, "id", "id_column"),
        ({"anchor_column": "title"}, "anchor", "anchor_column"),
        ({"positive_column": "overview"}, "positive", "positive_column"),
    ],
)
def test_a_configured_column_renamed_onto_a_column_of_the_table_names_the_setting(source, column, key):
    raw = pd.DataFrame(
        {"id": [1, 2], "package": ["a", "b"], "title": ["t1", "t2"], "overview": ["o1", "o2"]}
        | {"anchor": ["q1", "q2"], "positive": ["p1", "p2"]}
    )
    with pytest.raises(RawDataError, match=rf"column '{column}': source.{key} is .*Set source.{key}: {column}"):
        make_pairs(raw, params(source={**SOURCE, **source}))
    with pytest.raises(RawDataError, match=r"source.anchor_column and source.positive_column all name"):
        make_pairs(raw, params(source={**SOURCE, "positive_column": "anchor"}))


def test_make_pairs_fails_on_blank_text_unless_asked_to_drop_it():
    raw = pd.DataFrame({"anchor": ["q1", "q2", "q3"], "positive": ["p1", "  ", "p3"]})
    with pytest.raises(RawDataError, match=r"dataset 'bge_pairs', column 'positive', row 1 .*missing or blank"):
        make_pairs(raw, params())
    kept = make_pairs(raw, params(source={**SOURCE, "drop_incomplete": True}))
    assert kept["anchor"].tolist() == ["q1", "q3"]
    # every row dropped: the error names a column and a row (the first row's blank text), as every raw error does
    empty = pd.DataFrame({"anchor": ["q1", " "], "positive": [None, "p2"]})
    with pytest.raises(RawDataError, match=r"column 'positive', row 0 .*none is left once they are dropped"):
        make_pairs(empty, params(source={**SOURCE, "drop_incomplete": True}))


def test_make_pairs_errors_name_the_raw_row_when_blank_rows_are_dropped():
    """With drop_incomplete, a later error still names the row of the file as loaded, dropped rows counted."""
    drop = params(source={**SOURCE, "id_column": "id", "drop_incomplete": True})
    raw = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "d"],
            "anchor": ["q1", "", "q3", "q4", "q5"],
            "positive": ["p1", "p2", None, "p4", "p5"],
        }
    )
    with pytest.raises(RawDataError, match=r"column 'id', row 4 .*duplicate id 'd' \(first seen in row 3\)"):
        make_pairs(raw, drop)
    mistyped = raw.assign(id=list("abcde"), positive=["p1", "p2", None, 7, "p5"])
    with pytest.raises(RawDataError, match=r"column 'positive', row 3 .*expected text, found 7"):
        make_pairs(mistyped, drop)
    # the blank rows are still dropped, and a table of blank rows only is refused
    kept = make_pairs(raw.assign(id=list("abcde")), drop)
    assert kept["id"].tolist() == ["a", "d", "e"]  # rows 1 (blank anchor) and 2 (missing positive) dropped
    with pytest.raises(RawDataError, match="every row has a blank anchor/positive"):
        make_pairs(raw.assign(id=list("abcde"), anchor=" "), drop)


def test_make_pairs_names_a_missing_column_and_the_parameter_to_set():
    with pytest.raises(RawDataError, match=r"'bge_pairs', column 'positive'.*positive_column"):
        make_pairs(pd.DataFrame({"anchor": ["q"], "text": ["t"]}), params())


def test_make_pairs_reads_squad_questions_and_paragraphs():
    squad = {
        "version": "1.1",
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Paragraph one.",
                        "qas": [{"id": "a1", "question": "Q1?"}, {"id": "a2", "question": "Q2?"}],
                    },
                    {"context": "Paragraph two.", "qas": [{"id": "b1", "question": "Q3?"}]},
                ],
            }
        ],
    }
    pairs = make_pairs(squad, params(source={**SOURCE, "format": "squad"}))
    assert pairs.to_dict("list") == {
        "id": ["a1", "a2", "b1"],
        "anchor": ["Q1?", "Q2?", "Q3?"],
        "positive": ["Paragraph one.", "Paragraph one.", "Paragraph two."],
    }
    with pytest.raises(RawDataError, match="SQuAD v1.1"):
        make_pairs({"articles": []}, params(source={**SOURCE, "format": "squad"}))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (["oops"], r"article 0 is str, not an object with 'paragraphs'"),
        ([{"paragraphs": [3]}], r"article 0, paragraph 0 is int, not an object"),
        (
            [{"paragraphs": [{"context": 7, "qas": [{"id": "a", "question": "Q?"}]}]}],
            r"column 'positive'.*article 0, paragraph 0: 'context' is int, not text",
        ),
        (
            [{"paragraphs": [{"context": "P.", "qas": [{"id": None, "question": "Q?"}]}]}],
            r"column 'id'.*article 0, paragraph 0, question 0: the id is None",
        ),
        (
            [{"paragraphs": [{"context": "P.", "qas": ["Q?"]}]}],
            r"column 'question'.*question 0: a 'qas' entry has no 'question'",
        ),
    ],
)
def test_a_malformed_squad_file_is_named_by_article_paragraph_and_question(data, words):
    with pytest.raises(RawDataError, match=r"dataset 'bge_pairs'.*" + words):
        make_pairs({"version": "1.1", "data": data}, params(source={**SOURCE, "format": "squad"}))


def squad_file(*paragraphs):
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": list(paragraphs)}]}


@pytest.mark.parametrize(
    ("paragraphs", "words"),
    [
        (
            [
                {"context": "P.", "qas": [{"id": "x", "question": "Q?"}]},
                {"context": " ", "qas": [{"id": "y", "question": "Q2?"}]},
            ],
            r"column 'positive': article 0, paragraph 1: the 'context' is missing or blank \(1 question asks about it\)",
        ),
        (
            [{"qas": [{"id": "x", "question": "Q?"}]}],
            r"column 'positive': article 0, paragraph 0: the 'context' is missing or blank",
        ),
        (
            [{"context": "P.", "qas": [{"id": "x", "question": "Q?"}, {"id": "y", "question": "\u200b"}]}],
            r"column 'question': article 0, paragraph 0, question 1: the question is missing or blank",
        ),
        (
            [{"context": "P.", "qas": [{"id": "x", "question": 5}]}],
            r"column 'question': article 0, paragraph 0, question 0: the question is int, not text",
        ),
        (
            [
                {"context": "P.", "qas": [{"id": "x", "question": "Q?"}]},
                {"context": "R.", "qas": [{"id": "x", "question": "Q2?"}]},
            ],
            r"column 'id': article 0, paragraph 1, question 0: duplicate id 'x' \(first seen at article 0, paragraph 0, "
            r"question 0\)",
        ),
    ],
)
def test_squad_errors_name_the_article_paragraph_and_question_never_a_row(paragraphs, words):
    """A JSON file has no rows: a blank context or question, or an id given twice, is named where it is."""
    with pytest.raises(RawDataError, match=r"dataset 'bge_pairs', " + words) as raised:
        make_pairs(squad_file(*paragraphs), params(source={**SOURCE, "format": "squad"}))
    assert "row" not in str(raised.value)


def test_a_question_without_an_id_gets_one_that_no_given_id_can_clash_with():
    qas = [{"id": "a", "question": "q1"}, {"question": "q2"}, {"id": "1", "question": "q3"}, {"question": "q4"}]
    given = [{"id": "a0-p1-q0", "question": "q5"}]  # the name the next question would get, taken by the file
    pairs = make_pairs(
        squad_file({"context": "P.", "qas": qas}, {"context": "R.", "qas": [{"question": "q6"}, *given]}),
        params(source={**SOURCE, "format": "squad"}),
    )
    assert pairs["id"].tolist() == ["a", "a0-p0-q1", "1", "a0-p0-q3", "a0-p1-q0-2", "a0-p1-q0"]
    assert pairs["anchor"].tolist() == ["q1", "q2", "q3", "q4", "q6", "q5"]


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
    p = params(
        split={"by": "pair", "test_size": 0.2, "seed": 1},
        subset={"max_train_pairs": 30, "max_test_queries": 7, "max_corpus": None},
    )
    train, test = split_pairs(pairs, p)
    assert (len(train), len(test)) == (30, 7)
    assert not set(train["id"]) & set(test["id"])
    # the test set does not depend on the training cap: the split happens first
    _, test_full_train = split_pairs(
        pairs, params(split=p["split"], subset={"max_train_pairs": None, "max_test_queries": 7, "max_corpus": None})
    )
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
    capped = build_retrieval_task(
        pairs, test, params(subset={"max_train_pairs": None, "max_test_queries": None, "max_corpus": 8})
    )
    assert len(capped["corpus"]) == 8
    assert set(test["positive"]) <= set(capped["corpus"].values())


def test_matryoshka_dims():
    assert matryoshka_dims(384, params()) == [384, 256, 128, 64, 32]
    assert matryoshka_dims(768, params()) == [768, 512, 256, 128, 64]
    assert matryoshka_dims(384, params(matryoshka_dims=[64, 384, 128])) == [384, 128, 64]
    with pytest.raises(ValueError, match="must start at the model's 384"):
        matryoshka_dims(384, params(matryoshka_dims=[768, 64]))
    with pytest.raises(ValueError, match="must start at the model's 384"):  # the full dimension left out
        matryoshka_dims(384, params(matryoshka_dims=[256, 128]))


def chained_negatives(n=60):
    """Each anchor's negative is the next row's positive: some of them are test or validation positives."""
    return pd.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "anchor": [f"query {i}" for i in range(n)],
            "positive": [f"doc {i}" for i in range(n)],
            "negative": [f"doc {(i + 1) % n}" for i in range(n)],
        }
    )


def test_given_negatives_that_are_test_or_validation_positives_never_reach_training(caplog):
    """split.by: positive keeps test (and validation) documents unseen: a triplet whose negative is one is dropped."""
    p = params(split={"by": "positive", "test_size": 0.2, "seed": 42}, validation={"fraction": 0.1})
    train, test = split_pairs(chained_negatives(), p)
    fit, validation = split_validation(train, p)
    held_out = set(test["positive"]) | set(validation["positive"])
    expected = int(fit["negative"].isin(held_out).sum())
    assert len(test) == 12 and len(validation) > 0 and expected > 0
    with caplog.at_level("WARNING"):
        triplets = prepare_training_set(fit, None, p, test, validation)
    assert not set(triplets["negative"]) & held_out
    assert len(triplets) == len(fit) - expected
    assert f"Dropped {expected} of {len(fit)} training triplets" in caplog.text
    # split.by: pair promises no unseen documents (a test positive may be a training positive): all kept
    by_pair = params(split={"by": "pair", "test_size": 0.2, "seed": 42})
    train, test = split_pairs(chained_negatives(), by_pair)
    assert len(prepare_training_set(train, None, by_pair, test, test.iloc[0:0])) == len(train)


def test_the_pipeline_gives_prepare_training_set_the_test_and_validation_pairs():
    from qeu_kedro.pipelines.bge_finetune.pipeline import create_pipeline

    (node,) = [n for n in create_pipeline().nodes if n.name == "bge_finetune.prepare_training_set"]
    assert node.inputs[3:] == ["bge_finetune.test_pairs", "bge_finetune.validation_pairs"]


def test_too_few_triplets_left_once_held_out_negatives_are_dropped_stops_at_the_split():
    """Checked by split_pairs, before the split or anything else is written."""
    plain = chained_negatives().drop(columns="negative")
    p = params(split={"by": "positive", "test_size": 0.2, "seed": 42}, validation={"fraction": 0.1})
    _, test = split_pairs(plain, p)
    every_one = plain.assign(negative=test["positive"].iloc[0])  # each negative is the same test positive
    with pytest.raises(
        RawDataError,
        match=r"'bge_pairs', column 'negative': 43 of the 43 training triplets have a negative that is a test or "
        r"validation positive.*nothing is left to train on; nothing was trained or written.*use_negative_column",
    ):
        split_pairs(every_one, p)
    minimum = {"train_pairs": 40, "test_queries": 10, "corpus": 20}
    with pytest.raises(
        RawDataError, match=r"16 of the 43 .*32 training pairs are left .*, fewer than .*train_pairs = 40"
    ):
        split_pairs(chained_negatives(), {**p, "minimum": minimum})
    train, _ = split_pairs(chained_negatives(), {**p, "minimum": {**minimum, "train_pairs": 32}})
    assert len(train) == 48
    # in-batch or mined negatives instead: the given column is not used, nothing is dropped
    unused = {**p, "hard_negatives": {"use_negative_column": False, "mine": False}}
    assert len(split_pairs(every_one, unused)[0]) == 48


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
    pairs = pd.DataFrame(
        {"id": ["1", "2", "3"], "anchor": ["query 1", "query 2", "query 3"], "positive": ["doc 1", "doc 2", "doc 3"]}
    )
    corpus_pairs = pd.concat([pairs, pd.DataFrame({"id": ["4"], "anchor": ["unused"], "positive": ["doc 4"]})])
    task = build_retrieval_task(corpus_pairs, pairs, params())
    scores = evaluate_retrieval(HandMadeModel(VECTORS), task, params(matryoshka_dims=[4, 2]))
    assert len(scores) == 6 and list(scores["dim"].unique()) == [4, 2]
    result = mean_scores(scores)

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


def _scores(ndcg_by_dim, n=40):
    """Per-query scores whose NDCG@10 is ``ndcg_by_dim[dim]`` (a list of n values) and other metrics fixed."""
    frames = []
    for dim, values in ndcg_by_dim.items():
        frames.append(
            pd.DataFrame(
                {
                    "query_id": [f"q{i}" for i in range(n)],
                    "dim": dim,
                    "ndcg@10": values,
                    "mrr@10": 0.5,
                    "recall@1": 0.0,
                    "recall@10": 1.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_identical_rankings_are_no_evidence_and_a_constructed_gain_is_better():
    rng = np.random.default_rng(0)
    base = {8: rng.uniform(0.2, 0.9, 40), 4: rng.uniform(0.1, 0.8, 40)}
    before = _scores(base)
    same = compare_scores(before, before.copy(), params())
    for dim in ("8", "4"):
        for metric in ("ndcg@10", "mrr@10", "recall@1", "recall@10"):
            c = same[dim][metric]
            assert c["difference"] == 0 and c["ci_low"] <= 0 <= c["ci_high"] and c["verdict"] == "no evidence"
    # at 8 dims every query gains 0.05-0.1; at 4 dims every query loses
    after = _scores({8: base[8] + rng.uniform(0.05, 0.1, 40), 4: base[4] - rng.uniform(0.05, 0.1, 40)})
    changed = compare_scores(before, after, params())
    assert changed["8"]["ndcg@10"]["ci_low"] > 0 and changed["8"]["ndcg@10"]["verdict"] == "better"
    assert changed["4"]["ndcg@10"]["ci_high"] < 0 and changed["4"]["ndcg@10"]["verdict"] == "worse"
    assert changed["8"]["mrr@10"]["verdict"] == "no evidence"


def test_one_query_moving_up_is_not_called_a_gain():
    before = _scores({8: np.full(40, 0.5)})
    after = before.copy()
    after.loc[0, "ndcg@10"] = 1.0  # one query of 40 moves from rank 3 to rank 1
    c = compare_scores(before, after, params())["8"]["ndcg@10"]
    assert c["difference"] > 0 and c["verdict"] == "no evidence"


def test_scores_of_different_queries_are_refused():
    before = _scores({8: np.full(40, 0.5)})
    with pytest.raises(ValueError, match="same queries"):
        compare_scores(before, before.iloc[:-1], params())


def test_report_and_plot():
    rng = np.random.default_rng(1)
    base = {8: rng.uniform(0.3, 0.7, 40), 4: rng.uniform(0.2, 0.6, 40)}
    before = _scores(base)
    after = _scores({8: base[8] + 0.2, 4: base[4] - rng.uniform(0.0, 0.1, 40)})
    log = {"n_train_rows": 10, "columns": ["anchor", "positive"], "steps": 2}
    task = {"queries": {f"q{i}": "a" for i in range(40)}, "corpus": {"d1": "x", "d2": "y"}, "relevant": {}}
    metrics = report_metrics(before, after, log, task, params())
    assert metrics["dims"] == [8, 4]
    assert metrics["before"]["8"]["ndcg@10"] == pytest.approx(base[8].mean())
    assert metrics["comparison"]["8"]["ndcg@10"]["difference"] == pytest.approx(0.2)
    assert metrics["verdicts"] == {"8": "better", "4": "worse"}
    assert metrics["better_at_every_dim"] is False
    assert metrics["conclusion"][0].startswith("NDCG@10 at 8 dims changed after fine-tuning by +0.2000")
    assert metrics["data"] == {
        "n_test_queries": 40,
        "n_corpus": 2,
        "n_train_rows": 10,
        "triplets": False,
        "split_by": "positive",
    }
    fig = plot_ndcg(metrics)
    ax, diff_ax = fig.axes
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [
        [pytest.approx(base[8].mean()), pytest.approx(base[4].mean())],
        [pytest.approx(base[8].mean() + 0.2), pytest.approx(metrics["after"]["4"]["ndcg@10"])],
    ]
    title = " ".join(fig._suptitle.get_text().split())  # the title may be wrapped to the figure's width
    assert "better at 1 of 2 dimensions, worse at 1" in title  # a worse dimension is named too
    assert "test model" in title and "test pairs" in title
    assert diff_ax.get_legend() is not None
    assert metrics["base_weights_kept"] is False and "base weights kept" not in title
    # validation kept the base weights: said first in the conclusion, and in the figure's title
    kept_log = {**log, "validation": {"chosen": "base model"}}
    kept = report_metrics(before, before.copy(), kept_log, task, params())
    assert kept["base_weights_kept"] is True and len(kept["conclusion"]) == 3
    assert kept["conclusion"][0].startswith("No checkpoint beat the base model on validation")
    assert "base weights kept" in " ".join(plot_ndcg(kept)._suptitle.get_text().split())


def test_validation_split_comes_from_the_training_side_only():
    pairs = squad_like()
    train, test = split_pairs(pairs, params())
    fit, validation = split_validation(train, params(validation={"fraction": 0.25}))
    assert len(fit) + len(validation) == len(train) and len(validation) > 0
    assert not set(validation["positive"]) & set(fit["positive"])  # split by positive, as the test split
    assert not set(validation["positive"]) & set(test["positive"])
    task = build_retrieval_task(train, validation, params())
    assert set(task["corpus"].values()) == set(train["positive"])  # ranked among training-side texts, never test
    none_fit, none_val = split_validation(train, params())
    assert len(none_val) == 0 and len(none_fit) == len(train)


class RecordingModel(HandMadeModel):
    """Records the prompt each encode call got."""

    def __init__(self, vectors):
        super().__init__(vectors)
        self.prompts = {}

    def encode_query(self, texts, prompt=None, **kwargs):
        self.prompts["query"] = prompt
        return self._encode(texts, **kwargs)

    def encode_document(self, texts, prompt=None, **kwargs):
        self.prompts["document"] = prompt
        return self._encode(texts, **kwargs)


def test_query_and_document_prompts_reach_the_encoder():
    pairs = pd.DataFrame({"id": ["1", "2"], "anchor": ["query 1", "query 2"], "positive": ["doc 1", "doc 2"]})
    task = build_retrieval_task(pairs, pairs, params())
    model = RecordingModel(VECTORS)
    evaluate_retrieval(model, task, params(prompts={"query": "query: ", "document": "passage: "}))
    assert model.prompts == {"query": "query: ", "document": "passage: "}
    evaluate_retrieval(model, task, params())
    assert model.prompts == {"query": "", "document": ""}  # empty prefixes: none, not the model's own


# ---------------------------------------------------------------- training arguments


def test_training_arguments_carry_the_yaml_values_under_the_librarys_own_names(tmp_path):
    from enum import Enum

    from qeu_kedro.pipelines.bge_finetune.nodes import training_arguments

    base = yaml.safe_load((REPO / "conf" / "base" / "parameters_bge_finetune.yml").read_text(encoding="utf-8"))
    trainer = base["bge_finetune"]["trainer"]
    assert trainer["per_device_train_batch_size"] == 64 and trainer["warmup_steps"] == 0.1
    args = training_arguments(params(trainer=trainer), str(tmp_path), None, eval_steps=3)
    for key, value in trainer.items():
        got = getattr(args, key)
        assert (got.value if isinstance(got, Enum) else got) == value, key
    # what the recipe fixes: evaluation and checkpoints every eval_steps, the best kept, no reporting
    assert (args.eval_steps, args.save_steps, args.load_best_model_at_end) == (3, 3, True)
    assert args.metric_for_best_model == f"eval_{VALIDATION_METRIC}" and args.report_to == []
    plain = training_arguments(params(trainer={**trainer, "gradient_accumulation_steps": 2}), str(tmp_path), None, None)
    assert plain.eval_strategy.value == "no" and not plain.load_best_model_at_end
    assert plain.gradient_accumulation_steps == 2  # a new knob is a YAML key, no code


# ---------------------------------------------------------------- model soup


def test_a_soup_averages_float_tensors_and_keeps_integer_buffers():
    import torch

    ids = torch.arange(4)
    states = [
        {"w": torch.tensor([[1.0, 2.0]]), "ids": ids.clone()},
        {"w": torch.tensor([[3.0, 6.0]]), "ids": ids.clone()},
        {"w": torch.tensor([[2.0, 1.0]]), "ids": ids.clone()},
    ]
    out = average_state_dicts(states)
    assert torch.allclose(out["w"], torch.tensor([[2.0, 3.0]])) and out["w"].dtype == torch.float32
    assert torch.equal(out["ids"], ids)


def test_a_soup_of_linear_layers_gives_the_mean_of_their_outputs():
    import torch

    torch.manual_seed(0)
    members = [torch.nn.Linear(4, 3) for _ in range(3)]
    layer = torch.nn.Linear(4, 3)
    layer.load_state_dict(average_state_dicts([m.state_dict() for m in members]))
    x = torch.randn(8, 4)
    assert torch.allclose(layer(x), torch.stack([m(x) for m in members]).mean(dim=0), atol=1e-6)


@pytest.mark.parametrize(
    ("states", "message"),
    [
        ([{"w": [[0.0, 0.0]]}, {"w": [[0.0, 0.0]], "extra": [0.0]}], "other tensors"),
        ([{"w": [[0.0, 0.0]]}, {"w": [[0.0], [0.0]]}], "different shapes"),
        ([{"ids": [0, 1, 2]}, {"ids": [1, 2, 3]}], "non-float tensor 'ids' differs"),
    ],
)
def test_models_that_cannot_be_averaged_are_refused(states, message):
    import torch

    with pytest.raises(ValueError, match=message):
        average_state_dicts([{k: torch.tensor(v) for k, v in s.items()} for s in states])


def test_soup_seeds_are_the_trainer_seed_or_a_list_of_two_or_more():
    assert soup_seeds({"trainer": {"seed": 5}}) == [5]
    assert soup_seeds({"trainer": {"seed": 5}, "soup": {"seeds": None}}) == [5]
    assert soup_seeds({"trainer": {"seed": 5}, "soup": {"seeds": [42, 7]}}) == [42, 7]
    for bad in ([42], [7, 7], 42):
        with pytest.raises(ValueError, match="soup.seeds must be null or a list of 2 or more distinct seeds"):
            soup_seeds({"trainer": {"seed": 5}, "soup": {"seeds": bad}})


def test_a_blank_squad_paragraph_or_an_invisible_text_is_dropped_with_drop_incomplete():
    paragraphs = [
        {"context": "ctx", "qas": [{"id": "1", "question": "q1"}]},
        {"context": "", "qas": [{"id": "2", "question": "q2"}]},
        {"context": "ctx 3", "qas": [{"id": "3", "question": "\u200b"}]},
    ]
    squad = {"data": [{"paragraphs": paragraphs}]}
    pairs = make_pairs(squad, params(source={**SOURCE, "format": "squad", "drop_incomplete": True}))
    assert pairs["id"].tolist() == ["1"]
    with pytest.raises(RawDataError, match=r"article 0, paragraph 1: the 'context' .* missing or blank"):
        make_pairs(squad, params(source={**SOURCE, "format": "squad", "drop_incomplete": False}))
    # nothing left once the blank ones are dropped: named without a row (a JSON file has none)
    blank = {"data": [{"paragraphs": paragraphs[1:]}]}
    with pytest.raises(RawDataError, match=r"column 'positive': blank; every question has a blank") as raised:
        make_pairs(blank, params(source={**SOURCE, "format": "squad", "drop_incomplete": True}))
    assert "row 0" not in str(raised.value)
