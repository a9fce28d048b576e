"""Nodes of the ``bge_finetune`` pipeline: Matryoshka fine-tuning on (anchor, positive) pairs.

The original fine-tuned BAAI/bge-base-en with ``MatryoshkaLoss(MultipleNegativesRankingLoss)``
and measured cosine NDCG@10 at several truncated dimensions before and after. Here the
same recipe runs on any pairs table (or a SQuAD-format file), optionally as triplets.
"""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.model_selection import GroupShuffleSplit, train_test_split  # noqa: E402

from qeu_kedro.datasets.lazy_sentence_transformer import as_sentence_transformer  # noqa: E402
from qeu_kedro.validation import Column, check_table, fail  # noqa: E402

from .checks import check_split  # noqa: E402

logger = logging.getLogger(__name__)

DATASET = "bge_pairs"
# Dimensions tried below the model's own, largest first: the original's 768/512/256/128/64
# for a 768-dim model, 384/256/128/64/32 for a 384-dim one.
_SMALLER_DIMS = (512, 256, 128, 64, 32)
N_DIMS = 5
# What the report keeps of the evaluator's many metrics (all cosine, as in the original).
REPORTED = ("ndcg@10", "mrr@10", "recall@1", "recall@10")


# ---------------------------------------------------------------- data


def _squad_to_table(raw: Any) -> pd.DataFrame:
    """(question, paragraph) rows of a SQuAD v1.1 file, with the question id as ``id``."""
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        fail(DATASET, None, None, "expected SQuAD v1.1 JSON: an object with a 'data' list of articles")
    rows = []
    for a, article in enumerate(raw["data"]):
        for p, paragraph in enumerate(article.get("paragraphs") or []):
            context = paragraph.get("context")
            for qa in paragraph.get("qas") or []:
                if "question" not in qa:
                    fail(DATASET, "question", None, f"article {a}, paragraph {p}: a 'qas' entry has no 'question'")
                rows.append((str(qa.get("id", len(rows))), qa["question"], context))
    if not rows:
        fail(DATASET, None, None, "the SQuAD file holds no questions")
    return pd.DataFrame(rows, columns=["id", "anchor", "positive"])


def make_pairs(raw: Any, params: dict[str, Any]) -> pd.DataFrame:
    """Check the raw pairs and return ``id, anchor, positive`` (and ``negative`` when given).

    ``params["source"]``: ``format`` is ``table`` (a table whose ``anchor_column``,
    ``positive_column`` and optional ``negative_column`` are renamed to the original's
    names) or ``squad`` (SQuAD v1.1 JSON: question -> paragraph). With
    ``drop_incomplete`` rows with a blank text are dropped (and counted) instead of failing.
    Repeated anchors keep their first row: a query with two answers would be ambiguous.
    """
    source = params["source"]
    if source["format"] == "squad":
        table = _squad_to_table(raw)
    elif source["format"] == "table":
        renames = {source["anchor_column"]: "anchor", source["positive_column"]: "positive"}
        negative = source.get("negative_column")
        if negative and negative in raw.columns:
            renames[negative] = "negative"
        missing = [c for c in renames if c not in raw.columns]
        if missing:
            fail(DATASET, missing[0], None, f"required column is missing (found: {list(raw.columns)})",
                 "Set source.anchor_column / positive_column in parameters_bge_finetune.yml.")
        table = raw.rename(columns=renames)
        if "id" not in table.columns:
            table = table.assign(id=np.arange(len(table)))
    else:
        raise ValueError(f"parameters_bge_finetune.yml: source.format must be 'table' or 'squad', not {source['format']!r}")

    texts = [c for c in ("anchor", "positive", "negative") if c in table.columns]
    if source.get("drop_incomplete", False):
        blank = table[texts].apply(lambda col: col.isna() | col.astype(str).str.strip().eq("")).any(axis=1)
        if blank.any():
            logger.info("Dropped %d pairs with a blank %s", int(blank.sum()), "/".join(texts))
        table = table.loc[~blank.to_numpy()]
    columns = [Column("id", "str", unique=True)] + [Column(c, "str") for c in texts]
    pairs = check_table(table.astype({"id": str}), DATASET, columns)
    repeated = pairs["anchor"].duplicated(keep="first")
    if repeated.any():
        logger.info("Dropped %d pairs whose anchor repeats an earlier one", int(repeated.sum()))
        pairs = pairs.loc[~repeated.to_numpy()].reset_index(drop=True)
    logger.info("%d pairs (%d distinct positives)%s", len(pairs), pairs["positive"].nunique(),
                " with negatives" if "negative" in pairs else "")
    return pairs


def split_pairs(pairs: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into train and test *before* any subsetting, so test anchors never reach training.

    ``split.by``: ``pair`` splits rows; ``positive`` keeps all anchors of one positive on
    the same side, so test positives are unseen in training too (stricter). ``subset``
    caps ``max_train_pairs`` and ``max_test_queries`` for bounded runs (seeded samples).
    """
    split, subset = params["split"], params.get("subset") or {}
    if split["by"] == "positive":
        splitter = GroupShuffleSplit(n_splits=1, test_size=split["test_size"], random_state=split["seed"])
        train_idx, test_idx = next(splitter.split(pairs, groups=pairs["positive"]))
        train, test = pairs.iloc[train_idx], pairs.iloc[test_idx]
    elif split["by"] == "pair":
        train, test = train_test_split(pairs, test_size=split["test_size"], random_state=split["seed"])
    else:
        raise ValueError(f"parameters_bge_finetune.yml: split.by must be 'pair' or 'positive', not {split['by']!r}")
    if subset.get("max_train_pairs") and len(train) > subset["max_train_pairs"]:
        train = train.sample(n=subset["max_train_pairs"], random_state=split["seed"])
    if subset.get("max_test_queries") and len(test) > subset["max_test_queries"]:
        test = test.sample(n=subset["max_test_queries"], random_state=split["seed"])
    logger.info("Split by %s: %d train pairs, %d test queries", split["by"], len(train), len(test))
    return check_split(pairs, train.reset_index(drop=True), test.reset_index(drop=True), params)


def build_retrieval_task(pairs: pd.DataFrame, test: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Queries (the test anchors), corpus (all distinct positives) and each query's own positive.

    With ``subset.max_corpus`` the corpus keeps every test positive plus a seeded sample of
    the others, so a bounded run still ranks each answer among distractors.
    """
    subset = params.get("subset") or {}
    positives = pd.unique(pairs["positive"])
    doc_id = {text: f"d{i}" for i, text in enumerate(positives)}
    needed = set(test["positive"])
    cap = subset.get("max_corpus")
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
    if dims[0] > embedding_dim:
        raise ValueError(
            f"parameters_bge_finetune.yml: matryoshka_dims {dims} exceed the model's {embedding_dim} dimensions; "
            "use 'auto' or smaller values."
        )
    return dims


def prepare_training_set(train: pd.DataFrame, base_model: Any, params: dict[str, Any]) -> pd.DataFrame:
    """The columns the loss sees, in order: ``anchor, positive`` or ``anchor, positive, negative``.

    A ``negative`` column in the data is used as given; with ``hard_negatives.mine`` one is
    mined from the *training* positives only (so no test text leaks in) with
    ``sentence_transformers.util.mine_hard_negatives`` and the base model.
    """
    hard = params["hard_negatives"]
    if "negative" in train.columns and hard.get("use_negative_column", True):
        logger.info("Training on %d given triplets", len(train))
        return train[["anchor", "positive", "negative"]].reset_index(drop=True)
    if not hard["mine"]:
        logger.info("Training on %d pairs (in-batch negatives only)", len(train))
        return train[["anchor", "positive"]].reset_index(drop=True)

    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    mined = mine_hard_negatives(
        Dataset.from_pandas(train[["anchor", "positive"]], preserve_index=False),
        as_sentence_transformer(base_model),
        anchor_column_name="anchor",
        positive_column_name="positive",
        range_min=hard["range_min"],
        range_max=hard["range_max"],
        relative_margin=hard["relative_margin"],
        num_negatives=1,
        sampling_strategy=hard["sampling_strategy"],
        batch_size=hard["batch_size"],
        output_format="triplet",
        verbose=params["show_progress"],
    ).to_pandas()
    logger.info("Mined hard negatives: %d triplets from %d pairs", len(mined), len(train))
    return mined[["anchor", "positive", "negative"]].reset_index(drop=True)


# ---------------------------------------------------------------- training


def fine_tune(base_model: Any, train_set: pd.DataFrame, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Train with ``MatryoshkaLoss(MultipleNegativesRankingLoss)`` and the no-duplicates sampler.

    Returns the trained model (``base_model`` itself, loaded if lazy and trained in place) and a
    training log: steps, epochs, run time, and the logged loss at every ``logging_steps``.
    """
    import transformers
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

    t = params["training"]
    transformers.set_seed(t["seed"])
    model = as_sentence_transformer(base_model)  # the catalog's model is lazy: load it here
    dims = matryoshka_dims(model.get_embedding_dimension(), params)
    # MNRL: every other positive in the batch is a negative; a duplicate text in a batch
    # would be a false negative, hence the no-duplicates sampler (as the original did).
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), matryoshka_dims=dims)
    dataset = Dataset.from_pandas(train_set, preserve_index=False)
    started = time.perf_counter()
    # The trainer wants an output_dir; nothing is saved there (save_strategy "no"): the
    # model leaves through the catalog.
    with tempfile.TemporaryDirectory(prefix="bge_finetune-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=t["epochs"],
            max_steps=t["max_steps"] if t.get("max_steps") else -1,
            per_device_train_batch_size=t["batch_size"],
            learning_rate=t["learning_rate"],
            warmup_steps=t["warmup"],
            lr_scheduler_type=t["lr_scheduler_type"],
            weight_decay=t["weight_decay"],
            seed=t["seed"],
            data_seed=t["seed"],
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            eval_strategy="no",
            save_strategy="no",
            logging_steps=t["logging_steps"],
            logging_first_step=True,
            report_to="none",
            use_cpu=True,
            disable_tqdm=not params["show_progress"],
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
        result = trainer.train()
    history = [
        {"step": int(e["step"]), "epoch": float(e["epoch"]), "loss": float(e["loss"])}
        for e in trainer.state.log_history
        if "loss" in e
    ]
    log = {
        "matryoshka_dims": dims,
        "n_train_rows": len(train_set),
        "columns": list(train_set.columns),
        "steps": int(result.global_step),
        "epochs": float(trainer.state.epoch or 0.0),
        "train_loss_mean": float(result.training_loss),
        "runtime_s": round(time.perf_counter() - started, 1),
        "loss_history": history,
    }
    logger.info("Trained %d steps in %.0f s; loss %.4f -> %.4f", log["steps"], log["runtime_s"],
                history[0]["loss"] if history else float("nan"), history[-1]["loss"] if history else float("nan"))
    return model, log


# ---------------------------------------------------------------- evaluation


def evaluate_retrieval(model: Any, task: dict[str, Any], params: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Cosine NDCG@10, MRR@10, Recall@1 and Recall@10 at every Matryoshka dimension.

    Uses sentence-transformers' ``InformationRetrievalEvaluator``, one per dimension
    (``truncate_dim``). The corpus is embedded once at full size and sliced per dimension:
    the same vectors the evaluator would compute with ``truncate_dim`` (truncation happens
    after the forward pass; cosine renormalises), at a fifth of the cost.
    """
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.util import cos_sim

    ev = params["evaluation"]
    model = as_sentence_transformer(model)
    dims = matryoshka_dims(model.get_embedding_dimension(), params)
    relevant = {q: set(docs) for q, docs in task["relevant"].items()}
    corpus_texts = list(task["corpus"].values())
    corpus_embeddings = model.encode_document(
        corpus_texts, batch_size=ev["batch_size"], convert_to_tensor=True, show_progress_bar=params["show_progress"]
    )
    results: dict[str, dict[str, float]] = {}
    for dim in dims:
        evaluator = InformationRetrievalEvaluator(
            queries=task["queries"],
            corpus=task["corpus"],
            relevant_docs=relevant,
            mrr_at_k=[10],
            ndcg_at_k=[10],
            accuracy_at_k=[1, 10],
            precision_recall_at_k=[1, 10],
            map_at_k=[10],
            batch_size=ev["batch_size"],
            truncate_dim=dim,
            name=f"dim_{dim}",
            write_csv=False,
            score_functions={"cosine": cos_sim},  # the original's metric, whatever the model's default
        )
        scores = evaluator.compute_all_metrics(model, corpus_embeddings=corpus_embeddings[:, :dim])
        results[str(dim)] = {
            name: float(scores["cosine"][f"{name.split('@')[0]}@k"][int(name.split("@")[1])]) for name in REPORTED
        }
        logger.info("dim %4d: NDCG@10 %.4f  MRR@10 %.4f  R@1 %.4f  R@10 %.4f", dim,
                    *(results[str(dim)][name] for name in REPORTED))
    return results


def report_metrics(
    before: dict[str, dict[str, float]],
    after: dict[str, dict[str, float]],
    training_log: dict[str, Any],
    task: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """One JSON: data sizes, training log, metrics before/after per dimension, NDCG@10 gains."""
    dims = list(before)
    return {
        "data": {
            "n_test_queries": len(task["queries"]),
            "n_corpus": len(task["corpus"]),
            "n_train_rows": training_log["n_train_rows"],
            "triplets": "negative" in training_log["columns"],
            "split_by": params["split"]["by"],
        },
        "dims": [int(d) for d in dims],
        "before": before,
        "after": after,
        "ndcg@10_gain": {d: after[d]["ndcg@10"] - before[d]["ndcg@10"] for d in dims},
        "improved_at_every_dim": all(after[d]["ndcg@10"] > before[d]["ndcg@10"] for d in dims),
        "training": training_log,
    }


def plot_ndcg(metrics: dict[str, Any]) -> plt.Figure:
    """NDCG@10 against embedding dimension, before vs after fine-tuning."""
    dims = metrics["dims"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for stage, style in (("before", "o--"), ("after", "o-")):
        values = [metrics[stage][str(d)]["ndcg@10"] for d in dims]
        ax.plot(dims, values, style, label=f"{stage} fine-tuning")
        for d, v in zip(dims, values):
            ax.annotate(f"{v:.3f}", (d, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.minorticks_off()
    ax.set_xlabel("embedding dimension (Matryoshka truncation)")
    ax.set_ylabel("NDCG@10 (cosine)")
    data = metrics["data"]
    ax.set_title(f"Retrieval on {data['n_test_queries']} test queries, corpus of {data['n_corpus']}", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
