"""A run whose input files are not there stops before any node, saying what to do for each."""

import pytest

from tests.conftest import run_kedro

pytestmark = pytest.mark.slow


def _written(project):
    return sorted(p for p in (project / "data").rglob("*") if p.is_file() and "01_raw" not in p.parts)


def test_missing_real_data_names_the_shared_folder(project, tmp_path, monkeypatch):
    empty = tmp_path / "no-shared-data"
    empty.mkdir()
    monkeypatch.setenv("QEU_SHARED_DATA", str(empty))
    with pytest.raises(FileNotFoundError) as raised:
        run_kedro(project, env="movielens", pipeline_names=["movie_embedding"], namespaces=["base"])
    text = str(raised.value)
    assert "The run --env movielens cannot start" in text
    assert f"movie_overviews: no file {empty}/tmdb5000/tmdb_5000_movies.csv" in text
    assert "licensed real data" in text and "QEU_SHARED_DATA" in text
    assert _written(project) == []


def test_an_input_another_pipeline_writes_names_that_pipeline(project):
    with pytest.raises(
        FileNotFoundError,
        match=r"bge_finetune\.metrics: no file .*written by the pipeline "
        r"bge_finetune: run that first \(kedro run --pipelines bge_finetune\)",
    ):
        run_kedro(project, pipeline_names=["movie_comparison"])
    assert _written(project) == []


def test_the_advice_names_every_pipeline_a_missing_input_needs_upstream_first(project):
    """finetuned.ridge_results on a fresh clone: ridge_analysis alone fails on the missing embeddings, and
    movie_embedding on the model bge_finetune has not trained; the advice was 'run ridge_analysis'."""
    with pytest.raises(FileNotFoundError) as raised:
        run_kedro(project, pipeline_names=["movie_comparison"])
    line = next(x for x in str(raised.value).splitlines() if x.startswith("- finetuned.ridge_results"))
    assert "written by the pipeline ridge_analysis (which needs bge_finetune, movie_embedding first" in line
    assert "(kedro run --pipelines bge_finetune,movie_embedding,ridge_analysis)" in line


def test_the_advice_runs_only_the_namespace_needed_when_the_whole_pipeline_could_not_run(project):
    """base.movie_embeddings on a fresh clone: movie_embedding as a whole needs the finetuned model, which
    bge_finetune has not trained; base needs nothing more. The advice was to train bge_finetune first."""
    with pytest.raises(FileNotFoundError) as raised:
        run_kedro(project, pipeline_names=["ridge_analysis"], namespaces=["base"])
    line = next(x for x in str(raised.value).splitlines() if x.startswith("- base.movie_embeddings"))
    assert "written by the pipeline movie_embedding: run that first" in line and "bge_finetune" not in line
    assert "(kedro run --pipelines movie_embedding --namespaces base)" in line
    assert _written(project) == []
    # the advice runs
    run_kedro(project, pipeline_names=["movie_embedding"], namespaces=["base"])
    assert (project / "data/04_feature/base/movie_embeddings.parquet").is_file()


def test_the_hub_environment_offline_stops_before_any_node_naming_each_hub_model(project, tmp_path, monkeypatch):
    """`kedro run --env hub` offline trained and saved 25 nodes' outputs (bge's pairs among them) before the first
    node that loads a hub model failed; the README said it stops at once."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))  # none of the models cached
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as raised:
        run_kedro(project, env="hub")
    text = str(raised.value)
    for name, model in [
        ("base.embedding_model", "BAAI/bge-base-en"),
        ("jrte_sentiment.level1_model", "mr4/bert-base-jp-sentiment-analysis"),
        ("jrte_sentiment.level2_base_model", "tohoku-nlp/bert-base-japanese-v3"),
        ("alpaca_base_model", "microsoft/phi-2"),
    ]:
        assert f"- {name}: the hub model '{model}' is not in the local Hugging Face cache, and HF_HUB_OFFLINE" in text
    assert "default configuration environment" in text
    assert _written(project) == []


def test_a_file_to_build_first_says_how(project):
    with pytest.raises(
        FileNotFoundError,
        match=r"bge_pairs: no file \S*data/benchmarks/debian/pairs.csv; build it first "
        r"with `python benchmarks/debian_pairs.py",
    ):
        run_kedro(project, env="debian", pipeline_names=["bge_finetune"])
    assert _written(project) == []


def test_inputs_the_dataset_itself_finds_are_not_reported_missing(tmp_path):
    """A glob (dask's CSV of many files) or a versioned file is there when the dataset says so, whatever
    its _filepath reads like; only what the dataset cannot find is named."""
    from kedro.io import DataCatalog
    from kedro.pipeline import Node, Pipeline
    from kedro_datasets.dask import CSVDataset as DaskCSV
    from kedro_datasets.pandas import CSVDataset

    from qeu_kedro.hooks import missing_inputs

    for i in range(2):
        (tmp_path / f"ratings-{i}.csv").write_text("user_id,rating\n1,4\n")
    catalog = DataCatalog(
        {
            "parts": DaskCSV(filepath=str(tmp_path / "ratings-*.csv")),
            "gone": CSVDataset(filepath=str(tmp_path / "gone.csv")),
        }
    )
    pipeline = Pipeline([Node(lambda a, b: a, ["parts", "gone"], "out", name="use")])
    problem = missing_inputs(pipeline, catalog, "local")
    assert problem is not None and "- gone: no file" in problem and "parts" not in problem


def test_the_projects_own_file_datasets_are_checked_too(project):
    """base.movie_embeddings is the project's ParquetDataset (a kedro-datasets subclass): ridge_analysis alone ran
    three nodes, then failed with kedro's raw DatasetError."""
    with pytest.raises(
        FileNotFoundError, match=r"base\.movie_embeddings: no file .*written by the pipeline movie_embedding"
    ):
        run_kedro(project, pipeline_names=["ridge_analysis"], namespaces=["base"])
    assert _written(project) == []


def test_only_missing_outputs_runs_are_left_to_kedro(project):
    """With --only-missing-outputs the runner drops, after the hooks, the nodes whose outputs exist, so an input
    only they read may rightly be absent: the check stands aside and kedro names what it cannot load."""
    from kedro.io.core import DatasetError

    with pytest.raises(DatasetError) as raised:
        run_kedro(project, pipeline_names=["movie_comparison"], only_missing_outputs=True)
    assert "cannot start" not in str(raised.value)


def test_a_model_not_yet_trained_stops_the_run_before_the_base_namespace_writes(project):
    """movie_embedding on a fresh clone: finetuned.embedding_model has not been trained; the base namespace
    embedded and saved its movies before the finetuned one failed to load the model."""
    with pytest.raises(
        FileNotFoundError,
        match=r"finetuned\.embedding_model: no model saved at \S*data/06_models/bge_finetuned; it is written by "
        r"the pipeline bge_finetune: run that first \(kedro run --pipelines bge_finetune\)",
    ):
        run_kedro(project, pipeline_names=["movie_embedding"])
    assert _written(project) == []


def test_a_saved_lora_adapter_whose_hub_base_model_cannot_be_loaded_stops_the_run_before_it(tmp_path, monkeypatch):
    """The adapter's folder exists, so the hub check skipped it, but loading it loads its base model first."""
    from huggingface_hub import constants
    from kedro.io import DataCatalog
    from kedro.pipeline import Node, Pipeline

    from qeu_kedro.datasets.hf_causal_lm import PeftAdapterDataset
    from qeu_kedro.hooks import missing_inputs

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "lora_adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    pipeline = Pipeline([Node(lambda m: 1, "alpaca_sft.lora_adapter", "out", name="generate_answers_after")])
    for base, refused in (("microsoft/phi-2", True), ("bundled:SmolLM2-135M-Instruct", False)):
        adapter = PeftAdapterDataset(filepath=str(folder), base_model=base, allow_download=True)
        problem = missing_inputs(pipeline, DataCatalog({"alpaca_sft.lora_adapter": adapter}), "hub")
        if refused:
            assert "- alpaca_sft.lora_adapter: the hub model 'microsoft/phi-2' is not in the local" in problem
        else:
            assert problem is None
