"""Embedding on Dask workers: the in-process vectors (to float32 rounding), the model loaded once per worker
and loaded anew when the folder holds another model."""

import shutil

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.dask_cluster import local_cluster_arguments
from qeu_kedro.datasets import LazySentenceTransformerDataset, SentenceTransformerDataset
from qeu_kedro.datasets.embedding_cache import empty_cache
from qeu_kedro.datasets.lazy_sentence_transformer import folder_identity
from qeu_kedro.models import resolve_model
from qeu_kedro.pipelines.movie_embedding import workers
from qeu_kedro.pipelines.movie_embedding.nodes import embed_movies
from tests.conftest import DASK_IN_PROCESS, DASK_PROCESSES

distributed = pytest.importorskip("distributed")

PARAMS = {
    "text_columns": ["title", "overview"],
    "batch_size": 8,
    "normalize_embeddings": True,
    "show_progress_bar": False,
    "use_cache": True,
    "encoder": {"batching": "fixed", "max_tokens_per_batch": 4096, "quantize": "none", "text_partitions": 0},
}


def movies(n=12):
    return pd.DataFrame(
        {
            "movie_id": np.arange(1, n + 1),
            "title": [f"Movie number {i}" for i in range(n)],
            "overview": [
                f"A story about {w} and the sea, part {i}." for i, w in enumerate(["love", "war", "cats"] * (n // 3))
            ],
        }
    )


def lazy_model():
    return LazySentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()


def partitioned(n):
    return {**PARAMS, "encoder": {**PARAMS["encoder"], "text_partitions": n}}


@pytest.mark.slow
def test_partitions_on_an_in_process_cluster_give_the_in_process_vectors_with_one_load():
    table = movies()
    expected, _ = embed_movies(table, lazy_model(), None, PARAMS)
    workers.LOADS.clear()
    workers._MODELS.clear()
    with (
        distributed.LocalCluster(**local_cluster_arguments(DASK_IN_PROCESS)) as cluster,
        distributed.Client(cluster) as client,
    ):
        model = lazy_model()
        got, cache = embed_movies(table, model, empty_cache(), partitioned(5))
        assert "encode_partition" in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert not model.loaded, "the client process itself never loaded the model"
    # two worker threads share this process: one load for five partitions
    assert sum(workers.LOADS.values()) == 1
    pd.testing.assert_frame_equal(got, expected, check_exact=False, atol=1e-6)
    assert len(cache) == len(set(table["title"]) | set(table["overview"]))
    # the cache is respected: a second run with the cache encodes nothing
    again, _ = embed_movies(table, lazy_model(), cache, partitioned(5))
    assert sum(workers.LOADS.values()) == 1
    pd.testing.assert_frame_equal(again, got)


@pytest.mark.slow
def test_worker_processes_load_the_model_once_each():
    table = movies(24)
    with (
        distributed.LocalCluster(**local_cluster_arguments(DASK_PROCESSES)) as cluster,
        distributed.Client(cluster) as client,
    ):
        got, _ = embed_movies(table, lazy_model(), None, partitioned(8))
        loads = client.run(
            lambda: sum(__import__("qeu_kedro.pipelines.movie_embedding.workers", fromlist=["LOADS"]).LOADS.values())
        )
    expected, _ = embed_movies(table, lazy_model(), None, PARAMS)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, atol=1e-5)
    # 8 partitions over 2 workers: each worker that ran one loaded the model exactly once
    assert set(loads.values()) <= {0, 1} and sum(loads.values()) >= 1, loads


def test_a_model_saved_again_at_the_same_path_is_loaded_anew_by_the_workers(tmp_path):
    """bge_finetune writes a new model to the same folder: the next run, in the same process (threaded
    scheduler, or a long-lived cluster), encodes with the new model, not the one its workers kept."""
    folder = tmp_path / "bge_finetuned"
    shutil.copytree(resolve_model("bundled:all-MiniLM-L6-v2"), folder)
    dataset = LazySentenceTransformerDataset(filepath=str(folder))
    table = movies(3)
    params = {**partitioned(2), "text_columns": ["title"]}  # no distributed client: the threaded scheduler
    first, cache = embed_movies(table, dataset.load(), empty_cache(), params)

    import torch

    retrained = dataset.load().load()
    with torch.no_grad():
        for weights in retrained.parameters():
            weights.mul_(1.05).add_(0.01)
    SentenceTransformerDataset(filepath=str(folder)).save(retrained)
    second, cache2 = embed_movies(table, dataset.load(), cache, params)

    expected = retrained.encode(table["title"].tolist(), normalize_embeddings=True)
    got = second.drop(columns="movie_id").to_numpy()
    assert not np.allclose(got, first.drop(columns="movie_id").to_numpy(), atol=1e-3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert set(cache2["model_key"]) != set(cache["model_key"])
    # the worker keeps the model under the folder's identity, and only the current one
    kept = [key for key in workers._MODELS if key[0] == str(folder)]
    assert [key[1] for key in kept] == [folder_identity(folder)]


def test_a_worker_refuses_a_folder_that_is_not_the_keyed_model(tmp_path):
    folder = shutil.copytree(resolve_model("bundled:all-MiniLM-L6-v2"), tmp_path / "model")
    with pytest.raises(RuntimeError, match="not .* that the embedding cache key names"):
        workers.worker_model(str(folder), "0" * 64, {"device": "cpu"})
