"""Nodes of the ``ridge_analysis`` pipeline: the original notebook's steps as pure functions."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.metrics import mean_squared_error, r2_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from qeu_kedro.validation import Column, check_table, fail  # noqa: E402

logger = logging.getLogger(__name__)

RATING_COLUMNS = (
    Column("user_id", "int", min=1),
    Column("movie_id", "int", min=1),
    Column("rating", "int", min=1, max=5, hint="Ratings are whole stars from 1 to 5."),
)
USER_COLUMNS = (
    Column("user_id", "int", min=1, unique=True),
    Column("age", "int", min=1, max=120),
    Column("gender", "str"),
    Column("occupation", "str"),
)
CATEGORICAL = ("gender", "occupation")
TARGET = "rating"


def check_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """Check the raw ``ratings`` table (user_id, movie_id, rating 1-5)."""
    return check_table(ratings, "ratings", RATING_COLUMNS)


def check_users(users: pd.DataFrame) -> pd.DataFrame:
    """Check the raw ``users`` table (user_id, age, gender, occupation)."""
    return check_table(users, "users", USER_COLUMNS)


def build_model_input(
    ratings: pd.DataFrame, users: pd.DataFrame, movie_embeddings: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Join ratings with users and movie embeddings into one row of features per rating.

    ``gender`` and ``occupation`` are one-hot encoded; ``age`` stays numeric; every
    embedding dimension is a feature. Ratings of movies without an embedding are dropped
    (and counted); a rating by an unknown user is an input error.

    Returns:
        The table (features, then ``rating``) and counts for the metrics report.
    """
    unknown_user = ~ratings["user_id"].isin(users["user_id"]).to_numpy()
    if unknown_user.any():
        i = int(np.flatnonzero(unknown_user)[0])
        fail("ratings", "user_id", i, f"user {ratings['user_id'].iloc[i]} is not in 'users'")
    joined = ratings.merge(users, on="user_id", how="left", validate="many_to_one")
    joined = joined.merge(movie_embeddings, on="movie_id", how="inner", validate="many_to_one")
    dropped = len(ratings) - len(joined)
    if joined.empty:
        fail("movie_embeddings", "movie_id", None, "no rated movie has an embedding: the join is empty")
    embedding_cols = [c for c in movie_embeddings.columns if c != "movie_id"]
    dummies = pd.get_dummies(joined[list(CATEGORICAL)], prefix=list(CATEGORICAL), dtype=np.float32)
    table = pd.concat(
        [joined[["age"]].astype(np.float32), dummies, joined[embedding_cols], joined[[TARGET]].astype(np.float32)],
        axis=1,
    )
    stats = {
        "n_ratings_in": int(len(ratings)),
        "n_ratings_used": int(len(joined)),
        "n_ratings_dropped_no_embedding": int(dropped),
        "n_movies": int(joined["movie_id"].nunique()),
        "n_users": int(joined["user_id"].nunique()),
        "n_features": int(table.shape[1] - 1),
        "n_embedding_features": len(embedding_cols),
    }
    logger.info(
        "Model input: %d ratings x %d features (%d ratings dropped: movie without embedding)",
        stats["n_ratings_used"],
        stats["n_features"],
        dropped,
    )
    return table, stats


def split_ratings(table: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the ratings into train and test (``test_size``, ``seed``)."""
    train, test = train_test_split(table, test_size=params["test_size"], random_state=params["seed"])
    return train, test


def fit_ridge(train: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Fit ``Ridge(alpha)`` on the training ratings; return the model as plain data (JSON-safe)."""
    features = [c for c in train.columns if c != TARGET]
    model = Ridge(alpha=params["alpha"], fit_intercept=params.get("fit_intercept", True))
    model.fit(train[features].to_numpy(dtype=np.float64), train[TARGET].to_numpy(dtype=np.float64))
    return {
        "alpha": float(params["alpha"]),
        "intercept": float(model.intercept_),
        "features": features,
        "coefficients": [float(c) for c in model.coef_],
    }


def predict(model: dict[str, Any], table: pd.DataFrame) -> np.ndarray:
    """Predicted ratings of ``model`` (as written by :func:`fit_ridge`) for the rows of ``table``."""
    x = table[model["features"]].to_numpy(dtype=np.float64)
    return x @ np.asarray(model["coefficients"]) + model["intercept"]


def evaluate_ridge(
    model: dict[str, Any], train: pd.DataFrame, test: pd.DataFrame, input_stats: dict[str, int]
) -> dict[str, Any]:
    """R² and RMSE on train and test, with the counts of the model input."""
    metrics: dict[str, Any] = {"alpha": model["alpha"]}
    for name, part in (("train", train), ("test", test)):
        y, y_hat = part[TARGET].to_numpy(dtype=np.float64), predict(model, part)
        metrics[f"r2_{name}"] = float(r2_score(y, y_hat))
        metrics[f"rmse_{name}"] = float(np.sqrt(mean_squared_error(y, y_hat)))
        metrics[f"n_{name}"] = int(len(part))
    metrics.update(input_stats)
    logger.info("Ridge R² train %.4f, test %.4f", metrics["r2_train"], metrics["r2_test"])
    return metrics


def top_coefficients(model: dict[str, Any], params: dict[str, Any]) -> pd.DataFrame:
    """The ``top_k`` features by |coefficient|, with signed and absolute values."""
    coefs = pd.DataFrame({"feature": model["features"], "coefficient": model["coefficients"]})
    coefs["abs_coefficient"] = coefs["coefficient"].abs()
    top = coefs.sort_values(["abs_coefficient", "feature"], ascending=[False, True]).head(params["top_k"])
    top.insert(0, "rank", np.arange(1, len(top) + 1))
    return top.reset_index(drop=True)


def _plot_features(top: pd.DataFrame, params: dict[str, Any]) -> list[str]:
    chosen = params.get("plot_features") or top["feature"].head(params["n_plot"]).tolist()
    return list(chosen)


def plot_top_features(table: pd.DataFrame, top: pd.DataFrame, params: dict[str, Any]) -> plt.Figure:
    """Scatter each plotted feature against the rating, jittered, titled with its correlation."""
    features = _plot_features(top, params)
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise ValueError(
            f"parameters_ridge_analysis.yml: plot_features names unknown features {missing}; "
            "use names from top_coefficients.csv or leave it empty for the top features."
        )
    rng = np.random.default_rng(params["seed"])
    rating = table[TARGET].to_numpy(dtype=np.float64)
    jittered = rating + rng.uniform(-params["jitter"], params["jitter"], size=len(rating))
    n_cols = 3
    n_rows = int(np.ceil(len(features) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.6 * n_rows), squeeze=False)
    for ax, feature in zip(axes.flat, features):
        values = table[feature].to_numpy(dtype=np.float64)
        corr = float(np.corrcoef(values, rating)[0, 1]) if values.std() > 0 else float("nan")
        ax.scatter(values, jittered, s=4, alpha=0.25)
        ax.set_title(f"{feature}\nr = {corr:.3f}", fontsize=9)
        ax.set_xlabel(feature, fontsize=8)
        ax.set_ylabel(f"rating (±{params['jitter']} jitter)", fontsize=8)
    for ax in list(axes.flat)[len(features) :]:
        ax.set_visible(False)
    fig.suptitle("Top features against the rating")
    fig.tight_layout()
    return fig


def plot_coefficients(top: pd.DataFrame) -> plt.Figure:
    """Horizontal bar chart of the top coefficients, signed."""
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(top) + 1.5))
    ordered = top.iloc[::-1]
    colors = np.where(ordered["coefficient"] >= 0, "tab:blue", "tab:red")
    ax.barh(ordered["feature"], ordered["coefficient"], color=colors)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Ridge coefficient")
    ax.set_title(f"Top {len(top)} |coefficients|")
    fig.tight_layout()
    return fig
