"""The node functions of ``jrte_sentiment``, by module: data (schema, checks, split), model (Level 1,
fine-tuning, prediction, the Level 5 decision rule), report (metrics with intervals, reports, Level 3)
and levels (Levels 4 and 5). Imported here for callers that want them in one place."""

from .data import check_pn, class_names, split_pn
from .levels import compare_improvements, level4_report, plot_loss_curves
from .model import (
    apply_class_bias,
    fine_tune_classifier,
    map_two_to_task,
    predict_level1,
    predict_run,
    soft_cross_entropy,
    tune_class_bias,
)
from .report import analyse_errors, classification_metrics, compare_levels, evaluate, level_sentences

__all__ = [
    "analyse_errors",
    "apply_class_bias",
    "check_pn",
    "class_names",
    "classification_metrics",
    "compare_improvements",
    "compare_levels",
    "evaluate",
    "fine_tune_classifier",
    "level4_report",
    "level_sentences",
    "map_two_to_task",
    "plot_loss_curves",
    "predict_level1",
    "predict_run",
    "soft_cross_entropy",
    "split_pn",
    "tune_class_bias",
]
