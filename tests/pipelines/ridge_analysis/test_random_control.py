"""benchmarks/ridge_random_control.py: the real movie vectors against noise of the same spread, on the pipeline's folds."""

import numpy as np
import pytest

from tests.conftest import load_benchmark
from tests.pipelines.ridge_analysis.test_exact_ridge import RIDGE
from tests.pipelines.ridge_analysis.test_grouped_folds import _movie_offsets


@pytest.fixture(scope="module")
def script():
    return load_benchmark("ridge_random_control")


def test_noise_has_each_dimensions_mean_and_spread_and_is_seeded(script):
    features = _movie_offsets(informative=True).movie_features * np.linspace(0.5, 3, 48) + np.arange(48)
    noise = script.noise_like(features, seed=1)
    assert noise.shape == features.shape and (noise.index == features.index).all()
    assert list(noise.columns) == list(features.columns)
    np.testing.assert_allclose(noise.mean(), features.mean(), atol=0.6 * features.std().max())
    np.testing.assert_allclose(noise.std(ddof=0), features.std(ddof=0), rtol=0.35)
    assert noise.equals(script.noise_like(features, seed=1)) and not noise.equals(script.noise_like(features, seed=2))
    assert np.corrcoef(noise.iloc[:, 0], features.iloc[:, 0])[0, 1] < 0.5  # unrelated to the real values


def test_vectors_that_carry_the_movie_offsets_beat_noise_and_no_features_on_unseen_movies(script):
    params = {**RIDGE, "alpha": 5.0, "cv": {"folds": 5, "repeats": 2, "seed": 0}, "user_features": []}
    result = script.control(_movie_offsets(informative=True), params, "movie_id", draws=2, seed=0)
    assert result["folds_hold_out"] == "movies" and result["fold_scores"] == 10
    assert result["test_movies_unseen_in_training"] == "120 of 120"  # 60 movies, each tested once a repeat
    assert result["verdict"] == "better" and result["ci"][0] > 0
    assert result["verdict_none"] == "better"
    assert result["real_minus_random"] == pytest.approx(result["cv_r2_real"] - result["cv_r2_random"])
    assert len(result["random_draws"]) == 2 and result["alpha"]["real"] == 5.0
    assert (
        "Folds of movies: the real embedding's CV test R² against random vectors' (2 draws)" in result["sentences"][0]
    )
