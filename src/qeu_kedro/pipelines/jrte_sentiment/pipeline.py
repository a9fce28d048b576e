"""``jrte_sentiment``: wiring only; see nodes.py."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    analyse_errors,
    check_pn,
    compare_levels,
    evaluate,
    evaluate_level1,
    evaluate_level2,
    fine_tune_classifier,
    plot_loss_curves,
    predict_level1,
    predict_level2,
    predict_test,
    split_pn,
)

P = "params:jrte_sentiment"


def create_pipeline(**kwargs) -> Pipeline:
    data = [
        Node(check_pn, "pn", "pn_checked", name="check_pn"),
        Node(split_pn, ["pn_checked", f"{P}.split"], ["pn_train", "pn_dev", "pn_test"], name="split_pn"),
    ]
    level1 = [
        Node(predict_level1, ["pn_test", "level1_model", f"{P}.level1"], "level1_predictions", name="predict_level1"),
        Node(
            evaluate_level1,
            ["level1_predictions", f"{P}.level1"],
            ["level1_report", "level1_metrics", "level1_confusion_matrix"],
            name="evaluate_level1",
        ),
    ]
    # Level 2's model is trained with the Level 4 countermeasures; the same training
    # without them gives the over-fitting baseline.
    level2 = [
        Node(
            fine_tune_classifier,
            ["pn_train", "pn_dev", "level2_base_model", f"{P}.training", f"{P}.countermeasures"],
            ["level2_classifier", "level2_loss_history"],
            name="fine_tune_level2",
        ),
        Node(
            predict_level2,
            ["level2_classifier", "pn_train", "pn_dev", "pn_test", f"{P}.training"],
            "level2_predictions",
            name="predict_level2",
        ),
        Node(
            evaluate_level2,
            ["level2_predictions", f"{P}.level2"],
            ["level2_report", "level2_metrics", "level2_confusion_matrix"],
            name="evaluate_level2",
        ),
    ]
    level3 = [
        Node(
            analyse_errors,
            ["level2_predictions", f"{P}.error_analysis"],
            ["level3_errors", "level3_summary", "level3_error_rates", "level3_report"],
            name="analyse_errors",
        ),
    ]
    level4 = [
        Node(
            fine_tune_classifier,
            ["pn_train", "pn_dev", "level2_base_model", f"{P}.training", f"{P}.no_countermeasures"],
            ["no_countermeasures_classifier", "no_countermeasures_loss_history"],
            name="fine_tune_without_countermeasures",
        ),
        Node(
            predict_test,
            ["no_countermeasures_classifier", "pn_test", f"{P}.training"],
            "no_countermeasures_predictions",
            name="predict_without_countermeasures",
        ),
        Node(
            evaluate,
            ["no_countermeasures_predictions", f"{P}.no_countermeasures.title"],
            ["no_countermeasures_report", "no_countermeasures_metrics", "no_countermeasures_confusion_matrix"],
            name="evaluate_without_countermeasures",
        ),
        Node(
            plot_loss_curves,
            ["level2_loss_history", "no_countermeasures_loss_history"],
            ["level4_loss_curves", "level4_summary"],
            name="plot_loss_curves",
        ),
    ]
    comparison = [
        Node(
            compare_levels,
            ["level1_predictions", "level2_predictions", "level1_metrics", "level2_metrics", "no_countermeasures_metrics"],
            ["comparison_metrics", "comparison_table", "comparison_confusion_matrices"],
            name="compare_levels",
        ),
    ]
    return Pipeline(data + level1 + level2 + level3 + level4 + comparison)
