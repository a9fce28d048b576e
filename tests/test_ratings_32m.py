"""The MovieLens-32M-shaped generator: its shape, tails and partitions, on a small size."""

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.sample_data import ratings_32m as G


def test_user_activity_sums_to_the_rows_with_twenty_ratings_at_least():
    counts = G.user_activity(3_200_020, seed=0)
    assert counts.sum() == 3_200_020
    assert len(counts) == round(3_200_020 * G.USERS_PER_RATING) == 20_095
    assert counts.min() >= 20
    # heavy tail: the most active user rates far more than the median one
    assert counts.max() > 20 * np.median(counts)


def test_movie_popularity_is_heavy_tailed():
    ids, p = G.movie_popularity(seed=0)
    assert sorted(ids) == list(range(1, G.N_MOVIES + 1))
    assert p.sum() == pytest.approx(1.0)
    top = np.sort(p)[::-1]
    assert top[:1000].sum() > 0.3  # 1 % of the movies take over 30 % of the ratings
    assert top[0] < 0.01


def test_distinct_draws_keep_each_users_movies_distinct_and_follow_popularity():
    rng = np.random.default_rng(0)
    p = np.array([0.7, 0.1, 0.1, 0.05, 0.05])
    user_id = np.repeat([1, 2, 3], [5, 3, 1])  # user 1 rates every movie; user 3 one
    movie = G.distinct_draws(rng, user_id, p)
    assert sorted(movie[:5]) == [0, 1, 2, 3, 4] and len(set(movie[5:8])) == 3
    # one rating per user: plain draws by popularity
    many = G.distinct_draws(rng, np.arange(20_000), p)
    assert np.bincount(many, minlength=5) / 20_000 == pytest.approx(p, abs=0.02)


def test_writes_partitioned_parquet_sorted_by_user(tmp_path):
    info = G.write(tmp_path, n_rows=60_000, partition_rows=25_000, seed=1, embedding_dim=4)
    files = sorted((tmp_path / "ratings").glob("part-*.parquet"))
    assert len(files) == info["partitions"] == 3
    ratings = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    assert list(ratings.columns) == ["user_id", "movie_id", "rating", "timestamp"]
    assert len(ratings) == 60_000 and ratings["user_id"].is_monotonic_increasing
    assert ratings["rating"].between(1, 5).all() and ratings["movie_id"].between(1, G.N_MOVIES).all()
    # each user rates a movie once, as in MovieLens (the ridge's checks refuse a repeated pair)
    assert not ratings.duplicated(["user_id", "movie_id"]).any()
    # a user's ratings are never split over two partitions
    firsts = [pd.read_parquet(f)["user_id"] for f in files]
    assert all(a.max() < b.min() for a, b in pairwise(firsts))
    users = pd.read_parquet(tmp_path / "users.parquet")
    assert set(ratings["user_id"]) == set(users["user_id"]) and users["occupation"].isin(G.OCCUPATIONS).all()
    embeddings = pd.read_parquet(tmp_path / "movie_embeddings.parquet")
    assert embeddings.shape == (G.N_MOVIES, 1 + 2 * 4)
