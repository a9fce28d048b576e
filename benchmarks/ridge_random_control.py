"""What do the movie embeddings contribute to the ridge? Real vectors against random ones, for both fold units.

Loads the raw ratings, users and one namespace's movie embeddings through the Kedro catalog (run the
movie pipelines first), builds the ridge's design as the pipeline does, and replaces the movie features
by seeded Gaussian noise of the same spread (each dimension's own mean and standard deviation; the user
features stay). It scores the real and the random design with the pipeline's own repeated CV
(``cross_validate_ridge``, the exact solver, ``ridge_analysis.cv``'s folds and the configured alpha) on
the same folds, once with folds of single ratings (``group_by: null``, the project's CV before
2026-12-07) and once with folds of whole movies (``group_by: movie_id``), and reports real − random
with the Nadeau-Bengio corrected 95 % interval and a verdict: **better** means the real embedding
predicts ratings better than noise does.

With ``--draws N`` the random arm is the mean, fold by fold, of N noise draws (seeds ``seed`` ...
``seed + N - 1``), so one lucky draw does not decide it. A third arm drops the movie features (the
user features alone): real − none says whether the embedding adds anything to them at all, where
real − random only says it beats vectors that mean nothing. ``--alpha`` overrides the configured
alpha (a number, or ``auto``: the pipeline's nested search, each CV fold of each arm choosing its own
alpha on that fold's training ratings, with folds of the same unit; the JSON gives each arm's alphas).

    python benchmarks/ridge_random_control.py [--env movielens] [--namespace base] [--draws 3] [--seed 0]
        [--alpha 5|auto] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.pipelines.ridge_analysis.nodes import (
    HELD_OUT,
    RatingDesign,
    cross_validate_ridge,
    select_alpha,
    split_ratings,
)
from qeu_kedro.stats import corrected_cv_interval

UNITS = (None, "movie_id")  # folds of single ratings, folds of whole movies


def noise_like(features: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Gaussian noise with each column's mean and standard deviation, seeded; same index and columns."""
    values = features.to_numpy(dtype=np.float64)
    rng = np.random.default_rng(seed)
    noise = rng.normal(values.mean(axis=0), values.std(axis=0), size=values.shape)
    return pd.DataFrame(noise, index=features.index, columns=features.columns)


def cv_scores(design: RatingDesign, params: dict[str, Any]) -> pd.DataFrame:
    """The pipeline's CV of ``design`` with the alpha the pipeline would use (``auto``: nested, each fold's own);
    the table's ``alpha`` column records the alpha each fold was scored with."""
    train, _ = split_ratings(design, params)
    return cross_validate_ridge(design, select_alpha(train, params), params)


def fold_alphas(scores: pd.DataFrame) -> dict[str, int] | float:
    """The alphas a CV table's folds used: one number when every fold used the same, else alpha -> folds."""
    counts = scores["alpha"].value_counts().sort_index()
    if len(counts) == 1:
        return float(counts.index[0])
    return {f"{a:g}": int(n) for a, n in counts.items()}


def control(design: RatingDesign, params: dict[str, Any], unit: str | None, draws: int, seed: int) -> dict[str, Any]:
    """Real − random and real − none CV test R² on the same folds of ``unit``, with corrected intervals and verdicts."""
    params = {**params, "group_by": unit}
    started = time.perf_counter()
    real = cv_scores(design, params)
    random = [
        cv_scores(replace(design, movie_features=noise_like(design.movie_features, seed + d)), params)
        for d in range(draws)
    ]
    none = cv_scores(replace(design, movie_features=design.movie_features.iloc[:, :0]), params)
    for scores in (*random, none):
        if list(scores["test_hash"]) != list(real["test_hash"]):
            raise AssertionError("a control was scored on other folds than the real design")
    random_r2 = np.mean([s["r2_test"].to_numpy() for s in random], axis=0)
    test_fraction = float((real["n_test"] / (real["n_test"] + real["n_train"])).mean())
    held_out = HELD_OUT[unit]
    versus_random = corrected_cv_interval(random_r2, real["r2_test"].to_numpy(), test_fraction)
    versus_none = corrected_cv_interval(none["r2_test"].to_numpy(), real["r2_test"].to_numpy(), test_fraction)
    return {
        "folds_hold_out": held_out,
        "group_by": unit,
        "fold_scores": len(real),
        "test_movies_unseen_in_training": f"{int(real['n_test_movies_unseen'].sum())} of {int(real['n_test_movies'].sum())}",
        "alpha": {
            "real": fold_alphas(real),
            "random": [fold_alphas(s) for s in random],
            "none": fold_alphas(none),
        },
        "cv_r2_real": versus_random.after,
        "cv_r2_random": versus_random.before,
        "random_draws": [round(float(s["r2_test"].mean()), 5) for s in random],
        "cv_r2_without_movie_features": versus_none.before,
        "real_minus_random": versus_random.difference,
        "ci": [versus_random.ci_low, versus_random.ci_high],
        "verdict": versus_random.verdict,
        "real_minus_none": versus_none.difference,
        "ci_none": [versus_none.ci_low, versus_none.ci_high],
        "verdict_none": versus_none.verdict,
        "sentences": [
            versus_random.describe(
                f"Folds of {held_out}: the real embedding's CV test R² against random vectors' ({draws} draws)"
            ),
            versus_none.describe(f"Folds of {held_out}: the real embedding's CV test R² against no movie features"),
        ],
        "seconds": round(time.perf_counter() - started, 1),
    }


def load_design(env: str | None, namespace: str) -> tuple[RatingDesign, dict[str, Any]]:
    """The ridge's design of ``namespace`` (as the pipeline's nodes build it) and ``ridge_analysis``'s parameters."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from qeu_kedro.pipelines.ridge_analysis.layouts import decode_users
    from qeu_kedro.pipelines.ridge_analysis.nodes import build_model_input, check_ratings, check_users

    root = Path(__file__).resolve().parents[1]
    bootstrap_project(root)
    with KedroSession.create(project_path=root, env=env) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params["ridge_analysis"]
        design, _ = build_model_input(
            check_ratings(catalog.load("ratings"), params),
            check_users(decode_users(catalog.load("users"), params), params),  # as the pipeline: codes first
            catalog.load(f"{namespace}.movie_embeddings"),
            params,
        )
    return design, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="Kedro environment (default: the shipped sample)")
    parser.add_argument("--namespace", default="base", help="whose movie embeddings: base or finetuned")
    parser.add_argument("--draws", type=int, default=3, help="noise draws averaged fold by fold")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first noise draw")
    parser.add_argument("--json", type=Path, help="also write the summary to this file (Kedro logs to stdout)")
    parser.add_argument("--alpha", default=None, help="a number or auto (default: ridge_analysis.alpha)")
    args = parser.parse_args()
    started = time.perf_counter()
    design, params = load_design(args.env, args.namespace)
    if args.alpha is not None:
        params = {**params, "alpha": args.alpha if args.alpha == "auto" else float(args.alpha)}
    results = [control(design, params, unit, args.draws, args.seed) for unit in UNITS]
    summary = {
        "env": args.env or "base (the shipped sample)",
        "namespace": args.namespace,
        "n_ratings": len(design),
        "n_movies": len(design.movie_features),
        "n_movie_features": design.movie_features.shape[1],
        "alpha": params["alpha"],
        "cv": params["cv"],
        "controls": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    for result in results:
        print("\n".join(result["sentences"]))


if __name__ == "__main__":
    main()
