import numpy as np
import pandas as pd
import pytest

from qeu_kedro.datasets import SentenceTransformerDataset
from qeu_kedro.pipelines.movie_embedding.nodes import embed_movies

PARAMS = {
    "text_columns": ["title", "overview"],
    "batch_size": 2,
    "normalize_embeddings": True,
    "show_progress_bar": False,
    "use_cache": True,
    "encoder": {"batching": "fixed", "max_tokens_per_batch": 4096, "quantize": "none", "text_partitions": 0},
}


@pytest.fixture(scope="module")
def minilm():
    return SentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()


def movies():
    return pd.DataFrame(
        {
            "movie_id": [10, 20, 30],
            "title": ["Starship Voyage (1980)", "Love in Paris (1990)", "The Curse (1975)"],
            "overview": [
                "Astronauts travel to a distant planet aboard a starship.",
                "Two strangers fall in love during a rainy week in Paris.",
                "A cursed doll brings death to everyone who owns it.",
            ],
        }
    )


def test_embed_movies_shape_names_norms(minilm):
    out, _ = embed_movies(movies(), minilm, None, PARAMS)
    assert out["movie_id"].tolist() == [10, 20, 30]
    assert out.shape == (3, 1 + 2 * 384)
    assert out.columns[1] == "title_embedding_0" and out.columns[-1] == "overview_embedding_383"
    title = out.filter(like="title_embedding_").to_numpy()
    assert title.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(title, axis=1), 1.0, atol=1e-5)


def test_embeddings_are_deterministic_and_semantic(minilm):
    first, _ = embed_movies(movies(), minilm, None, PARAMS)
    second, _ = embed_movies(movies(), minilm, None, {**PARAMS, "batch_size": 3})
    np.testing.assert_allclose(first.to_numpy(), second.to_numpy(), atol=1e-5)
    buckets = {**PARAMS, "encoder": {**PARAMS["encoder"], "batching": "length_buckets", "max_tokens_per_batch": 40}}
    third, _ = embed_movies(movies(), minilm, None, buckets)
    np.testing.assert_allclose(first.to_numpy(), third.to_numpy(), atol=1e-5)
    overview = first.filter(like="overview_embedding_").to_numpy()
    query = minilm.encode(["a film about space travel"], normalize_embeddings=True)[0]
    assert int(np.argmax(overview @ query)) == 0
