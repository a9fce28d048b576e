"""Repeated k-fold CV from subtracted fold statistics, and ``alpha: auto``, against scikit-learn on the flat matrix."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold, RepeatedKFold

from qeu_kedro.pipelines.ridge_analysis.nodes import (
    _solve_stats,
    build_model_input,
    cross_validate_ridge,
    fit_ridge,
    select_alpha,
    split_ratings,
    sufficient_statistics,
)
from qeu_kedro.pipelines.ridge_analysis.reference import build_flat_model_input

from .test_exact_ridge import RIDGE, random_inputs

CV = {"folds": 5, "repeats": 2, "seed": 3}


def _design(seed=0, **kwargs):
    ratings, users, embeddings = random_inputs(seed, **kwargs)
    design, _ = build_model_input(ratings, users, embeddings, RIDGE)
    return design, build_flat_model_input(ratings, users, embeddings)


def test_statistics_add_over_disjoint_ratings():
    design, _ = _design()
    half = np.arange(len(design)) % 2 == 0
    whole = sufficient_statistics(design)
    parts = sufficient_statistics(design.subset(np.flatnonzero(half))) + sufficient_statistics(
        design.subset(np.flatnonzero(~half))
    )
    assert parts.n == whole.n
    np.testing.assert_allclose(parts.gram, whole.gram, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(parts.xty, whole.xty, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(parts.sum_x, whole.sum_x, rtol=1e-12)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_every_fold_equals_scikit_learn_fitted_on_that_folds_rows(fit_intercept):
    design, flat = _design()
    x, y = flat.drop(columns="rating").to_numpy(dtype=np.float64), flat["rating"].to_numpy(dtype=np.float64)
    params = {"alpha": 5.0, "fit_intercept": fit_intercept, "cv": CV}
    scores = cross_validate_ridge(design, {"alpha": 5.0}, params)
    total = sufficient_statistics(design)
    splits = RepeatedKFold(n_splits=CV["folds"], n_repeats=CV["repeats"], random_state=CV["seed"]).split(x)
    assert len(scores) == CV["folds"] * CV["repeats"]
    for row, (train_idx, test_idx) in zip(scores.itertuples(), splits, strict=True):
        reference = Ridge(alpha=5.0, fit_intercept=fit_intercept).fit(x[train_idx], y[train_idx])
        coef, intercept = _solve_stats(total - sufficient_statistics(design.subset(test_idx)), 5.0, fit_intercept)
        np.testing.assert_allclose(coef, reference.coef_, rtol=1e-7, atol=1e-9 * np.abs(reference.coef_).max())
        assert intercept == pytest.approx(float(reference.intercept_), abs=1e-8)
        assert row.r2_test == pytest.approx(r2_score(y[test_idx], reference.predict(x[test_idx])), abs=1e-9)
        assert (row.n_train, row.n_test) == (len(train_idx), len(test_idx))


def test_folds_are_the_same_in_two_namespaces_and_their_fingerprints_say_so():
    design, _ = _design()
    params = {"fit_intercept": True, "cv": CV}
    a = cross_validate_ridge(design, {"alpha": 5.0}, params)
    b = cross_validate_ridge(design, {"alpha": 50.0}, params)
    assert list(a["test_hash"]) == list(b["test_hash"])
    assert a["test_hash"].nunique() == len(a)  # every fold of every repeat is a different set of ratings
    assert not np.allclose(a["r2_test"], b["r2_test"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_auto_picks_the_grid_point_brute_force_cv_picks(seed):
    design, flat = _design(seed, n_ratings=2500, dim=40)
    grid = [0.01, 1.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 1e4]
    params = {
        "alpha": "auto",
        "fit_intercept": True,
        "test_size": 0.2,
        "seed": 42,
        "alpha_search": {"grid": grid, "folds": 5, "seed": 7},
    }
    train, _ = split_ratings(design, params)
    chosen = select_alpha(train, params)
    flat_train = flat.loc[train.rows]
    brute = GridSearchCV(
        Ridge(), {"alpha": grid}, cv=KFold(n_splits=5, shuffle=True, random_state=7), scoring="r2"
    ).fit(flat_train.drop(columns="rating").to_numpy(dtype=np.float64), flat_train["rating"].to_numpy(dtype=np.float64))
    assert chosen["mode"] == "auto"
    assert chosen["alpha"] == brute.best_params_["alpha"]
    np.testing.assert_allclose(chosen["cv_r2_mean"], brute.cv_results_["mean_test_score"], atol=1e-9)
    assert fit_ridge(train, params, chosen)["alpha"] == chosen["alpha"]


def test_a_fixed_alpha_is_passed_through():
    design, _ = _design()
    assert select_alpha(design, {"alpha": 5}) == {"mode": "fixed", "alpha": 5.0}
