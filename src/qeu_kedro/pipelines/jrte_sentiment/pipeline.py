"""``jrte_sentiment``: wiring only; the nodes are in data.py, model.py, report.py, levels.py and course.py.

The whole pipeline is namespaced ``jrte_sentiment``. The fine-tuning runs are one template
(train -> predict -> evaluate) instantiated per run, each a nested namespace with its own
parameter block: ``level2`` (with the Level 4 countermeasures), ``baseline`` (without them),
and two Level 5 candidates: ``soft_labels`` (trained on the annotators' vote shares) and
``weighted_soft_labels`` (the same with balanced class weights). Two more Level 5 candidates
need no training: ``decision_rule`` (a dev-tuned bias on Level 2's logits) and ``ensemble``
(the trained runs' mean probabilities). A fifth, ``seed_ensemble``, trains Level 2's recipe again with
other seeds and averages those models with Level 2. The last node writes the course report
``jrte_sentiment.report`` from every level's report, figure and numbers.
"""

from kedro.pipeline import Node, Pipeline

from qeu_kedro.preflight import INPUT_CHECK

from .course import course_inputs, course_report
from .data import NAMESPACE, check_pn, split_pn
from .levels import compare_improvements, level4_report, plot_loss_curves
from .model import (
    average_runs,
    fine_tune_classifier,
    predict_level1,
    predict_run,
    train_seed_ensemble,
    tune_class_bias,
)
from .report import analyse_errors, compare_levels, evaluate, report_level1, report_level2, report_run

RUNS = ("level2", "baseline", "soft_labels", "weighted_soft_labels")
# The runs whose predictions the Level 5 ensemble is given (level5.ensemble.members chooses among them).
ENSEMBLE_RUNS = ("level2", "soft_labels", "weighted_soft_labels")
# Level 5 candidates, in the order of the reports: their predictions are `<candidate>.predictions`.
CANDIDATES = ("decision_rule", "soft_labels", "weighted_soft_labels", "ensemble", "seed_ensemble")
SHARED = ["pn_train", "pn_dev", "pn_test", "level2_base_model"]
TASK, STATS = "params:task", "params:statistics"


def create_run_template() -> Pipeline:
    """One fine-tuning run before namespacing: ``params:run`` is the run's block, the rest is shared."""
    return Pipeline(
        [
            Node(
                fine_tune_classifier,
                ["pn_train", "pn_dev", "level2_base_model", "params:training", "params:run", TASK],
                ["classifier", "training_metrics"],
                name="fine_tune",
            ),
            Node(
                predict_run,
                ["classifier", "pn_train", "pn_dev", "pn_test", "params:training", "params:run", TASK],
                "predictions",
                name="predict",
            ),
            Node(
                evaluate, ["predictions", "params:run", TASK, STATS], ["metrics", "confusion_matrix"], name="evaluate"
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    template = create_run_template()
    runs = [
        Pipeline(
            template,
            namespace=run,
            inputs=set(SHARED),
            parameters={"params:training": "params:training", TASK: TASK, STATS: STATS, "params:run": f"params:{run}"},
        )
        for run in RUNS
    ]
    data = [
        Node(check_pn, ["pn", TASK], "pn_checked", name="check_pn", tags=INPUT_CHECK),
        Node(
            split_pn,
            ["pn_checked", "params:split"],
            ["pn_train", "pn_dev", "pn_test"],
            name="split_pn",
            tags=INPUT_CHECK,
        ),
    ]
    # Level 1 in its own namespace, as each fine-tuning run: its own MLflow run (jrte_sentiment/level1) holding
    # its numbers under the runs' names (accuracy, macro_f1), its datasets level1.<name>
    level1 = Pipeline(
        [
            Node(predict_level1, ["pn_test", "level1_model", "params:level1", TASK], "predictions", name="predict"),
            Node(
                evaluate,
                ["predictions", "params:level1", TASK, STATS],
                ["metrics", "confusion_matrix"],
                name="evaluate",
            ),
            Node(report_level1, "metrics", "report", name="report"),
        ],
        namespace="level1",
        inputs={"pn_test", "level1_model"},
        parameters={"params:level1", TASK, STATS},
    )
    reports = [
        Node(
            report_level2,
            ["level2.metrics", "level1.metrics", "level1.predictions", "level2.predictions", TASK, STATS],
            "level2.report",
            name="report_level2",
        ),
        Node(report_run, "baseline.metrics", "baseline.report", name="report_baseline"),
        Node(report_run, "soft_labels.metrics", "soft_labels.report", name="report_soft_labels"),
        Node(
            report_run,
            "weighted_soft_labels.metrics",
            "weighted_soft_labels.report",
            name="report_weighted_soft_labels",
        ),
        Node(
            compare_levels,
            [
                "level1.predictions",
                "level2.predictions",
                "baseline.predictions",
                "level1.metrics",
                "level2.metrics",
                "baseline.metrics",
                TASK,
                STATS,
            ],
            ["comparison_metrics", "comparison_table", "comparison_confusion_matrices"],
            name="compare_levels",
        ),
    ]
    level3 = [
        Node(
            analyse_errors,
            ["level2.predictions", "params:error_analysis", TASK, "params:level2.model"],
            ["level3_errors", "level3_summary", "level3_error_rates", "level3_report"],
            name="analyse_errors",
        ),
    ]
    level4 = [
        Node(
            plot_loss_curves,
            ["level2.training_metrics", "baseline.training_metrics", "params:level2.model", TASK],
            "level4_loss_curves",
            name="plot_loss_curves",
        ),
        Node(
            level4_report,
            [
                "level2.training_metrics",
                "baseline.training_metrics",
                "params:level2",
                "params:baseline",
                "params:training",
                "params:level4",
                "comparison_metrics",
                "params:level2.model",
            ],
            ["level4_summary", "level4_report"],
            name="level4_report",
        ),
    ]
    level5 = [
        Node(
            tune_class_bias,
            ["level2.predictions", "params:level5.decision_rule", TASK],
            ["decision_rule.predictions", "decision_rule.training_metrics"],
            name="tune_decision_rule",
        ),
        Node(
            average_runs,
            {
                "params": "params:level5.ensemble",
                "task": TASK,
                **{run: f"{run}.predictions" for run in ENSEMBLE_RUNS},
            },
            "ensemble.predictions",
            name="average_runs",
        ),
        Node(
            train_seed_ensemble,
            [
                "pn_train",
                "pn_dev",
                "pn_test",
                "level2_base_model",
                "params:training",
                "params:level2",
                "params:level5.seed_ensemble",
                "level2.predictions",
                TASK,
            ],
            ["seed_ensemble.predictions", "seed_ensemble.member_predictions", "seed_ensemble.training_metrics"],
            name="train_seed_ensemble",
        ),
        Node(
            compare_improvements,
            {
                "level2_predictions": "level2.predictions",
                "rule": "decision_rule.training_metrics",
                "params": "params:level5",
                "model": "params:level2.model",
                "task": TASK,
                "statistics": STATS,
                "errors": "level3_summary",
                **{candidate: f"{candidate}.predictions" for candidate in CANDIDATES},
            },
            ["level5_metrics", "level5_report", "level5_comparison"],
            name="compare_improvements",
        ),
    ]
    course = [Node(course_report, course_inputs(), "report", name="write_course_report")]
    whole = Pipeline(data + reports + level3 + level4 + level5 + course) + level1 + sum(runs, Pipeline([]))
    return Pipeline(whole, namespace=NAMESPACE, tags=[NAMESPACE])
