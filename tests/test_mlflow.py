"""Experiment tracking: a ``kedro run`` is a parent MLflow run with a nested run per pipeline × namespace.

The naming and sorting rules are tested on hand-made names and reports; then real sample runs
are read back from the project's store.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from kedro.io import AbstractDataset

# Before anything imports mlflow: the tests run offline and MLflow would start its telemetry client.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (requirements.txt pins it)")

from qeu_kedro.hooks import MlflowOutputsHook, figures_in  # noqa: E402
from qeu_kedro.mlflow_runs import (  # noqa: E402
    RunGroup,
    config_values,
    data_label,
    group_for,
    history_steps,
    is_report,
    local_name,
    main_report,
    metric_key,
    metric_prefix,
    pipeline_for,
    runner_name,
    split_report,
)
from tests.conftest import REPO, run_kedro  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A few training steps, each logged, on a few pairs: a loss curve of several points in a minute or two.
# The trained weights are kept even if validation prefers the base model, so `finetuned` differs from `base`.
BOUNDED_BGE = {
    "bge_finetune": {
        "trainer": {"max_steps": 3, "per_device_train_batch_size": 16, "logging_steps": 1},
        "subset": {"max_train_pairs": 48, "max_test_queries": 16, "max_corpus": 32},
        "validation": {"keep_base_if_better": False},
        "matryoshka_dims": [384, 64],
        "loss": {"matryoshka_weights": [64, 1]},  # one weight per dimension
    }
}
# One repeat of the k-fold CV instead of five: the layout of the runs is under test, not the interval.
QUICK_CV = {"ridge_analysis": {"cv": {"repeats": 1}}}


def _client(project: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _runs(client: mlflow.MlflowClient, filter_string: str = "") -> list:
    experiment = client.get_experiment_by_name("qeu_kedro")
    assert experiment is not None, "kedro-mlflow did not create the experiment 'qeu_kedro'"
    return client.search_runs(
        [experiment.experiment_id], filter_string=filter_string, order_by=["attributes.start_time DESC"]
    )


def _children(client: mlflow.MlflowClient, parent) -> dict[str, object]:
    runs = _runs(client, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return {r.info.run_name: r for r in runs}


def _newest_parent(client: mlflow.MlflowClient, before: set[str]):
    parents = [r for r in _runs(client) if "mlflow.parentRunId" not in r.data.tags and r.info.run_id not in before]
    assert len(parents) == 1, f"one kedro run is one parent run, found {[r.info.run_name for r in parents]}"
    return parents[0]


# ---- names: which nested run a node belongs to, and the names inside it ------------------------------


@pytest.mark.parametrize(
    ("namespace", "pipeline", "run_name", "group_namespace"),
    [
        ("base", "ridge_analysis", "ridge_analysis/base", "base"),
        ("finetuned", "movie_embedding", "movie_embedding/finetuned", "finetuned"),
        ("base.inner", "ridge_analysis", "ridge_analysis/base", "base"),  # the top-level part
        (None, "alpaca_sft", "alpaca_sft", ""),  # not namespaced (yet)
        ("bge_finetune", "bge_finetune", "bge_finetune", "bge_finetune"),  # namespace = pipeline
        ("jrte_sentiment.level2", "jrte_sentiment", "jrte_sentiment/level2", "jrte_sentiment.level2"),
        ("jrte_sentiment.level2.training", "jrte_sentiment", "jrte_sentiment/level2", "jrte_sentiment.level2"),
    ],
)
def test_a_node_s_run_is_its_pipeline_and_the_first_namespace_part_that_is_not_the_pipeline(
    namespace, pipeline, run_name, group_namespace
):
    group = group_for(namespace, pipeline)
    assert group == RunGroup(pipeline, group_namespace)
    assert group.name == run_name


def test_every_jrte_level_logs_its_numbers_in_its_own_run_under_the_same_names():
    """Level 1 had no run of its own: its numbers went into the jrte_sentiment run as level1.metrics.accuracy,
    where Level 2's are jrte_sentiment/level2's accuracy; MLflow could not set the levels side by side."""
    from qeu_kedro.pipelines.jrte_sentiment.pipeline import create_pipeline

    pipeline = create_pipeline()
    for level in ("level1", "level2", "baseline"):
        (node,) = [n for n in pipeline.nodes if f"jrte_sentiment.{level}.metrics" in n.outputs]
        group = group_for(node.namespace, "jrte_sentiment")
        assert group.name == f"jrte_sentiment/{level}"
        outputs = [o for o in node.outputs if is_report(o)]
        report = main_report(outputs, group)
        assert local_name(report, group) == "metrics" and metric_prefix(report, group, report) == ""


def test_a_node_belongs_to_the_pipeline_named_like_its_namespace_else_the_smallest_one_holding_it():
    assert pipeline_for("bge_finetune", {"__default__": 90, "bge_finetune": 11, "tiny": 2}) == "bge_finetune"
    assert pipeline_for("base", {"__default__": 90, "ridge_analysis": 24, "movie_embedding": 4}) == "movie_embedding"
    assert pipeline_for("base", {"b": 5, "a": 5}) == "a"
    assert pipeline_for(None, {"__default__": 90}) is None


def test_names_inside_a_run_drop_the_namespace_and_the_main_report_s_own_name():
    ridge = RunGroup("ridge_analysis", "base")
    assert local_name("base.ridge_metrics", ridge) == "ridge_metrics"
    assert local_name("finetuned.embedding_model", ridge) == "finetuned.embedding_model"  # not this namespace's
    assert main_report(["base.ridge_metrics"], ridge) == "base.ridge_metrics"
    assert metric_prefix("base.ridge_metrics", ridge, "base.ridge_metrics") == ""

    # the namespaced modular pipelines: `<ns>.metrics` is the main report
    bge = RunGroup("bge_finetune", "bge_finetune")
    assert main_report(["bge_finetune.metrics", "bge_finetune.training_summary"], bge) == "bge_finetune.metrics"
    level2 = RunGroup("jrte_sentiment", "jrte_sentiment.level2")
    assert main_report(["jrte_sentiment.level2.metrics"], level2) == "jrte_sentiment.level2.metrics"
    assert metric_prefix("jrte_sentiment.level2.metrics", level2, "jrte_sentiment.level2.metrics") == ""

    # today's flat pipelines: `<pipeline>_metrics` wins; several others keep their names as prefixes
    alpaca = RunGroup("alpaca_sft")
    assert main_report(["alpaca_train_metrics", "alpaca_sft_metrics"], alpaca) == "alpaca_sft_metrics"
    assert metric_prefix("alpaca_train_metrics", alpaca, "alpaca_sft_metrics") == "alpaca_train_metrics"
    jrte = RunGroup("jrte_sentiment")
    assert main_report(["level1_metrics", "level2_metrics", "level4_summary"], jrte) is None
    assert metric_prefix("level2_metrics", jrte, None) == "level2_metrics"


# ---- a report sorted into metrics, params, step series and tables --------------------------------------


def test_a_report_becomes_metrics_params_step_series_and_tables_without_repeats():
    import numpy as np

    train = {"train_loss": 1.4, "n_train": 30}
    interval = {
        "before": 16.9,
        "after": 18.2,
        "difference": 1.3,
        "ci_low": -0.2,
        "ci_high": 2.9,
        "confidence": 0.95,
        "verdict": "no evidence",
    }
    report = {
        "alpha": 5.0,  # a parameter repeated in the report
        "r2_test": np.float64(0.47),
        "n_test": 740,  # a count
        "support": 12.0,  # scikit-learn's count, stored as float
        "n_chars": 8.0,  # a mean: a metric even when whole
        "ok": True,
        "model": "all-MiniLM-L6-v2",
        "dims": [384, 64],
        "bad": float("nan"),
        "missing": None,
        "ndcg@10": {"384": 0.71},
        "history": [{"step": 1, "epoch": 0.5, "loss": 1.2}, {"step": 2, "epoch": 1.0, "loss": 0.8, "eval_loss": 0.9}],
        "epochs": [{"epoch": 1.0, "train_loss": 0.7}, {"epoch": 2.0, "train_loss": 0.5}],
        "labels": ["negative", "neutral", "positive"],
        "confusion_matrix": [[5, 1, 0], [2, 3, 1], [0, 1, 7]],
        "chrf": interval,
        "paired": {"chrf": interval, "copied": {"before": 0.2, "after": 0.3}},  # the same dict again
        "overall": {"before": {"chrf": 16.9}},  # the same number by another path
        "train": dict(train),  # a copy of an input report
        "confusion_pairs": [{"true": "a", "predicted": "b", "count": 3}],  # no step: only in the JSON
    }
    out = split_report(
        report,
        "",
        config_values({"ridge_analysis": {"alpha": 5.0, "seed": 42}, "statistics": {"confidence": 0.95}}),
        [train],
    )

    assert out.metrics == {
        "r2_test": 0.47,
        "n_chars": 8.0,
        "ndcg_10.384": 0.71,
        "chrf.before": 16.9,
        "chrf.after": 18.2,
        "chrf.difference": 1.3,
        "chrf.ci_low": -0.2,
        "chrf.ci_high": 2.9,
        "paired.copied.before": 0.2,
        "paired.copied.after": 0.3,
    }
    assert out.params == {
        "alpha": "5.0",
        "n_test": "740",
        "support": "12.0",
        "ok": "True",
        "model": "all-MiniLM-L6-v2",
        "dims": "[384, 64]",
        "labels": '["negative", "neutral", "positive"]',
        "chrf.confidence": "0.95",
        "chrf.verdict": "no evidence",
    }
    assert out.series == {
        "history.loss": [(1, 1.2), (2, 0.8)],
        "history.eval_loss": [(2, 0.9)],
        "epochs.train_loss": [(1, 0.7), (2, 0.5)],
    }
    assert out.tables == {
        "confusion_matrix": "true \\ predicted,negative,neutral,positive\nnegative,5,1,0\nneutral,2,3,1\npositive,0,1,7\n"
    }
    # under a prefix, for a report that is not its run's main one
    prefixed = split_report({"accuracy": 0.8, "n": 40}, "level2_metrics")
    assert prefixed.metrics == {"level2_metrics.accuracy": 0.8} and prefixed.params == {"level2_metrics.n": "40"}
    # a number already logged in the run (another report) is not logged twice
    again = {"comparison": {"64": {"ndcg": {"after": 0.5, "difference": 0.1}}}}
    assert split_report(again, "", logged={"after.64.ndcg": 0.5}).metrics == {"comparison.64.ndcg.difference": 0.1}


def test_a_mean_and_its_copy_at_full_precision_are_one_metric_whatever_its_fifth_decimal():
    """alpaca's report rounds its means to 4 decimals and keeps the paired ones at full precision: the copy
    was dropped when its fifth decimal was 0 and logged when not, so runs differed in their metric names."""
    for chrf in (41.1351, 37.25625, 37.256249999):
        report = {"before": {"chrf": round(chrf, 4)}, "paired": {"chrf": {"before": chrf, "difference": 1.5}}}
        assert split_report(report, "").metrics == {"before.chrf": round(chrf, 4), "paired.chrf.difference": 1.5}
    different = {"before": {"chrf": 37.2563}, "paired": {"chrf": {"before": 37.2564}}}
    assert "paired.chrf.before" in split_report(different, "").metrics  # another number is not a copy


def test_a_history_s_x_axis_is_its_step_or_whole_epoch_else_its_position():
    assert history_steps([{"step": 2, "loss": 1.0}, {"step": 4, "loss": 0.5}]) == ("step", [2, 4])
    assert history_steps([{"epoch": 1.0}, {"epoch": 2.0}]) == ("epoch", [1, 2])
    assert history_steps([{"epoch": 0.5}, {"epoch": 1.0}]) == (None, [1, 2])
    assert history_steps([{"loss": 1.0}]) is None and history_steps([]) is None and history_steps([1, 2]) is None


def test_data_tag_names_the_sample_or_the_real_sets_and_the_runner_tag_a_class(tmp_path):
    project, shared = tmp_path / "project", tmp_path / "shared" / "data"
    assert data_label(["data/01_raw/ratings.csv", project / "data/01_raw/users.csv"], project, shared) == "sample"
    real = [
        shared / "movielens-100k/u.data",
        shared / "tmdb5000/tmdb_5000_movies.csv",
        shared / "movielens-100k/u.user",
    ]
    assert data_label(real, project, shared) == "movielens-100k+tmdb5000"
    assert data_label(["data/04_feature/base/movie_embeddings.parquet"], project, shared) is None  # not raw data
    assert data_label(["s3://bucket/ratings.csv"], project, shared) == "s3://bucket"
    assert runner_name("<kedro.runner.thread_runner.ThreadRunner object at 0x7f3a2c1b2d90>") == "ThreadRunner"
    assert runner_name("None") == "SequentialRunner" and runner_name("ParallelRunner") == "ParallelRunner"
    assert metric_key("ndcg@10") == "ndcg_10"


def test_figures_in_finds_a_figure_or_the_figures_of_a_dict():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    one, two = plt.figure(), plt.figure()
    try:
        assert [s for s, _ in figures_in(one, "bar")] == ["bar"]
        assert [s for s, _ in figures_in({"a": one, "b": two}, "cm")] == ["cm_a", "cm_b"]
        assert list(figures_in({"a": 1}, "x")) == [] and list(figures_in("text", "x")) == []
    finally:
        plt.close(one)
        plt.close(two)


# ---- start-up: telemetry off in a hook (not at import), MLflow's predict-hint warning quiet ------------


def test_importing_the_hooks_leaves_telemetry_alone():
    # In a fresh interpreter: a running client (a stand-in) survives `import qeu_kedro.hooks`.
    code = (
        "import os\n"
        "from mlflow.telemetry import client as t\n"
        "os.environ.pop('MLFLOW_DISABLE_TELEMETRY')\n"
        "running = object()\n"
        "t._MLFLOW_TELEMETRY_CLIENT = running\n"
        "import qeu_kedro.hooks\n"
        "print(t.get_telemetry_client() is running, 'MLFLOW_DISABLE_TELEMETRY' in os.environ)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_the_hook_turns_telemetry_off_when_the_context_is_created(monkeypatch, tmp_path):
    from mlflow.telemetry import client as telemetry

    class Running:  # stands for the client `import mlflow` starts when telemetry is on
        stopped = False

        def flush(self, terminate: bool = False) -> None:
            self.stopped = terminate

    class Loader:  # no mlflow.yml: the store is kedro-mlflow's business
        config_patterns: dict = {}

        def __getitem__(self, key):
            raise KeyError(key)

    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    running = Running()
    monkeypatch.setattr(telemetry, "_MLFLOW_TELEMETRY_CLIENT", running)
    MlflowOutputsHook().after_context_created(SimpleNamespace(project_path=tmp_path, env=None, config_loader=Loader()))
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert running.stopped and telemetry.get_telemetry_client() is None


def test_mlflow_s_predict_hint_warning_is_dropped_and_nothing_else():
    import qeu_kedro.hooks  # noqa: F401 - installs the filter

    py_warnings = logging.getLogger("py.warnings")

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("py.warnings", logging.WARNING, __file__, 1, message, None, None)

    hint = (
        "data_validation.py:187: UserWarning: \x1b[33mAdd type hints to the `predict` method to enable data validation"
    )
    assert not py_warnings.filter(record(hint))
    assert py_warnings.filter(record("some.py:1: UserWarning: anything else"))


@pytest.mark.slow
def test_a_kedro_command_prints_no_mlflow_warning():
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "KEDRO_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "registry", "list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "ridge_analysis" in done.stdout
    assert "UserWarning" not in done.stdout + done.stderr and "type hints" not in done.stdout + done.stderr


# ---- real runs, then a query of the store ------------------------------------------------------------


@pytest.mark.slow
def test_the_sample_run_is_a_parent_run_with_readable_tagged_nested_runs(movie_run_project):
    """The fixture's run (movie pipelines, namespace base) read back from the store."""
    client = _client(movie_run_project)
    experiment = client.get_experiment_by_name("qeu_kedro")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the "Model training" view
    parent = next(r for r in reversed(_runs(client)) if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.run_name == "kedro run [local] movie_embedding+ridge_analysis (base)"
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["runner"] == "SequentialRunner"
    assert parent.data.tags["env"] == "local" and parent.data.tags["data"] == "sample"
    assert len(parent.data.tags["git_commit"]) == 40 and parent.data.tags["git_dirty"] in {"true", "false"}
    assert parent.data.params["ridge_analysis.alpha"] == "5.0"  # kedro-mlflow's own parameter logging

    children = _children(client, parent)
    assert set(children) == {"movie_embedding/base", "ridge_analysis/base"}
    ridge = children["ridge_analysis/base"]
    assert ridge.info.status == "FINISHED"
    tags = ridge.data.tags
    assert (tags["pipeline"], tags["namespace"], tags["env"], tags["data"]) == (
        "ridge_analysis",
        "base",
        "local",
        "sample",
    )
    assert tags["model"] == "bundled:all-MiniLM-L6-v2" and tags["git_commit"] == parent.data.tags["git_commit"]

    # the numbers of ridge_metrics.json under their own names: measurements as metrics,
    # the parameter alpha and the counts as params
    written = json.loads((movie_run_project / "data/08_reporting/base/ridge_metrics.json").read_text())
    measured = {"r2_train", "r2_test", "rmse_train", "rmse_test", "cv_r2_test_mean", "cv_r2_test_sd"}
    # the alphas the CV folds used (chosen per fold by alpha: auto's nested search; here fixed): outcomes of a
    # run, metrics in every run so that the keys never move between params and metrics
    measured |= {"cv_alpha_min", "cv_alpha_median", "cv_alpha_max"}
    metrics = dict(ridge.data.metrics)
    # the time in the group's own nodes: more than 0, at most the run's open time (other groups' nodes run between)
    node_seconds = metrics.pop("node_seconds")
    assert 0 < node_seconds <= (ridge.info.end_time - ridge.info.start_time) / 1000 + 0.01
    assert metrics == pytest.approx({k: written[k] for k in measured})
    assert 0.3 < ridge.data.metrics["r2_test"] < 1.0
    assert ridge.data.params["alpha"] == "5.0" and ridge.data.params["n_users"] == str(written["n_users"])
    assert ridge.data.params["n_test"] == str(written["n_test"]) and ridge.data.params["ridge_analysis.seed"] == "42"

    # figures, the report and the ridge model as artifacts of the nested run, under the project's mlruns/
    assert ridge.info.artifact_uri.startswith((movie_run_project / "mlruns").as_uri())
    figures = {a.path for a in client.list_artifacts(ridge.info.run_id, "figures")}
    assert figures == {"figures/top_features_scatter.png", "figures/top_coefficients_bar.png"}
    local = Path(
        client.download_artifacts(ridge.info.run_id, "figures/top_coefficients_bar.png", str(movie_run_project / "dl"))
    )
    assert local.read_bytes()[:8] == PNG_MAGIC and local.stat().st_size > 10_000
    model = Path(client.download_artifacts(ridge.info.run_id, "models/ridge_model.json", str(movie_run_project / "dl")))
    assert json.loads(model.read_text()) == json.loads(
        (movie_run_project / "data/06_models/base/ridge_model.json").read_text()
    )
    assert {a.path for a in client.list_artifacts(ridge.info.run_id, "reports")} == {"reports/ridge_metrics.json"}


@pytest.mark.slow
def test_a_failed_run_is_failed_and_a_killed_one_is_closed_at_the_next_start(movie_run_project):
    project = movie_run_project
    client = _client(project)
    experiment_id = client.get_experiment_by_name("qeu_kedro").experiment_id
    # a run whose process was killed: RUNNING, with the pid of a process that is gone
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = client.create_run(
        experiment_id, run_name="kedro run [local] killed", tags={"pid": str(gone.pid), "host": socket.gethostname()}
    )
    elsewhere = client.create_run(
        experiment_id, run_name="another machine's", tags={"pid": str(gone.pid), "host": "not-this-host"}
    )
    before = {r.info.run_id for r in _runs(client)}

    # a node fails: plot_top_features refuses an unknown feature
    with pytest.raises(ValueError, match="plot_features names unknown features"):
        run_kedro(
            project,
            params={"ridge_analysis": {"plot_features": ["no_such_feature"]}},
            pipeline_name="ridge_analysis",
            namespaces=["base"],
        )

    assert client.get_run(stale.info.run_id).info.status == "KILLED"
    assert "killed" in client.get_run(stale.info.run_id).data.tags["error"]
    assert client.get_run(elsewhere.info.run_id).info.status == "RUNNING"  # not ours to judge
    client.set_terminated(elsewhere.info.run_id, "KILLED")

    parent = _newest_parent(client, before)
    assert parent.info.status == "FAILED" and "plot_features" in parent.data.tags["error"]
    ridge = _children(client, parent)["ridge_analysis/base"]
    assert ridge.info.status == "FAILED"
    assert ridge.data.tags["error"].startswith("ValueError in node base.plot_top_features")
    assert not [r.info.run_name for r in _runs(client, "attributes.status = 'RUNNING'")]


@pytest.fixture(scope="module")
def both_namespaces(movie_run_project: Path) -> Path:
    """A bounded bge_finetune run (its model is the `finetuned` namespace's), then both movie namespaces in one run."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(movie_run_project)
        run_kedro(movie_run_project, params=BOUNDED_BGE, pipeline_name="bge_finetune")
        run_kedro(movie_run_project, params=QUICK_CV, pipeline_names=["movie_embedding", "ridge_analysis"])
    return movie_run_project


@pytest.mark.slow
def test_both_namespaces_are_nested_runs_of_one_parent_with_the_same_metric_names(both_namespaces):
    client = _client(both_namespaces)
    parent = next(r for r in _runs(client) if r.info.run_name == "kedro run [local] movie_embedding+ridge_analysis")
    children = _children(client, parent)
    assert set(children) == {
        "movie_embedding/base",
        "movie_embedding/finetuned",
        "ridge_analysis/base",
        "ridge_analysis/finetuned",
    }
    base, finetuned = children["ridge_analysis/base"], children["ridge_analysis/finetuned"]
    assert set(base.data.metrics) == set(finetuned.data.metrics) >= {"r2_test", "r2_train", "cv_r2_test_mean"}
    for run, namespace in ((base, "base"), (finetuned, "finetuned")):
        written = json.loads((both_namespaces / f"data/08_reporting/{namespace}/ridge_metrics.json").read_text())
        assert run.data.metrics["r2_test"] == pytest.approx(written["r2_test"])
        assert run.data.tags["namespace"] == namespace and run.data.tags["env"] == "local"
        assert len(run.data.tags["git_commit"]) == 40
    assert finetuned.data.tags["model"] == "data/06_models/bge_finetuned"
    # the models differ (the trained weights are kept), so do the results
    assert base.data.metrics["r2_test"] != finetuned.data.metrics["r2_test"]
    assert base.data.params["ridge_analysis.cv.repeats"] == "1" and base.data.params["cv_n_folds"] == "5"
    # the namespaces' own parameters line up by name too: labels.model, not base.labels.model
    assert base.data.params["labels.model"] != finetuned.data.params["labels.model"]
    assert not any(k.startswith(("base.", "finetuned.")) for run in (base, finetuned) for k in run.data.params)


@pytest.mark.slow
def test_node_seconds_is_a_group_s_own_time_while_its_run_spans_the_interleaved_nodes(both_namespaces):
    client = _client(both_namespaces)
    parent = next(r for r in _runs(client) if r.info.run_name == "kedro run [local] movie_embedding+ridge_analysis")
    children = _children(client, parent)

    def open_seconds(run):
        return (run.info.end_time - run.info.start_time) / 1000

    own = {name: run.data.metrics["node_seconds"] for name, run in children.items()}
    assert all(seconds > 0 for seconds in own.values())
    # the groups' nodes ran one after another: their own times add up to no more than the parent's run
    assert sum(own.values()) <= open_seconds(parent) + 0.05
    # ridge_analysis/base opens at its input check, at the start, and closes after its report: the finetuned
    # namespace's nodes (its embedding of every movie) ran in between and are not counted as its own time
    base = children["ridge_analysis/base"]
    assert own["ridge_analysis/base"] < open_seconds(base) - own["movie_embedding/finetuned"] / 2


@pytest.mark.slow
def test_a_training_history_is_a_step_series(both_namespaces):
    client = _client(both_namespaces)
    bge = next(r for r in _runs(client) if r.info.run_name == "bge_finetune")
    assert bge.data.tags["model"] == "bundled:all-MiniLM-L6-v2" and bge.data.tags["namespace"] in {"-", "bge_finetune"}
    written = json.loads((both_namespaces / "data/08_reporting/bge_finetune/metrics.json").read_text())
    history = written["training"]["loss_history"]
    assert len(history) == 3  # logging_steps 1, max_steps 3
    curve = client.get_metric_history(bge.info.run_id, "training.loss_history.loss")
    assert [(m.step, m.value) for m in curve] == [(e["step"], pytest.approx(e["loss"])) for e in history]
    # no number twice: the comparison repeats the means before/after, which are logged once
    assert "before.384.ndcg_10" in bge.data.metrics and "comparison.384.ndcg_10.before" not in bge.data.metrics
    assert "comparison.384.ndcg_10.difference" in bge.data.metrics
    assert bge.data.params["comparison.384.ndcg_10.verdict"] == written["comparison"]["384"]["ndcg@10"]["verdict"]


@pytest.mark.slow
def test_a_pipeline_reading_only_other_pipelines_outputs_is_tagged_with_the_data_they_read(both_namespaces):
    """movie_comparison reads the ridge results only: its runs were tagged data=unknown."""
    client = _client(both_namespaces)
    before = {r.info.run_id for r in _runs(client)}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(both_namespaces)
        run_kedro(both_namespaces, pipeline_name="movie_comparison")
    parent = _newest_parent(client, before)
    assert parent.data.tags["data"] == "sample"
    assert _children(client, parent)["movie_comparison"].data.tags["data"] == "sample"


class _SlowDataset(AbstractDataset):
    """Takes ``seconds`` to load and to save."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.data = seconds, 1

    def load(self):
        time.sleep(self.seconds)
        return self.data

    def save(self, data) -> None:
        time.sleep(self.seconds)
        self.data = data

    def _describe(self) -> dict:
        return {}


class _Client:
    """The MlflowClient calls the hook makes for one node, recorded."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def create_run(self, *args, **kwargs):
        return SimpleNamespace(info=SimpleNamespace(run_id="nested"))

    def log_metric(self, run_id, key, value) -> None:
        self.metrics[key] = value

    def log_batch(self, *args, **kwargs) -> None: ...

    def set_tag(self, *args) -> None: ...

    def set_terminated(self, *args) -> None: ...


def test_node_seconds_counts_a_node_s_loads_and_saves_too():
    """Kedro loads a node's inputs before before_node_run and saves its outputs after after_node_run: node_seconds
    counted the function alone (0.1 s of a node that took 0.7 s with its load and save)."""
    from kedro.framework.hooks.manager import _create_hook_manager
    from kedro.io import DataCatalog
    from kedro.pipeline import Node, Pipeline
    from kedro.runner import SequentialRunner

    from qeu_kedro.hooks import _KedroRun

    def work(x):
        time.sleep(0.1)
        return x

    group = RunGroup("ridge_analysis", "base")
    hook, client = MlflowOutputsHook(), _Client()
    hook._run = run = _KedroRun(client, "0", "parent")
    run.group_of, run.pending = {"work": group}, {group: {"work"}}
    manager = _create_hook_manager()
    manager.register(hook)
    catalog = DataCatalog({"a": _SlowDataset(0.3), "b": _SlowDataset(0.3)})
    SequentialRunner().run(Pipeline([Node(work, "a", "b", name="work")]), catalog, manager)
    assert 0.7 <= client.metrics["node_seconds"] < 1.5  # load 0.3 + work 0.1 + save 0.3
    assert not run.run_ids  # the group's run was closed once its output was saved


def test_a_comparison_run_with_its_upstream_pipelines_is_tagged_with_their_data(movie_run_project):
    """In the default run movie_comparison has no free input at all (the ridge results are made in the run): its
    data tag came from free inputs only, so it had none. Planned in a fresh process, as `kedro run` plans it."""
    script = """
import json
from pathlib import Path
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from qeu_kedro.hooks import MlflowOutputsHook, _KedroRun

bootstrap_project(Path.cwd())
with KedroSession.create(project_path=Path.cwd()) as session:
    catalog = session.load_context().catalog
    hook = MlflowOutputsHook()
    hook._project_path = Path.cwd()
    run = _KedroRun(None, "0", "parent")
    hook._plan_groups(run, {"pipeline_names": None}, pipelines["__default__"], catalog)
print(json.dumps({group.name: tags.get("data") for group, tags in run.group_tags.items()}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=movie_run_project, capture_output=True, text=True, check=True, timeout=300
    )
    tags = json.loads(done.stdout.strip().splitlines()[-1])
    assert tags["movie_comparison"] == tags["ridge_analysis/base"] == "sample"
