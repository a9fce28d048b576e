"""The ridge from per-user and per-movie sums equals scikit-learn's Ridge on the flattened matrix."""

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.pipelines.ridge_analysis.nodes import (
    build_model_input,
    check_ratings,
    check_users,
    evaluate_ridge,
    fit_ridge,
    predict,
    split_ratings,
    top_coefficients,
)
from qeu_kedro.pipelines.ridge_analysis.reference import (
    build_flat_model_input,
    fit_ridge_flat,
    predict_flat,
    split_flat,
)
from tests.conftest import REPO, load_config

ALPHAS = (0.01, 5.0, 300.0)
# conf/base's ridge_analysis parameters; random_inputs rates 10 movies without an embedding
# (about 10 % of the ratings, around conf/base's max_join_loss), so the join loss is left unchecked here.
RIDGE = {**load_config(REPO, None, "parameters")["ridge_analysis"], "max_join_loss": None}


def assert_same_model(model, reference, rtol=1e-6):
    """Coefficients equal to ``rtol`` relative (elementwise, against the largest) and the same intercept."""
    ours, theirs = np.asarray(model["coefficients"]), np.asarray(reference["coefficients"])
    assert model["features"] == reference["features"]
    assert np.linalg.norm(ours - theirs) <= rtol * np.linalg.norm(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * np.abs(theirs).max())
    assert model["intercept"] == pytest.approx(reference["intercept"], rel=rtol, abs=rtol)


def random_inputs(seed=0, n_ratings=3000, n_users=120, n_movies=90, dim=24):
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "user_id": rng.permutation(np.arange(1, n_users + 1)) * 3,
            "age": rng.integers(15, 70, n_users),
            "gender": rng.choice(["F", "M"], n_users),
            "occupation": rng.choice(["writer", "student", "artist", "doctor"], n_users),
        }
    )
    ids = rng.permutation(np.arange(1, n_movies + 11)) * 7  # 10 movies more than embedded
    embeddings = pd.DataFrame(
        rng.normal(size=(n_movies, dim)).astype(np.float32), columns=[f"e{i}" for i in range(dim)]
    )
    embeddings.insert(0, "movie_id", ids[:n_movies])
    weights = rng.normal(size=dim)
    ratings = pd.DataFrame({"user_id": rng.choice(users["user_id"], n_ratings), "movie_id": rng.choice(ids, n_ratings)})
    signal = embeddings.set_index("movie_id").reindex(ratings["movie_id"]).fillna(0).to_numpy() @ weights
    ratings["rating"] = np.clip(np.round(3 + 0.5 * signal + rng.normal(0, 0.7, n_ratings)), 1, 5).astype(int)
    return ratings, users, embeddings


def test_design_is_the_original_flat_table_in_the_same_order():
    ratings, users, embeddings = random_inputs()
    design, stats = build_model_input(ratings, users, embeddings, RIDGE)
    flat = build_flat_model_input(ratings, users, embeddings)
    materialised = design.to_frame()
    assert list(materialised.columns) == list(flat.columns)
    np.testing.assert_array_equal(materialised.to_numpy(), flat.to_numpy(dtype=np.float64))
    assert stats["n_ratings_used"] == len(flat) < len(ratings)
    assert stats["n_features"] == flat.shape[1] - 1


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", ALPHAS)
def test_fit_equals_sklearn_on_random_data(alpha, fit_intercept):
    ratings, users, embeddings = random_inputs(seed=int(alpha * 100) % 7)
    params = {"alpha": alpha, "fit_intercept": fit_intercept, "test_size": 0.2, "seed": 42}
    train, test = split_ratings(build_model_input(ratings, users, embeddings, RIDGE)[0], params)
    flat_train, flat_test = split_flat(build_flat_model_input(ratings, users, embeddings), params)
    np.testing.assert_array_equal(train.rows, flat_train.index.to_numpy())
    model = fit_ridge(train, params)
    assert_same_model(model, fit_ridge_flat(flat_train, params), rtol=1e-9)
    np.testing.assert_allclose(
        predict(model, test), predict_flat(fit_ridge_flat(flat_train, params), flat_test), rtol=1e-9
    )
    if not fit_intercept:
        assert model["intercept"] == 0.0


def test_repeated_ratings_of_one_movie_by_one_user_count_twice():
    ratings, users, embeddings = random_inputs(n_ratings=400)
    ratings = pd.concat([ratings, ratings.iloc[:50]], ignore_index=True)
    params = {"alpha": 1.0, "fit_intercept": True}
    design, _ = build_model_input(ratings, users, embeddings, RIDGE)
    assert_same_model(
        fit_ridge(design, params), fit_ridge_flat(build_flat_model_input(ratings, users, embeddings), params), 1e-9
    )


def test_duplicate_movie_embedding_is_an_input_error():
    ratings, users, embeddings = random_inputs(n_ratings=100)
    doubled = pd.concat([embeddings, embeddings.iloc[[4]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"'movie_embeddings', column 'movie_id', row 90 .*duplicate id"):
        build_model_input(ratings, users, doubled, RIDGE)


def test_predict_refuses_a_model_with_features_the_input_lacks():
    design, _ = build_model_input(*random_inputs(n_ratings=100), RIDGE)
    model = fit_ridge(design, {"alpha": 1.0, "fit_intercept": True})
    with pytest.raises(ValueError, match="features the input lacks"):
        predict({**model, "features": ["nope", *model["features"][1:]]}, design)


@pytest.mark.real_data
@pytest.mark.slow
def test_equals_sklearn_and_original_outputs_on_movielens(shared_data, monkeypatch):
    from qeu_kedro.datasets import SentenceTransformerDataset
    from qeu_kedro.pipelines.movie_embedding.nodes import embed_movies
    from tests.conftest import matched_movies

    # the movielens environment's parameters: its TMDB match leaves ~40 % of the ratings unembedded
    ridge = load_config(REPO, "movielens", "parameters")["ridge_analysis"]
    ratings = check_ratings(
        pd.read_csv(
            shared_data / "movielens-100k/u.data",
            sep="\t",
            header=None,
            names=["user_id", "movie_id", "rating", "timestamp"],
        ),
        ridge,
    )
    users = check_users(
        pd.read_csv(
            shared_data / "movielens-100k/u.user",
            sep="|",
            header=None,
            names=["user_id", "age", "gender", "occupation", "zip"],
        ),
        ridge,
    )
    monkeypatch.setenv("QEU_SHARED_DATA", str(shared_data))
    movies = matched_movies("movielens")
    model = SentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()
    embed_params = {
        "text_columns": ["title", "overview"],
        "batch_size": 64,
        "normalize_embeddings": True,
        "show_progress_bar": False,
        "use_cache": True,
        "encoder": {"batching": "fixed", "max_tokens_per_batch": 4096, "quantize": "none", "text_partitions": 0},
    }
    embeddings, _ = embed_movies(movies, model, None, embed_params)

    design, stats = build_model_input(ratings, users, embeddings, ridge)
    flat = build_flat_model_input(ratings, users, embeddings)
    assert stats["n_features"] == 792 and 50_000 <= len(flat) <= 65_000
    for fit_intercept in (True, False):
        for alpha in (0.5, 5.0, 50.0):
            params = {"alpha": alpha, "fit_intercept": fit_intercept, "test_size": 0.2, "seed": 42, "top_k": 20}
            train, test = split_ratings(design, params)
            flat_train, flat_test = split_flat(flat, params)
            ours, theirs = fit_ridge(train, params), fit_ridge_flat(flat_train, params)
            assert_same_model(ours, theirs, rtol=1e-6)
            if (alpha, fit_intercept) != (5.0, True):
                continue
            # the pipeline's outputs: metrics and the top-k table as the original computed them
            metrics = evaluate_ridge(ours, train, test, stats)
            for name, part in (("train", flat_train), ("test", flat_test)):
                y, y_hat = part["rating"].to_numpy(np.float64), predict_flat(theirs, part)
                assert metrics[f"rmse_{name}"] == pytest.approx(np.sqrt(np.mean((y - y_hat) ** 2)), rel=1e-9)
                assert metrics[f"r2_{name}"] == pytest.approx(
                    1 - np.sum((y - y_hat) ** 2) / np.sum((y - y.mean()) ** 2), rel=1e-9
                )
            top, top_ref = top_coefficients(ours, params), top_coefficients(theirs, params)
            assert top["feature"].tolist() == top_ref["feature"].tolist()
            np.testing.assert_allclose(top["coefficient"], top_ref["coefficient"], rtol=1e-6)


def test_a_non_finite_gram_matrix_is_an_error_not_a_singular_one(caplog):
    """A NaN reached the solver as 'XᵀX + alpha I is singular', then lstsq's error; it is an error at once."""
    from qeu_kedro.pipelines.ridge_analysis.nodes import solve_ridge

    gram = np.eye(3)
    gram[1, 1] = np.nan
    with pytest.raises(ValueError, match="infs or NaNs"):
        solve_ridge(gram, np.ones(3), 5.0)
    assert "singular" not in caplog.text
    singular = np.zeros((3, 3))  # alpha 0: truly singular, solved by least squares with the warning
    assert np.allclose(solve_ridge(singular, np.zeros(3), 0.0), 0) and "singular" in caplog.text
