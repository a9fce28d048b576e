"""jrte_sentiment end to end: on the shipped sample, on a hand-made 2-class corpus through an environment,
and a bounded run on the real corpus."""

import json
import pathlib
import re

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from qeu_kedro.pipelines.jrte_sentiment import create_pipeline
from qeu_kedro.validation import RawDataError
from tests.conftest import run_kedro

# Bounded training for tests: a few steps of one epoch per run.
BOUNDED = {
    "training": {"trainer": {"num_train_epochs": 1, "max_steps": 6, "disable_tqdm": True}},
    "baseline": {"trainer": {"num_train_epochs": 1}},
    "level5": {"seed_ensemble": {"seeds": [1]}},  # one extra seed: the candidate runs, at the cost of one run
}
RUNS = ("level1", "level2", "baseline", "soft_labels", "weighted_soft_labels")
REPORTS = [
    "report.md",
    "comparison.md",
    "comparison_metrics.json",
    "comparison_confusion_matrices.png",
    "level3_errors.csv",
    "level3_summary.json",
    "level3_report.md",
    "level3_error_rates.png",
    "level4_loss_curves.png",
    "level4_summary.json",
    "level4_report.md",
    "level5_metrics.json",
    "level5_report.md",
    "level5_comparison.png",
    "level2_training_metrics.json",
    "baseline_training_metrics.json",
    "decision_rule_training_metrics.json",
    "seed_ensemble_training_metrics.json",
] + [f"{run}_{what}" for run in RUNS for what in ("report.md", "metrics.json", "confusion_matrix.png")]


def test_every_dataset_is_namespaced_and_every_node_tagged():
    pipeline = create_pipeline()
    assert all(
        name.startswith("jrte_sentiment.") or name.startswith("params:jrte_sentiment.") for name in pipeline.datasets()
    )
    assert all("jrte_sentiment" in node.tags for node in pipeline.nodes)
    namespaces = {node.namespace for node in pipeline.nodes}
    assert {
        "jrte_sentiment",
        "jrte_sentiment.level1",  # Level 1 too: its own MLflow run, its numbers under the runs' names
        "jrte_sentiment.level2",
        "jrte_sentiment.baseline",
        "jrte_sentiment.soft_labels",
        "jrte_sentiment.weighted_soft_labels",
    } == namespaces


def check_outputs(out, n_test, names=("negative", "normal", "positive")):
    for name in REPORTS:
        assert (out / name).stat().st_size > 0, name
    model_output = pathlib.Path(str(out).replace("08_reporting", "07_model_output"))
    for name in ("level1", "level2", "baseline"):
        metrics = json.loads((out / f"{name}_metrics.json").read_text())
        assert metrics["n"] == n_test and metrics["labels"] == list(names)
        # the metrics are those of the predictions written beside them, computed here by scikit-learn
        written = pd.read_csv(model_output / f"{name}_predictions.csv")
        test = written[written["split"] == "test"]
        assert len(test) == n_test
        assert metrics["accuracy"] == pytest.approx(accuracy_score(test["true"], test["predicted"]))
        assert metrics["macro_f1"] == pytest.approx(
            f1_score(test["true"], test["predicted"], labels=list(names), average="macro", zero_division=0)
        )
        assert (
            metrics["confusion_matrix"]
            == confusion_matrix(test["true"], test["predicted"], labels=list(names)).tolist()
        )
        report = (out / f"{name}_report.md").read_text()
        assert all(n in report for n in names) and "**[fact]**" in report and "**[possibility]**" in report
    assert "## Compared with Level 1" in (out / "level2_report.md").read_text()
    comparison = json.loads((out / "comparison_metrics.json").read_text())
    assert set(comparison["levels"]) == {"level1", "level2", "baseline"}
    assert set(comparison["paired"]) == {"level2_vs_level1", "baseline_vs_level2"}
    errors = pd.read_csv(out / "level3_errors.csv")
    assert list(errors.columns) == ["split", "id", "text", "true", "predicted", "confidence", "length", "agreement"]
    assert (errors["true"] != errors["predicted"]).all()
    summary = json.loads((out / "level3_summary.json").read_text())
    assert sum(p["count"] for p in summary["confusion_pairs"]) == len(errors)
    history = json.loads((out / "level2_training_metrics.json").read_text())["history"]
    assert len(history) == 1 and {"epoch", "train_loss", "eval_cross_entropy"} <= set(history[0])
    level5 = json.loads((out / "level5_metrics.json").read_text())
    assert set(level5["candidates"]) == {
        "decision_rule",
        "soft_labels",
        "weighted_soft_labels",
        "ensemble",
        "seed_ensemble",
    }
    seeds = json.loads((out / "seed_ensemble_training_metrics.json").read_text())
    assert seeds["seeds"] == [1] and seeds["members"]["seed_1"]["seed"] == 1
    members = pd.read_csv(model_output / "seed_ensemble_member_predictions.csv")
    assert set(members["member"]) == {"seed_1"} and set(members["split"]) == {"dev", "test"}
    assert "Source: L. Prechelt" in (out / "level4_report.md").read_text()
    # the course report: every level's report, each with its figure, linked beside it
    course = (out / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", course)
    assert len(links) == 9 and all((out / link).is_file() for link in links), links
    assert "## Overview" in course and "## Level 4: over-fitting" in course
    return comparison


@pytest.mark.slow
def test_sample_run_end_to_end(project):
    run_kedro(project, pipeline_names=["jrte_sentiment"], params={"jrte_sentiment": BOUNDED})
    out = project / "data" / "08_reporting" / "jrte_sentiment"
    sample = pd.read_csv(project / "data" / "01_raw" / "pn.tsv", sep="\t", header=None)
    comparison = check_outputs(out, n_test=int((sample[4] == "test").sum()))
    # Level 1 needs no training: zero-shot against label descriptions beats the majority class
    majority = sample[sample[4] == "test"][1].value_counts(normalize=True).max()
    assert comparison["levels"]["level1"]["accuracy"] > majority + 0.1, comparison
    predictions = pd.read_csv(project / "data" / "07_model_output" / "jrte_sentiment" / "level2_predictions.csv")
    assert predictions.groupby("split").size().to_dict() == sample[4].value_counts().to_dict()
    assert predictions["confidence"].between(1 / 3, 1).all()
    assert (project / "data" / "06_models" / "jrte_sentiment" / "level2_classifier" / "config.json").exists()


TWO_CLASS_LINES = [
    ("良い部屋でした。", 1),
    ("最高の朝食でした。", 1),
    ("とても親切でした。", 1),
    ("また泊まりたいです。", 1),
    ("汚い部屋でした。", 0),
    ("最悪の朝食でした。", 0),
    ("不親切でした。", 0),
    ("二度と泊まりません。", 0),
]


@pytest.mark.slow
def test_a_two_class_corpus_runs_through_an_environment_alone(project):
    """Labels 0/1 (negative/positive), no unsure class, the baseline and the soft-label runs switched off."""
    rows = []
    for split, copies in (("train", 3), ("dev", 1), ("test", 2)):
        for k in range(copies):
            rows += [
                f't{split}{k}{i}\t{label}\t{text}\t{{"{label}": 3}}\t{split}'
                for i, (text, label) in enumerate(TWO_CLASS_LINES)
            ]
    (project / "data" / "01_raw" / "two_class.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    env = project / "conf" / "two_class"
    env.mkdir()
    (env / "catalog_jrte_sentiment.yml").write_text(
        (project / "conf" / "base" / "catalog_jrte_sentiment.yml")
        .read_text()
        .split("jrte_sentiment.pn_checked:")[0]
        .replace("data/01_raw/pn.tsv", "data/01_raw/two_class.tsv"),
        encoding="utf-8",
    )
    (env / "parameters_jrte_sentiment.yml").write_text(
        """
jrte_sentiment:
  task:
    corpus: hand-made 2-class
    classes:
      - {value: 0, name: negative}
      - {value: 1, name: positive}
  level1:
    mapping:
      unsure_class: null
  baseline:
    enabled: false
  soft_labels:
    enabled: false
  weighted_soft_labels:
    enabled: false
  level5:
    decision_rule:
      class: negative
""",
        encoding="utf-8",
    )
    run_kedro(project, env="two_class", pipeline_names=["jrte_sentiment"], params={"jrte_sentiment": BOUNDED})
    out = project / "data" / "08_reporting" / "jrte_sentiment"
    for name in ("level1", "level2"):
        metrics = json.loads((out / f"{name}_metrics.json").read_text())
        assert metrics["labels"] == ["negative", "positive"] and metrics["n"] == 16
        assert len(metrics["confusion_matrix"]) == 2 and set(metrics["per_class"]) == {"negative", "positive"}
        f1 = [metrics["per_class"][c]["f1-score"] for c in ("negative", "positive")]
        assert metrics["macro_f1"] == pytest.approx(sum(f1) / 2)  # averaged over the two classes only
    assert "Switched off in the parameters" in (out / "baseline_report.md").read_text()
    comparison = json.loads((out / "comparison_metrics.json").read_text())
    assert set(comparison["levels"]) == {"level1", "level2"}
    assert set(json.loads((out / "level5_metrics.json").read_text())["candidates"]) == {
        "decision_rule",
        "seed_ensemble",
    }


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
    assert comparison["levels"]["level1"]["accuracy"] > 0.4, comparison
