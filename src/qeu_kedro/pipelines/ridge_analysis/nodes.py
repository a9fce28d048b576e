"""Nodes of the ``ridge_analysis`` pipeline: the original notebook's steps as pure functions.

The ridge is fitted from per-user and per-movie sums, never from the ratings x features
matrix the original built (kept as :mod:`.reference`); coefficients are the same.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, sparse
from threadpoolctl import threadpool_limits

from qeu_kedro.figures import suptitle
from qeu_kedro.validation import Column, check_table, fail

logger = logging.getLogger(__name__)

MAX_STARS = 5
STEP_HINT = "Set ridge_analysis.rating_step in parameters_ridge_analysis.yml: 1 (whole stars) or 0.5 (half stars)."


def rating_columns(step: float = 1) -> tuple[Column, ...]:
    """The ``ratings`` schema: ratings are multiples of ``step`` from ``step`` to 5 stars.

    ``step`` 1 (whole stars 1-5, MovieLens 100K and 1M) or 0.5 (half stars 0.5-5, 10M and later).
    """
    if step == 1:
        rating = Column("rating", "int", min=1, max=MAX_STARS, hint=f"Ratings are whole stars from 1 to 5. {STEP_HINT}")
    else:
        rating = Column(
            "rating",
            "float",
            min=step,
            max=MAX_STARS,
            step=step,
            hint=f"Ratings are multiples of {step:g} stars from {step:g} to 5. {STEP_HINT}",
        )
    return (Column("user_id", "int", min=1), Column("movie_id", "int", min=1), rating)


RATING_COLUMNS = rating_columns(1)
# A user rates a movie once: a second row with other stars would count the pair twice.
RATING_KEY = ("user_id", "movie_id")
CATEGORICAL = ("gender", "occupation")
USER_FEATURES = ("age", *CATEGORICAL)  # the user columns that can be features (ridge_analysis.user_features)
TARGET = "rating"


def user_features_of(params: dict[str, Any]) -> list[str]:
    """The user columns that are features: ``params["user_features"]``, each one of ``USER_FEATURES``."""
    chosen = list(params["user_features"])
    unknown = [c for c in chosen if c not in USER_FEATURES]
    if unknown:
        raise ValueError(
            f"ridge_analysis.user_features names unknown columns {unknown}; "
            f"allowed: {list(USER_FEATURES)} (an empty list: movie features alone)"
        )
    return chosen


def user_columns(schema: dict[str, Any] | None, features: Sequence[str] = USER_FEATURES) -> tuple[Column, ...]:
    """The ``users`` schema: ``user_id`` and the ``features`` columns (parameters).

    Gender and occupation must be one of ``schema``'s lists; ``schema`` None (a direct call
    without parameters) leaves the categories open. With no features, ``user_id`` may repeat
    (a users table read from the ratings' user ids).
    """
    schema = schema or {"genders": None, "occupations": None}
    where = "parameters_ridge_analysis.yml (ridge_analysis.schema)"
    columns = (
        Column("user_id", "int", min=1, unique=bool(features)),
        Column("age", "int", min=1, max=120),
        Column("gender", "str", allowed=schema["genders"], hint=f"Allowed genders are listed in {where}."),
        Column(
            "occupation",
            "str",
            allowed=schema["occupations"],
            hint=f"Allowed occupations are listed in {where}; a new category needs an entry there.",
        ),
    )
    return tuple(c for c in columns if c.name == "user_id" or c.name in features)


def check_ratings(ratings: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Check the raw ``ratings`` table (user_id, movie_id, rating; one rating per user and movie).

    Ratings are multiples of ``params["rating_step"]`` (conf/base: 1, whole stars 1-5).
    """
    step = params["rating_step"]
    return check_table(ratings, "ratings", rating_columns(step), unique_together=[RATING_KEY])


def check_users(users: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Check the raw ``users`` table: ``user_id`` and the ``params["user_features"]`` columns.

    Gender and occupation must be in ``params["schema"]``'s lists. With ``user_features: []``
    only ``user_id`` is read and a repeated id counts once (the 20M+ releases have no users
    file: their catalog reads the ratings' user ids as ``users``).
    """
    features = user_features_of(params)
    checked = check_table(users, "users", user_columns(params["schema"], features))
    return checked if features else checked.drop_duplicates("user_id", ignore_index=True)


def check_rated_users(ratings: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """``users`` (checked), once every rating's user is among them: a rating by an unknown user is an
    input error, found here, before the movies are embedded or anything is written."""
    unknown_user = ~ratings["user_id"].isin(users["user_id"]).to_numpy()
    if unknown_user.any():
        i = int(np.flatnonzero(unknown_user)[0])
        fail("ratings", "user_id", i, f"user {ratings['user_id'].iloc[i]} is not in 'users'")
    return users


def check_join_loss(ratings: pd.DataFrame, movie_embeddings: pd.DataFrame, max_share: float | None) -> None:
    """Fail when more than ``max_share`` of the ratings are of movies without an embedding."""
    lost = ~ratings["movie_id"].isin(movie_embeddings["movie_id"]).to_numpy()
    if len(lost) and lost.any():
        missing = pd.unique(ratings["movie_id"].to_numpy()[lost])
        fail_join_loss("ratings", int(np.flatnonzero(lost)[0]), int(lost.sum()), len(lost), missing, max_share)


def fail_join_loss(
    dataset: str, first_row: int, n_lost: int, n_ratings: int, missing: np.ndarray, max_share: float | None
) -> None:
    """Fail when ``n_lost`` of ``n_ratings`` (the ratings of the ``missing`` movie ids, in order of
    appearance, the first at ``first_row`` of ``dataset``) is more than ``max_share``; the in-memory and
    the partitioned check (:mod:`.partitioned`) word it the same way."""
    share = n_lost / n_ratings if n_ratings else 0.0
    if max_share is None or share <= max_share:
        return
    fail(
        dataset,
        "movie_id",
        first_row,
        f"{n_lost} of {n_ratings} ratings ({share:.1%}) are of movies not in 'movies' / the embeddings, "
        f"more than ridge_analysis.max_join_loss = {max_share:.1%}; {len(missing)} movie ids are missing, "
        f"the first: {[int(m) for m in missing[:10]]}",
        "Check that the movies file is complete, or raise max_join_loss in parameters_ridge_analysis.yml "
        "if these movies are expected to have no overview.",
    )


@dataclass(frozen=True)
class RatingDesign:
    """The model input without the ratings x features matrix.

    A rating's features are its user's row of ``user_features`` followed by its movie's
    row of ``movie_features``; each rating stores only the two row numbers. The flat
    matrix of the original notebook is ``to_frame()``, built only for small data.

    Attributes:
        user_features: one row per user (index ``user_id``): age, one-hot gender, occupation.
        movie_features: one row per movie (index ``movie_id``): the embedding dimensions.
        user_row: for each rating, its row in ``user_features``.
        movie_row: for each rating, its row in ``movie_features``.
        rating: the target, one per rating.
        rows: each rating's position in the joined ratings (what the split shuffles).
    """

    user_features: pd.DataFrame
    movie_features: pd.DataFrame
    user_row: np.ndarray
    movie_row: np.ndarray
    rating: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rating)

    @property
    def features(self) -> list[str]:
        return [*self.user_features.columns, *self.movie_features.columns]

    def subset(self, positions: np.ndarray) -> RatingDesign:
        """The ratings at ``positions`` (the feature tables are shared, not copied)."""
        return replace(
            self,
            user_row=self.user_row[positions],
            movie_row=self.movie_row[positions],
            rating=self.rating[positions],
            rows=self.rows[positions],
        )

    def column(self, feature: str) -> np.ndarray:
        """One feature for every rating (float64): what a column of the flat matrix would hold."""
        if feature in self.user_features.columns:
            return self.user_features[feature].to_numpy(dtype=np.float64)[self.user_row]
        if feature in self.movie_features.columns:
            return self.movie_features[feature].to_numpy(dtype=np.float64)[self.movie_row]
        raise KeyError(feature)

    def to_frame(self, features: list[str] | None = None) -> pd.DataFrame:
        """The flat table (``features``, default all, then ``rating``) indexed by ``rows``; small data only."""
        names = self.features if features is None else list(features)
        table = pd.DataFrame({f: self.column(f) for f in names}, index=pd.Index(self.rows))
        table[TARGET] = self.rating
        return table


def check_finite_embeddings(movie_embeddings: pd.DataFrame) -> None:
    """Refuse a NaN or infinite embedding value, naming its movie and column: every ridge solve would
    fail on it (a NaN spreads through XᵀX; LAPACK's own message names no movie)."""
    columns = [c for c in movie_embeddings.columns if c != "movie_id"]
    bad = ~np.isfinite(movie_embeddings[columns].to_numpy(dtype=np.float64))
    if not bad.any():
        return
    row, col = (int(i[0]) for i in np.nonzero(bad))
    movies = int(bad.any(axis=1).sum())
    fail(
        "movie_embeddings",
        columns[col],
        row,
        f"movie_id {movie_embeddings['movie_id'].iloc[row]} has the value {movie_embeddings[columns[col]].iloc[row]}, "
        f"not a finite number ({int(bad.sum())} non-finite value(s) in {movies} movie(s) in all)",
        "The embeddings are movie_embedding's output (data/04_feature/<namespace>/movie_embeddings.parquet): "
        "re-run it for this namespace, then the ridge (kedro run --pipelines movie_embedding,ridge_analysis); "
        "if the value comes back, check that movie's overview and the embedding model.",
    )


def build_model_input(
    ratings: pd.DataFrame, users: pd.DataFrame, movie_embeddings: pd.DataFrame, params: dict[str, Any]
) -> tuple[RatingDesign, dict[str, int]]:
    """Index ratings by user and movie feature rows instead of joining them into one wide table.

    The user columns of ``params["user_features"]`` (conf/base: age, gender, occupation; an empty
    list: movie features alone) are features: ``gender`` and ``occupation`` one-hot encoded,
    ``age`` numeric; every embedding dimension is a feature. Ratings of movies without an embedding are dropped
    (and counted); a rating by an unknown user is an input error, and so is a dropped
    share above ``params["max_join_loss"]`` (a movies file cut short must not pass). Features and rating
    order are those of the original join, so the split and the results are the same.

    Returns:
        The :class:`RatingDesign` and counts for the metrics report.
    """
    check_rated_users(ratings, users)  # the pipeline's check_rated_users node has done it: for direct callers
    for table, name, key in ((users, "users", "user_id"), (movie_embeddings, "movie_embeddings", "movie_id")):
        duplicated = table[key].duplicated().to_numpy()
        if duplicated.any():
            i = int(np.flatnonzero(duplicated)[0])
            fail(name, key, i, f"duplicate id {table[key].iloc[i]}")
    check_finite_embeddings(movie_embeddings)
    # An inner join keeps the ratings' order: the kept ratings, in their order, are its rows.
    kept = ratings.loc[ratings["movie_id"].isin(movie_embeddings["movie_id"]).to_numpy()]
    dropped = len(ratings) - len(kept)
    if kept.empty:
        fail("movie_embeddings", "movie_id", None, "no rated movie has an embedding: the join is empty")
    check_join_loss(ratings, movie_embeddings, params["max_join_loss"])

    # Only users and movies with a kept rating: one-hot columns then match a get_dummies of the join.
    raters = users.loc[users["user_id"].isin(kept["user_id"]).to_numpy()].reset_index(drop=True)
    chosen = user_features_of(params)
    numeric = [c for c in chosen if c not in CATEGORICAL]
    categorical = [c for c in CATEGORICAL if c in chosen]
    parts = [raters[numeric].astype(np.float64)]
    if categorical:
        parts.append(pd.get_dummies(raters[categorical], prefix=categorical, dtype=np.float64))
    user_features = pd.concat(parts, axis=1)
    user_features.index = pd.Index(raters["user_id"].to_numpy(), name="user_id")
    rated = movie_embeddings.loc[movie_embeddings["movie_id"].isin(kept["movie_id"]).to_numpy()]
    embedding_cols = [c for c in movie_embeddings.columns if c != "movie_id"]
    movie_features = pd.DataFrame(
        rated[embedding_cols].to_numpy(dtype=np.float64),
        index=pd.Index(rated["movie_id"].to_numpy(), name="movie_id"),
        columns=embedding_cols,
    )
    design = RatingDesign(
        user_features=user_features,
        movie_features=movie_features,
        user_row=user_features.index.get_indexer(kept["user_id"].to_numpy()).astype(np.int32),
        movie_row=movie_features.index.get_indexer(kept["movie_id"].to_numpy()).astype(np.int32),
        rating=kept[TARGET].to_numpy(dtype=np.float64),
        rows=np.arange(len(kept), dtype=np.int64),
    )
    stats = {
        "n_ratings_in": int(len(ratings)),
        "n_ratings_used": int(len(kept)),
        "n_ratings_dropped_no_embedding": int(dropped),
        "n_movies": int(len(movie_features)),
        "n_users": int(len(user_features)),
        "n_features": len(design.features),
        "n_embedding_features": len(embedding_cols),
    }
    logger.info(
        "Model input: %d ratings x %d features (%d users x %d, %d movies x %d; %d ratings dropped: "
        "movie without embedding)",
        stats["n_ratings_used"],
        stats["n_features"],
        len(user_features),
        user_features.shape[1],
        len(movie_features),
        movie_features.shape[1],
        dropped,
    )
    return design, stats


#: What ``ridge_analysis.group_by`` may name: the unit the test split and the CV folds hold out whole
#: (null: single ratings). By movie, every test rating is of a movie the model has not seen in training,
#: so only what the movie's features say can predict it: with 469 movies and hundreds of embedding
#: dimensions a ridge fitted on folds of single ratings can give each movie its own offset, whatever
#: its features mean (random vectors score as well as real ones there: benchmarks/ridge_random_control.py).
GROUP_UNITS = ("movie_id",)
HELD_OUT = {None: "ratings", "movie_id": "movies"}  # the unit held out, in words (the CV table's held_out)
# what the test ratings are of, by the unit held out (the coefficient chart's title)
TEST_RATINGS_OF = {"movies": " of unseen movies", "ratings": " of movies seen in training"}


def group_by_of(params: dict[str, Any]) -> str | None:
    """``params["group_by"]``: ``movie_id`` (whole movies held out) or None (single ratings; also when absent)."""
    unit = params.get("group_by")
    if unit not in (None, *GROUP_UNITS):
        raise ValueError(
            f"ridge_analysis.group_by is {unit!r}; allowed: "
            f"{list(GROUP_UNITS)} (the test split and CV folds hold out whole movies) or null (single ratings)"
        )
    return unit


def group_codes(design: RatingDesign, unit: str) -> tuple[np.ndarray, int]:
    """Each rating's group under ``unit`` (``movie_id``): its rank among the design's distinct ids (sorted),
    and the number of groups. Sorted ids, not table rows: the partitioned path draws the same folds."""
    if unit != "movie_id":
        raise ValueError(f"cannot group ratings by {unit!r}")
    ids = design.movie_features.index.to_numpy()[design.movie_row]
    unique, codes = np.unique(ids, return_inverse=True)
    return codes.reshape(-1), len(unique)


def split_mask(n: int, test_size: float, seed: int) -> np.ndarray:
    """True for the test items of ``train_test_split(range(n), test_size, random_state=seed)``.

    scikit-learn's split is ``ShuffleSplit``: the first ``ceil(test_size n)`` of
    ``RandomState(seed).permutation(n)`` are the test set. Drawn here without its index arrays;
    over groups (``n`` distinct movies) it is ``GroupShuffleSplit``'s choice of test groups.
    """
    from sklearn.model_selection._split import _validate_shuffle_split

    _, n_test = _validate_shuffle_split(n, test_size, None, default_test_size=0.25)
    mask = np.zeros(n, dtype=bool)
    mask[np.random.RandomState(seed).permutation(n)[:n_test]] = True
    return mask


def label_dtype(folds: int) -> np.dtype:
    """The smallest signed integer type that holds fold numbers ``0 .. folds - 1`` and ``-1`` (outside):
    one byte per rating up to 127 folds (int8 would wrap from fold 128 on), more only when needed."""
    return np.min_scalar_type(-max(int(folds), 1))


def kfold_labels(n: int, folds: int, repeats: int, seed: int) -> np.ndarray:
    """Each item's test fold per repeat, ``(repeats, n)`` of :func:`label_dtype`: ``RepeatedKFold(folds, repeats,
    seed)``'s folds.

    ``RepeatedKFold`` shuffles ``arange(n)`` with one ``RandomState(seed)`` per repeat, in turn,
    and cuts it into folds of ``n // folds`` (+1 for the first ``n % folds``). Over ``n`` groups
    (distinct movies, sorted) these are ``GroupKFold(folds, shuffle=True, random_state=rng)``'s
    folds with that one ``rng`` across the repeats.
    """
    if n < folds:
        raise ValueError(f"{folds}-fold cross-validation needs at least {folds} items to split, got {n}")
    rng = np.random.RandomState(seed)
    sizes = np.full(folds, n // folds)
    sizes[: n % folds] += 1
    dtype = label_dtype(folds)
    fold_of_position = np.repeat(np.arange(folds, dtype=dtype), sizes)
    labels = np.empty((repeats, n), dtype=dtype)
    for r in range(repeats):
        order = np.arange(n)
        rng.shuffle(order)
        labels[r, order] = fold_of_position
    return labels


def fold_labels(design: RatingDesign, folds: int, repeats: int, seed: int, unit: str | None) -> np.ndarray:
    """Each rating's test fold per repeat, ``(repeats, ratings)``: :func:`kfold_labels` over the ratings
    (``unit`` None), or over the distinct movies (``movie_id``), every rating of a movie in its movie's fold."""
    if unit is None:
        return kfold_labels(len(design), folds, repeats, seed)
    codes, n_groups = group_codes(design, unit)
    return kfold_labels(n_groups, folds, repeats, seed)[:, codes]


def split_ratings(design: RatingDesign, params: dict[str, Any]) -> tuple[RatingDesign, RatingDesign]:
    """Split the ratings into train and test (``test_size``, ``seed``, ``group_by``).

    By rating (``group_by`` null), the same shuffle as ``train_test_split`` of the flat table: it depends
    only on the number of ratings and the seed. By movie, ``test_size`` of the distinct movies (sorted by
    id, shuffled by the seed: ``GroupShuffleSplit``) with all their ratings are the test set, so the test
    R² is of movies the model has not seen, as the CV's. Fold counts larger than the units they split are
    refused here (:func:`check_fold_counts`), before any output is written.
    """
    unit = group_by_of(params)
    if unit is None:
        from sklearn.model_selection import train_test_split

        check_fold_counts(len(design), params)
        train, test = train_test_split(
            np.arange(len(design)), test_size=params["test_size"], random_state=params["seed"]
        )
        return design.subset(train), design.subset(test)
    codes, n_groups = group_codes(design, unit)
    check_fold_counts(n_groups, params)
    held_out = split_mask(n_groups, params["test_size"], params["seed"])[codes]
    return design.subset(np.flatnonzero(~held_out)), design.subset(np.flatnonzero(held_out))


def normal_equations(design: RatingDesign, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``XᵀX`` and ``Xᵀy`` of the flat matrix ``X``, from per-user and per-movie sums.

    With ``fit_intercept`` ``X`` and ``y`` are centred on their training means first, as
    scikit-learn's ``Ridge`` does. Centring the feature tables centres every rating's row,
    since a rating's row is [user row, movie row]. Then, with ``c`` the ratings per user
    and per movie and ``C`` the user x movie count matrix:
    ``XᵀX = [[Uᵀ diag(c_u) U, Uᵀ C M], [Mᵀ Cᵀ U, Mᵀ diag(c_m) M]]`` and
    ``Xᵀy = [Uᵀ s_u, Mᵀ s_m]`` with ``s`` the per-user / per-movie sums of ``y``.
    Memory and time grow with users, movies and features, plus one pass over the ratings.

    Returns:
        ``XᵀX``, ``Xᵀy`` and the offsets (feature means, rating mean) for the intercept.
    """
    users = design.user_features.to_numpy(dtype=np.float64)
    movies = design.movie_features.to_numpy(dtype=np.float64)
    n = len(design)
    count_u = np.bincount(design.user_row, minlength=len(users)).astype(np.float64)
    count_m = np.bincount(design.movie_row, minlength=len(movies)).astype(np.float64)
    y = design.rating
    offsets = {"x": np.zeros(users.shape[1] + movies.shape[1]), "y": 0.0}
    if fit_intercept:
        mean_u, mean_m, mean_y = count_u @ users / n, count_m @ movies / n, float(y.mean())
        users, movies, y = users - mean_u, movies - mean_m, y - mean_y
        offsets = {"x": np.concatenate([mean_u, mean_m]), "y": mean_y}
    sum_u = np.bincount(design.user_row, weights=y, minlength=len(users))
    sum_m = np.bincount(design.movie_row, weights=y, minlength=len(movies))
    # movie x user counts; duplicates (a user rating a movie twice) are summed
    counts = sparse.csr_array((np.ones(n), (design.movie_row, design.user_row)), shape=(len(movies), len(users)))
    raters_of_movie = counts @ users  # per movie: the sum of its raters' rows (movies x user features)
    p_u = users.shape[1]
    gram = np.empty((p_u + movies.shape[1],) * 2)
    gram[:p_u, :p_u] = users.T @ (count_u[:, None] * users)
    gram[p_u:, p_u:] = movies.T @ (count_m[:, None] * movies)
    gram[:p_u, p_u:] = raters_of_movie.T @ movies
    gram[p_u:, :p_u] = gram[:p_u, p_u:].T
    xty = np.concatenate([users.T @ sum_u, movies.T @ sum_m])
    return gram, xty, offsets


def solve_ridge(gram: np.ndarray, xty: np.ndarray, alpha: float) -> np.ndarray:
    """``(XᵀX + alpha I)⁻¹ Xᵀy`` by Cholesky, like scikit-learn's solver; least squares if singular."""
    a = gram + alpha * np.eye(len(gram))
    # One thread: a features x features solve takes milliseconds, but multi-threaded LAPACK
    # spins for seconds when other jobs hold the cores.
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            return linalg.cho_solve(linalg.cho_factor(a), xty)
        except linalg.LinAlgError:  # not positive definite (a NaN or inf is scipy's ValueError: not hidden here)
            logger.warning("XᵀX + alpha I is singular (alpha %s): solving by least squares", alpha)
            return linalg.lstsq(a, xty)[0]


@dataclass(frozen=True)
class RidgeStats:
    """Uncentred sums over a set of ratings: ``n``, ``Σx``, ``Σy``, ``XᵀX`` and ``Xᵀy``.

    They add over disjoint sets of ratings, so a training fold's statistics are the whole
    set's minus the test fold's, and partitions computed apart sum to the whole. Centring
    (what ``fit_intercept`` needs) happens afterwards: ``XᵀX - n x̄ x̄ᵀ`` and ``Xᵀy - n x̄ ȳ``.
    """

    n: float
    sum_x: np.ndarray
    sum_y: float
    gram: np.ndarray
    xty: np.ndarray

    def __add__(self, other: RidgeStats) -> RidgeStats:
        return RidgeStats(
            self.n + other.n,
            self.sum_x + other.sum_x,
            self.sum_y + other.sum_y,
            self.gram + other.gram,
            self.xty + other.xty,
        )

    def __sub__(self, other: RidgeStats) -> RidgeStats:
        return RidgeStats(
            self.n - other.n,
            self.sum_x - other.sum_x,
            self.sum_y - other.sum_y,
            self.gram - other.gram,
            self.xty - other.xty,
        )

    def normal_equations(self, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """``XᵀX``, ``Xᵀy`` (centred with ``fit_intercept``) and the offsets, as :func:`normal_equations` returns."""
        if not fit_intercept:
            return self.gram, self.xty, {"x": np.zeros_like(self.sum_x), "y": 0.0}
        mean_x, mean_y = self.sum_x / self.n, self.sum_y / self.n
        gram = self.gram - self.n * np.outer(mean_x, mean_x)
        xty = self.xty - self.n * mean_x * mean_y
        return gram, xty, {"x": mean_x, "y": mean_y}


def sufficient_statistics(design: RatingDesign) -> RidgeStats:
    """The :class:`RidgeStats` of ``design``'s ratings, from per-user and per-movie sums (no flat matrix)."""
    gram, xty, _ = normal_equations(design, fit_intercept=False)
    count_u = np.bincount(design.user_row, minlength=len(design.user_features)).astype(np.float64)
    count_m = np.bincount(design.movie_row, minlength=len(design.movie_features)).astype(np.float64)
    sum_x = np.concatenate(
        [
            count_u @ design.user_features.to_numpy(dtype=np.float64),
            count_m @ design.movie_features.to_numpy(dtype=np.float64),
        ]
    )
    return RidgeStats(float(len(design)), sum_x, float(design.rating.sum()), gram, xty)


def _as_model(features: list[str], coef: np.ndarray, intercept: float, alpha: float) -> dict[str, Any]:
    return {
        "alpha": float(alpha),
        "intercept": float(intercept),
        "features": list(features),
        "coefficients": [float(c) for c in coef],
    }


def _solve_stats(stats: RidgeStats, alpha: float, fit_intercept: bool) -> tuple[np.ndarray, float]:
    gram, xty, offsets = stats.normal_equations(fit_intercept)
    coef = solve_ridge(gram, xty, alpha)
    return coef, offsets["y"] - float(offsets["x"] @ coef)


def _fold_hash(design: RatingDesign) -> str:
    """Fingerprint of which (user, movie, rating) a fold holds, so two namespaces' folds can be paired."""
    import hashlib

    keys = np.stack(
        [
            design.user_features.index.to_numpy()[design.user_row],
            design.movie_features.index.to_numpy()[design.movie_row],
            # the rating's exact value (its float bits): a half star (3.5) is not 3
            np.asarray(design.rating, dtype=np.float64).view(np.int64),
        ],
        axis=1,
    ).astype(np.int64)
    keys = keys[np.lexsort(keys.T[::-1])]
    return hashlib.sha1(keys.tobytes()).hexdigest()[:16]


def r2_from_sums(rss: Any, tss: Any, n: Any) -> np.ndarray:
    """R² from the residual and total sums of squares of ``n`` ratings, as scikit-learn's ``r2_score`` gives it.

    ``1 - rss / tss``, with ``r2_score``'s ``force_finite`` (its default): a perfect prediction (``rss`` 0) is
    1.0, and a test set whose ratings are all equal (``tss`` 0) is 0.0 otherwise, not ``-inf``; fewer than
    two ratings give NaN (``r2_score`` warns and returns NaN). Arrays broadcast.
    """
    rss, tss, n = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (rss, tss, n)))
    out = np.ones(rss.shape)
    valid = (rss != 0) & (tss != 0)
    out[valid] = 1.0 - rss[valid] / tss[valid]
    out[(rss != 0) & (tss == 0)] = 0.0
    out[n < 2] = np.nan
    return out


def check_fold_counts(n_units: int, params: dict[str, Any]) -> None:
    """Refuse ``cv.folds`` or (with ``alpha: auto``) ``alpha_search.folds`` larger than the units they split.

    ``n_units``: the design's movies (``group_by: movie_id``) or ratings (null). The CV splits them all; the
    alpha search splits the training split's and, nested in the CV, each fold's training units, the
    fewest of which are ``n_units`` minus the largest CV fold. A fold count above that would leave folds
    empty (scored NaN or ``-inf``, or a crash deep in scikit-learn): the split node calls this, before
    anything is written.
    """
    from sklearn.model_selection._split import _validate_shuffle_split

    what = HELD_OUT[group_by_of(params)]
    where = "ridge_analysis"  # the value may come from the YAML files or --params: the key names it
    folds = int(params["cv"]["folds"]) if "cv" in params else None  # a direct call may give no CV
    if folds is not None and folds > n_units:
        raise ValueError(
            f"{where}.cv.folds is {folds}, more than the {n_units} {what} the cross-validation splits "
            f"(group_by: {params.get('group_by')}): each fold must hold out at least one; set cv.folds to at "
            f"most {n_units}."
        )
    if params.get("alpha") != "auto":
        return
    _, n_test = _validate_shuffle_split(n_units, params["test_size"], None, default_test_size=0.25)
    searched = {"the training split's": n_units - n_test}
    if folds is not None:
        searched["each CV fold's training"] = n_units - math.ceil(n_units / folds)  # the largest fold held out
    fewest = min(searched.values())
    search_folds = int(params["alpha_search"]["folds"])
    if search_folds > fewest:
        sets = " and ".join(f"{name} {n} {what}" for name, n in searched.items())
        raise ValueError(
            f"{where}.alpha_search.folds is {search_folds}, more than the {fewest} {what} it would split (alpha: "
            f"auto searches {sets}): set alpha_search.folds to at most {fewest}."
        )


def _alpha_grid_scores(train: RatingDesign, params: dict[str, Any], total: RidgeStats | None = None) -> np.ndarray:
    """k-fold CV R² of every grid alpha on ``train``, ``(alpha_search.folds, grid)``; ``total``: ``train``'s
    :class:`RidgeStats` when the caller has them (the nested CV: the whole design's minus its test fold's)."""
    search = params["alpha_search"]
    grid = np.asarray(search["grid"], dtype=np.float64)
    fit_intercept = params["fit_intercept"]
    users = train.user_features.to_numpy(dtype=np.float64)
    movies = train.movie_features.to_numpy(dtype=np.float64)
    p_u = users.shape[1]
    total = sufficient_statistics(train) if total is None else total
    labels = fold_labels(train, search["folds"], 1, search["seed"], group_by_of(params))[0]
    scores = np.empty((search["folds"], len(grid)))
    for f in range(search["folds"]):
        test = train.subset(np.flatnonzero(labels == f))
        gram, xty, offsets = (total - sufficient_statistics(test)).normal_equations(fit_intercept)
        with threadpool_limits(limits=1, user_api="blas"):
            lam, vectors = linalg.eigh(gram)
        coefs = vectors @ ((vectors.T @ xty)[:, None] / (lam[:, None] + grid[None, :]))  # features x grid
        intercepts = offsets["y"] - offsets["x"] @ coefs
        y_hat = (users @ coefs[:p_u])[test.user_row] + (movies @ coefs[p_u:])[test.movie_row] + intercepts
        residual = ((test.rating[:, None] - y_hat) ** 2).sum(axis=0)
        scores[f] = r2_from_sums(residual, ((test.rating - test.rating.mean()) ** 2).sum(), len(test))
    return scores


def _best_alpha(scores: np.ndarray, params: dict[str, Any]) -> int:
    """The grid index of the best mean CV R² (the first best, as ``GridSearchCV`` picks); a grid point without
    a finite score on every fold is an error, never passed over (an argmax of NaN is the first grid point)."""
    mean = scores.mean(axis=0)
    if not np.isfinite(mean).all():
        bad = [float(a) for a, m in zip(params["alpha_search"]["grid"], mean, strict=True) if not np.isfinite(m)]
        raise ValueError(
            f"alpha: auto: the CV R² of alpha {bad} is not a number on every one of the "
            f"{params['alpha_search']['folds']} alpha_search folds (a fold with fewer than two ratings): lower "
            "ridge_analysis.alpha_search.folds in parameters_ridge_analysis.yml, or set ridge_analysis.alpha to a number."
        )
    return int(np.argmax(mean))


def select_alpha(train: RatingDesign, params: dict[str, Any]) -> dict[str, Any]:
    """The ridge's alpha: ``params["alpha"]`` if a number; with ``alpha: auto`` the grid point of best k-fold CV R².

    The search runs on the training split only (``alpha_search``: ``grid``, ``folds``, ``seed``), its folds
    holding out what the CV's hold out (``group_by``: whole movies, or single ratings).
    Each fold's training statistics are the split's minus the fold's; one eigendecomposition
    ``XᵀX = V Λ Vᵀ`` per fold gives every alpha's coefficients ``V (Vᵀ Xᵀy) / (Λ + alpha)``, so the
    grid costs little more than one alpha. Folds and scoring are those of scikit-learn's
    ``GridSearchCV(Ridge(), cv=KFold(folds, shuffle=True, random_state=seed))`` (by movie: with
    ``GroupKFold(folds, shuffle=True, random_state=seed)`` over the movies). This alpha is the single-split
    model's; the repeated CV (:func:`cross_validate_ridge`) searches again inside each of its folds.
    """
    alpha = params["alpha"]
    if alpha != "auto":
        return {"mode": "fixed", "alpha": float(alpha)}
    search = params["alpha_search"]
    grid = np.asarray(search["grid"], dtype=np.float64)
    scores = _alpha_grid_scores(train, params)
    best = _best_alpha(scores, params)
    mean = scores.mean(axis=0)
    logger.info(
        "alpha: auto -> %g (mean %d-fold CV R² %.4f on the training split, folds of %s)",
        grid[best],
        search["folds"],
        mean[best],
        HELD_OUT[group_by_of(params)],
    )
    if grid[best] in (grid.min(), grid.max()):  # the grid need not be sorted: its ends are its extremes
        logger.warning("alpha: auto chose %g, the edge of alpha_search.grid: widen the grid", grid[best])
    return {
        "mode": "auto",
        "alpha": float(grid[best]),
        "folds": int(search["folds"]),
        "held_out": HELD_OUT[group_by_of(params)],
        "grid": [float(a) for a in grid],
        "cv_r2_mean": [float(v) for v in mean],
        "cv_r2_std": [float(v) for v in scores.std(axis=0, ddof=1)],
    }


def fit_ridge(
    train: RatingDesign, params: dict[str, Any], alpha_selection: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``Ridge(alpha)`` on the training ratings, as scikit-learn fits it, without the flat matrix.

    ``alpha`` is the one :func:`select_alpha` chose, else ``params["alpha"]`` (a number).
    Returns the model as plain data (JSON-safe).
    """
    fit_intercept = params["fit_intercept"]
    alpha = float((alpha_selection or params)["alpha"])
    gram, xty, offsets = normal_equations(train, fit_intercept)
    coef = solve_ridge(gram, xty, alpha)
    intercept = offsets["y"] - float(offsets["x"] @ coef) if fit_intercept else 0.0
    return _as_model(train.features, coef, intercept, alpha)


def cross_validate_ridge(design: RatingDesign, alpha_selection: dict[str, Any], params: dict[str, Any]) -> pd.DataFrame:
    """Test R² of repeated k-fold cross-validation: one row per (repeat, fold).

    ``cv``: ``folds``, ``repeats``, ``seed``; ``group_by``: what a fold holds out. ``movie_id``: whole
    movies (the distinct movies, sorted by id, cut into folds as ``RepeatedKFold`` cuts items; per repeat
    ``GroupKFold(folds, shuffle=True)``), so every test rating is of a movie the fold's model never saw
    and the score says what the movie's features predict. Null: single ratings (``RepeatedKFold`` over
    the ratings), where a test fold's movies are rated in training too and the ridge can fit each
    movie's own offset from its features, whatever they mean. The folds depend only on the ratings (their
    number, or their movies' ids) and the seed, so the ``base`` and ``finetuned`` namespaces are scored on
    the same folds (``test_hash`` fingerprints each fold's ratings; ``movie_comparison`` checks they
    match). Each row gives the fold's sizes as they are (``n_train``, ``n_test`` ratings; grouped folds
    differ in ratings), its movies (``n_test_movies``) and how many of them have no training rating
    (``n_test_movies_unseen``: all of them by movie, almost none by rating).
    The statistics of all ratings are built once; each fold's training statistics are those
    minus the test fold's. A fixed alpha (``alpha_selection`` of mode ``fixed``) scores every fold. With
    ``alpha: auto`` (mode ``auto``) the CV is nested: each fold chooses its own alpha from
    ``alpha_search.grid`` by ``alpha_search.folds``-fold CV on that fold's training ratings only (folds of
    ``group_by``'s unit, seeded by ``alpha_search.seed``, as :func:`select_alpha` searches the training
    split), and scores its test fold with it; the alpha chosen on the training split overlaps ~80 % of every
    test fold and would flatter both namespaces by different amounts. The inner folds depend only on the
    fold's ratings and the seed, so the namespaces stay paired. Each row's ``alpha`` is the one it was
    scored with.
    """
    from sklearn.metrics import r2_score

    cv = params["cv"]
    unit = group_by_of(params)
    nested = alpha_selection.get("mode") == "auto"
    grid = np.asarray(params["alpha_search"]["grid"], dtype=np.float64) if nested else None
    alpha = float(alpha_selection["alpha"])
    total = sufficient_statistics(design)
    count_m = np.bincount(design.movie_row, minlength=len(design.movie_features))
    labels = fold_labels(design, cv["folds"], cv["repeats"], cv["seed"], unit)
    rows = []
    for r in range(cv["repeats"]):
        for f in range(cv["folds"]):
            in_test = labels[r] == f
            test = design.subset(np.flatnonzero(in_test))
            train_stats = total - sufficient_statistics(test)
            if nested:  # this fold's own alpha, searched on its training ratings only
                fold_train = design.subset(np.flatnonzero(~in_test))
                alpha = float(grid[_best_alpha(_alpha_grid_scores(fold_train, params, train_stats), params)])
            coef, intercept = _solve_stats(train_stats, alpha, params["fit_intercept"])
            y_hat = predict(_as_model(design.features, coef, intercept, alpha), test)
            test_count_m = np.bincount(test.movie_row, minlength=len(count_m))
            rows.append(
                {
                    "repeat": r,
                    "fold": f,
                    "held_out": HELD_OUT[unit],
                    "alpha": alpha,
                    "n_train": int(len(design) - in_test.sum()),
                    "n_test": int(in_test.sum()),
                    "n_test_movies": int((test_count_m > 0).sum()),
                    "n_test_movies_unseen": int(((test_count_m > 0) & (test_count_m == count_m)).sum()),
                    "r2_test": float(r2_score(test.rating, y_hat)),
                    "test_hash": _fold_hash(test),
                }
            )
    scores = pd.DataFrame(rows)
    logger.info(
        "%d x %d-fold CV, folds of %s: test R² %.4f (sd %.4f over folds)",
        cv["repeats"],
        cv["folds"],
        HELD_OUT[unit],
        scores["r2_test"].mean(),
        scores["r2_test"].std(ddof=1),
    )
    if nested:
        chosen = scores["alpha"].value_counts().sort_index()
        logger.info(
            "alpha: auto, chosen in each CV fold (nested): %s",
            ", ".join(f"{a:g} in {n} folds" for a, n in chosen.items()),
        )
        at_edge = int(scores["alpha"].isin([grid.min(), grid.max()]).sum())  # the grid need not be sorted
        if at_edge:
            logger.warning("alpha: auto chose the edge of alpha_search.grid in %d CV folds: widen the grid", at_edge)
    return scores


def predict(model: dict[str, Any], design: RatingDesign) -> np.ndarray:
    """Predicted ratings of ``model`` (as written by :func:`fit_ridge`): user part + movie part."""
    coef = pd.Series(model["coefficients"], index=model["features"], dtype=np.float64)
    unknown = coef.index.difference(design.features)
    if len(unknown):
        raise ValueError(f"the model has features the input lacks: {list(unknown[:5])}")
    users, movies = design.user_features, design.movie_features
    user_part = users.to_numpy(dtype=np.float64) @ coef.reindex(users.columns, fill_value=0.0).to_numpy()
    movie_part = movies.to_numpy(dtype=np.float64) @ coef.reindex(movies.columns, fill_value=0.0).to_numpy()
    return user_part[design.user_row] + movie_part[design.movie_row] + model["intercept"]


def evaluate_ridge(
    model: dict[str, Any],
    train: RatingDesign,
    test: RatingDesign,
    input_stats: dict[str, int],
    cv_scores: pd.DataFrame | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """R² and RMSE on train and test, the repeated-CV test R² (mean and sd over folds), and the counts.

    ``held_out`` (with ``params``) and ``cv_held_out`` say what the test split and the CV folds hold out:
    ``movies`` (``group_by: movie_id``) or ``ratings``; ``alpha_mode`` (with ``params``) how alpha was
    chosen: ``auto`` (searched on the training split; in the CV, in each fold) or ``fixed``.
    """
    from sklearn.metrics import mean_squared_error, r2_score

    metrics: dict[str, Any] = {"alpha": model["alpha"]}
    if params is not None:
        metrics.update(alpha_metrics(params))
    for name, part in (("train", train), ("test", test)):
        y, y_hat = part.rating, predict(model, part)
        metrics[f"r2_{name}"] = float(r2_score(y, y_hat))
        metrics[f"rmse_{name}"] = float(np.sqrt(mean_squared_error(y, y_hat)))
        metrics[f"n_{name}"] = int(len(part))
    if cv_scores is not None:
        metrics.update(cv_metrics(cv_scores))
    metrics.update(input_stats)
    logger.info("Ridge R² train %.4f, test %.4f", metrics["r2_train"], metrics["r2_test"])
    return metrics


def alpha_metrics(params: dict[str, Any]) -> dict[str, Any]:
    """What the test split holds out (``held_out``) and how alpha was chosen (``alpha_mode``: auto or fixed)."""
    metrics = {"held_out": HELD_OUT[group_by_of(params)]}
    if "alpha" in params:  # a direct call may give only group_by
        metrics["alpha_mode"] = "auto" if params["alpha"] == "auto" else "fixed"
    return metrics


def cv_metrics(cv_scores: pd.DataFrame) -> dict[str, Any]:
    """The CV table in a few numbers for ``ridge_metrics.json``: mean and sd of the fold scores, the design,
    what the folds hold out (``cv_held_out``; a table without the column is of folds of ratings) and the
    alphas the folds were scored with (``cv_alpha_min`` / ``_median`` / ``_max``: one value with a fixed
    alpha; with ``alpha: auto`` each fold's own)."""
    held_out = cv_scores["held_out"].iloc[0] if "held_out" in cv_scores else HELD_OUT[None]
    metrics = {
        "cv_r2_test_mean": float(cv_scores["r2_test"].mean()),
        "cv_r2_test_sd": float(cv_scores["r2_test"].std(ddof=1)),
        "cv_n_folds": int(len(cv_scores)),  # fold scores: repeats x folds
        "cv_repeats": int(cv_scores["repeat"].nunique()),
        "cv_folds": int(cv_scores["fold"].nunique()),
        "cv_held_out": str(held_out),
    }
    if "alpha" in cv_scores:
        alphas = cv_scores["alpha"].astype(np.float64)
        metrics.update(
            {
                "cv_alpha_min": float(alphas.min()),
                "cv_alpha_median": float(alphas.median()),
                "cv_alpha_max": float(alphas.max()),
            }
        )
    return metrics


def top_coefficients(model: dict[str, Any], params: dict[str, Any]) -> pd.DataFrame:
    """The ``top_k`` features by |coefficient|, with signed and absolute values."""
    coefs = pd.DataFrame({"feature": model["features"], "coefficient": model["coefficients"]})
    coefs["abs_coefficient"] = coefs["coefficient"].abs()
    top = coefs.sort_values(["abs_coefficient", "feature"], ascending=[False, True]).head(params["top_k"])
    top.insert(0, "rank", np.arange(1, len(top) + 1))
    return top.reset_index(drop=True)


def ridge_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The ``ridge_analysis`` parameters a namespace's scores depend on besides its embeddings (JSON-safe).

    ``alpha`` (a number, or ``auto`` with its ``alpha_search``: the setting, not the alpha it chose, which may
    differ between namespaces legitimately), ``fit_intercept``, ``user_features``, ``group_by``, ``test_size``,
    ``seed`` and ``cv``. ``movie_comparison`` pairs two namespaces only when these are equal: otherwise the
    difference of their scores would be the parameters' as much as the embeddings'.
    """
    alpha = params["alpha"]
    settings: dict[str, Any] = {"alpha": "auto" if alpha == "auto" else float(alpha)}
    if alpha == "auto":
        search = params["alpha_search"]
        settings["alpha_search"] = {
            "grid": [float(a) for a in search["grid"]],
            "folds": int(search["folds"]),
            "seed": int(search["seed"]),
        }
    cv = params["cv"]
    settings.update(
        {
            "fit_intercept": bool(params["fit_intercept"]),
            "user_features": list(user_features_of(params)),
            "group_by": group_by_of(params),
            "test_size": float(params["test_size"]),
            "seed": int(params["seed"]),
            "cv": {"folds": int(cv["folds"]), "repeats": int(cv["repeats"]), "seed": int(cv["seed"])},
        }
    )
    return settings


def collect_results(
    metrics: dict[str, Any], top: pd.DataFrame, cv_scores: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """What ``movie_comparison`` reads of one namespace, in one JSON document.

    ``{"metrics": ridge_metrics, "settings": ridge_settings, "top_coefficients": [row, ...], "cv_scores":
    [row, ...]}``: the same numbers as ``ridge_metrics.json``, ``top_coefficients.csv`` and
    ``ridge_cv_scores.csv`` (rows as records, floats exact), and the ``ridge_analysis`` parameters they were
    computed with (:func:`ridge_settings`), so that the comparison can refuse two namespaces fitted
    differently. One handoff per namespace keeps the closed ``base`` and ``finetuned`` boxes of kedro-viz's
    default view down to their report and this file.
    """
    return {
        "metrics": dict(metrics),
        "settings": ridge_settings(params),
        "top_coefficients": top.to_dict(orient="records"),
        "cv_scores": cv_scores.to_dict(orient="records"),
    }


def _plot_features(top: pd.DataFrame, params: dict[str, Any]) -> list[str]:
    chosen = params.get("plot_features") or top["feature"].head(params["n_plot"]).tolist()
    return list(chosen)


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


#: Resamples of the scatter figure's intervals over users (or movies): one figure, at most n_plot panels.
GROUP_RESAMPLES = 2000


@dataclass(frozen=True)
class GroupMeans:
    """Mean rating of the ratings whose binary feature is 0 and 1, and ``1 - 0``, with 95 % intervals over
    the feature's units (``users`` for a user feature: a user's ratings move together, so they are not
    independent draws). ``intervals`` is None when a group has fewer than :data:`qeu_kedro.stats.MIN_UNITS`
    units; else ``(low, high)`` of group 0, group 1 and the difference."""

    unit: str
    n_ratings: tuple[int, int]
    n_units: tuple[int, int]
    means: tuple[float, float]
    intervals: tuple[tuple[float, float], ...] | None

    @property
    def difference(self) -> float:
        return self.means[1] - self.means[0]


def group_means(design: RatingDesign, feature: str, seed: int, confidence: float = 0.95) -> GroupMeans:
    """:class:`GroupMeans` of a binary ``feature`` by a cluster bootstrap over its units.

    The feature is a user's (one-hot gender or occupation: the units are users) or a movie's (movies). Each
    resample draws the units of each group with replacement, with all their ratings, and takes the group's
    mean rating (its ratings' mean, as the point estimate); the intervals are the expanded percentile ones
    of :mod:`qeu_kedro.stats` at that group's number of units (the difference: at the smaller group's).
    Treating every rating as independent (a t or Welch interval over ratings) excluded 0 in about half of
    simulated cases without any effect, users rating dozens of movies each. Seeded: the same ``seed``, the
    same intervals.
    """
    from qeu_kedro.stats import MIN_UNITS, resampled_interval

    by_user = feature in design.user_features.columns
    unit, unit_row = ("users", design.user_row) if by_user else ("movies", design.movie_row)
    n_units = len(design.user_features) if by_user else len(design.movie_features)
    sums = np.bincount(unit_row, weights=design.rating, minlength=n_units)
    counts = np.bincount(unit_row, minlength=n_units).astype(np.float64)
    value = np.zeros(n_units)
    value[unit_row] = design.column(feature)  # one value per unit: the feature is the unit's
    members = [np.flatnonzero((counts > 0) & (value == g)) for g in (0.0, 1.0)]
    means = tuple(float(sums[m].sum() / counts[m].sum()) if len(m) else float("nan") for m in members)
    sizes = tuple(len(m) for m in members)
    n_ratings = tuple(int(counts[m].sum()) for m in members)
    if min(sizes) < MIN_UNITS:
        return GroupMeans(unit, n_ratings, sizes, means, None)
    rng = np.random.default_rng(seed)
    resampled = []
    for m in members:
        chunk = max(1, 2**22 // len(m))  # a few million draws at a time, whatever the number of users
        draws = []
        for start in range(0, GROUP_RESAMPLES, chunk):
            idx = m[rng.integers(0, len(m), size=(min(chunk, GROUP_RESAMPLES - start), len(m)))]
            draws.append(sums[idx].sum(axis=1) / counts[idx].sum(axis=1))
        resampled.append(np.concatenate(draws))
    intervals = tuple(
        resampled_interval(values, point, n, confidence, "a group's mean rating")
        for values, n, point in (
            (resampled[0], sizes[0], means[0]),
            (resampled[1], sizes[1], means[1]),
            (resampled[1] - resampled[0], min(sizes), means[1] - means[0]),
        )
    )
    return GroupMeans(unit, n_ratings, sizes, means, intervals)


def _plot_group_means(ax: Any, feature: str, groups: GroupMeans) -> str:
    """Each group's mean rating with its interval over units on ``ax``; the title's ``1 - 0`` part."""
    for g, (colour, name) in enumerate(zip(("tab:gray", "tab:orange"), ("0: not", "1: is"), strict=True)):
        if not groups.n_ratings[g]:
            continue
        mean = groups.means[g]
        yerr = None if groups.intervals is None else [[mean - groups.intervals[g][0]], [groups.intervals[g][1] - mean]]
        ax.errorbar(
            [g],
            [mean],
            yerr=yerr,
            fmt="o",
            capsize=6,
            color=colour,
            label=f"{name} {feature} ({groups.n_ratings[g]:,} ratings, {groups.n_units[g]:,} {groups.unit})",
        )
    ax.set_xticks([0, 1], ["0", "1"])
    ax.set_xlim(-0.6, 1.6)
    ax.legend(fontsize=7, loc="best")
    if groups.intervals is None:
        from qeu_kedro.stats import MIN_UNITS

        ax.set_ylabel("mean rating (no interval)", fontsize=8)
        return f"1 - 0: {groups.difference:+.2f}, no interval (fewer than {MIN_UNITS} {groups.unit} in a group)"
    ax.set_ylabel(f"mean rating, 95 % interval over {groups.unit}", fontsize=8)
    low, high = groups.intervals[2]
    return f"1 - 0: {groups.difference:+.2f} [{low:+.2f}, {high:+.2f}]\n95 % interval, {groups.unit} resampled"


def _figure_title(what: str, labels: dict[str, Any] | None, n: int) -> str:
    """``ridge_analysis / <namespace>: <what>`` with the model, the data and n."""
    if not labels:
        return f"ridge_analysis: {what} (n = {n:,} ratings)"
    return (
        f"ridge_analysis / {labels['namespace']}: {what}\n"
        f"{labels['model']} embeddings on {labels['data']}, n = {n:,} ratings"
    )


def plot_top_features(
    model_input: RatingDesign, top: pd.DataFrame, params: dict[str, Any], labels: dict[str, Any] | None = None
) -> Any:
    """Each plotted feature against the rating, titled with its correlation.

    A binary (0/1) feature, such as a one-hot occupation, is drawn as the mean rating of each group
    and the difference of the means in the title, with 95 % intervals over the feature's units (users for a
    user feature: :func:`group_means` resamples users with all their ratings, seeded by ``params["seed"]``;
    none with fewer than 6 users in a group); a
    continuous one as a scatter against the jittered rating with its least-squares line.
    ``labels`` (namespace, model, data) go into the title. Only the plotted features are gathered
    per rating, never the whole flat matrix.
    """
    import matplotlib.pyplot as plt

    features = _plot_features(top, params)
    missing = [f for f in features if f not in model_input.features]
    if missing:
        raise ValueError(
            f"ridge_analysis.plot_features names unknown features {missing}; "
            "use names from top_coefficients.csv or leave it empty for the top features."
        )
    rng = np.random.default_rng(params["seed"])
    rating = model_input.rating
    jittered = rating + rng.uniform(-params["jitter"], params["jitter"], size=len(rating))
    n_cols = 3
    n_rows = int(np.ceil(len(features) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.4 * n_cols, 3.8 * n_rows + 0.6), squeeze=False)
    for ax, feature in zip(axes.flat, features, strict=False):  # the grid may have spare panels
        values = model_input.column(feature)
        corr = float(np.corrcoef(values, rating)[0, 1]) if values.std() > 0 else float("nan")
        if _is_binary(values):
            groups = group_means(model_input, feature, params["seed"])
            title = f"{feature}\nr = {corr:.3f}; {_plot_group_means(ax, feature, groups)}"
        else:
            ax.scatter(values, jittered, s=4, alpha=0.25, color="tab:blue", label="a rating (jittered)")
            if values.std() > 0:
                slope, intercept = np.polyfit(values, rating, 1)
                xs = np.array([values.min(), values.max()])
                ax.plot(xs, intercept + slope * xs, color="tab:red", linewidth=1.2, label="least-squares line")
            ax.set_ylabel(f"rating (±{params['jitter']} jitter)", fontsize=8)
            ax.legend(fontsize=7, loc="lower right", markerscale=3)
            title = f"{feature}\nr = {corr:.3f}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(feature, fontsize=8)
    for ax in list(axes.flat)[len(features) :]:
        ax.set_visible(False)
    suptitle(fig, _figure_title(f"top {len(features)} features against the rating", labels, len(rating)), fontsize=10)
    fig.tight_layout()
    return fig


def plot_coefficients(
    top: pd.DataFrame, metrics: dict[str, Any] | None = None, labels: dict[str, Any] | None = None
) -> Any:
    """Horizontal bar chart of the top coefficients, signed; ``metrics`` gives n and alpha for the title.

    The title says how alpha was chosen (``alpha_mode``: auto or fixed) and what the test split holds out
    (``held_out``: test ratings of unseen movies, or of movies seen in training), when the metrics say it.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(top) + 2.0))
    ordered = top.iloc[::-1]
    colors = np.where(ordered["coefficient"] >= 0, "tab:blue", "tab:red")
    ax.barh(ordered["feature"], ordered["coefficient"], color=colors)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Ridge coefficient (rating stars per unit of the feature)")
    ax.legend(
        handles=[Patch(color="tab:blue", label="raises the rating"), Patch(color="tab:red", label="lowers the rating")],
        fontsize=8,
        loc="lower right",
    )
    what = f"top {len(top)} |coefficients|"
    n = 0
    if metrics:
        # the coefficients are the fit on the training split: n is its ratings; the test R² says its own n
        mode = {"auto": ", chosen by auto", "fixed": ", fixed"}.get(metrics.get("alpha_mode"), "")
        of = TEST_RATINGS_OF.get(metrics.get("held_out"), "")
        what += (  # a line of its own: the chart is narrow
            f"\nalpha = {metrics['alpha']:g}{mode}; test R² = {metrics['r2_test']:.4f} "
            f"on {metrics['n_test']:,} test ratings{of}"
        )
        n = int(metrics["n_train"])
    suptitle(fig, _figure_title(what, labels, n), fontsize=9.5)
    fig.tight_layout()
    return fig
