"""The course report: every level's report in reading order with its figure, after an overview of the numbers."""

import pytest

from qeu_kedro.pipelines.jrte_sentiment.course import SECTIONS, course_inputs, course_report, demote, training_table
from qeu_kedro.pipelines.jrte_sentiment.pipeline import create_pipeline

TASK = {"corpus": "hand-made"}


def _level(level, model, acc, f1, n=40, confidence=0.95):
    return {
        "confidence": confidence,
        "level": level,
        "model": model,
        "n": n,
        "accuracy": acc,
        "accuracy_ci": [acc - 0.1, acc + 0.1],
        "macro_f1": f1,
        "macro_f1_ci": [f1 - 0.1, f1 + 0.1],
    }


COMPARISON = {
    "levels": {
        "level1": _level("Level 1", "zero-shot", 0.6, 0.5),
        "level2": _level("Level 2", "fine-tuned", 0.8, 0.75),
    }
}
ERRORS = {
    "n_errors": {"test": 8, "train": 20},
    "error_rate": {"test": 0.2, "train": 0.1},
    "confusion_pairs": [
        {"split": "test", "true": "normal", "predicted": "positive", "count": 5},
        {"split": "test", "true": "negative", "predicted": "normal", "count": 3},
        {"split": "train", "true": "negative", "predicted": "positive", "count": 20},
    ],
}
IMPROVEMENTS = {
    "candidates": {"decision_rule": {"test": _level("x", "x", 0.85, 0.8), "dev_macro_f1": 0.81}},
    "chosen_by_dev": "decision_rule",
    "level2_dev_macro_f1": 0.78,
}
HISTORY = [
    {"epoch": 1.0, "eval_cross_entropy": 0.9},
    {"epoch": 2.0, "eval_cross_entropy": 0.7},
    {"epoch": 3.0, "eval_cross_entropy": 0.8},
]


def _parts(tmp="data/08_reporting/jrte_sentiment"):
    parts = {
        "level2_training": {"enabled": True, "history": HISTORY, "epochs_run": 3},
        "baseline_training": {"enabled": False, "history": []},
        "soft_labels_training": {"enabled": True, "history": HISTORY[:1], "epochs_run": 1},
        "weighted_soft_labels_training": {"enabled": False, "history": []},
        "seed_ensemble_training": {
            "enabled": True,
            "members": {"seed_1": {"history": HISTORY[:2], "epochs_run": 2, "restored_best": True}},
        },
    }
    for section, _, figure in SECTIONS:
        parts[f"{section}_text"] = f"# {section} report\n\n## Details\n\n```\n# not a heading\n```\n"
        parts[f"{section}_figure"] = f"{tmp}/{figure.replace('.', '_')}.png"
    return parts


def _table(text: str, heading: str) -> list[list[str]]:
    """The cells of the markdown table under ``heading`` (its rule row left out)."""
    lines = text.split(heading + "\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [[cell.strip() for cell in line.strip("|").split("|")] for i, line in enumerate(lines) if i != 1]


def test_the_course_report_has_the_overview_then_every_section_with_its_figure():
    text = course_report(TASK, COMPARISON, ERRORS, {"countermeasures": ["early_stopping"]}, IMPROVEMENTS, **_parts())
    assert text.startswith("# JRTE `pn` sentiment, Levels 1-5 (hand-made)\n")
    scores = _table(text, "### Test scores of every model")
    assert scores[0] == ["step", "model", "accuracy (95 % interval)", "macro-F1 (95 % interval)", "n"]
    assert [row[0] for row in scores[1:]] == ["Level 1", "Level 2", "Level 5: decision rule"]
    assert scores[1][2:] == ["0.6000 (0.5000 to 0.7000)", "0.5000 (0.4000 to 0.6000)", "40"]
    # the runs: the lowest validation loss and its epoch; a run switched off is said to be
    assert _table(text, "### Fine-tuning runs")[1:] == [
        ["level2", "3", "0.7000", "2", "epoch 3 (the last)"],
        ["baseline", "switched off", "", "", ""],
        ["soft_labels", "1", "0.9000", "1", "epoch 1 (the last)"],
        ["weighted_soft_labels", "switched off", "", "", ""],
        ["seed_ensemble (seed 1)", "2", "0.7000", "2", "epoch 2 (restored)"],
    ]
    parts = {**_parts(), "seed_ensemble_training": {"enabled": False, "members": {}}}
    off = course_report(TASK, COMPARISON, ERRORS, {"countermeasures": []}, IMPROVEMENTS, **parts)
    assert _table(off, "### Fine-tuning runs")[-1] == ["seed_ensemble", "switched off", "", "", ""]
    assert (
        "- **[fact]** Level 3: Level 2 misclassified 8 test sentences (error rate 0.200); most often normal read as "
        "positive (5)." in text
    )
    assert "- **[fact]** Level 4: the Level 2 run uses early stopping against over-fitting." in text
    assert "- **[fact]** Level 5: kept decision rule (the highest dev macro-F1, 0.8100 against Level 2's 0.7800" in text
    # the pick's dev verdict: read as the best of k when there were several, as it is when there was one, and
    # from the single comparison in metrics written before pick_on_dev
    for pick, single, words in (
        ({"k": 3, "verdict": "better"}, None, "on dev against Level 2, read as the best of 3: better"),
        ({"k": 1, "verdict": "no evidence"}, None, "on dev against Level 2: no evidence)"),
        (None, {"macro_f1": {"verdict": "worse"}}, "on dev against Level 2: worse)"),
    ):
        improvements = {**IMPROVEMENTS, "pick_on_dev": pick}
        if single:
            improvements["candidates"] = {
                "decision_rule": {**IMPROVEMENTS["candidates"]["decision_rule"], "dev_vs_level2": single}
            }
        report = course_report(TASK, COMPARISON, ERRORS, {"countermeasures": []}, improvements, **_parts())
        assert words in report and "best of 1" not in report
    # sections in reading order, each demoted one level and followed by its figure's file name
    positions = [text.index(f"## {section} report") for section, _, _ in SECTIONS]
    assert positions == sorted(positions)
    assert "### Details" in text and "# not a heading" in text and "## not a heading" not in text
    assert "![level4_loss_curves](level4_loss_curves.png)" in text
    assert "![level1.confusion_matrix](level1_confusion_matrix.png)" in text


def test_the_score_table_labels_its_intervals_with_their_confidence():
    levels = {
        k: _level(v["level"], v["model"], v["accuracy"], v["macro_f1"], confidence=0.9)
        for k, v in COMPARISON["levels"].items()
    }
    text = course_report(TASK, {"levels": levels}, ERRORS, {"countermeasures": []}, IMPROVEMENTS, **_parts())
    header = _table(text, "### Test scores of every model")[0]
    assert header == ["step", "model", "accuracy (90 % interval)", "macro-F1 (90 % interval)", "n"]
    assert "95 %" not in text


def test_without_candidates_or_countermeasures_the_overview_says_so():
    improvements = {"candidates": {}, "chosen_by_dev": None, "level2_dev_macro_f1": 0.78}
    text = course_report(TASK, COMPARISON, ERRORS, {"countermeasures": []}, improvements, **_parts())
    assert "- **[fact]** Level 4: the Level 2 run uses none against over-fitting." in text
    assert "- **[fact]** Level 5: every candidate is switched off." in text


def untagged(markdown: str) -> list[str]:
    """The lines of a report that state a number outside a table or a heading and carry no [fact] /
    [possibility] tag."""
    return [
        line
        for line in markdown.splitlines()
        if any(ch.isdigit() for ch in line)
        and not line.startswith(("|", "#", "![", "- **[fact]** ", "- **[possibility]** "))
    ]


def test_every_number_the_overview_states_is_tagged_with_it():
    """The overview's Level 3 and Level 5 lines stated numbers (errors, error rate, dev macro-F1) untagged."""
    parts = {**_parts(), **{f"{section}_text": "" for section, _, _ in SECTIONS}}
    for improvements in (
        IMPROVEMENTS,
        {**IMPROVEMENTS, "chosen_by_dev": None},
        {"candidates": {}, "chosen_by_dev": None, "level2_dev_macro_f1": 0.78},
    ):
        text = course_report(TASK, COMPARISON, ERRORS, {"countermeasures": ["dropout"]}, improvements, **parts)
        overview = text.split("### Fine-tuning runs", 1)[1]
        assert untagged(overview) == []
    assert (
        "- **[fact]** Level 5: no candidate kept (none has a dev macro-F1 above Level 2's 0.7800; the highest, "
        "decision rule's, is 0.8100)."
        in course_report(TASK, COMPARISON, ERRORS, {}, {**IMPROVEMENTS, "chosen_by_dev": None}, **parts)
    )


def test_a_missing_part_is_named():
    parts = _parts()
    del parts["level3_figure"]
    with pytest.raises(TypeError, match=r"missing \['level3_figure'\]"):
        course_report(TASK, COMPARISON, ERRORS, {}, IMPROVEMENTS, **parts)


def test_demote_leaves_code_blocks_alone():
    assert demote("# a\n```\n# b\n```\n## c") == "## a\n```\n# b\n```\n### c"


def test_the_course_report_reads_every_report_figure_and_summary_so_the_pipeline_ends_in_it():
    pipeline = create_pipeline()
    node = next(n for n in pipeline.nodes if n.name == "jrte_sentiment.write_course_report")
    assert set(node.inputs) == {
        f"jrte_sentiment.{d}" for d in course_inputs().values() if not d.startswith("params:")
    } | {"params:jrte_sentiment.task"}
    # kedro-viz draws a closed box's final outputs beside it: the course report, the table of errors and the
    # seed ensemble's members' predictions (kept for scoring or pooling them again without retraining)
    assert pipeline.outputs() == {
        "jrte_sentiment.report",
        "jrte_sentiment.level3_errors",
        "jrte_sentiment.seed_ensemble.member_predictions",
    }


def test_training_table_says_which_weights_each_run_kept():
    history = [
        {"epoch": 1.0, "train_loss": 0.9, "eval_cross_entropy": 0.7},
        {"epoch": 2.0, "train_loss": 0.6, "eval_cross_entropy": 0.5},
        {"epoch": 3.0, "train_loss": 0.4, "eval_cross_entropy": 0.6},
    ]
    table = training_table(
        {
            "level2": {"history": history, "epochs_run": 3, "restored_best": True, "averaged_epochs": None},
            "baseline": {"history": history, "epochs_run": 3, "restored_best": False, "averaged_epochs": None},
            "averaged": {"history": history, "epochs_run": 3, "restored_best": False, "averaged_epochs": [2.0, 3.0]},
            "soft_labels": {"enabled": False, "history": []},
        }
    ).set_index("run")
    assert table["weights kept"].to_dict() == {
        "level2": "epoch 2 (restored)",
        "baseline": "epoch 3 (the last)",
        "averaged": "mean of epochs 2, 3",
        "soft_labels": "",
    }
    assert table.loc["averaged", "at epoch"] == "2" and table.loc["soft_labels", "epochs run"] == "switched off"
