"""``movie_comparison``: the ``base`` and ``finetuned`` ridge results side by side.

A modular pipeline in the namespace ``movie_comparison``: its outputs are ``movie_comparison.summary``,
``movie_comparison.top_coefficients`` and ``movie_comparison.figure``; its inputs keep their names
(the two namespaces' ridge results and ``bge_finetune.metrics``).
"""

from kedro.pipeline import Node, Pipeline

from qeu_kedro.namespaces import dotted_names_allowed, modular

from .nodes import compare_ridge, plot_comparison, side_by_side

INPUTS = {
    f"{ns}.{name}" for ns in ("base", "finetuned") for name in ("ridge_metrics", "top_coefficients", "ridge_cv_scores")
} | {"bge_finetune.metrics"}


def create_template() -> Pipeline:
    """The pipeline before namespacing: its own outputs without the ``movie_comparison.`` prefix."""
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
                    "bge_finetune.metrics",
                    "params:movie_comparison",
                ],
                "summary",
                name="compare_ridge",
            ),
            Node(
                side_by_side,
                ["base.top_coefficients", "finetuned.top_coefficients"],
                "top_coefficients",
                name="side_by_side_top_coefficients",
            ),
            Node(
                plot_comparison,
                ["summary", "base.top_coefficients", "finetuned.top_coefficients"],
                "figure",
                name="plot_ridge_comparison",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    with dotted_names_allowed():
        return modular(create_template(), "movie_comparison", inputs=INPUTS)
