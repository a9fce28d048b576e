"""bge_finetune through Kedro: the sample end to end with the finetuned namespace, environments, real data."""

import json

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.datasets import SentenceTransformerDataset
from tests.conftest import load_config, run_kedro

# A bounded run: few pairs, few steps (CI and tests); the defaults train on all the sample.
BOUNDED = {
    "bge_finetune": {
        "subset": {"max_train_pairs": 64, "max_test_queries": 40, "max_corpus": 120},
        "trainer": {"max_steps": 4, "per_device_train_batch_size": 16, "learning_rate": 5.0e-5},
        # this run checks the wiring: the trained model must reach the finetuned namespace even where
        # 4 steps do not beat the base model on validation (test_training checks that choice)
        "validation": {"keep_base_if_better": False},
        "show_progress_bar": False,
    }
}
# Real data in CI: a subset and 2 steps (XQuAD paragraphs are long: a step of 8 costs seconds).
REAL_BOUNDED = {
    "bge_finetune": {
        "subset": {"max_train_pairs": 32, "max_test_queries": 30, "max_corpus": 60},
        "trainer": {"max_steps": 2, "per_device_train_batch_size": 8},
        "show_progress_bar": False,
    }
}
CHAIN = ["bge_finetune", "movie_embedding", "ridge_analysis", "movie_comparison"]
ENVS = ("movielens", "xquad", "hub")


def check_metrics(metrics, dims):
    assert metrics["dims"] == dims
    for stage in ("before", "after"):
        assert list(metrics[stage]) == [str(d) for d in dims]
        for values in metrics[stage].values():
            assert set(values) == {"ndcg@10", "mrr@10", "recall@1", "recall@10"}
            assert all(0.0 <= v <= 1.0 for v in values.values())
    for d in map(str, dims):
        c = metrics["comparison"][d]["ndcg@10"]
        assert c["difference"] == pytest.approx(metrics["after"][d]["ndcg@10"] - metrics["before"][d]["ndcg@10"])
        assert c["ci_low"] <= c["difference"] <= c["ci_high"]
        assert metrics["verdicts"][d] == c["verdict"] in ("better", "no evidence", "worse")
    # one sentence per dimension, after a first one saying so when validation kept the base weights
    kept = metrics["training"]["validation"].get("chosen") == "base model"
    assert metrics["base_weights_kept"] is kept and len(metrics["conclusion"]) == len(dims) + kept
    if kept:
        assert metrics["conclusion"][0].startswith("No checkpoint beat the base model on validation")


@pytest.mark.slow
def test_sample_run_trains_then_embeds_the_finetuned_namespace_with_the_trained_model(project):
    run_kedro(project, pipeline_names=CHAIN, params=BOUNDED)
    report = project / "data/08_reporting"
    metrics = json.loads((report / "bge_finetune/metrics.json").read_text())
    check_metrics(metrics, [384, 256, 128, 64, 32])
    assert metrics["data"]["n_test_queries"] == 40 and metrics["data"]["n_corpus"] == 120
    # 64 training-side pairs: a tenth (whole overviews) held out for validation, which chose the checkpoint
    validation = pd.read_parquet(project / "data/05_model_input/bge_finetune/validation_pairs.parquet")
    assert metrics["data"]["n_train_rows"] + len(validation) == 64 and len(validation) > 0
    assert metrics["training"]["validation"]["n_queries"] == len(validation)
    assert metrics["training"]["validation"]["chosen"] in ("base model", "step 4", "last step") or metrics["training"][
        "validation"
    ]["chosen"].startswith("step ")
    assert 0 < metrics["training"]["steps"] <= 4
    assert (report / "bge_finetune/ndcg_by_dim.png").stat().st_size > 10_000
    train = pd.read_parquet(project / "data/05_model_input/bge_finetune/train_pairs.parquet")
    test = pd.read_parquet(project / "data/05_model_input/bge_finetune/test_pairs.parquet")
    assert not set(train["anchor"]) & set(test["anchor"])

    # The wiring: finetuned.movie_embeddings were computed with the model bge_finetune saved.
    trained = SentenceTransformerDataset(filepath=str(project / "data/06_models/bge_finetuned")).load()
    movies = pd.read_csv(project / "data/01_raw/movies.csv").head(5)
    features = project / "data/04_feature"
    finetuned = (
        pd.read_parquet(features / "finetuned/movie_embeddings.parquet").set_index("movie_id").loc[movies["movie_id"]]
    )
    base = pd.read_parquet(features / "base/movie_embeddings.parquet").set_index("movie_id").loc[movies["movie_id"]]
    for column in ("title", "overview"):
        expected = trained.encode(movies[column].tolist(), normalize_embeddings=True, convert_to_numpy=True)
        np.testing.assert_allclose(finetuned.filter(like=f"{column}_embedding_").to_numpy(), expected, atol=1e-5)
    finetuned, base = finetuned.to_numpy(), base.to_numpy()
    assert not np.allclose(finetuned, base, atol=1e-3)

    summary = json.loads((report / "comparison/summary.json").read_text())
    for ns in ("base", "finetuned"):
        ridge = json.loads((report / ns / "ridge_metrics.json").read_text())
        assert summary["r2_test"][ns] == pytest.approx(ridge["r2_test"])
    side = pd.read_csv(report / "comparison/top_coefficients_side_by_side.csv")
    assert len(side) == 20
    shared = set(side["base_feature"]) & set(side["finetuned_feature"])
    assert summary["n_shared_top_features"] == len(shared)
    # the planted occupation effects do not depend on the embedding model
    assert {"occupation_writer", "occupation_student"} <= shared
    assert (report / "comparison/comparison.png").stat().st_size > 10_000


@pytest.mark.slow
def test_finetuned_namespace_without_a_trained_model_says_to_run_bge_finetune_first(project):
    with pytest.raises(Exception, match=r"kedro run --pipelines bge_finetune"):
        run_kedro(project, pipeline_names=["movie_embedding"], namespaces=["finetuned"])


@pytest.mark.slow  # a kedro run (the project's convention), though it stops at a check
def test_negatives_that_are_all_test_positives_stop_the_run_before_anything_is_written(project):
    """The sample pairs with a negative column whose every negative is a test positive: once the triplets that
    would show it to training are dropped, nothing is left; the split refuses before it (or anything) is written."""
    from qeu_kedro.pipelines.bge_finetune.nodes import make_pairs, split_pairs
    from qeu_kedro.validation import RawDataError

    params = load_config(project, key="parameters")["bge_finetune"]
    path = project / "data/01_raw/pairs.csv"
    raw = pd.read_csv(path, keep_default_na=False, na_values=[""])
    _, test = split_pairs(make_pairs(raw, params), params)
    # the rows of that positive take another test positive: a negative that is its own positive is refused apart
    first, second = pd.unique(test["positive"])[:2]
    raw.assign(negative=raw["positive"].map(lambda p: second if p == first else first)).to_csv(path, index=False)
    with pytest.raises(RawDataError, match=r"column 'negative'.*nothing is left to train on"):
        run_kedro(project, pipeline_names=["bge_finetune"])
    assert sorted(p for p in (project / "data").rglob("*") if p.is_file() and "01_raw" not in p.parts) == []


def test_bge_finetune_reads_base_model_and_writes_the_finetuned_namespace_model():
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    from tests.conftest import REPO

    bootstrap_project(REPO)
    bge = pipelines["bge_finetune"]
    assert "base.embedding_model" in bge.inputs()
    assert "finetuned.embedding_model" in bge.all_outputs()
    assert "finetuned.embedding_model" in pipelines["movie_embedding"].inputs()
    namespaced = {f"{ns}.ridge_results" for ns in ("base", "finetuned")}
    assert namespaced | {"bge_finetune.metrics", "params:movie_comparison"} == pipelines["movie_comparison"].inputs()


@pytest.mark.parametrize("env", ENVS)
def test_environments_write_the_finetuned_model_to_its_folder(project, env):
    catalog = load_config(project, env=env)
    assert catalog["finetuned.embedding_model"]["filepath"].endswith("bge_finetuned")
    assert "model" not in catalog["finetuned.embedding_model"]


def test_environments_choose_their_data_and_model(project):
    movielens = load_config(project, env="movielens")
    assert movielens["bge_pairs"]["filepath"].endswith("tmdb5000/tmdb_5000_movies.csv")
    assert load_config(project, env="movielens", key="parameters")["bge_finetune"]["source"]["anchor_column"] == "title"
    assert load_config(project, env="xquad")["bge_pairs"]["filepath"].endswith("xquad/xquad.en.json")
    assert load_config(project, env="xquad", key="parameters")["bge_finetune"]["source"]["format"] == "squad"
    hub = load_config(project, env="hub")
    assert hub["base.embedding_model"]["model"] == "BAAI/bge-base-en"
    assert load_config(project, env="hub", key="parameters")["bge_finetune"]["matryoshka_dims"] == [
        768,
        512,
        256,
        128,
        64,
    ]


@pytest.mark.slow
def test_hub_environment_fails_at_once_offline_with_advice(project, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Exception, match=r"(?s)BAAI/bge-base-en.*default configuration environment"):
        run_kedro(project, env="hub", pipeline_names=["bge_finetune"])
    assert not (project / "data/06_models/bge_finetuned").exists()


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize("env", ["movielens", "xquad"])
def test_bounded_real_run(project, shared_data, env):
    run_kedro(project, env=env, pipeline_names=["bge_finetune"], params=REAL_BOUNDED)
    out = project / "data"
    metrics = json.loads((out / f"08_reporting/{env}/bge_finetune/metrics.json").read_text())
    check_metrics(metrics, [384, 256, 128, 64, 32])
    assert metrics["data"]["n_test_queries"] == 30 and metrics["data"]["n_corpus"] == 60
    # movielens ships a model soup of two seeds (conf/movielens): two runs of 2 steps, their weights averaged
    soup = {"movielens": [42, 7], "xquad": None}[env]
    assert metrics["training"].get("soup_seeds") == soup
    assert metrics["training"]["steps"] == 2 * (len(soup) if soup else 1)
    assert metrics["data_label"].split()[0] in ("TMDB", "XQuAD")
    train = pd.read_parquet(out / f"05_model_input/{env}/bge_finetune/train_pairs.parquet")
    test = pd.read_parquet(out / f"05_model_input/{env}/bge_finetune/test_pairs.parquet")
    assert len(train) == 32
    assert not set(train["anchor"]) & set(test["anchor"])  # test questions / titles never trained on
    # movielens splits by positive (test overviews unseen); xquad by pair, as the original split its rows
    expected = {"movielens": ("positive", False), "xquad": ("pair", True)}[env]
    assert (metrics["data"]["split_by"], metrics["data"]["triplets"]) == expected
    if metrics["data"]["split_by"] == "positive":
        assert not set(train["positive"]) & set(test["positive"])
    if metrics["data"]["triplets"]:  # xquad mines one hard negative per pair among the training positives
        training_set = pd.read_parquet(out / f"05_model_input/{env}/bge_finetune/training_set.parquet")
        assert (
            0
            < metrics["data"]["n_train_rows"]
            == len(training_set)
            <= 32 - metrics["training"]["validation"]["n_queries"]
        )
        assert set(training_set["negative"]) <= set(train["positive"])
        assert (training_set["negative"] != training_set["positive"]).all()
    else:
        assert metrics["data"]["n_train_rows"] + metrics["training"]["validation"]["n_queries"] == 32
    assert (out / f"06_models/{env}/bge_finetuned/modules.json").exists()
    assert not (out / "06_models/bge_finetuned").exists()


@pytest.mark.slow
def test_a_new_question_to_answer_set_runs_through_a_configuration_environment_alone(project):
    """Any two text columns, an id column and the model's prefixes: conf/<env>/ only, no code."""
    from qeu_kedro.sample_data.pairs import make_pairs as make_sample_pairs

    faq = make_sample_pairs(n_pairs=120, seed=4).rename(
        columns={"id": "qid", "anchor": "question", "positive": "answer"}
    )
    faq.insert(1, "topic", "films")  # a column the run does not use
    faq["qid"] = "faq-" + faq["qid"].astype(str)
    faq.to_csv(project / "data/01_raw/faq.csv", index=False)
    env = project / "conf/faq"
    env.mkdir()
    (env / "globals.yml").write_text('out_prefix: "faq/"\nbge_data_label: "a FAQ"\n')
    (env / "catalog_bge_finetune.yml").write_text(
        "bge_pairs:\n  type: pandas.CSVDataset\n  filepath: data/01_raw/faq.csv\n"
    )
    (env / "parameters_bge_finetune.yml").write_text(
        "bge_finetune:\n"
        "  source: {anchor_column: question, positive_column: answer, id_column: qid}\n"
        '  prompts: {query: "query: ", document: "passage: "}\n'
    )
    bounded = {
        "bge_finetune": {"trainer": {"max_steps": 2, "per_device_train_batch_size": 16}, "show_progress_bar": False}
    }
    run_kedro(project, env="faq", pipeline_names=["bge_finetune"], params=bounded)
    out = project / "data"
    metrics = json.loads((out / "08_reporting/faq/bge_finetune/metrics.json").read_text())
    check_metrics(metrics, [384, 256, 128, 64, 32])
    assert metrics["data_label"] == "a FAQ" and metrics["data"]["n_test_queries"] == 24  # 20 % of 120
    test = pd.read_parquet(out / "05_model_input/faq/bge_finetune/test_pairs.parquet")
    assert test["id"].str.startswith("faq-").all()  # the data's own ids
    assert (out / "06_models/faq/bge_finetuned/modules.json").exists()
