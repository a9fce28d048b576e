"""Issue 12, TMDB: is a uniform "model soup" of several fine-tuned runs better than its members?

A model soup (Wortsman et al. 2022, "Model soups: averaging weights of multiple fine-tuned models
improves accuracy without increasing inference time") averages, parameter by parameter, the weights
of models fine-tuned from the same base with different seeds. The result is one model of the same
size as each member. This script loads the trained models that `bge_finetune` saved (copies of
``data/06_models/<env>/bge_finetuned`` from runs that differ only in the training seed), averages
every floating-point tensor (``qeu_kedro.weights.average_state_dicts``, what ``soup.seeds`` does inside the
pipeline), and scores the soup on the environment's test split exactly as the
pipeline's ``evaluate_after`` node does (``nodes.evaluate_retrieval``: NDCG@10, MRR@10, Recall@1/10
per test query at every Matryoshka dimension). It writes the per-query scores as a parquet file that
``benchmarks/bge_recipes_paired.py`` compares with the base model's or a member's scores.

Only folders this project wrote are read (safetensors weights; nothing is unpickled).

Usage (about 2 min on 2 cores for TMDB's 960 queries and 4,796 overviews):
    python benchmarks/bge_soup.py movielens RUN1/model RUN2/model [...] --out soup_dir [--save-model soup_dir/model]
    python benchmarks/bge_recipes_paired.py RUN1/scores_before.parquet soup_dir/scores_after.parquet \
        --labels "base model" "soup"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from qeu_kedro.pipelines.bge_finetune import nodes
from qeu_kedro.weights import average_state_dicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("env", help="the configuration environment whose test split scores the soup (movielens)")
    parser.add_argument("models", nargs="+", type=Path, help="folders of trained sentence-transformers models")
    parser.add_argument("--out", type=Path, required=True, help="folder for scores_after.parquet and soup.json")
    parser.add_argument("--save-model", type=Path, help="also save the soup as a sentence-transformers folder here")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    members = [SentenceTransformer(str(path), device="cpu") for path in args.models]
    soup = members[0]
    soup.load_state_dict(average_state_dicts([m.state_dict() for m in members]))

    bootstrap_project(Path.cwd())
    with KedroSession.create(env=args.env) as session:
        catalog = session.load_context().catalog
        params = catalog.load("params:bge_finetune")
        pairs = nodes.make_pairs(catalog.load("bge_pairs"), params)
    _, test = nodes.split_pairs(pairs, params)
    task = nodes.build_retrieval_task(pairs, test, params)
    scores = nodes.evaluate_retrieval(soup, task, params)

    args.out.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(args.out / "scores_after.parquet", index=False)
    summary = {"members": [str(p) for p in args.models], "mean_scores": nodes.mean_scores(scores)}
    (args.out / "soup.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.save_model:
        soup.save(str(args.save_model))
    # printed, not logged: kedro's logging configuration (set up by the session) hides this script's logger
    print(f"soup of {len(members)} models -> {args.out / 'scores_after.parquet'}")
    for dim, means in summary["mean_scores"].items():
        print(f"dim {dim}: NDCG@10 {means['ndcg@10']:.4f}")
    if args.save_model:
        print(f"saved the soup to {args.save_model}")


if __name__ == "__main__":
    main()
