"""User features are optional (``user_features``) and ratings may be half stars (``rating_step``)."""

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.pipelines.ridge_analysis import nodes
from qeu_kedro.pipelines.ridge_analysis.nodes import (
    build_model_input,
    check_ratings,
    check_users,
    fit_ridge,
    predict,
    split_ratings,
)
from qeu_kedro.pipelines.ridge_analysis.reference import build_flat_model_input, fit_ridge_flat, split_flat
from qeu_kedro.validation import RawDataError
from tests.conftest import REPO, load_config
from tests.pipelines.ridge_analysis.test_exact_ridge import RIDGE, assert_same_model, random_inputs


def flat_with(ratings, users, embeddings, user_columns):
    """The original flat table keeping only the user columns whose name starts with one of ``user_columns``."""
    flat = build_flat_model_input(ratings, users, embeddings)
    embedding_cols = [c for c in embeddings.columns if c != "movie_id"]
    keep = [c for c in flat.columns if c.split("_")[0] in user_columns] + embedding_cols + ["rating"]
    return flat[keep]


@pytest.mark.parametrize(
    ("features", "user_cols"),
    [([], []), (["age"], ["age"]), (["occupation", "age"], ["age", "occupation"]), (["gender"], ["gender"])],
)
def test_fit_equals_sklearn_on_the_chosen_user_columns(features, user_cols):
    ratings, users, embeddings = random_inputs(seed=3)
    params = {**RIDGE, "user_features": features, "group_by": None}  # the original's split, as split_flat
    design, stats = build_model_input(ratings, users, embeddings, params)
    flat = flat_with(ratings, users, embeddings, user_cols)
    assert design.features == [c for c in flat.columns if c != "rating"]
    assert stats["n_features"] == flat.shape[1] - 1
    train, test = split_ratings(design, params)
    flat_train, _ = split_flat(flat, params)
    model = fit_ridge(train, params)
    assert_same_model(model, fit_ridge_flat(flat_train, params), rtol=1e-9)
    assert np.isfinite(predict(model, test)).all()


def test_movie_features_alone_need_only_user_ids_which_may_repeat():
    ratings, users, embeddings = random_inputs(seed=4)
    params = {**RIDGE, "user_features": []}
    # a 20M+ release: the users table is the ratings' user_id column, ids repeated
    ids_only = check_users(ratings[["user_id"]], params)
    assert list(ids_only.columns) == ["user_id"]
    assert sorted(ids_only["user_id"]) == sorted(ratings["user_id"].unique())
    alone = fit_ridge(build_model_input(ratings, ids_only, embeddings, params)[0], params)
    # the full users table with user_features [] gives the same model: its other columns are ignored
    full = fit_ridge(build_model_input(ratings, check_users(users, params), embeddings, params)[0], params)
    assert alone["features"] == [c for c in embeddings.columns if c != "movie_id"]
    assert alone == full


def test_base_user_features_are_age_gender_occupation():
    assert RIDGE["user_features"] == ["age", "gender", "occupation"]  # conf/base
    ratings, users, embeddings = random_inputs(seed=5, n_ratings=500)
    design, _ = build_model_input(ratings, users, embeddings, RIDGE)
    occupations = [f"occupation_{o}" for o in ("artist", "doctor", "student", "writer")]
    assert design.features[:7] == ["age", "gender_F", "gender_M", *occupations]
    assert design.features[7:] == [c for c in embeddings.columns if c != "movie_id"]


def test_users_check_requires_only_the_configured_columns():
    _, users, _ = random_inputs(n_ratings=10)
    checked = check_users(users.drop(columns=["gender", "occupation"]), {**RIDGE, "user_features": ["age"]})
    assert list(checked.columns) == ["user_id", "age"]
    with pytest.raises(RawDataError, match=r"dataset 'users', column 'gender'.*required column is missing"):
        check_users(users.drop(columns=["gender"]), {**RIDGE, "user_features": ["age", "gender"]})
    with pytest.raises(RawDataError, match=r"dataset 'users', column 'user_id', row 1 .*duplicate id"):
        check_users(users.iloc[[0, 0]], {**RIDGE, "user_features": ["age"]})
    with pytest.raises(ValueError, match=r"user_features names unknown columns \['zip_code'\]"):
        check_users(users, {**RIDGE, "user_features": ["zip_code"]})


def half_stars(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n + 1),
            "movie_id": rng.integers(1, 50, n),
            "rating": rng.integers(1, 11, n) / 2,  # 0.5 ... 5.0
        }
    )


def test_half_star_ratings_pass_with_step_half_and_keep_their_values():
    table = half_stars()
    checked = check_ratings(table, {**RIDGE, "rating_step": 0.5})
    np.testing.assert_array_equal(checked["rating"].to_numpy(), table["rating"].to_numpy())
    assert checked["rating"].min() == 0.5


def test_half_star_ratings_are_refused_with_whole_stars():
    table = half_stars()
    row = int(np.flatnonzero(table["rating"] % 1 != 0)[0])
    with pytest.raises(
        RawDataError,
        match=rf"dataset 'ratings', column 'rating', row {row} .*whole number, found {table['rating'][row]}.*"
        r"rating_step",
    ):
        check_ratings(table, {**RIDGE, "rating_step": 1})


def test_base_rating_step_is_whole_stars():
    base = load_config(REPO, None, "parameters")["ridge_analysis"]
    assert base["rating_step"] == 1
    table = half_stars()
    whole = table.assign(rating=np.ceil(table["rating"]).astype(int))  # 1 ... 5
    pd.testing.assert_frame_equal(check_ratings(whole, base), whole)
    row = int(np.flatnonzero(table["rating"] % 1 != 0)[0])
    with pytest.raises(RawDataError, match=rf"column 'rating', row {row} .*whole number"):
        check_ratings(table, base)


def test_off_step_and_out_of_range_ratings_are_refused_with_half_stars():
    table = half_stars()
    table.loc[7, "rating"] = 3.25
    with pytest.raises(RawDataError, match=r"'ratings', column 'rating', row 7 .*multiple of 0.5, found 3.25"):
        check_ratings(table, {**RIDGE, "rating_step": 0.5})
    table.loc[7, "rating"] = 0.0
    with pytest.raises(RawDataError, match=r"'ratings', column 'rating', row 7 .*outside the allowed range \[0.5, 5"):
        check_ratings(table, {**RIDGE, "rating_step": 0.5})


def test_half_star_ratings_fit_like_sklearn():
    ratings, users, embeddings = random_inputs(seed=6)
    ratings = ratings.drop_duplicates(["user_id", "movie_id"], ignore_index=True)  # one rating per pair
    ratings["rating"] = ratings["rating"] - 0.5 * (ratings.index.to_numpy() % 2)  # 0.5 ... 5
    params = {**RIDGE, "rating_step": 0.5, "user_features": [], "group_by": None}  # split_flat's split
    checked = check_ratings(ratings, params)
    design, _ = build_model_input(checked, check_users(users, params), embeddings, params)
    train, _ = split_ratings(design, params)
    flat_train, _ = split_flat(flat_with(ratings, users, embeddings, []), params)
    assert_same_model(fit_ridge(train, params), fit_ridge_flat(flat_train, params), rtol=1e-9)
    assert nodes.rating_columns(0.5)[2].kind == "float"
