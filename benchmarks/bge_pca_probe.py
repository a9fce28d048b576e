"""Probe for issue 12's XQuAD target: does an orthogonal PCA rotation help the truncated dimensions?

A rotation of the embedding space leaves every full-dimension cosine unchanged (so NDCG@10 at the
model's own dimension is identical) but orders the axes by variance, which is what truncating to a
Matryoshka dimension keeps. The rotation is fitted on the base model's embeddings of the
training-side texts only (the fit split of ``bge_finetune``: anchors and positives), never on test
texts, then NDCG@10 is compared with the plain base model on the test split, paired over the test
queries (95 % percentile bootstrap, 10,000 resamples).

Usage (reads ../shared/data through the environment's catalog; about 3 minutes on 2 cores):
    python benchmarks/bge_pca_probe.py xquad positive
    python benchmarks/bge_pca_probe.py xquad pair
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from qeu_kedro.pipelines.bge_finetune import nodes
from qeu_kedro.stats import paired_bootstrap


def ndcg_at_10(queries: np.ndarray, corpus: np.ndarray, relevant: np.ndarray, dim: int) -> np.ndarray:
    """Per-query NDCG@10 of one relevant document (``relevant[i]``: its row in ``corpus``) at the first ``dim`` axes."""
    q = queries[:, :dim] / np.linalg.norm(queries[:, :dim], axis=1, keepdims=True)
    c = corpus[:, :dim] / np.linalg.norm(corpus[:, :dim], axis=1, keepdims=True)
    scores = q @ c.T
    rank = (scores > scores[np.arange(len(relevant)), relevant][:, None]).sum(axis=1) + 1
    return np.where(rank <= 10, 1.0 / np.log2(rank + 1), 0.0)


def encode_task(model, task: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A retrieval task (``nodes.build_retrieval_task``) embedded: queries, corpus, each query's relevant row."""
    query_ids, corpus_ids = list(task["queries"]), list(task["corpus"])
    queries = model.encode([task["queries"][q] for q in query_ids], batch_size=64, normalize_embeddings=True)
    corpus = model.encode([task["corpus"][c] for c in corpus_ids], batch_size=64, normalize_embeddings=True)
    position = {c: i for i, c in enumerate(corpus_ids)}
    return queries, corpus, np.array([position[task["relevant"][q][0]] for q in query_ids])


def load_environment(env: str, split_by: str) -> tuple[dict, pd.DataFrame, object]:
    """The environment's ``bge_finetune`` parameters (with ``split.by``), its pairs and its base model."""
    bootstrap_project(Path.cwd())
    with KedroSession.create(env=env, runtime_params={"bge_finetune": {"split": {"by": split_by}}}) as session:
        catalog = session.load_context().catalog
        params = catalog.load("params:bge_finetune")
        pairs = nodes.make_pairs(catalog.load("bge_pairs"), params)
        model = nodes.as_sentence_transformer(catalog.load("base.embedding_model"))
    return params, pairs, model


def main(env: str, split_by: str) -> None:
    params, pairs, model = load_environment(env, split_by)
    train, test = nodes.split_pairs(pairs, params)
    fit, _ = nodes.split_validation(train, params)
    task = nodes.build_retrieval_task(pairs, test, params)

    fit_texts = list(pd.unique(pd.concat([fit["anchor"], fit["positive"]])))
    fitted = model.encode(fit_texts, batch_size=64, normalize_embeddings=True)
    queries, corpus, relevant = encode_task(model, task)

    print(f"## PCA rotation probe: env {env}, split by {split_by}")
    print(
        f"rotation fitted on {len(fit_texts)} training-side texts; {len(queries)} test queries, corpus of {len(corpus)}\n"
    )
    print("| rotation | dim | NDCG@10 base | NDCG@10 rotated | difference [95 % interval] | verdict |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, centred in (("PCA, uncentred", False), ("PCA, centred", True)):
        x = fitted - fitted.mean(axis=0) if centred else fitted
        rotation = np.linalg.svd(x, full_matrices=False)[2]  # orthonormal rows, largest variance first
        for dim in nodes.matryoshka_dims(queries.shape[1], params):
            before = ndcg_at_10(queries, corpus, relevant, dim)
            after = ndcg_at_10(queries @ rotation.T, corpus @ rotation.T, relevant, dim)
            c = paired_bootstrap(before, after, n_resamples=10_000, confidence=0.95, seed=0)
            print(
                f"| {name} | {dim} | {c.before:.4f} | {c.after:.4f} | "
                f"{c.difference:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}] | {c.verdict} |"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "xquad", sys.argv[2] if len(sys.argv) > 2 else "positive")
