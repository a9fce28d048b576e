"""The ridge on partitioned ratings (a Dask DataFrame): sums per partition on the workers, the solve on the client.

Each partition of ratings (``user_id``, ``movie_id``, ``rating``) yields :class:`RatingSums`:
the per-user and per-movie counts and rating sums and, per movie, the sum of its raters' user
feature rows. They add over disjoint ratings, so partitions are reduced by ``+`` in a tree. From
the reduced sums the client forms ``XᵀX`` and ``Xᵀy`` once, with the block formula of
:func:`.nodes.normal_equations` (whose docstring states the maths), and solves with
:func:`.nodes.solve_ridge`. A partition's own ``XᵀX`` would cost ``movies x features²`` per
partition; the sums cost one pass over its ratings, and the Gram matrix is formed once.

Nothing here needs a cluster: the functions build Dask collections and compute them with
whatever scheduler is active (the threaded default in tests, a ``distributed.Client`` when
the ``dask`` environment's hook has started or joined one).

Selections (train / test, cross-validation folds) are the in-memory pipeline's: the same
permutations of the global row numbers, drawn on the client (one byte per rating) and sent
to each partition as its slice; with ``group_by: movie_id`` the same permutations of the
sorted movie ids, one label per movie, which each partition applies to its ratings' movies.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from qeu_kedro.validation import RawDataError, check_table, fail, partition_of

from .nodes import (
    HELD_OUT,
    RATING_KEY,
    TARGET,
    RatingDesign,
    RidgeStats,
    _as_model,
    _solve_stats,
    alpha_metrics,
    build_model_input,
    check_fold_counts,
    cv_metrics,
    fail_join_loss,
    group_by_of,
    kfold_labels,
    label_dtype,
    plot_top_features,
    r2_from_sums,
    rating_columns,
    solve_ridge,
    split_mask,
)

logger = logging.getLogger(__name__)


def is_partitioned(data: Any) -> bool:
    """True for a Dask DataFrame of ratings or a :class:`PartitionedDesign`."""
    if isinstance(data, PartitionedDesign):
        return True
    try:
        import dask.dataframe as dd
    except ImportError:  # the in-memory pipelines run without dask
        return False
    return isinstance(data, dd.DataFrame)


# ---------------------------------------------------------------- additive sums of one set of ratings


@dataclass(frozen=True)
class RatingSums:
    """Sums over a set of ratings, per group (a fold, or train / test): they add over disjoint ratings.

    Arrays have a leading group axis ``g``.

    Attributes:
        n: ratings per group, ``(g,)``.
        count_u, sum_u: ratings and rating sum per user, ``(g, users)``.
        count_m, sum_m: ratings and rating sum per movie, ``(g, movies)``.
        raters: per movie, the sum of its raters' user feature rows ``C U``, ``(g, movies, user features)``.
        sum_yy: sum of squared ratings, ``(g,)`` (for R²).
    """

    n: np.ndarray
    count_u: np.ndarray
    sum_u: np.ndarray
    count_m: np.ndarray
    sum_m: np.ndarray
    raters: np.ndarray
    sum_yy: np.ndarray

    def __add__(self, other: RatingSums) -> RatingSums:
        return RatingSums(*(a + b for a, b in zip(self._fields(), other._fields(), strict=True)))

    def _fields(self) -> tuple[np.ndarray, ...]:
        return (self.n, self.count_u, self.sum_u, self.count_m, self.sum_m, self.raters, self.sum_yy)

    def group(self, g: int) -> RatingSums:
        return RatingSums(*(a[g : g + 1] for a in self._fields()))

    def normal_equations(
        self, users: np.ndarray, movies: np.ndarray, fit_intercept: bool, g: int = 0
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """``XᵀX``, ``Xᵀy`` and offsets of group ``g``, as :func:`.nodes.normal_equations` computes them.

        The same steps in the same order: centre the feature tables and the ratings on the
        group's means, then the blocks ``Uᵀ diag(c_u) U``, ``Mᵀ diag(c_m) M``, ``(C U)ᵀ M`` and
        ``[Uᵀ s_u, Mᵀ s_m]``; centring ``U`` shifts ``C U`` by ``c_m mean_uᵀ`` and ``s`` by ``c ȳ``.
        """
        n = float(self.n[g])
        count_u, count_m = self.count_u[g], self.count_m[g]
        sum_u, sum_m, raters = self.sum_u[g], self.sum_m[g], self.raters[g]
        offsets = {"x": np.zeros(users.shape[1] + movies.shape[1]), "y": 0.0}
        if fit_intercept:
            mean_u, mean_m = count_u @ users / n, count_m @ movies / n
            mean_y = float(sum_u.sum()) / n
            users, movies = users - mean_u, movies - mean_m
            sum_u, sum_m = sum_u - count_u * mean_y, sum_m - count_m * mean_y
            raters = raters - np.outer(count_m, mean_u)
            offsets = {"x": np.concatenate([mean_u, mean_m]), "y": mean_y}
        p_u = users.shape[1]
        gram = np.empty((p_u + movies.shape[1],) * 2)
        gram[:p_u, :p_u] = _weighted_gram(users, count_u)
        gram[p_u:, p_u:] = _weighted_gram(movies, count_m)
        gram[:p_u, p_u:] = raters.T @ movies
        gram[p_u:, :p_u] = gram[:p_u, p_u:].T
        xty = np.concatenate([users.T @ sum_u, movies.T @ sum_m])
        return gram, xty, offsets

    def ridge_stats(self, users: np.ndarray, movies: np.ndarray, g: int = 0) -> RidgeStats:
        """The uncentred :class:`.nodes.RidgeStats` of group ``g`` (what cross-validation subtracts)."""
        gram, xty, _ = self.normal_equations(users, movies, fit_intercept=False, g=g)
        sum_x = np.concatenate([self.count_u[g] @ users, self.count_m[g] @ movies])
        return RidgeStats(float(self.n[g]), sum_x, float(self.sum_u[g].sum()), gram, xty)


def _weighted_gram(table: np.ndarray, weights: np.ndarray, rows: int = 8192) -> np.ndarray:
    """``tableᵀ diag(weights) table``, by blocks of rows: no weighted copy of the whole table on the client."""
    out = np.zeros((table.shape[1], table.shape[1]))
    for start in range(0, len(table), rows):
        block = table[start : start + rows]
        out += block.T @ (weights[start : start + rows, None] * block)
    return out


def partition_sums(
    rows: pd.DataFrame, users: np.ndarray, n_movies: int, group: np.ndarray | None, n_groups: int
) -> RatingSums:
    """:class:`RatingSums` of one partition (``user_row``, ``movie_row``, ``rating``), by group.

    ``group`` gives each rating's group (``-1``: left out); ``None`` puts all in group 0.
    """
    user_row = rows["user_row"].to_numpy()
    movie_row = rows["movie_row"].to_numpy()
    y = rows[TARGET].to_numpy(dtype=np.float64)
    g = np.zeros(len(rows), dtype=np.int64) if group is None else group.astype(np.int64)
    keep = g >= 0
    user_row, movie_row, y, g = user_row[keep], movie_row[keep], y[keep], g[keep]
    n_users = len(users)
    flat_u = g * n_users + user_row
    flat_m = g * n_movies + movie_row
    shape_u, shape_m = (n_groups, n_users), (n_groups, n_movies)
    count_u = np.bincount(flat_u, minlength=n_groups * n_users).astype(np.float64).reshape(shape_u)
    count_m = np.bincount(flat_m, minlength=n_groups * n_movies).astype(np.float64).reshape(shape_m)
    sum_u = np.bincount(flat_u, weights=y, minlength=n_groups * n_users).reshape(shape_u)
    sum_m = np.bincount(flat_m, weights=y, minlength=n_groups * n_movies).reshape(shape_m)
    # (group, movie) x user counts times the user table: per movie, its raters' rows summed
    counts = sparse.csr_array((np.ones(len(y)), (flat_m, user_row)), shape=(n_groups * n_movies, n_users))
    raters = (counts @ users).reshape(n_groups, n_movies, users.shape[1])
    return RatingSums(
        n=np.bincount(g, minlength=n_groups).astype(np.float64),
        count_u=count_u,
        sum_u=sum_u,
        count_m=count_m,
        sum_m=sum_m,
        raters=raters,
        sum_yy=np.bincount(g, weights=y * y, minlength=n_groups),
    )


# ---------------------------------------------------------------- the design: small tables + partitions


@dataclass(frozen=True)
class PartitionedDesign:
    """The model input on partitioned ratings: what :class:`.nodes.RatingDesign` is in memory.

    Attributes:
        user_features, movie_features: the feature tables (small; on the client, sent once).
        rows: per partition, a lazy (``dask.delayed``) table ``user_row``, ``movie_row``, ``rating``
            of the kept ratings, in the ratings' order.
        offsets: global row number of each partition's first kept rating, plus the total.
        mask: which kept ratings this design holds (one bool per rating), or None for all.
    """

    user_features: pd.DataFrame
    movie_features: pd.DataFrame
    rows: tuple[Any, ...]
    offsets: np.ndarray
    mask: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.offsets[-1]) if self.mask is None else int(self.mask.sum())

    @property
    def n_total(self) -> int:
        return int(self.offsets[-1])

    @property
    def features(self) -> list[str]:
        return [*self.user_features.columns, *self.movie_features.columns]

    def subset_mask(self, mask: np.ndarray) -> PartitionedDesign:
        return replace(self, mask=mask if self.mask is None else (self.mask & mask))

    def slices(self, labels: np.ndarray | None, by_movie: bool = False) -> list[Any]:
        """Per partition, its slice of a per-rating label array (``-1`` where outside this design).

        ``by_movie``: ``labels`` has one label per movie (row of ``movie_features``); each partition's
        slice is then a lazy (``dask.delayed``) array, its ratings' movies' labels, made on the worker.
        """
        if by_movie:
            from dask import delayed

            per_movie = delayed(np.asarray(labels), pure=True)  # its own integer type (label_dtype)
            return [
                delayed(_movie_labels, pure=True)(rows, per_movie, outside)
                for rows, outside in zip(self.rows, self.slices(None), strict=True)
            ]
        if labels is None and self.mask is None:
            return [None] * len(self.rows)
        if labels is None:
            labels = np.zeros(self.n_total, dtype=np.int8)
        if self.mask is not None:
            labels = np.where(self.mask, labels, -1).astype(labels.dtype)
        return [labels[a:b] for a, b in pairwise(self.offsets)]

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        return self.user_features.to_numpy(dtype=np.float64), self.movie_features.to_numpy(dtype=np.float64)


def _movie_labels(rows: pd.DataFrame, per_movie: np.ndarray, outside: np.ndarray | None) -> np.ndarray:
    """Each rating of a partition labelled by its movie (``per_movie[movie_row]``); ``-1`` where
    ``outside`` (the design's mask slice) is ``-1``."""
    labels = per_movie[rows["movie_row"].to_numpy()]
    return labels if outside is None else np.where(outside >= 0, labels, -1).astype(labels.dtype)


def _tree_sum(items: list[Any]) -> Any:
    """Pairwise sum of delayed values: a reduction tree of depth log2(partitions)."""
    from dask import delayed

    items = list(items)
    while len(items) > 1:
        items = [
            delayed(operator.add)(*items[i : i + 2]) if i + 1 < len(items) else items[i]
            for i in range(0, len(items), 2)
        ]
    return items[0]


def sums_graph(
    design: PartitionedDesign, labels: np.ndarray | None = None, n_groups: int = 1, by_movie: bool = False
) -> Any:
    """The lazy (``dask.delayed``) :class:`RatingSums` of ``design`` by ``labels`` (per rating, or per movie
    with ``by_movie``; default one group).

    One task per partition, then a tree of additions; the user table is sent once, not per task.
    """
    from dask import delayed

    users, _ = design.tables()
    users_d = delayed(users, pure=True)
    n_movies = len(design.movie_features)
    parts = [
        delayed(partition_sums, pure=True)(rows, users_d, n_movies, labels_slice, n_groups)
        for rows, labels_slice in zip(design.rows, design.slices(labels, by_movie), strict=True)
    ]
    return _tree_sum(parts)


def compute_sums(
    design: PartitionedDesign, labels: np.ndarray | None = None, n_groups: int = 1, by_movie: bool = False
) -> RatingSums:
    """:func:`sums_graph`, computed on the active scheduler."""
    import dask

    (total,) = dask.compute(sums_graph(design, labels, n_groups, by_movie))
    return total


def model_from_sums(
    sums: RatingSums, design: PartitionedDesign, params: dict[str, Any], alpha: float | None = None
) -> dict[str, Any]:
    """The ridge model (as :func:`.nodes.fit_ridge` writes it) of reduced sums: the small solve, on the client."""
    fit_intercept = params["fit_intercept"]
    alpha = float(params["alpha"] if alpha is None else alpha)
    gram, xty, offsets = sums.normal_equations(*design.tables(), fit_intercept)
    coef = solve_ridge(gram, xty, alpha)
    intercept = offsets["y"] - float(offsets["x"] @ coef) if fit_intercept else 0.0
    return _as_model(design.features, coef, intercept, alpha)


# ---------------------------------------------------------------- nodes (the in-memory ones' counterparts)


def rows_over_partitions(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a check whose first argument is the partitioned ratings: an error it raises that names a row of
    ``<dataset> (partition N)`` names the row counted over the partitions in order instead (the file's row for
    one file read in blocks; for several files, in the order dask reads them), with the partition's own row.

    The lengths of partitions 0 to N-1 are counted only then: one more read of them, on failure alone.
    """

    @functools.wraps(func)
    def checked(ratings: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(ratings, *args, **kwargs)
        except RawDataError as err:
            found = partition_of(err.dataset)
            if found is None or err.row is None:
                raise
            import dask
            from dask import delayed

            table, part = found
            before = sum(dask.compute(*[delayed(len)(p) for p in ratings.to_delayed()[:part]]))
            try:
                fail(
                    table,
                    err.column,
                    before + err.row,
                    f"{err.problem} (partition {part}, its row {err.row}; rows counted over the partitions in order)",
                    err.hint,
                    err.line,
                )
            except RawDataError as counted:
                raise counted from err
            raise  # not reached: fail raises

    return checked


def _lookup(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each id in ``sorted_ids`` and whether it is there (a binary search: faster than ``isin``)."""
    pos = np.searchsorted(sorted_ids, ids)
    found = pos < len(sorted_ids)
    found[found] = sorted_ids[pos[found]] == ids[found]
    return pos, found


def _scan_partition(
    part: pd.DataFrame, index: int, user_ids: np.ndarray, movie_ids: np.ndarray, rating_step: float = 1
) -> dict[str, Any]:
    """Check one partition (ratings multiples of ``rating_step``); count it; the users and movies
    of its kept ratings (ids sorted)."""
    dataset = f"ratings (partition {index})"
    columns = rating_columns(rating_step)
    if part.empty:  # a reader may leave a partition empty; the whole table's emptiness is checked on the counts
        nothing = np.array([], dtype=np.int64)
        return {
            "n_in": 0,
            "n_kept": 0,
            "users": nothing,
            "movies": nothing,
            "lost_movies": nothing,
            "first_lost_row": None,
        }
    part = check_table(part[["user_id", "movie_id", TARGET]].reset_index(drop=True), dataset, columns)
    users = part["user_id"].to_numpy()
    _, known = _lookup(user_ids, users)
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        fail(dataset, "user_id", i, f"user {users[i]} is not in 'users'")
    movies = part["movie_id"].to_numpy()
    _, kept = _lookup(movie_ids, movies)
    lost = np.flatnonzero(~kept)
    return {
        "n_in": len(part),
        "n_kept": int(kept.sum()),
        "users": np.unique(users[kept]),
        "movies": np.unique(movies[kept]),
        "lost_movies": pd.unique(movies[lost]),  # in order of appearance, as the in-memory message
        "first_lost_row": int(lost[0]) if len(lost) else None,
    }


def _pair_rows(part: pd.DataFrame, user: Any, movie: Any) -> np.ndarray:
    """Rows (0-based, in the partition) where ``user`` rated ``movie`` (ids compared as numbers)."""
    users = pd.to_numeric(part["user_id"], errors="coerce").to_numpy()
    movies = pd.to_numeric(part["movie_id"], errors="coerce").to_numpy()
    return np.flatnonzero((users == user) & (movies == movie))


def _checked_key(part: pd.DataFrame, rating_step: float, partition_info: dict | None = None) -> pd.DataFrame:
    """One partition checked as :func:`.nodes.check_ratings` checks a table (its cells typed, a bad one named
    by partition and row); its (user, movie) pairs, as numbers."""
    if part.empty:  # a reader may leave a partition empty
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in RATING_KEY})
    index = partition_info["number"] if partition_info else 0
    checked = check_table(
        part[[*RATING_KEY, TARGET]].reset_index(drop=True), f"ratings (partition {index})", rating_columns(rating_step)
    )
    return checked[list(RATING_KEY)].astype("int64")


@rows_over_partitions
def check_partitioned_ratings(ratings: Any, rating_step: float = 1) -> Any:
    """The partitioned counterpart of :func:`.nodes.check_ratings`: each partition's cells (ratings
    multiples of ``rating_step``), and each (user, movie) pair rated once across all partitions (a repeat
    would count the pair twice in the fit).

    One pass: each partition is checked and typed, and the pairs are counted by a hash-partitioned groupby
    (``split_out`` = the number of partitions, so no worker holds every pair). A repeated pair is then
    located (a second pass, only on failure) and named by partition and row. Run as the pipeline's first
    node on the ratings, so a bad input stops the run before anything is written.
    """
    import dask
    from dask import delayed

    key = list(RATING_KEY)
    for column in (*RATING_KEY, TARGET):  # before anything reads them (a renamed column is a KeyError later)
        if column not in ratings.columns:
            fail(
                "ratings",
                column,
                None,
                f"required column is missing (the partitions have {list(ratings.columns)})",
                "Rename the column, or read it under this name in the catalog.",
            )
    # the ids as numbers, as the check types them (a user 1 in one partition and "1" in another is one user)
    meta = pd.DataFrame({c: pd.Series(dtype="int64") for c in RATING_KEY})
    ids = ratings[[*key, TARGET]].map_partitions(_checked_key, rating_step, meta=meta)
    counts = ids.assign(n=1).groupby(key)["n"].sum(split_out=max(1, ratings.npartitions))
    repeated = counts[counts > 1].head(1, npartitions=-1)
    if repeated.empty:
        return ratings
    user, movie = repeated.index[0]
    found = dask.compute(*[delayed(_pair_rows)(p, user, movie) for p in ratings.to_delayed()])
    places = [(i, int(row)) for i, rows in enumerate(found) for row in rows]
    (first_part, first_row), (part, row) = places[0], places[1]
    fail(
        f"ratings (partition {part})",
        ", ".join(key),
        row,
        f"duplicate key ({', '.join(key)}) = ({user}, {movie}) (first seen in partition {first_part}, row {first_row})",
        "Each combination may appear only once: remove or merge the repeated rows.",
    )
    return ratings  # not reached: fail raises


def _unknown_users(part: pd.DataFrame, known: np.ndarray, partition_info: dict | None = None) -> pd.DataFrame:
    """The rows of a partition whose user is not in ``known`` (sorted ids): partition, row, user."""
    ids = pd.to_numeric(part["user_id"]).to_numpy()
    _, found = _lookup(known, ids)
    rows = np.flatnonzero(~found)
    index = partition_info["number"] if partition_info else 0
    return pd.DataFrame({"partition": np.full(len(rows), index, dtype="int64"), "row": rows, "user": ids[rows]})


@rows_over_partitions
def check_partitioned_users(ratings: Any, users: pd.DataFrame) -> pd.DataFrame:
    """:func:`.nodes.check_rated_users` on partitions: ``users``, once every rating's user is among them (a
    pass over the ratings' user ids only, before the movies are embedded); an unknown user is named by
    partition and row."""
    known = np.sort(users["user_id"].to_numpy())
    meta = pd.DataFrame(
        {"partition": pd.Series(dtype="int64"), "row": pd.Series(dtype="int64"), "user": pd.Series(dtype="int64")}
    )
    first = ratings[["user_id"]].map_partitions(_unknown_users, known, meta=meta).head(1, npartitions=-1)
    if not first.empty:
        part, row, user = (first.iloc[0][c] for c in ("partition", "row", "user"))
        fail(f"ratings (partition {part})", "user_id", int(row), f"user {user} is not in 'users'")
    return users


def _partition_rows(part: pd.DataFrame, user_ids: np.ndarray, movie_ids: np.ndarray) -> pd.DataFrame:
    """A partition's kept ratings as feature-table row numbers (``user_ids`` / ``movie_ids`` are sorted)."""
    # as numbers, as the scan's check read them (a reader may give ids or ratings as text)
    movie_row, kept = _lookup(movie_ids, pd.to_numeric(part["movie_id"]).to_numpy())
    user_row, _ = _lookup(user_ids, pd.to_numeric(part["user_id"]).to_numpy()[kept])
    return pd.DataFrame(
        {
            "user_row": user_row.astype(np.int32),
            "movie_row": movie_row[kept].astype(np.int32),
            TARGET: pd.to_numeric(part[TARGET]).to_numpy(dtype=np.float64)[kept],
        }
    )


def check_partitioned_join_loss(scans: list[dict[str, Any]], n_in: int, n_kept: int, max_share: float | None) -> None:
    """:func:`.nodes.check_join_loss` from the partitions' counts, naming the first lost rating's partition and row.

    ``scans``: per partition, ``first_lost_row`` (None when it lost none) and ``lost_movies`` (the ids lost, in
    order of appearance); also used by ``movie_embedding``'s ``check_rated_movies`` before anything is embedded."""
    if n_kept == n_in:
        return
    part = next(i for i, s in enumerate(scans) if s["first_lost_row"] is not None)
    missing = pd.unique(np.concatenate([s["lost_movies"] for s in scans]))
    fail_join_loss(
        f"ratings (partition {part})", scans[part]["first_lost_row"], n_in - n_kept, n_in, missing, max_share
    )


@rows_over_partitions
def build_partitioned_input(
    ratings: Any, users: pd.DataFrame, movie_embeddings: pd.DataFrame, params: dict[str, Any]
) -> tuple[PartitionedDesign, dict[str, int]]:
    """:func:`.nodes.build_model_input` for a Dask DataFrame of ratings: one pass over the partitions.

    The pass checks each partition (rating columns, unknown users) and collects the users and
    movies with a kept rating. The feature tables are then built by :func:`.nodes.build_model_input`
    itself, on a stand-in ratings table holding exactly those users and movies (the tables depend
    on nothing else), so columns and their order are the in-memory ones. ``params``: ``rating_step``,
    ``user_features`` and ``max_join_loss`` (checked on the pass's counts), as in memory.
    """
    import dask
    from dask import delayed

    for table, name, key in ((users, "users", "user_id"), (movie_embeddings, "movie_embeddings", "movie_id")):
        duplicated = table[key].duplicated().to_numpy()
        if duplicated.any():
            i = int(np.flatnonzero(duplicated)[0])
            fail(name, key, i, f"duplicate id {table[key].iloc[i]}")
    parts = ratings.to_delayed()
    all_users = delayed(np.sort(users["user_id"].to_numpy()), pure=True)
    all_movies = delayed(np.sort(movie_embeddings["movie_id"].to_numpy()), pure=True)
    step = params["rating_step"]
    scans = dask.compute(*[delayed(_scan_partition)(p, i, all_users, all_movies, step) for i, p in enumerate(parts)])
    n_in = sum(s["n_in"] for s in scans)
    if n_in == 0:
        fail("ratings", None, None, "the table is empty (every partition)")
    n_kept = np.array([s["n_kept"] for s in scans], dtype=np.int64)
    if n_kept.sum() == 0:
        fail("movie_embeddings", "movie_id", None, "no rated movie has an embedding: the join is empty")
    check_partitioned_join_loss(scans, n_in, int(n_kept.sum()), params.get("max_join_loss"))
    user_ids = np.unique(np.concatenate([s["users"] for s in scans]))
    movie_ids = np.unique(np.concatenate([s["movies"] for s in scans]))
    # Stand-in ratings: every kept user and movie once (the shorter list repeated).
    size = max(len(user_ids), len(movie_ids))
    stand_in = pd.DataFrame(
        {
            "user_id": np.resize(user_ids, size),
            "movie_id": np.resize(movie_ids, size),
            TARGET: np.ones(size, dtype=np.int64),
        }
    )
    # The stand-in holds only movies with an embedding: its join loses nothing (max_join_loss, checked
    # above on the real counts, passes).
    small, _ = build_model_input(stand_in, users, movie_embeddings, params)
    # build_model_input keeps the users' and movies' table order; rows here index sorted ids.
    user_features = small.user_features.sort_index()
    movie_features = small.movie_features.sort_index()
    if not (user_features.index.is_monotonic_increasing and movie_features.index.is_monotonic_increasing):
        raise AssertionError("feature tables must be sorted by id")
    user_ids_d, movie_ids_d = delayed(user_ids, pure=True), delayed(movie_ids, pure=True)
    rows = tuple(delayed(_partition_rows, pure=True)(p, user_ids_d, movie_ids_d) for p in parts)
    design = PartitionedDesign(
        user_features=user_features,
        movie_features=movie_features,
        rows=rows,
        offsets=np.concatenate([[0], np.cumsum(n_kept)]),
    )
    stats = {
        "n_ratings_in": int(n_in),
        "n_ratings_used": int(n_kept.sum()),
        "n_ratings_dropped_no_embedding": int(n_in - n_kept.sum()),
        "n_movies": int(len(movie_features)),
        "n_users": int(len(user_features)),
        "n_features": len(design.features),
        "n_embedding_features": int(movie_features.shape[1]),
    }
    logger.info(
        "Model input (%d partitions): %d ratings x %d features (%d users, %d movies; %d dropped: no embedding)",
        len(parts),
        stats["n_ratings_used"],
        stats["n_features"],
        stats["n_users"],
        stats["n_movies"],
        stats["n_ratings_dropped_no_embedding"],
    )
    return design, stats


def split_partitioned(design: PartitionedDesign, params: dict[str, Any]) -> tuple[PartitionedDesign, PartitionedDesign]:
    """:func:`.nodes.split_ratings` on partitions: the same ratings in train and test.

    By movie (``group_by: movie_id``), the test movies are drawn on the client as in memory and one pass
    over the partitions marks their ratings (the mask: one byte per rating, as by rating). Fold counts larger
    than the units they split are refused first (:func:`.nodes.check_fold_counts`).
    """
    unit = group_by_of(params)
    if unit is None:
        check_fold_counts(design.n_total, params)
        test = split_mask(design.n_total, params["test_size"], params["seed"])
    else:
        import dask

        present = _present_movies(design)
        check_fold_counts(len(present), params)
        test_movie = np.zeros(len(design.movie_features), dtype=np.int8)
        test_movie[present] = split_mask(len(present), params["test_size"], params["seed"])
        marked = dask.compute(*design.slices(test_movie, by_movie=True))
        test = np.concatenate([np.asarray(m) > 0 for m in marked]) if marked else np.zeros(0, dtype=bool)
    return design.subset_mask(~test), design.subset_mask(test)


def _present_movies(design: PartitionedDesign, sums: RatingSums | None = None) -> np.ndarray:
    """Rows of ``movie_features`` (sorted by id) with a rating in ``design``: the groups of ``group_by: movie_id``,
    in the order of their ids, as :func:`.nodes.group_codes` numbers them."""
    if sums is None and design.mask is None:
        return np.arange(len(design.movie_features))  # the build kept only rated movies
    sums = compute_sums(design) if sums is None else sums
    return np.flatnonzero(sums.count_m[0] > 0)


def fit_partitioned(
    train: PartitionedDesign, params: dict[str, Any], alpha_selection: dict[str, Any] | None = None
) -> dict[str, Any]:
    """:func:`.nodes.fit_ridge` from partition sums reduced over the workers."""
    return model_from_sums(compute_sums(train), train, params, float((alpha_selection or params)["alpha"]))


def select_alpha_partitioned(train: PartitionedDesign, params: dict[str, Any]) -> dict[str, Any]:
    """:func:`.nodes.select_alpha` for a fixed alpha; ``alpha: auto`` is not implemented on partitions yet."""
    alpha = params["alpha"]
    if alpha == "auto":
        raise NotImplementedError(  # the parameter check refuses it before a run (qeu_kedro.parameters)
            "alpha: auto is not available on partitioned ratings (the dask environment) yet: "
            "set ridge_analysis.alpha to a number."
        )
    return {"mode": "fixed", "alpha": float(alpha)}


def _partition_scores(
    rows: pd.DataFrame, group: np.ndarray | None, user_part: np.ndarray, movie_part: np.ndarray, intercept: np.ndarray
) -> np.ndarray:
    """Per group: n, Σy, Σy², Σ(y - ŷ)², with ``ŷ = user_part[g, u] + movie_part[g, m] + intercept[g]``."""
    n_groups = len(intercept)
    g = np.zeros(len(rows), dtype=np.int64) if group is None else group.astype(np.int64)
    keep = g >= 0
    u, m = rows["user_row"].to_numpy()[keep], rows["movie_row"].to_numpy()[keep]
    y, g = rows[TARGET].to_numpy(dtype=np.float64)[keep], g[keep]
    residual = y - (user_part[g, u] + movie_part[g, m] + intercept[g])
    return np.stack(
        [
            np.bincount(g, minlength=n_groups).astype(np.float64),
            np.bincount(g, weights=y, minlength=n_groups),
            np.bincount(g, weights=y * y, minlength=n_groups),
            np.bincount(g, weights=residual * residual, minlength=n_groups),
        ],
        axis=1,
    )


def compute_scores(
    design: PartitionedDesign,
    labels: np.ndarray | None,
    coefs: np.ndarray,
    intercepts: np.ndarray,
    by_movie: bool = False,
) -> np.ndarray:
    """Per group (rows of ``coefs``, one model each): n, Σy, Σy², residual sum of squares.

    ``labels``: per rating, or per movie with ``by_movie``."""
    import dask
    from dask import delayed

    users, movies = design.tables()
    p_u = users.shape[1]
    user_part = delayed(np.ascontiguousarray(coefs[:, :p_u] @ users.T), pure=True)  # groups x users
    movie_part = delayed(np.ascontiguousarray(coefs[:, p_u:] @ movies.T), pure=True)  # groups x movies
    parts = [
        delayed(_partition_scores, pure=True)(
            rows, lab, user_part, movie_part, np.asarray(intercepts, dtype=np.float64)
        )
        for rows, lab in zip(design.rows, design.slices(labels, by_movie), strict=True)
    ]
    (total,) = dask.compute(_tree_sum(parts))
    return total


def _r2(scores: np.ndarray) -> np.ndarray:
    """R² of each group's n, Σy, Σy², residual sum of squares, as scikit-learn's ``r2_score`` (:func:`.nodes.r2_from_sums`).

    ``Σy² - (Σy)²/n`` of ratings that are all equal may miss 0 by rounding; within ``1e-12`` of ``Σy²`` it is 0
    (ratings on a grid of half stars that are not all equal give at least 1/8)."""
    n, sum_y, sum_yy, rss = scores.T
    with np.errstate(divide="ignore", invalid="ignore"):
        tss = sum_yy - sum_y * sum_y / n
    tss = np.where(np.abs(tss) <= 1e-12 * sum_yy, 0.0, tss)
    return r2_from_sums(rss, tss, n)


def _coef_vector(model: dict[str, Any], design: PartitionedDesign) -> np.ndarray:
    coef = pd.Series(model["coefficients"], index=model["features"], dtype=np.float64)
    unknown = coef.index.difference(design.features)
    if len(unknown):
        raise ValueError(f"the model has features the input lacks: {list(unknown[:5])}")
    return coef.reindex(design.features, fill_value=0.0).to_numpy()


def evaluate_partitioned(
    model: dict[str, Any],
    train: PartitionedDesign,
    test: PartitionedDesign,
    input_stats: dict[str, int],
    cv_scores: pd.DataFrame | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`.nodes.evaluate_ridge` on partitions: one pass scores train and test."""
    coef = _coef_vector(model, train)
    labels = np.full(train.n_total, -1, dtype=np.int8)
    labels[train.mask] = 0
    labels[test.mask] = 1
    whole = replace(train, mask=None)
    scores = compute_scores(whole, labels, np.stack([coef, coef]), np.array([model["intercept"]] * 2))
    metrics: dict[str, Any] = {"alpha": model["alpha"]}
    if params is not None:
        metrics.update(alpha_metrics(params))
    for i, name in enumerate(("train", "test")):
        metrics[f"r2_{name}"] = float(_r2(scores[i : i + 1])[0])
        metrics[f"rmse_{name}"] = float(np.sqrt(scores[i, 3] / scores[i, 0]))
        metrics[f"n_{name}"] = int(scores[i, 0])
    if cv_scores is not None:
        metrics.update(cv_metrics(cv_scores))
    metrics.update(input_stats)
    logger.info("Ridge R² train %.4f, test %.4f (partitioned)", metrics["r2_train"], metrics["r2_test"])
    return metrics


def _partition_fold_digest(
    rows: pd.DataFrame, group: np.ndarray, user_ids: np.ndarray, movie_ids: np.ndarray, n_groups: int
) -> np.ndarray:
    """Per fold, the sum (mod 2⁶⁴) of a 64-bit hash of each rating's (user, movie, rating): order-free."""
    keep = group >= 0
    keys = np.stack(
        [
            user_ids[rows["user_row"].to_numpy()[keep]],
            movie_ids[rows["movie_row"].to_numpy()[keep]],
            np.asarray(rows[TARGET].to_numpy()[keep], dtype=np.float64).view(np.int64),  # exact: 3.5 is not 3
        ],
        axis=1,
    ).astype(np.int64)
    hashed = pd.util.hash_pandas_object(pd.DataFrame(keys), index=False).to_numpy(dtype=np.uint64)
    out = np.zeros(n_groups, dtype=np.uint64)
    np.add.at(out, group[keep].astype(np.int64), hashed)
    return out


def cross_validate_partitioned(
    design: PartitionedDesign, alpha_selection: dict[str, Any], params: dict[str, Any]
) -> pd.DataFrame:
    """:func:`.nodes.cross_validate_ridge` on partitions: the same folds, statistics and scores.

    Per repeat, one pass gives every fold's sums; each fold's training statistics are the
    total's minus the fold's (:class:`.nodes.RidgeStats`), solved as the in-memory CV solves
    them; a second pass scores every fold's test ratings, and a third fingerprints each fold's ratings. By movie (``group_by: movie_id``) the
    folds are labels of the sorted movies, drawn as in memory; each partition labels its ratings
    by their movies. ``test_hash`` fingerprints a fold's
    ratings too, but as an order-free sum of per-rating hashes (``m:`` prefix): the in-memory
    one sorts the fold, which partitions cannot do without a shuffle.
    """
    import dask
    from dask import delayed

    cv = params["cv"]
    unit = group_by_of(params)
    by_movie = unit is not None
    alpha = float(alpha_selection["alpha"])
    fit_intercept = params["fit_intercept"]
    users, movies = design.tables()
    user_ids = design.user_features.index.to_numpy()
    movie_ids = design.movie_features.index.to_numpy()
    # the statistics of all ratings, once (as the in-memory CV builds them); per fold, total minus fold
    whole = compute_sums(design)
    total = whole.ridge_stats(users, movies)
    if by_movie:
        present = _present_movies(design, whole)
        labels_all = np.full((cv["repeats"], len(movie_ids)), -1, dtype=label_dtype(cv["folds"]))
        labels_all[:, present] = kfold_labels(len(present), cv["folds"], cv["repeats"], cv["seed"])
    else:
        labels_all = kfold_labels(design.n_total, cv["folds"], cv["repeats"], cv["seed"])
    rows_out = []
    for r in range(cv["repeats"]):
        labels = labels_all[r]
        sums = compute_sums(design, labels, cv["folds"], by_movie)
        coefs, intercepts = [], []
        for f in range(cv["folds"]):
            coef, intercept = _solve_stats(total - sums.ridge_stats(users, movies, f), alpha, fit_intercept)
            coefs.append(coef)
            intercepts.append(intercept)
        scores = compute_scores(design, labels, np.stack(coefs), np.array(intercepts), by_movie)
        digests = dask.compute(
            _tree_sum(
                [
                    delayed(_partition_fold_digest, pure=True)(rows, lab, user_ids, movie_ids, cv["folds"])
                    for rows, lab in zip(design.rows, design.slices(labels, by_movie), strict=True)
                ]
            )
        )[0]
        r2 = _r2(scores)
        n = design.n_total
        for f in range(cv["folds"]):
            test_count_m = sums.count_m[f]
            rows_out.append(
                {
                    "repeat": r,
                    "fold": f,
                    "held_out": HELD_OUT[unit],
                    "alpha": alpha,
                    "n_train": int(n - scores[f, 0]),
                    "n_test": int(scores[f, 0]),
                    "n_test_movies": int((test_count_m > 0).sum()),
                    "n_test_movies_unseen": int(((test_count_m > 0) & (test_count_m == whole.count_m[0])).sum()),
                    "r2_test": float(r2[f]),
                    "test_hash": "m:" + hashlib.sha1(np.uint64(digests[f]).tobytes()).hexdigest()[:14],
                }
            )
    table = pd.DataFrame(rows_out)
    logger.info(
        "%d x %d-fold CV (partitioned), folds of %s: test R² %.4f (sd %.4f over folds)",
        cv["repeats"],
        cv["folds"],
        HELD_OUT[unit],
        table["r2_test"].mean(),
        table["r2_test"].std(ddof=1),
    )
    return table


def sample_design(design: PartitionedDesign, max_ratings: int, seed: int) -> RatingDesign:
    """An in-memory :class:`.nodes.RatingDesign` of at most ``max_ratings`` of ``design``'s ratings.

    All of them (in order) when they fit, so small data plots as the in-memory pipeline does;
    else a uniform sample without replacement.
    """
    import dask

    n = len(design)
    labels = np.zeros(design.n_total, dtype=np.int8)
    if n > max_ratings:
        chosen = np.zeros(design.n_total, dtype=bool)
        held = np.flatnonzero(design.mask) if design.mask is not None else np.arange(design.n_total)
        chosen[np.random.default_rng(seed).choice(held, size=max_ratings, replace=False)] = True
        labels = np.where(chosen, 0, -1).astype(np.int8)
    from dask import delayed

    def _take(rows: pd.DataFrame, lab: np.ndarray | None) -> pd.DataFrame:
        return rows if lab is None else rows.loc[lab >= 0]

    parts = dask.compute(
        *[delayed(_take)(rows, lab) for rows, lab in zip(design.rows, design.slices(labels), strict=True)]
    )
    table = pd.concat(parts, ignore_index=True)
    return RatingDesign(
        user_features=design.user_features,
        movie_features=design.movie_features,
        user_row=table["user_row"].to_numpy(dtype=np.int32),
        movie_row=table["movie_row"].to_numpy(dtype=np.int32),
        rating=table[TARGET].to_numpy(dtype=np.float64),
        rows=np.arange(len(table), dtype=np.int64),
    )


def plot_partitioned(
    model_input: PartitionedDesign, top: pd.DataFrame, params: dict[str, Any], labels: dict[str, Any] | None = None
) -> Any:
    """:func:`.nodes.plot_top_features` on at most ``scatter_max_ratings`` ratings gathered from the partitions."""
    sample = sample_design(model_input, int(params["scatter_max_ratings"]), params["seed"])
    return plot_top_features(sample, top, params, labels)
