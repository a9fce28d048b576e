"""jrte_sentiment end to end: on the shipped sample, and a bounded run on the real corpus."""

import json

import pandas as pd
import pytest

from qeu_kedro.validation import RawDataError
from tests.conftest import run_kedro

# Bounded training for tests: a few steps of one epoch per run (both runs of Level 4).
BOUNDED = {"training": {"epochs": 1, "max_steps": 6, "progress_bar": False}}
REPORTS = [
    "level1_report.txt",
    "level1_metrics.json",
    "level1_confusion_matrix.png",
    "level2_report.txt",
    "level2_metrics.json",
    "level2_confusion_matrix.png",
    "comparison.md",
    "comparison_metrics.json",
    "comparison_confusion_matrices.png",
    "level3_errors.csv",
    "level3_summary.json",
    "level3_report.md",
    "level3_error_rates.png",
    "level4_loss_curves.png",
    "level4_summary.json",
    "level2_loss_history.csv",
    "no_countermeasures_loss_history.csv",
]


def check_outputs(out, n_test):
    for name in REPORTS:
        assert (out / name).stat().st_size > 0, name
    for name in ("level1", "level2", "no_countermeasures"):
        metrics = json.loads((out / f"{name}_metrics.json").read_text())
        assert metrics["n"] == n_test
        assert 0 <= metrics["macro_f1"] <= 1 and 0 <= metrics["accuracy"] <= 1
        assert sum(map(sum, metrics["confusion_matrix"])) == n_test
        assert "negative" in (out / f"{name}_report.txt").read_text()
    comparison = json.loads((out / "comparison_metrics.json").read_text())
    assert set(comparison) == {"level1", "level2", "level2_without_countermeasures"}
    errors = pd.read_csv(out / "level3_errors.csv")
    assert list(errors.columns) == ["split", "id", "text", "true", "predicted", "confidence", "length", "agreement"]
    assert (errors["true"] != errors["predicted"]).all()
    assert set(errors["split"]) <= {"train", "test"}
    summary = json.loads((out / "level3_summary.json").read_text())
    assert sum(p["count"] for p in summary["confusion_pairs"]) == len(errors)
    return comparison


@pytest.mark.slow
def test_sample_run_end_to_end(project):
    run_kedro(project, pipeline_names=["jrte_sentiment"], params={"jrte_sentiment": BOUNDED})
    out = project / "data" / "08_reporting" / "jrte_sentiment"
    sample = pd.read_csv(project / "data" / "01_raw" / "pn.tsv", sep="\t", header=None)
    comparison = check_outputs(out, n_test=int((sample[4] == "test").sum()))
    # Level 1 needs no training: zero-shot against label descriptions beats the majority class
    majority = (sample[sample[4] == "test"][1] == 1).mean()
    assert comparison["level1"]["accuracy"] > majority + 0.1, comparison
    predictions = pd.read_csv(project / "data" / "07_model_output" / "jrte_sentiment" / "level2_predictions.csv")
    assert predictions.groupby("split").size().to_dict() == sample[4].value_counts().to_dict()
    assert predictions["confidence"].between(1 / 3, 1).all()
    history = pd.read_csv(out / "level2_loss_history.csv")
    assert len(history) == 1 and history["train_loss"].notna().all() and history["eval_cross_entropy"].notna().all()
    assert (project / "data" / "06_models" / "jrte_sentiment" / "level2_classifier" / "config.json").exists()


def test_bad_input_writes_nothing(project):
    path = project / "data" / "01_raw" / "pn.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    fields = lines[7].split("\t")
    fields[3] = '{"1": 2'
    lines[7] = "\t".join(fields)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RawDataError, match=r"dataset 'pn', column 'judges', row 7"):
        run_kedro(project, pipeline_names=["jrte_sentiment"])
    assert not (project / "data" / "08_reporting").exists() or not any((project / "data" / "08_reporting").rglob("*.*"))


@pytest.mark.slow
@pytest.mark.real_data
def test_bounded_real_run(project, shared_data):
    caps = {"split": {"seed": 42, "max_rows": {"train": 160, "dev": 80, "test": 120}}}
    run_kedro(project, env="jrte", pipeline_names=["jrte_sentiment"], params={"jrte_sentiment": {**BOUNDED, **caps}})
    out = project / "data" / "08_reporting" / "jrte" / "jrte_sentiment"
    assert not (project / "data" / "08_reporting" / "jrte_sentiment").exists()  # real results kept apart
    comparison = check_outputs(out, n_test=120)
    # zero-shot on real reviews: better than chance over three classes
    assert comparison["level1"]["accuracy"] > 0.4, comparison
