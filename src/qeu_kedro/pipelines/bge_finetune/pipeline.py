"""``bge_finetune``: pairs -> split -> fine-tune -> retrieval metrics before and after.

A modular pipeline in the namespace ``bge_finetune``: its own datasets are ``bge_finetune.<name>``
(``bge_finetune.metrics``, ``bge_finetune.ndcg_by_dim``, ...), one collapsible box in kedro-viz.
It reads the raw ``bge_pairs`` and the base model ``base.embedding_model``; the trained model is
written to ``finetuned.embedding_model``, the very entry the ``finetuned`` namespace of
``movie_embedding`` reads, so ``kedro run`` trains first and then embeds with it.
"""

from kedro.pipeline import Node, Pipeline

from qeu_kedro.namespaces import dotted_names_allowed, modular
from qeu_kedro.preflight import INPUT_CHECK

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


def create_template() -> Pipeline:
    """The pipeline before namespacing: dataset names without the ``bge_finetune.`` prefix."""
    return Pipeline(
        [
            Node(make_pairs, ["bge_pairs", P], "pairs_checked", name="make_pairs", tags=INPUT_CHECK),
            Node(
                split_pairs, ["pairs_checked", P], ["train_pairs", "test_pairs"], name="split_pairs", tags=INPUT_CHECK
            ),
            Node(
                split_validation,
                ["train_pairs", P],
                ["fit_pairs", "validation_pairs"],
                name="split_validation",
                tags=INPUT_CHECK,
            ),
            Node(
                build_retrieval_task, ["pairs_checked", "test_pairs", P], "retrieval_task", name="build_retrieval_task"
            ),
            # validation ranks among training-side positives only: no test text is seen before the end
            Node(
                build_retrieval_task,
                ["train_pairs", "validation_pairs", P],
                "validation_task",
                name="build_validation_task",
            ),
            # given negatives that are test or validation positives are dropped (split.by: positive keeps them unseen)
            Node(
                prepare_training_set,
                ["fit_pairs", BASE_MODEL, P, "test_pairs", "validation_pairs"],
                "training_set",
                name="prepare_training_set",
            ),
            Node(evaluate_retrieval, [BASE_MODEL, "retrieval_task", P], "scores_before", name="evaluate_before"),
            Node(
                fine_tune,
                [BASE_MODEL, "training_set", "validation_task", P],
                [TRAINED_MODEL, "training_log"],
                name="fine_tune",
            ),
            Node(evaluate_retrieval, [TRAINED_MODEL, "retrieval_task", P], "scores_after", name="evaluate_after"),
            Node(
                report_metrics,
                ["scores_before", "scores_after", "training_log", "retrieval_task", P],
                "metrics",
                name="report_metrics",
            ),
            Node(plot_ndcg, "metrics", "ndcg_by_dim", name="plot_ndcg"),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    with dotted_names_allowed():
        return modular(create_template(), "bge_finetune", inputs={"bge_pairs", BASE_MODEL}, outputs={TRAINED_MODEL})
