"""Experiment tracking: a ``kedro run`` lands in the project's MLflow store with its params, metrics and figures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Before anything imports mlflow: the tests run offline and MLflow would start its telemetry client.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (requirements.txt pins it)")

from qeu_kedro.hooks import MlflowOutputsHook, figures_in, metric_key, numeric_leaves  # noqa: E402
from tests.conftest import run_kedro  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _client(project: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _runs(client: mlflow.MlflowClient, run_name: str) -> list:
    experiment = client.get_experiment_by_name("qeu_kedro")
    assert experiment is not None, "kedro-mlflow did not create the experiment 'qeu_kedro'"
    return client.search_runs(
        [experiment.experiment_id],
        filter_string=f"attributes.run_name = '{run_name}'",
        order_by=["attributes.start_time DESC"],
    )


# ---- the generic pieces of the hook, on small values --------------------------------------------------


def test_numeric_leaves_flattens_nested_reports_and_skips_flags_text_and_nan():
    report = {
        "accuracy": 0.8,
        "n": 40,
        "ok": True,
        "model": "all-MiniLM-L6-v2",
        "ndcg@10": {"384": 0.71, "64": 0.52},
        "macro avg": {"f1-score": 0.66},
        "losses": [1.5, 0.9],
        "bad": float("nan"),
    }
    leaves = dict(numeric_leaves(report, "finetuned.metrics"))
    assert leaves == {
        "finetuned.metrics.accuracy": 0.8,
        "finetuned.metrics.n": 40.0,
        "finetuned.metrics.ndcg@10.384": 0.71,
        "finetuned.metrics.ndcg@10.64": 0.52,
        "finetuned.metrics.macro avg.f1-score": 0.66,
        "finetuned.metrics.losses.0": 1.5,
        "finetuned.metrics.losses.1": 0.9,
    }
    # "@" is not allowed in an MLflow key
    assert metric_key("finetuned.metrics.ndcg@10.384") == "finetuned.metrics.ndcg_10.384"


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


def test_hook_tells_namespaces_apart_and_is_silent_without_a_run(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    class FakeNode:  # the hook reads only the node's name (for its warnings)
        name = "finetuned.evaluate_ridge"

    hook = MlflowOutputsHook()
    fig = plt.figure()
    fig.gca().plot([0, 1], [1, 0])
    outputs = {
        "finetuned.ridge_metrics": {"r2_test": 0.25, "n_test": 10},
        "base.ridge_metrics": {"r2_test": 0.5},
        "finetuned.top_coefficients_bar": fig,
        "finetuned.ridge_model": {"coef": [0.1, 0.2]},
        "finetuned.train": [1, 2, 3],  # neither metrics, figure nor model: not logged
    }
    assert mlflow.active_run() is None
    hook.after_node_run(FakeNode(), None, {}, outputs, False)  # no active run: nothing, no error

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("hook", artifact_location=(tmp_path / "artifacts").as_uri())
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            hook.after_node_run(FakeNode(), None, {}, outputs, False)
    finally:
        mlflow.set_tracking_uri(previous)
        plt.close(fig)
    logged = client.get_run(run.info.run_id)
    assert logged.data.metrics == {
        "finetuned.ridge_metrics.r2_test": 0.25,
        "finetuned.ridge_metrics.n_test": 10.0,
        "base.ridge_metrics.r2_test": 0.5,
    }
    paths = {a.path for folder in ("figures/finetuned", "models/finetuned", "metrics/finetuned", "metrics/base") for a in client.list_artifacts(run.info.run_id, folder)}
    assert paths == {
        "figures/finetuned/top_coefficients_bar.png",
        "models/finetuned/ridge_model.json",
        "metrics/finetuned/ridge_metrics.json",
        "metrics/base/ridge_metrics.json",
    }


def test_importing_the_hooks_turns_mlflow_telemetry_off():
    from mlflow.telemetry.client import get_telemetry_client

    import qeu_kedro.hooks  # noqa: F401

    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert get_telemetry_client() is None


# ---- a real run, then a query of the store ------------------------------------------------------------


@pytest.mark.slow
def test_kedro_run_then_the_store_returns_its_params_metrics_figures_and_model(movie_run_project):
    project = movie_run_project
    assert (project / "mlflow.db").is_file(), "the store lives in the project root (conf/base/mlflow.yml)"
    client = _client(project)
    before = {r.info.run_id for r in _runs(client, "ridge_analysis")}

    run_kedro(project, pipeline_name="ridge_analysis", namespaces=["base"])

    runs = [r for r in _runs(client, "ridge_analysis") if r.info.run_id not in before]
    assert len(runs) == 1, "one kedro run is one MLflow run"
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["kedro_command"].startswith("kedro run --pipeline=ridge_analysis")

    # parameters: kedro-mlflow's hook, flattened one per knob
    assert run.data.params["ridge_analysis.alpha"] == "5.0"
    assert run.data.params["ridge_analysis.seed"] == "42"

    # metrics: every number of the metrics JSON the run wrote, under its namespaced name
    written = json.loads((project / "data/08_reporting/base/ridge_metrics.json").read_text())
    expected = {f"base.ridge_metrics.{k}": float(v) for k, v in written.items()}
    assert run.data.metrics == pytest.approx(expected)
    assert 0.3 < run.data.metrics["base.ridge_metrics.r2_test"] < 1.0
    assert not [k for k in run.data.metrics if k.startswith("finetuned.")], "only the base namespace ran"

    # figures and the ridge model as artifacts, stored under the project's mlruns/
    assert run.info.artifact_uri.startswith((project / "mlruns").as_uri())
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures/base")}
    assert figures == {"figures/base/top_features_scatter.png", "figures/base/top_coefficients_bar.png"}
    local = Path(client.download_artifacts(run.info.run_id, "figures/base/top_coefficients_bar.png", str(project / "dl")))
    assert local.read_bytes()[:8] == PNG_MAGIC and local.stat().st_size > 10_000
    model = Path(client.download_artifacts(run.info.run_id, "models/base/ridge_model.json", str(project / "dl")))
    assert json.loads(model.read_text()) == json.loads((project / "data/06_models/base/ridge_model.json").read_text())

    # one run against the last (the fixture's run of the movie pipelines): same params and seed, same numbers
    key = "base.ridge_metrics.r2_test"
    earlier = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"attributes.start_time < {run.info.start_time}",
        order_by=["attributes.start_time DESC"],
    )
    last = next(r for r in earlier if key in r.data.metrics)
    assert last.data.metrics[key] == pytest.approx(run.data.metrics[key])
