"""The 2 -> 3 label mapping, the metrics on a tiny known case, the error analysis and the loss history."""

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.pipelines.jrte_sentiment.nodes import (
    CLASSES,
    _loss_history,
    _macro_scores,
    analyse_errors,
    classification_metrics,
    compare_levels,
    evaluate,
    map_two_to_three,
    plot_loss_curves,
)

MAPPING = {"labels": {"POSITIVE": "positive", "NEGATIVE": "negative"}, "neutral_below": 0.7}


def test_mapping_keeps_confident_poles_and_makes_the_unsure_band_neutral():
    two = pd.DataFrame({"label": ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE", "POSITIVE"], "score": [0.99, 0.9, 0.69, 0.5, 0.7]})
    assert map_two_to_three(two, MAPPING).tolist() == ["positive", "negative", "neutral", "neutral", "positive"]
    # no band: never neutral
    assert "neutral" not in map_two_to_three(two, {**MAPPING, "neutral_below": 0.0}).tolist()


def test_mapping_fails_on_a_label_it_does_not_know():
    two = pd.DataFrame({"label": ["LABEL_1"], "score": [0.9]})
    with pytest.raises(ValueError, match=r"\['LABEL_1'\].*mapping.labels"):
        map_two_to_three(two, MAPPING)
    with pytest.raises(ValueError, match="'positive' or 'negative'"):
        map_two_to_three(pd.DataFrame({"label": ["X"], "score": [0.9]}), {"labels": {"X": "neutral"}, "neutral_below": 0.5})


def predictions(true, predicted, split="test", confidence=None, length=None, agreement=None):
    n = len(true)
    return pd.DataFrame(
        {
            "split": split,
            "id": [f"{split}{i}" for i in range(n)],
            "text": [f"文{i}" for i in range(n)],
            "true": true,
            "predicted": predicted,
            "confidence": confidence if confidence is not None else np.linspace(0.5, 0.9, n),
            "length": length if length is not None else [5] * n,
            "agreement": agreement if agreement is not None else [1.0] * n,
        }
    )


TRUE = ["positive", "positive", "positive", "neutral", "neutral", "negative"]
PRED = ["positive", "positive", "neutral", "neutral", "negative", "negative"]


def test_metrics_on_a_tiny_known_case():
    text, metrics = classification_metrics(predictions(TRUE, PRED))
    assert metrics["n"] == 6
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # positive P=1 R=2/3 F=0.8; neutral P=1/2 R=1/2 F=0.5; negative P=1/2 R=1 F=2/3
    assert metrics["per_class"]["positive"]["f1-score"] == pytest.approx(0.8)
    assert metrics["per_class"]["neutral"]["f1-score"] == pytest.approx(0.5)
    assert metrics["per_class"]["negative"]["precision"] == pytest.approx(0.5)
    assert metrics["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # rows true, columns predicted, in CLASSES order (negative, neutral, positive)
    assert metrics["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 1, 2]]
    assert all(name in text for name in CLASSES)
    # other splits are not counted
    mixed = pd.concat([predictions(TRUE, PRED), predictions(["positive"], ["negative"], split="train")])
    assert classification_metrics(mixed)[1]["accuracy"] == pytest.approx(4 / 6)


def test_trainer_metrics_match_sklearn_and_cross_entropy():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]]))
    labels = np.array([0, 2, 0])
    scores = _macro_scores((logits, labels))
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["cross_entropy"] == pytest.approx(-(np.log(0.7) + np.log(0.8) + np.log(0.2)) / 3)


def test_confusion_figures_carry_the_label_names():
    report, metrics, fig = evaluate(predictions(TRUE, PRED), "tiny")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    assert report.startswith("tiny")
    comparison, table, fig2 = compare_levels(
        predictions(TRUE, PRED), predictions(TRUE, TRUE), metrics, classification_metrics(predictions(TRUE, TRUE))[1], metrics
    )
    assert comparison["level2"]["accuracy"] == 1.0 and comparison["level1"]["accuracy"] == pytest.approx(4 / 6)
    assert "| level1 | 0.6667 |" in table
    assert len(fig2.axes) == 2


def test_error_analysis_lists_every_error_and_summarises_it():
    test = predictions(TRUE, PRED, length=[5, 5, 30, 5, 30, 5], agreement=[1, 1, 2 / 3, 1, 2 / 3, 1])
    train = predictions(["negative", "neutral"], ["negative", "positive"], split="train", length=[5, 12], agreement=[1, 1])
    dev = predictions(["negative"], ["positive"], split="dev")
    params = {"splits": ["train", "test"], "length_edges": [0, 10, 20, 1000], "agreement_edges": [0, 0.8, 1.01], "n_examples": 5}
    errors, summary, fig, report = analyse_errors(pd.concat([train, test, dev]), params)
    assert len(errors) == 3  # the dev error is not analysed
    assert list(errors.columns) == ["split", "id", "text", "true", "predicted", "confidence", "length", "agreement"]
    assert summary["n_errors"] == {"test": 2, "train": 1}
    pairs = {(p["split"], p["true"], p["predicted"]): p["count"] for p in summary["confusion_pairs"]}
    assert pairs == {("test", "positive", "neutral"): 1, ("test", "neutral", "negative"): 1, ("train", "neutral", "positive"): 1}
    # both test errors are the long, low-agreement sentences
    assert summary["by_length"]["test"]["[20, 1000)"] == {"error_rate": 1.0, "n": 2}
    assert summary["by_length"]["test"]["[0, 10)"] == {"error_rate": 0.0, "n": 4}
    assert summary["by_agreement"]["test"]["[0.00, 0.80)"]["error_rate"] == 1.0
    assert list(summary["by_length"]["test"]) == ["[0, 10)", "[20, 1000)"]  # in bucket order, empty ones left out
    assert summary["error_rate"]["train"] == pytest.approx(0.5)
    assert "| test | positive | neutral | 1 |" in report
    assert len(fig.axes) == 3


def test_loss_history_has_one_row_per_epoch_and_the_curves_summarise_it():
    log = [
        {"loss": 1.0, "epoch": 1.0, "step": 10},
        {"eval_loss": 0.9, "eval_cross_entropy": 0.9, "eval_accuracy": 0.5, "eval_macro_f1": 0.4, "epoch": 1.0},
        {"loss": 0.6, "epoch": 2.0, "step": 20},
        {"eval_loss": 0.8, "eval_cross_entropy": 0.8, "eval_accuracy": 0.6, "eval_macro_f1": 0.5, "epoch": 2.0},
        {"loss": 0.3, "epoch": 3.0, "step": 30},
        {"eval_loss": 1.1, "eval_cross_entropy": 1.1, "eval_accuracy": 0.6, "eval_macro_f1": 0.5, "epoch": 3.0},
        {"train_runtime": 1.0, "epoch": 3.0},
    ]
    hist = _loss_history(log)
    assert hist["epoch"].tolist() == [1.0, 2.0, 3.0]
    assert hist["train_loss"].tolist() == [1.0, 0.6, 0.3]
    assert hist["eval_cross_entropy"].tolist() == [0.9, 0.8, 1.1]
    fig, summary = plot_loss_curves(hist.iloc[:2], hist)
    assert summary["without_countermeasures"]["best_epoch"] == 2.0
    assert summary["without_countermeasures"]["last_eval_loss"] == 1.1
    assert summary["with_countermeasures"]["epochs_run"] == 2
