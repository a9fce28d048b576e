"""The movie table that ``embed_movies`` reads: each movie with its overview.

Two raw inputs enter here, each checked by its own node: ``movies`` (the movie list:
``movie_id``, ``title``) and ``movie_overviews`` (where the overviews come from). How a movie
finds its overview is the parameter ``movie_overviews.match_on``:

- ``movie_id``: the row of ``movie_overviews`` with the same ``movie_id``. The shipped sample's
  movie list carries its overviews, so both catalog entries read the same file and every movie
  finds its own row.
- ``title_year``: a MovieLens title ``Title (Year)`` against TMDB's ``title`` and the year of its
  ``release_date`` (:mod:`qeu_kedro.movielens`); the ``movielens`` environments.

Movies without an overview are left out (logged). Their ratings would be dropped by
``ridge_analysis``: :func:`check_rated_movies` refuses a share of lost ratings above
``ridge_analysis.max_join_loss`` (a movies file cut short) before ``embed_movies`` writes the
embeddings or the cache, with ``ridge_analysis``'s own check and wording.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.movielens import match_movielens_tmdb, movielens_title_keys
from qeu_kedro.pipelines.ridge_analysis.nodes import check_fold_counts, check_join_loss, group_by_of, rating_columns
from qeu_kedro.pipelines.ridge_analysis.partitioned import (
    check_partitioned_join_loss,
    is_partitioned,
    rows_over_partitions,
)
from qeu_kedro.validation import Column, check_no_mojibake, check_table, fail

logger = logging.getLogger(__name__)

MOVIE_COLUMNS = (
    Column("movie_id", "int", min=1, unique=True),
    Column("title", "str", single_line=True),
)

# What ``movie_overviews`` must hold, per matching rule.
OVERVIEW_COLUMNS: dict[str, tuple[Column, ...]] = {
    "movie_id": (
        Column("movie_id", "int", min=1, unique=True),
        Column("overview", "str", hint="Every movie needs an overview to embed; drop the movie or fill it in."),
    ),
    # TMDB: a row without a title, a release date or an overview describes nothing and is skipped
    "title_year": (
        Column("title", "str", nullable=True),
        Column("release_date", "str", nullable=True),
        Column("overview", "str", nullable=True),
    ),
}


def check_movies(movies: pd.DataFrame) -> pd.DataFrame:
    """Check the raw movie list (``movie_id``, ``title``) and return it typed.

    A title is one line (a line break in it is an unclosed quote that took the next rows in), and is not
    UTF-8 read as latin-1 (``AmÃ©lie``: MovieLens 10M's UTF-8 movies.dat read with 1M's ``encoding: latin-1``).
    """
    checked = check_table(movies, "movies", MOVIE_COLUMNS)
    check_no_mojibake(
        checked["title"],
        "movies",
        "title",
        "The file is UTF-8 (MovieLens 10M's and later movie lists are; 1M's is latin-1): read it with "
        "encoding: utf-8 in the catalog entry 'movies' (load_args), or drop encoding.",
    )
    return checked


def check_movie_overviews(overviews: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Check the raw overview source for ``params["match_on"]``'s columns and return them typed.

    With ``title_year`` a release date, where there is one, must be a date (YYYY-MM-DD, as TMDB writes it):
    the match reads its year, and a row whose date cannot be read would be dropped without a word.
    """
    checked = check_table(overviews, "movie_overviews", OVERVIEW_COLUMNS[params["match_on"]])
    if params["match_on"] == "title_year":
        dates = checked["release_date"]
        present = dates.notna().to_numpy() & (dates.astype(str).str.strip() != "").to_numpy()
        parsed = pd.to_datetime(dates.where(present), format="%Y-%m-%d", errors="coerce")
        unreadable = present & parsed.isna().to_numpy()
        if unreadable.any():
            i = int(np.flatnonzero(unreadable)[0])
            fail(
                "movie_overviews",
                "release_date",
                i,
                f"expected a date YYYY-MM-DD, found {dates.iloc[i]!r}",
                "Write it as TMDB does (1995-10-30), or leave it blank: a row without a date is not matched.",
            )
    return checked


def match_overviews(movies: pd.DataFrame, overviews: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """``movie_id, title, overview`` of the movies that ``overviews`` describes, in ``movies``' order.

    Args:
        movies: the checked movie list (:func:`check_movies`).
        overviews: the checked overview source (:func:`check_movie_overviews`).
        params: ``movie_overviews``: ``match_on`` (``movie_id`` or ``title_year``) and ``articles``
            (``title_year``: the articles MovieLens moves to the end of a title).

    Raises:
        RawDataError: with ``title_year``, when no title of ``movies`` ends with a year: the file
            is not a MovieLens movie list, or is read with another release's layout; and when no
            movie finds its overview (there would be nothing to embed).
    """
    if params["match_on"] == "movie_id":
        found = movies["movie_id"].map(overviews.set_index("movie_id")["overview"])
        matched = movies.assign(overview=found)[found.notna().to_numpy()].reset_index(drop=True)
    else:
        if not any(movielens_title_keys(title, ())[1] is not None for title in movies["title"]):
            fail(
                "movies",
                "title",
                0,
                f"no title ends with a year in brackets (found {movies['title'].iloc[0]!r}); "
                "movie_overviews.match_on: title_year needs MovieLens titles such as 'Toy Story (1995)'",
                "Check that the catalog entry 'movies' reads the file with its release's separator, "
                "column names and encoding (load_args).",
            )
        matched = match_movielens_tmdb(movies, overviews, params["articles"])
    if matched.empty:
        if params["match_on"] == "movie_id":
            column, check = "movie_id", "that both files number the same movies the same way"
        else:
            column, check = (
                "title",
                "the titles and years: 'Toy Story (1995)' matches a TMDB 'Toy Story' released in 1995",
            )
        fail(
            "movie_overviews",
            column,
            None,
            f"none of the {len(movies)} movies of 'movies' has an overview here (matched on {params['match_on']}): "
            "there is nothing to embed",
            f"Check {check}; or set movie_overviews.match_on in parameters_movie_embedding.yml to how the two "
            "files are linked (movie_id or title_year).",
        )
    logger.info(
        "%d of %d movies of 'movies' have an overview in 'movie_overviews' (matched on %s)",
        len(matched),
        len(movies),
        params["match_on"],
    )
    return matched


def check_rated_movies(movies: pd.DataFrame, ratings: Any, params: dict[str, Any]) -> pd.DataFrame:
    """``movies`` (the matched table) unchanged, once the ratings they leave out are at most
    ``params["max_join_loss"]`` of all ratings; run before ``embed_movies``, so a movies or overview
    file cut short stops the run before the embeddings and the cache are written.

    The ratings' ``movie_id`` is checked as ``ridge_analysis``'s ``check_ratings`` checks it, and the
    share is ``ridge_analysis``'s own check (:func:`~qeu_kedro.pipelines.ridge_analysis.nodes.check_join_loss`),
    which ``build_model_input`` runs again on the embeddings.

    Args:
        movies: the movies that will be embedded (:func:`match_overviews`).
        ratings: the raw ``ratings``: a pandas table, or a Dask DataFrame (the ``dask`` environment:
            one pass over the partitions' ``movie_id``; an error names the partition and row).
        params: ``ridge_analysis``'s: ``max_join_loss`` (null: no limit), ``rating_step``, and the fold counts
            (``cv.folds``, ``alpha_search.folds``; :func:`~qeu_kedro.pipelines.ridge_analysis.nodes.check_fold_counts`),
            in memory and on partitions.
    """
    max_share = params["max_join_loss"]
    movie_id = next(c for c in rating_columns(params["rating_step"]) if c.name == "movie_id")
    if is_partitioned(ratings):
        _check_partitions(ratings, movies, movie_id, params)
        return movies
    rated = check_table(ratings, "ratings", (movie_id,))
    if max_share is not None:
        check_join_loss(rated, movies, max_share)
    # ridge_analysis's fold counts against the units its CV will split (the ratings of these movies, or the
    # movies rated: the design holds at most these), before anything is embedded; its split node checks again
    ids = rated["movie_id"].to_numpy()
    kept = ids[np.isin(ids, movies["movie_id"].to_numpy())]
    _check_fold_units(kept, len(kept), params)
    return movies


def _check_fold_units(kept_movies: np.ndarray, n_kept: int, params: dict[str, Any]) -> None:
    """:func:`~qeu_kedro.pipelines.ridge_analysis.nodes.check_fold_counts` on the units the CV will split: the
    movies of the kept ratings (``group_by: movie_id``; ``kept_movies`` may repeat them), else the ``n_kept``
    ratings."""
    check_fold_counts(len(np.unique(kept_movies)) if group_by_of(params) == "movie_id" else n_kept, params)


def _lost_ratings(part: pd.DataFrame, index: int, movie_ids: np.ndarray, column: Column) -> dict[str, Any]:
    """One partition's ``movie_id`` checked; its ratings, those of movies not in ``movie_ids``, and where."""
    if part.empty:  # a reader may leave a partition empty
        nothing = np.array([], dtype=np.int64)
        return {"n": 0, "lost": 0, "first_lost_row": None, "lost_movies": nothing, "kept_movies": nothing}
    ids = check_table(part[[column.name]].reset_index(drop=True), f"ratings (partition {index})", (column,))
    ids = ids[column.name].to_numpy()
    lost = np.flatnonzero(~np.isin(ids, movie_ids))
    kept = np.ones(len(ids), dtype=bool)
    kept[lost] = False
    return {
        "n": len(ids),
        "lost": len(lost),
        "first_lost_row": int(lost[0]) if len(lost) else None,
        "lost_movies": pd.unique(ids[lost]),  # in order of appearance, as the in-memory message
        "kept_movies": np.unique(ids[kept]),  # for the fold counts (group_by: movie_id)
    }


@rows_over_partitions
def _check_partitions(ratings: Any, movies: pd.DataFrame, column: Column, params: dict[str, Any]) -> None:
    """:func:`check_rated_movies` on a Dask DataFrame of ratings: a pass over the partitions' movie ids, for the
    join loss and the fold counts (the in-memory path's checks, before anything is embedded)."""
    import dask
    from dask import delayed

    if column.name not in ratings.columns:
        fail(
            "ratings",
            column.name,
            None,
            f"required column is missing (the partitions have {list(ratings.columns)})",
            "Rename the column, or read it under this name in the catalog.",
        )
    movie_ids = delayed(np.sort(movies["movie_id"].to_numpy()), pure=True)
    parts = ratings[[column.name]].to_delayed()
    scans = dask.compute(*[delayed(_lost_ratings)(p, i, movie_ids, column) for i, p in enumerate(parts)])
    n_in = sum(s["n"] for s in scans)
    if n_in == 0:
        fail("ratings", None, None, "the table is empty (every partition)")
    n_kept = n_in - sum(s["lost"] for s in scans)
    if params["max_join_loss"] is not None:
        check_partitioned_join_loss(list(scans), n_in, n_kept, params["max_join_loss"])
    _check_fold_units(np.concatenate([s["kept_movies"] for s in scans]), n_kept, params)
