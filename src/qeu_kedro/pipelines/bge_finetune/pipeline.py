"""``bge_finetune``: pairs -> split -> fine-tune -> retrieval metrics before and after.

The base model is ``base.embedding_model``; the trained one is written to
``finetuned.embedding_model``, the very entry the ``finetuned`` namespace of
``movie_embedding`` reads, so ``kedro run`` trains first and then embeds with it.
"""

import warnings

from kedro.pipeline import Node, Pipeline

from .nodes import (
    build_retrieval_task,
    evaluate_retrieval,
    fine_tune,
    make_pairs,
    plot_ndcg,
    prepare_training_set,
    report_metrics,
    split_pairs,
    split_validation,
)

P = "params:bge_finetune"
BASE_MODEL = "base.embedding_model"
TRAINED_MODEL = "finetuned.embedding_model"


def create_pipeline(**kwargs) -> Pipeline:
    # The nodes read (and write) entries of the movie namespaces by their full names on purpose;
    # Kedro warns about any '.' in a name given outside a namespace.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'", category=UserWarning)
        return _pipeline()


def _pipeline() -> Pipeline:
    return Pipeline(
        [
            Node(make_pairs, ["bge_pairs", P], "bge_pairs_checked", name="bge_make_pairs"),
            Node(split_pairs, ["bge_pairs_checked", P], ["bge_train_pairs", "bge_test_pairs"], name="bge_split_pairs"),
            Node(
                split_validation,
                ["bge_train_pairs", P],
                ["bge_fit_pairs", "bge_validation_pairs"],
                name="bge_split_validation",
            ),
            Node(
                build_retrieval_task,
                ["bge_pairs_checked", "bge_test_pairs", P],
                "bge_retrieval_task",
                name="bge_build_retrieval_task",
            ),
            # validation ranks among training-side positives only: no test text is seen before the end
            Node(
                build_retrieval_task,
                ["bge_train_pairs", "bge_validation_pairs", P],
                "bge_validation_task",
                name="bge_build_validation_task",
            ),
            Node(
                prepare_training_set,
                ["bge_fit_pairs", BASE_MODEL, P],
                "bge_training_set",
                name="bge_prepare_training_set",
            ),
            Node(
                evaluate_retrieval,
                [BASE_MODEL, "bge_retrieval_task", P],
                "bge_scores_before",
                name="bge_evaluate_before",
            ),
            Node(
                fine_tune,
                [BASE_MODEL, "bge_training_set", "bge_validation_task", P],
                [TRAINED_MODEL, "bge_training_log"],
                name="bge_fine_tune",
            ),
            Node(
                evaluate_retrieval,
                [TRAINED_MODEL, "bge_retrieval_task", P],
                "bge_scores_after",
                name="bge_evaluate_after",
            ),
            Node(
                report_metrics,
                ["bge_scores_before", "bge_scores_after", "bge_training_log", "bge_retrieval_task", P],
                "bge_finetune_metrics",
                name="bge_report_metrics",
            ),
            Node(plot_ndcg, "bge_finetune_metrics", "bge_ndcg_by_dim", name="bge_plot_ndcg"),
        ]
    )
