"""``movie_comparison``: the ``base`` and ``finetuned`` ridge results side by side.

A modular pipeline in the namespace ``movie_comparison``: its outputs are ``movie_comparison.summary``,
``movie_comparison.top_coefficients`` and ``movie_comparison.figure``; its inputs keep their names:
``base.ridge_results`` and ``finetuned.ridge_results`` (each namespace's metrics, top coefficients and CV
folds in one file, so that kedro-viz draws one arrow per namespace) and ``bge_finetune.metrics``.
"""

from kedro.pipeline import Node, Pipeline

from qeu_kedro.namespaces import MOVIE_NAMESPACES, dotted_names_allowed, modular

from .nodes import compare_ridge, plot_comparison, side_by_side, unpack_results

INPUTS = {f"{ns}.ridge_results" for ns in MOVIE_NAMESPACES} | {"bge_finetune.metrics"}


def create_template() -> Pipeline:
    """The pipeline before namespacing: its own outputs without the ``movie_comparison.`` prefix."""
    unpack = [
        Node(unpack_results, f"{ns}.ridge_results", [f"{ns}_ridge", f"{ns}_top", f"{ns}_folds"], name=f"unpack_{ns}")
        for ns in MOVIE_NAMESPACES
    ]
    return Pipeline(
        [
            *unpack,
            Node(
                compare_ridge,
                [
                    "base_ridge",
                    "finetuned_ridge",
                    "base_top",
                    "finetuned_top",
                    "base_folds",
                    "finetuned_folds",
                    "bge_finetune.metrics",
                    "params:movie_comparison",
                ],
                "summary",
                name="compare_ridge",
            ),
            Node(
                side_by_side,
                ["base_top", "finetuned_top"],
                "top_coefficients",
                name="side_by_side_top_coefficients",
            ),
            Node(
                plot_comparison,
                ["summary", "base_top", "finetuned_top"],
                "figure",
                name="plot_ridge_comparison",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    with dotted_names_allowed():
        return modular(create_template(), "movie_comparison", inputs=INPUTS)
