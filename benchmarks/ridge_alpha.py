"""Is the alpha that `alpha: auto` picks really better than the original's alpha = 5?

Loads the raw ratings, users and the `base` namespace's movie embeddings through the Kedro catalog
(run the movie pipelines first), and scores alpha = 5 and `ridge_analysis.alpha: auto` on the same 5 x 5
repeated folds, as the pipeline does: auto's CV is nested (each fold chooses its own alpha by
`alpha_search` CV on that fold's training ratings; since 2026-12-07, before which the alpha chosen on the
training split scored every fold). Reports the paired difference of test R² with the corrected 95 %
interval, the alpha `select_alpha` picks on the training split (the single-split model's) and the alphas
the folds chose.

    python benchmarks/ridge_alpha.py [--env movielens]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from qeu_kedro.pipelines.ridge_analysis.layouts import decode_users
from qeu_kedro.pipelines.ridge_analysis.nodes import (
    build_model_input,
    check_ratings,
    check_users,
    cross_validate_ridge,
    select_alpha,
    split_ratings,
)
from qeu_kedro.stats import corrected_cv_interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    bootstrap_project(root)
    with KedroSession.create(project_path=root, env=args.env) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params["ridge_analysis"]
        design, _ = build_model_input(
            check_ratings(catalog.load("ratings"), params),
            check_users(decode_users(catalog.load("users"), params), params),  # as the pipeline: codes first
            catalog.load("base.movie_embeddings"),
            params,
        )
    started = time.perf_counter()
    train, _ = split_ratings(design, params)
    chosen = select_alpha(train, {**params, "alpha": "auto"})
    fixed = cross_validate_ridge(design, {"alpha": 5.0}, params)
    auto = cross_validate_ridge(design, chosen, params)
    result = corrected_cv_interval(fixed["r2_test"], auto["r2_test"], test_fraction=1 / params["cv"]["folds"])
    print(
        json.dumps(
            {
                "env": args.env or "base (sample)",
                "n_ratings": len(design),
                "chosen_alpha": chosen["alpha"],  # on the training split: the single-split model's
                "fold_alphas": {f"{a:g}": int(n) for a, n in auto["alpha"].value_counts().sort_index().items()},
                "grid_cv_r2": dict(zip(chosen["grid"], [round(v, 5) for v in chosen["cv_r2_mean"]], strict=True)),
                "cv_r2_alpha_5": result.before,
                "cv_r2_chosen": result.after,
                "difference": result.difference,
                "ci": [result.ci_low, result.ci_high],
                "verdict": result.verdict,
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )
    print(result.describe("Test R² (alpha: auto, chosen in each fold by nested CV, vs alpha 5)"))


if __name__ == "__main__":
    main()
