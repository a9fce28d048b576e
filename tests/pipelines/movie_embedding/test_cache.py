"""The embedding cache: hits, misses, invalidation on a model change, and lazily loaded models."""

import shutil

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.datasets import SentenceTransformerDataset
from qeu_kedro.datasets.embedding_cache import EmbeddingCacheDataset, empty_cache
from qeu_kedro.datasets.lazy_sentence_transformer import (
    LazySentenceTransformer,
    LazySentenceTransformerDataset,
    folder_identity,
    weights_identity,
)
from qeu_kedro.models import resolve_model
from qeu_kedro.pipelines.movie_embedding.nodes import cache_key, embed_movies

ENCODER = {"batching": "fixed", "max_tokens_per_batch": 4096, "quantize": "none", "text_partitions": 0}
PARAMS = {
    "text_columns": ["title", "overview"],
    "batch_size": 8,
    "normalize_embeddings": True,
    "show_progress_bar": False,
    "use_cache": True,
    "encoder": ENCODER,
}


def movies(n=3):
    rows = [
        (10, "Starship Voyage (1980)", "Astronauts travel to a distant planet aboard a starship."),
        (20, "Love in Paris (1990)", "Two strangers fall in love during a rainy week in Paris."),
        (30, "The Curse (1975)", "A cursed doll brings death to everyone who owns it."),
        (40, "Deep Water (2001)", "A diver searches a sunken ship for a lost treasure."),
    ]
    return pd.DataFrame(rows[:n], columns=["movie_id", "title", "overview"])


class Recording:
    """Forwards to a model and records the texts it was asked to encode."""

    def __init__(self, model):
        self.model, self.encoded = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode(self, texts, **kwargs):
        self.encoded.extend(texts)
        return self.model.encode(texts, **kwargs)


@pytest.fixture(scope="module")
def minilm_folder():
    return resolve_model("bundled:all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def minilm(minilm_folder):
    """The SentenceTransformer itself (a model passed in directly, keyed by its loaded weights)."""
    return SentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load().model


def test_first_run_misses_rerun_hits_without_loading_the_model(tmp_path):
    dataset = EmbeddingCacheDataset(str(tmp_path / "cache.parquet"))
    assert not dataset.exists() and dataset.load().empty
    lazy = LazySentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()
    first, cache = embed_movies(movies(), lazy, dataset.load(), PARAMS)
    assert lazy.loaded and len(cache) == 6 and cache["model_key"].nunique() == 1
    dataset.save(cache)

    again = LazySentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()
    second, cache2 = embed_movies(movies(), again, dataset.load(), PARAMS)
    assert not again.loaded  # every text was cached: the model was never read
    pd.testing.assert_frame_equal(first, second)
    assert set(cache2["text_sha256"]) == set(cache["text_sha256"])


def test_new_movie_encodes_only_its_texts(minilm):
    _, cache = embed_movies(movies(3), minilm, None, PARAMS)
    _, cache = embed_movies(movies(3), minilm, cache.iloc[0:0], PARAMS)  # empty cache: all six texts
    recording = Recording(minilm)
    out, updated = embed_movies(movies(4), recording, cache, PARAMS)
    assert recording.encoded == [movies(4)["title"][3], movies(4)["overview"][3]]
    assert len(updated) == 8
    reference, _ = embed_movies(movies(4), minilm, None, PARAMS)
    np.testing.assert_allclose(out.drop(columns="movie_id"), reference.drop(columns="movie_id"), atol=1e-5)


def test_changed_model_invalidates_the_cache(minilm, minilm_folder, tmp_path):
    import torch

    _, cache = embed_movies(movies(), minilm, pd.DataFrame(columns=["model_key", "text_sha256", "embedding"]), PARAMS)
    # a "fine-tuned" model: the same folder with one weight changed
    changed = minilm.__class__(minilm_folder, device="cpu")
    with torch.no_grad():
        next(changed.parameters())[0, 0] += 0.5
    changed.save(str(tmp_path / "changed"))
    assert folder_identity(tmp_path / "changed") != folder_identity(minilm_folder)
    assert weights_identity(changed) != weights_identity(minilm)

    lazy = LazySentenceTransformerDataset(filepath=str(tmp_path / "changed")).load()
    assert cache_key(lazy, PARAMS) != cache_key(minilm, PARAMS)
    recording = Recording(lazy)
    _, updated = embed_movies(movies(), recording, cache, PARAMS)
    assert len(recording.encoded) == 6  # nothing reused from the other model
    assert updated["model_key"].nunique() == 1 and set(updated["model_key"]) != set(cache["model_key"])
    # a model of the same weights loaded again hits the cache written with its identity
    assert cache_key(minilm, PARAMS) == cache_key(minilm.__class__(minilm_folder, device="cpu"), PARAMS)
    # the eager and the lazy dataset load the same handle type: both keyed by the folder, the model read or not
    eager = SentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()
    lazy_base = LazySentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()
    assert eager.loaded and not lazy_base.loaded
    assert cache_key(eager, PARAMS) == cache_key(lazy_base, PARAMS) and not lazy_base.loaded


def test_folder_identity_follows_the_weights(minilm_folder, tmp_path):
    copy = shutil.copytree(minilm_folder, tmp_path / "copy")
    assert folder_identity(copy) == folder_identity(minilm_folder)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert folder_identity(copy) != folder_identity(minilm_folder)


def test_settings_that_change_vectors_change_the_key(minilm):
    assert cache_key(minilm, PARAMS) != cache_key(minilm, {**PARAMS, "normalize_embeddings": False})
    assert cache_key(minilm, PARAMS) != cache_key(minilm, {**PARAMS, "encoder": {**ENCODER, "quantize": "int8"}})
    assert cache_key(minilm, PARAMS) == cache_key(minilm, {**PARAMS, "batch_size": 3})
    with pytest.raises(ValueError, match="encoder.batching"):
        cache_key(minilm, {**PARAMS, "encoder": {**ENCODER, "batching": "sorted"}})


def test_load_args_that_change_vectors_change_the_key(minilm, minilm_folder):
    def lazy(**load_args):
        return LazySentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2", load_args=load_args).load()

    full, small = lazy(), lazy(truncate_dim=32)
    assert cache_key(small, PARAMS) != cache_key(full, PARAMS)
    prompted = lazy(prompts={"movie": "A movie: "}, default_prompt_name="movie")
    assert cache_key(prompted, PARAMS) != cache_key(full, PARAMS)
    assert cache_key(lazy(model_kwargs={"attn_implementation": "eager"}), PARAMS) != cache_key(full, PARAMS)
    # where the model runs is not part of the key (the dataset's default is device="cpu")
    assert cache_key(LazySentenceTransformer(full.source, {}), PARAMS) == cache_key(full, PARAMS)
    assert not (full.loaded or small.loaded or prompted.loaded)  # keyed without loading
    # a SentenceTransformer given as it is: its truncate_dim counts
    truncated = minilm.__class__(minilm_folder, device="cpu", truncate_dim=32)
    assert cache_key(truncated, PARAMS) != cache_key(minilm, PARAMS)

    # the run with truncate_dim=32 does not reuse the full model's vectors: it encodes its own
    first, cache = embed_movies(movies(2), full, empty_cache(), PARAMS)
    second, _ = embed_movies(movies(2), small, cache, PARAMS)
    assert small.loaded
    assert first.shape[1] == 1 + 2 * 384 and second.shape[1] == 1 + 2 * 32


def test_cached_vectors_agree_with_a_fresh_run_to_float32_rounding(minilm):
    """A text's vector depends slightly on the texts in its batch: a run that reuses vectors encoded
    in other batches agrees with a fresh run to float32 rounding (measured up to 2.1e-7), not bit for bit."""
    titles = [f"Movie {i}: " + " ".join(["a long and winding tale"] * (i % 7)) for i in range(40)]
    overviews = [f"The plot of {t.lower()}" for t in reversed(titles)]
    table = pd.DataFrame({"movie_id": range(1, 41), "title": titles, "overview": overviews})
    for batching in ("fixed", "length_buckets"):
        params = {**PARAMS, "batch_size": 16, "encoder": {**ENCODER, "batching": batching, "max_tokens_per_batch": 256}}
        fresh, _ = embed_movies(table, minilm, empty_cache(), params)
        _, history = embed_movies(table.head(7), minilm, empty_cache(), params)  # an earlier, smaller run
        recording = Recording(minilm)
        reused, _ = embed_movies(table, recording, history, params)
        assert 0 < len(recording.encoded) < 80  # some vectors reused, the others encoded in other batches
        np.testing.assert_allclose(reused.drop(columns="movie_id"), fresh.drop(columns="movie_id"), rtol=0, atol=1e-5)


def test_cache_file_round_trip(tmp_path):
    dataset = EmbeddingCacheDataset(str(tmp_path / "sub" / "cache.parquet"))
    table = pd.DataFrame(
        {
            "model_key": ["k", "k"],
            "text_sha256": ["a", "b"],
            "embedding": [np.ones(3, np.float32), np.zeros(3, np.float32)],
        }
    )
    dataset.save(table)
    loaded = dataset.load()
    assert loaded["text_sha256"].tolist() == ["a", "b"]
    np.testing.assert_array_equal(np.stack(loaded["embedding"]), np.stack(table["embedding"]))
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cache.parquet"]  # no temporary file left
