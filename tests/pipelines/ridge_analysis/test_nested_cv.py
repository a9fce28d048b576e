"""alpha: auto in the repeated CV is nested: each fold searches its own alpha on its training ratings only."""

import numpy as np
import pytest
from sklearn.metrics import r2_score

from qeu_kedro.pipelines.ridge_analysis.nodes import (
    build_model_input,
    cross_validate_ridge,
    evaluate_ridge,
    fit_ridge,
    fold_labels,
    predict,
    select_alpha,
    split_ratings,
)

from .test_exact_ridge import RIDGE, random_inputs

AUTO = {
    **RIDGE,
    "alpha": "auto",
    "alpha_search": {"grid": [0.3, 3.0, 30.0, 300.0, 3000.0], "folds": 4, "seed": 5},
    "cv": {"folds": 4, "repeats": 2, "seed": 9},
}


def _design(seed, embedding_seed=None, **kwargs):
    ratings, users, embeddings = random_inputs(seed, **kwargs)
    if embedding_seed is not None:  # another namespace: other vectors for the same movies
        rng = np.random.default_rng(embedding_seed)
        embeddings.iloc[:, 1:] = rng.normal(size=embeddings.iloc[:, 1:].shape).astype(np.float32)
    return build_model_input(ratings, users, embeddings, RIDGE)


@pytest.mark.parametrize("group_by", ["movie_id", None])
def test_each_fold_scores_its_test_ratings_with_the_alpha_searched_on_its_training_ratings_only(group_by):
    design, stats = _design(4, n_movies=60, n_ratings=1500, dim=30)
    params = {**AUTO, "group_by": group_by}
    train, test = split_ratings(design, params)
    chosen = select_alpha(train, params)
    scores = cross_validate_ridge(design, chosen, params)
    labels = fold_labels(design, 4, 2, 9, group_by)
    for row in scores.itertuples():
        in_test = labels[row.repeat] == row.fold
        fold_train, fold_test = design.subset(np.flatnonzero(~in_test)), design.subset(np.flatnonzero(in_test))
        own = select_alpha(fold_train, params)["alpha"]  # the search, on the fold's training ratings alone
        assert row.alpha == own
        model = fit_ridge(fold_train, params, {"alpha": own})
        assert row.r2_test == pytest.approx(r2_score(fold_test.rating, predict(model, fold_test)), abs=1e-9)
    if group_by:  # on these data the folds of movies do not all take one alpha
        assert scores["alpha"].nunique() > 1
    metrics = evaluate_ridge(fit_ridge(train, params, chosen), train, test, stats, scores, params)
    assert metrics["alpha"] == chosen["alpha"]  # the single-split model keeps the training split's alpha
    assert metrics["alpha_mode"] == "auto"
    assert metrics["cv_alpha_min"] == scores["alpha"].min() and metrics["cv_alpha_max"] == scores["alpha"].max()


def test_nested_folds_stay_paired_across_namespaces():
    base, _ = _design(4, n_movies=60, n_ratings=1500, dim=30)
    finetuned, _ = _design(4, embedding_seed=1, n_movies=60, n_ratings=1500, dim=30)
    a = cross_validate_ridge(base, {"mode": "auto", "alpha": 3.0}, AUTO)
    b = cross_validate_ridge(finetuned, {"mode": "auto", "alpha": 30.0}, AUTO)
    assert list(a["test_hash"]) == list(b["test_hash"])
    assert (a["n_train"] == b["n_train"]).all()


def test_a_fixed_alpha_scores_every_fold_with_it():
    design, _ = _design(4, n_movies=60, n_ratings=1500, dim=30)
    params = {**AUTO, "alpha": 30.0}
    scores = cross_validate_ridge(design, select_alpha(design, params), params)
    assert (scores["alpha"] == 30.0).all()


@pytest.mark.parametrize("grid", [[0.01, 1.0, 1e6], [1.0, 1e6, 0.01]])
def test_the_largest_alpha_is_the_edge_of_the_grid_in_any_order(grid, caplog):
    """Random vectors carry no signal: the heaviest shrinkage wins. Listed first, last or in the middle of
    alpha_search.grid, it is the grid's edge, and both the training split's search and the CV say so."""
    design, _ = _design(4, n_movies=60, n_ratings=1500, dim=30)
    params = {**AUTO, "alpha_search": {**AUTO["alpha_search"], "grid": grid}}
    train, _ = split_ratings(design, params)
    with caplog.at_level("WARNING"):
        selection = select_alpha(train, params)
        scores = cross_validate_ridge(design, selection, params)
    at_edge = int(scores["alpha"].isin([0.01, 1e6]).sum())
    assert selection["alpha"] == 1e6 and at_edge > 0
    assert "alpha: auto chose 1e+06, the edge of alpha_search.grid" in caplog.text
    assert f"the edge of alpha_search.grid in {at_edge} CV folds" in caplog.text
