"""Nodes of the ``bge_finetune`` pipeline: Matryoshka fine-tuning on (anchor, positive) pairs.

The original fine-tuned BAAI/bge-base-en with ``MatryoshkaLoss(MultipleNegativesRankingLoss)``
and measured cosine NDCG@10 at several truncated dimensions before and after. Here the
same recipe runs on any pairs table (or a SQuAD-format file), optionally as triplets.
"""

from __future__ import annotations

import logging
import math
import random
import tempfile
import time
import unicodedata
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.datasets.lazy_sentence_transformer import as_sentence_transformer
from qeu_kedro.figures import suptitle
from qeu_kedro.models import warn_truncated
from qeu_kedro.stats import paired_bootstrap
from qeu_kedro.validation import Column, check_no_repeated_header, check_table, fail, is_blank
from qeu_kedro.weights import average_state_dicts  # the soup (also used by benchmarks/bge_soup.py)

from .checks import check_split

logger = logging.getLogger(__name__)

DATASET = "bge_pairs"
# Dimensions tried below the model's own, largest first: the original's 768/512/256/128/64
# for a 768-dim model, 384/256/128/64/32 for a 384-dim one.
_SMALLER_DIMS = (512, 256, 128, 64, 32)
N_DIMS = 5
# What the report keeps of the evaluator's many metrics (all cosine, as in the original).
REPORTED = ("ndcg@10", "mrr@10", "recall@1", "recall@10")


# ---------------------------------------------------------------- data


def _squad_to_table(raw: Any, drop_incomplete: bool) -> pd.DataFrame:
    """(question, paragraph) rows of a SQuAD v1.1 file, with the question id as ``id``.

    Checked while the file is walked, so an error names the article, paragraph and question (a JSON
    file has no rows): a question or context that is not text, a blank one (unless ``drop_incomplete``:
    it is left blank, and ``make_pairs`` drops and counts its rows), a blank id, an id given twice.
    A question without an id gets ``a<article>-p<paragraph>-q<question>``, never one of the file's ids
    (a suffix ``-2``, ``-3``... where the file uses that name).
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        fail(DATASET, None, None, "expected SQuAD v1.1 JSON: an object with a 'data' list of articles")
    blank_hint = "Fill it in, or set source.drop_incomplete: true to drop (and count) {}."
    rows, seen = [], {}  # seen: a given id -> where it was first
    for a, article in enumerate(raw["data"]):
        if not isinstance(article, dict):
            fail(DATASET, None, None, f"article {a} is {type(article).__name__}, not an object with 'paragraphs'")
        for p, paragraph in enumerate(article.get("paragraphs") or []):
            if not isinstance(paragraph, dict):
                fail(DATASET, None, None, f"article {a}, paragraph {p} is {type(paragraph).__name__}, not an object")
            context, qas = paragraph.get("context"), paragraph.get("qas") or []
            if context is not None and not isinstance(context, str):
                fail(
                    DATASET,
                    "positive",
                    None,
                    f"article {a}, paragraph {p}: 'context' is {type(context).__name__}, not text",
                )
            if qas and not drop_incomplete and (context is None or is_blank(context)):
                fail(
                    DATASET,
                    "positive",
                    None,
                    f"article {a}, paragraph {p}: the 'context' is missing or blank "
                    f"({len(qas)} question{'s' * (len(qas) != 1)} ask{'s' * (len(qas) == 1)} about it)",
                    blank_hint.format("its questions"),
                )
            for q, qa in enumerate(qas):
                where = f"article {a}, paragraph {p}, question {q}"
                if not isinstance(qa, dict) or "question" not in qa:
                    fail(DATASET, "question", None, f"{where}: a 'qas' entry has no 'question'")
                question = qa["question"]
                if question is not None and not isinstance(question, str):
                    fail(DATASET, "question", None, f"{where}: the question is {type(question).__name__}, not text")
                if not drop_incomplete and (question is None or is_blank(question)):
                    fail(
                        DATASET, "question", None, f"{where}: the question is missing or blank", blank_hint.format("it")
                    )
                qid = None
                if "id" in qa:
                    if qa["id"] is None or not str(qa["id"]).strip():
                        fail(
                            DATASET, "id", None, f"{where}: the id is {qa['id']!r}", "Give it an id, or leave 'id' out."
                        )
                    qid = str(qa["id"])
                    if qid in seen:
                        fail(
                            DATASET,
                            "id",
                            None,
                            f"{where}: duplicate id {qid!r} (first seen at {seen[qid]})",
                            "Each question needs its own id; a question without one gets one.",
                        )
                    seen[qid] = where
                rows.append([qid, question, context, (a, p, q)])
    if not rows:
        fail(DATASET, None, None, "the SQuAD file holds no questions")
    for row in rows:
        if row[0] is None:
            a, p, q = row[3]
            row[0] = candidate = f"a{a}-p{p}-q{q}"
            n = 1
            while row[0] in seen:
                n += 1
                row[0] = f"{candidate}-{n}"
            seen[row[0]] = "a generated id"
    return pd.DataFrame([r[:3] for r in rows], columns=["id", "anchor", "positive"])


def text_key(text: str) -> str:
    """The form in which two texts count as the same: Unicode NFC, every run of whitespace one space, none at
    the ends. ``"Café "`` (NFD, a trailing space) and ``"Café"`` are one text: one split group, one corpus entry."""
    return " ".join(unicodedata.normalize("NFC", text).split())


# the parameter that names the input column renamed to each of the original's names
_ROLES = {"anchor": "anchor_column", "positive": "positive_column", "negative": "negative_column", "id": "id_column"}


def _table_columns(raw: Any, source: dict[str, Any], use_negatives: bool) -> pd.DataFrame:
    """``raw`` with the configured columns renamed to ``id, anchor, positive`` (and ``negative`` when the run
    trains on it); a column already named ``negative`` that the run does not use is dropped (said in the log)."""
    if not isinstance(raw, pd.DataFrame):
        fail(
            DATASET,
            None,
            None,
            f"source.format is 'table', but the input is {type(raw).__name__}, not a table"
            + (" (a JSON object, e.g. a SQuAD file)" if isinstance(raw, dict) else ""),
            "Set source.format: squad for a SQuAD v1.1 JSON file, or point the catalog entry bge_pairs at a table.",
        )
    check_no_repeated_header(raw, DATASET)  # before the renames: a repeated header line holds the file's names
    chosen = {role: source[key] for role, key in _ROLES.items() if source[key]}
    if not use_negatives:
        chosen.pop("negative", None)
    elif chosen.get("negative") not in raw.columns:
        chosen.pop("negative")  # optional: a table without it trains on pairs
    given = list(chosen.values())
    twice = next((c for c in given if given.count(c) > 1), None)
    if twice is not None:
        roles = [f"source.{_ROLES[r]}" for r, c in chosen.items() if c == twice]
        fail(DATASET, twice, None, f"{' and '.join(roles)} all name the column {twice!r}", "Give each its own column.")
    renames = {column: role for role, column in chosen.items()}
    missing = [c for c in renames if c not in raw.columns]
    if missing:
        fail(
            DATASET,
            missing[0],
            None,
            f"required column is missing (found: {list(raw.columns)})",
            "Set source.anchor_column / positive_column / id_column in parameters_bge_finetune.yml.",
        )
    if "negative" in raw.columns and "negative" not in renames and "negative" not in renames.values():
        if not source["negative_column"]:
            why = "source.negative_column is null"
        elif not use_negatives:
            why = "hard_negatives.use_negative_column is false"
        else:
            why = f"source.negative_column is {source['negative_column']!r}, which the table does not have"
        logger.info("The table's column 'negative' is not used (%s): the run trains on pairs", why)
        raw = raw.drop(columns="negative")
    for column, role in renames.items():
        if column != role and role in raw.columns and role not in renames:
            fail(
                DATASET,
                role,
                None,
                f"source.{_ROLES[role]} is {column!r}, which is renamed to {role!r}, but the table has a column "
                f"{role!r} already: the two would collide",
                f"Set source.{_ROLES[role]}: {role} to use the table's own {role!r} column"
                + (" (or null)" if role == "id" else "")
                + ", or rename or remove that column in the file.",
            )
    table = raw.rename(columns=renames)
    return table if "id" in table.columns else table.assign(id=np.arange(len(table)))


def _check_own_negatives(pairs: pd.DataFrame, table_format: bool) -> None:
    """Fail on a triplet whose negative is its own positive or anchor (compared by :func:`text_key`): the loss
    would push the answer away from its own question. ``pairs`` holds every row of the input, in order."""
    for i, row in enumerate(pairs.itertuples(index=False)):
        negative = row.negative
        if not isinstance(negative, str) or is_blank(negative):
            continue
        for other in ("positive", "anchor"):
            text = getattr(row, other)
            if isinstance(text, str) and text_key(negative) == text_key(text):
                fail(
                    DATASET,
                    "negative",
                    i if table_format else None,
                    f"the negative of the pair with id {row.id!r} is its own {other}"
                    + (" (up to Unicode form and whitespace)" if negative != text else "")
                    + f": {negative[:80]!r}",
                    "Give a text that does not answer the anchor, or leave the negative empty with "
                    "source.drop_incomplete: true (that drops the row) or train on pairs "
                    "(hard_negatives.use_negative_column: false).",
                )


def make_pairs(raw: Any, params: dict[str, Any]) -> pd.DataFrame:
    """Check the raw pairs and return ``id, anchor, positive`` (and ``negative`` when given and used).

    ``params["source"]``: ``format`` is ``table`` (a table whose ``anchor_column``,
    ``positive_column``, optional ``negative_column`` and optional ``id_column`` are renamed to
    the original's names) or ``squad`` (SQuAD v1.1 JSON: question -> paragraph). The negative
    column is read only when ``negative_column`` is set and ``hard_negatives.use_negative_column``
    is true; otherwise a column of the table named ``negative`` is dropped unchecked. With
    ``drop_incomplete`` rows with a blank text are dropped (and counted) instead of failing; every
    other rule (an id in every row, no id twice, text cells, a negative that is not its own positive
    or anchor) holds for every row of the input, and an error names the row of the input as loaded
    (0-based), dropped rows counted; in a SQuAD file, the article, paragraph and question
    (:func:`_squad_to_table`).

    Texts are compared as :func:`text_key` gives them (NFC, whitespace collapsed): positives and
    negatives written differently only in Unicode form or whitespace take the first spelling in the
    file, so they are one document for ``split.by: positive``, the corpus and the negatives' checks
    (the text itself is kept as given otherwise). Repeated anchors keep their first row, compared
    the same way: a query with two answers would be ambiguous.
    """
    source = params["source"]
    use_negatives = bool(source["negative_column"]) and bool(params["hard_negatives"]["use_negative_column"])
    if source["format"] == "squad":
        if isinstance(raw, pd.DataFrame):
            fail(
                DATASET,
                None,
                None,
                "source.format is 'squad', but the input is a table, not SQuAD v1.1 JSON",
                "Set source.format: table (with source.anchor_column / positive_column), or point the catalog "
                "entry bge_pairs at a SQuAD JSON file.",
            )
        table = _squad_to_table(raw, bool(source["drop_incomplete"]))
    elif source["format"] == "table":
        table = _table_columns(raw, source, use_negatives)
    else:
        raise ValueError(
            f"parameters_bge_finetune.yml: source.format must be 'table' or 'squad', not {source['format']!r}"
        )

    texts = [c for c in ("anchor", "positive", "negative") if c in table.columns]
    drop = bool(source["drop_incomplete"])
    # The whole table is checked before any row is dropped, so an error names the row of the raw
    # input; with drop_incomplete a blank text passes here and its row is dropped after.
    hint = "source.drop_incomplete drops rows with a blank text only: every row still needs its own id." if drop else ""
    columns = [Column("id", "str", unique=True, hint=hint)] + [Column(c, "str", nullable=drop) for c in texts]
    pairs = check_table(table.astype({"id": str}), DATASET, columns)
    if "negative" in pairs.columns:
        _check_own_negatives(pairs, source["format"] == "table")
    if drop:
        blank = pairs[texts].apply(lambda col: col.map(lambda v: not isinstance(v, str) or is_blank(v))).any(axis=1)
        if blank.any():
            logger.info("Dropped %d pairs with a blank %s", int(blank.sum()), "/".join(texts))
            pairs = pairs.loc[~blank.to_numpy()].reset_index(drop=True)
        if pairs.empty:  # name the first row's blank text: every row has one
            column = next(c for c in texts if not isinstance(table[c].iloc[0], str) or is_blank(table[c].iloc[0]))
            table_format = source["format"] == "table"  # a SQuAD file has questions, not rows
            fail(
                DATASET,
                column,
                0 if table_format else None,
                f"blank; every {'row' if table_format else 'question'} has a blank {'/'.join(texts)}: "
                "none is left once they are dropped",
            )
    documents = [c for c in ("positive", "negative") if c in pairs.columns]
    spelling: dict[str, str] = {}  # text_key -> the first spelling of that document in the file
    for column in documents:
        for text in pairs[column]:
            spelling.setdefault(text_key(text), text)
    for column in documents:
        first = pairs[column].map(lambda text: spelling[text_key(text)])
        respelled = int((first != pairs[column]).sum())
        if respelled:
            logger.info(
                "%d %ss differ from an earlier text only in Unicode form or whitespace: given its first spelling, "
                "so they are one document (one split group, one corpus entry)",
                respelled,
                column,
            )
            pairs[column] = first
    repeated = pairs["anchor"].map(text_key).duplicated(keep="first")
    if repeated.any():
        logger.info("Dropped %d pairs whose anchor repeats an earlier one", int(repeated.sum()))
        pairs = pairs.loc[~repeated.to_numpy()].reset_index(drop=True)
    logger.info(
        "%d pairs (%d distinct positives)%s",
        len(pairs),
        pairs["positive"].nunique(),
        " with negatives" if "negative" in pairs else "",
    )
    return pairs


def split_pairs(pairs: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into train and test *before* any subsetting, so test anchors never reach training.

    ``split.by``: ``pair`` splits rows; ``positive`` keeps all anchors of one positive on
    the same side, so test positives are unseen in training too (stricter). ``subset``
    caps ``max_train_pairs`` and ``max_test_queries`` for bounded runs (seeded samples).
    """
    split, subset = params["split"], params["subset"]
    train, test = _split(pairs, split["by"], split["test_size"], split["seed"])
    if subset["max_train_pairs"] and len(train) > subset["max_train_pairs"]:
        train = train.sample(n=subset["max_train_pairs"], random_state=split["seed"])
    if subset["max_test_queries"] and len(test) > subset["max_test_queries"]:
        test = test.sample(n=subset["max_test_queries"], random_state=split["seed"])
    logger.info("Split by %s: %d train pairs, %d test queries", split["by"], len(train), len(test))
    train, test = check_split(pairs, train.reset_index(drop=True), test.reset_index(drop=True), params)
    _check_negatives_left(train, test, params)
    return train, test


def held_out_negatives(fit: pd.DataFrame, held_out: list[pd.DataFrame], params: dict[str, Any]) -> np.ndarray:
    """Which rows of ``fit`` have a given negative that is a positive of ``held_out`` (the test and
    validation pairs), where that would show training a held-out document: ``split.by: positive``
    (which keeps test and validation positives unseen) and the ``negative`` column used
    (``hard_negatives.use_negative_column``). With ``split.by: pair`` a held-out positive may be a
    training positive anyway, and nothing is promised unseen."""
    if (
        "negative" not in fit.columns
        or not params["hard_negatives"]["use_negative_column"]
        or params["split"]["by"] != "positive"
    ):
        return np.zeros(len(fit), dtype=bool)
    positives = set().union(*(set(table["positive"]) for table in held_out))
    return fit["negative"].isin(positives).to_numpy()


def _check_negatives_left(train: pd.DataFrame, test: pd.DataFrame, params: dict[str, Any]) -> None:
    """Fail, before the split is written, when dropping the training triplets whose negative is a test or
    validation positive (:func:`prepare_training_set`) leaves too few to train on: none, or (with a
    ``minimum`` block) fewer training pairs than ``minimum.train_pairs``, counted as :func:`check_split` does."""
    if "negative" not in train.columns:
        return
    fit, validation = _carve_validation(train, params)
    dropped = int(held_out_negatives(fit, [test, validation], params).sum())
    least = (params.get("minimum") or {}).get("train_pairs", 1)
    if dropped and (dropped == len(fit) or len(train) - dropped < least):
        fail(
            DATASET,
            "negative",
            None,
            f"{dropped} of the {len(fit)} training triplets have a negative that is a test or validation positive, "
            "which split.by: positive keeps out of training; without them "
            + (
                "nothing is left to train on"
                if dropped == len(fit)
                else f"{len(train) - dropped} training pairs are left (validation pairs counted, as the minimum "
                f"counts them), fewer than bge_finetune.minimum.train_pairs = {least}"
            )
            + "; nothing was trained or written",
            "Take the negatives from the training side only, or set bge_finetune.hard_negatives.use_negative_column: "
            "false (in-batch negatives, or hard_negatives.mine: true to mine them from the training positives).",
        )


def _split(pairs: pd.DataFrame, by: str, size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if by == "positive":
        splitter = GroupShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        keep_idx, held_idx = next(splitter.split(pairs, groups=pairs["positive"]))
        return pairs.iloc[keep_idx], pairs.iloc[held_idx]
    if by == "pair":
        return tuple(train_test_split(pairs, test_size=size, random_state=seed))
    raise ValueError(f"parameters_bge_finetune.yml: split.by must be 'pair' or 'positive', not {by!r}")


def split_validation(train: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve a validation split from the *training* side (the same ``split.by`` rule), for checkpoint choice.

    ``validation.fraction`` of the training pairs go to validation (0: no validation, no
    checkpoint choice). The test split is never touched.
    """
    fit, validation = _carve_validation(train, params)
    if len(validation):
        logger.info(
            "Validation: %d of the %d training pairs held out to choose the checkpoint", len(validation), len(train)
        )
    return fit, validation


def _carve_validation(train: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`split_validation`'s split (also counted by :func:`split_pairs` before anything is written)."""
    fraction = params["validation"]["fraction"]
    if not fraction:
        return train.reset_index(drop=True), train.iloc[0:0].reset_index(drop=True)
    fit, validation = _split(train, params["split"]["by"], fraction, params["split"]["seed"] + 1)
    return fit.reset_index(drop=True), validation.reset_index(drop=True)


def build_retrieval_task(pairs: pd.DataFrame, test: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Queries (the test anchors), corpus (all distinct positives) and each query's own positive.

    With ``subset.max_corpus`` the corpus keeps every test positive plus a seeded sample of
    the others, so a bounded run still ranks each answer among distractors.
    """
    positives = pd.unique(pairs["positive"])
    doc_id = {text: f"d{i}" for i, text in enumerate(positives)}
    needed = set(test["positive"])
    cap = params["subset"]["max_corpus"]
    if cap and len(positives) > cap:
        others = [p for p in positives if p not in needed]
        rng = np.random.default_rng(params["split"]["seed"])
        keep = set(rng.choice(len(others), size=max(0, cap - len(needed)), replace=False).tolist())
        kept = needed | {others[i] for i in keep}
        positives = [p for p in positives if p in kept]
    return {
        "queries": {f"q{row.id}": row.anchor for row in test.itertuples()},
        "corpus": {doc_id[p]: p for p in positives},
        "relevant": {f"q{row.id}": [doc_id[row.positive]] for row in test.itertuples()},
    }


def matryoshka_dims(embedding_dim: int, params: dict[str, Any]) -> list[int]:
    """``params["matryoshka_dims"]`` if a list, else (``auto``) the model's dim and 4 smaller ones."""
    dims = params["matryoshka_dims"]
    if dims == "auto":
        return [embedding_dim] + [d for d in _SMALLER_DIMS if d < embedding_dim][: N_DIMS - 1]
    dims = sorted({int(d) for d in dims}, reverse=True)
    if dims[0] != embedding_dim:  # the full dimension is what movie_embedding uses: it must be trained and reported
        raise ValueError(
            f"parameters_bge_finetune.yml: matryoshka_dims {dims} must start at the model's {embedding_dim} "
            f"dimensions (the full embedding, which movie_embedding uses), then smaller ones; use 'auto' or "
            f"[{embedding_dim}, ...]."
        )
    return dims


def prepare_training_set(
    train: pd.DataFrame,
    base_model: Any,
    params: dict[str, Any],
    test: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The columns the loss sees, in order: ``anchor, positive`` or ``anchor, positive, negative``.

    A ``negative`` column in the data is used as given, but with ``split.by: positive`` a triplet
    whose negative is a positive of ``test`` or ``validation`` is dropped (counted in a warning):
    training on it would show the model a held-out document, which that split keeps unseen. A
    user's negatives are often drawn from the whole corpus (the next paragraph, a neighbour), not
    knowing the seeded split, so such rows are expected rather than an input error; the run fails
    only if too few are left (:func:`split_pairs`, before anything is written). Dropping the row
    rather than its negative: the loss takes triplets or pairs, not both. With
    ``hard_negatives.mine`` one is mined from the *training* positives only (so no test text leaks
    in) with ``sentence_transformers.util.mine_hard_negatives`` and the base model, which scores the
    texts with the configured ``prompts`` as training and evaluation see them.
    """
    hard = params["hard_negatives"]
    if "negative" in train.columns and hard["use_negative_column"]:
        held_out = [t for t in (test, validation) if t is not None]
        shown = held_out_negatives(train, held_out, params)
        if shown.any():
            logger.warning(
                "Dropped %d of %d training triplets (%.0f %%) whose negative is a test or validation positive: "
                "split.by: positive keeps those documents out of training",
                int(shown.sum()),
                len(train),
                100 * shown.mean(),
            )
            train = train.loc[~shown]
        logger.info("Training on %d given triplets", len(train))
        return train[["anchor", "positive", "negative"]].reset_index(drop=True)
    if not hard["mine"]:
        logger.info("Training on %d pairs (in-batch negatives only)", len(train))
        return train[["anchor", "positive"]].reset_index(drop=True)

    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    query_prompt, document_prompt = _prompts(params)
    # sampling_strategy "random" draws from Python's random module: seeded here (split.seed), and the
    # caller's random state given back, so the same parameters give the same triplets
    state = random.getstate()
    random.seed(params["split"]["seed"])
    try:
        mined = mine_hard_negatives(
            Dataset.from_pandas(train[["anchor", "positive"]], preserve_index=False),
            as_sentence_transformer(base_model),
            anchor_column_name="anchor",
            positive_column_name="positive",
            query_prompt=query_prompt,
            corpus_prompt=document_prompt,
            range_min=hard["range_min"],
            range_max=hard["range_max"],
            relative_margin=hard["relative_margin"],
            num_negatives=1,
            sampling_strategy=hard["sampling_strategy"],
            batch_size=hard["batch_size"],
            output_format="triplet",
            verbose=params["show_progress_bar"],
        ).to_pandas()
    finally:
        random.setstate(state)
    logger.info("Mined hard negatives: %d triplets from %d pairs", len(mined), len(train))
    left_out = len(train) - len(mined)
    if left_out:
        logger.warning(
            "Hard-negative mining found no negative for %d of %d training pairs (%.0f %%); they are left out of "
            "training. To keep more of them, lower bge_finetune.hard_negatives.relative_margin (null: no margin) "
            "or raise range_max.",
            left_out,
            len(train),
            100 * left_out / len(train),
        )
    return mined[["anchor", "positive", "negative"]].reset_index(drop=True)


# ---------------------------------------------------------------- training


def _prompts(params: dict[str, Any]) -> tuple[str, str]:
    """The query and document prefixes the model expects (e5: ``query: `` / ``passage: ``); ``""`` when empty.

    Every encode outside the trainer passes them explicitly, ``""`` included: sentence-transformers
    would otherwise add the model's own ``prompts["query"]`` / ``prompts["document"]``, which the
    trainer (column prompts only) never adds, so training and evaluation would see different text.
    """
    prompts = params["prompts"]
    return prompts["query"] or "", prompts["document"] or ""


# loss.name -> the sentence-transformers loss class it names
LOSS_CLASSES = {
    "mnrl": "MultipleNegativesRankingLoss",
    "cached_mnrl": "CachedMultipleNegativesRankingLoss",
    "gist": "GISTEmbedLoss",
    "cached_gist": "CachedGISTEmbedLoss",
}


def loss_problem(spec: dict[str, Any]) -> str | None:
    """What is wrong with ``loss`` (an unknown name, or ``kwargs`` the class does not take), or None.

    Also run by the parameter check before anything runs, so a recipe that cannot build its loss stops
    at once, not after the base model has been scored.
    """
    import inspect

    from sentence_transformers.sentence_transformer import losses

    name = spec["name"]
    if name not in LOSS_CLASSES:
        return f"loss.name must be one of {sorted(LOSS_CLASSES)}, not {name!r}"
    cls = getattr(losses, LOSS_CLASSES[name])
    fixed = {"guide"} if "gist" in name else set()
    if name.startswith("cached_"):
        fixed.add("mini_batch_size")
    taken = set(inspect.signature(cls).parameters) - {"self", "model", *fixed}
    unknown = sorted(set(spec.get("kwargs") or {}) - taken)
    if not unknown:
        return None
    return (
        f"loss.kwargs {unknown} are not keyword arguments of {cls.__name__} that the recipe leaves to you; it "
        f"takes {sorted(taken)}. Set loss.kwargs for the loss you choose (conf/base's are MNRL's)."
    )


def build_loss(model: Any, dims: list[int], params: dict[str, Any], guide: Any = None) -> Any:
    """``MatryoshkaLoss`` around the in-batch-negatives loss named by ``loss.name``.

    - ``mnrl``: MultipleNegativesRankingLoss (the original's): every other positive in the batch is a negative.
    - ``cached_mnrl``: the same with GradCache, so ``trainer.per_device_train_batch_size`` (in-batch
      negatives) can be 128-256 at the memory of ``loss.mini_batch_size``.
    - ``gist`` / ``cached_gist``: GISTEmbedLoss, which asks ``guide`` (a frozen copy of the base
      model) to drop in-batch negatives that score above the positive: likely false negatives.

    ``loss.matryoshka_weights``: one weight per dimension (null: all 1).
    ``loss.kwargs``: the loss class's own keyword arguments, passed as they are (MNRL's ``scale``,
    ``directions`` for the symmetric loss, ``hardness_mode`` / ``hardness_strength`` to weigh the harder
    in-batch negatives; GIST's ``margin_strategy``, ...); a key the class does not take is an error.
    """
    from sentence_transformers.sentence_transformer import losses

    spec = params["loss"]
    name = spec["name"]
    problem = loss_problem(spec)
    if problem:
        raise ValueError(f"parameters_bge_finetune.yml: {problem}")
    # what the recipe sets itself; loss.kwargs may add any other argument of the class
    fixed: dict[str, Any] = {"guide": guide} if "gist" in name else {}
    if name.startswith("cached_"):
        fixed["mini_batch_size"] = spec["mini_batch_size"]
    inner = getattr(losses, LOSS_CLASSES[name])(model, **fixed, **dict(spec.get("kwargs") or {}))
    weights = matryoshka_weights(dims, params)
    return losses.MatryoshkaLoss(model, inner, matryoshka_dims=dims, matryoshka_weights=weights)


def matryoshka_weights(dims: list[int], params: dict[str, Any]) -> list[float] | None:
    """The ``loss.matryoshka_weights`` of ``dims`` (None: all 1), one per dimension, largest first.

    With ``matryoshka_dims: auto`` the weights are given for :data:`N_DIMS` dimensions; a model of 256 dimensions
    or less has fewer auto dimensions (256: 256/128/64/32) and uses the first weights, so ``[64, 1, 1, 1, 1]``
    still weighs its full dimension 64 times (said in the log). Otherwise the count must match."""
    weights = params["loss"]["matryoshka_weights"]
    if weights is None or len(weights) == len(dims):
        return weights
    if params.get("matryoshka_dims") == "auto" and len(weights) == N_DIMS and len(dims) < N_DIMS:
        logger.info(
            "matryoshka_dims auto gives %d dimensions %s for this model; the first %d of the %d matryoshka_weights "
            "%s are used",
            len(dims),
            dims,
            len(dims),
            N_DIMS,
            weights,
        )
        return list(weights[: len(dims)])
    raise ValueError(
        f"parameters_bge_finetune.yml: loss.matryoshka_weights has {len(weights)} weights for {len(dims)} dims {dims}"
    )


def _validation_evaluator(task: dict[str, Any], params: dict[str, Any]) -> Any:
    """Full-dimension cosine retrieval metrics on ``task``, with the configured prompts (``""``: none)."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.util import cos_sim

    query_prompt, document_prompt = _prompts(params)
    return InformationRetrievalEvaluator(
        queries=task["queries"],
        corpus=task["corpus"],
        relevant_docs={q: set(docs) for q, docs in task["relevant"].items()},
        mrr_at_k=[10],
        ndcg_at_k=[10],
        accuracy_at_k=[1, 10],
        precision_recall_at_k=[1, 10],
        map_at_k=[10],
        batch_size=params["evaluation"]["batch_size"],
        name="validation",
        write_csv=False,
        show_progress_bar=params["show_progress_bar"],  # each checkpoint re-embeds the validation corpus
        score_functions={"cosine": cos_sim},
        query_prompt=query_prompt,
        corpus_prompt=document_prompt,
    )


VALIDATION_METRIC = "validation_cosine_ndcg@10"


def training_arguments(
    params: dict[str, Any], output_dir: str, prompts: dict[str, str] | None, eval_steps: int | None
) -> Any:
    """``SentenceTransformerTrainingArguments`` from ``params["trainer"]`` (its own keys, passed as they are)
    and what the recipe fixes: the sampler, the column prompts, and with ``eval_steps`` an evaluation and
    checkpoint every ``eval_steps`` steps, the best one loaded at the end (None: neither)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(
        **recipe_arguments(params, output_dir, prompts, eval_steps), **params["trainer"]
    )


def recipe_arguments(
    params: dict[str, Any], output_dir: str, prompts: dict[str, str] | None, eval_steps: int | None
) -> dict[str, Any]:
    """The training arguments the recipe sets itself (a ``trainer`` key among them would be given twice: the
    parameter check refuses it before the run)."""
    from sentence_transformers.base.sampler import BatchSamplers

    validate = eval_steps is not None
    return dict(
        output_dir=output_dir,
        # MNRL: a duplicate text in a batch would be a false negative, hence the no-duplicates sampler.
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts=prompts,
        eval_strategy="steps" if validate else "no",
        eval_steps=eval_steps,
        save_strategy="steps" if validate else "no",
        save_steps=eval_steps,
        save_only_model=True,
        save_total_limit=2,
        load_best_model_at_end=validate,
        metric_for_best_model=f"eval_{VALIDATION_METRIC}" if validate else None,
        greater_is_better=True,
        logging_first_step=True,
        report_to="none",
        use_cpu=True,
        disable_tqdm=not params["show_progress_bar"],
    )


def _weights(model: Any) -> dict[str, Any]:
    """A copy of the model's weights (its state dict), detached from training."""
    return {k: value.detach().clone() for k, value in model.state_dict().items()}


def soup_seeds(params: dict[str, Any]) -> list[int]:
    """The training seeds of one run: ``[trainer.seed]``, or ``soup.seeds`` (one training run per seed)."""
    seeds = (params.get("soup") or {}).get("seeds")
    if seeds is None:
        return [params["trainer"]["seed"]]
    if not isinstance(seeds, list) or len(set(seeds)) < max(2, len(seeds)):
        raise ValueError(
            f"parameters_bge_finetune.yml: soup.seeds must be null or a list of 2 or more distinct seeds, not {seeds!r}"
        )
    return [int(s) for s in seeds]


def _train_once(
    model: Any,
    dataset: Any,
    loss: Any,
    evaluator: Any,
    params: dict[str, Any],
    column_prompts: dict[str, str] | None,
    eval_steps: int | None,
    complete_epochs: int,
) -> tuple[Any, Any, list[int]]:
    """One trainer run on ``model`` (in place; the best checkpoint loaded back when ``eval_steps``);
    returns the trainer's result, its final state (log history, epoch) and, per epoch trained to its end
    (at most ``complete_epochs``), the training rows its batches left out (:func:`rows_left_out`)."""
    import transformers
    from sentence_transformers import SentenceTransformerTrainer

    patience = params["validation"]["early_stopping_patience"]
    callbacks = []
    if eval_steps is not None and patience:
        callbacks.append(transformers.EarlyStoppingCallback(early_stopping_patience=patience))
    # The trainer wants an output_dir: checkpoints (weights only) live there until the best is
    # loaded back; the model leaves through the catalog.
    with tempfile.TemporaryDirectory(prefix="bge_finetune-") as scratch:
        args = training_arguments(params, scratch, column_prompts, eval_steps)
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=dataset, loss=loss, evaluator=evaluator, callbacks=callbacks
        )
        result = trainer.train()
        # the epochs trained to their end (early stopping may end a run before the planned ones)
        left_out = rows_left_out(trainer, min(complete_epochs, int(trainer.state.epoch + 1e-9)))
    return result, trainer.state, left_out


# The trainer's own evaluation of a checkpoint and a second evaluation of the same weights agree to this (the same
# texts, batches and CPU kernels; in practice to the last digit): a larger gap means other weights.
_SAME_SCORE = 1e-4


def _returned_checkpoint(model: Any, evaluator: Any, curve: list[dict[str, Any]], steps: int) -> dict[str, Any] | None:
    """The checkpoint ``model`` holds after a run with validation: ``{"step", "ndcg@10", "loaded"}``.

    ``load_best_model_at_end`` should have loaded the curve's best back, but sentence-transformers only logs an
    error when that fails (a truncated or unreadable checkpoint) and keeps the last weights. So the returned model
    is scored on validation again: if it is not the best, this says so loudly and the entry is what the model is
    (the weights training ended with, step ``steps``, and their score), which the report and
    ``keep_base_if_better`` then use instead of the curve's best. None: no evaluation ran.
    """
    if not curve:
        return None
    best = max(curve, key=lambda e: e["ndcg@10"])
    score = float(evaluator(model)[VALIDATION_METRIC])
    if abs(score - best["ndcg@10"]) <= _SAME_SCORE:
        return {**best, "loaded": True}
    logger.error(
        "The best checkpoint (step %d, validation NDCG@10 %.4f) was not loaded back: the model holds other weights "
        "(validation NDCG@10 %.4f, those of the last step %d, presumably). The report uses what the model scores; "
        "see the trainer's error above (an unreadable checkpoint, a full disk) and run again to get the best one.",
        best["step"],
        best["ndcg@10"],
        score,
        steps,
    )
    return {"step": steps, "ndcg@10": score, "loaded": False, "best_step": best["step"]}


def _checkpoint_name(entry: dict[str, Any]) -> str:
    """``step N``, or for a best checkpoint that was not loaded back, what the model holds instead."""
    if entry["loaded"]:
        return f"step {entry['step']}"
    return f"step {entry['step']}, the last (the best, step {entry['best_step']}, could not be loaded back)"


def rows_left_out(trainer: Any, epochs: int) -> list[int]:
    """Per epoch, the training rows that none of the batches the trainer takes holds.

    The no-duplicates sampler puts a row into a batch only if none of its texts is there already, so
    rows whose texts repeat (a paragraph with many questions, a mined negative that is another row's
    positive) wait for later, smaller batches; the trainer takes only the batches the sampler
    announced (``len``, counted as if every batch were full) and the rest of the epoch's rows go
    unseen. This replays the trainer's own sampler (``get_batch_sampler``, seeded per epoch as in
    training; after training, for the epochs it ran to their end), so the counts are those of the run;
    training is not changed.
    """
    import torch

    args = trainer.args
    sampler = trainer.get_batch_sampler(
        trainer.train_dataset,
        batch_size=args.per_device_train_batch_size,
        drop_last=args.dataloader_drop_last,
        valid_label_columns=trainer.data_collator.valid_label_columns,
        generator=torch.Generator(),
        seed=args.seed,
    )
    n_rows, taken = len(trainer.train_dataset), len(sampler)
    left = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        seen: set[int] = set()
        for i, batch in enumerate(sampler):
            if i == taken:
                break
            seen.update(batch)
        left.append(n_rows - len(seen))
        if left[-1]:
            logger.warning(
                "Epoch %d left %d of %d training rows (%.1f %%) unseen: the no-duplicates sampler keeps rows "
                "whose texts repeat out of a batch that has them, and the trainer took the %d batches of %d "
                "it counted. A smaller per_device_train_batch_size leaves fewer out.",
                epoch + 1,
                left[-1],
                n_rows,
                100 * left[-1] / n_rows,
                taken,
                args.per_device_train_batch_size,
            )
    return left


def update_steps_per_epoch(n_rows: int, trainer: dict[str, Any]) -> int:
    """Optimizer steps in one epoch over ``n_rows`` training rows, counted as transformers' ``Trainer`` does.

    The epoch has ``ceil(n_rows / per_device_train_batch_size)`` batches (``n_rows // batch`` with
    ``dataloader_drop_last``); each step accumulates ``gradient_accumulation_steps`` of them, and a last,
    partial accumulation is a step too; at least 1.
    """
    batch = trainer["per_device_train_batch_size"]
    batches = n_rows // batch if trainer.get("dataloader_drop_last") else math.ceil(n_rows / batch)
    return max(1, math.ceil(batches / trainer.get("gradient_accumulation_steps", 1)))


def fine_tune(
    base_model: Any, train_set: pd.DataFrame, validation_task: dict[str, Any], params: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Train with ``MatryoshkaLoss`` (:func:`build_loss`), keeping the checkpoint best on validation.

    With validation queries, sentence-transformers' ``InformationRetrievalEvaluator`` scores the
    full-dimension NDCG@10 on them every ``validation.eval_steps`` (default: once per epoch); the
    trainer keeps the best checkpoint (``load_best_model_at_end``) and stops early after
    ``validation.early_stopping_patience`` evaluations without gain. If no checkpoint beats the base
    model on validation (``validation.keep_base_if_better``), the base weights are restored: a run
    never ends on a model worse than its best. Returns the model (``base_model`` itself, loaded if
    lazy and trained in place) and a training log with the loss and validation curves.

    ``soup.seeds`` (a list) trains one run per seed from the base weights (``trainer.seed`` and
    ``trainer.data_seed`` set to it; each run keeps its own best checkpoint) and returns the
    parameter-by-parameter mean of their weights, a uniform "model soup" (Wortsman et al. 2022):
    one model of the same size, scored on validation like a checkpoint.

    ``params["trainer"]`` holds ``SentenceTransformerTrainingArguments``' own keys and is passed as
    it is; this function sets only what the recipe fixes (output folder, sampler, prompts,
    evaluation and checkpoint schedule, no reporting, CPU).
    """
    import copy

    import transformers
    from datasets import Dataset

    t, v = params["trainer"], params["validation"]
    seeds = soup_seeds(params)
    soup = len(seeds) > 1
    if soup:  # said every time: a --params trainer.seed would otherwise be accepted and silently unused
        logger.info(
            "Model soup: soup.seeds %s set each run's trainer.seed and data_seed (trainer.seed %s and data_seed %s "
            "are not used; soup.seeds=null trains one run with them)",
            seeds,
            params["trainer"].get("seed"),
            params["trainer"].get("data_seed"),
        )
    transformers.set_seed(seeds[0])
    model = as_sentence_transformer(base_model)  # the catalog's model is lazy: load it here
    dims = matryoshka_dims(model.get_embedding_dimension(), params)
    guide = copy.deepcopy(model).eval() if params["loss"]["name"] in ("gist", "cached_gist") else None
    loss = build_loss(model, dims, params, guide)
    dataset = Dataset.from_pandas(train_set, preserve_index=False)
    query_prompt, document_prompt = _prompts(params)
    column_prompts = {"anchor": query_prompt, "positive": document_prompt, "negative": document_prompt}
    column_prompts = {c: p for c, p in column_prompts.items() if p and c in train_set.columns}

    steps_per_epoch = update_steps_per_epoch(len(train_set), t)
    # max_steps -1 (the library's "no limit") trains every epoch
    total_steps = t["max_steps"] if t["max_steps"] > 0 else math.ceil(steps_per_epoch * t["num_train_epochs"])
    validate = bool(validation_task and validation_task["queries"])
    evaluator = _validation_evaluator(validation_task, params) if validate else None
    eval_steps = min(v["eval_steps"] or steps_per_epoch, total_steps)
    base_score = float(evaluator(model)[VALIDATION_METRIC]) if validate else None
    keep_initial = validate or len(seeds) > 1
    initial_state = _weights(model) if keep_initial else None
    started = time.perf_counter()
    runs = []
    for i, seed in enumerate(seeds):
        if i:
            model.load_state_dict(initial_state)  # every member starts from the base weights
        run_params = {**params, "trainer": {**t, "seed": seed, "data_seed": seed}} if soup else params
        if soup:
            logger.info("Model soup: training run %d of %d, seed %d", i + 1, len(seeds), seed)
        result, state, left_out = _train_once(
            model,
            dataset,
            loss,
            evaluator,
            run_params,
            column_prompts or None,
            eval_steps if validate else None,
            total_steps // steps_per_epoch,
        )
        curve = [
            {"step": int(e["step"]), "ndcg@10": float(e[f"eval_{VALIDATION_METRIC}"])}
            for e in state.log_history
            if f"eval_{VALIDATION_METRIC}" in e
        ]
        runs.append(
            {
                "seed": seed,
                "result": result,
                "best": _returned_checkpoint(model, evaluator, curve, int(result.global_step)) if validate else None,
                "history": [
                    {"step": int(e["step"]), "epoch": float(e["epoch"]), "loss": float(e["loss"])}
                    | ({"seed": seed} if soup else {})
                    for e in state.log_history
                    if "loss" in e
                ],
                "curve": curve,
                "epoch": float(state.epoch or 0.0),
                "rows_left_out": left_out,
                "state": _weights(model) if soup else None,
            }
        )
    if soup:
        model.load_state_dict(average_state_dicts([r["state"] for r in runs]))
    history = [h for r in runs for h in r["history"]]
    validation = {"n_queries": len(validation_task["queries"]) if validate else 0}
    if validate:
        if soup:
            soup_score = float(evaluator(model)[VALIDATION_METRIC])
            best = {"ndcg@10": soup_score}
            curve = [{"seed": r["seed"], **e} for r in runs for e in r["curve"]]
            kept = ", ".join(f"seed {r['seed']} {_checkpoint_name(r['best'])}" for r in runs if r["best"])
            chosen = f"soup of {len(runs)} runs ({kept})"
        else:
            curve = runs[0]["curve"]
            best = runs[0]["best"]
            chosen = _checkpoint_name(best) if best else "last step"
        keep_base = v["keep_base_if_better"] and (best is None or best["ndcg@10"] <= base_score)
        if keep_base:
            model.load_state_dict(initial_state)
            logger.warning(
                "No checkpoint beat the base model on validation (NDCG@10 %.4f vs best %s): the base weights are kept",
                base_score,
                f"{best['ndcg@10']:.4f}" if best else "none",
            )
        validation.update(
            {
                "n_corpus": len(validation_task["corpus"]),
                "base_ndcg@10": base_score,
                "best_ndcg@10": best["ndcg@10"] if best else None,
                "chosen": "base model" if keep_base else chosen,
                # False: the trainer could not load a run's best checkpoint back (_returned_checkpoint)
                "best_checkpoint_loaded": all(r["best"].get("loaded", True) for r in runs if r["best"]),
                "curve": curve,
                "stopped_early": any(int(r["result"].global_step) < total_steps for r in runs),
            }
        )
        if soup:
            validation["runs"] = [
                {"seed": r["seed"], "best_ndcg@10": r["best"]["ndcg@10"] if r["best"] else None} for r in runs
            ]
        logger.info(
            "Validation NDCG@10: base %.4f, checkpoints %s; kept: %s",
            base_score,
            [round(e["ndcg@10"], 4) for e in curve],
            validation["chosen"],
        )
        if soup:
            logger.info("Validation NDCG@10 of the soup: %.4f", soup_score)
    log = {
        "matryoshka_dims": dims,
        "loss": params["loss"]["name"],
        # the weights used (auto on a small model: the first ones, matryoshka_weights); null: all 1
        "matryoshka_weights": None
        if params["loss"].get("matryoshka_weights") is None
        else list(loss.matryoshka_weights),
        "loss_kwargs": dict(params["loss"].get("kwargs") or {}),
        "n_train_rows": len(train_set),
        # per complete epoch (of each soup run): rows none of the trainer's batches held (rows_left_out)
        "rows_left_out_by_epoch": [n for r in runs for n in r["rows_left_out"]],
        "columns": list(train_set.columns),
        "steps": sum(int(r["result"].global_step) for r in runs),
        "epochs": float(sum(r["epoch"] for r in runs)),
        "train_loss_mean": float(np.mean([r["result"].training_loss for r in runs])),
        "runtime_s": round(time.perf_counter() - started, 1),
        "loss_history": history,
        "validation": validation,
    }
    if soup:
        log["soup_seeds"] = seeds
    logger.info(
        "Trained %d steps in %.0f s; loss %.4f -> %.4f",
        log["steps"],
        log["runtime_s"],
        history[0]["loss"] if history else float("nan"),
        history[-1]["loss"] if history else float("nan"),
    )
    return model, log


# ---------------------------------------------------------------- evaluation


def _ranks(scores: Any, relevant: list[list[int]], id_order: Any) -> list[Any]:
    """1-based rank of each query's relevant documents, ties broken by corpus id as the library's evaluator does."""
    import torch

    ranks = []
    for i, docs in enumerate(relevant):
        row = scores[i]
        own = row[docs]
        above = (row[None, :] > own[:, None]).sum(dim=1)
        tied_before = ((row[None, :] == own[:, None]) & (id_order[None, :] < id_order[docs][:, None])).sum(dim=1)
        ranks.append((above + tied_before + 1).to(torch.long))
    return ranks


def evaluate_retrieval(model: Any, task: dict[str, Any], params: dict[str, Any]) -> pd.DataFrame:
    """Per test query, at every Matryoshka dimension: cosine NDCG@10, MRR@10, Recall@1 and Recall@10.

    The same numbers as sentence-transformers' ``InformationRetrievalEvaluator`` (a test checks
    that their means agree), kept per query so that before/after can be compared with a paired
    bootstrap over queries. Queries and corpus are embedded once at full size and truncated per
    dimension (truncation happens after the forward pass; cosine renormalises), with the configured
    ``prompts`` (``""``: none, not the model's own), the very text training sees.

    Returns:
        One row per (query, dimension): ``query_id, dim, ndcg@10, mrr@10, recall@1, recall@10``.
    """
    import torch
    from sentence_transformers.util import cos_sim

    ev = params["evaluation"]
    model = as_sentence_transformer(model)
    dims = matryoshka_dims(model.get_embedding_dimension(), params)
    query_prompt, document_prompt = _prompts(params)
    query_ids, corpus_ids = list(task["queries"]), list(task["corpus"])
    position = {doc: i for i, doc in enumerate(corpus_ids)}
    relevant = [[position[d] for d in task["relevant"][q]] for q in query_ids]
    id_order = torch.empty(len(corpus_ids), dtype=torch.long)
    id_order[torch.tensor(sorted(range(len(corpus_ids)), key=corpus_ids.__getitem__))] = torch.arange(len(corpus_ids))
    encode = {
        "batch_size": ev["batch_size"],
        "convert_to_tensor": True,
        "show_progress_bar": params["show_progress_bar"],
    }
    query_texts = [task["queries"][q] for q in query_ids]
    document_texts = list(task["corpus"].values())
    advice = ", in training as here. A model with a longer limit (or documents split into passages) sees all of them."
    for what, prompt, texts in (
        ("test queries", query_prompt, query_texts),
        ("corpus documents", document_prompt, document_texts),
    ):
        warn_truncated(model, [prompt + t for t in texts], what, advice)  # the prefix counts too
    queries = model.encode_query(query_texts, prompt=query_prompt, **encode).cpu()
    corpus = model.encode_document(document_texts, prompt=document_prompt, **encode).cpu()
    frames = []
    discounts = 1.0 / torch.log2(torch.arange(2, 12, dtype=torch.float64))  # ranks 1..10
    for dim in dims:
        ranks = _ranks(cos_sim(queries[:, :dim], corpus[:, :dim]), relevant, id_order)
        rows = []
        for r in ranks:
            top10 = r[r <= 10]
            ideal = discounts[: min(len(r), 10)].sum()
            rows.append(
                (
                    float(discounts[top10 - 1].sum() / ideal),
                    float(1.0 / r.min()) if r.min() <= 10 else 0.0,
                    float((r <= 1).sum()) / len(r),
                    float((r <= 10).sum()) / len(r),
                )
            )
        frame = pd.DataFrame(rows, columns=list(REPORTED))
        frame.insert(0, "dim", dim)
        frame.insert(0, "query_id", query_ids)
        frames.append(frame)
        logger.info("dim %4d: NDCG@10 %.4f  MRR@10 %.4f  R@1 %.4f  R@10 %.4f", dim, *frame[list(REPORTED)].mean())
    return pd.concat(frames, ignore_index=True)


def mean_scores(scores: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``{dim: {metric: mean over queries}}``, largest dimension first."""
    means = scores.groupby("dim", sort=False)[list(REPORTED)].mean()
    return {str(d): {m: float(means.loc[d, m]) for m in REPORTED} for d in means.index}


def compare_scores(before: pd.DataFrame, after: pd.DataFrame, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per dimension and metric: after vs before, paired bootstrap over the test queries.

    Every (dimension, metric) uses the same resamples of queries (one seed), so the intervals
    are for the same resampled query sets.
    """
    st = params["statistics"]
    key = ["query_id", "dim"]
    paired = before.merge(after, on=key, suffixes=("_before", "_after"), validate="one_to_one")
    if len(paired) != len(before) or len(paired) != len(after):
        raise ValueError("bge_finetune: before and after were not scored on the same queries and dimensions")
    out: dict[str, dict[str, Any]] = {}
    for dim, group in paired.groupby("dim", sort=False):
        out[str(dim)] = {
            metric: paired_bootstrap(
                group[f"{metric}_before"].to_numpy(),
                group[f"{metric}_after"].to_numpy(),
                n_resamples=st["n_resamples"],
                confidence=st["confidence"],
                seed=st["seed"],
            ).to_dict()
            for metric in REPORTED
        }
    return out


def report_metrics(
    before: pd.DataFrame,
    after: pd.DataFrame,
    training_log: dict[str, Any],
    task: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """One JSON: data sizes, training log, means before/after per dimension, and every paired comparison.

    ``comparison[dim][metric]`` holds after - before with its 95 % interval and verdict;
    ``verdicts[dim]`` is NDCG@10's verdict, and ``conclusion`` says each in words.
    """
    comparison = compare_scores(before, after, params)
    dims = list(comparison)
    verdicts = {d: comparison[d]["ndcg@10"]["verdict"] for d in dims}
    conclusion = [_comparison_sentence(f"NDCG@10 at {d} dims", comparison[d]["ndcg@10"]) for d in dims]
    base_kept = (training_log.get("validation") or {}).get("chosen") == "base model"
    if base_kept:
        conclusion.insert(
            0,
            "No checkpoint beat the base model on validation, so the base weights were kept: 'after' is the base "
            "model, and every difference below is 0 by construction.",
        )
    for line in conclusion:
        logger.info("%s", line)
    return {
        "model": params["labels"]["model"],
        "data_label": params["labels"]["data"],
        "data": {
            "n_test_queries": len(task["queries"]),
            "n_corpus": len(task["corpus"]),
            "n_train_rows": training_log["n_train_rows"],
            "triplets": "negative" in training_log["columns"],
            "split_by": params["split"]["by"],
        },
        "dims": [int(d) for d in dims],
        "before": mean_scores(before),
        "after": mean_scores(after),
        "comparison": comparison,
        "verdicts": verdicts,
        "better_at_every_dim": all(v == "better" for v in verdicts.values()),
        "base_weights_kept": base_kept,
        "conclusion": conclusion,
        "training": training_log,
    }


def _comparison_sentence(what: str, c: dict[str, Any]) -> str:
    from qeu_kedro.stats import Comparison

    return Comparison(**c).describe(what, change="changed after fine-tuning")


def plot_ndcg(metrics: dict[str, Any]) -> Any:
    """NDCG@10 against dimension before/after, and the paired difference with its 95 % interval per dimension."""
    import matplotlib.pyplot as plt

    dims = metrics["dims"]
    fig, (ax, diff_ax) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.2, 1]})
    for stage, style in (("before", "o--"), ("after", "o-")):
        values = [metrics[stage][str(d)]["ndcg@10"] for d in dims]
        ax.plot(dims, values, style, label=f"{stage} fine-tuning")
        for d, value in zip(dims, values, strict=True):
            ax.annotate(f"{value:.3f}", (d, value), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    colours = {"better": "tab:green", "no evidence": "tab:gray", "worse": "tab:red"}
    for d in dims:
        c = metrics["comparison"][str(d)]["ndcg@10"]
        diff_ax.errorbar(
            [d],
            [c["difference"]],
            yerr=[[c["difference"] - c["ci_low"]], [c["ci_high"] - c["difference"]]],
            fmt="o",
            capsize=5,
            color=colours[c["verdict"]],
        )
    diff_ax.axhline(0, color="black", linewidth=0.8)
    from matplotlib.lines import Line2D

    diff_ax.legend(
        handles=[Line2D([], [], marker="o", linestyle="", color=col, label=v) for v, col in colours.items()],
        title=f"verdict ({metrics['comparison'][str(dims[0])]['ndcg@10']['confidence']:.0%} interval)".replace(
            "%", " %"
        ),
        fontsize=8,
        title_fontsize=8,
    )
    diff_ax.set_ylabel("NDCG@10 after - before")
    diff_ax.set_title("Paired difference, bootstrap over test queries", fontsize=10)
    for a in (ax, diff_ax):
        a.set_xscale("log", base=2)
        a.set_xticks(dims, [str(d) for d in dims])
        a.minorticks_off()
        a.set_xlabel("embedding dimension (Matryoshka truncation)")
        a.grid(alpha=0.3)
    ax.set_ylabel("NDCG@10 (cosine)")
    ax.legend()
    data = metrics["data"]
    ax.set_title(f"{data['n_test_queries']} test queries, corpus of {data['n_corpus']}", fontsize=10)
    better = sum(v == "better" for v in metrics["verdicts"].values())
    worse = sum(v == "worse" for v in metrics["verdicts"].values())
    suptitle(
        fig,
        f"bge_finetune: {metrics['model']} fine-tuned on {metrics['data_label']}"
        + (" (base weights kept: no checkpoint beat them on validation)" if metrics.get("base_weights_kept") else "")
        + f", n = {data['n_test_queries']} test queries: "
        f"NDCG@10 better at {better} of {len(dims)} dimensions" + (f", worse at {worse}" if worse else ""),
        fontsize=11,
    )
    fig.tight_layout()
    return fig
