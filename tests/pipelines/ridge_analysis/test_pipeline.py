"""The movie pipelines end to end: planted structure, namespaces, bad input, real data."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.pipelines.ridge_analysis.nodes import build_model_input, evaluate_ridge, fit_ridge, split_ratings
from qeu_kedro.validation import RawDataError
from tests.conftest import load_config, run_kedro

RIDGE = {"alpha": 5.0, "fit_intercept": True, "test_size": 0.2, "seed": 42, "top_k": 20}
MOVIE_PIPELINES = ["movie_embedding", "ridge_analysis"]


def test_registry_has_both_namespaces_sharing_raw_inputs(project):
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    ridge = pipelines["ridge_analysis"]
    embedding = pipelines["movie_embedding"]
    for ns in ("base", "finetuned"):
        assert f"{ns}.fit_ridge" in {n.name for n in ridge.nodes}
        assert f"{ns}.embedding_model" in embedding.inputs()
        assert f"{ns}.movie_embeddings" in ridge.inputs()
        assert f"{ns}.movie_embeddings" in embedding.outputs()
        assert f"{ns}.ridge_metrics" in ridge.all_outputs()  # read by the bar chart's title, and by movie_comparison
        # the report reads both figures: a closed box in kedro-viz shows it, not each figure
        assert f"{ns}.ridge_report" in ridge.outputs() and f"{ns}.top_coefficients_bar" not in ridge.outputs()
        assert f"params:{ns}.labels" in ridge.inputs(), "each namespace names its own model in its figures"
        assert {frozenset(n.tags - {"input_check"}) for n in ridge.nodes} == {frozenset({"ridge_analysis"})}
        assert {n.name.split(".")[-1] for n in ridge.nodes if "input_check" in n.tags} == {
            "check_ratings",
            "decode_users",
            "check_users",
            "check_rated_users",
        }
    assert {"ratings", "users", "params:ridge_analysis"} <= ridge.inputs()
    assert {"movies", "movie_overviews", "params:movie_embedding", "params:movie_overviews"} <= embedding.inputs()
    assert pipelines["__default__"].only_nodes_with_namespaces(["base"]).nodes


@pytest.mark.slow
def test_sample_run_of_base_namespace_finds_the_planted_structure(project):
    run_kedro(project, pipeline_names=MOVIE_PIPELINES, namespaces=["base"])
    out = project / "data" / "08_reporting" / "base"
    assert not (project / "data" / "08_reporting" / "finetuned").exists()
    metrics = json.loads((out / "ridge_metrics.json").read_text())
    assert metrics["n_movies"] == 240 and metrics["n_users"] == 160
    assert metrics["n_ratings_dropped_no_embedding"] > 0
    assert metrics["n_ratings_used"] + metrics["n_ratings_dropped_no_embedding"] == metrics["n_ratings_in"] == 4000
    assert metrics["n_features"] == 1 + 2 + 8 + 2 * 384
    # ratings depend on the overview's topic and on occupation: the ridge explains a good part
    assert metrics["r2_test"] > 0.3, metrics
    assert metrics["r2_train"] >= metrics["r2_test"]
    top = pd.read_csv(out / "top_coefficients.csv")
    assert len(top) == 20
    coef = dict(zip(top["feature"], top["coefficient"], strict=True))
    # the planted occupation effects: writer -0.6, student +0.5
    assert coef["occupation_writer"] < -0.3 and coef["occupation_student"] > 0.3
    for figure in ("top_features_scatter.png", "top_coefficients_bar.png"):
        assert (out / figure).stat().st_size > 10_000
    report = (out / "ridge_report.md").read_text(encoding="utf-8")
    assert re.search(rf"^\| test +\| {metrics['r2_test']:.4f} +\|", report, re.M) and "occupation_writer" in report
    assert re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report) == ["top_coefficients_bar.png", "top_features_scatter.png"]

    # Control: with the ratings shuffled the same features explain nothing.
    embeddings = pd.read_parquet(project / "data" / "04_feature" / "base" / "movie_embeddings.parquet")
    ratings = pd.read_csv(project / "data" / "01_raw" / "ratings.csv")
    ratings["rating"] = np.random.default_rng(0).permutation(ratings["rating"].to_numpy())
    users = pd.read_csv(project / "data" / "01_raw" / "users.csv")
    table, stats = build_model_input(
        ratings, users, embeddings, load_config(project, None, "parameters")["ridge_analysis"]
    )
    train, test = split_ratings(table, RIDGE)
    shuffled = evaluate_ridge(fit_ridge(train, RIDGE), train, test, stats)
    assert shuffled["r2_test"] < 0.05


@pytest.mark.slow
def test_both_namespaces_run_and_write_their_own_outputs(project, monkeypatch):
    # Until a fine-tuned model exists, point `finetuned` at the bundled model through the catalog.
    (project / "conf" / "local" / "catalog.yml").write_text(
        "finetuned.embedding_model:\n"
        "  type: qeu_kedro.datasets.SentenceTransformerDataset\n"
        "  model: bundled:all-MiniLM-L6-v2\n"
    )
    run_kedro(project, pipeline_names=MOVIE_PIPELINES)
    base = json.loads((project / "data/08_reporting/base/ridge_metrics.json").read_text())
    fine = json.loads((project / "data/08_reporting/finetuned/ridge_metrics.json").read_text())
    # the same model and seed in both namespaces give the same results
    assert base["r2_test"] == pytest.approx(fine["r2_test"], abs=1e-6)


@pytest.mark.parametrize(
    ("file", "edit", "message"),
    [
        (
            "ratings.csv",
            lambda df: df.assign(rating=df["rating"].where(df.index != 7, 6)),
            r"'ratings', column 'rating', row 7 ",
        ),
        ("users.csv", lambda df: df.drop(columns="occupation"), r"'users', column 'occupation'.*missing"),
        (
            "movies.csv",
            lambda df: df.assign(overview=df["overview"].where(df.index != 3, "")),
            r"'movie_overviews', column 'overview', row 3 ",  # the sample's movie list is its own overview source
        ),
        # both entries read movies.csv: whichever check node runs first names its dataset
        ("movies.csv", lambda df: df.iloc[0:0], r"'(movies|movie_overviews)': the table is empty"),
    ],
)
@pytest.mark.slow
def test_bad_raw_input_fails_clearly_and_writes_nothing(project, file, edit, message):
    path = project / "data" / "01_raw" / file
    edit(pd.read_csv(path)).to_csv(path, index=False)
    with pytest.raises(RawDataError, match=message):
        run_kedro(project, pipeline_names=MOVIE_PIPELINES, namespaces=["base"])
    written = [p for p in (project / "data").rglob("*") if p.is_file() and "01_raw" not in p.parts]
    assert written == []


def test_hub_environment_names_the_original_model(project):
    catalog = load_config(project, env="hub")
    for ns in ("base", "finetuned"):
        entry = catalog[f"{ns}.embedding_model"]
        if "filepath" not in entry:
            assert entry["model"] == "BAAI/bge-base-en"
    assert catalog["base.embedding_model"]["model"] == "BAAI/bge-base-en"
    assert catalog["base.embedding_model"]["allow_download"] is True


@pytest.mark.slow
@pytest.mark.real_data
def test_real_data_run_on_movielens_with_tmdb_overviews(project, shared_data):
    run_kedro(project, env="movielens", pipeline_names=MOVIE_PIPELINES, namespaces=["base"])
    out = project / "data" / "08_reporting" / "movielens" / "base"
    metrics = json.loads((out / "ridge_metrics.json").read_text())
    assert 440 <= metrics["n_movies"] <= 500
    assert 50_000 <= metrics["n_ratings_used"] <= 65_000
    assert metrics["n_ratings_in"] == 100_000
    assert metrics["n_users"] > 900
    assert metrics["n_features"] == 1 + 2 + 21 + 2 * 384
    assert 0 < metrics["r2_test"] < metrics["r2_train"] < 1
    assert (out / "top_features_scatter.png").exists()
    assert not (project / "data" / "08_reporting" / "base").exists()
