"""The ``ridge_analysis`` nodes for either kind of ratings: a pandas table or a Dask DataFrame.

Each node runs the in-memory function of :mod:`.nodes` on a pandas table and its counterpart
of :mod:`.partitioned` on partitioned ratings, so one pipeline serves both: the ``dask``
environment's catalog loads ``ratings`` as a Dask DataFrame and the same nodes follow it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from . import nodes, partitioned
from .nodes import check_users, collect_results, plot_coefficients, top_coefficients  # the same on both paths
from .partitioned import is_partitioned

__all__ = [
    "build_model_input",
    "check_ratings",
    "check_users",
    "collect_results",
    "cross_validate_ridge",
    "evaluate_ridge",
    "fit_ridge",
    "plot_coefficients",
    "plot_top_features",
    "select_alpha",
    "split_ratings",
    "top_coefficients",
]


def check_ratings(ratings: Any, params: dict[str, Any]) -> Any:
    """:func:`.nodes.check_ratings`; on partitioned ratings, :func:`.partitioned.check_partitioned_ratings`
    (each partition's cells, and each (user, movie) pair once across the partitions)."""
    return (
        partitioned.check_partitioned_ratings(ratings, params["rating_step"])
        if is_partitioned(ratings)
        else nodes.check_ratings(ratings, params)
    )


def check_rated_users(ratings: Any, users: pd.DataFrame) -> pd.DataFrame:
    """:func:`.nodes.check_rated_users`, or :func:`.partitioned.check_partitioned_users` on a Dask DataFrame."""
    if is_partitioned(ratings):
        return partitioned.check_partitioned_users(ratings, users)
    return nodes.check_rated_users(ratings, users)


def build_model_input(
    ratings: Any, users: pd.DataFrame, movie_embeddings: pd.DataFrame, params: dict[str, Any]
) -> tuple[Any, dict[str, int]]:
    """:func:`.nodes.build_model_input`, or :func:`.partitioned.build_partitioned_input` on a Dask DataFrame.

    Both check the join loss (``max_join_loss``).
    """
    if is_partitioned(ratings):
        return partitioned.build_partitioned_input(ratings, users, movie_embeddings, params)
    return nodes.build_model_input(ratings, users, movie_embeddings, params)


def split_ratings(design: Any, params: dict[str, Any]) -> tuple[Any, Any]:
    """:func:`.nodes.split_ratings` (the same ratings on both paths)."""
    if is_partitioned(design):
        return partitioned.split_partitioned(design, params)
    return nodes.split_ratings(design, params)


def select_alpha(train: Any, params: dict[str, Any]) -> dict[str, Any]:
    """:func:`.nodes.select_alpha`."""
    if is_partitioned(train):
        return partitioned.select_alpha_partitioned(train, params)
    return nodes.select_alpha(train, params)


def fit_ridge(train: Any, params: dict[str, Any], alpha_selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`.nodes.fit_ridge`, or from partition sums reduced over the workers."""
    if is_partitioned(train):
        return partitioned.fit_partitioned(train, params, alpha_selection)
    return nodes.fit_ridge(train, params, alpha_selection)


def cross_validate_ridge(design: Any, alpha_selection: dict[str, Any], params: dict[str, Any]) -> pd.DataFrame:
    """:func:`.nodes.cross_validate_ridge` (the same folds on both paths)."""
    if is_partitioned(design):
        return partitioned.cross_validate_partitioned(design, alpha_selection, params)
    return nodes.cross_validate_ridge(design, alpha_selection, params)


def evaluate_ridge(
    model: dict[str, Any],
    train: Any,
    test: Any,
    input_stats: dict[str, int],
    cv_scores: pd.DataFrame | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`.nodes.evaluate_ridge`."""
    if is_partitioned(train):
        return partitioned.evaluate_partitioned(model, train, test, input_stats, cv_scores, params)
    return nodes.evaluate_ridge(model, train, test, input_stats, cv_scores, params)


def plot_top_features(
    model_input: Any, top: pd.DataFrame, params: dict[str, Any], labels: dict[str, Any] | None = None
) -> Any:
    """:func:`.nodes.plot_top_features`; on partitions, of at most ``scatter_max_ratings`` ratings."""
    if is_partitioned(model_input):
        return partitioned.plot_partitioned(model_input, top, params, labels)
    return nodes.plot_top_features(model_input, top, params, labels)
