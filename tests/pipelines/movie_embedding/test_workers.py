"""Embedding on Dask workers: the same vectors as in process, the model loaded once per worker."""

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.datasets import LazySentenceTransformerDataset
from qeu_kedro.datasets.embedding_cache import empty_cache
from qeu_kedro.pipelines.movie_embedding import workers
from qeu_kedro.pipelines.movie_embedding.nodes import embed_movies

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
        distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
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
        distributed.LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
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
