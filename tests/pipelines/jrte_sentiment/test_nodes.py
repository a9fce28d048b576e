"""The label mapping, metrics with intervals, the fact/possibility reports, Level 3, Level 4 and Level 5 on known cases."""

import re

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.pipelines.jrte_sentiment.levels import compare_improvements, level4_report, plot_loss_curves
from qeu_kedro.pipelines.jrte_sentiment.model import (
    _macro_scores,
    apply_class_bias,
    average_runs,
    balanced_class_weights,
    loss_history,
    map_two_to_task,
    soft_cross_entropy,
    tune_class_bias,
)
from qeu_kedro.pipelines.jrte_sentiment.report import (
    analyse_errors,
    classification_metrics,
    compare_levels,
    comparison_sentences,
    evaluate,
    level_sentences,
    paired_comparison,
    report_level2,
)
from tests.conftest import REPO, load_config

PARAMS = load_config(REPO, None, "parameters")["jrte_sentiment"]
TASK = PARAMS["task"]
NAMES = ["negative", "normal", "positive"]
TWO_CLASS = {"corpus": "hand-made", "classes": [{"value": 0, "name": "negative"}, {"value": 1, "name": "positive"}]}
STATS = {"n_resamples": 300, "confidence": 0.95, "seed": 0}
MAPPING = {"labels": {"POSITIVE": "positive", "NEGATIVE": "negative"}, "unsure_class": "normal", "unsure_below": 0.7}


def test_the_default_schema_is_the_courses():
    assert [c["name"] for c in TASK["classes"]] == NAMES
    assert {c["value"]: c["name"] for c in TASK["classes"]} == {1: "positive", 0: "normal", -1: "negative"}


def test_mapping_keeps_confident_poles_and_makes_the_unsure_band_the_unsure_class():
    two = pd.DataFrame(
        {"label": ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE", "POSITIVE"], "score": [0.99, 0.9, 0.69, 0.5, 0.7]}
    )
    assert map_two_to_task(two, MAPPING, NAMES).tolist() == ["positive", "negative", "normal", "normal", "positive"]
    # a 2-class task: no unsure class, the poles only
    two_class = map_two_to_task(two, {**MAPPING, "unsure_class": None}, ["negative", "positive"])
    assert two_class.tolist() == ["positive", "negative", "positive", "negative", "positive"]


def test_mapping_fails_on_a_label_or_a_class_it_does_not_know():
    with pytest.raises(ValueError, match=r"\['LABEL_1'\].*mapping.labels"):
        map_two_to_task(pd.DataFrame({"label": ["LABEL_1"], "score": [0.9]}), MAPPING, NAMES)
    with pytest.raises(ValueError, match=r"\['neutral'\], which are not classes"):
        map_two_to_task(
            pd.DataFrame({"label": ["X"], "score": [0.9]}), {"labels": {"X": "neutral"}, "unsure_class": None}, NAMES
        )
    with pytest.raises(
        ValueError,
        match=r"parameters jrte_sentiment\.level1\.mapping\.unsure_class: 'normal' is not a class of the task "
        r"\(\['negative', 'positive'\]\); .* or set it to null for no unsure band \(a 2-class task\)",
    ):
        map_two_to_task(pd.DataFrame({"label": ["POSITIVE"], "score": [0.9]}), MAPPING, ["negative", "positive"])


def predictions(true, predicted, split="test", confidence=None, length=None, agreement=None, probs=None):
    n = len(true)
    table = pd.DataFrame(
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
    if probs is not None:
        for j, name in enumerate(NAMES):
            table[f"p_{name}"] = np.asarray(probs)[:, j]
    return table


TRUE = ["positive", "positive", "positive", "normal", "normal", "negative"]
PRED = ["positive", "positive", "normal", "normal", "negative", "negative"]


def test_metrics_on_a_tiny_known_case():
    metrics = classification_metrics(predictions(TRUE, PRED), TASK, STATS)
    assert metrics["n"] == 6
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # positive P=1 R=2/3 F=0.8; normal P=1/2 R=1/2 F=0.5; negative P=1/2 R=1 F=2/3
    assert metrics["per_class"]["positive"]["f1-score"] == pytest.approx(0.8)
    assert metrics["per_class"]["normal"]["f1-score"] == pytest.approx(0.5)
    assert metrics["per_class"]["negative"]["precision"] == pytest.approx(0.5)
    assert metrics["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # rows true, columns predicted, in the configured order (negative, normal, positive)
    assert metrics["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 1, 2]]
    assert all(name in metrics["classification_report"] for name in NAMES)
    # the interval is the bootstrap of accuracy itself, with the statistics block's settings
    from qeu_kedro.stats import bootstrap_statistic_interval

    hits = np.array(TRUE) == np.array(PRED)
    oracle = bootstrap_statistic_interval(lambda i: float(hits[i].mean()), 6, **STATS)
    assert metrics["accuracy_ci"] == pytest.approx(list(oracle[1:]))
    assert oracle[1:] != bootstrap_statistic_interval(lambda i: float(hits[i].mean()), 6, **{**STATS, "seed": 1})[1:]
    # other splits are not counted
    mixed = pd.concat([predictions(TRUE, PRED), predictions(["positive"], ["negative"], split="train")])
    assert classification_metrics(mixed, TASK, STATS)["accuracy"] == pytest.approx(4 / 6)


def test_the_accuracy_interval_has_the_width_the_binomial_gives():
    # 140 of 200 right: the normal approximation's 95 % half-width is 1.96 * sqrt(0.7 * 0.3 / 200) = 0.0635
    true = ["positive"] * 200
    metrics = classification_metrics(predictions(true, ["positive"] * 140 + ["negative"] * 60), TASK, STATS)
    low, high = metrics["accuracy_ci"]
    assert low < 0.7 < high
    assert (high - low) / 2 == pytest.approx(0.0635, abs=0.01)
    ninety = classification_metrics(
        predictions(true, ["positive"] * 140 + ["negative"] * 60), TASK, {**STATS, "confidence": 0.9}
    )
    assert (ninety["accuracy_ci"][1] - ninety["accuracy_ci"][0]) / 2 == pytest.approx(1.645 / 1.96 * 0.0635, abs=0.01)


def test_macro_f1_from_confusion_counts_is_scikit_learns():
    from sklearn.metrics import f1_score

    from qeu_kedro.pipelines.jrte_sentiment.report import class_codes, macro_f1_codes

    rng = np.random.default_rng(1)
    names = ["negative", "normal", "positive"]
    cases = [
        (rng.choice(names, 200), rng.choice(names, 200)),
        (rng.choice(names[:2], 50), rng.choice(names[:2], 50)),  # "positive" never true nor predicted: it scores 0
        (np.array(["negative"] * 10), np.array(["positive"] * 10)),  # every one wrong
        (
            rng.choice([*names, "other"], 100),
            rng.choice([*names, "gone"], 100),
        ),  # labels outside the task count against
    ]
    for true, pred in cases:
        expected = f1_score(true, pred, labels=names, average="macro", zero_division=0)
        assert macro_f1_codes(class_codes(true, names), class_codes(pred, names), 3) == pytest.approx(
            expected, abs=1e-12
        )


def test_macro_f1_averages_over_the_configured_classes_only():
    true = ["positive"] * 4 + ["negative"] * 2
    pred = ["positive", "positive", "positive", "negative", "negative", "negative"]
    two = classification_metrics(predictions(true, pred), TWO_CLASS, STATS)
    # positive P=1 R=3/4 F=6/7; negative P=2/3 R=1 F=4/5: the mean of the two, no empty third class
    assert two["macro_f1"] == pytest.approx((6 / 7 + 4 / 5) / 2)
    assert two["labels"] == ["negative", "positive"] and len(two["confusion_matrix"]) == 2
    three = classification_metrics(predictions(true, pred), TASK, STATS)
    assert three["macro_f1"] == pytest.approx((6 / 7 + 4 / 5) / 3)  # what a hard-coded 3-class list reported


def test_trainer_metrics_match_sklearn_and_cross_entropy():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]]))
    labels = np.array([0, 2, 0])
    scores = _macro_scores((logits, labels))
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["cross_entropy"] == pytest.approx(-(np.log(0.7) + np.log(0.8) + np.log(0.2)) / 3)


def test_confusion_figure_and_report_carry_the_label_names():
    metrics, fig = evaluate(predictions(TRUE, PRED), PARAMS["level2"], TASK, STATS)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    title = ax.get_title()
    assert (
        title.startswith("jrte_sentiment · Level 2")
        and PARAMS["level2"]["model"][:20] in title.replace("\n", " ")
        and "n = 6" in title
    )
    assert metrics["model"] == PARAMS["level2"]["model"]
    off, fig = evaluate(predictions(TRUE, PRED).iloc[0:0], PARAMS["level2"], TASK, STATS)
    assert off["enabled"] is False and fig.axes[0].get_title().startswith("jrte_sentiment · Level 2")


# ---- the fact / possibility sentences on a hand-made metrics case
HAND = {
    "n": 100,
    "accuracy": 0.8,
    "accuracy_ci": [0.72, 0.88],
    "macro_f1": 0.7,
    "macro_f1_ci": [0.6, 0.8],
    "confidence": 0.95,
    "labels": NAMES,
    # rows true, columns predicted: 20 negative, 30 normal, 50 positive
    "confusion_matrix": [[18, 1, 1], [4, 16, 10], [1, 3, 46]],
    "per_class": {
        "negative": {"precision": 18 / 23, "recall": 0.9, "f1-score": 0.8372},
        "normal": {"precision": 0.8, "recall": 16 / 30, "f1-score": 0.64},
        "positive": {"precision": 46 / 57, "recall": 0.92, "f1-score": 0.8598},
    },
}


def test_level_sentences_tag_each_statement_with_its_number():
    sentences = level_sentences(HAND)
    tags = [s["tag"] for s in sentences]
    assert tags == ["fact", "fact", "fact", "fact", "fact", "fact", "possibility", "possibility"]
    acc, f1, best, worst, confusion, recall = sentences[:6]
    assert (
        acc["number"] == 0.8
        and "0.8000" in acc["text"]
        and "0.7200 to 0.8800" in acc["text"]
        and "n = 100" in acc["text"]
    )
    assert f1["number"] == 0.7 and "0.6000 to 0.8000" in f1["text"]
    assert best["number"] == 0.8598 and "'positive'" in best["text"]
    assert worst["number"] == 0.64 and "'normal'" in worst["text"]
    # the largest off-diagonal cell: 10 normal sentences predicted positive, of 30
    assert (
        confusion["number"] == 10
        and "'normal' predicted as 'positive'" in confusion["text"]
        and "33.3%" in confusion["text"]
    )
    assert recall["number"] == pytest.approx(16 / 30) and "predicts 'normal' 20 times for 30" in recall["text"]
    assert sentences[6]["number"] is None and "may" in sentences[6]["text"]
    assert sentences[7]["number"] == pytest.approx(0.08) and "±0.080" in sentences[7]["text"]
    # no fact hedges, every possibility does
    assert all("may" not in s["text"] for s in sentences if s["tag"] == "fact")


def test_a_class_never_predicted_is_said_so_and_not_called_the_models_fallback():
    true = ["negative"] * 4 + ["normal"] * 3 + ["positive"] * 3
    never = classification_metrics(predictions(true, ["positive"] * 4 + ["normal"] * 3 + ["positive"] * 3), TASK, STATS)
    said = level_sentences(never)
    fact_, reading = said[5], said[6]
    assert fact_["tag"] == "fact" and fact_["number"] == 0
    assert (
        "'negative' is never predicted" in fact_["text"] and "4 of those are predicted as 'positive'" in fact_["text"]
    )
    assert reading["tag"] == "possibility" and "may not separate 'negative' from 'positive'" in reading["text"]
    assert not any("as its answer" in s["text"] for s in said)
    # given more often than labelled (3 times for 2 'normal' sentences): then it may be the model's fallback
    over = ["negative"] * 4 + ["positive", "normal"] + ["normal"] * 2 + ["positive"] * 2
    said = level_sentences(classification_metrics(predictions(true[:4] + true[5:] + ["positive"], over), TASK, STATS))
    assert "predicts 'normal' 3 times for 2 'normal' sentences" in said[5]["text"]
    assert "may use 'normal' as its answer when unsure" in said[6]["text"]


def test_classes_whose_f1_ties_are_not_called_the_highest_and_the_lowest():
    """With every class at F1 0.8, the report named 'negative' as both the highest and the lowest."""
    two = {"corpus": "c", "classes": [{"value": 0, "name": "negative"}, {"value": 1, "name": "positive"}]}
    true = ["negative"] * 10 + ["positive"] * 10
    pred = ["negative"] * 8 + ["positive"] * 2 + ["positive"] * 8 + ["negative"] * 2
    said = level_sentences(classification_metrics(predictions(true, pred), two, STATS))
    assert said[2] == {"tag": "fact", "text": "Both classes have the same F1, 0.8000.", "number": pytest.approx(0.8)}
    assert not any("highest" in s["text"] or "lowest" in s["text"] for s in said)
    assert "most frequent confusion" in said[3]["text"]
    # no class is singled out as the weakest: the sentences on the lowest class's recall and precision are left out
    assert not any("recall" in s["text"] or "as its answer" in s["text"] for s in said)
    # two of three tied at the top: both named, the lowest alone
    tied = {
        **HAND,
        "per_class": {**HAND["per_class"], "negative": {**HAND["per_class"]["negative"], "f1-score": 0.8598}},
    }
    said = level_sentences(tied)
    assert said[2]["text"] == "The classes with the highest F1 are 'negative' and 'positive' (0.8598 each)."
    assert said[3]["text"] == "The class with the lowest F1 is 'normal' (0.6400)."
    three = {**HAND, "per_class": {c: {**v, "f1-score": 0.5} for c, v in HAND["per_class"].items()}}
    assert level_sentences(three)[2]["text"] == "All 3 classes have the same F1, 0.5000."


def test_a_perfect_confusion_matrix_is_said_as_a_fact():
    perfect = {**HAND, "confusion_matrix": [[20, 0, 0], [0, 30, 0], [0, 0, 50]]}
    sentences = level_sentences(perfect)
    assert (
        sentences[4] == {"tag": "fact", "text": sentences[4]["text"], "number": 0}
        and "no sentence off its diagonal" in sentences[4]["text"]
    )
    assert sentences[-1]["tag"] == "possibility"


def test_comparison_sentences_follow_the_verdicts():
    def comp(diff, low, high, verdict):
        return {"difference": diff, "ci_low": low, "ci_high": high, "confidence": 0.95, "n": 50, "verdict": verdict}

    better = comparison_sentences(
        {"accuracy": comp(0.1, 0.02, 0.18, "better"), "macro_f1": comp(0.05, -0.01, 0.11, "no evidence")},
        "Level 1",
        "Level 2",
    )
    assert [s["tag"] for s in better] == ["fact", "fact", "possibility"]
    assert better[0]["number"] == 0.1 and "+0.0200 to +0.1800" in better[0]["text"] and "better" in better[0]["text"]
    assert better[1]["number"] == 0.05 and "no evidence" in better[1]["text"]
    assert (
        "gain of Level 2 in accuracy may come from what differs between the two (the model and its training)"
        in better[2]["text"]
    )
    worse = comparison_sentences(
        {"accuracy": comp(-0.1, -0.18, -0.02, "worse"), "macro_f1": comp(-0.1, -0.2, -0.01, "worse")}, "A", "B"
    )
    assert "less well" in worse[2]["text"]


def test_level2_report_compares_with_level1_on_the_same_sentences():
    l1 = predictions(TRUE, PRED)
    l2 = predictions(TRUE, TRUE)
    m1, _ = evaluate(l1, PARAMS["level1"], TASK, STATS)
    m2, _ = evaluate(l2, PARAMS["level2"], TASK, STATS)
    text = report_level2(m2, m1, l1, l2, TASK, STATS)
    assert text.startswith("# Level 2: ") and "Model: **" in text
    assert "negative" in text and "normal" in text and "| positive |" in text  # the confusion matrix table
    assert "## Compared with Level 1" in text and "**[fact]** Accuracy of Level 2 minus Level 1: +0.3333" in text
    pair = paired_comparison(l1, l2, TASK, STATS)
    assert pair["accuracy"]["difference"] == pytest.approx(2 / 6)
    # a sentence predicted twice would shift the pairing of every later one: refused
    with pytest.raises(ValueError, match=r"after predictions hold test sentence ids more than once \(\['test1'\]\)"):
        paired_comparison(l1, pd.concat([l2.iloc[:2], l2.iloc[1:]]), TASK, STATS)
    comparison, table, fig = compare_levels(l1, l2, l2, m1, m2, m2, TASK, STATS)
    assert set(comparison["paired"]) == {"level2_vs_level1", "baseline_vs_level2"}
    assert "| Level 1 " in table and "0.6667" in table and len(fig.axes) == 2
    assert all(ax.get_title().startswith("jrte_sentiment · Level ") for ax in fig.axes)
    # a run switched off leaves the comparison without it
    comparison, _, _ = compare_levels(l1, l2, l2.iloc[0:0], m1, m2, {"enabled": False}, TASK, STATS)
    assert set(comparison["levels"]) == {"level1", "level2"} and set(comparison["paired"]) == {"level2_vs_level1"}


def test_error_analysis_lists_every_error_and_summarises_it():
    test = predictions(TRUE, PRED, length=[5, 5, 30, 5, 30, 5], agreement=[1, 1, 2 / 3, 1, 2 / 3, 1])
    train = predictions(
        ["negative", "normal"], ["negative", "positive"], split="train", length=[5, 12], agreement=[1, 1]
    )
    dev = predictions(["negative"], ["positive"], split="dev")
    params = {
        "splits": ["train", "test"],
        "length_edges": [0, 10, 20, 1000],
        "agreement_edges": [0, 0.8, 1.01],
        "n_examples": 5,
    }
    errors, summary, fig, report = analyse_errors(pd.concat([train, test, dev]), params, TASK, "tiny model")
    assert len(errors) == 3  # the dev error is not analysed
    assert list(errors.columns) == ["split", "id", "text", "true", "predicted", "confidence", "length", "agreement"]
    assert summary["n_errors"] == {"test": 2, "train": 1}
    pairs = {(p["split"], p["true"], p["predicted"]): p["count"] for p in summary["confusion_pairs"]}
    assert pairs == {
        ("test", "positive", "normal"): 1,
        ("test", "normal", "negative"): 1,
        ("train", "normal", "positive"): 1,
    }
    assert summary["by_length"]["test"]["[20, 1000)"] == {"error_rate": 1.0, "n": 2}
    assert summary["by_length"]["test"]["[0, 10)"] == {"error_rate": 0.0, "n": 4}
    assert summary["by_agreement"]["test"]["[0.00, 0.80)"]["error_rate"] == 1.0
    assert list(summary["by_length"]["test"]) == ["[0, 10)", "[20, 1000)"]  # in bucket order, empty ones left out
    assert summary["error_rate"]["train"] == pytest.approx(0.5)
    assert "| test    | positive | normal      |       1 |" in report
    assert len(fig.axes) == 3 and "tiny model" in fig._suptitle.get_text()
    assert fig._suptitle.get_text().startswith("jrte_sentiment · Level 3")


@pytest.mark.parametrize("splits", [["tset"], ["train", "dev"]])
def test_error_analysis_refuses_a_split_the_predictions_do_not_hold(splits):
    """A typo ("tset") or a split Level 2 did not predict used to be analysed as an empty split."""
    data = pd.concat([predictions(TRUE, PRED), predictions(["negative"], ["positive"], split="train")])
    params = {"splits": splits, "length_edges": [0, 1000], "agreement_edges": [0, 1.01], "n_examples": 5}
    with pytest.raises(ValueError, match=r"error_analysis\.splits: \['(tset|dev)'\] are not splits the Level 2"):
        analyse_errors(data, params, TASK, "tiny model")


@pytest.mark.parametrize(
    ("key", "edges"), [("length_edges", [0, 40, 20, 1000]), ("agreement_edges", [0, 0.5, 0.5, 1.01])]
)
def test_error_analysis_refuses_edges_that_do_not_increase_naming_the_parameter(key, edges):
    """pandas' "bins must increase monotonically" named no parameter, and came after Level 2 had trained."""
    params = {"splits": ["test"], "length_edges": [0, 1000], "agreement_edges": [0, 1.01], "n_examples": 5, key: edges}
    with pytest.raises(
        ValueError,
        match=rf"parameters jrte_sentiment\.error_analysis\.{key}: {re.escape(str(edges))} do not increase from each "
        r"edge to the next \(.*\); list the edges in increasing order without repeats",
    ):
        analyse_errors(predictions(TRUE, PRED), params, TASK, "tiny model")


def test_error_analysis_warns_about_rows_outside_the_length_edges(caplog):
    test = predictions(TRUE, PRED, length=[5, 5, 1500, 5, 30, 5])
    params = {"splits": ["test"], "length_edges": [0, 10, 1000], "agreement_edges": [0, 1.01], "n_examples": 5}
    with caplog.at_level("WARNING"):
        _, summary, _, _ = analyse_errors(test, params, TASK, "tiny model")
    assert sum(b["n"] for b in summary["by_length"]["test"].values()) == 5  # the 1,500-character row is in no bucket
    assert "1 rows lie outside error_analysis.length_edges [0, 10, 1000]" in caplog.text


# ---- level 4
LOG = [
    {"loss": 1.0, "epoch": 1.0, "step": 10},
    {"eval_loss": 0.9, "eval_cross_entropy": 0.9, "eval_accuracy": 0.5, "eval_macro_f1": 0.4, "epoch": 1.0},
    {"loss": 0.6, "epoch": 2.0, "step": 20},
    {"eval_loss": 0.8, "eval_cross_entropy": 0.8, "eval_accuracy": 0.6, "eval_macro_f1": 0.5, "epoch": 2.0},
    {"loss": 0.3, "epoch": 3.0, "step": 30},
    {"eval_loss": 1.1, "eval_cross_entropy": 1.1, "eval_accuracy": 0.6, "eval_macro_f1": 0.5, "epoch": 3.0},
    {"train_runtime": 1.0, "epoch": 3.0},
]


def training(history):
    return {
        "enabled": True,
        "history": history,
        "epochs_run": len(history),
        "best_epoch": 2.0,
        "n_train": 30,
        "n_dev": 10,
    }


def test_loss_history_is_one_dict_per_epoch_and_the_curves_have_integer_epochs():
    hist = loss_history(LOG)
    assert [r["epoch"] for r in hist] == [1.0, 2.0, 3.0]
    assert [r["train_loss"] for r in hist] == [1.0, 0.6, 0.3]
    assert [r["eval_cross_entropy"] for r in hist] == [0.9, 0.8, 1.1]
    fig = plot_loss_curves(training(hist[:2]), training(hist), "tiny model", TASK)
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "without countermeasures"
    ticks = fig.axes[0].get_xticks()
    assert np.allclose(ticks, np.round(ticks))
    title = fig._suptitle.get_text()
    assert (
        title.startswith("jrte_sentiment · Level 4")
        and "tiny model" in title
        and TASK["corpus"] in title
        and "train n = 30" in title
    )
    assert fig.axes[0].get_legend() is not None


def level4(level2_training: dict, baseline_training: dict, level2_run: dict | None = None, model: str = "m") -> tuple:
    """Level 4's report under conf/base's parameters (Level 2's run block ``level2_run`` when given)."""
    run = PARAMS["level2"] if level2_run is None else level2_run
    return level4_report(
        level2_training,
        baseline_training,
        run,
        PARAMS["baseline"],
        PARAMS["training"],
        PARAMS["level4"],
        {"paired": {}},
        model,
    )


def test_level4_report_explains_only_the_countermeasures_in_use_with_sources():
    hist = loss_history(LOG)
    summary, text = level4(training(hist[:2]), training(hist), model="tiny model")
    assert summary["countermeasures"] == ["early_stopping", "weight_decay", "dropout"]  # label smoothing is 0 here
    assert summary["baseline_countermeasures"] == [] and "still trains with" not in text
    explanations = PARAMS["level4"]["explanations"]
    for key in summary["countermeasures"]:
        assert len(" ".join(explanations[key]["explanation"].split())) >= 100
        assert f"Source: {explanations[key]['source']}" in text
    assert "Prechelt" in text and "Loshchilov" in text and "Srivastava" in text and "Szegedy" not in text
    # the baseline's validation loss rose after epoch 2: a fact with the rise, and a possibility
    assert (
        "**[fact]** Without countermeasures: after epoch 2 the validation loss rose to 1.1000 at epoch 3 (+0.3000)"
        in text
    )
    assert "**[possibility]** Without countermeasures: the model may be learning particulars" in text
    assert "**[fact]** With countermeasures: the validation loss did not rise within the 2 epochs run." in text


def test_level4_says_which_weights_a_run_with_checkpoint_averaging_keeps():
    """With level2.average_last_epochs set, the report said the best epoch's weights were restored (the early
    stopping explanation) while fine_tune_classifier had replaced them with the mean of the last k epochs."""
    hist = [
        {"epoch": float(e), "train_loss": 1 / e, "eval_cross_entropy": v} for e, v in ((1, 0.6), (2, 0.5), (3, 0.55))
    ]
    averaged = {**training(hist), "best_epoch": 2.0, "averaged_epochs": [2.0, 3.0], "restored_best": False}
    level2 = {**PARAMS["level2"], "average_last_epochs": 2}
    for run in (level2, {**level2, "early_stopping_patience": None}):
        _, text = level4(averaged, training(hist), run)
        assert (
            "- **[fact]** In this run the Level 2 weights kept are not the lowest-validation-loss epoch's: "
            "`average_last_epochs: 2` replaces them with the mean of the trainable weights of epochs 2, 3" in text
        )
        assert "`average_last_epochs: 2`; the run without them:" in text  # the settings line
    # without averaging, nothing is said about it beyond the setting
    _, text = level4(training(hist), training(hist))
    assert "`average_last_epochs: None`" in text and "In this run the Level 2 weights kept" not in text


def curve(train_loss, eval_loss):
    return training(
        [
            {"epoch": float(i + 1), "train_loss": t, "eval_cross_entropy": v}
            for i, (t, v) in enumerate(zip(train_loss, eval_loss, strict=True))
        ]
    )


def curve_facts(train_loss, eval_loss):
    hist = curve(train_loss, eval_loss)
    summary, text = level4(hist, hist)
    return [line for line in text.splitlines() if line.startswith("- **[fact]** With countermeasures")]


def test_level4_curve_facts_hold_for_the_whole_curve_not_its_ends():
    # a rise in the middle, then a new low at the end: not "did not rise"
    facts = curve_facts([0.9, 0.7, 0.5], [0.60, 0.70, 0.55])
    assert not any("did not rise" in f for f in facts)
    assert any("rose from epoch 1 to 2 (+0.1000), then fell to its lowest at the last epoch run" in f for f in facts)
    # a rise at the end while the training loss rose too: "kept falling" would be false
    facts = curve_facts([0.9, 0.5, 0.6, 0.8], [0.6, 0.5, 0.6, 0.65])
    assert any(
        "rose to 0.6500 at epoch 4 (+0.1500) while the training loss went from 0.5000 to 0.8000" in f for f in facts
    )
    assert not any("kept falling" in f for f in facts)
    # the training loss falling all the way after the lowest validation loss
    facts = curve_facts([0.9, 0.5, 0.4, 0.3], [0.6, 0.5, 0.6, 0.65])
    assert any("(+0.1500) while the training loss kept falling." in f for f in facts)
    # a rise too small for four decimals is shown in significant digits, not as +0.0000
    facts = curve_facts([0.9, 0.5, 0.4], [0.45, 0.40000, 0.40002])
    assert any("rose to 0.4000 at epoch 3 (+2e-05)" in f for f in facts)
    # falling throughout
    assert any("did not rise within the 3 epochs run" in f for f in curve_facts([0.9, 0.7, 0.5], [0.6, 0.5, 0.4]))


def test_level4_counts_countermeasures_set_in_the_shared_trainer_block():
    shared = {**PARAMS["training"], "trainer": {**PARAMS["training"]["trainer"], "label_smoothing_factor": 0.1}}
    hist = curve([0.9, 0.5], [0.6, 0.5])
    summary, text = level4_report(
        hist, hist, PARAMS["level2"], PARAMS["baseline"], shared, PARAMS["level4"], {"paired": {}}, "m"
    )
    # Level 2 sets 0.0 itself, so only the baseline... which sets 0.0 too: neither trains with it
    assert "label_smoothing" not in summary["countermeasures"] and summary["baseline_countermeasures"] == []
    level2 = {
        **PARAMS["level2"],
        "trainer": {k: v for k, v in PARAMS["level2"]["trainer"].items() if k != "label_smoothing_factor"},
    }
    baseline = {
        **PARAMS["baseline"],
        "trainer": {k: v for k, v in PARAMS["baseline"]["trainer"].items() if k != "weight_decay"},
    }
    shared = {
        **PARAMS["training"],
        "trainer": {**PARAMS["training"]["trainer"], "label_smoothing_factor": 0.1, "weight_decay": 0.05},
    }
    summary, text = level4_report(hist, hist, level2, baseline, shared, PARAMS["level4"], {"paired": {}}, "m")
    assert summary["countermeasures"] == ["early_stopping", "weight_decay", "dropout", "label_smoothing"]
    assert "Szegedy" in text  # label smoothing's source, now that Level 2 trains with it
    assert summary["baseline_countermeasures"] == ["weight_decay"]
    assert "the run without countermeasures still trains with: Weight decay (decoupled, AdamW)" in text
    assert "'weight_decay': 0.05" in text  # the settings shown are those trained with


# ---- level 5 switches
def test_the_class_bias_moves_predictions_towards_that_class_only():
    probs = [[0.5, 0.3, 0.2], [0.1, 0.35, 0.55], [0.2, 0.1, 0.7]]
    table = predictions(["negative", "normal", "positive"], ["negative", "positive", "positive"], probs=probs)
    assert apply_class_bias(table, NAMES, "normal", 0.0)["predicted"].tolist() == ["negative", "positive", "positive"]
    # +0.5 on log p(normal): 0.35 * e^0.5 = 0.577 > 0.55 flips the second; the others stay
    biased = apply_class_bias(table, NAMES, "normal", 0.5)
    assert biased["predicted"].tolist() == ["negative", "normal", "positive"]
    # the confidence is the model's own probability of the class now predicted
    assert biased["confidence"].tolist() == [0.5, 0.35, 0.7]
    # a large negative bias never predicts normal
    assert "normal" not in apply_class_bias(table, NAMES, "normal", -5)["predicted"].tolist()


def test_the_decision_rule_is_tuned_on_dev_and_applied_to_test():
    dev = predictions(
        ["normal", "normal", "positive", "negative"],
        ["positive", "positive", "positive", "negative"],
        split="dev",
        probs=[[0.1, 0.4, 0.5], [0.1, 0.42, 0.48], [0.05, 0.15, 0.8], [0.8, 0.1, 0.1]],
    )
    test = predictions(["normal", "positive"], ["positive", "positive"], probs=[[0.1, 0.4, 0.5], [0.1, 0.2, 0.7]])
    rule_params = {
        "enabled": True,
        "class": "normal",
        "grid": [-1.0, 1.0, 0.1],
        "cross_fit_folds": 5,
        "cross_fit_seed": 0,
    }
    tuned, rule = tune_class_bias(pd.concat([dev, test]), rule_params, TASK)
    # the smallest bias that makes both dev normals normal without the positive: log(0.5/0.4) = 0.223 -> 0.3
    assert rule["bias"] == pytest.approx(0.3) and rule["dev_macro_f1"] == pytest.approx(1.0)
    assert tuned[tuned["split"] == "test"]["predicted"].tolist() == ["normal", "positive"]
    # 4 dev sentences are too few for 5 folds: the dev predictions are the in-sample ones, and say so
    assert rule["dev_predictions"] == "in-sample"
    assert tuned[tuned["split"] == "dev"]["predicted"].tolist() == ["normal", "normal", "positive", "negative"]
    off, info = tune_class_bias(
        pd.concat([dev, test]), {"enabled": False, "class": "normal", "grid": [-1, 1, 0.1]}, TASK
    )
    assert off.empty and info == {"enabled": False}
    with pytest.raises(ValueError, match="not a class of the task"):
        tune_class_bias(pd.concat([dev, test]), {"enabled": True, "class": "neutral", "grid": [-1, 1, 0.1]}, TASK)


def borderline_dev(n: int, seed: int) -> pd.DataFrame:
    """``n`` dev sentences whose "normal" probability is close to the top one, half of them truly normal."""
    rng = np.random.default_rng(seed)
    p_normal = rng.uniform(0.30, 0.45, n)
    p_positive = rng.uniform(0.45, 0.55, n)
    probs = np.column_stack([1 - p_normal - p_positive, p_normal, p_positive])
    true = np.where(rng.random(n) < 0.5, "normal", "positive")
    return predictions(list(true), ["positive"] * n, split="dev", probs=probs)


def test_the_decision_rule_predicts_each_dev_sentence_without_its_own_label():
    """Cross-fitted dev predictions: a dev sentence's prediction comes from a bias tuned on the other
    folds, so changing that sentence's own label never changes it. Tuned in-sample (one fold), it does
    for some sentence: that is how a tuned rule scores above Level 2 on dev whatever it does elsewhere."""
    params = {"enabled": True, "class": "normal", "grid": [-1.0, 1.0, 0.05], "cross_fit_folds": 5, "cross_fit_seed": 3}
    in_sample_params = {**params, "cross_fit_folds": 1}
    changed_in_sample = 0
    for seed in (0, 1):
        dev = borderline_dev(40, seed)
        tuned, rule = tune_class_bias(dev, params, TASK)
        assert rule["dev_predictions"] == "cross-fitted" and len(rule["fold_biases"]) == 5
        in_sample = tune_class_bias(dev, in_sample_params, TASK)[0]
        for i in range(len(dev)):
            flipped = dev.copy()
            flipped.loc[i, "true"] = "negative" if dev.loc[i, "true"] == "normal" else "normal"
            assert tune_class_bias(flipped, params, TASK)[0].loc[i, "predicted"] == tuned.loc[i, "predicted"]
            changed_in_sample += (
                tune_class_bias(flipped, in_sample_params, TASK)[0].loc[i, "predicted"] != in_sample.loc[i, "predicted"]
            )
        # the same seed deals the same folds: the same output
        pd.testing.assert_frame_equal(tune_class_bias(dev, params, TASK)[0], tuned)
    assert changed_in_sample > 0


def test_a_bias_that_helps_everywhere_helps_on_the_cross_fitted_dev_too():
    """Every truly normal sentence has p(normal) just below p(positive), every positive one far below:
    each fold's bias lifts exactly the normals, and the cross-fitted dev predictions are all right."""
    n = 30
    true = ["normal" if i % 2 else "positive" for i in range(n)]
    probs = [[0.1, 0.42, 0.48] if t == "normal" else [0.1, 0.1, 0.8] for t in true]
    dev = predictions(true, ["positive"] * n, split="dev", probs=probs)
    params = {"enabled": True, "class": "normal", "grid": [-1.0, 1.0, 0.1], "cross_fit_folds": 3, "cross_fit_seed": 0}
    tuned, rule = tune_class_bias(dev, params, TASK)
    assert rule["dev_predictions"] == "cross-fitted" and all(b > 0 for b in rule["fold_biases"])
    assert tuned["predicted"].tolist() == true


def test_soft_cross_entropy_on_known_cases():
    import torch

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    hard = torch.tensor([0, 1])
    assert soft_cross_entropy(logits, hard).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, hard).item()
    )
    one_hot = torch.nn.functional.one_hot(hard, 3).float()
    assert soft_cross_entropy(logits, one_hot).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, hard).item()
    )
    # vote shares 2/3, 1/3: the cross-entropy against that distribution
    soft = torch.tensor([[2 / 3, 1 / 3, 0.0], [0.0, 1.0, 0.0]])
    logp = torch.log_softmax(logits, -1)
    expected = -((2 / 3) * logp[0, 0] + (1 / 3) * logp[0, 1] + logp[1, 1]) / 2
    assert soft_cross_entropy(logits, soft).item() == pytest.approx(expected.item())
    w = torch.tensor([1.0, 3.0, 0.5])
    assert soft_cross_entropy(logits, hard, w).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, hard, weight=w).item()
    )


def test_balanced_class_weights():
    data = pd.DataFrame({"label_name": ["positive"] * 6 + ["negative"] * 2 + ["normal"] * 4})
    # n / (k n_c) = 12 / (3 * n_c)
    assert balanced_class_weights(data, NAMES).tolist() == pytest.approx([2.0, 1.0, 12 / 18])


# Level 3's summary as analyse_errors writes it: the shipped sample's 32 test errors, 17 of them negative -> positive
LEVEL3 = {
    "n_errors": {"test": 32, "train": 40},
    "error_rate": {"train": 0.2, "test": 0.3},
    "confusion_pairs": [
        dict(zip(("split", "true", "predicted", "count"), pair, strict=True))
        for pair in (
            ("test", "negative", "positive", 17),
            ("test", "normal", "positive", 9),
            ("test", "positive", "normal", 6),
            ("train", "normal", "positive", 40),
        )
    ],
    "by_agreement": {
        "test": {"[0.50, 0.90)": {"error_rate": 0.25, "n": 20}, "[0.90, 1.01)": {"error_rate": 0.31, "n": 86}}
    },
    "mean_confidence": {"errors": 0.61, "correct": 0.83},
}


def test_level5_reasons_are_this_runs_level3_numbers_not_fixed_claims():
    """The candidates' texts said "most test errors are neutral sentences given a polarity" whatever Level 3 found."""
    assert not any("Level 3" in text for text in PARAMS["level5"]["candidates"].values())
    level2, rule = _level2_and_rule()
    tuned = {"enabled": True, "class": "normal", "bias": 0.3}
    runs = {"decision_rule": rule, "soft_labels": level2, "ensemble": level2}
    _, text, _ = compare_improvements(level2, tuned, PARAMS["level5"], "m", TASK, STATS, LEVEL3, **runs)
    assert (
        "**[fact]** Level 3: of Level 2's 32 test errors, 9 are 'normal' sentences given another class and 6 are "
        "other sentences given 'normal'" in text
    )
    assert (
        "'negative' 17, 'normal' 9, 'positive' 6 (of 32); the most common is 'negative' given 'positive' (17)" in text
    )
    # the agreement bucket with the highest error rate is not the lowest one: the report does not claim it is
    assert "(0.50, 0.90)" not in text and "[0.50, 0.90): 0.250 (n = 20), [0.90, 1.01): 0.310 (n = 86)" in text
    assert "**[possibility]** The error rate is not highest in the lowest-agreement bucket ([0.50, 0.90))" in text
    assert "mean confidence is 0.610 on its errors and 0.830 on its correct predictions (splits train, test" in text
    assert "neutral" not in text and "most test errors" not in text
    # a 2-class task whose rule biases 'negative': the reasons name its classes only
    two = pd.concat(
        [
            predictions(["negative", "positive"] * 3, ["positive", "positive"] * 3, split="dev"),
            predictions(
                ["negative", "positive"] * 3,
                ["negative", "positive", "positive", "positive"] * 1 + ["negative", "positive"],
            ),
        ]
    )
    two_errors = {
        **LEVEL3,
        "confusion_pairs": [{"split": "test", "true": "negative", "predicted": "positive", "count": 1}],
        "n_errors": {"test": 1},
    }
    _, text, _ = compare_improvements(
        two,
        {"enabled": True, "class": "negative", "bias": 0.5},
        PARAMS["level5"],
        "m",
        TWO_CLASS,
        STATS,
        two_errors,
        decision_rule=two,
    )
    assert "of Level 2's 1 test errors, 1 are 'negative' sentences given another class and 0 are other" in text
    assert "normal" not in text and "neutral" not in text


def test_level5_designs_its_candidates_from_dev_not_from_the_test_split_that_judges_them():
    """With Level 3 on [train, test] (conf/base), Level 5's reasons were read on test's errors and the same test
    split then judged the candidates. Level 3 analyses dev by default now, and Level 5 reads dev's analysis."""
    assert "dev" in PARAMS["error_analysis"]["splits"] and "dev" in PARAMS["level2"]["predict_splits"]
    level2, rule = _level2_and_rule()  # Level 2: 2 of 6 dev sentences wrong (normal -> positive), 2 of 6 test ones
    train = predictions(["negative", "normal"], ["negative", "positive"], split="train")
    _, summary, _, report = analyse_errors(pd.concat([train, level2]), PARAMS["error_analysis"], TASK, "m")
    assert summary["n_errors"] == {"dev": 2, "test": 2, "train": 1}
    assert "### test" in report  # Level 3's report keeps test's analysis
    assert set(summary["mean_confidence_by_split"]) == {"train", "dev", "test"}
    tuned = {"enabled": True, "class": "normal", "bias": 0.3}
    runs = {"decision_rule": rule, "ensemble": level2}
    _, text, _ = compare_improvements(level2, tuned, PARAMS["level5"], "m", TASK, STATS, summary, **runs)
    assert (
        "**[fact]** The reasons below rest on Level 3's analysis of the dev split (Level 2's 2 dev errors, "
        "error rate 0.333)." in text
    )
    # dev's errors, not test's (1 'normal' sentence given another class and 1 other sentence given 'normal')
    assert "of Level 2's 2 dev errors, 2 are 'normal' sentences given another class and 0 are other" in text
    assert "on its correct predictions (dev split)" in text
    assert "test errors" not in text
    # Level 3 without dev: the reasons rest on test, and the report says what that means
    no_dev = {**PARAMS["error_analysis"], "splits": ["train", "test"]}
    _, summary, _, _ = analyse_errors(pd.concat([train, level2]), no_dev, TASK, "m")
    _, text, _ = compare_improvements(level2, tuned, PARAMS["level5"], "m", TASK, STATS, summary, **runs)
    assert "rest on Level 3's analysis of the test split (Level 2's 2 test errors" in text
    assert "**[possibility]** Level 3 did not analyse dev (error_analysis.splits), so the reasons were read on " in text


def test_every_number_the_level3_and_level5_reports_state_is_tagged_with_it():
    """Level 3's error counts and mean confidence, Level 5's opening dev macro-F1 and its Kept line were untagged."""
    from tests.pipelines.jrte_sentiment.test_course import untagged

    level2, rule = _level2_and_rule()
    train = predictions(["negative", "normal"], ["negative", "positive"], split="train")
    _, summary, _, report = analyse_errors(pd.concat([train, level2]), PARAMS["error_analysis"], TASK, "m")
    assert untagged(report) == []
    assert "- **[fact]** test: 2 errors, error rate 0.333." in report
    assert "- **[fact]** dev: mean confidence 0." in report
    tuned = {"enabled": True, "class": "normal", "bias": 0.3}
    for runs in ({"decision_rule": rule}, {"decision_rule": level2}):  # kept, and none kept
        _, text, _ = compare_improvements(level2, tuned, PARAMS["level5"], "m", TASK, STATS, summary, **runs)
        assert untagged(text) == []
        assert "- **[fact]** Level 2's dev macro-F1 is " in text
    assert "**Kept: none**\n\n- **[fact]** No candidate's dev macro-F1 is above Level 2's " in text


def _level2_and_rule() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Level 2 and a decision rule on 6 dev and 6 test sentences: the rule is right on every dev sentence."""
    level2 = pd.concat(
        [
            predictions(["normal", "positive", "negative"] * 2, ["positive", "positive", "negative"] * 2, split="dev"),
            predictions(TRUE, PRED),
        ]
    )
    rule = pd.concat(
        [
            predictions(["normal", "positive", "negative"] * 2, ["normal", "positive", "negative"] * 2, split="dev"),
            predictions(TRUE, ["positive", "positive", "positive", "normal", "normal", "negative"]),
        ]
    )
    return level2, rule


def _compare_with_the_rule(statistics: dict, **others: pd.DataFrame) -> tuple:
    level2, rule = _level2_and_rule()
    tuned = {"enabled": True, "class": "normal", "bias": 0.3}
    return compare_improvements(
        level2, tuned, PARAMS["level5"], "tiny model", TASK, statistics, LEVEL3, decision_rule=rule, **others
    )


def test_compare_improvements_picks_by_dev_and_measures_against_level2_on_test():
    level2, rule = _level2_and_rule()
    metrics, text, fig = _compare_with_the_rule(STATS, soft_labels=level2.iloc[0:0])
    assert set(metrics["candidates"]) == {"decision_rule"}  # the soft-label run is switched off
    assert metrics["chosen_by_dev"] == "decision_rule" and metrics["candidates"]["decision_rule"]["dev_macro_f1"] == 1.0
    assert metrics["candidates"]["decision_rule"]["vs_level2"]["accuracy"]["difference"] == pytest.approx(2 / 6)
    assert "**[fact]** The bias chosen on dev for 'normal' is +0.30 (applied to test)." in text
    assert "**[possibility]** Its dev macro-F1 is scored on the sentences the bias was tuned on" in text
    assert "(too few dev sentences to cross-fit)" not in text  # the rule above names no folds: switched off
    assert "(cross-fitting is switched off)" in text
    cross_fitted = {
        "enabled": True,
        "class": "normal",
        "bias": 0.3,
        "dev_macro_f1": 0.9,
        "dev_predictions": "cross-fitted",
        "cross_fit_folds": 2,
        "fold_biases": [0.2, 0.4],
    }
    text_cf = compare_improvements(
        level2, cross_fitted, PARAMS["level5"], "tiny model", TASK, STATS, LEVEL3, decision_rule=rule
    )[1]
    assert (
        "**[fact]** Its dev predictions are cross-fitted: each of 2 dev folds is predicted with the bias tuned "
        "on the other folds (+0.20, +0.40)"
        in text_cf
        and "(tuned and scored on all of dev: 0.9000)" in text_cf
    )
    # the dev pick with its paired dev interval: on 6 dev sentences it is a point estimate, not a gain
    dev = metrics["candidates"]["decision_rule"]["dev_vs_level2"]["macro_f1"]
    assert dev["n"] == 6 and dev["difference"] == pytest.approx(1.0 - metrics["level2_dev_macro_f1"])
    assert f"(95 % paired interval {dev['ci_low']:+.4f} to {dev['ci_high']:+.4f}, n = 6 dev sentences)" in text
    assert "**Kept: decision_rule**" in text
    assert "- **[fact]** decision_rule has the highest dev macro-F1, 1.0000 against Level 2's" in text
    pick = metrics["pick_on_dev"]  # the best of the candidates present (1 here: the soft-label run is off)
    assert pick["k"] == 1 and pick["confidence"] == pytest.approx(0.95) and pick["ci_low"] == dev["ci_low"]
    assert f"The only candidate run: on dev it is {pick['verdict']} against Level 2" in text and "best of 1" not in text

    assert "test n = 6" in fig.axes[0].get_title() and fig.axes[0].get_title().startswith("jrte_sentiment · Level 5")


def test_the_dev_pick_is_read_with_a_bonferroni_interval_over_the_candidates():
    """The best of k candidates on dev clears a single 95 % interval more often than 1 in 20: the kept one's
    dev difference gets the interval at 1 - 0.05 / k, wider than its single-comparison one."""
    rng = np.random.default_rng(3)
    true = rng.choice(NAMES, size=200)
    level2 = pd.concat(
        [
            predictions(true, np.where(rng.random(200) < 0.7, true, rng.choice(NAMES, size=200)), split="dev"),
            predictions(TRUE, PRED),
        ]
    )
    runs = {}
    for key in ("decision_rule", "soft_labels", "weighted_soft_labels"):
        dev = np.where(rng.random(200) < 0.75, true, rng.choice(NAMES, size=200))
        runs[key] = pd.concat([predictions(true, dev, split="dev"), predictions(TRUE, PRED)])
    metrics, text, _ = compare_improvements(
        level2, {"enabled": True, "class": "normal", "bias": 0.0}, PARAMS["level5"], "m", TASK, STATS, LEVEL3, **runs
    )
    kept, pick = metrics["chosen_by_dev"], metrics["pick_on_dev"]
    single = metrics["candidates"][kept]["dev_vs_level2"]["macro_f1"]
    assert pick["k"] == 3 and pick["confidence"] == pytest.approx(1 - 0.05 / 3)
    assert pick["difference"] == pytest.approx(single["difference"])
    assert pick["ci_low"] < single["ci_low"] and pick["ci_high"] > single["ci_high"]
    assert "Picked as the best of 3 on the same dev sentences" in text


def test_level5_labels_its_intervals_with_the_configured_confidence():
    metrics, text, fig = _compare_with_the_rule({**STATS, "confidence": 0.9})
    dev = metrics["candidates"]["decision_rule"]["dev_vs_level2"]["macro_f1"]
    assert f"(90 % paired interval {dev['ci_low']:+.4f} to {dev['ci_high']:+.4f}, n = 6 dev sentences)" in text
    assert "95 %" not in text
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "difference, 90 % paired interval"


def test_the_level_table_labels_its_intervals_and_keeps_signed_differences_as_written():
    l1, l2 = predictions(TRUE, ["negative"] * 6), predictions(TRUE, PRED)
    m1, m2 = (classification_metrics(p, TASK, {**STATS, "confidence": 0.9}) for p in (l1, l2))
    m1.update(level="Level 1", model="a", enabled=True)
    m2.update(level="Level 2", model="b", enabled=True)
    _, text, _ = compare_levels(l1, l2, l2.iloc[0:0], m1, m2, {"enabled": False}, TASK, {**STATS, "confidence": 0.9})
    assert "| accuracy 90 % interval " in text and "| 90 % paired interval " in text and "95 %" not in text
    # accuracy 1/6 -> 4/6: the difference is written "+0.5000", not re-parsed by tabulate into "0.5"
    assert "| level2_vs_level1 | accuracy  | +0.5000      |" in text


def test_compare_improvements_refuses_a_candidate_without_a_description():
    level2 = predictions(TRUE, PRED)
    with pytest.raises(ValueError, match=r"\['seeds'\] have no description in level5.candidates"):
        compare_improvements(level2, {}, PARAMS["level5"], "m", TASK, STATS, LEVEL3, seeds=level2)


def _probs_run(rows):
    """dev and test predictions of one run from per-sentence class probabilities (negative, normal, positive)."""
    probs = np.asarray(rows, dtype=float)
    tables = []
    for split in ("dev", "test"):
        pred = [NAMES[i] for i in probs.argmax(1)]
        tables.append(predictions(TRUE, pred, split=split, confidence=probs.max(1), probs=probs))
    return pd.concat(tables, ignore_index=True)


ENSEMBLE = {"enabled": True, "members": ["level2", "soft_labels", "weighted_soft_labels"]}


def test_the_ensemble_averages_the_members_probabilities():
    # sentence 0: two members lean positive a little, one is sure of negative -> the mean says negative
    a = _probs_run([[0.3, 0.3, 0.4]] + [[0.1, 0.1, 0.8]] * 5)
    b = _probs_run([[0.3, 0.3, 0.4]] + [[0.1, 0.8, 0.1]] * 5)
    c = _probs_run([[0.9, 0.05, 0.05]] + [[0.1, 0.8, 0.1]] * 5)
    level2 = pd.concat([a, predictions(TRUE, PRED, split="train", probs=[[1, 0, 0]] * 6)], ignore_index=True)
    out = average_runs(ENSEMBLE, TASK, level2=level2, soft_labels=b, weighted_soft_labels=c)
    assert sorted(set(out["split"])) == ["dev", "test"]  # only the splits every member predicted
    assert len(out) == 12
    assert out["p_negative"].iloc[0] == pytest.approx(0.5) and out["predicted"].iloc[0] == "negative"
    assert out["predicted"].iloc[1] == "normal" and out["confidence"].iloc[1] == pytest.approx(0.5667, abs=1e-4)
    assert np.allclose(out[[f"p_{n}" for n in NAMES]].sum(axis=1), 1.0)
    # a member switched off is left out: the mean of the other two
    two = average_runs(ENSEMBLE, TASK, level2=level2, soft_labels=b, weighted_soft_labels=c.iloc[0:0])
    assert two["p_positive"].iloc[0] == pytest.approx(0.4) and two["predicted"].iloc[0] == "positive"
    # fewer than two members, or switched off: no ensemble
    assert average_runs(ENSEMBLE, TASK, level2=level2, soft_labels=b.iloc[0:0], weighted_soft_labels=c.iloc[0:0]).empty
    assert average_runs(
        {**ENSEMBLE, "enabled": False}, TASK, level2=level2, soft_labels=b, weighted_soft_labels=c
    ).empty


def test_the_ensemble_matches_the_members_sentences_by_split_and_id_not_by_row_order():
    """level2.predict_splits [test, dev, train] writes test first; the other runs write dev first: the ensemble
    refused them after every member had trained, although they predict the same sentences."""
    a = _probs_run([[0.3, 0.3, 0.4]] + [[0.1, 0.1, 0.8]] * 5)
    b = _probs_run([[0.3, 0.3, 0.4]] + [[0.1, 0.8, 0.1]] * 5)
    c = _probs_run([[0.9, 0.05, 0.05]] + [[0.1, 0.8, 0.1]] * 5)
    train = predictions(TRUE, PRED, split="train", probs=[[1, 0, 0]] * 6)
    in_order = average_runs(ENSEMBLE, TASK, level2=pd.concat([a, train]), soft_labels=b, weighted_soft_labels=c)
    test_first = pd.concat([a[a["split"] == "test"], a[a["split"] == "dev"], train], ignore_index=True)
    for level2, soft in ((test_first, b), (a, b.iloc[::-1].reset_index(drop=True))):
        out = average_runs(ENSEMBLE, TASK, level2=level2, soft_labels=soft, weighted_soft_labels=c)
        assert len(out) == 12
        merged = out.merge(in_order, on=["split", "id"], suffixes=("", "_in_order"))
        assert len(merged) == 12 and (merged["predicted"] == merged["predicted_in_order"]).all()
        for name in NAMES:
            assert np.allclose(merged[f"p_{name}"], merged[f"p_{name}_in_order"])
        assert (merged["true"] == merged["true_in_order"]).all()
    first = out[(out["split"] == "dev") & (out["id"] == "dev0")]
    assert first["p_negative"].item() == pytest.approx(0.5) and first["predicted"].item() == "negative"


def test_the_ensemble_refuses_members_of_other_sentences_or_unknown_runs():
    a = _probs_run([[0.2, 0.3, 0.5]] * 6)
    fewer = a.iloc[1:]
    with pytest.raises(
        ValueError,
        match=r"the predictions of 'soft_labels' and 'level2' are not of the same sentences on \['dev', 'test'\]: "
        r"'soft_labels' lacks 1 sentence \(e\.g\. \('dev', 'dev0'\)\)\. The runs must predict the same splits of one split_pn",
    ):
        average_runs(ENSEMBLE, TASK, level2=a, soft_labels=fewer, weighted_soft_labels=a)
    other = a.assign(id=a["id"].replace({"test5": "test9"}))
    with pytest.raises(
        ValueError,
        match=r"lacks 1 sentence \(e\.g\. \('test', 'test5'\)\); has 1 sentence that 'level2' lacks \(e\.g\. \('test', 'test9'\)\)",
    ):
        average_runs(ENSEMBLE, TASK, level2=a, soft_labels=other, weighted_soft_labels=a)
    twice = pd.concat([a, a.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"'weighted_soft_labels' repeats 1 sentence \(e\.g\. \('dev', 'dev0'\)\)"):
        average_runs(ENSEMBLE, TASK, level2=a, soft_labels=a, weighted_soft_labels=twice)
    with pytest.raises(ValueError, match=r"members \['seeds'\] are not runs"):
        average_runs({"enabled": True, "members": ["level2", "seeds"]}, TASK, level2=a, soft_labels=a)


def test_a_run_switched_off_draws_its_whole_title_inside_the_figure():
    """The placeholder figure of a run with enabled: false: its title was 850 px wide on a 500 px figure."""
    metrics, fig = evaluate(pd.DataFrame(), PARAMS["baseline"], TASK, STATS)
    assert metrics["enabled"] is False
    fig.canvas.draw()
    title = fig.axes[0].title
    box = title.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width
    assert PARAMS["baseline"]["model"].split()[-1] in title.get_text()
