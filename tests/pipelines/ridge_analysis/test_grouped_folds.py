"""``group_by: movie_id``: the test split, the CV folds and alpha: auto's folds hold out whole movies.

By rating, every test movie is also rated in training, and a ridge with about as many embedding
dimensions as movies fits each movie's own offset from its vectors, whatever they mean: random
vectors are rewarded. By movie, a test movie is unseen, so only what its features say can predict it.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, GroupShuffleSplit

from qeu_kedro.pipelines.ridge_analysis.nodes import (
    _fold_hash,
    build_model_input,
    cross_validate_ridge,
    evaluate_ridge,
    fit_ridge,
    select_alpha,
    split_ratings,
)
from qeu_kedro.pipelines.ridge_analysis.reference import build_flat_model_input

from .test_exact_ridge import RIDGE, random_inputs

CV = {"folds": 5, "repeats": 3, "seed": 3}
BY_MOVIE = {"alpha": 5.0, "fit_intercept": True, "cv": CV, "group_by": "movie_id", "test_size": 0.2, "seed": 42}


def _design(seed=0, **kwargs):
    ratings, users, embeddings = random_inputs(seed, **kwargs)
    design, _ = build_model_input(ratings, users, embeddings, RIDGE)
    return design, build_flat_model_input(ratings, users, embeddings)


def _movies(design, positions):
    return set(design.movie_features.index.to_numpy()[design.movie_row[positions]])


def _test_positions(design, params):
    """Per (repeat, fold), the positions of the ratings a fold of whole movies tests: scikit-learn's
    GroupKFold(shuffle=True) over the movies, one RandomState(seed) across the repeats."""
    movie_of = design.movie_features.index.to_numpy()[design.movie_row]
    rng = np.random.RandomState(params["cv"]["seed"])
    out = []
    for _ in range(params["cv"]["repeats"]):
        folds = GroupKFold(params["cv"]["folds"], shuffle=True, random_state=rng)
        out += [test for _, test in folds.split(np.zeros(len(design)), groups=movie_of)]
    return out


def test_conf_base_holds_out_whole_movies():
    assert RIDGE["group_by"] == "movie_id"


def test_grouped_folds_never_share_a_movie_between_train_and_test():
    design, flat = _design()
    scores = cross_validate_ridge(design, {"alpha": 5.0}, BY_MOVIE)
    assert len(scores) == CV["folds"] * CV["repeats"]
    every = np.arange(len(design))
    x, y = flat.drop(columns="rating").to_numpy(dtype=np.float64), flat["rating"].to_numpy(dtype=np.float64)
    tested = []
    for row, test in zip(scores.itertuples(), _test_positions(design, BY_MOVIE), strict=True):
        train = np.setdiff1d(every, test)
        assert not _movies(design, test) & _movies(design, train)  # no movie on both sides ...
        assert row.test_hash == _fold_hash(design.subset(test))  # ... of the fold the table scored
        assert (row.n_train, row.n_test) == (len(train), len(test))
        reference = Ridge(alpha=5.0).fit(x[train], y[train])
        assert row.r2_test == pytest.approx(r2_score(y[test], reference.predict(x[test])), abs=1e-9)
        assert row.n_test_movies == row.n_test_movies_unseen == len(_movies(design, test))
        tested.append(test)
    assert (scores["held_out"] == "movies").all()
    # each repeat's folds cover every rating once, so every movie is tested once per repeat
    for r in range(CV["repeats"]):
        np.testing.assert_array_equal(np.sort(np.concatenate(tested[r * 5 : r * 5 + 5])), every)
    # grouped folds differ in ratings (movies are rated unequally): sizes are the folds' own
    assert scores["n_test"].nunique() > 1 and (scores["n_test"] + scores["n_train"] == len(design)).all()


def test_folds_of_ratings_test_movies_seen_in_training():
    design, _ = _design()
    scores = cross_validate_ridge(design, {"alpha": 5.0}, {**BY_MOVIE, "group_by": None})
    assert (scores["held_out"] == "ratings").all()
    assert (scores["n_test_movies_unseen"] <= 1).all() and (scores["n_test_movies"] > 80).all()


def test_two_namespaces_get_the_same_grouped_folds_whatever_their_embeddings_and_row_order():
    """base and finetuned embed the same movies with other vectors (another width, another table order):
    the folds follow the sorted movie ids, so both are scored on the same movies' ratings."""
    ratings, users, embeddings = random_inputs(seed=1)
    rng = np.random.default_rng(5)
    other = pd.DataFrame(rng.normal(size=(len(embeddings), 16)), columns=[f"f{i}" for i in range(16)])
    other.insert(0, "movie_id", embeddings["movie_id"].to_numpy())
    other = other.iloc[rng.permutation(len(other))].reset_index(drop=True)  # another row order
    base, _ = build_model_input(ratings, users, embeddings, RIDGE)
    finetuned, _ = build_model_input(ratings, users, other, RIDGE)
    assert list(base.movie_features.index) != list(finetuned.movie_features.index)
    a = cross_validate_ridge(base, {"alpha": 5.0}, BY_MOVIE)
    b = cross_validate_ridge(finetuned, {"alpha": 5.0}, BY_MOVIE)
    assert list(a["test_hash"]) == list(b["test_hash"])
    assert a["test_hash"].nunique() == len(a)
    # and they are the folds of whole movies, the same in both whatever the row order of their movie tables
    for design in (base, finetuned):
        expected = [_fold_hash(design.subset(test)) for test in _test_positions(design, BY_MOVIE)]
        assert list(a["test_hash"]) == expected
    pd.testing.assert_frame_equal(a.drop(columns="r2_test"), b.drop(columns="r2_test"))
    assert not np.allclose(a["r2_test"], b["r2_test"])


def _movie_offsets(informative: bool, n_movies=60, dim=48, n_users=40, n_ratings=3000, seed=0):
    """Ratings = 3 + the movie's own offset + noise. The movie 'embeddings' are Gaussian noise of about
    unit norm (as normalised embeddings are), ``dim`` close to the number of movies; ``informative``:
    their first dimension is the movie's offset (scaled like the others), else they are unrelated to it."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user_id": np.arange(1, n_users + 1)})
    movie_ids = np.arange(1, n_movies + 1) * 10
    offsets = rng.normal(0, 1.0, n_movies)
    vectors = rng.normal(size=(n_movies, dim))
    if informative:
        vectors[:, 0] = offsets
    embeddings = pd.DataFrame(vectors / np.sqrt(dim), columns=[f"e{i}" for i in range(dim)])
    embeddings.insert(0, "movie_id", movie_ids)
    pairs = pd.DataFrame(
        {"user_id": rng.integers(1, n_users + 1, 3 * n_ratings), "movie_id": rng.choice(movie_ids, 3 * n_ratings)}
    )
    ratings = pairs.drop_duplicates().head(n_ratings).reset_index(drop=True)
    offset = dict(zip(movie_ids, offsets, strict=True))
    noise = rng.normal(0, 0.6, len(ratings))
    ratings["rating"] = np.clip(np.round(3 + ratings["movie_id"].map(offset) + noise), 1, 5).astype(int)
    return build_model_input(ratings, users, embeddings, {**RIDGE, "user_features": []})[0]


def test_noise_features_with_movie_offsets_are_rewarded_by_rating_folds_and_not_by_movie_folds():
    noise = _movie_offsets(informative=False)
    by_rating = cross_validate_ridge(noise, {"alpha": 5.0}, {**BY_MOVIE, "group_by": None})["r2_test"]
    by_movie = cross_validate_ridge(noise, {"alpha": 5.0}, BY_MOVIE)["r2_test"]
    # the noise vectors give each movie its offset when the movie is also in training ...
    assert by_rating.mean() > 0.3 and by_rating.min() > 0.2
    # ... and predict nothing of a movie they have not seen
    assert by_movie.mean() < 0 and by_movie.max() < 0
    # vectors that carry the offset predict unseen movies: grouped folds reward what the features say
    signal = cross_validate_ridge(_movie_offsets(informative=True), {"alpha": 5.0}, BY_MOVIE)["r2_test"]
    assert signal.mean() > 0.2


def test_the_grouped_split_is_group_shuffle_split_over_the_movies():
    design, _ = _design(seed=2)
    train, test = split_ratings(design, BY_MOVIE)
    movie_of = design.movie_features.index.to_numpy()[design.movie_row]
    ((_, expected),) = GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=42).split(
        np.zeros(len(design)), groups=movie_of
    )
    np.testing.assert_array_equal(np.sort(test.rows), np.sort(design.rows[expected]))
    assert len(train) + len(test) == len(design)
    assert not _movies(design, train.rows) & _movies(design, test.rows)
    metrics = evaluate_ridge(fit_ridge(train, BY_MOVIE), train, test, {}, None, BY_MOVIE)
    assert metrics["held_out"] == "movies"
    assert (
        evaluate_ridge(fit_ridge(train, BY_MOVIE), train, test, {}, None, {"group_by": None})["held_out"] == "ratings"
    )


def test_alpha_auto_by_movie_picks_what_grid_search_over_group_k_fold_picks():
    design, flat = _design(seed=0, n_ratings=2500, dim=40)
    grid = [0.01, 1.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 1e4]
    params = {**BY_MOVIE, "alpha": "auto", "alpha_search": {"grid": grid, "folds": 5, "seed": 7}}
    train, _ = split_ratings(design, params)
    chosen = select_alpha(train, params)
    flat_train = flat.loc[train.rows]
    movie_of = train.movie_features.index.to_numpy()[train.movie_row]
    folds = list(GroupKFold(5, shuffle=True, random_state=7).split(np.zeros(len(train)), groups=movie_of))
    brute = GridSearchCV(Ridge(), {"alpha": grid}, cv=folds, scoring="r2").fit(
        flat_train.drop(columns="rating").to_numpy(dtype=np.float64), flat_train["rating"].to_numpy(dtype=np.float64)
    )
    np.testing.assert_allclose(chosen["cv_r2_mean"], brute.cv_results_["mean_test_score"], atol=1e-9)
    assert chosen["alpha"] == brute.best_params_["alpha"]
    assert chosen["held_out"] == "movies"


@pytest.mark.parametrize("unit", ["user_id", "movie", "ratings"])
def test_an_unknown_unit_is_refused_with_the_allowed_ones(unit):
    design, _ = _design()
    with pytest.raises(ValueError, match=r"group_by is .*allowed: \['movie_id'\].*or null"):
        cross_validate_ridge(design, {"alpha": 5.0}, {**BY_MOVIE, "group_by": unit})


def test_a_fold_s_fingerprint_holds_each_rating_exactly():
    """Half stars (rating_step 0.5): the fingerprint took whole ratings, so a fold holding 3.5 where the other
    held 3 had the same one, and movie_comparison would pair folds of different ratings."""
    design, _ = _design()
    half = design.rating.astype(np.float64)
    half[0] += 0.5
    other = type(design)(**{**design.__dict__, "rating": half})
    assert _fold_hash(other) != _fold_hash(design)
    assert _fold_hash(type(design)(**design.__dict__)) == _fold_hash(design)
