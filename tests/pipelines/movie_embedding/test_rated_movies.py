"""The ratings' join loss is checked before the movies are embedded: a movies file cut short writes nothing."""

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from qeu_kedro.pipelines.movie_embedding.overviews import check_rated_movies
from qeu_kedro.pipelines.ridge_analysis import nodes
from qeu_kedro.validation import RawDataError
from tests.conftest import REPO, load_config, run_kedro

RIDGE = load_config(REPO, None, "parameters")["ridge_analysis"]


def inputs(n_ratings: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ratings of movies 1-10 (each rated as often), and the matched movies 1-8: 20 % of the ratings lost."""
    rng = np.random.default_rng(0)
    movie_ids = np.resize(np.arange(1, 11), n_ratings)
    ratings = pd.DataFrame(
        {"user_id": np.arange(1, n_ratings + 1), "movie_id": rng.permutation(movie_ids), "rating": 3}
    )
    movies = pd.DataFrame({"movie_id": np.arange(1, 9), "title": [f"M{i}" for i in range(1, 9)], "overview": "o"})
    return ratings, movies


def test_the_matched_movies_pass_within_max_join_loss_and_are_refused_beyond_it_as_ridge_analysis_does():
    ratings, movies = inputs()
    assert check_rated_movies(movies, ratings, {**RIDGE, "max_join_loss": 0.2}) is movies
    assert check_rated_movies(movies, ratings, {**RIDGE, "max_join_loss": None}) is movies
    lost = np.flatnonzero(~ratings["movie_id"].isin(movies["movie_id"]).to_numpy())
    with pytest.raises(
        RawDataError, match=rf"'ratings', column 'movie_id', row {lost[0]} .*60 of 300 ratings \(20.0%\).*max_join_loss"
    ) as here:
        check_rated_movies(movies, ratings, {**RIDGE, "max_join_loss": 0.1})
    # the very message ridge_analysis gives on the embeddings of these movies
    embeddings = movies[["movie_id"]].assign(e0=0.5)
    users = pd.DataFrame({"user_id": ratings["user_id"]})
    with pytest.raises(RawDataError) as later:
        nodes.build_model_input(ratings, users, embeddings, {**RIDGE, "max_join_loss": 0.1, "user_features": []})
    assert str(here.value) == str(later.value)


def test_a_bad_movie_id_is_named_as_check_ratings_names_it():
    ratings, movies = inputs()
    bad = ratings.astype({"movie_id": object})
    bad.loc[7, "movie_id"] = "seven"
    with pytest.raises(RawDataError, match=r"'ratings', column 'movie_id', row 7 .*expected a number, found 'seven'"):
        check_rated_movies(movies, bad, RIDGE)


def test_on_partitions_the_same_share_is_refused_naming_the_same_row_and_the_partition():
    ratings, movies = inputs()
    strict = {**RIDGE, "max_join_loss": 0.1}
    with pytest.raises(RawDataError) as memory:
        check_rated_movies(movies, ratings, strict)
    lost = np.flatnonzero(~ratings["movie_id"].isin(movies["movie_id"]).to_numpy())
    parts = dd.from_pandas(ratings.astype(str), npartitions=3, sort=False)  # read as text, as conf/dask does
    with pytest.raises(RawDataError, match=rf"'ratings', column 'movie_id', row {lost[0]} ") as partitioned:
        check_rated_movies(movies, parts, strict)
    note = f" (partition {lost[0] // 100}, its row {lost[0] % 100}; rows counted over the partitions in order)"
    assert str(partitioned.value).replace(note, "") == str(memory.value)
    assert check_rated_movies(movies, parts, {**RIDGE, "max_join_loss": 0.2}) is movies
    bad = ratings.astype(str)
    bad.loc[150, "movie_id"] = "x"
    with pytest.raises(
        RawDataError, match=r"'ratings', column 'movie_id', row 150 .*found 'x'.*\(partition 1, its row 50;"
    ):
        check_rated_movies(movies, dd.from_pandas(bad, npartitions=3, sort=False), RIDGE)


@pytest.mark.parametrize("group_by", ["movie_id", None])
def test_the_fold_counts_are_checked_on_partitions_as_in_memory(group_by):
    """On partitions check_rated_movies checked the join loss only: cv.folds larger than the movies was refused
    by the ridge split, after embed_movies had written the embeddings and the cache (the dask review)."""
    ratings, movies = inputs()  # 8 matched movies, 240 of their ratings
    n = 8 if group_by == "movie_id" else 240
    ok = {**RIDGE, "max_join_loss": None, "group_by": group_by, "cv": {**RIDGE["cv"], "folds": n}}
    too_many = {**ok, "cv": {**RIDGE["cv"], "folds": n + 1}}
    for table in (ratings, dd.from_pandas(ratings.astype(str), npartitions=3, sort=False)):
        assert check_rated_movies(movies, table, ok) is movies
        with pytest.raises(ValueError, match=rf"ridge_analysis.cv.folds is {n + 1}, more than the {n} "):
            check_rated_movies(movies, table, too_many)


@pytest.mark.slow  # a kedro run (the project's convention), though it stops at a check
def test_a_movies_file_cut_short_stops_the_run_before_anything_is_written(project):
    """The sample's movies.csv (its own overview source) cut to 150 of 240 movies: 42 % of the ratings
    lost. The run stops before embed_movies writes the embeddings and the cache."""
    path = project / "data/01_raw/movies.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:151]), encoding="utf-8")
    with pytest.raises(RawDataError, match=r"'ratings', column 'movie_id'.*1681 of 4000 ratings \(42.0%\)"):
        run_kedro(project, pipeline_names=["movie_embedding", "ridge_analysis"], namespaces=["base"])
    written = sorted(p for p in (project / "data").rglob("*") if p.is_file() and "01_raw" not in p.parts)
    assert written == []
