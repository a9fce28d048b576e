"""A namespace's ridge report: its fit, its top coefficients and its two figures in one markdown page."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pandas as pd

# Counts of ridge_metrics.json the report names, in this order, when present.
COUNTS = (
    ("n_ratings_used", "ratings used"),
    ("n_ratings_dropped_no_embedding", "ratings dropped (movie without an embedding)"),
    ("n_users", "users"),
    ("n_movies", "movies"),
    ("n_features", "features"),
    ("n_embedding_features", "of them from the embeddings"),
)
# Rows of the top-coefficients table in the report (the CSV keeps top_k).
SHOWN = 10
# What a test split or CV fold holds out (ridge_analysis.group_by): (its name, why it matters).
HELD_OUT_WORDS = {
    "movies": (
        "whole movies",
        "every test rating is of a movie the model has not seen (`ridge_analysis.group_by: movie_id`), "
        "so the score says what the movie's embedding predicts of its ratings.",
    ),
    "ratings": (
        "single ratings",
        "the test ratings' movies are rated in training too (`ridge_analysis.group_by: null`), where the ridge "
        "can fit each movie's own offset from its many embedding dimensions whatever they mean: random vectors "
        "score about as well, so this is not a measure of the embedding.",
    ),
}


def alpha_lines(metrics: dict[str, Any], alpha_selection: dict[str, Any] | None) -> list[str]:
    """How alpha was chosen: fixed, or ``alpha: auto`` with its search curve (mean and sd of the CV R² per grid
    point, the chosen one in bold) from ``alpha_selection.json``."""
    if not alpha_selection or alpha_selection.get("mode") != "auto":
        if metrics.get("alpha_mode") != "auto":
            return ["alpha is fixed (`ridge_analysis.alpha`).", ""] if "alpha_mode" in metrics else []
        return ["alpha was chosen by `alpha: auto` on the training split.", ""]
    chosen = alpha_selection["alpha"]
    curve = pd.DataFrame(
        {
            "alpha": [f"**{a:g}**" if a == chosen else f"{a:g}" for a in alpha_selection["grid"]],
            "mean CV R²": [f"{v:.4f}" for v in alpha_selection["cv_r2_mean"]],
            "sd": [f"{v:.4f}" for v in alpha_selection["cv_r2_std"]],
        }
    )
    unit = HELD_OUT_WORDS[alpha_selection.get("held_out", "ratings")][0]
    return [
        f"alpha = {chosen:g} was chosen by `alpha: auto`: the best mean {alpha_selection['folds']}-fold CV R² on "
        f"the training split (folds of {unit}) over `alpha_search.grid`:",
        "",
        curve.to_markdown(index=False, disable_numparse=True),
        "",
    ]


def ridge_report(
    metrics: dict[str, Any],
    top: pd.DataFrame,
    scatter: str,
    bar: str,
    labels: dict[str, Any] | None = None,
    alpha_selection: dict[str, Any] | None = None,
) -> str:
    """Markdown: what was fitted on which data, how alpha was chosen, train / test / CV R², the top coefficients
    and both figures.

    ``scatter`` and ``bar`` are the paths the figures were saved to (:class:`qeu_kedro.datasets.FigureDataset`):
    they are linked by file name, the catalog saving them beside the report. ``alpha_selection`` (the
    ``select_alpha`` node's output) gives the search curve of ``alpha: auto``.
    """
    labels = labels or {}
    namespace = labels.get("namespace", "ridge_analysis")
    lines = [f"# ridge_analysis / {namespace}: ratings from movie embeddings and user features", ""]
    if labels:
        lines += [f"Embedding model: **{labels['model']}**. Data: {labels['data']}.", ""]
    counts = [f"{metrics[key]:,} {name}" for key, name in COUNTS if key in metrics]
    if counts:
        lines += ["Counts: " + "; ".join(counts) + ".", ""]
    fit = pd.DataFrame(
        {
            "split": ["train", "test"],
            "R²": [f"{metrics['r2_train']:.4f}", f"{metrics['r2_test']:.4f}"],
            "RMSE (stars)": [f"{metrics['rmse_train']:.4f}", f"{metrics['rmse_test']:.4f}"],
            "n ratings": [f"{metrics['n_train']:,}", f"{metrics['n_test']:,}"],
        }
    )
    lines += [
        f"## Fit (Ridge, alpha = {metrics['alpha']:g})",
        "",
        fit.to_markdown(index=False, disable_numparse=True),
        "",
        *alpha_lines(metrics, alpha_selection),
    ]
    if "held_out" in metrics:
        unit, why = HELD_OUT_WORDS[metrics["held_out"]]
        lines += [f"The test split holds out {unit}: {why}", ""]
    if "cv_r2_test_mean" in metrics:
        unit, why = HELD_OUT_WORDS[metrics.get("cv_held_out", "ratings")]  # older metrics: folds of ratings
        lines += [
            f"Repeated k-fold cross-validation ({metrics['cv_repeats']} x {metrics['cv_folds']}-fold, "
            f"{metrics['cv_n_folds']} fold scores), folds of {unit}: test R² "
            f"{metrics['cv_r2_test_mean']:.4f} on average, standard deviation {metrics['cv_r2_test_sd']:.4f}."
            + ("" if metrics.get("held_out") == metrics.get("cv_held_out", "ratings") else f" Each fold: {why}"),
            "",
        ]
        if metrics.get("alpha_mode") == "auto" and "cv_alpha_median" in metrics:
            lines += [
                "With `alpha: auto` the cross-validation is nested: each fold chose its own alpha from the grid by "
                "the same search on its training ratings only, and scored its test fold with it (alpha "
                f"{metrics['cv_alpha_min']:g} to {metrics['cv_alpha_max']:g}, median {metrics['cv_alpha_median']:g}; "
                "each fold's in `ridge_cv_scores.csv`).",
                "",
            ]
    shown = top.head(SHOWN)[["rank", "feature", "coefficient"]]
    lines += [
        f"## Top {len(shown)} coefficients by size (of {len(top)} in `top_coefficients.csv`)",
        "",
        "Rating stars per unit of the feature, the others held fixed.",
        "",
        shown.to_markdown(index=False, floatfmt="+.4f"),
        "",
        f"![top coefficients of {namespace}]({PurePosixPath(str(bar)).name})",
        "",
        "## The top features against the rating",
        "",
        f"![top features of {namespace} against the rating]({PurePosixPath(str(scatter)).name})",
        "",
    ]
    return "\n".join(lines)
