"""Probe for issue 12's XQuAD target: a *learned* orthogonal rotation of the frozen base model.

``bge_pca_probe.py`` showed that an orthogonal PCA rotation (fitted on training-side texts) helps
the truncated dimensions only at 32 when the test paragraphs are unseen. Here the rotation is
trained instead: the encoder stays frozen, and an orthogonal matrix ``M = M0 @ expm(A - A.T)``
(``M0``: the identity or the PCA rotation) is fitted so that each *truncated* embedding ranks its
own positive first, with a Matryoshka sum of cross-entropies over the smaller dimensions (each
fit question against every distinct fit paragraph: no in-batch false negatives). Being orthogonal,
the rotation leaves every full-dimension cosine, hence NDCG@10 at 384, exactly unchanged.

The step count is chosen on the validation split carved from the training side (the pipeline's
``split_validation``; validation questions ranked among training-side paragraphs), by the mean
NDCG@10 over the dimensions below the full one; the test split is scored once, at the end, paired
with the base model over the test queries (95 % percentile bootstrap, 10,000 resamples).

Usage (reads ../shared/data through the environment's catalog; about a minute on 2 cores):
    python benchmarks/bge_rotation_probe.py xquad positive
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from qeu_kedro.pipelines.bge_finetune import nodes
from qeu_kedro.stats import paired_bootstrap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bge_pca_probe import encode_task, load_environment, ndcg_at_10  # noqa: E402  (its sibling script: the same scoring)

SCALE = 20.0  # the inverse temperature of sentence-transformers' MNRL
STEPS, EVAL_EVERY, LR = 400, 10, 1e-3  # defaults of --steps, --eval-every, --lr


def _fit_rotation(
    m0: np.ndarray, fit: tuple, validation: tuple, dims: list[int], steps: int, eval_every: int, lr: float
) -> tuple[np.ndarray, list[tuple[int, float, float]]]:
    """Adam on the skew-symmetric generator; returns the rotation best on validation and the curve.

    The loss and the validation score cover the ``dims`` below the full dimension."""
    fq, fc, frel = (torch.as_tensor(x) for x in fit)
    m0_t = torch.as_tensor(m0, dtype=torch.float32)
    a = torch.zeros_like(m0_t, requires_grad=True)
    opt = torch.optim.Adam([a], lr=lr)
    small = [d for d in dims if d < m0.shape[0]]

    def rotation() -> torch.Tensor:
        return m0_t @ torch.linalg.matrix_exp(a - a.T)

    def val_score(m: np.ndarray) -> float:
        q, c, rel = validation
        return float(np.mean([ndcg_at_10(q @ m, c @ m, rel, d).mean() for d in small]))

    best_m, best, curve = m0.copy(), val_score(m0), []
    curve.append((0, float("nan"), best))
    for step in tqdm(range(1, steps + 1), desc="rotation steps", leave=False):
        m = rotation()
        q, c = fq @ m, fc @ m
        loss = 0.0
        for d in small:
            s = torch.nn.functional.normalize(q[:, :d], dim=1) @ torch.nn.functional.normalize(c[:, :d], dim=1).T
            loss = loss + torch.nn.functional.cross_entropy(SCALE * s, frel)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % eval_every == 0:
            m_np = rotation().detach().numpy()
            score = val_score(m_np)
            curve.append((step, float(loss.detach()), score))
            if score > best:
                best, best_m = score, m_np
    return best_m, curve


def main(env: str, split_by: str, steps: int, eval_every: int, lr: float, fit_dims: list[int] | None = None) -> None:
    params, pairs, model = load_environment(env, split_by)
    start = time.time()
    train, test = nodes.split_pairs(pairs, params)
    fit_pairs, validation_pairs = nodes.split_validation(train, params)
    test_task = nodes.build_retrieval_task(pairs, test, params)
    validation_task = nodes.build_retrieval_task(train, validation_pairs, params)
    fit_task = nodes.build_retrieval_task(fit_pairs, fit_pairs, params)  # fit questions against fit paragraphs

    fit = encode_task(model, fit_task)
    validation = encode_task(model, validation_task)
    queries, corpus, relevant = encode_task(model, test_task)
    dims = nodes.matryoshka_dims(queries.shape[1], params)
    fit_dims = [d for d in (fit_dims or dims) if d < queries.shape[1]]  # the loss and the step choice
    fit_texts = np.concatenate([fit[0], fit[1]])  # the PCA is fitted on the same training-side texts
    pca = np.linalg.svd(fit_texts, full_matrices=False)[2].T  # columns: axes, largest variance first

    print(f"## Learned orthogonal rotation probe: env {env}, split by {split_by}")
    print(
        f"fit: {len(fit[0])} questions against {len(fit[1])} paragraphs; validation: {len(validation[0])} "
        f"questions against {len(validation[1])} training-side paragraphs; test: {len(queries)} queries, "
        f"corpus of {len(corpus)}; {steps} full-batch Adam steps (lr {lr}), evaluated every {eval_every}; "
        f"loss and validation on the dimensions {fit_dims}\n"
    )
    rows = []
    for name, m0 in (
        ("learned, from the identity", np.eye(queries.shape[1], dtype=np.float32)),
        ("learned, from PCA", pca.astype(np.float32)),
        ("PCA alone", None),
    ):
        if m0 is None:
            m, chosen = pca, "-"
        else:
            m, curve = _fit_rotation(m0, fit, validation, fit_dims, steps, eval_every, lr)
            best = max(curve, key=lambda r: r[2])
            chosen = f"step {best[0]} (validation {best[2]:.4f}, start {curve[0][2]:.4f})"
        for dim in dims:
            before = ndcg_at_10(queries, corpus, relevant, dim)
            after = ndcg_at_10(queries @ m, corpus @ m, relevant, dim)
            c = paired_bootstrap(before, after, n_resamples=10_000, confidence=0.95, seed=0)
            rows.append(
                f"| {name} | {dim} | {c.before:.4f} | {c.after:.4f} | "
                f"{c.difference:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}] | {c.verdict} | {chosen} |"
            )
    print(
        "| rotation | dim | NDCG@10 base | NDCG@10 rotated | difference [95 % interval] | verdict | chosen on validation |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
    print("\n".join(rows))
    print(f"\n{time.time() - start:.0f} s after loading the model")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("env", nargs="?", default="xquad")
    parser.add_argument("split_by", nargs="?", default="positive", choices=["positive", "pair"])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument(
        "--fit-dims",
        type=int,
        nargs="+",
        default=None,
        help="dimensions the loss and the step choice cover (default: all below the full one)",
    )
    a = parser.parse_args()
    main(a.env, a.split_by, a.steps, a.eval_every, a.lr, a.fit_dims)
