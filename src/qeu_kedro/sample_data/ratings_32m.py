"""MovieLens-32M-shaped synthetic ratings as partitioned Parquet, to measure scale without the licensed file.

``python -m qeu_kedro.sample_data.ratings_32m --rows 32000000 --out data/benchmarks/ml32m``

MovieLens 32M has 32,000,204 ratings by 200,948 users of 87,585 movies. The generator keeps
that shape at any size: 87,585 movies, users in proportion to the rows (200,948 at 32M),
each user rating at least 20 movies (as MovieLens keeps only such users), user activity
log-normal (a long tail of very active users), movie popularity Zipf-Mandelbrot
(``p ∝ (rank + 50)^-1``: a few movies rated by a large share of users, most by few).
Each user rates a movie at most once (as in MovieLens; the ridge's check refuses a repeated
pair). Ratings are whole stars from a linear model of the movie's embedding, the user's
occupation and noise, so the ridge finds something.

It writes, under ``--out``:

- ``ratings/part-NNNNN.parquet``: ``user_id``, ``movie_id``, ``rating`` (int8), ``timestamp``,
  sorted by user as the MovieLens files are, one file per partition (``--partition-rows``);
- ``users.parquet``: ``user_id``, ``age``, ``gender``, ``occupation`` (MovieLens 100K's codes,
  so with the 768 embedding dimensions the design has 1 + 2 + 21 + 768 = 792 features);
- ``movie_embeddings.parquet``: ``movie_id``, ``title_embedding_<i>``, ``overview_embedding_<i>``
  (384 each, unit vectors: what ``movie_embedding`` writes for MiniLM).

Partitions are generated one at a time from their own seed: memory stays at one partition.
"""

from __future__ import annotations

import argparse
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

N_MOVIES = 87_585
USERS_PER_RATING = 200_948 / 32_000_204
MIN_PER_USER = 20
OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive",
    "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer",
    "retired", "salesman", "scientist", "student", "technician", "writer",
)  # fmt: skip
EMBEDDING_DIM = 384


def user_activity(n_rows: int, seed: int) -> np.ndarray:
    """Ratings per user: ``20 +`` log-normal, scaled so they sum to ``n_rows`` exactly."""
    n_users = max(1, round(n_rows * USERS_PER_RATING))
    rng = np.random.default_rng(seed)
    extra = rng.lognormal(mean=0.0, sigma=1.3, size=n_users)
    budget = n_rows - MIN_PER_USER * n_users
    if budget < 0:
        raise ValueError(f"{n_rows} rows cannot give {n_users} users {MIN_PER_USER} ratings each")
    counts = MIN_PER_USER + np.floor(extra / extra.sum() * budget).astype(np.int64)
    counts[rng.choice(n_users, size=n_rows - counts.sum(), replace=False)] += 1
    return counts


def movie_popularity(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Movie ids (shuffled: popularity does not follow the id) and their rating probabilities."""
    rank = np.arange(1, N_MOVIES + 1, dtype=np.float64)
    p = (rank + 50.0) ** -1.0
    ids = np.random.default_rng(seed).permutation(N_MOVIES) + 1
    return ids, p / p.sum()


def movie_embeddings(seed: int, dim: int = EMBEDDING_DIM) -> pd.DataFrame:
    """Unit random vectors per movie, for the title and the overview."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"movie_id": np.arange(1, N_MOVIES + 1)})
    for column in ("title", "overview"):
        v = rng.normal(size=(N_MOVIES, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        table = pd.concat([table, pd.DataFrame(v, columns=[f"{column}_embedding_{i}" for i in range(dim)])], axis=1)
    return table


def users_table(n_users: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n_users + 1),
            "age": rng.integers(7, 74, n_users),
            "gender": rng.choice(["F", "M"], n_users, p=[0.29, 0.71]),
            "occupation": rng.choice(OCCUPATIONS, n_users),
        }
    )


def distinct_draws(rng: np.random.Generator, user_id: np.ndarray, p: np.ndarray) -> np.ndarray:
    """A movie (index into ``p``) for each rating, drawn by popularity ``p``, no user rating a movie
    twice (as in MovieLens): repeated draws of a user are drawn again until none is left."""
    movie = rng.choice(len(p), size=len(user_id), p=p)
    key = user_id.astype(np.int64) * len(p)
    while True:
        repeated = pd.Series(key + movie).duplicated().to_numpy()
        if not repeated.any():
            return movie
        movie[repeated] = rng.choice(len(p), size=int(repeated.sum()), p=p)


def write(
    out: Path, n_rows: int, partition_rows: int = 1_000_000, seed: int = 0, embedding_dim: int = EMBEDDING_DIM
) -> dict[str, float]:
    """Write the three tables under ``out``; returns what was written (rows, users, partitions, seconds)."""
    start = time.perf_counter()
    out = Path(out)
    (out / "ratings").mkdir(parents=True, exist_ok=True)
    for old in (out / "ratings").glob("part-*.parquet"):
        old.unlink()
    counts = user_activity(n_rows, seed)
    users = users_table(len(counts), seed + 1)
    users.to_parquet(out / "users.parquet", index=False)
    embeddings = movie_embeddings(seed + 2, embedding_dim)
    embeddings.to_parquet(out / "movie_embeddings.parquet", index=False)
    rng = np.random.default_rng(seed + 3)
    weights = rng.normal(0, 0.5, size=2 * embedding_dim)
    effect = embeddings.drop(columns="movie_id").to_numpy(np.float32) @ weights.astype(np.float32)
    occupation_effect = dict(zip(OCCUPATIONS, rng.normal(0, 0.3, len(OCCUPATIONS)), strict=True))
    user_effect = users["occupation"].map(occupation_effect).to_numpy()
    del embeddings
    ids, p = movie_popularity(seed + 4)
    # users in id order, cut into partitions of about partition_rows ratings (whole users per partition)
    ends = np.cumsum(counts)
    cuts = np.searchsorted(ends, np.arange(partition_rows, n_rows, partition_rows), side="left") + 1
    bounds = np.unique(np.concatenate([[0], cuts, [len(counts)]]))
    for part, (a, b) in enumerate(pairwise(bounds)):
        prng = np.random.default_rng([seed, part])
        user_id = np.repeat(np.arange(a + 1, b + 1), counts[a:b])
        movie_id = ids[distinct_draws(prng, user_id, p)]
        score = 3.5 + effect[movie_id - 1] + user_effect[user_id - 1] + prng.normal(0, 0.9, len(user_id))
        pd.DataFrame(
            {
                "user_id": user_id.astype(np.int32),
                "movie_id": movie_id.astype(np.int32),
                "rating": np.clip(np.rint(score), 1, 5).astype(np.int8),
                "timestamp": prng.integers(789_652_009, 1_697_164_147, len(user_id)).astype(np.int64),
            }
        ).to_parquet(out / "ratings" / f"part-{part:05d}.parquet", index=False)
    return {
        "rows": int(n_rows),
        "users": int(len(counts)),
        "movies": N_MOVIES,
        "partitions": int(len(bounds) - 1),
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32_000_204)
    parser.add_argument("--out", type=Path, default=Path("data/benchmarks/ml32m"))
    parser.add_argument("--partition-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write(args.out, args.rows, args.partition_rows, args.seed))


if __name__ == "__main__":
    main()
