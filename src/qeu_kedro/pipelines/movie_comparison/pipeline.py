"""``movie_comparison``: the ``base`` and ``finetuned`` ridge results side by side."""

import warnings

from kedro.pipeline import Node, Pipeline

from .nodes import compare_ridge, plot_comparison, side_by_side


def create_pipeline(**kwargs) -> Pipeline:
    # The nodes read (and write) entries of the movie namespaces by their full names on purpose;
    # Kedro warns about any '.' in a name given outside a namespace.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'", category=UserWarning)
        return _pipeline()


def _pipeline() -> Pipeline:
    return Pipeline(
        [
            Node(
                compare_ridge,
                [
                    "base.ridge_metrics",
                    "finetuned.ridge_metrics",
                    "base.top_coefficients",
                    "finetuned.top_coefficients",
                    "base.ridge_cv_scores",
                    "finetuned.ridge_cv_scores",
                    "bge_finetune_metrics",
                    "params:movie_comparison",
                ],
                "comparison_summary",
                name="compare_ridge",
            ),
            Node(
                side_by_side,
                ["base.top_coefficients", "finetuned.top_coefficients"],
                "comparison_top_coefficients",
                name="side_by_side_top_coefficients",
            ),
            Node(
                plot_comparison,
                ["comparison_summary", "base.top_coefficients", "finetuned.top_coefficients"],
                "comparison_figure",
                name="plot_ridge_comparison",
            ),
        ]
    )
