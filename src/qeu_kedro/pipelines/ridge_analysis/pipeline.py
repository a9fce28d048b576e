"""``ridge_analysis``: one template, instantiated once per namespace (``base``, ``finetuned``)."""

from kedro.pipeline import Node, Pipeline

from qeu_kedro.namespaces import MOVIE_NAMESPACES
from qeu_kedro.preflight import INPUT_CHECK

from .dispatch import (
    build_model_input,
    check_rated_users,
    check_ratings,
    check_users,
    collect_results,
    cross_validate_ridge,
    evaluate_ridge,
    fit_ridge,
    plot_coefficients,
    plot_top_features,
    select_alpha,
    split_ratings,
    top_coefficients,
)

# Nodes that follow the ratings: pandas (in memory) or Dask (partitioned, the dask environment).
from .layouts import decode_users
from .report import ridge_report

P = "params:ridge_analysis"
LABELS = "params:labels"


def create_template() -> Pipeline:
    """The pipeline before namespacing; raw ``ratings`` / ``users`` and parameters are shared."""
    return Pipeline(
        [
            Node(check_ratings, ["ratings", P], "ratings_checked", name="check_ratings", tags=INPUT_CHECK),
            Node(decode_users, ["users", P], "users_decoded", name="decode_users", tags=INPUT_CHECK),
            Node(check_users, ["users_decoded", P], "users_checked", name="check_users", tags=INPUT_CHECK),
            # before build_model_input, which waits for the embeddings: a bad input stops the run first
            Node(
                check_rated_users,
                ["ratings_checked", "users_checked"],
                "rated_users",
                name="check_rated_users",
                tags=INPUT_CHECK,
            ),
            Node(
                build_model_input,
                ["ratings_checked", "rated_users", "movie_embeddings", P],
                ["ridge_input", "ridge_input_stats"],
                name="build_model_input",
            ),
            Node(split_ratings, ["ridge_input", P], ["ridge_train", "ridge_test"], name="split_ratings"),
            Node(select_alpha, ["ridge_train", P], "alpha_selection", name="select_alpha"),
            Node(fit_ridge, ["ridge_train", P, "alpha_selection"], "ridge_model", name="fit_ridge"),
            Node(
                cross_validate_ridge,
                ["ridge_input", "alpha_selection", P],
                "ridge_cv_scores",
                name="cross_validate_ridge",
            ),
            Node(
                evaluate_ridge,
                ["ridge_model", "ridge_train", "ridge_test", "ridge_input_stats", "ridge_cv_scores", P],
                "ridge_metrics",
                name="evaluate_ridge",
            ),
            Node(top_coefficients, ["ridge_model", P], "top_coefficients", name="top_coefficients"),
            # the namespace's one handoff to movie_comparison (its metrics, settings, top features and CV folds)
            Node(
                collect_results,
                ["ridge_metrics", "top_coefficients", "ridge_cv_scores", P],
                "ridge_results",
                name="collect_ridge_results",
            ),
            # params:labels is namespaced: params:base.labels, params:finetuned.labels (model and data names)
            Node(
                plot_top_features,
                ["ridge_input", "top_coefficients", P, LABELS],
                "top_features_scatter",
                name="plot_top_features",
            ),
            Node(
                plot_coefficients,
                ["top_coefficients", "ridge_metrics", LABELS],
                "top_coefficients_bar",
                name="plot_coefficients",
            ),
            Node(
                ridge_report,
                [
                    "ridge_metrics",
                    "top_coefficients",
                    "top_features_scatter",
                    "top_coefficients_bar",
                    LABELS,
                    "alpha_selection",
                ],
                "ridge_report",
                name="write_ridge_report",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    template = create_template()
    return sum(
        (
            Pipeline(template, namespace=ns, inputs={"ratings", "users"}, parameters={P}, tags="ridge_analysis")
            for ns in MOVIE_NAMESPACES
        ),
        Pipeline([]),
    )
