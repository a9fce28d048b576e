"""Fold counts: 128 folds and more are numbered right (int8 labels wrapped), and a fold count larger than the
units it splits is refused at the split node, naming the parameter; an alpha search with a NaN score is an error."""

import numpy as np
import pytest

from qeu_kedro.pipelines.ridge_analysis import nodes
from qeu_kedro.pipelines.ridge_analysis.nodes import (
    build_model_input,
    cross_validate_ridge,
    kfold_labels,
    select_alpha,
    split_ratings,
)

from .test_exact_ridge import RIDGE, random_inputs


def _design(**kwargs):
    ratings, users, embeddings = random_inputs(0, **kwargs)
    return build_model_input(ratings, users, embeddings, RIDGE)[0]


@pytest.mark.parametrize("folds", [127, 128, 200, 300])
def test_every_fold_up_to_the_number_of_items_is_its_own(folds):
    labels = kfold_labels(300, folds, 2, 0)
    for r in range(2):
        counts = np.bincount(labels[r].astype(np.int64), minlength=folds)
        assert len(counts) == folds and counts.min() >= 1 and counts.sum() == 300


def test_140_folds_of_150_movies_each_hold_movies_and_every_rating_is_tested_once():
    design = _design(n_movies=150)
    params = {**RIDGE, "alpha": 5.0, "cv": {"folds": 140, "repeats": 1, "seed": 0}}
    scores = cross_validate_ridge(design, {"alpha": 5.0}, params)
    assert len(scores) == 140 and (scores["n_test"] > 0).all() and scores["n_test"].sum() == len(design)
    assert np.isfinite(scores["r2_test"]).all()


@pytest.mark.parametrize("group_by, units", [("movie_id", "movies"), (None, "ratings")])
def test_more_cv_folds_than_units_is_refused_at_the_split_naming_the_parameter(group_by, units):
    design = _design(n_movies=30, n_ratings=200)
    n = len(design) if group_by is None else len(design.movie_features)
    params = {**RIDGE, "group_by": group_by, "cv": {"folds": n + 1, "repeats": 1, "seed": 0}}
    with pytest.raises(ValueError, match=rf"ridge_analysis.cv.folds is {n + 1}, more than the {n} {units}"):
        split_ratings(design, params)
    split_ratings(design, {**params, "cv": {"folds": n, "repeats": 1, "seed": 0}})  # one unit a fold: allowed


def test_more_alpha_search_folds_than_a_training_set_has_movies_is_refused_at_the_split():
    design = _design(n_movies=30, n_ratings=600)  # 30 movies: 24 in the training split, 24 in each of 5 CV folds
    search = {"grid": [1.0, 10.0], "seed": 0}
    params = {**RIDGE, "alpha": "auto", "cv": {"folds": 5, "repeats": 1, "seed": 0}, "test_size": 0.2}
    with pytest.raises(ValueError, match=r"ridge_analysis.alpha_search.folds is 25, more than the 24 movies"):
        split_ratings(design, {**params, "alpha_search": {**search, "folds": 25}})
    split_ratings(design, {**params, "alpha_search": {**search, "folds": 24}})
    fixed = {**params, "alpha": 5.0, "alpha_search": {**search, "folds": 25}}  # unused with a fixed alpha
    split_ratings(design, fixed)


def test_an_alpha_search_whose_folds_cannot_be_scored_is_an_error_not_the_first_grid_point():
    """One rating a fold (R² is not defined): the grid's scores are NaN (were -inf or NaN), never argmax'ed."""
    design = _design(n_movies=10, n_users=20, n_ratings=40, dim=3)
    params = {
        **RIDGE,
        "group_by": None,
        "alpha": "auto",
        "alpha_search": {"grid": [0.01, 1.0, 100.0], "folds": len(design), "seed": 0},
    }
    with pytest.raises(ValueError, match=r"not a number on every one of the \d+ alpha_search folds.*lower"):
        select_alpha(design, params)


def test_r2_from_sums_is_scikit_learns_r2_score_on_its_edge_cases():
    from sklearn.metrics import r2_score

    cases = [([4.0, 4.0, 4.0], [4.0, 4.0, 4.0]), ([4.0, 4.0, 4.0], [3.0, 4.0, 5.0]), ([1.0, 3.0], [2.0, 2.0])]
    for y, y_hat in cases:
        y, y_hat = np.array(y), np.array(y_hat)
        r2 = nodes.r2_from_sums(((y - y_hat) ** 2).sum(), ((y - y.mean()) ** 2).sum(), len(y))
        assert float(r2) == r2_score(y, y_hat)
    assert np.isnan(nodes.r2_from_sums(1.0, 0.0, 1))  # one rating: r2_score warns and gives NaN


def test_too_many_folds_stop_a_movie_run_before_the_movies_are_embedded(project):
    """cv.folds above the sample's 240 movies: refused at movie_embedding's check_rated_movies (before
    embed_movies writes the embeddings and the cache), not at ridge_analysis's split node after it; the error
    names the key, whose value came from --params here, not a YAML file."""
    from tests.conftest import run_kedro

    with pytest.raises(ValueError, match=r"^ridge_analysis\.cv\.folds is 100000, more than the \d+ movies"):
        run_kedro(
            project,
            params={"ridge_analysis": {"cv": {"folds": 100000}}},
            pipeline_names=["movie_embedding", "ridge_analysis"],
            namespaces=["base"],
        )
    assert not [p for p in (project / "data").rglob("*") if p.is_file() and "01_raw" not in p.parts]
